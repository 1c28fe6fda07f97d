import { useEffect, useMemo, useState } from "react";
import { commands, type Job, type JobCost, type JobState } from "../../bindings";
import { Button } from "../../components/Button";
import { LiveOffNotice, LoadFailedNotice } from "../../components/ListNotices";
import { EmptyState } from "../../components/EmptyState";
import { Loading } from "../../components/Spinner";
import { useToast } from "../../components/Toast";
import { useBusyIds } from "../../lib/busyIds";
import { call, errorMessage } from "../../lib/errors";
import { useOpenOutput } from "../gallery/useOpenOutput";
import { useServers } from "../servers/ServersContext";
import { HISTORY_STATES, JOB_STATE_LABELS } from "./jobFormat";
import { HistoryRow, QueueRow } from "./JobRow";
import { useJobs } from "./JobsContext";

export type HistoryFilter = "all" | "succeeded" | "failed" | "cancelled";

const FILTER_LABELS: Record<HistoryFilter, string> = {
  all: "All finished",
  succeeded: JOB_STATE_LABELS.succeeded,
  failed: JOB_STATE_LABELS.failed,
  cancelled: JOB_STATE_LABELS.cancelled,
};

const EMPTY_FILTER_TEXT: Record<HistoryFilter, string> = {
  all: "",
  succeeded: "No job has finished successfully yet.",
  failed: "No job failed.",
  cancelled: "No job was cancelled.",
};

const LIVE_RANK: Partial<Record<JobState, number>> = { running: 0, dispatched: 1 };

/** Running first, then sent, then the waiting line in the order the dispatcher takes it. */
export function queueOrder(jobs: Job[]): Job[] {
  return jobs
    .filter((j) => j.state === "queued" || j.state === "dispatched" || j.state === "running")
    .sort((a, b) => {
      const ra = LIVE_RANK[a.state] ?? 2;
      const rb = LIVE_RANK[b.state] ?? 2;
      if (ra !== rb) return ra - rb;
      if (ra === 2 && a.priority !== b.priority) return b.priority - a.priority;
      return a.queued_ms - b.queued_ms;
    });
}

/** Finished jobs, most recently finished first. */
export function historyOrder(jobs: Job[], filter: HistoryFilter): Job[] {
  return jobs
    .filter((j) => (filter === "all" ? HISTORY_STATES.includes(j.state) : j.state === filter))
    .sort((a, b) => (b.finished_ms ?? b.queued_ms) - (a.finished_ms ?? a.queued_ms));
}

