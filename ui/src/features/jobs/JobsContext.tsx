// Every job the UI knows about: the stored list loaded on start (so the queue and history survive a
// restart), then kept live by ONE app-wide subscription — a Tauri Channel the Rust dispatcher streams every
// job update through (state changes, throttled progress, live previews). Shared by Generate, Jobs, Gallery.
import { Channel } from "@tauri-apps/api/core";
import { createContext, useCallback, useContext, useEffect, useMemo, useReducer, useRef, useState, type ReactNode } from "react";
import { commands, type Job, type JobUpdate } from "../../bindings";
import { useToast } from "../../components/Toast";
import { call, errorMessage } from "../../lib/errors";
import { initialJobsState, jobsReducer, sortedJobs } from "./jobsReducer";

/** How many stored jobs are loaded on start (newest first). */
export const JOBS_LOAD_LIMIT = 200;

type JobsApi = {
  /** Newest first; null until the first load finishes. */
  jobs: Job[] | null;
  byId: Record<string, Job>;
  /** Live preview (data: URL) of each running job that has sent one. */
  previews: Record<string, string>;
  /** Why the stored jobs could not be loaded; null when they could. */
  loadError: string | null;
  /** Why live updates are not arriving; null while they are. */
  liveError: string | null;
  refresh: () => Promise<void>;
  /** Resubscribes to live updates after a failure. */
  reconnect: () => Promise<void>;
  /** Puts a job a command returned into the list (a fresher copy already there wins). */
  upsert: (job: Job) => void;
};

const JobsContext = createContext<JobsApi | null>(null);

export function useJobs(): JobsApi {
  const api = useContext(JobsContext);
  if (!api) throw new Error("useJobs must be used inside <JobsProvider>");
  return api;
}

export function JobsProvider({ children }: { children: ReactNode }) {
  const [state, dispatch] = useReducer(jobsReducer, initialJobsState);
  const [loaded, setLoaded] = useState(false);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [liveError, setLiveError] = useState<string | null>(null);
  // The one subscription. Kept across StrictMode's effect re-run so the app subscribes once.
  const channel = useRef<Channel<JobUpdate> | null>(null);
  const toast = useToast();
  const toastRef = useRef(toast);
  toastRef.current = toast;
  const mounted = useRef(true);

  const refresh = useCallback(async () => {
    try {
      const list = await call(commands.jobsList([], JOBS_LOAD_LIMIT));
      if (!mounted.current) return;
      dispatch({ type: "loaded", jobs: list });
      setLoaded(true);
      setLoadError(null);
    } catch (e) {
      if (mounted.current) setLoadError(errorMessage(e));
    }
  }, []);

  const subscribe = useCallback(async () => {
    let ch: Channel<JobUpdate>;
    try {
      ch = new Channel<JobUpdate>((update) => {
        if (update.kind === "notice") toastRef.current.show(update.message, { title: update.title });
        dispatch({ type: "update", update });
      });
    } catch (e) {
      // Outside the desktop app there is no IPC to open a channel on.
      setLiveError(errorMessage(e));
      return;
    }
    channel.current = ch;
    try {
      await call(commands.jobsSubscribe(ch));
      if (mounted.current) setLiveError(null);
    } catch (e) {
      if (channel.current === ch) channel.current = null;
      if (mounted.current) setLiveError(errorMessage(e));
    }
  }, []);

  const reconnect = useCallback(async () => {
    await subscribe();
    await refresh();
  }, [subscribe, refresh]);

  useEffect(() => {
    mounted.current = true;
    // Subscribe first, then load: an update that happens in between is then never missed, and the
    // reducer keeps the fresher copy when the snapshot arrives after it.
    const subscribed = channel.current ? Promise.resolve() : subscribe();
    void subscribed.then(refresh);
    return () => {
      mounted.current = false;
    };
  }, [subscribe, refresh]);

  const upsert = useCallback((job: Job) => dispatch({ type: "upsert", job }), []);

  const jobs = useMemo(() => (loaded ? sortedJobs(state) : null), [loaded, state]);

  const api = useMemo<JobsApi>(
    () => ({ jobs, byId: state.jobs, previews: state.previews, loadError, liveError, refresh, reconnect, upsert }),
    [jobs, state.jobs, state.previews, loadError, liveError, refresh, reconnect, upsert],
  );

  return <JobsContext.Provider value={api}>{children}</JobsContext.Provider>;
}
