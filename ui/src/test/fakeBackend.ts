// An in-memory stand-in for the Rust commands, answered through @tauri-apps/api/mocks' mockIPC so the real
// bindings.ts code path (invoke, Result wrapping, event listen/emit, Channel messages) runs in the tests.
import { mockIPC } from "@tauri-apps/api/mocks";
import type {
  AppInfo,
  GatewaySettings,
  GatewayStatus,
  DownloadInput,
  DownloadItem,
  Estimate,
  JobCost,
  DownloadUpdate,
  ImportReport,
  InstallCheck,
  InstallRequest,
  InstallStatus,
  Job,
  JobState,
  JobUpdate,
  LocalStatus,
  LogTail,
  ModelRef,
  RouterConfig,
  ServerInput,
  ServerStatus,
  Server,
  Settings,
  StepStatus,
  SubmitRequest,
  Template,
  TextInput,
  UiError,
  WorkflowInfo,
  TokenHost,
  TokenStatus,
} from "../bindings";

export type Call = { cmd: string; args: Record<string, unknown> };

type Init = {
  servers?: Server[];
  statuses?: ServerStatus[];
  settings?: Settings;
  appInfo?: AppInfo;
  templates?: Template[];
  jobs?: Job[];
  router?: RouterConfig;
  downloads?: DownloadItem[];
  /** What `install_check` answers for a request (default: `installCheckFor`). */
  installCheck?: (request: InstallRequest) => InstallCheck;
  install?: InstallStatus;
  local?: LocalStatus;
  localLog?: LogTail;
  /** Which model host tokens are set (none by default). */
  tokensSet?: TokenHost[];
  /** Whether a RunPod API key is set, and the key RunPod accepts. */
  runpodKey?: { set: boolean; accepts?: string };
  /** The gateway as gateway_status answers it (off by default). */
  gateway?: GatewayStatus;
  /** What jobs_estimate answers (none by default). */
  estimates?: Estimate[];
  /** The cost ledger's per-job figures costs_of_jobs answers from. */
  jobCosts?: JobCost[];
};

/** The built-in templates as the core lists them. */
export const TEMPLATES: Template[] = [
  {
    id: "sd15",
    name: "SD 1.5 — text to image",
    description: "Stable Diffusion 1.5, 512×512. Runs on 4 GB of VRAM.",
    defaults: { prompt: "a lighthouse on a cliff at sunset, dramatic sky, highly detailed", negative: "blurry, low quality, watermark", seed: null, steps: 20, width: 512, height: 512 },
    models: [{ folder: "checkpoints", name: "v1-5-pruned-emaonly-fp16.safetensors" }],
  },
  {
    id: "sdxl",
    name: "SDXL — text to image",
    description: "Stable Diffusion XL base 1.0, 1024×1024. Needs about 8 GB of VRAM.",
    defaults: { prompt: "a lighthouse on a cliff at sunset, dramatic sky, highly detailed", negative: "blurry, low quality, watermark", seed: null, steps: 25, width: 1024, height: 1024 },
    models: [{ folder: "checkpoints", name: "sd_xl_base_1.0.safetensors" }],
  },
  {
    id: "flux-schnell",
    name: "FLUX.1-schnell — text to image",
    description: "FLUX.1 [schnell] fp8 all-in-one checkpoint, 4 steps, 1024×1024. Needs 12–24 GB of VRAM.",
    defaults: { prompt: "a lighthouse on a cliff at sunset, dramatic sky, highly detailed", negative: "", seed: null, steps: 4, width: 1024, height: 1024 },
    models: [{ folder: "checkpoints", name: "flux1-schnell-fp8.safetensors" }],
  },
];

export const UI_FORMAT_MESSAGE =
  'This is a workflow in ComfyUI\'s UI format (it has "nodes" and "links"), which cannot be queued directly. In ComfyUI, enable Settings > Comfy > Dev mode, then use Workflow > Export (API) and load that file instead.';

const T0 = 1_700_000_000_000;

export function job(overrides: Partial<Job> & { id: string }): Job {
  return {
    name: `Job ${overrides.id}`,
    state: "queued",
    priority: 5,
    target: null,
    server_id: null,
    remote_id: null,
    attempts: 0,
    max_attempts: 3,
    queued_ms: T0,
    started_ms: null,
    finished_ms: null,
    not_before_ms: 0,
    timeout_ms: 600_000,
    progress: 0,
    outputs: [],
    error: null,
    failed_on: [],
    notes: [],
    delay_ms: null,
    execution_ms: null,
    waking: false,
    ...overrides,
  };
}

