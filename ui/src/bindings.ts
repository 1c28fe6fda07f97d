// HAND-WRITTEN STAND-IN for the file tauri-specta generates from the Rust commands.
// It mirrors the generated shape exactly (commands returning Result, events via __makeEvents__),
// so the generated file can overwrite it without touching any other UI code.

/** user-defined commands **/

export const commands = {
  async serversList(): Promise<Result<ServerView[], UiError>> {
    try {
      return { status: "ok", data: await TAURI_INVOKE("servers_list") };
    } catch (e) {
      if (e instanceof Error) throw e;
      else return { status: "error", error: e as any };
    }
  },
  async serversAdd(input: ServerInput): Promise<Result<ServerView, UiError>> {
    try {
      return { status: "ok", data: await TAURI_INVOKE("servers_add", { input }) };
    } catch (e) {
      if (e instanceof Error) throw e;
      else return { status: "error", error: e as any };
    }
  },
  async serversUpdate(id: string, input: ServerInput): Promise<Result<ServerView, UiError>> {
    try {
      return { status: "ok", data: await TAURI_INVOKE("servers_update", { id, input }) };
    } catch (e) {
      if (e instanceof Error) throw e;
      else return { status: "error", error: e as any };
    }
  },
  async serversDelete(id: string): Promise<Result<DeleteOutcome, UiError>> {
    try {
      return { status: "ok", data: await TAURI_INVOKE("servers_delete", { id }) };
    } catch (e) {
      if (e instanceof Error) throw e;
      else return { status: "error", error: e as any };
    }
  },
  async serversActivate(id: string | null): Promise<Result<null, UiError>> {
    try {
      return { status: "ok", data: await TAURI_INVOKE("servers_activate", { id }) };
    } catch (e) {
      if (e instanceof Error) throw e;
      else return { status: "error", error: e as any };
    }
  },
  async serversTest(id: string, fresh: boolean): Promise<Result<ServerStatus, UiError>> {
    try {
      return { status: "ok", data: await TAURI_INVOKE("servers_test", { id, fresh }) };
    } catch (e) {
      if (e instanceof Error) throw e;
      else return { status: "error", error: e as any };
    }
  },
  async serversTestInput(input: ServerInput, id: string | null): Promise<Result<ServerStatus, UiError>> {
    try {
      return { status: "ok", data: await TAURI_INVOKE("servers_test_input", { input, id }) };
    } catch (e) {
      if (e instanceof Error) throw e;
      else return { status: "error", error: e as any };
    }
  },
  async serversTestAll(fresh: boolean): Promise<Result<ServerStatus[], UiError>> {
    try {
      return { status: "ok", data: await TAURI_INVOKE("servers_test_all", { fresh }) };
    } catch (e) {
      if (e instanceof Error) throw e;
      else return { status: "error", error: e as any };
    }
  },
  async serversStatuses(): Promise<Result<ServerStatus[], UiError>> {
    try {
      return { status: "ok", data: await TAURI_INVOKE("servers_statuses") };
    } catch (e) {
      if (e instanceof Error) throw e;
      else return { status: "error", error: e as any };
    }
  },
  async serversExport(path: string): Promise<Result<ExportReport, UiError>> {
    try {
      return { status: "ok", data: await TAURI_INVOKE("servers_export", { path }) };
    } catch (e) {
      if (e instanceof Error) throw e;
      else return { status: "error", error: e as any };
    }
  },
  async serversImport(path: string): Promise<Result<ImportReport, UiError>> {
    try {
      return { status: "ok", data: await TAURI_INVOKE("servers_import", { path }) };
    } catch (e) {
      if (e instanceof Error) throw e;
      else return { status: "error", error: e as any };
    }
  },
  async settingsGet(): Promise<Result<Settings, UiError>> {
    try {
      return { status: "ok", data: await TAURI_INVOKE("settings_get") };
    } catch (e) {
      if (e instanceof Error) throw e;
      else return { status: "error", error: e as any };
    }
  },
  async settingsSet(settings: Settings): Promise<Result<Settings, UiError>> {
    try {
      return { status: "ok", data: await TAURI_INVOKE("settings_set", { settings }) };
    } catch (e) {
      if (e instanceof Error) throw e;
      else return { status: "error", error: e as any };
    }
  },
  async appInfo(): Promise<Result<AppInfo, UiError>> {
    try {
      return { status: "ok", data: await TAURI_INVOKE("app_info") };
    } catch (e) {
      if (e instanceof Error) throw e;
      else return { status: "error", error: e as any };
    }
  },
};

