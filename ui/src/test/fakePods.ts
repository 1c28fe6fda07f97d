// The pod commands of the fake backend: pass `pods.handlers` to `installFakeBackend` (with a RunPod key set).
// Create and start send their progress down the Channel they were given, as the Rust side does, and can be held
// open (`hold`) so a test sees the progress before the command answers.
import type { FleetPod, GpuType, IdleConfig, PodPreset, PodProgress, PodRecord } from "../bindings";
import { uiError } from "./fakeBackend";

const T0 = 1_700_000_000_000;

export const DEFAULT_PRESET: PodPreset = {
  name: "comfyfleet-comfyui",
  image: "runpod/worker-comfyui:5.8.0-base",
  gpu_types: ["NVIDIA GeForce RTX 4090"],
  gpu_count: 1,
  cloud_type: "SECURE",
  container_disk_gb: 30,
  volume_gb: 0,
  env: {},
};

export const DEFAULT_IDLE: IdleConfig = {
  enabled: true,
  idle_ms: 5 * 60_000,
  expensive_threshold_micros_per_hr: 1_000_000,
  expensive_idle_ms: 2 * 60_000,
};

/** RunPod's GPU catalogue, as `pods_gpus` answers it (the A5000 is not offered in Secure cloud here). */
export const GPUS: GpuType[] = [
  { id: "NVIDIA GeForce RTX 4090", name: "RTX 4090", memory_gb: 24, secure_per_hr_micros: 690_000, community_per_hr_micros: 340_000, serverless_per_sec_micros: 310 },
  { id: "NVIDIA RTX A5000", name: "RTX A5000", memory_gb: 24, secure_per_hr_micros: null, community_per_hr_micros: 160_000, serverless_per_sec_micros: null },
];

/** A pod of the app as `pods_list` answers it (running an RTX 4090 at $0.69/h for 12 minutes by default). */
export function pod(overrides: Partial<FleetPod> & { name: string }): FleetPod {
  const id = overrides.pod_id ?? `pod-${overrides.name.toLowerCase().replace(/\W+/g, "-")}`;
  return {
    pod_id: id,
    server_id: `srv-${id}`,
    url: `https://${id}-8188.proxy.runpod.net`,
    gpu: "NVIDIA GeForce RTX 4090",
    cost_per_hr_micros: 690_000,
    state: "running",
    status: "RUNNING",
    uptime_secs: 12 * 60 + 5,
    created_ms: T0,
    last_activity_ms: T0,
    stopped_reason: null,
    ...overrides,
  };
}

type Gate = { release: () => void; fail: (message: string) => void };

export function fakePods(init: { pods?: FleetPod[]; idle?: IdleConfig; preset?: PodPreset; progress?: Omit<PodProgress, "pod_id" | "elapsed_ms">[] } = {}) {
  const state = {
    pods: [...(init.pods ?? [])],
    idle: init.idle ?? DEFAULT_IDLE,
    preset: init.preset ?? DEFAULT_PRESET,
    /** While true, create and start send their progress and then wait for `release()` or `fail()`. */
    hold: false,
  };
  const gates: Gate[] = [];

  const CREATE_STEPS: Omit<PodProgress, "pod_id" | "elapsed_ms">[] = init.progress ?? [
    { stage: "creating", message: "Asking RunPod for a pod (NVIDIA GeForce RTX 4090)" },
    { stage: "provisioning", message: "RunPod is pulling the image" },
    { stage: "waiting_for_comfyui", message: "Waiting for ComfyUI to answer" },
  ];

  function send(channel: unknown, steps: Omit<PodProgress, "pod_id" | "elapsed_ms">[], podId: string | null) {
    const id = (channel as { id: number }).id;
    const internals = (window as unknown as { __TAURI_INTERNALS__: { runCallback: (id: number, data: unknown) => void } }).__TAURI_INTERNALS__;
    steps.forEach((step, index) => internals.runCallback(id, { index, message: { ...step, pod_id: podId, elapsed_ms: (index + 1) * 4_000 } }));
  }

  function gated<T>(done: () => T): T | Promise<T> {
    if (!state.hold) return done();
    return new Promise<T>((resolve, reject) => {
      gates.push({ release: () => resolve(done()), fail: (message) => reject(uiError(message, "runpod.api")) });
    });
  }

  function find(id: unknown): FleetPod {
    const found = state.pods.find((p) => p.pod_id === id);
    if (!found) throw uiError(`No pod of the app has id ${String(id)}.`, "pods.not_found");
    return found;
  }

  function save(p: FleetPod): FleetPod {
    state.pods = state.pods.map((x) => (x.pod_id === p.pod_id ? p : x));
    return p;
  }

  const handlers: Record<string, (args: Record<string, unknown>) => unknown> = {
    pods_list: () => state.pods,
    pods_default_preset: () => state.preset,
    pods_gpus: () => GPUS,
    pods_create: (a) => {
      const preset = a.preset as PodPreset;
      send(a.onProgress, CREATE_STEPS, null);
      return gated(() => {
        const created = pod({ name: preset.name, pod_id: `pod-new-${state.pods.length + 1}`, gpu: preset.gpu_types[0], uptime_secs: 0 });
        state.pods.push(created);
        return created;
      });
    },
    pods_start: (a) => {
      const p = find(a.podId);
      send(a.onProgress, [{ stage: "starting", message: `Starting ${p.name} at RunPod` }, { stage: "waiting_for_comfyui", message: "Waiting for ComfyUI to answer" }], p.pod_id);
      return gated(() => save({ ...p, state: "running", status: "RUNNING", uptime_secs: 0, stopped_reason: null }));
    },
    pods_stop: (a) => save({ ...find(a.podId), state: "stopped", status: "EXITED", uptime_secs: null, stopped_reason: "stopped by you" }),
    pods_terminate: (a) => {
      const p = find(a.podId);
      state.pods = state.pods.filter((x) => x.pod_id !== p.pod_id);
      const record: PodRecord = {
        pod_id: p.pod_id,
        server_id: null,
        name: p.name,
        gpu: p.gpu,
        cost_per_hr_micros: p.cost_per_hr_micros,
        created_ms: p.created_ms,
        last_job_ms: p.last_activity_ms,
        state: "terminated",
        stopped_reason: "terminated by you",
        updated_ms: T0 + 60_000,
      };
      return record;
    },
    pods_idle_get: () => state.idle,
    pods_idle_set: (a) => {
      state.idle = a.config as IdleConfig;
      return state.idle;
    },
  };

  return {
    state,
    handlers,
    /** Lets the oldest held create/start answer. */
    release: () => gates.shift()?.release(),
    /** Makes the oldest held create/start fail with a UiError carrying `message`. */
    fail: (message: string) => gates.shift()?.fail(message),
    held: () => gates.length,
  };
}
