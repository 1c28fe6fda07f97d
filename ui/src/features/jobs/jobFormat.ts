// How a job reads to a person: state labels and tones, which server, how long, what is happening now.
import type { Job, JobCost, JobState, Server } from "../../bindings";
import type { BadgeTone } from "../../components/Badge";
import { formatDuration, percent } from "../../lib/format";
import { jobMoney } from "../generate/estimateFormat";

export const QUEUE_STATES: JobState[] = ["queued", "dispatched", "running"];
export const HISTORY_STATES: JobState[] = ["succeeded", "failed", "cancelled"];

export const JOB_STATE_LABELS: Record<JobState, string> = {
  queued: "Queued",
  dispatched: "Sent",
  running: "Running",
  succeeded: "Done",
  failed: "Failed",
  cancelled: "Cancelled",
};

export function jobStateTone(state: JobState): BadgeTone {
  switch (state) {
    case "succeeded":
      return "ok";
    case "failed":
      return "bad";
    case "running":
      return "accent";
    case "dispatched":
      return "info";
    default:
      return "neutral";
  }
}

export function isFinal(state: JobState): boolean {
  return HISTORY_STATES.includes(state);
}

/** Finished minus started; null while it has not both started and finished. */
export function jobDurationMs(job: Job): number | null {
  if (job.started_ms == null || job.finished_ms == null) return null;
  return Math.max(0, job.finished_ms - job.started_ms);
}

/** Whether a cloud worker is being woken for the job (a cold start), as the core says. */
export function isWaking(job: Job): boolean {
  return job.state === "dispatched" && job.waking;
}

/** What the cloud billed, e.g. "waited 2.1 s for a worker · executed 3.4 s"; null off the cloud. */
export function cloudTimingsText(job: Job): string | null {
  const parts: string[] = [];
  if (job.delay_ms != null) parts.push(`waited ${formatDuration(job.delay_ms)} for a worker`);
  if (job.execution_ms != null) parts.push(`executed ${formatDuration(job.execution_ms)}`);
  return parts.length ? parts.join(" · ") : null;
}

/** A server's name by id; "a removed server" when it is no longer in the list, null for no id. */
export function serverName(servers: Server[] | null, id: string | null): string | null {
  if (!id) return null;
  return servers?.find((s) => s.id === id)?.name ?? "a removed server";
}

/** Where the user sent it: "Auto" or the chosen server. */
export function targetText(servers: Server[] | null, job: Job): string {
  return job.target ? (serverName(servers, job.target) ?? "Auto") : "Auto";
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** One line on what the job is doing now, e.g. "Running on GPU box · 42%". */
export function jobStatusLine(job: Job, servers: Server[] | null, nowMs: number = Date.now()): string {
  const on = serverName(servers, job.server_id);
  switch (job.state) {
    case "queued": {
      const waitS = Math.ceil((job.not_before_ms - nowMs) / 1000);
      const next = waitS > 0 ? `retrying in ${waitS} s` : `waiting for ${job.target ? serverName(servers, job.target) : "a server"}`;
      return capitalize(job.attempts > 0 ? `attempt ${job.attempts} of ${job.max_attempts} failed; ${next}` : next);
    }
    case "dispatched":
      if (isWaking(job)) return `Waking a worker${on ? ` on ${on}` : ""} — a cold start takes a little while`;
      return on ? `Sent to ${on}; waiting for it to start` : "Sent; waiting for the server to start it";
    case "running":
      return `Running${on ? ` on ${on}` : ""} · ${percent(job.progress ?? 0)}%`;
    case "succeeded": {
      const d = jobDurationMs(job);
      return `Done${d != null ? ` in ${formatDuration(d)}` : ""}${on ? ` on ${on}` : ""}`;
    }
    case "failed":
      return `Failed${on ? ` on ${on}` : ""}${job.attempts > 1 ? ` after ${job.attempts} attempts` : ""}`;
    case "cancelled":
      return "Cancelled";
  }
}

export function priorityLabel(p: number): string {
  if (p === 10) return "10 · highest";
  if (p === 5) return "5 · normal";
  if (p === 1) return "1 · lowest";
  return String(p);
}

/** Highest first, as the select lists them. */
export const PRIORITIES = [10, 9, 8, 7, 6, 5, 4, 3, 2, 1];

/** What a finished job cost (and saved against the cloud), e.g. "cost $0.0041 (estimate)", "free · saved $0.0031". */
export function jobCostText(c: JobCost): string {
  const cost = c.cost_micros === 0 ? "free" : `cost ${jobMoney(c.cost_micros)}${c.exact ? "" : " (estimate)"}`;
  return c.saved_micros > 0 ? `${cost} · saved ${jobMoney(c.saved_micros)}` : cost;
}
