// The server list and live statuses as the UI knows them: loaded on start, kept fresh by the events the
// Rust monitor pushes (no polling). Shared by the Servers page and the status line.
import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from "react";
import { commands, events, type ServerStatus, type Server } from "../../bindings";
import { call, errorMessage } from "../../lib/errors";
import { useToast } from "../../components/Toast";

type ServersApi = {
  /** null until the first load finishes. */
  servers: Server[] | null;
  statuses: Record<string, ServerStatus>;
  /** Why the list could not be loaded; null when it could. */
  loadError: string | null;
  activeServer: Server | null;
  refresh: () => Promise<void>;
  applyStatuses: (statuses: ServerStatus[]) => void;
};

const ServersContext = createContext<ServersApi | null>(null);

export function useServers(): ServersApi {
  const api = useContext(ServersContext);
  if (!api) throw new Error("useServers must be used inside <ServersProvider>");
  return api;
}

/** Keeps the newer of two statuses of the same server, so a late snapshot never hides a pushed update. */
function mergeStatuses(prev: Record<string, ServerStatus>, incoming: ServerStatus[]): Record<string, ServerStatus> {
  const next = { ...prev };
  for (const s of incoming) {
    const old = next[s.server_id];
    if (!old || s.checked_at_ms >= old.checked_at_ms) next[s.server_id] = s;
  }
  return next;
}

export function ServersProvider({ children }: { children: ReactNode }) {
  const toast = useToast();
  const [servers, setServers] = useState<Server[] | null>(null);
  const [statuses, setStatuses] = useState<Record<string, ServerStatus>>({});
  const [loadError, setLoadError] = useState<string | null>(null);
  const loadSeq = useRef(0);
  const mounted = useRef(true);
  const hasList = useRef(false);

  const applyStatuses = useCallback((incoming: ServerStatus[]) => {
    setStatuses((prev) => mergeStatuses(prev, incoming));
  }, []);

  const refresh = useCallback(async () => {
    const seq = ++loadSeq.current;
    try {
      const [list, current] = await Promise.all([call(commands.serversList()), call(commands.serversStatuses())]);
      if (!mounted.current || seq !== loadSeq.current) return;
      setServers(list);
      hasList.current = true;
      setStatuses((prev) => {
        const ids = new Set(list.map((s) => s.id));
        const kept = Object.fromEntries(Object.entries(prev).filter(([id]) => ids.has(id)));
        return mergeStatuses(kept, current);
      });
      setLoadError(null);
    } catch (e) {
      if (!mounted.current || seq !== loadSeq.current) return;
      const message = errorMessage(e);
      if (hasList.current) toast.show(message, { kind: "error", title: "Could not refresh the server list" });
      else setLoadError(message);
    }
  }, [toast]);

  useEffect(() => {
    mounted.current = true;
    void refresh();
    const subscriptions = [
      events.serverStatusChanged.listen((e) => applyStatuses([e.payload.current])),
      events.activeServerChanged.listen((e) => {
        toast.show(e.payload.message);
        void refresh();
      }),
      events.serversChanged.listen(() => void refresh()),
    ].map((p) => p.catch(() => null));
    return () => {
      mounted.current = false;
      for (const p of subscriptions) {
        p.then((unlisten) => unlisten?.()).catch(() => undefined);
      }
    };
  }, [refresh, applyStatuses, toast]);

  const api = useMemo<ServersApi>(
    () => ({
      servers,
      statuses,
      loadError,
      activeServer: servers?.find((s) => s.active) ?? null,
      refresh,
      applyStatuses,
    }),
    [servers, statuses, loadError, refresh, applyStatuses],
  );

  return <ServersContext.Provider value={api}>{children}</ServersContext.Provider>;
}