export function JobsPage({ onGoToGenerate }: { onGoToGenerate?: () => void }) {
  const { jobs, loadError, liveError, refresh, reconnect, upsert } = useJobs();
  const { servers } = useServers();
  const toast = useToast();
  const open = useOpenOutput();
  const [filter, setFilter] = useState<HistoryFilter>("all");
  const cancelling = useBusyIds();
  const retrying = useBusyIds();
  const [reprioritising, setReprioritising] = useState<string | null>(null);

  const queue = useMemo(() => (jobs ? queueOrder(jobs) : []), [jobs]);
  const history = useMemo(() => (jobs ? historyOrder(jobs, filter) : []), [jobs, filter]);
  // What each finished job cost and saved (from the cost ledger).
  const [costs, setCosts] = useState<Record<string, JobCost>>({});
  const historyKey = history.map((j) => j.id).join(",");
  useEffect(() => {
    if (!historyKey) return;
    let live = true;
    commands
      .costsOfJobs(historyKey.split(","))
      .then((r) => {
        if (live && r.status === "ok") setCosts(Object.fromEntries(r.data.map((c) => [c.job_id, c])));
      })
      .catch(() => {});
    return () => {
      live = false;
    };
  }, [historyKey]);
  const finishedCount = useMemo(() => (jobs ? jobs.filter((j) => HISTORY_STATES.includes(j.state)).length : 0), [jobs]);

  async function cancel(job: Job) {
    await cancelling.during(job.id, async () => {
      try {
        upsert(await call(commands.jobsCancel(job.id)));
      } catch (e) {
        toast.show(errorMessage(e), { kind: "error", title: `Could not cancel ${job.name}` });
      }
    });
  }

  async function retry(job: Job) {
    await retrying.during(job.id, async () => {
      try {
        upsert(await call(commands.jobsRetry(job.id)));
        toast.show(`${job.name} is in the queue again, as a new job.`);
      } catch (e) {
        toast.show(errorMessage(e), { kind: "error", title: `Could not run ${job.name} again` });
      }
    });
  }

  async function setPriority(job: Job, priority: number) {
    setReprioritising(job.id);
    try {
      upsert(await call(commands.jobsSetPriority(job.id, priority)));
    } catch (e) {
      toast.show(errorMessage(e), { kind: "error", title: `Could not change the priority of ${job.name}` });
    } finally {
      setReprioritising(null);
    }
  }

  let waiting = 0;

  return (
    <div className="page">
      <header className="page-header">
        <div>
          <h1 className="page-title">Jobs</h1>
          <p className="page-subtitle muted" data-testid="jobs-summary">
            {jobs === null ? "Loading…" : `${queue.length} in the queue · ${finishedCount} finished`}
          </p>
        </div>
      </header>

      {liveError && <LiveOffNotice title="Live updates are off." error={liveError} onReconnect={() => void reconnect()} testId="live-error" />}

      {loadError ? (
        <LoadFailedNotice title="The jobs could not be loaded." error={loadError} onRetry={() => void refresh()} testId="jobs-load-error" />
      ) : jobs === null ? (
        <Loading>Loading jobs…</Loading>
      ) : (
        <>
          <section className="section" aria-labelledby="jobs-queue">
            <header className="section-header">
              <h2 id="jobs-queue" className="section-title">
                Queue <span className="section-count">{queue.length}</span>
              </h2>
              <span className="muted small">Higher priority runs first; a job that went to a server keeps its place there.</span>
            </header>
            {queue.length === 0 ? (
              <EmptyState
                testId="queue-empty"
                title="Nothing in the queue"
                actions={
                  onGoToGenerate && (
                    <Button variant="primary" onClick={onGoToGenerate}>
                      Go to Generate
                    </Button>
                  )
                }
              >
                <p>Jobs you start on the Generate page wait here until a server takes them, then show their progress.</p>
              </EmptyState>
            ) : (
              <ul className="job-list" aria-label="Queue">
                {queue.map((job) => (
                  <QueueRow
                    key={job.id}
                    job={job}
                    position={job.state === "queued" ? ++waiting : null}
                    servers={servers}
                    cancelling={cancelling.has(job.id)}
                    changingPriority={reprioritising === job.id}
                    onCancel={cancel}
                    onPriority={setPriority}
                  />
                ))}
              </ul>
            )}
          </section>

          <section className="section" aria-labelledby="jobs-history">
            <header className="section-header">
              <h2 id="jobs-history" className="section-title">
                History <span className="section-count">{finishedCount}</span>
              </h2>
              <label className="inline-field" htmlFor="job-filter">
                <span className="muted small">Show</span>
                <select
                  id="job-filter"
                  className="select-sm"
                  data-testid="job-filter"
                  value={filter}
                  onChange={(e) => setFilter(e.target.value as HistoryFilter)}
                >
                  {(Object.keys(FILTER_LABELS) as HistoryFilter[]).map((f) => (
                    <option key={f} value={f}>
                      {FILTER_LABELS[f]}
                    </option>
                  ))}
                </select>
              </label>
            </header>
            {history.length === 0 ? (
              <EmptyState testId="history-empty" title={filter === "all" ? "No finished jobs yet" : `No ${FILTER_LABELS[filter].toLowerCase()} jobs`}>
                {filter === "all" ? (
                  <p>Finished, failed and cancelled jobs are listed here with their server, time and images.</p>
                ) : (
                  <p>{EMPTY_FILTER_TEXT[filter]} Choose “All finished” to see the others.</p>
                )}
              </EmptyState>
            ) : (
              <ul className="job-list" aria-label="History">
                {history.map((job) => (
                  <HistoryRow
                    key={job.id}
                    job={job}
                    servers={servers}
                    cost={costs[job.id]}
                    onOpen={(o) => void open(o)}
                    retrying={retrying.has(job.id)}
                    onRetry={(j) => void retry(j)}
                  />
                ))}
              </ul>
            )}
          </section>
        </>
      )}
    </div>
  );
}