/** A finished job with its saved images. */
export function succeededJob(id: string, files: string[], overrides: Partial<Job> = {}): Job {
  return job({
    id,
    state: "succeeded",
    server_id: "id-gpu-box",
    remote_id: `remote-${id}`,
    attempts: 0,
    started_ms: T0 + 1_000,
    finished_ms: T0 + 13_400,
    progress: 1,
    outputs: files.map((f) => ({ node_id: "9", filename: f, path: `/gallery/${id}/${f}` })),
    ...overrides,
  });
}

const MODEL_INPUTS: Record<string, [string, string]> = {
  CheckpointLoaderSimple: ["ckpt_name", "checkpoints"],
  LoraLoader: ["lora_name", "loras"],
  VAELoader: ["vae_name", "vae"],
  UNETLoader: ["unet_name", "diffusion_models"],
};

/** What the core's workflow inspection answers, for the common cases. */
function inspectWorkflow(text: string): WorkflowInfo {
  if (text.trim() === "") throw uiError("The workflow is empty.", "workflow.invalid");
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw uiError(`The workflow is not valid JSON (${(e as Error).message}).`, "workflow.invalid");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw uiError("The workflow must be a JSON object of nodes keyed by id.", "workflow.invalid");
  }
  const obj = value as Record<string, { class_type?: string; inputs?: Record<string, unknown> }>;
  if ("nodes" in obj && "links" in obj) throw uiError(UI_FORMAT_MESSAGE, "workflow.ui_format");
  const ids = Object.keys(obj).sort((a, b) => Number(a) - Number(b));
  if (ids.length === 0) throw uiError("The workflow has no nodes.", "workflow.invalid");
  const text_inputs: TextInput[] = [];
  const models: ModelRef[] = [];
  for (const id of ids) {
    const node = obj[id];
    const classType = node.class_type ?? "";
    for (const field of Object.keys(node.inputs ?? {}).sort()) {
      const v = node.inputs?.[field];
      if (typeof v === "string") text_inputs.push({ node_id: id, class_type: classType, field, value: v });
    }
    const model = MODEL_INPUTS[classType];
    const name = model && node.inputs?.[model[0]];
    if (typeof name === "string") models.push({ folder: model[1], name });
  }
  return { text_inputs, models, node_count: ids.length };
}

const GIB = 1024 ** 3;
const MB = 1_000_000;

/** A download as the core lists it (running, 12 of 48 MB, by default). */
export function download(overrides: Partial<DownloadItem> & { id: string }): DownloadItem {
  const fileName = overrides.file_name ?? `${overrides.id}.safetensors`;
  return {
    url: `https://huggingface.co/org/repo/resolve/main/${fileName}`,
    dest: `/home/artist/.local/share/comfyfleet/downloads/${fileName}`,
    file_name: fileName,
    state: "running",
    detail: null,
    downloaded: 12 * MB,
    total: 48 * MB,
    bytes_per_sec: 8 * MB,
    eta_secs: 5,
    sha256: null,
    error: null,
    added_ms: T0,
    updated_ms: T0,
    this_session: true,
    ...overrides,
  };
}

export function server(overrides: Partial<Server> & { name: string }): Server {
  return {
    id: `id-${overrides.name.toLowerCase().replace(/\W+/g, "-")}`,
    url: "http://127.0.0.1:8188",
    kind: "comfyui",
    runpod: null,
    auth: { kind: "none", user: null, header: null },
    last_connected_ms: null,
    tags: [],
    timeout_ms: 10000,
    max_queue: null,
    notes: "",
    active: false,
    has_secret: false,
    needs_credentials: false,
    plain_http_warning: null,
    ...overrides,
  };
}

export function connected(serverId: string, overrides: Partial<ServerStatus> = {}): ServerStatus {
  return {
    server_id: serverId,
    status: "connected",
    latency_ms: 12,
    comfyui_version: "0.3.64",
    python_version: "3.12.7",
    pytorch_version: "2.5.1+cu124",
    devices: [{ name: "cuda:0 NVIDIA GeForce RTX 4090", type: "cuda", vram_total: 24 * GIB, vram_free: 20 * GIB }],
    queue: { running: 1, pending: 1 },
    workers: null,
    last_connected_ms: 1_700_000_000_000,
    checked_at_ms: 1_700_000_000_000,
    error: null,
    ...overrides,
  };
}

