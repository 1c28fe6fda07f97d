// The install wizard's rules, apart from the screens: which screen an install state shows, the form and the
// request it builds, whether Install can be pressed, and how the machine, the plan and a step read.
import type {
  Check,
  CheckLevel,
  GpuReport,
  InstallCheck,
  InstallRequest,
  InstallState,
  LocalState,
  StepState,
  StepStatus,
} from "../../bindings";
import type { BadgeTone } from "../../components/Badge";
import { formatDuration, formatGB } from "../../lib/format";
import { humanBytes, humanEta, humanSpeed } from "../downloads/downloadFormat";

export type InstallScreen = "check" | "progress" | "done";

/** Running, paused and failed installs show their steps; a finished one the success screen; else the check. */
export function screenFor(state: InstallState): InstallScreen {
  switch (state) {
    case "running":
    case "paused":
    case "failed":
      return "progress";
    case "done":
      return "done";
    default:
      return "check";
  }
}

export const DEFAULT_PORT = 8188;

/** Auto first, then what `variant` accepts ("cuda" = the newest CUDA the driver allows). */
export const VARIANT_OPTIONS: { value: string; label: string }[] = [
  { value: "auto", label: "Auto (decided from your GPU)" },
  { value: "cuda", label: "NVIDIA CUDA (newest your driver supports)" },
  { value: "cuda130", label: "NVIDIA CUDA 13.0" },
  { value: "cuda129", label: "NVIDIA CUDA 12.9" },
  { value: "cuda128", label: "NVIDIA CUDA 12.8" },
  { value: "cuda126", label: "NVIDIA CUDA 12.6" },
  { value: "rocm", label: "AMD ROCm" },
  { value: "xpu", label: "Intel XPU" },
  { value: "cpu", label: "CPU only (slow)" },
  { value: "mps", label: "Apple Metal (MPS)" },
];

/** What the person typed and chose on the check screen. */
export type InstallForm = {
  installPath: string;
  /** "auto" or a value of VARIANT_OPTIONS. */
  variant: string;
  packs: string[];
  modelsDir: string;
  port: string;
};

export function initialForm(installPath: string): InstallForm {
  return { installPath, variant: "auto", packs: ["sd15"], modelsDir: "", port: String(DEFAULT_PORT) };
}

/** Where ComfyUI goes unless the person says otherwise: `ComfyUI` in the app's home folder. */
export function defaultInstallPath(home: string): string {
  const sep = home.includes("\\") && !home.includes("/") ? "\\" : "/";
  return `${home.replace(/[\\/]+$/, "")}${sep}ComfyUI`;
}

/** Why the port cannot be used, or null. Empty means the default. */
export function portError(port: string): string | null {
  const t = port.trim();
  if (t === "") return null;
  if (!/^\d+$/.test(t)) return "The port is a whole number, 1024 to 65535 (8188 is ComfyUI's usual one).";
  const n = Number(t);
  if (n < 1024 || n > 65535) return "Choose a port from 1024 to 65535 (8188 is ComfyUI's usual one).";
  return null;
}

/** The request the core checks and installs. */
export function toInstallRequest(form: InstallForm): InstallRequest {
  const port = form.port.trim();
  return {
    install_path: form.installPath.trim(),
    variant: form.variant === "auto" ? null : form.variant,
    packs: form.packs,
    models_dir: form.modelsDir.trim() === "" ? null : form.modelsDir.trim(),
    manifest: null,
    port: port === "" || portError(port) ? null : Number(port),
  };
}

/** The packs with `id` switched on or off, in the order they were picked. */
export function togglePack(packs: string[], id: string, on: boolean): string[] {
  if (on) return packs.includes(id) ? packs : [...packs, id];
  return packs.filter((p) => p !== id);
}

/** Why Install cannot be pressed yet, or null when it can. */
export function installBlocker(check: InstallCheck | null, form: InstallForm): string | null {
  if (portError(form.port)) return "Fix the port first.";
  if (!check) return "Checking this computer…";
  const failed = check.checks.find((c) => c.level === "fail");
  if (failed) return `${failed.label}: ${failed.detail}`;
  if (!check.plan) return check.plan_error?.message ?? "There is no install plan for these choices yet.";
  return null;
}

export const CHECK_ICONS: Record<CheckLevel, string> = { pass: "✓", warn: "!", fail: "✕" };
export const CHECK_LEVEL_LABELS: Record<CheckLevel, string> = { pass: "Passed", warn: "Warning", fail: "Failed" };

