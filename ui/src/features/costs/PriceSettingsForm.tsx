// What the app cannot know about prices: the electricity price for local jobs, the cloud GPU local jobs are
// compared with for "saved", and an hourly rate for each LAN server (a studio's internal cost).
import { useEffect, type FormEvent } from "react";
import { commands, type PriceSettings, type Server, type ServerlessClass } from "../../bindings";
import { Button } from "../../components/Button";
import { call } from "../../lib/errors";
import { useSettingsForm } from "../../lib/settingsForm";
import { dollarsExact, formatPricePerHour, parseDollars } from "../../lib/format";
import { useServers } from "../servers/ServersContext";
import { perHourMicros } from "./costsModel";

type Fields = { electricity: string; referenceClass: string; speed: string; lan: Record<string, string> };

function fieldsOf(p: PriceSettings): Fields {
  const lan: Record<string, string> = {};
  for (const [id, micros] of Object.entries(p.lan_per_hr_micros ?? {})) lan[id] = dollarsExact(micros ?? 0);
  return {
    electricity: dollarsExact(p.electricity_micros_per_kwh ?? 0),
    referenceClass: p.reference_class ?? "ADA_24",
    speed: String(p.reference_speed_percent ?? 100),
    lan,
  };
}

/** A server the ledger counts as a LAN machine (as the core does): tagged lan, or not this computer, not cloud. */
export function isLanServer(s: Server): boolean {
  const tag = (t: string) => s.tags.some((x) => x.toLowerCase() === t);
  if (s.kind === "runpod_serverless" || tag("cloud") || tag("runpod")) return false;
  if (tag("lan")) return true;
  if (tag("local")) return false;
  try {
    const host = new URL(s.url).hostname.replace(/^\[|\]$/g, "");
    return !(host === "localhost" || host === "::1" || /^127\./.test(host));
  } catch {
    return false;
  }
}

/**
 * `classes`: RunPod's serverless GPU classes at today's prices, from the core (null until they load: the reference
 * GPU then offers only the current choice).
 */
export function PriceSettingsForm({
  prices,
  classes,
  onSaved,
}: {
  prices: PriceSettings;
  classes: ServerlessClass[] | null;
  onSaved: (p: PriceSettings) => void;
}) {
  const { servers } = useServers();
  const lanServers = (servers ?? []).filter(isLanServer);
  const { fields, setFields, set, saving, saved, error, invalid, save: store } = useSettingsForm<Fields>(() => fieldsOf(prices));

  useEffect(() => setFields(fieldsOf(prices)), [prices, setFields]);

  async function save(e: FormEvent) {
    e.preventDefault();
    const electricity = parseDollars(fields.electricity);
    const speed = /^\d+$/.test(fields.speed.trim()) ? Number(fields.speed.trim()) : NaN;
    if (electricity == null) return invalid("Type the electricity price in dollars per kWh, e.g. 0.15 (0 if you do not pay for it).");
    if (!(speed >= 1 && speed <= 1000)) return invalid("Type the reference GPU's time as a whole percent of yours, 1–1000 (100 = as fast).");
    const lan: Record<string, number> = {};
    for (const [id, text] of Object.entries(fields.lan)) {
      if (text.trim() === "") continue;
      const micros = parseDollars(text);
      if (micros == null) return invalid(`Type each LAN server's rate in dollars per hour, e.g. 1.20 ("${text}" is not).`);
      if (micros > 0) lan[id] = micros;
    }
    const stored = await store(
      () =>
        call(
          commands.costsSetPrices({
            ...prices,
            electricity_micros_per_kwh: electricity,
            reference_class: fields.referenceClass,
            reference_speed_percent: speed,
            lan_per_hr_micros: lan,
          }),
        ),
      "The prices were not saved.",
    );
    if (stored) onSaved(stored);
  }

  const known = (classes ?? []).some((c) => c.id === fields.referenceClass);
  const free = parseDollars(fields.electricity) === 0;
  return (
    <form className="card price-settings" aria-labelledby="price-settings-title" data-testid="price-settings" onSubmit={save} noValidate>
      <h2 id="price-settings-title" className="card-title">
        Prices
      </h2>
      <div className="price-fields">
        <label className="field-label" htmlFor="price-electricity">
          Electricity price per kWh ($)
        </label>
        <input
          id="price-electricity"
          type="text"
          inputMode="decimal"
          className="cap-input"
          data-testid="price-electricity"
          value={fields.electricity}
          onChange={(e) => set("electricity", e.target.value)}
        />
        <p className="field-hint" data-testid="price-electricity-hint">
          {free
            ? "Local jobs are free unless you set a price. With a price, each local job costs its GPU's measured power draw × this price."
            : "Each local job costs its GPU's measured power draw × this price."}
        </p>
        <label className="field-label" htmlFor="price-reference">
          Reference cloud GPU for savings
        </label>
        <select id="price-reference" data-testid="price-reference" value={fields.referenceClass} onChange={(e) => set("referenceClass", e.target.value)}>
          {!known && <option value={fields.referenceClass}>{fields.referenceClass}</option>}
          {(classes ?? []).map((c) => (
            <option key={c.id} value={c.id}>
              {c.gpus} · RunPod serverless {formatPricePerHour(perHourMicros(c.per_sec_micros))}
            </option>
          ))}
        </select>
        <label className="field-label" htmlFor="price-speed">
          Its time as a percent of your GPU's
        </label>
        <input
          id="price-speed"
          type="text"
          inputMode="numeric"
          className="cap-input"
          data-testid="price-speed"
          value={fields.speed}
          onChange={(e) => set("speed", e.target.value)}
        />
        <p className="field-hint">100 = as fast as your GPU; 50 = twice as fast. A local job saves what it would have cost there.</p>
        {lanServers.length > 0 && (
          <fieldset className="lan-rates" data-testid="lan-rates">
            <legend className="field-label">LAN servers' hourly rate ($/h, empty = free)</legend>
            {lanServers.map((s) => (
              <label key={s.id} className="lan-rate">
                <span>{s.name}</span>
                <input
                  type="text"
                  inputMode="decimal"
                  className="cap-input"
                  data-testid={`lan-rate-${s.id}`}
                  value={fields.lan[s.id] ?? ""}
                  onChange={(e) => set("lan", { ...fields.lan, [s.id]: e.target.value })}
                />
              </label>
            ))}
            <p className="field-hint">A studio machine's internal cost: each job there is charged its run time at this rate.</p>
          </fieldset>
        )}
      </div>
      <Button type="submit" size="sm" busy={saving} data-testid="prices-save">
        Save
      </Button>
      {error && (
        <p className="notice notice-bad" role="alert" data-testid="prices-error">
          {error}
        </p>
      )}
      {saved && (
        <p className="field-hint" role="status" data-testid="prices-saved">
          Saved.
        </p>
      )}
    </form>
  );
}