export function failed(serverId: string, status: ServerStatus["status"], error: string, checkedAt = 1_700_000_000_000): ServerStatus {
  return {
    server_id: serverId,
    status,
    latency_ms: null,
    comfyui_version: null,
    python_version: null,
    pytorch_version: null,
    devices: [],
    queue: null,
    workers: null,
    last_connected_ms: null,
    checked_at_ms: checkedAt,
    error,
  };
}

export function uiError(message: string, code = "invalid_input"): UiError {
  return { code, message, details: null };
}

/** The model packs the shipped manifest offers. */
export const PACKS: InstallCheck["packs"] = [
  { id: "sd15", name: "Stable Diffusion 1.5", description: "The classic 512×512 model; runs on 4 GB of VRAM.", size: 2_130_000_000, min_vram_gb: 4, gated: false },
  { id: "sdxl", name: "Stable Diffusion XL base 1.0", description: "1024×1024 images; about 8 GB of VRAM.", size: 6_940_000_000, min_vram_gb: 8, gated: false },
  { id: "flux-dev", name: "FLUX.1 [dev]", description: "Needs your Hugging Face token.", size: 23_800_000_000, min_vram_gb: 24, gated: true },
];

/** What the core's system check answers on a Linux box with an RTX 4090 (a plan for the request's packs). */
export function installCheckFor(request: InstallRequest, overrides: Partial<InstallCheck> = {}): InstallCheck {
  const packSteps = request.packs.map((id) => {
    const pack = PACKS.find((p) => p.id === id);
    return { id: `models:${id}`, title: `Download ${pack?.name ?? id}`, download: pack?.size ?? 0, disk: pack?.size ?? 0 };
  });
  const steps = [
    { id: "uv", title: "Download uv", download: 20 * MB, disk: 50 * MB },
    { id: "comfyui", title: "Download ComfyUI 0.3.64", download: 30 * MB, disk: 80 * MB },
    { id: "venv", title: "Create the Python environment (PyTorch for cuda128)", download: 3_000 * MB, disk: 6_000 * MB },
    ...packSteps,
    { id: "start", title: "Start ComfyUI and run a test image", download: 0, disk: 0 },
  ];
  const download_bytes = steps.reduce((n, st) => n + st.download, 0);
  const disk_needed = steps.reduce((n, st) => n + st.disk, 0);
  return {
    facts: {
      os: "linux",
      os_version: "Linux 12 Debian GNU/Linux 12 (bookworm)",
      arch: "x86_64",
      cpu: "AMD Ryzen 9 7950X",
      cpu_cores: 16,
      ram_total: 64 * GIB,
      ram_available: 48 * GIB,
      gpu: {
        gpus: [
          {
            vendor: "nvidia",
            name: "NVIDIA GeForce RTX 4090",
            vram_total: 24 * GIB,
            vram_free: 22 * GIB,
            driver_version: "570.124",
            cuda_driver_version: { major: 12, minor: 8 },
            compute_capability: "8.9",
            power_draw_mw: 30_000,
          },
        ],
        nvml_unavailable: null,
      },
    },
    disk: { measured: "/home/artist", mount_point: "/home", available: 400 * GIB, total: 1000 * GIB },
    checks: [
      { id: "gpu", label: "GPU", level: "pass", detail: "NVIDIA GeForce RTX 4090, 24 GB VRAM, driver 570.124 (CUDA 12.8)." },
      { id: "ram", label: "Memory", level: "pass", detail: "64 GB of RAM." },
      { id: "disk", label: "Disk space", level: "pass", detail: "400 GB free on /home." },
    ],
    comfyui_version: "0.3.64",
    packs: PACKS,
    plan: request.install_path.trim()
      ? {
          variant: "cuda128",
          variant_reason: "Your driver supports CUDA 12.8; PyTorch for cuda128 is the newest it can run.",
          torch_index: "https://download.pytorch.org/whl/cu128",
          steps,
          download_bytes,
          disk_needed,
          disk_available: 400 * GIB,
          estimated_secs: 900,
          recommendation: "local",
          recommendation_reason: "Your RTX 4090 has 24 GB of VRAM: every pack runs here.",
          warnings: [],
        }
      : null,
    plan_error: request.install_path.trim() ? null : { code: "installer.no_path", message: "Choose a folder to install ComfyUI into.", details: null },
    done_steps: [],
    ...overrides,
  };
}

