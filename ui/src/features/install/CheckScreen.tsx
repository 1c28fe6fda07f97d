import { open } from "@tauri-apps/plugin-dialog";
import { useEffect, useState } from "react";
import { commands, type Check, type InstallCheck, type PackInfo, type Plan } from "../../bindings";
import { Badge } from "../../components/Badge";
import { Button } from "../../components/Button";
import { Field } from "../../components/Field";
import { Loading, Spinner } from "../../components/Spinner";
import { useToast } from "../../components/Toast";
import { errorMessage } from "../../lib/errors";
import { formatGB, plural } from "../../lib/format";
import { humanBytes } from "../downloads/downloadFormat";
import { useInstall } from "./InstallContext";
import {
  CHECK_ICONS,
  CHECK_LEVEL_LABELS,
  estimateText,
  gpuSummary,
  installBlocker,
  osName,
  portError,
  toInstallRequest,
  togglePack,
  VARIANT_OPTIONS,
  type InstallForm,
} from "./installModel";
import { useInstallCheck } from "./useInstallCheck";

type Props = {
  form: InstallForm;
  /** A note above the form (e.g. that the last install was cancelled). */
  note?: string | null;
};

/** Screen 1: this computer, the checks, the choices, and the plan for them; Install starts it. */
export function CheckScreen({ form, note }: Props) {
  const { setForm, run } = useInstall();
  const toast = useToast();
  const [retryKey, setRetryKey] = useState(0);
  const [starting, setStarting] = useState(false);
  const [startError, setStartError] = useState<string | null>(null);
  const request = toInstallRequest(form);
  const { check, checking, error } = useInstallCheck(request, retryKey);
  const blocker = checking ? "Checking your choices…" : installBlocker(check, form);
  const port = portError(form.port);

  // Packs the manifest does not offer (a default, or a pack from an older manifest) are dropped.
  useEffect(() => {
    if (!check) return;
    const known = new Set(check.packs.map((p) => p.id));
    setForm((f) => (f && f.packs.some((id) => !known.has(id)) ? { ...f, packs: f.packs.filter((id) => known.has(id)) } : f));
  }, [check, setForm]);

  const update = (patch: Partial<InstallForm>) => {
    setStartError(null);
    setForm((f) => (f ? { ...f, ...patch } : f));
  };

  async function browse(field: "installPath" | "modelsDir", title: string) {
    try {
      const path = await open({ title, directory: true, multiple: false, defaultPath: form[field] || undefined });
      if (typeof path === "string") update({ [field]: path });
    } catch (e) {
      toast.show(errorMessage(e), { kind: "error", title: "Could not open the folder picker" });
    }
  }

  async function start() {
    setStarting(true);
    setStartError(null);
    try {
      await run(() => commands.installStart(request));
    } catch (e) {
      setStartError(errorMessage(e));
    } finally {
      setStarting(false);
    }
  }

  return (
    <div className="install-check" data-testid="install-check-screen">
      {note && (
        <p className="notice notice-warn install-note" role="status">
          {note}
        </p>
      )}
      <div className="install-columns">
        <section className="card" aria-labelledby="install-system-title">
          <h2 id="install-system-title" className="card-title">
            This computer
          </h2>
          {check ? (
            <SystemPanel check={check} />
          ) : error ? null : (
            <Loading>Checking this computer…</Loading>
          )}
          {error && (
            <div className="notice notice-bad list-error" role="alert" data-testid="install-check-error">
              <p>
                <strong>The check did not run.</strong> {error}
              </p>
              <Button size="sm" onClick={() => setRetryKey((k) => k + 1)}>
                Try again
              </Button>
            </div>
          )}
        </section>

        <section className="card form-stack" aria-labelledby="install-choices-title">
          <h2 id="install-choices-title" className="card-title">
            What to install
          </h2>
          <Field id="install-path" label="Install folder" hint="ComfyUI and its Python environment go here; the folder is created when missing.">
            {(p) => (
              <div className="input-with-button">
                <input
                  {...p}
                  type="text"
                  data-testid="install-path"
                  value={form.installPath}
                  spellCheck={false}
                  onChange={(e) => update({ installPath: e.target.value })}
                />
                <Button onClick={() => void browse("installPath", "Choose the install folder")} data-testid="install-path-browse" aria-label="Browse for the install folder">
                  Browse…
                </Button>
              </div>
            )}
          </Field>

          <div className="field-row">
            <Field id="install-variant" label="GPU variant" hint="Which PyTorch build to install. Auto picks it from your GPU and driver.">
              {(p) => (
                <select {...p} data-testid="install-variant" value={form.variant} onChange={(e) => update({ variant: e.target.value })}>
                  {VARIANT_OPTIONS.map((v) => (
                    <option key={v.value} value={v.value}>
                      {v.label}
                    </option>
                  ))}
                </select>
              )}
            </Field>
            <Field id="install-port" label="Port" hint="Where ComfyUI listens on this computer." error={port ?? undefined}>
              {(p) => (
                <input
                  {...p}
                  type="text"
                  inputMode="numeric"
                  data-testid="install-port"
                  value={form.port}
                  placeholder="8188"
                  onChange={(e) => update({ port: e.target.value })}
                />
              )}
            </Field>
          </div>

          <fieldset className="install-packs">
            <legend className="field-label">Model packs</legend>
            {check ? (
              check.packs.length === 0 ? (
                <p className="muted">No model packs are offered.</p>
              ) : (
                check.packs.map((pack) => (
                  <PackOption
                    key={pack.id}
                    pack={pack}
                    checked={form.packs.includes(pack.id)}
                    onChange={(on) => update({ packs: togglePack(form.packs, pack.id, on) })}
                  />
                ))
              )
            ) : (
              <p className="muted small">The packs appear after the check.</p>
            )}
          </fieldset>

          <Field
            id="install-models-dir"
            label="Existing models folder to reuse (optional)"
            hint="Models you already have elsewhere stay where they are; ComfyUI is told to look there too. Nothing is copied."
          >
            {(p) => (
              <div className="input-with-button">
                <input
                  {...p}
                  type="text"
                  data-testid="install-models-dir"
                  value={form.modelsDir}
                  spellCheck={false}
                  placeholder="e.g. /data/ComfyUI/models"
                  onChange={(e) => update({ modelsDir: e.target.value })}
                />
                <Button onClick={() => void browse("modelsDir", "Choose a models folder to reuse")} aria-label="Browse for a models folder to reuse">
                  Browse…
                </Button>
              </div>
            )}
          </Field>
        </section>
      </div>

      <section className="card" aria-labelledby="install-plan-title" aria-busy={checking || undefined}>
        <header className="section-header">
          <h2 id="install-plan-title" className="card-title install-plan-title">
            The plan {checking && <Spinner label="Updating the plan" />}
          </h2>
        </header>
        {check?.plan_error && (
          <p className="notice notice-bad" role="alert" data-testid="install-plan-error" data-code={check.plan_error.code}>
            {check.plan_error.message}
          </p>
        )}
        {check?.plan && <PlanView plan={check.plan} version={check.comfyui_version} />}
        {check && check.done_steps.length > 0 && (
          <p className="notice install-resume-note" data-testid="install-done-steps">
            An earlier install here is {plural(check.done_steps.length, "step")} along; Install continues it.
          </p>
        )}
        {!check && !error && <p className="muted">The plan appears after the check.</p>}

        <div className="install-actions">
          {startError && (
            <p className="notice notice-bad" role="alert" data-testid="install-start-error">
              {startError}
            </p>
          )}
          {blocker && !checking && check && <p className="muted small">{blocker}</p>}
          <span className="spacer" />
          <Button variant="primary" data-testid="install-start" disabled={blocker != null} busy={starting} onClick={() => void start()}>
            Install
          </Button>
        </div>
      </section>
    </div>
  );
}

