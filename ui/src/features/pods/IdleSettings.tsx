// The idle auto-stop rule for pods, as one sentence a person edits: "Stop idle pods after 5 min; pods costing
// ≥ $1.00/h after 2 min". Minutes and dollars are converted to the core's milliseconds and micro-dollars exactly.
import type { FormEvent } from "react";
import { commands, type IdleConfig } from "../../bindings";
import { Button } from "../../components/Button";
import { call } from "../../lib/errors";
import { useSettingsForm } from "../../lib/settingsForm";
import { dollarsText, fullIdleConfig, minutesText, parseDollars, parseMinutes } from "./podFormat";

type Fields = { enabled: boolean; idleMin: string; thresholdDollars: string; expensiveMin: string };

function fieldsOf(config: IdleConfig): Fields {
  const c = fullIdleConfig(config);
  return {
    enabled: c.enabled,
    idleMin: minutesText(c.idle_ms),
    thresholdDollars: dollarsText(c.expensive_threshold_micros_per_hr),
    expensiveMin: minutesText(c.expensive_idle_ms),
  };
}

/** The config the fields describe, or what is wrong with them. */
export function idleConfigOf(f: Fields): { config: Required<IdleConfig> } | { error: string } {
  const idle = parseMinutes(f.idleMin);
  const expensive = parseMinutes(f.expensiveMin);
  const threshold = parseDollars(f.thresholdDollars);
  if (idle == null || idle <= 0) return { error: "Type the idle time in minutes, more than 0 (e.g. 5)." };
  if (expensive == null || expensive <= 0) return { error: "Type the idle time for expensive pods in minutes, more than 0 (e.g. 2)." };
  if (threshold == null) return { error: "Type the price per hour in dollars (e.g. 1.00)." };
  return { config: { enabled: f.enabled, idle_ms: idle, expensive_threshold_micros_per_hr: threshold, expensive_idle_ms: expensive } };
}

export function IdleSettings({ config, onSaved }: { config: IdleConfig; onSaved: (config: IdleConfig) => void }) {
  const { fields, setFields, set, saving, saved, error, invalid, save: store } = useSettingsForm<Fields>(() => fieldsOf(config));

  async function save(e: FormEvent) {
    e.preventDefault();
    const parsed = idleConfigOf(fields);
    if ("error" in parsed) return invalid(parsed.error);
    const stored = await store(() => call(commands.podsIdleSet(parsed.config)), "The idle settings were not saved.");
    if (stored) {
      setFields(fieldsOf(stored));
      onSaved(stored);
    }
  }

  const off = !fields.enabled;
  return (
    <form className="card idle-settings" aria-label="Idle auto-stop" data-testid="idle-settings" onSubmit={save} noValidate>
      <h3 className="subsection-title">Idle auto-stop</h3>
      <div className="idle-line">
        <label className="inline-field">
          <input type="checkbox" data-testid="idle-enabled" checked={fields.enabled} onChange={(e) => set("enabled", e.target.checked)} />
          Stop idle pods after
        </label>
        <input
          type="text"
          inputMode="decimal"
          className="idle-number"
          aria-label="Minutes without a job before a pod stops"
          data-testid="idle-minutes"
          disabled={off}
          value={fields.idleMin}
          onChange={(e) => set("idleMin", e.target.value)}
        />
        <span>min; pods costing ≥ $</span>
        <input
          type="text"
          inputMode="decimal"
          className="idle-number"
          aria-label="Price per hour (dollars) from which a pod counts as expensive"
          data-testid="idle-threshold"
          disabled={off}
          value={fields.thresholdDollars}
          onChange={(e) => set("thresholdDollars", e.target.value)}
        />
        <span>/h after</span>
        <input
          type="text"
          inputMode="decimal"
          className="idle-number"
          aria-label="Minutes without a job before an expensive pod stops"
          data-testid="idle-expensive-minutes"
          disabled={off}
          value={fields.expensiveMin}
          onChange={(e) => set("expensiveMin", e.target.value)}
        />
        <span>min</span>
        <span className="spacer" />
        <Button type="submit" size="sm" busy={saving} data-testid="idle-save">
          Save
        </Button>
      </div>
      <p className="field-hint">
        {off
          ? "Pods keep running, and billing, until you stop them."
          : "A pod is idle when no job has run on it for that long. Its disk is kept; Start brings it back."}
      </p>
      {error && (
        <p className="notice notice-bad" role="alert" data-testid="idle-settings-error">
          {error}
        </p>
      )}
      {saved && (
        <p className="field-hint" role="status" data-testid="idle-saved">
          Saved.
        </p>
      )}
    </form>
  );
}
