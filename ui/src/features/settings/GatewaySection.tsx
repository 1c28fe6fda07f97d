// Share the fleet as one ComfyUI: any ComfyUI client (a script, the Krita plugin, the ComfyUI web page, another
// ComfyFleet) pointed at the address runs its prompts on the fleet, through the router.
import { useEffect, useState, type FormEvent } from "react";
import { commands, type GatewayStatus } from "../../bindings";
import { Button } from "../../components/Button";
import { Field } from "../../components/Field";
import { Loading } from "../../components/Spinner";
import { call, errorMessage } from "../../lib/errors";
import { useSettingsForm } from "../../lib/settingsForm";

type Fields = { enabled: boolean; listen: string };

export function GatewaySection() {
  const [status, setStatus] = useState<GatewayStatus | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);

  useEffect(() => {
    let live = true;
    call(commands.gatewayStatus())
      .then((s) => live && setStatus(s))
      .catch((e) => live && setLoadError(errorMessage(e)));
    return () => {
      live = false;
    };
  }, []);

  return (
    <section className="card" aria-labelledby="settings-gateway" data-testid="gateway-settings">
      <h2 id="settings-gateway" className="card-title">
        Share as a ComfyUI server
      </h2>
      <p className="field-hint">
        ComfyUI clients (scripts, the Krita plugin, the ComfyUI web page) pointed at this address run their prompts on
        your fleet: the router picks the server, as for your own jobs.
      </p>
      {loadError ? (
        <p className="notice notice-bad" role="alert">
          {loadError}
        </p>
      ) : !status ? (
        <Loading>Loading…</Loading>
      ) : (
        <GatewayForm status={status} onSaved={setStatus} />
      )}
    </section>
  );
}

function GatewayForm({ status, onSaved }: { status: GatewayStatus; onSaved: (s: GatewayStatus) => void }) {
  const { fields, set, saving, error, invalid, save: store } = useSettingsForm<Fields>(() => ({
    enabled: status.settings.enabled ?? false,
    listen: status.settings.listen ?? "127.0.0.1:8189",
  }));

  async function save(e: FormEvent) {
    e.preventDefault();
    if (!/^\S+:\d+$/.test(fields.listen.trim())) return invalid("Type an address and port, like 127.0.0.1:8189 (this computer only) or 0.0.0.0:8189 (the LAN too).");
    const stored = await store(() => call(commands.gatewaySet({ enabled: fields.enabled, listen: fields.listen.trim() })), "The gateway was not changed.");
    if (stored) onSaved(stored);
  }

  return (
    <form className="form-stack" onSubmit={save} noValidate>
      <label className="check-row">
        <input type="checkbox" data-testid="gateway-enabled" checked={fields.enabled} onChange={(e) => set("enabled", e.target.checked)} />
        <span className="check-label">Serve this fleet as one ComfyUI server</span>
      </label>
      <Field id="gateway-listen" label="Address and port" hint="127.0.0.1 keeps it to this computer; 0.0.0.0 opens it to your network.">
        {(control) => (
          <input {...control} type="text" className="cap-input" data-testid="gateway-listen" value={fields.listen} onChange={(e) => set("listen", e.target.value)} />
        )}
      </Field>
      <div className="button-row">
        <Button type="submit" size="sm" busy={saving} data-testid="gateway-save">
          Save
        </Button>
      </div>
      {error && (
        <p className="notice notice-bad" role="alert" data-testid="gateway-error">
          {error}
        </p>
      )}
      <GatewayState status={status} />
    </form>
  );
}

function GatewayState({ status }: { status: GatewayStatus }) {
  if (status.address) {
    return (
      <div role="status" data-testid="gateway-state" data-running="true">
        <p>
          Serving at <code data-testid="gateway-address">{status.address}</code>
        </p>
        {status.exposed && (
          <p className="notice notice-warn" data-testid="gateway-exposed">
            Open to your network: anyone who can reach it can queue jobs on your fleet, cloud servers included (within your spending caps).
          </p>
        )}
      </div>
    );
  }
  if (status.error) {
    return (
      <p className="notice notice-bad" role="alert" data-testid="gateway-state" data-running="false">
        Not serving: {status.error}
      </p>
    );
  }
  return (
    <p className="field-hint" data-testid="gateway-state" data-running="false">
      Not serving.
    </p>
  );
}
