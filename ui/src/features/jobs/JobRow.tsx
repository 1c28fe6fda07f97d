import type { Job, JobCost, JobOutput, Server } from "../../bindings";
import { Button } from "../../components/Button";
import { ProgressBar } from "../../components/ProgressBar";
import { formatDuration, timeAgo } from "../../lib/format";
import { OutputThumb } from "../gallery/OutputThumb";
import { cloudTimingsText, jobCostText, jobDurationMs, jobStatusLine, PRIORITIES, priorityLabel, serverName, targetText } from "./jobFormat";
import { JobStateBadge } from "./JobStateBadge";
import { progressOf } from "./jobsReducer";

const THUMBS_SHOWN = 4;

function Notes({ notes }: { notes: string[] }) {
  if (notes.length === 0) return null;
  return (
    <details className="job-notes" data-testid="job-notes">
      <summary>What happened ({notes.length})</summary>
      <ul>
        {notes.map((n, i) => (
          <li key={i}>{n}</li>
        ))}
      </ul>
    </details>
  );
}

type QueueRowProps = {
  job: Job;
  /** Place in the waiting line; null once it went to a server. */
  position: number | null;
  servers: Server[] | null;
  cancelling: boolean;
  changingPriority: boolean;
  onCancel: (job: Job) => void;
  onPriority: (job: Job, priority: number) => void;
};

/** A job waiting or running: where it goes, how far it is, and what can still be changed. */
export function QueueRow({ job, position, servers, cancelling, changingPriority, onCancel, onPriority }: QueueRowProps) {
  const priorityId = `priority-${job.id}`;
  return (
    <li className="job-row" data-testid="job-row" data-state={job.state} data-job-id={job.id} aria-label={`${job.name}, ${job.state}`}>
      {position != null ? (
        <span className="job-position" title={`Number ${position} in line`}>
          {position}
        </span>
      ) : (
        <span className="job-position job-position-live" title="On a server" aria-hidden="true">
          ▶
        </span>
      )}
      <div className="row-main">
        <div className="row-title">
          <JobStateBadge state={job.state} />
          <h3 className="job-name" title={job.name}>
            {job.name}
          </h3>
        </div>
        <div className="row-sub">
          <span data-testid="job-status-line">{jobStatusLine(job, servers)}</span>
          <span className="muted">Target: {targetText(servers, job)}</span>
          <span className="muted">Queued {timeAgo(job.queued_ms)}</span>
        </div>
        {job.state === "running" && <ProgressBar value={progressOf(job)} label={`${job.name} progress`} size="sm" testId="job-progress" />}
        {job.error && job.attempts > 0 && (
          <p className="notice notice-warn" data-testid="job-retry-reason">
            Last attempt: {job.error}
          </p>
        )}
        <Notes notes={job.notes} />
      </div>
      <div className="row-actions">
        <label className="inline-field" htmlFor={priorityId}>
          <span className="muted small">Priority</span>
          <select
            id={priorityId}
            className="select-sm"
            data-testid="job-priority"
            value={job.priority}
            disabled={changingPriority || job.state !== "queued"}
            title={job.state === "queued" ? "Higher runs first" : "The job already went to a server"}
            onChange={(e) => onPriority(job, Number(e.target.value))}
          >
            {PRIORITIES.map((p) => (
              <option key={p} value={p}>
                {priorityLabel(p)}
              </option>
            ))}
          </select>
        </label>
        <Button
          size="sm"
          variant="ghost"
          className="btn-danger-text"
          data-testid="cancel-job"
          busy={cancelling}
          onClick={() => onCancel(job)}
          aria-label={`Cancel ${job.name}`}
        >
          Cancel
        </Button>
      </div>
    </li>
  );
}

type HistoryRowProps = {
  job: Job;
  servers: Server[] | null;
  cost?: JobCost;
  onOpen: (output: JobOutput) => void;
  /** Run a failed or cancelled job again (as a new job); no Retry button without it. */
  onRetry?: (job: Job) => void;
  retrying?: boolean;
};

/** A finished job: how it ended, where, how long it took, what it made or why it failed. */
export function HistoryRow({ job, servers, cost, onOpen, onRetry, retrying = false }: HistoryRowProps) {
  const duration = jobDurationMs(job);
  const ranOn = serverName(servers, job.server_id ?? job.failed_on[job.failed_on.length - 1] ?? null);
  const outputs = job.outputs.filter((o) => o.path !== "");
  const extra = outputs.length - THUMBS_SHOWN;
  return (
    <li className="job-row" data-testid="job-row" data-state={job.state} data-job-id={job.id} aria-label={`${job.name}, ${job.state}`}>
      <div className="row-main">
        <div className="row-title">
          <JobStateBadge state={job.state} />
          <h3 className="job-name" title={job.name}>
            {job.name}
          </h3>
        </div>
        <div className="row-sub job-facts">
          <span data-testid="job-server">{ranOn ? `on ${ranOn}` : "never ran on a server"}</span>
          {duration != null && <span data-testid="job-duration">took {formatDuration(duration)}</span>}
          {cloudTimingsText(job) && (
            <span data-testid="job-cloud-timings" title="What RunPod bills: time waiting for a worker and time executing">
              {cloudTimingsText(job)}
            </span>
          )}
          {cost && (
            <span data-testid="job-cost" title={cost.how}>
              {jobCostText(cost)}
            </span>
          )}
          {job.finished_ms != null && <span className="muted">finished {timeAgo(job.finished_ms)}</span>}
          {job.attempts > 1 && <span className="muted">{job.attempts} attempts</span>}
        </div>
        {job.state === "failed" && job.error && (
          <p className="notice notice-bad" data-testid="job-error">
            {job.error}
          </p>
        )}
        <Notes notes={job.notes} />
      </div>
      {outputs.length > 0 && (
        <div className="job-thumbs">
          {outputs.slice(0, THUMBS_SHOWN).map((o) => (
            <OutputThumb key={o.path} output={o} size="sm" onOpen={onOpen} testId="job-output" />
          ))}
          {extra > 0 && <span className="thumb thumb-sm thumb-more">+{extra}</span>}
        </div>
      )}
      {onRetry && (job.state === "failed" || job.state === "cancelled") && (
        <div className="row-actions">
          <Button
            size="sm"
            data-testid="retry-job"
            busy={retrying}
            onClick={() => onRetry(job)}
            aria-label={`Run ${job.name} again`}
            title="Queue it again as a new job: the same workflow, priority and server choice"
          >
            Retry
          </Button>
        </div>
      )}
    </li>
  );
}