/** user-defined events **/

export const events = __makeEvents__<{
  serverStatusChanged: ServerStatusChanged;
  activeServerChanged: ActiveServerChanged;
  serversChanged: ServersChanged;
}>({
  serverStatusChanged: "server-status-changed",
  activeServerChanged: "active-server-changed",
  serversChanged: "servers-changed",
});

/** user-defined constants **/

/** user-defined types **/

export type ActiveServerChanged = { server_id: string | null; name: string | null; message: string };
export type AppInfo = { version: string; home: string };
export type AuthInput = { kind: AuthKind; user: string | null; header: string | null; secret: string | null };
export type AuthKind = "none" | "basic" | "bearer" | "api_key" | "comfyui_login";
export type AuthView = { kind: AuthKind; user: string | null; header: string | null };
export type DeleteOutcome = { was_active: boolean; message: string };
export type Device = { name: string; type: string; vram_total: number; vram_free: number };
export type ExportReport = { count: number; path: string };
export type ImportReport = { added: string[]; skipped: SkippedServer[]; needs_credentials: string[] };
export type QueueInfo = { running: number; pending: number };
export type ServerInput = {
  name: string;
  url: string;
  auth: AuthInput;
  tags: string[];
  timeout_ms: number | null;
  max_queue: number | null;
  notes: string;
};
export type ServerKind = "comfyui";
export type ServerStatus = {
  server_id: string;
  status: Status;
  latency_ms: number | null;
  comfyui_version: string | null;
  python_version: string | null;
  pytorch_version: string | null;
  devices: Device[];
  queue: QueueInfo | null;
  last_connected_ms: number | null;
  checked_at_ms: number;
  error: string | null;
};
export type ServerStatusChanged = { server_id: string; name: string; previous: Status; current: ServerStatus };
export type ServerView = {
  id: string;
  name: string;
  url: string;
  kind: ServerKind;
  auth: AuthView;
  tags: string[];
  timeout_ms: number;
  max_queue: number | null;
  notes: string;
  active: boolean;
  has_secret: boolean;
  needs_credentials: boolean;
  plain_http_warning: string | null;
};
export type ServersChanged = { reason: string };
export type Settings = { auto_switch: boolean };
export type SkippedServer = { name: string; reason: string };
export type Status = "unknown" | "connected" | "unreachable" | "timeout" | "auth_failed" | "not_comfyui" | "error";
export type UiError = { code: string; message: string; details: string | null };

/** tauri-specta globals **/

import { invoke as TAURI_INVOKE } from "@tauri-apps/api/core";
import * as TAURI_API_EVENT from "@tauri-apps/api/event";
import { type WebviewWindow as __WebviewWindow__ } from "@tauri-apps/api/webviewWindow";

type __EventObj__<T> = {
  listen: (cb: TAURI_API_EVENT.EventCallback<T>) => ReturnType<typeof TAURI_API_EVENT.listen<T>>;
  once: (cb: TAURI_API_EVENT.EventCallback<T>) => ReturnType<typeof TAURI_API_EVENT.once<T>>;
  emit: null extends T
    ? (payload?: T) => ReturnType<typeof TAURI_API_EVENT.emit>
    : (payload: T) => ReturnType<typeof TAURI_API_EVENT.emit>;
};

export type Result<T, E> = { status: "ok"; data: T } | { status: "error"; error: E };

function __makeEvents__<T extends Record<string, any>>(mappings: Record<keyof T, string>) {
  const cache: Record<string, any> = {};
  return new Proxy(
    {} as unknown as {
      [K in keyof T]: __EventObj__<T[K]> & { (handle: __WebviewWindow__): __EventObj__<T[K]> };
    },
    {
      get: (_, event) => {
        const name = mappings[event as keyof T];
        if (!cache[name]) {
          cache[name] = new Proxy((() => {}) as any, {
            apply: (_target, _this, [window]: [__WebviewWindow__]) => ({
              listen: (arg: any) => window.listen(name, arg),
              once: (arg: any) => window.once(name, arg),
              emit: (arg: any) => window.emit(name, arg),
            }),
            get: (_target, command: keyof __EventObj__<any>) => {
              switch (command) {
                case "listen":
                  return (arg: any) => TAURI_API_EVENT.listen(name, arg);
                case "once":
                  return (arg: any) => TAURI_API_EVENT.once(name, arg);
                case "emit":
                  return (arg: any) => TAURI_API_EVENT.emit(name, arg);
              }
            },
          });
        }
        return cache[name];
      },
    },
  );
}
