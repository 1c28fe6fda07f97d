// Every job the UI knows about: the stored list loaded on start (so the queue and history survive a
// restart), then kept live by ONE app-wide subscription — a Tauri Channel the Rust dispatcher streams every
// job update through (state changes, throttled progress, live previews). Shared by Generate, Jobs, Gallery.
import { createContext, useCallback, useContext, useMemo, useReducer, useState, type ReactNode } from "react";
import { commands, type Job, type JobUpdate } from "../../bindings";
import { useToast } from "../../components/Toast";
import { call, errorMessage } from "../../lib/errors";
import { useLiveFeed, useMounted } from "../../lib/liveFeed";
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
  const toast = useToast();
  const mounted = useMounted();

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
  }, [mounted]);

  // The reducer keeps the fresher copy when the snapshot arrives after a live update.
  const { liveError, reconnect } = useLiveFeed<JobUpdate>(
    commands.jobsSubscribe,
    (update) => {
      if (update.kind === "notice") toast.show(update.message, { title: update.title });
      dispatch({ type: "update", update });
    },
    refresh,
    mounted,
  );

  const upsert = useCallback((job: Job) => dispatch({ type: "upsert", job }), []);

  const jobs = useMemo(() => (loaded ? sortedJobs(state) : null), [loaded, state]);

  const api = useMemo<JobsApi>(
    () => ({ jobs, byId: state.jobs, previews: state.previews, loadError, liveError, refresh, reconnect, upsert }),
    [jobs, state.jobs, state.previews, loadError, liveError, refresh, reconnect, upsert],
  );

  return <JobsContext.Provider value={api}>{children}</JobsContext.Provider>;
}