/** One step of a running install (pending by default). */
export function stepStatus(overrides: Partial<StepStatus> & { id: string }): StepStatus {
  return { title: `Step ${overrides.id}`, state: "pending", detail: null, done_bytes: 0, total_bytes: null, bytes_per_sec: 0, eta_secs: null, ...overrides };
}

const TOKEN_HOSTS: TokenHost[] = ["huggingface", "civitai"];

/** A token's status as the core reports it (never its value). */
export function tokenStatus(host: TokenHost, set: boolean): TokenStatus {
  const label = host === "huggingface" ? "Hugging Face" : "CivitAI";
  return { host, label, set, hint: `Create a token on ${label}.` };
}

/** An install's status (idle by default). */
export function installStatus(overrides: Partial<InstallStatus> = {}): InstallStatus {
  return {
    state: "idle",
    install_path: "",
    steps: [],
    error: null,
    log_path: "/home/artist/.local/share/comfyfleet/logs/install.log",
    server_id: null,
    url: null,
    elapsed_ms: 0,
    ...overrides,
  };
}

/** The local server supervisor's status (not installed by default). */
export function localStatus(overrides: Partial<LocalStatus> = {}): LocalStatus {
  return {
    state: "not_installed",
    install_path: null,
    url: null,
    port: 8188,
    pid: null,
    keep_running: false,
    restarts: 0,
    last_error: null,
    log_path: null,
    ...overrides,
  };
}

/**
 * Installs the fake. `handlers` override single commands (return a value, or throw a UiError object the way
 * Rust rejects an invoke).
 */
