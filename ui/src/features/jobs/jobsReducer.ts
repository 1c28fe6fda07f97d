// The jobs as the UI knows them, merged from the list snapshot, command results and the live update stream.
// Pure: every merge decision is here and tested without IPC.
import type { Job, JobState, JobUpdate } from "../../bindings";
import { isFinal } from "./jobFormat";

export type JobsState = {
  jobs: Record<string, Job>;
  /** The latest live preview of each unfinished job, as a data: URL. */
  previews: Record<string, string>;
};

export type JobsAction =
  /** The stored list (`jobsList`): may be older than updates that already arrived. */
  | { type: "loaded"; jobs: Job[] }
  /** A job a command returned (submit, cancel, set priority). */
  | { type: "upsert"; job: Job }
  /** One message of the live stream. */
  | { type: "update"; update: JobUpdate };

export const initialJobsState: JobsState = { jobs: {}, previews: {} };

const STATE_RANK: Record<JobState, number> = { queued: 0, dispatched: 1, running: 2, succeeded: 3, failed: 3, cancelled: 3 };

/**
 * How far along its life a copy of a job is. Everything here only grows: a finished job never changes
 * state again, a retry adds an attempt, a failover adds a failed server and a note, and within one attempt
 * the state moves forward; deleting an image takes an output away but adds a note first in the order. Progress is
 * left out: it restarts at 0 when a job moves to another server.
 */
function stage(job: Job): number[] {
  return [
    isFinal(job.state) ? 1 : 0,
    job.attempts,
    job.failed_on.length,
    job.notes.length,
    STATE_RANK[job.state],
    job.outputs.filter((o) => o.path !== "").length,
  ];
}

function compareStage(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

/** A job's progress, 0..1 (the core sends null for a value it could not represent). */
export function progressOf(job: Job): number {
  return job.progress ?? 0;
}

/** The fresher of two copies of the same job; on a tie the incoming one, with the higher progress kept. */
export function mergeJob(existing: Job | undefined, incoming: Job): Job {
  if (!existing) return incoming;
  const order = compareStage(stage(incoming), stage(existing));
  if (order > 0) return incoming;
  if (order < 0) return existing;
  return progressOf(incoming) >= progressOf(existing) ? incoming : { ...incoming, progress: existing.progress };
}

function putJob(state: JobsState, incoming: Job): JobsState {
  const existing = state.jobs[incoming.id];
  const merged = mergeJob(existing, incoming);
  if (merged === existing) return state;
  let previews = state.previews;
  if (isFinal(merged.state) && incoming.id in previews) {
    previews = { ...previews };
    delete previews[incoming.id];
  }
  return { jobs: { ...state.jobs, [incoming.id]: merged }, previews };
}

export function jobsReducer(state: JobsState, action: JobsAction): JobsState {
  switch (action.type) {
    case "loaded":
      return action.jobs.reduce(putJob, state);
    case "upsert":
      return putJob(state, action.job);
    case "update": {
      const u = action.update;
      if (u.kind === "changed") return putJob(state, u.job);
      // Notices are shown, not kept (see JobsContext).
      if (u.kind === "notice") return state;
      const job = state.jobs[u.job_id];
      if (u.kind === "progress") {
        // Unknown jobs get their progress with the next "changed"; finished ones keep their final value.
        if (!job || isFinal(job.state) || u.progress == null || !(u.progress > progressOf(job))) return state;
        return { ...state, jobs: { ...state.jobs, [job.id]: { ...job, progress: Math.min(1, u.progress) } } };
      }
      if (job && isFinal(job.state)) return state;
      return { ...state, previews: { ...state.previews, [u.job_id]: `data:${u.mime};base64,${u.data_base64}` } };
    }
  }
}

/** Newest first (by when they were queued). */
export function sortedJobs(state: JobsState): Job[] {
  return Object.values(state.jobs).sort((a, b) => b.queued_ms - a.queued_ms || (a.id < b.id ? 1 : -1));
}