/** The worst level among the checks (a panel's headline). */
export function worstLevel(checks: Check[]): CheckLevel {
  if (checks.some((c) => c.level === "fail")) return "fail";
  if (checks.some((c) => c.level === "warn")) return "warn";
  return "pass";
}

/** "NVIDIA GeForce RTX 4090 · 24 GB VRAM · driver 570.124 · CUDA 12.8", or why there is none. */
export function gpuSummary(report: GpuReport): string {
  const gpu = report.gpus[0];
  if (!gpu) return report.nvml_unavailable ? `No GPU found (${report.nvml_unavailable})` : "No GPU found";
  const parts = [gpu.name];
  if (gpu.vram_total != null) parts.push(`${formatGB(gpu.vram_total)} GB VRAM`);
  if (gpu.driver_version) parts.push(`driver ${gpu.driver_version}`);
  if (gpu.cuda_driver_version) parts.push(`CUDA ${gpu.cuda_driver_version.major}.${gpu.cuda_driver_version.minor}`);
  const more = report.gpus.length > 1 ? ` (+${report.gpus.length - 1} more)` : "";
  return parts.join(" · ") + more;
}

const OS_NAMES: Record<string, string> = { linux: "Linux", macos: "macOS", windows: "Windows" };

export function osName(os: string): string {
  return OS_NAMES[os] ?? os;
}

/** "about 15 min". */
export function estimateText(secs: number): string {
  return `about ${formatDuration(secs * 1000)}`;
}

export const STEP_STATE_LABELS: Record<StepState, string> = {
  pending: "Waiting",
  running: "Working",
  done: "Done",
  skipped: "Already done",
  failed: "Failed",
};

export const STEP_ICONS: Record<StepState, string> = { pending: "○", running: "◐", done: "✓", skipped: "✓", failed: "✕" };

/** 0..1 when the step's size is known, else null. */
export function stepFraction(step: StepStatus): number | null {
  if (step.state === "done" || step.state === "skipped") return 1;
  if (step.total_bytes == null || step.total_bytes <= 0) return null;
  return Math.min(1, step.done_bytes / step.total_bytes);
}

/** "1.2 GB of 6.9 GB · 8.0 MB/s · 3 min left", with only what is known; null for steps without bytes. */
export function stepProgressLine(step: StepStatus): string | null {
  if (step.total_bytes == null && step.done_bytes === 0) return null;
  const parts = [step.total_bytes != null ? `${humanBytes(step.done_bytes)} of ${humanBytes(step.total_bytes)}` : humanBytes(step.done_bytes)];
  if (step.state === "running" && step.bytes_per_sec > 0) parts.push(humanSpeed(step.bytes_per_sec));
  if (step.state === "running" && step.eta_secs != null) parts.push(humanEta(step.eta_secs));
  return parts.join(" · ");
}

/** Whether a step shows a bar: a running or paused download of known size. */
export function showsBar(step: StepStatus): boolean {
  if (step.total_bytes == null || step.total_bytes <= 0) return false;
  return step.state === "running" || (step.state === "pending" && step.done_bytes > 0);
}

export const INSTALL_STATE_LABELS: Record<InstallState, string> = {
  idle: "Not started",
  running: "Installing",
  paused: "Paused",
  cancelled: "Cancelled",
  failed: "Failed",
  done: "Done",
};

export function installStateTone(state: InstallState): BadgeTone {
  return state === "running" ? "accent" : state === "done" ? "ok" : state === "failed" ? "bad" : state === "paused" ? "warn" : "neutral";
}

export const LOCAL_STATE_LABELS: Record<LocalState, string> = {
  not_installed: "Not installed",
  stopped: "Stopped",
  starting: "Starting",
  running: "Running",
  crashed: "Crashed",
};

export function localStateTone(state: LocalState): BadgeTone {
  switch (state) {
    case "running":
      return "ok";
    case "starting":
      return "info";
    case "crashed":
      return "bad";
    default:
      return "neutral";
  }
}

/** Which of Start, Stop and Restart make sense in a state. */
export function localActions(state: LocalState): { start: boolean; stop: boolean; restart: boolean } {
  return {
    start: state === "stopped" || state === "crashed",
    stop: state === "running" || state === "starting" || state === "crashed",
    restart: state === "running" || state === "crashed",
  };
}
