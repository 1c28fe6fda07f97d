// Re-runs the core's system check and plan whenever the wizard's choices change, ~300 ms after the last change.
import { useEffect, useRef, useState } from "react";
import { commands, type InstallCheck, type InstallRequest } from "../../bindings";
import { call, errorMessage } from "../../lib/errors";

export const CHECK_DEBOUNCE_MS = 300;

type CheckState = {
  /** The latest answer (kept while a newer one is on its way). */
  check: InstallCheck | null;
  /** Whether the answer shown is for older choices than the current ones. */
  checking: boolean;
  error: string | null;
};

/** The check for `request` (null: do not check yet). Answers to older requests are dropped. */
export function useInstallCheck(request: InstallRequest | null, retryKey = 0): CheckState {
  const [state, setState] = useState<CheckState>({ check: null, checking: request != null, error: null });
  const seq = useRef(0);
  const key = request ? JSON.stringify(request) : null;

  useEffect(() => {
    if (key == null) return;
    const mine = ++seq.current;
    setState((s) => ({ ...s, checking: true }));
    const timer = setTimeout(() => {
      call(commands.installCheck(JSON.parse(key) as InstallRequest))
        .then((check) => {
          if (seq.current === mine) setState({ check, checking: false, error: null });
        })
        .catch((e) => {
          if (seq.current === mine) setState((s) => ({ ...s, checking: false, error: errorMessage(e) }));
        });
    }, CHECK_DEBOUNCE_MS);
    return () => {
      clearTimeout(timer);
      // A newer request (or leaving the page) makes any answer on its way stale.
      seq.current += 1;
    };
  }, [key, retryKey]);

  return state;
}
