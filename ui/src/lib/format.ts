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
