import type { Job, JobOutput, Server } from "../../bindings";
import { Button } from "../../components/Button";
import { ProgressBar } from "../../components/ProgressBar";
import { OutputThumb } from "../gallery/OutputThumb";
import { cloudTimingsText, isFinal, isWaking, jobStatusLine, serverName, targetText } from "../jobs/jobFormat";
import { JobStateBadge } from "../jobs/JobStateBadge";
import { progressOf } from "../jobs/jobsReducer";

type Props = {
  job: Job;
  /** The latest live preview (data: URL) while it runs. */
  preview: string | undefined;
  servers: Server[] | null;
  cancelling: boolean;
  onCancel: (job: Job) => void;
  /** Run a failed or cancelled job again (as a new job). */
  retrying: boolean;
  onRetry: (job: Job) => void;
  onOpen: (output: JobOutput) => void;
};

const WAITING_TEXT: Record<Job["state"], string> = {
  queued: "Waiting for a server…",
  dispatched: "The server has it; waiting for it to start…",
  running: "The first preview appears after a few steps.",
  succeeded: "The job finished but its images are still downloading.",
  failed: "No image: the job failed.",
  cancelled: "No image: the job was cancelled.",
};

/** The job the Generate page started: its state, progress, live preview, where it ran and what came out. */
export function JobCard({ job, preview, servers, cancelling, onCancel, retrying, onRetry, onOpen }: Props) {
  const final = isFinal(job.state);
  const on = serverName(servers, job.server_id);
  const outputs = job.outputs.filter((o) => o.path !== "");
  const showOutputs = job.state === "succeeded" && outputs.length > 0;
  // Waking a cloud worker has no measurable progress: a moving bar, not a frozen one at 0%.
  const waking = isWaking(job);
  const progress = job.state === "succeeded" ? 1 : waking ? null : progressOf(job);
  const billed = cloudTimingsText(job);
  const tone = job.state === "failed" ? "bad" : job.state === "succeeded" ? "ok" : "accent";

  return (
    <section className="card job-card" data-testid="job-card" data-state={job.state} data-job-id={job.id} aria-labelledby={`job-card-${job.id}`}>
      <header className="job-card-head">
        <h2 id={`job-card-${job.id}`} className="job-card-title" title={job.name}>
          {job.name}
        </h2>
        {!final && (
          <Button size="sm" variant="ghost" className="btn-danger-text" data-testid="cancel-job" busy={cancelling} onClick={() => onCancel(job)} aria-label={`Cancel ${job.name}`}>
            Cancel
          </Button>
        )}
        {(job.state === "failed" || job.state === "cancelled") && (
          <Button size="sm" data-testid="retry-job" busy={retrying} onClick={() => onRetry(job)} aria-label={`Run ${job.name} again`}>
            Retry
          </Button>
        )}
      </header>

      <div className="job-card-status">
        <JobStateBadge state={job.state} />
        <p className="job-status-line" data-testid="job-status-line" aria-live="polite">
          {jobStatusLine(job, servers)}
        </p>
      </div>
      <ProgressBar value={progress} label={`${job.name} progress`} tone={tone} testId="job-progress" />

      {job.state === "failed" && job.error && (
        <p className="notice notice-bad" role="alert" data-testid="job-error">
          {job.error}
        </p>
      )}

      <div
        className={`preview-frame${showOutputs && outputs.length > 1 ? " preview-frame-grid" : ""}${final && !showOutputs ? " preview-frame-compact" : ""}`}
      >
        {showOutputs ? (
          outputs.map((o) => <OutputThumb key={o.path} output={o} size={outputs.length === 1 ? "lg" : "md"} onOpen={onOpen} testId="job-output" />)
        ) : preview && !final ? (
          <img className="live-preview" data-testid="live-preview" src={preview} alt={`Live preview of ${job.name}`} />
        ) : (
          <p className="preview-placeholder muted" data-testid={waking ? "job-waking" : undefined}>
            {waking ? "Waking a cloud worker (cold start). The job starts as soon as it is up." : WAITING_TEXT[job.state]}
          </p>
        )}
      </div>

      <dl className="job-facts-list">
        <dt>Server</dt>
        <dd data-testid="job-server">{on ?? (final ? "none" : "not chosen yet")}</dd>
        <dt>Target</dt>
        <dd>{targetText(servers, job)}</dd>
        <dt>Priority</dt>
        <dd>{job.priority}</dd>
        {billed && (
          <>
            <dt>Cloud time</dt>
            <dd data-testid="job-cloud-timings">{billed}</dd>
          </>
        )}
      </dl>

      {job.notes.length > 0 && (
        <ul className="job-card-notes" data-testid="job-notes" aria-label="What happened">
          {job.notes.map((n, i) => (
            <li key={i}>{n}</li>
          ))}
        </ul>
      )}

      {showOutputs && <p className="muted small">Click an image to open it. All images are in the Gallery.</p>}
    </section>
  );
}