function SystemPanel({ check }: { check: InstallCheck }) {
  const { facts, disk } = check;
  return (
    <>
      <dl className="facts install-facts" data-testid="install-system">
        <dt>GPU</dt>
        <dd data-testid="install-gpu">{gpuSummary(facts.gpu)}</dd>
        <dt>CPU</dt>
        <dd>
          {facts.cpu} · {plural(facts.cpu_cores, "core")}
        </dd>
        <dt>Memory</dt>
        <dd>
          {formatGB(facts.ram_total)} GB ({formatGB(facts.ram_available)} GB free)
        </dd>
        <dt>System</dt>
        <dd>
          {osName(facts.os)} · {facts.os_version} · {facts.arch}
        </dd>
        <dt>Free disk</dt>
        <dd data-testid="install-disk">
          {disk ? (
            <>
              {humanBytes(disk.available)} free of {humanBytes(disk.total)}
              <span className="muted small path">on {disk.mount_point}</span>
            </>
          ) : (
            <span className="muted">Unknown until a folder is chosen</span>
          )}
        </dd>
      </dl>
      <ul className="install-checks" aria-label="Checks">
        {check.checks.map((c) => (
          <CheckRow key={c.id} check={c} />
        ))}
      </ul>
    </>
  );
}

function CheckRow({ check }: { check: Check }) {
  return (
    <li className={`install-check-row install-level-${check.level}`} data-testid={`install-check-${check.id}`} data-level={check.level}>
      <span className="install-check-icon" aria-hidden="true">
        {CHECK_ICONS[check.level]}
      </span>
      <span className="sr-only">{CHECK_LEVEL_LABELS[check.level]}:</span>
      <span>
        <strong>{check.label}</strong> <span className="muted">{check.detail}</span>
      </span>
    </li>
  );
}

