// The add/edit server form as plain data: its values, the obvious-mistake checks, the live plain-HTTP
// warning, and the ServerInput sent to Rust (which remains the authority on what is valid).
import type { AuthKind, Flavour, ServerInput, ServerKind, Server } from "../../bindings";

export type FormValues = {
  name: string;
  /** A ComfyUI server, or a RunPod serverless endpoint (which has an endpoint id instead of a URL and auth). */
  serverKind: ServerKind;
  endpointId: string;
  gpuClass: string;
  flavour: Flavour;
  /** Models beyond the flavour's, as folder/file, one per line or comma separated. */
  extraModels: string;
  url: string;
  authKind: AuthKind;
  user: string;
  header: string;
  secret: string;
  tags: string;
  timeoutSec: string;
  maxQueue: string;
  notes: string;
};

export type FormErrors = Partial<Record<keyof FormValues, string>>;

export const NAME_MAX = 64;
export const DEFAULT_TIMEOUT_SEC = 10;
export const URL_PLACEHOLDER = "http://127.0.0.1:8188";

/** RunPod's GPU classes for serverless workers (the price list goes by them). */
export const GPU_CLASSES = ["AMPERE_16", "AMPERE_24", "ADA_24", "ADA_32_PRO", "AMPERE_48", "ADA_48_PRO", "AMPERE_80", "ADA_80_PRO", "HOPPER_141"];

export const FLAVOUR_LABELS: Record<Flavour, string> = {
  base: "base — no models (bring your own on a network volume)",
  sdxl: "sdxl — SDXL base 1.0",
  sd3: "sd3 — SD3 medium",
  "flux1-schnell": "flux1-schnell — FLUX.1 schnell (24 GB)",
  "flux1-dev": "flux1-dev — FLUX.1 dev (24 GB)",
};

export function emptyValues(): FormValues {
  return {
    name: "",
    serverKind: "comfyui",
    endpointId: "",
    gpuClass: "ADA_24",
    flavour: "sdxl",
    extraModels: "",
    url: "",
    authKind: "none",
    user: "",
    header: "",
    secret: "",
    tags: "",
    timeoutSec: String(DEFAULT_TIMEOUT_SEC),
    maxQueue: "",
    notes: "",
  };
}

export function valuesFromServer(s: Server): FormValues {
  return {
    name: s.name,
    serverKind: s.kind,
    endpointId: s.runpod?.endpoint_id ?? "",
    gpuClass: s.runpod?.gpu_class ?? "ADA_24",
    flavour: s.runpod?.flavour ?? "sdxl",
    extraModels: (s.runpod?.extra_models ?? []).join("\n"),
    url: s.url,
    authKind: s.auth.kind,
    user: s.auth.user ?? "",
    header: s.auth.header ?? "",
    secret: "",
    tags: s.tags.join(", "),
    timeoutSec: String(s.timeout_ms / 1000),
    maxQueue: s.max_queue == null ? "" : String(s.max_queue),
    notes: s.notes,
  };
}

export function parseTags(text: string): string[] {
  const seen = new Set<string>();
  const tags: string[] = [];
  for (const raw of text.split(",")) {
    const tag = raw.trim();
    if (tag && !seen.has(tag.toLowerCase())) {
      seen.add(tag.toLowerCase());
      tags.push(tag);
    }
  }
  return tags;
}

export function needsSecret(kind: AuthKind): boolean {
  return kind !== "none";
}

function checkUrl(url: string): string | undefined {
  const u = url.trim();
  if (u === "") return `Enter the server's address, e.g. ${URL_PLACEHOLDER}.`;
  if (!/^https?:\/\//i.test(u)) {
    return `Start the address with http:// or https://, e.g. ${URL_PLACEHOLDER}.`;
  }
  try {
    const parsed = new URL(u);
    if (!parsed.hostname) throw new Error("no host");
  } catch {
    return `"${u}" is not a valid address. Use the form http://host:port, e.g. ${URL_PLACEHOLDER}.`;
  }
  return undefined;
}

