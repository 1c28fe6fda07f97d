import { describe, expect, it } from "vitest";
import type { Job } from "../../bindings";
import { job } from "../../test/fakeBackend";
import { initialJobsState, jobsReducer, mergeJob, sortedJobs, type JobsAction, type JobsState } from "./jobsReducer";

function run(actions: JobsAction[], state: JobsState = initialJobsState): JobsState {
  return actions.reduce(jobsReducer, state);
}

const queued = job({ id: "a", state: "queued" });
const dispatched: Job = { ...queued, state: "dispatched", server_id: "gpu", remote_id: "r1" };
const running: Job = { ...dispatched, state: "running", started_ms: 1_700_000_001_000 };
const done: Job = { ...running, state: "succeeded", progress: 1, finished_ms: 1_700_000_009_000, outputs: [{ node_id: "9", filename: "a.png", path: "/g/a.png" }] };

describe("jobsReducer", () => {
  it("applies changes in order and keeps the newer state when an older copy arrives later", () => {
    const s = run([
      { type: "update", update: { kind: "changed", job: queued } },
      { type: "update", update: { kind: "changed", job: running } },
      // The stored list was read before the job started.
      { type: "loaded", jobs: [dispatched] },
      // The submit command's answer arrives after the stream already moved on.
      { type: "upsert", job: queued },
    ]);
    expect(s.jobs.a.state).toBe("running");
    expect(run([{ type: "update", update: { kind: "changed", job: done } }], s).jobs.a.state).toBe("succeeded");
  });

  it("never lets a finished job go back, but lets a failover move a running job back to the queue", () => {
    const finished = run([{ type: "upsert", job: done }, { type: "loaded", jobs: [running] }]);
    expect(finished.jobs.a.state).toBe("succeeded");

    const movedBack: Job = { ...running, state: "queued", server_id: null, progress: 0, failed_on: ["gpu"], notes: ["'GPU box' stopped answering; the job moves to another server"] };
    const s = run([{ type: "upsert", job: { ...running, progress: 0.6 } }, { type: "update", update: { kind: "changed", job: movedBack } }]);
    expect(s.jobs.a.state).toBe("queued");
    expect(s.jobs.a.progress).toBe(0);
    expect(s.jobs.a.notes).toEqual(["'GPU box' stopped answering; the job moves to another server"]);

    const retried: Job = { ...running, state: "queued", attempts: 1, error: "Out of memory" };
    expect(run([{ type: "upsert", job: running }, { type: "upsert", job: retried }]).jobs.a.attempts).toBe(1);
  });

  it("moves progress forward only, for known unfinished jobs", () => {
    let s = run([{ type: "upsert", job: running }, { type: "update", update: { kind: "progress", job_id: "a", progress: 0.5 } }]);
    expect(s.jobs.a.progress).toBe(0.5);
    s = run([{ type: "update", update: { kind: "progress", job_id: "a", progress: 0.3 } }], s);
    expect(s.jobs.a.progress).toBe(0.5);
    // A change with the same stage but older progress keeps the higher progress and takes the rest.
    s = run([{ type: "update", update: { kind: "changed", job: { ...running, progress: 0.2, priority: 8 } } }], s);
    expect(s.jobs.a.progress).toBe(0.5);
    expect(s.jobs.a.priority).toBe(8);
    const unknown = run([{ type: "update", update: { kind: "progress", job_id: "zzz", progress: 0.5 } }], s);
    expect(unknown).toBe(s);
    const after = run([{ type: "upsert", job: done }, { type: "update", update: { kind: "progress", job_id: "a", progress: 0.7 } }], s);
    expect(after.jobs.a.progress).toBe(1);
  });

  it("keeps the latest preview as a data URL and drops it when the job finishes", () => {
    let s = run([
      { type: "upsert", job: running },
      { type: "update", update: { kind: "preview", job_id: "a", mime: "image/jpeg", data_base64: "AAA" } },
      { type: "update", update: { kind: "preview", job_id: "a", mime: "image/png", data_base64: "BBB" } },
    ]);
    expect(s.previews.a).toBe("data:image/png;base64,BBB");
    s = run([{ type: "update", update: { kind: "changed", job: done } }], s);
    expect(s.previews.a).toBeUndefined();
    expect(run([{ type: "update", update: { kind: "preview", job_id: "a", mime: "image/png", data_base64: "CCC" } }], s).previews.a).toBeUndefined();
  });

  it("takes outputs that finished downloading after the job succeeded", () => {
    const pending: Job = { ...done, outputs: [{ node_id: "9", filename: "a.png", path: "" }] };
    expect(mergeJob(done, pending)).toBe(done);
    expect(mergeJob(pending, done)).toBe(done);
  });

  it("takes a job whose image was deleted (one output less, one note more), and not the older copy after it", () => {
    const deleted: Job = { ...done, outputs: [], notes: [...done.notes, "deleted a.png from the gallery"] };
    const s = run([{ type: "upsert", job: done }, { type: "update", update: { kind: "changed", job: deleted } }]);
    expect(s.jobs.a.outputs).toEqual([]);
    expect(run([{ type: "loaded", jobs: [done] }], s).jobs.a.outputs).toEqual([]);
  });

  it("lists newest first", () => {
    const s = run([{ type: "loaded", jobs: [job({ id: "old", queued_ms: 1 }), job({ id: "new", queued_ms: 3 }), job({ id: "mid", queued_ms: 2 })] }]);
    expect(sortedJobs(s).map((j) => j.id)).toEqual(["new", "mid", "old"]);
  });
});