function PackOption({ pack, checked, onChange }: { pack: PackInfo; checked: boolean; onChange: (on: boolean) => void }) {
  const hintId = `install-pack-${pack.id}-hint`;
  return (
    <label className="check-row">
      <input
        type="checkbox"
        data-testid={`install-pack-${pack.id}`}
        checked={checked}
        aria-describedby={hintId}
        onChange={(e) => onChange(e.target.checked)}
      />
      <span>
        <span className="check-label">
          {pack.name} <span className="muted">· {humanBytes(pack.size)}</span>
          {pack.gated && (
            <Badge tone="warn" className="install-pack-badge" title="Needs a Hugging Face token and the licence accepted">
              gated
            </Badge>
          )}
          {pack.min_vram_gb != null && (
            <Badge tone="neutral" className="install-pack-badge">
              {pack.min_vram_gb} GB VRAM+
            </Badge>
          )}
        </span>
        <span id={hintId} className="field-hint">
          {pack.description}
          {pack.gated && " Gated: accept its licence on Hugging Face and add your token to ComfyFleet first."}
        </span>
      </span>
    </label>
  );
}

function PlanView({ plan, version }: { plan: Plan; version: string }) {
  const tight = plan.disk_needed > plan.disk_available;
  return (
    <div className="install-plan" data-testid="install-plan" data-variant={plan.variant} data-recommendation={plan.recommendation}>
      {plan.recommendation === "cloud" ? (
        <p className="notice notice-warn" data-testid="install-recommendation" data-recommendation="cloud">
          <strong>Cloud is recommended for this computer.</strong> {plan.recommendation_reason} You can still install here.
        </p>
      ) : (
        <p className="notice install-ok-note" data-testid="install-recommendation" data-recommendation="local">
          <strong>This computer can run ComfyUI.</strong> {plan.recommendation_reason}
        </p>
      )}
      <dl className="facts install-plan-facts">
        <dt>ComfyUI</dt>
        <dd>{version}</dd>
        <dt>PyTorch for</dt>
        <dd>
          <span data-testid="install-plan-variant">{plan.variant}</span>
          <span className="muted small">{plan.variant_reason}</span>
        </dd>
        <dt>Download</dt>
        <dd data-testid="install-plan-download">{humanBytes(plan.download_bytes)}</dd>
        <dt>Disk</dt>
        <dd data-testid="install-plan-disk" className={tight ? "install-tight" : undefined}>
          {humanBytes(plan.disk_needed)} needed · {humanBytes(plan.disk_available)} free
        </dd>
        <dt>Time</dt>
        <dd data-testid="install-plan-time">{estimateText(plan.estimated_secs)}</dd>
      </dl>
      <ol className="install-plan-steps" aria-label="Steps">
        {plan.steps.map((s) => (
          <li key={s.id} data-testid={`install-plan-step-${s.id}`}>
            <span>{s.title}</span>
            <span className="muted small install-sizes">
              {s.download > 0 ? `${humanBytes(s.download)} download` : "no download"}
              {s.disk > 0 && ` · ${humanBytes(s.disk)} on disk`}
            </span>
          </li>
        ))}
      </ol>
      {plan.warnings.length > 0 && (
        <ul className="install-warnings" data-testid="install-plan-warnings">
          {plan.warnings.map((w) => (
            <li key={w} className="notice notice-warn">
              {w}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
