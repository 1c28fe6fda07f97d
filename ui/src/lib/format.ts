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
