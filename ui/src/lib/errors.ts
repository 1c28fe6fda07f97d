// Turning command results into values or human messages. Every failure the UI shows comes from here.
import type { UiError } from "../bindings";

/** The result shape every generated command returns. */
export type Result<T, E> = { status: "ok"; data: T } | { status: "error"; error: E };

/** A failed command, carrying the UiError the Rust side returned (stable `code`, human `message`). */
export class CommandError extends Error {
  readonly uiError: UiError;
  constructor(uiError: UiError) {
    super(uiError.message);
    this.name = "CommandError";
    this.uiError = uiError;
  }
  get code(): string {
    return this.uiError.code;
  }
}

/** The data of an ok result; throws CommandError for an error result. */
export function unwrap<T>(result: Result<T, UiError>): T {
  if (result.status === "ok") return result.data;
  throw new CommandError(result.error);
}

/** Awaits a command and unwraps it: `const servers = await call(commands.serversList())`. */
export async function call<T>(pending: Promise<Result<T, UiError>>): Promise<T> {
  return unwrap(await pending);
}

function isUiError(e: unknown): e is UiError {
  return typeof e === "object" && e !== null && typeof (e as UiError).message === "string" && "code" in e;
}

export const NOT_IN_APP_MESSAGE =
  "The ComfyFleet core is not reachable: this page only works inside the ComfyFleet desktop app. Start it with `cargo tauri dev`.";

/** The message to show a person for any failure: the UiError's message when there is one. */
export function errorMessage(e: unknown): string {
  if (e instanceof CommandError) return e.message;
  if (isUiError(e)) return e.message;
  if (typeof e === "string" && e.trim() !== "") return e;
  const w = globalThis as { __TAURI_INTERNALS__?: { invoke?: unknown } };
  if (typeof window !== "undefined" && typeof w.__TAURI_INTERNALS__?.invoke !== "function") {
    return NOT_IN_APP_MESSAGE;
  }
  if (e instanceof Error && e.message) return `Unexpected error in the app: ${e.message}`;
  return "Unexpected error in the app. Restart ComfyFleet; if it happens again, report it with the steps that led here.";
}
