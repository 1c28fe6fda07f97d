// An in-memory stand-in for the Rust commands, answered through @tauri-apps/api/mocks' mockIPC so the real
// bindings.ts code path (invoke, Result wrapping, event listen/emit) runs in the tests.
import { mockIPC } from "@tauri-apps/api/mocks";
import type {
  AppInfo,
  ImportReport,
  ServerInput,
  ServerStatus,
  Server,
  Settings,
  UiError,
} from "../bindings";

export type Call = { cmd: string; args: Record<string, unknown> };

type Init = {
  servers?: Server[];
  statuses?: ServerStatus[];
  settings?: Settings;
  appInfo?: AppInfo;
};

const GIB = 1024 ** 3;

export function server(overrides: Partial<Server> & { name: string }): Server {
  return {
    id: `id-${overrides.name.toLowerCase().replace(/\W+/g, "-")}`,
    url: "http://127.0.0.1:8188",
    kind: "comfyui",
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
    last_connected_ms: null,
    checked_at_ms: checkedAt,
    error,
  };
}

export function uiError(message: string, code = "invalid_input"): UiError {
  return { code, message, details: null };
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
  };
  const calls: Call[] = [];
  let nextId = 1;

  function viewFromInput(id: string, input: ServerInput, previous?: Server): Server {
    return {
      id,
      name: input.name,
      url: input.url,
      kind: "comfyui",
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
    app_info: () => state.appInfo,
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
  };
}
