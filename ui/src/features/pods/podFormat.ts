// Pure formatting and parsing for RunPod pods: money (integer micro-dollars, never floats), uptime, state labels,
// and the minutes/dollars fields of the idle settings.
import type { BadgeTone } from "../../components/Badge";
import type { GpuType, IdleConfig, PodProgress, PodStage, PodState } from "../../bindings";
import { formatPricePerHour, parseScaled } from "../../lib/format";

// The money helpers live in lib/format (the cost monitor uses them too).
export { dollarsText, formatDollars, formatPricePerHour, parseDollars, parseScaled } from "../../lib/format";

const MS_PER_MINUTE = 60_000;

/** Milliseconds as minutes for an input field: 300_000 -> "5", 90_000 -> "1.5", 30_000 -> "0.5". */
export function minutesText(ms: number): string {
  const milliMinutes = Math.round(Math.max(0, ms) / 60);
  const whole = Math.floor(milliMinutes / 1000);
  const frac = String(milliMinutes % 1000).padStart(3, "0").replace(/0+$/, "");
  return frac ? `${whole}.${frac}` : String(whole);
}

/** Minutes typed by a person as milliseconds: "5" -> 300_000, "1.5" -> 90_000; null when not a number of minutes. */
export function parseMinutes(text: string): number | null {
  const milliMinutes = parseScaled(text, 3);
  return milliMinutes == null ? null : milliMinutes * (MS_PER_MINUTE / 1000);
}

/** How long a pod has been up, for people: "45 s", "12 min", "1 h 5 min", "2 d 3 h". */
export function formatUptime(secs: number): string {
  const s = Math.max(0, Math.floor(secs));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 === 0 ? `${h} h` : `${h} h ${m % 60} min`;
  const d = Math.floor(h / 24);
  return h % 24 === 0 ? `${d} d` : `${d} d ${h % 24} h`;
}

/** Seconds since an operation began, as it ticks: 0 -> "0 s", 83_400 -> "83 s". */
export function formatElapsed(ms: number): string {
  return `${Math.floor(Math.max(0, ms) / 1000)} s`;
}

export const POD_STATE_LABELS: Record<PodState, string> = {
  starting: "Starting…",
  running: "Running",
  stopped: "Stopped",
  terminated: "Terminated",
};

export function podStateTone(state: PodState): BadgeTone {
  switch (state) {
    case "running":
      return "ok";
    case "starting":
      return "info";
    case "stopped":
      return "neutral";
    case "terminated":
      return "bad";
  }
}

/** What a person may do with a pod in this state (Terminate is always offered). */
export function podActions(state: PodState): { start: boolean; stop: boolean } {
  return { start: state === "stopped", stop: state === "running" || state === "starting" };
}

/** "NVIDIA GeForce RTX 4090, NVIDIA RTX A5000" -> both ids, trimmed, empty ones dropped. */
export function parseGpuTypes(text: string): string[] {
  return text
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

export const DISK_MIN_GB = 10;
export const DISK_MAX_GB = 500;

export type PresetFields = { name: string; gpuTypes: string; cloudType: string; image: string; diskGb: string };
export type PresetErrors = Partial<Record<keyof PresetFields, string>>;

/** The create form's checks; an empty object when it can be sent. */
export function presetErrors(f: PresetFields): PresetErrors {
  const errors: PresetErrors = {};
  if (!f.name.trim()) errors.name = "Give the pod a name.";
  if (parseGpuTypes(f.gpuTypes).length === 0) errors.gpuTypes = "Name at least one GPU type, e.g. NVIDIA GeForce RTX 4090.";
  if (!f.image.trim()) errors.image = "Name the container image, e.g. runpod/worker-comfyui:5.8.0-base.";
  const disk = /^\d+$/.test(f.diskGb.trim()) ? Number(f.diskGb.trim()) : NaN;
  if (!(disk >= DISK_MIN_GB && disk <= DISK_MAX_GB)) errors.diskGb = `The container disk is ${DISK_MIN_GB}–${DISK_MAX_GB} GB (whole GB).`;
  return errors;
}

/** The steps of a create or start, in order (a start skips the first). */
export const POD_STAGES: PodStage[] = ["creating", "provisioning", "starting", "waiting_for_comfyui", "registering", "ready"];

/** How far along a create or start is, for its progress bar: "ready" is 1. */
export function stageFraction(stage: PodStage): number | null {
  const i = POD_STAGES.indexOf(stage);
  return i < 0 ? null : (i + 1) / POD_STAGES.length;
}

/**
 * How long a create or start has run: the core's count from its last progress message, or the local clock since it
 * began when that is further along (so the seconds keep moving between messages).
 */
export function elapsedOf(op: { progress: Pick<PodProgress, "elapsed_ms"> | null; startedMs: number }, nowMs: number): number {
  return Math.max(op.progress?.elapsed_ms ?? 0, nowMs - op.startedMs);
}

/** The core's defaults for the idle rule (its fields are optional on the wire: serde fills in what is missing). */
export const IDLE_DEFAULTS: Required<IdleConfig> = {
  enabled: true,
  idle_ms: 5 * 60_000,
  expensive_threshold_micros_per_hr: 1_000_000,
  expensive_idle_ms: 2 * 60_000,
};

/** An idle config with every field present. */
export function fullIdleConfig(c: IdleConfig): Required<IdleConfig> {
  return {
    enabled: c.enabled ?? IDLE_DEFAULTS.enabled,
    idle_ms: c.idle_ms ?? IDLE_DEFAULTS.idle_ms,
    expensive_threshold_micros_per_hr: c.expensive_threshold_micros_per_hr ?? IDLE_DEFAULTS.expensive_threshold_micros_per_hr,
    expensive_idle_ms: c.expensive_idle_ms ?? IDLE_DEFAULTS.expensive_idle_ms,
  };
}

/**
 * What each typed GPU id costs in the chosen cloud, from RunPod's catalogue:
 * "NVIDIA GeForce RTX 4090 · 24 GB · $0.69/h", or why it cannot be used.
 */
export function gpuPriceLines(ids: string[], catalogue: GpuType[], cloudType: string): { id: string; text: string; known: boolean }[] {
  const community = cloudType === "COMMUNITY";
  return ids.map((id) => {
    const gpu = catalogue.find((g) => g.id === id);
    if (!gpu) return { id, text: `${id}: not a GPU id RunPod lists`, known: false };
    const price = community ? gpu.community_per_hr_micros : gpu.secure_per_hr_micros;
    const where = community ? "Community" : "Secure";
    return price == null
      ? { id, text: `${gpu.name} · ${gpu.memory_gb} GB · not offered in ${where} cloud`, known: false }
      : { id, text: `${gpu.name} · ${gpu.memory_gb} GB · ${formatPricePerHour(price)}`, known: true };
  });
}
