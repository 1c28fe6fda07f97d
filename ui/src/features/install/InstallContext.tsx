// The local install as the UI knows it: its status (asked once on start, then kept live by ONE app-wide Channel the
// Rust side streams the whole status through on every change) and the wizard's form, kept while you visit other pages.
import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from "react";
import { commands, type InstallStatus, type UiError } from "../../bindings";
import { call, errorMessage, type Result } from "../../lib/errors";
import { useLiveFeed, useMounted } from "../../lib/liveFeed";
import { useServers } from "../servers/ServersContext";
import type { InstallForm } from "./installModel";

type InstallApi = {
  /** Null until the first answer. */
  status: InstallStatus | null;
  loadError: string | null;
  liveError: string | null;
  refresh: () => Promise<void>;
  reconnect: () => Promise<void>;
  /** Runs an install command and shows the status it returns, unless the channel already sent a newer one. */
  run: (command: () => Promise<Result<InstallStatus, UiError>>) => Promise<InstallStatus>;
  /** The wizard's form; null until the page fills in its defaults. */
  form: InstallForm | null;
  setForm: (update: (form: InstallForm | null) => InstallForm | null) => void;
};

const InstallContext = createContext<InstallApi | null>(null);

export function useInstall(): InstallApi {
  const api = useContext(InstallContext);
  if (!api) throw new Error("useInstall must be used inside <InstallProvider>");
  return api;
}

export function InstallProvider({ children }: { children: ReactNode }) {
  const [status, setStatus] = useState<InstallStatus | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [form, setFormState] = useState<InstallForm | null>(null);
  /** Counts channel messages: a command's answer older than the last message is not shown. */
  const received = useRef(0);
  const mounted = useMounted();
  const { refresh: refreshServers } = useServers();
  const lastState = useRef<InstallStatus["state"] | null>(null);

  // A finished install registered the "Local" server and made it active: reload the server list once.
  useEffect(() => {
    const state = status?.state ?? null;
    if (state === "done" && lastState.current !== null && lastState.current !== "done") void refreshServers();
    lastState.current = state;
  }, [status?.state, refreshServers]);

  const refresh = useCallback(async () => {
    const before = received.current;
    try {
      const s = await call(commands.installStatus());
      if (!mounted.current) return;
      if (received.current === before) setStatus(s);
      else setStatus((have) => have ?? s);
      setLoadError(null);
    } catch (e) {
      if (mounted.current) setLoadError(errorMessage(e));
    }
  }, [mounted]);

  const { liveError, reconnect } = useLiveFeed<InstallStatus>(
    commands.installSubscribe,
    (s) => {
      received.current += 1;
      setStatus(s);
    },
    refresh,
    mounted,
  );

  const run = useCallback(async (command: () => Promise<Result<InstallStatus, UiError>>) => {
    const before = received.current;
    const s = await call(command());
    if (mounted.current && received.current === before) setStatus(s);
    return s;
  }, [mounted]);

  const setForm = useCallback((update: (form: InstallForm | null) => InstallForm | null) => setFormState(update), []);

  const api = useMemo<InstallApi>(
    () => ({ status, loadError, liveError, refresh, reconnect, run, form, setForm }),
    [status, loadError, liveError, refresh, reconnect, run, form, setForm],
  );
  return <InstallContext.Provider value={api}>{children}</InstallContext.Provider>;
}
