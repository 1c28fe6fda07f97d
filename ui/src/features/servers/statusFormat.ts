// How a server's live status reads to a person: badge text, VRAM, queue, version, latency.
import type { AuthKind, Device, QueueInfo, Server, ServerStatus, Status, Workers } from "../../bindings";
import { formatGB } from "../../lib/format";

export const STATUS_LABELS: Record<Status, string> = {
  unknown: "Not tested",
  connected: "Connected",
  unreachable: "Unreachable",
  timeout: "Timed out",
  auth_failed: "Auth failed",
  not_comfyui: "Not ComfyUI",
  error: "Error",
};

export function statusLabel(status: Status): string {
  return STATUS_LABELS[status] ?? status;
}

export type Tone = "ok" | "bad" | "warn" | "neutral" | "info";

export function statusTone(status: Status): Tone {
  switch (status) {
    case "connected":
      return "ok";
    case "unreachable":
    case "error":
      return "bad";
    case "timeout":
    case "auth_failed":
      return "warn";
    case "not_comfyui":
      return "info";
    default:
      return "neutral";
  }
}

export const AUTH_LABELS: Record<AuthKind, string> = {
  none: "None",
  basic: "Basic (user + password)",
  bearer: "Bearer token",
  api_key: "API key header",
  comfyui_login: "ComfyUI-Login token",
};

/** The first GPU's memory, e.g. "VRAM 20.1/24 GB free"; null when the server reported no device. */
export function vramText(devices: Device[]): string | null {
  const d = devices[0];
  if (!d || !(d.vram_total > 0)) return null;
  return `VRAM ${formatGB(d.vram_free)}/${formatGB(d.vram_total)} GB free`;
}

/** Fraction of the first GPU's memory in use, 0..1, or null. */
export function vramUsedFraction(devices: Device[]): number | null {
  const d = devices[0];
  if (!d || !(d.vram_total > 0)) return null;
  return clamp01((d.vram_total - d.vram_free) / d.vram_total);
}

/** "Queue 2/10" (running + pending over the max queue size), or "Queue 2" without a limit. */
export function queueText(queue: QueueInfo | null, maxQueue: number | null): string | null {
  if (!queue) return null;
  const n = queue.running + queue.pending;
  return maxQueue != null ? `Queue ${n}/${maxQueue}` : `Queue ${n}`;
}

export function queueFraction(queue: QueueInfo | null, maxQueue: number | null): number | null {
  if (!queue || maxQueue == null || maxQueue <= 0) return null;
  return clamp01((queue.running + queue.pending) / maxQueue);
}

/** A RunPod endpoint's workers: "2 workers up (1 idle)", or that the next job waits for one to wake. */
export function workersText(workers: Workers | null): string | null {
  if (!workers) return null;
  const up = workers.idle + workers.running;
  if (up === 0) return "No worker up — the next job wakes one (cold start)";
  return `${up} worker${up === 1 ? "" : "s"} up (${workers.idle} idle)`;
}

/** Runs in the cloud, billed while it runs: a RunPod endpoint, or a server tagged "cloud" (e.g. a pod). */
export function isCloud(server: Server): boolean {
  return server.kind === "runpod_serverless" || server.tags.some((t) => t.toLowerCase() === "cloud");
}

export function versionText(status: ServerStatus): string | null {
  return status.comfyui_version ? `ComfyUI ${status.comfyui_version}` : null;
}

export function latencyText(latencyMs: number | null): string | null {
  return latencyMs == null ? null : `${Math.round(latencyMs)} ms`;
}

/** What a connected server reported, e.g. ["ComfyUI 0.3.64", "VRAM 20/24 GB free", "12 ms"]. */
export function connectedDetails(status: ServerStatus, maxQueue: number | null = null): string[] {
  return [
    versionText(status),
    vramText(status.devices),
    workersText(status.workers),
    queueText(status.queue, maxQueue),
    latencyText(status.latency_ms),
  ].filter((x): x is string => Boolean(x));
}

/** One line summing up a test, e.g. "Connected · ComfyUI 0.3.64 · VRAM 20/24 GB free · 12 ms". */
export function statusSummary(status: ServerStatus, maxQueue: number | null = null): string {
  const label = statusLabel(status.status);
  if (status.status !== "connected") return status.error ? `${label}: ${status.error}` : label;
  return [label, ...connectedDetails(status, maxQueue)].join(" · ");
}

function clamp01(x: number): number {
  return Math.min(1, Math.max(0, x));
}
