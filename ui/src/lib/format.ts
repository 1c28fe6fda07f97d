// Number and time formatting shared by every page.

const GIB = 1024 ** 3;

/** Bytes as GB with one decimal when it matters: 25769803776 -> "24", 21582982758 -> "20.1". */
export function formatGB(bytes: number): string {
  const gb = bytes / GIB;
  const rounded = Math.round(gb * 10) / 10;
  return Number.isInteger(rounded) ? String(rounded) : rounded.toFixed(1);
}

/** "just now", "5 min ago", "3 h ago", "2 days ago". */
export function timeAgo(thenMs: number, nowMs: number = Date.now()): string {
  const s = Math.max(0, Math.round((nowMs - thenMs) / 1000));
  if (s < 45) return "just now";
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.round(m / 60);
  if (h < 36) return `${h} h ago`;
  const d = Math.round(h / 24);
  return `${d} day${d === 1 ? "" : "s"} ago`;
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** A duration for people: "850 ms", "12.4 s", "2 min 5 s", "1 h 3 min". */
export function formatDuration(ms: number): string {
  const t = Math.max(0, ms);
  if (t < 1000) return `${Math.round(t)} ms`;
  if (t < 60_000) {
    const s = Math.round(t / 100) / 10;
    return s < 10 ? `${s.toFixed(1)} s` : `${Math.round(s)} s`;
  }
  const totalS = Math.round(t / 1000);
  if (totalS < 3600) {
    const m = Math.floor(totalS / 60);
    const s = totalS % 60;
    return s === 0 ? `${m} min` : `${m} min ${s} s`;
  }
  const totalM = Math.round(totalS / 60);
  const h = Math.floor(totalM / 60);
  const m = totalM % 60;
  return m === 0 ? `${h} h` : `${h} h ${m} min`;
}

/** A 0..1 fraction as a whole percentage, clamped: 0.426 -> 43. */
export function percent(fraction: number): number {
  if (!Number.isFinite(fraction)) return 0;
  return Math.round(Math.min(1, Math.max(0, fraction)) * 100);
}

// ---------- money: integer micro-dollars, never floats ----------

export const MICROS_PER_DOLLAR = 1_000_000;

/** Micro-dollars as dollars with 2 decimals, or 3 when the third one matters: 690_000 -> "$0.69", 345_000 -> "$0.345". */
export function formatDollars(micros: number): string {
  return `$${dollarsText(micros)}`;
}

/** A price per hour: 690_000 -> "$0.69/h". */
export function formatPricePerHour(micros: number): string {
  return `${formatDollars(micros)}/h`;
}

/** The number part of `formatDollars`, for an input field: 1_000_000 -> "1.00". */
export function dollarsText(micros: number): string {
  const m = Math.max(0, Math.round(micros));
  // Round to tenths of a cent (integer arithmetic), then drop a trailing zero down to two decimals.
  const mills = Math.round(m / 1000);
  const whole = Math.floor(mills / 1000);
  const frac = String(mills % 1000).padStart(3, "0");
  return `${whole}.${frac.endsWith("0") ? frac.slice(0, 2) : frac}`;
}

/**
 * A decimal number typed by a person, scaled by 10^`decimals` into an integer without going through floats:
 * parseScaled("1.5", 6) -> 1_500_000. Null when it is not a plain non-negative number or has more decimals.
 */
export function parseScaled(text: string, decimals: number): number | null {
  const t = text.trim();
  const m = /^(\d*)(?:[.,](\d*))?$/.exec(t);
  if (!m || (m[1] === "" && (m[2] ?? "") === "")) return null;
  const frac = m[2] ?? "";
  if (frac.length > decimals) return null;
  const whole = m[1] === "" ? 0 : Number(m[1]);
  const value = whole * 10 ** decimals + (frac === "" ? 0 : Number(frac.padEnd(decimals, "0")));
  return Number.isSafeInteger(value) ? value : null;
}

/** Dollars typed by a person as micro-dollars: "1.5" -> 1_500_000, "$0.69" -> 690_000; null when not a price. */
export function parseDollars(text: string): number | null {
  return parseScaled(text.trim().replace(/^\$/, "").replace(/\/h$/, ""), 6);
}


/**
 * Micro-dollars as dollars and cents for reports, rounded half up with integer arithmetic and grouped by thousands:
 * 12_345_000 -> "$12.35", 1_234_560_000 -> "$1,234.56", -2_500_000 -> "-$2.50".
 */
export function formatMoney(micros: number): string {
  const m = Math.round(micros);
  const negative = m < 0;
  const abs = Math.abs(m);
  const cents = Math.floor(abs / 10_000) + (abs % 10_000 >= 5_000 ? 1 : 0);
  const whole = Math.floor(cents / 100)
    .toString()
    .replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const text = `$${whole}.${String(cents % 100).padStart(2, "0")}`;
  return negative && cents > 0 ? `-${text}` : text;
}

/**
 * A total that may be under a cent: cents from a cent up, else to the hundredth of a cent, rounded up so it never
 * reads less than was spent: 4_100 -> "$0.0041", 0 -> "$0.00", 12_345_678 -> "$12.35".
 */
export function formatMoneyFine(micros: number): string {
  const m = Math.round(micros);
  if (m <= 0 || m >= 10_000) return formatMoney(m);
  return `$0.${String(Math.ceil(m / 100)).padStart(4, "0")}`;
}

/**
 * Micro-dollars for an input field, exact to the micro-dollar so saving an unchanged field never changes the amount:
 * 5_000_000 -> "5.00", 150_000 -> "0.15", 5_123_456 -> "5.123456", 1_500 -> "0.0015".
 */
export function dollarsExact(micros: number): string {
  const m = Math.max(0, Math.round(micros));
  const whole = Math.floor(m / MICROS_PER_DOLLAR);
  const frac = String(m % MICROS_PER_DOLLAR)
    .padStart(6, "0")
    .replace(/0+$/, "")
    .padEnd(2, "0");
  return `${whole}.${frac}`;
}