/** Checks that only need the connection fields (used by "Test connection" too). */
export function validateConnection(v: FormValues): FormErrors {
  const errors: FormErrors = {};
  if (v.serverKind === "runpod_serverless") {
    const id = v.endpointId.trim();
    if (id === "") errors.endpointId = "Enter the endpoint id shown in the RunPod console under Serverless, e.g. abc123xyz.";
    else if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) errors.endpointId = "An endpoint id has only letters, digits, - and _ (copy it from the RunPod console).";
    if (v.gpuClass.trim() === "") errors.gpuClass = "Choose the GPU class the endpoint's workers use (prices depend on it).";
    const bad = splitModels(v.extraModels).find((m) => !/^[^/\s]+\/.+$/.test(m));
    if (bad) errors.extraModels = `Write each model as folder/file, e.g. loras/style.safetensors ("${bad}" is not).`;
    return errors;
  }
  const urlError = checkUrl(v.url);
  if (urlError) errors.url = urlError;
  if (v.authKind === "basic" && v.user.trim() === "") {
    errors.user = "Enter the user name for basic authentication.";
  }
  if (v.authKind === "api_key" && v.header.trim() === "") {
    errors.header = "Enter the header name the server expects, e.g. X-API-Key.";
  }
  if (v.authKind === "api_key" && v.header.trim() !== "" && !/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(v.header.trim())) {
    errors.header = "A header name has only letters, digits and - _ . (no spaces or colons), e.g. X-API-Key.";
  }
  return errors;
}

export function validate(v: FormValues): FormErrors {
  const errors: FormErrors = {};
  const name = v.name.trim();
  if (name === "") errors.name = 'Give the server a name, e.g. "GPU box".';
  else if ([...name].length > NAME_MAX) {
    errors.name = `Keep the name to ${NAME_MAX} characters or fewer (it has ${[...name].length}).`;
  }
  Object.assign(errors, validateConnection(v));
  const t = v.timeoutSec.trim();
  if (t !== "") {
    const sec = Number(t);
    if (!Number.isFinite(sec) || sec <= 0 || sec > 600) {
      errors.timeoutSec = "Enter the timeout in seconds, between 1 and 600 (10 suits most servers).";
    }
  }
  const q = v.maxQueue.trim();
  if (q !== "" && !/^[1-9][0-9]*$/.test(q)) {
    errors.maxQueue = "Enter a whole number of jobs (1 or more), or leave it empty for no limit.";
  }
  return errors;
}

export function splitModels(text: string): string[] {
  return text
    .split(/[\n,]/)
    .map((m) => m.trim())
    .filter(Boolean);
}

export function hasErrors(errors: FormErrors): boolean {
  return Object.values(errors).some(Boolean);
}

/**
 * The ServerInput for Rust. An empty secret is sent as null, which keeps the stored secret when editing.
 * `fallbackName` is used when testing an unsaved form that has no name yet.
 */
export function toServerInput(v: FormValues, fallbackName?: string): ServerInput {
  const kind = v.authKind;
  const timeout = v.timeoutSec.trim();
  const maxQueue = v.maxQueue.trim();
  const runpod = v.serverKind === "runpod_serverless";
  return {
    name: v.name.trim() || fallbackName || "",
    url: runpod ? "" : v.url.trim(),
    kind: v.serverKind,
    runpod: runpod
      ? { endpoint_id: v.endpointId.trim(), gpu_class: v.gpuClass.trim(), flavour: v.flavour, extra_models: splitModels(v.extraModels) }
      : null,
    auth: runpod ? { kind: "none", user: null, header: null, secret: null } : {
      kind,
      user: kind === "basic" ? v.user.trim() : null,
      header: kind === "api_key" ? v.header.trim() : null,
      secret: needsSecret(kind) && v.secret !== "" ? v.secret : null,
    },
    tags: parseTags(v.tags),
    timeout_ms: timeout === "" ? null : Math.round(Number(timeout) * 1000),
    max_queue: maxQueue === "" ? null : Number(maxQueue),
    notes: v.notes.trim(),
  };
}

function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/^\[|\]$/g, "").replace(/\.$/, "");
  if (h === "localhost" || h.endsWith(".localhost")) return true;
  if (h === "::1" || h === "0:0:0:0:0:0:0:1") return true;
  if (/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h)) return true;
  if (/^::ffff:127\./.test(h)) return true;
  return false;
}

/**
 * The warning shown while typing when credentials would travel unencrypted: an auth kind other than none,
 * an http:// URL, and a host that is not this computer. Mirrors the `plain_http_warning` Rust computes on save.
 */
export function plainHttpWarning(url: string, kind: AuthKind): string | null {
  if (kind === "none") return null;
  let parsed: URL;
  try {
    parsed = new URL(url.trim());
  } catch {
    return null;
  }
  if (parsed.protocol !== "http:" || !parsed.hostname || isLoopbackHost(parsed.hostname)) return null;
  return (
    `Credentials will be sent over plain HTTP to ${parsed.hostname}: anyone on that network can read them. ` +
    `Use https:// (e.g. behind a reverse proxy) or reach the server through a VPN or SSH tunnel.`
  );
}
