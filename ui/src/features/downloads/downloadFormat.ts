// How a download reads: sizes, speed, time left, state labels and tones.
import type { DownloadItem, DownloadState } from "../../bindings";
import type { BadgeTone } from "../../components/Badge";

const UNITS = ["B", "kB", "MB", "GB", "TB"];

/** Bytes in decimal units, as disks and speeds are sold (the same as the CLI): 1500000 -> "1.5 MB". */
export function humanBytes(n: number): string {
  let v = Math.max(0, n);
  let unit = 0;
  while (v >= 1000 && unit < UNITS.length - 1) {
    v /= 1000;
    unit += 1;
  }
  return unit === 0 ? `${Math.round(v)} B` : `${v.toFixed(1)} ${UNITS[unit]}`;
}

/** "8.1 MB/s". */
export function humanSpeed(bytesPerSec: number): string {
  return `${humanBytes(bytesPerSec)}/s`;
}

/** Time left for people: "5 s left", "3 min 20 s left", "2 h 5 min left". */
export function humanEta(secs: number): string {
  const s = Math.max(0, Math.round(secs));
  if (s < 60) return `${s} s left`;
  if (s < 3600) {
    const m = Math.floor(s / 60);
    const r = s % 60;
    return r === 0 ? `${m} min left` : `${m} min ${r} s left`;
  }
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return m === 0 ? `${h} h left` : `${h} h ${m} min left`;
}

export const DOWNLOAD_STATE_LABELS: Record<DownloadState, string> = {
  queued: "Queued",
  running: "Downloading",
  paused: "Paused",
  failed: "Failed",
  done: "Done",
  cancelled: "Cancelled",
};

export function downloadStateTone(state: DownloadState): BadgeTone {
  switch (state) {
    case "running":
      return "accent";
    case "done":
      return "ok";
    case "failed":
      return "bad";
    case "paused":
      return "warn";
    case "queued":
      return "info";
    default:
      return "neutral";
  }
}

/** 0..1 when the size is known; null otherwise (an indeterminate bar). */
export function fractionOf(item: DownloadItem): number | null {
  if (item.state === "done") return 1;
  if (item.total == null || item.total <= 0) return null;
  return Math.min(1, item.downloaded / item.total);
}

/** "12.3 MB of 45.0 MB · 8.1 MB/s · 4 s left", with only the parts that are known. */
export function progressLine(item: DownloadItem): string {
  const size = item.total != null ? `${humanBytes(item.downloaded)} of ${humanBytes(item.total)}` : humanBytes(item.downloaded);
  const parts = [size];
  if (item.state === "running" && item.bytes_per_sec > 0) parts.push(humanSpeed(item.bytes_per_sec));
  if (item.state === "running" && item.eta_secs != null) parts.push(humanEta(item.eta_secs));
  return parts.join(" · ");
}

/** Whether the queue still holds it (queued, running, paused). */
export function isActive(item: DownloadItem): boolean {
  return item.state === "queued" || item.state === "running" || item.state === "paused";
}
