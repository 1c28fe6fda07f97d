// Pure helpers of the cost monitor: months, chart rows from the report's day/backend groups, breakdown labels and
// cap levels. Money stays in integer micro-dollars throughout; only the chart's pixels are drawn from it.
import type { Group, Server, Totals } from "../../bindings";

/** The backends the core reports, in the order they stack (cheapest at the bottom). */
export const BACKENDS = ["local", "lan", "serverless", "pod"] as const;
export type Backend = (typeof BACKENDS)[number];

export const BACKEND_LABELS: Record<Backend, string> = {
  local: "Local GPU",
  lan: "LAN servers",
  serverless: "RunPod serverless",
  pod: "RunPod pods",
};

/** Bar colours per backend (readable on the dark theme, distinct for colour-blind people: blue, teal, orange, purple). */
export const BACKEND_COLORS: Record<Backend, string> = {
  local: "#7aa2ff",
  lan: "#46d1c0",
  serverless: "#f5a04a",
  pod: "#c79bff",
};

export function isBackend(key: string): key is Backend {
  return (BACKENDS as readonly string[]).includes(key);
}

const MONTH_NAMES = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];

/** "2026-12" -> [2026, 12]; null when it is not a month. */
export function parseMonth(month: string): [number, number] | null {
  const m = /^(\d{4})-(\d{2})$/.exec(month);
  if (!m) return null;
  const y = Number(m[1]);
  const mo = Number(m[2]);
  return mo >= 1 && mo <= 12 ? [y, mo] : null;
}

/** The month `delta` months from `month`: ("2026-01", -1) -> "2025-12". */
export function shiftMonth(month: string, delta: number): string {
  const p = parseMonth(month);
  if (!p) return month;
  const index = p[0] * 12 + (p[1] - 1) + delta;
  const y = Math.floor(index / 12);
  const mo = index - y * 12 + 1;
  return `${String(y).padStart(4, "0")}-${String(mo).padStart(2, "0")}`;
}

/** "2026-12" -> "December 2026". */
export function monthLabel(month: string): string {
  const p = parseMonth(month);
  return p ? `${MONTH_NAMES[p[1] - 1]} ${p[0]}` : month;
}

/** How many days `month` has (leap years included). */
export function daysInMonth(month: string): number {
  const p = parseMonth(month);
  if (!p) return 0;
  const [y, mo] = p;
  if (mo === 2) return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(mo) ? 30 : 31;
}

/** One day of the chart: spend per backend in micro-dollars, and the day's total. */
export type DayRow = { day: string; label: string; total: number } & Record<Backend, number>;

/** "2026-12-05" -> "5" (the chart's axis label). */
export function dayOfMonth(day: string): string {
  return String(Number(day.slice(8, 10)));
}

function emptyRow(day: string): DayRow {
  return { day, label: dayOfMonth(day), total: 0, local: 0, lan: 0, serverless: 0, pod: 0 };
}

/**
 * The report's `by_day_backend` groups (keyed "YYYY-MM-DD/backend") as one row per day, with each backend's spend.
 * With `month`, every day of that month has a row (zeros where nothing ran) so the chart's axis is the whole month;
 * without it, only days that appear. Rows are in date order; groups of unknown backends or other months are skipped.
 */
export function chartRows(groups: Group[], month?: string): DayRow[] {
  const rows = new Map<string, DayRow>();
  if (month) {
    for (let d = 1; d <= daysInMonth(month); d++) {
      const day = `${month}-${String(d).padStart(2, "0")}`;
      rows.set(day, emptyRow(day));
    }
  }
  for (const g of groups) {
    const slash = g.key.indexOf("/");
    if (slash < 0) continue;
    const day = g.key.slice(0, slash);
    const backend = g.key.slice(slash + 1);
    if (!isBackend(backend) || !/^\d{4}-\d{2}-\d{2}$/.test(day)) continue;
    if (month && !day.startsWith(`${month}-`)) continue;
    const row = rows.get(day) ?? emptyRow(day);
    row[backend] += g.totals.spent_micros;
    row.total += g.totals.spent_micros;
    rows.set(day, row);
  }
  return [...rows.values()].sort((a, b) => (a.day < b.day ? -1 : a.day > b.day ? 1 : 0));
}

/** Which backends have any spend in these rows (the chart draws only those, in stacking order). */
export function backendsWithSpend(rows: DayRow[]): Backend[] {
  return BACKENDS.filter((b) => rows.some((r) => r[b] > 0));
}

/** A row of the breakdown table: what it is called and its totals. */
export type BreakdownRow = { key: string; label: string; kind: "backend" | "server" | "pod" | "removed"; totals: Totals };

/** The by-backend groups in stacking order, labelled. */
export function backendRows(groups: Group[]): BreakdownRow[] {
  const rank = (k: string) => (isBackend(k) ? BACKENDS.indexOf(k) : BACKENDS.length);
  return [...groups]
    .sort((a, b) => rank(a.key) - rank(b.key))
    .map((g) => ({ key: g.key, label: isBackend(g.key) ? BACKEND_LABELS[g.key] : g.key, kind: "backend", totals: g.totals }));
}

/**
 * The by-server groups, named from the server list: a server's name, "Pod <id>" for pod uptime ("pod:<id>"), or the
 * id marked as removed when the server is no longer in the list. Most spent first, then by name.
 */
export function serverRows(groups: Group[], servers: Server[] | null): BreakdownRow[] {
  const names = new Map((servers ?? []).map((s) => [s.id, s.name]));
  return groups
    .map((g): BreakdownRow => {
      if (g.key.startsWith("pod:")) return { key: g.key, label: `Pod ${g.key.slice(4)}`, kind: "pod", totals: g.totals };
      const name = names.get(g.key);
      return name != null
        ? { key: g.key, label: name, kind: "server", totals: g.totals }
        : { key: g.key, label: `${g.key} (removed)`, kind: "removed", totals: g.totals };
    })
    .sort((a, b) => b.totals.spent_micros - a.totals.spent_micros || a.label.localeCompare(b.label));
}

export type CapLevel = "ok" | "warn" | "full";

/** At 80 % of a cap the user is warned; at 100 % cloud jobs stop. */
export function capLevel(percent: number): CapLevel {
  return percent >= 100 ? "full" : percent >= 80 ? "warn" : "ok";
}

export const CAP_REACHED: Record<"daily" | "monthly", string> = {
  daily: "Daily cloud spending limit reached — using your local GPU, or try again tomorrow",
  monthly: "Monthly cloud spending limit reached — using your local GPU, or try again next month",
};

/** The core's defaults: $5 a day, $50 a month. */
export const DEFAULT_CAPS = { daily_micros: 5_000_000, monthly_micros: 50_000_000 };

/** A per-second price as dollars per hour, exactly: 310 µ$/s -> 1_116_000 µ$/h. */
export function perHourMicros(perSecMicros: number): number {
  return perSecMicros * 3600;
}