export function installFakeBackend(init: Init = {}, handlers: Record<string, (args: Record<string, unknown>) => unknown> = {}) {
  const state = {
    servers: [...(init.servers ?? [])],
    statuses: [...(init.statuses ?? [])],
    settings: init.settings ?? { auto_switch: false },
    appInfo: init.appInfo ?? { version: "0.1.0", home: "/home/artist/.local/share/comfyfleet" },
    dialogOpenPath: "/home/artist/servers.json" as string | null,
    dialogSavePath: "/home/artist/comfyfleet-servers.json" as string | null,
    importReport: { added: [], skipped: [], needs_credentials: [], activated: null } as ImportReport,
    estimates: init.estimates ?? ([] as Estimate[]),
    jobCosts: init.jobCosts ?? ([] as JobCost[]),
    templates: init.templates ?? TEMPLATES,
    jobs: [...(init.jobs ?? [])],
    router: init.router ?? ({ policy: "manual", auto_switch: false, local_queue_threshold: 5, max_in_flight: 2 } as RouterConfig),
    downloads: [...(init.downloads ?? [])],
    installCheck: init.installCheck ?? ((request: InstallRequest) => installCheckFor(request)),
    install: init.install ?? installStatus(),
    local: init.local ?? localStatus(),
    localLog: init.localLog ?? ({ path: "/home/artist/.local/share/comfyfleet/logs/comfyui.log", text: "", truncated: false } as LogTail),
    now: T0 + 60_000,
    tokensSet: new Set<TokenHost>(init.tokensSet ?? []),
    /** Every token value the fake was given (a real keychain would hold them; the UI must never read them back). */
    tokenValues: [] as string[],
    gateway: init.gateway ?? ({ settings: { enabled: false, listen: "127.0.0.1:8189" }, address: null, exposed: false, error: null } as GatewayStatus),
    runpodKey: { set: init.runpodKey?.set ?? false, value: null as string | null, accepts: init.runpodKey?.accepts ?? "rpa_GOOD" },
  };
  const calls: Call[] = [];
  let nextId = 1;
  /** The channels `jobsSubscribe` was given, with the index of the next message on each. */
  const channels: { id: number; next: number }[] = [];
  /** The channels `downloadsSubscribe` was given. */
  const downloadChannels: { id: number; next: number }[] = [];

  function findDownload(id: unknown): DownloadItem {
    const found = state.downloads.find((d) => d.id === id);
    if (!found) throw uiError(`There is no download with id ${String(id)}.`, "downloads.unknown_id");
    return found;
  }

  function saveDownload(updated: DownloadItem): DownloadItem {
    const next = { ...updated, updated_ms: state.now++ };
    if (state.downloads.some((d) => d.id === next.id)) state.downloads = state.downloads.map((d) => (d.id === next.id ? next : d));
    else state.downloads.unshift(next);
    return next;
  }

  /** Sends one download change down every subscribed download channel, the way the Rust side does. */
  function pushDownloadUpdate(update: DownloadUpdate) {
    let message: DownloadUpdate;
    if (update.kind === "changed") {
      message = { ...update, item: saveDownload(update.item) };
    } else {
      state.downloads = state.downloads.filter((d) => !update.ids.includes(d.id));
      message = update;
    }
    const internals = (window as unknown as { __TAURI_INTERNALS__: { runCallback: (id: number, data: unknown) => void } }).__TAURI_INTERNALS__;
    for (const ch of downloadChannels) internals.runCallback(ch.id, { index: ch.next++, message });
  }

  /** The channels `installSubscribe` was given. */
  const installChannels: { id: number; next: number }[] = [];

  /** Makes `status` the install's status and sends it whole down every install channel, as the Rust side does. */
  function pushInstallStatus(status: InstallStatus) {
    state.install = status;
    const internals = (window as unknown as { __TAURI_INTERNALS__: { runCallback: (id: number, data: unknown) => void } }).__TAURI_INTERNALS__;
    for (const ch of installChannels) internals.runCallback(ch.id, { index: ch.next++, message: status });
    return status;
  }

  function installNotNow(action: string): never {
    throw uiError(`The install is ${state.install.state}, so it cannot be ${action}.`, "installer.not_now");
  }

  function notNow(d: DownloadItem, action: string): never {
    throw uiError(`${d.file_name} is ${d.state}, so it cannot be ${action}.`, "downloads.not_now");
  }

  function saveJob(updated: Job): Job {
    state.jobs = state.jobs.map((j) => (j.id === updated.id ? updated : j));
    return updated;
  }

  function findJob(id: unknown): Job {
    const found = state.jobs.find((j) => j.id === id);
    if (!found) throw uiError(`There is no job ${String(id)}.`, "jobs.not_found");
    return found;
  }

  /** Sends one update down every subscribed channel, the way the Rust side does. */
  function pushJobUpdate(update: JobUpdate) {
    if (update.kind === "changed") {
      if (state.jobs.some((j) => j.id === update.job.id)) saveJob(update.job);
      else state.jobs.push(update.job);
    }
    const internals = (window as unknown as { __TAURI_INTERNALS__: { runCallback: (id: number, data: unknown) => void } }).__TAURI_INTERNALS__;
    for (const ch of channels) internals.runCallback(ch.id, { index: ch.next++, message: update });
  }

  function viewFromInput(id: string, input: ServerInput, previous?: Server): Server {
    return {
      id,
      name: input.name,
      url: input.runpod ? `https://api.runpod.ai/v2/${input.runpod.endpoint_id}` : (input.url ?? ""),
      kind: input.kind ?? "comfyui",
      runpod: input.runpod ?? null,
      auth: { kind: input.auth.kind, user: input.auth.user, header: input.auth.header },
      tags: input.tags,
      timeout_ms: input.timeout_ms ?? 10000,
      max_queue: input.max_queue,
      notes: input.notes,
      active: previous?.active ?? false,
      has_secret: input.auth.secret != null || (previous?.has_secret ?? false),
      needs_credentials: false,
      plain_http_warning: null,
      last_connected_ms: previous?.last_connected_ms ?? null,
    };
  }

  const builtin: Record<string, (args: Record<string, unknown>) => unknown> = {
    servers_list: () => state.servers,
    servers_statuses: () => state.statuses,
    servers_add: (a) => {
      const input = a.input as ServerInput;
      if (state.servers.some((s) => s.name === input.name)) {
        throw uiError(`A server named '${input.name}' already exists. Choose another name.`, "duplicate_name");
      }
      const view = viewFromInput(`new-${nextId++}`, input);
      state.servers.push(view);
      return view;
    },
    servers_update: (a) => {
      const i = state.servers.findIndex((s) => s.id === a.id);
      if (i < 0) throw uiError(`No server with id ${String(a.id)}.`, "not_found");
      state.servers[i] = viewFromInput(a.id as string, a.input as ServerInput, state.servers[i]);
      return state.servers[i];
    },
    servers_delete: (a) => {
      const s = state.servers.find((x) => x.id === a.id);
      if (!s) throw uiError(`No server with id ${String(a.id)}.`, "not_found");
      state.servers = state.servers.filter((x) => x.id !== a.id);
      return {
        was_active: s.active,
        message: s.active ? `Deleted '${s.name}'. It was the active server; no server is active now.` : `Deleted '${s.name}'.`,
      };
    },
    servers_activate: (a) => {
      state.servers = state.servers.map((s) => ({ ...s, active: s.id === a.id }));
      return null;
    },
    servers_test: (a) => state.statuses.find((s) => s.server_id === a.id) ?? failed(a.id as string, "unreachable", "Connection refused"),
    servers_test_all: () => state.servers.map((s) => state.statuses.find((x) => x.server_id === s.id) ?? failed(s.id, "unknown", "")),
    servers_test_input: () => connected("unsaved"),
    servers_export: (a) => ({ count: state.servers.length, path: a.path }),
    servers_import: () => state.importReport,
    settings_get: () => state.settings,
    settings_set: (a) => {
      state.settings = a.settings as Settings;
      return state.settings;
    },
    gateway_status: () => state.gateway,
    gateway_set: (a) => {
      const { enabled = false, listen = "127.0.0.1:8189" } = a.settings as GatewaySettings;
      state.gateway = {
        settings: { enabled, listen },
        address: enabled ? `http://${listen}` : null,
        exposed: enabled && !listen.startsWith("127."),
        error: null,
      };
      return state.gateway;
    },
    app_info: () => state.appInfo,
    open_app_folder: (a) => `${state.appInfo.home}${a.folder === "logs" ? "/logs" : ""}`,
    templates_list: () => state.templates,
    workflow_inspect: (a) => inspectWorkflow(a.workflowJson as string),
    jobs_estimate: () => state.estimates,
    costs_of_jobs: (a) => state.jobCosts.filter((c) => (a.jobIds as string[]).includes(c.job_id)),
    jobs_submit: (a) => {
      const request = a.request as SubmitRequest;
      const created = job({ id: `job-${nextId++}`, name: request.name, priority: request.priority, target: request.target, queued_ms: state.now++ });
      state.jobs.push(created);
      return created;
    },
    jobs_list: (a) => {
      const states = a.states as JobState[];
      return state.jobs
        .filter((j) => states.length === 0 || states.includes(j.state))
        .sort((x, y) => y.queued_ms - x.queued_ms)
        .slice(0, a.limit as number);
    },
    jobs_cancel: (a) => {
      const j = findJob(a.id);
      if (["succeeded", "failed", "cancelled"].includes(j.state)) throw uiError(`The job '${j.name}' already finished; there is nothing to cancel.`, "jobs.invalid");
      return saveJob({ ...j, state: "cancelled", finished_ms: state.now });
    },
    jobs_retry: (a) => {
      const old = findJob(a.id);
      if (old.state !== "failed" && old.state !== "cancelled") throw uiError(`'${old.name}' is done: only a failed or cancelled job can be run again.`, "jobs.not_retryable");
      const created = job({ id: `job-${nextId++}`, name: old.name, priority: old.priority, target: old.target, queued_ms: state.now++ });
      state.jobs.push(created);
      return created;
    },
    jobs_set_priority: (a) => saveJob({ ...findJob(a.id), priority: a.priority as number }),
    jobs_subscribe: (a) => {
      // mockIPC hands over the Channel object itself (the real IPC would serialize it to its id).
      channels.push({ id: (a.onUpdate as { id: number }).id, next: 0 });
      return null;
    },
    gallery_image: (a) => `data:image/png;base64,${btoa(a.path as string)}`,
    gallery_delete: (a) => {
      const j = findJob(a.jobId);
      const gone = j.outputs.find((o) => o.path === a.path && o.path !== "");
      if (!gone) throw uiError(`${String(a.path)} is not an image of this job (it may have been deleted already). Reopen the gallery.`, "jobs.no_such_output");
      return saveJob({ ...j, outputs: j.outputs.filter((o) => o !== gone), notes: [...j.notes, `deleted ${gone.filename} from the gallery`] });
    },
    open_path: () => null,
    router_get: () => state.router,
    router_set: (a) => {
      state.router = a.config as RouterConfig;
      return state.router;
    },
    downloads_list: () => state.downloads,
    downloads_add: (a) => {
      const input = a.input as DownloadInput;
      const name = input.url.split("?")[0].split("/").filter(Boolean).pop() ?? "file";
      const folder = input.destination ?? `${state.appInfo.home}/downloads`;
      const dest = folder.endsWith("/") ? `${folder}${name}` : input.destination ? folder : `${folder}/${name}`;
      const fileName = dest.split("/").pop() ?? name;
      return saveDownload(
        download({
          id: `dl-${nextId++}`,
          url: input.url.replace(/(token=)[^&]*/i, "$1***"),
          dest,
          file_name: fileName,
          state: "queued",
          downloaded: 0,
          total: null,
          bytes_per_sec: 0,
          eta_secs: null,
          sha256: input.sha256,
          added_ms: state.now,
        }),
      );
    },
    downloads_pause: (a) => {
      const d = findDownload(a.id);
      if (d.state !== "queued" && d.state !== "running") notNow(d, "paused");
      return saveDownload({ ...d, state: "paused", bytes_per_sec: 0, eta_secs: null });
    },
    downloads_resume: (a) => {
      const d = findDownload(a.id);
      if (d.state !== "paused") notNow(d, "resumed");
      return saveDownload({ ...d, state: "queued" });
    },
    downloads_cancel: (a) => {
      const d = findDownload(a.id);
      if (d.state === "done" || d.state === "cancelled") notNow(d, "cancelled");
      return saveDownload({ ...d, state: "cancelled", downloaded: 0, error: null });
    },
    downloads_retry: (a) => {
      const d = findDownload(a.id);
      if (d.state !== "failed" && d.state !== "cancelled") notNow(d, "retried");
      return saveDownload({ ...d, state: "queued", error: null });
    },
    downloads_clear_finished: () => {
      const ids = state.downloads.filter((d) => d.state === "done" || d.state === "cancelled").map((d) => d.id);
      if (ids.length > 0) pushDownloadUpdate({ kind: "removed", ids });
      return ids;
    },
    downloads_subscribe: (a) => {
      downloadChannels.push({ id: (a.onUpdate as { id: number }).id, next: 0 });
      return null;
    },
    install_check: (a) => state.installCheck(a.request as InstallRequest),
    install_start: (a) => {
      const request = a.request as InstallRequest;
      if (state.install.state === "running") installNotNow("started again");
      const plan = state.installCheck(request).plan;
      if (!plan) throw uiError("There is no plan for these choices.", "installer.no_plan");
      return pushInstallStatus(
        installStatus({
          state: "running",
          install_path: request.install_path,
          steps: plan.steps.map((st, i) =>
            stepStatus({ id: st.id, title: st.title, state: i === 0 ? "running" : "pending", total_bytes: st.download > 0 ? st.download : null }),
          ),
        }),
      );
    },
    install_pause: () => {
      if (state.install.state !== "running") installNotNow("paused");
      return pushInstallStatus({
        ...state.install,
        state: "paused",
        steps: state.install.steps.map((st) => (st.state === "running" ? { ...st, state: "pending", bytes_per_sec: 0, eta_secs: null } : st)),
      });
    },
    install_resume: () => {
      if (state.install.state !== "paused" && state.install.state !== "failed") installNotNow("resumed");
      let started = false;
      const steps = state.install.steps.map((st) => {
        if (started || st.state === "done" || st.state === "skipped") return st;
        started = true;
        return { ...st, state: "running" as const, detail: null };
      });
      return pushInstallStatus({ ...state.install, state: "running", error: null, steps });
    },
    install_cancel: () => {
      if (state.install.state === "done" || state.install.state === "idle") installNotNow("cancelled");
      return pushInstallStatus({ ...state.install, state: "cancelled" });
    },
    install_repair: (a) => {
      if (state.install.state === "running") installNotNow("started again");
      return pushInstallStatus(
        installStatus({
          state: "running",
          install_path: a.installPath as string,
          steps: [stepStatus({ id: "comfyui", state: "skipped" }), stepStatus({ id: "models:sd15", state: "running", detail: "Verifying v1-5.safetensors…" })],
        }),
      );
    },
    install_uninstall: (a) => {
      state.local = { ...state.local, state: "not_installed", install_path: null, url: null, pid: null };
      return { removed: a.installPath as string, kept_models: [], removed_models: a.removeModels ? 1 : 0, server_removed: true };
    },
    runpod_key_status: () => ({ set: state.runpodKey.set }),
    runpod_key_set: (a) => {
      const key = String(a.key).trim();
      if (!key || /\s/.test(key)) throw uiError("The RunPod API key is empty or contains spaces. Paste the key itself.", "runpod.bad_key");
      state.runpodKey = { ...state.runpodKey, set: true, value: key };
      state.tokenValues.push(key);
      return { set: true };
    },
    runpod_key_test: () => {
      if (!state.runpodKey.set) throw uiError("No RunPod API key is set.", "runpod.no_key");
      return state.runpodKey.value === state.runpodKey.accepts
        ? { ok: true, message: "RunPod accepted the key.", latency_ms: 42 }
        : { ok: false, message: "RunPod refused the API key (401). Check it in the RunPod console (Settings → API Keys) and set it again.", latency_ms: 40 };
    },
    runpod_key_remove: () => {
      state.runpodKey = { ...state.runpodKey, set: false, value: null };
      return { set: false };
    },
    tokens_list: () => TOKEN_HOSTS.map((h) => tokenStatus(h, state.tokensSet.has(h))),
    tokens_set: (a) => {
      const value = String(a.token).trim();
      if (!value) throw uiError("The token is empty. Paste the token itself.", "tokens.empty");
      state.tokenValues.push(value);
      state.tokensSet.add(a.host as TokenHost);
      return tokenStatus(a.host as TokenHost, true);
    },
    tokens_remove: (a) => {
      state.tokensSet.delete(a.host as TokenHost);
      return tokenStatus(a.host as TokenHost, false);
    },
    install_status: () => state.install,
    install_subscribe: (a) => {
      installChannels.push({ id: (a.onUpdate as { id: number }).id, next: 0 });
      return null;
    },
    local_status: () => state.local,
    local_start: () => {
      if (state.local.state === "not_installed") throw uiError("ComfyUI is not installed on this computer. Install it from the Install page.", "local.not_installed");
      state.local = { ...state.local, state: "running", pid: 4242, url: `http://127.0.0.1:${state.local.port}`, last_error: null };
      return state.local;
    },
    local_stop: () => {
      state.local = { ...state.local, state: "stopped", pid: null };
      return state.local;
    },
    local_restart: () => {
      state.local = { ...state.local, state: "starting", pid: 4343, restarts: 0 };
      return state.local;
    },
    local_logs: (a) => {
      const lines = state.localLog.text.split("\n");
      const n = a.lines as number;
      return { ...state.localLog, text: lines.slice(-n).join("\n"), truncated: state.localLog.truncated || lines.length > n };
    },
    local_set_keep_running: (a) => {
      state.local = { ...state.local, keep_running: a.keep as boolean };
      return state.local;
    },
    "plugin:dialog|open": () => state.dialogOpenPath,
    "plugin:dialog|save": () => state.dialogSavePath,
  };

  mockIPC(
    (cmd, payload) => {
      const args = (payload ?? {}) as Record<string, unknown>;
      calls.push({ cmd, args });
      const handler = handlers[cmd] ?? builtin[cmd];
      if (!handler) throw uiError(`The fake backend has no command '${cmd}'.`, "unknown_command");
      return handler(args);
    },
    { shouldMockEvents: true },
  );

  return {
    state,
    calls,
    callsTo: (cmd: string) => calls.filter((c) => c.cmd === cmd),
    /** How many live job subscriptions are open (the app opens one). */
    subscribers: () => channels.length,
    pushJobUpdate,
    /** How many live download subscriptions are open (the app opens one). */
    downloadSubscribers: () => downloadChannels.length,
    pushDownloadUpdate,
    /** How many live install subscriptions are open (the app opens one). */
    installSubscribers: () => installChannels.length,
    pushInstallStatus,
  };
}
