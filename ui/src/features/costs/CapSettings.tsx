// The daily and monthly cloud spending caps: what is used of each (spent + reserved by jobs in flight) as a bar that
// warns at 80 % and says so at 100 %, and the caps as dollar fields saved exactly to the micro-dollar.
import { useEffect, type FormEvent } from "react";
import { commands, type CapStatus } from "../../bindings";
import { Button } from "../../components/Button";
import { ProgressBar } from "../../components/ProgressBar";
import { call } from "../../lib/errors";
import { useSettingsForm } from "../../lib/settingsForm";
import { dollarsExact, formatMoney, parseDollars } from "../../lib/format";
import { CAP_REACHED, capLevel, DEFAULT_CAPS } from "./costsModel";

type Which = "daily" | "monthly";

function CapMeter({ which, status }: { which: Which; status: CapStatus }) {
  const cap = (which === "daily" ? status.caps.daily_micros : status.caps.monthly_micros) ?? DEFAULT_CAPS[`${which}_micros`];
  const spent = which === "daily" ? status.spent_today_micros : status.spent_month_micros;
  const reserved = which === "daily" ? status.reserved_today_micros : status.reserved_month_micros;
  const pct = which === "daily" ? status.daily_percent : status.monthly_percent;
  const level = capLevel(pct);
  const period = which === "daily" ? "today" : "this month";
  const title = which === "daily" ? "Daily cap" : "Monthly cap";
  return (
    <div className={`cap-meter cap-${level}`} data-testid={`cap-${which}`} data-level={level} data-percent={pct}>
      <div className="cap-meter-head">
        <strong>{title}</strong>
        <span className="cap-meter-numbers" data-testid={`cap-${which}-text`}>
          {formatMoney(spent)} spent{reserved > 0 ? ` + ${formatMoney(reserved)} reserved` : ""} of {formatMoney(cap)} {period} · {pct} %
        </span>
      </div>
      <ProgressBar
        value={Math.min(100, pct) / 100}
        label={`${title}: ${pct} % used ${period}`}
        tone={level === "full" ? "bad" : level === "warn" ? "warn" : "accent"}
        testId={`cap-${which}-bar`}
      />
      {cap === 0 && level !== "full" && (
        <p className="field-hint" data-testid={`cap-${which}-zero`}>
          A cap of $0.00 allows no cloud spending: every job runs on your local GPU.
        </p>
      )}
      {level === "full" ? (
        <p className="notice notice-bad cap-note" role="alert" data-testid={`cap-${which}-reached`}>
          {CAP_REACHED[which]}
        </p>
      ) : level === "warn" ? (
        <p className="notice notice-warn cap-note" role="status" data-testid={`cap-${which}-warning`}>
          {pct} % of the {which} cloud spending limit is used.
        </p>
      ) : null}
    </div>
  );
}

export function CapSettings({ status, onSaved }: { status: CapStatus; onSaved: (status: CapStatus) => void }) {
  const daily = status.caps.daily_micros ?? DEFAULT_CAPS.daily_micros;
  const monthly = status.caps.monthly_micros ?? DEFAULT_CAPS.monthly_micros;
  const { fields, setFields, set, saving, saved, error, invalid, save: store } = useSettingsForm(() => ({
    daily: dollarsExact(daily),
    monthly: dollarsExact(monthly),
  }));

  // New caps from the core (e.g. set from the CLI and reloaded) replace the fields.
  useEffect(() => setFields({ daily: dollarsExact(daily), monthly: dollarsExact(monthly) }), [daily, monthly, setFields]);

  async function save(e: FormEvent) {
    e.preventDefault();
    const d = parseDollars(fields.daily);
    const m = parseDollars(fields.monthly);
    if (d == null) return invalid("Type the daily cap in dollars, e.g. 5.00 (0 keeps every job local).");
    if (m == null) return invalid("Type the monthly cap in dollars, e.g. 50.00 (0 keeps every job local).");
    const next = await store(() => call(commands.costsSetCaps({ daily_micros: d, monthly_micros: m })), "The caps were not saved.");
    if (next) onSaved(next);
  }

  return (
    <form className="card cap-settings" aria-labelledby="cap-settings-title" data-testid="cap-settings" onSubmit={save} noValidate>
      <h2 id="cap-settings-title" className="card-title">
        Cloud spending caps
      </h2>
      <CapMeter which="daily" status={status} />
      <CapMeter which="monthly" status={status} />
      <div className="cap-fields">
        <label className="inline-field">
          Daily cap $
          <input
            type="text"
            inputMode="decimal"
            className="cap-input"
            data-testid="cap-daily-input"
            aria-label="Daily cloud spending cap in dollars"
            value={fields.daily}
            onChange={(e) => set("daily", e.target.value)}
          />
        </label>
        <label className="inline-field">
          Monthly cap $
          <input
            type="text"
            inputMode="decimal"
            className="cap-input"
            data-testid="cap-monthly-input"
            aria-label="Monthly cloud spending cap in dollars"
            value={fields.monthly}
            onChange={(e) => set("monthly", e.target.value)}
          />
        </label>
        <Button type="submit" size="sm" busy={saving} data-testid="caps-save">
          Save
        </Button>
      </div>
      <p className="field-hint">
        Before a job goes to a paid backend its estimated cost is reserved against both caps. At a cap, jobs run on your
        local GPU or wait. A cap of 0 keeps every job local.
      </p>
      {error && (
        <p className="notice notice-bad" role="alert" data-testid="caps-error">
          {error}
        </p>
      )}
      {saved && (
        <p className="field-hint" role="status" data-testid="caps-saved">
          Saved.
        </p>
      )}
    </form>
  );
}
