import { describe, expect, it } from "vitest";
import { job, server } from "../../test/fakeBackend";
import { cloudTimingsText, isWaking, jobCostText, jobStatusLine } from "./jobFormat";

describe("cloud jobs", () => {
  const cloud = server({ name: "Cloud", kind: "runpod_serverless" });

  it("say a worker is waking while RunPod starts one, instead of waiting silently", () => {
    const waking = job({
      id: "a",
      state: "dispatched",
      server_id: cloud.id,
      notes: ["waking a worker on 'Cloud' (a cold start; the job starts when it is up)"],
      waking: true,
    });
    expect(isWaking(waking)).toBe(true);
    expect(jobStatusLine(waking, [cloud])).toBe("Waking a worker on Cloud — a cold start takes a little while");
    // Once running (or on a ComfyUI server), it is an ordinary job.
    expect(isWaking({ ...waking, state: "running" })).toBe(false);
    expect(isWaking(job({ id: "b", state: "dispatched" }))).toBe(false);
    // The core decides; the note's wording is not read here.
    expect(isWaking(job({ id: "c", state: "dispatched", notes: ["waking a worker"], waking: false }))).toBe(false);
  });

  it("show what RunPod billed: the wait for a worker and the execution", () => {
    expect(cloudTimingsText(job({ id: "a", delay_ms: 2100, execution_ms: 3400 }))).toBe("waited 2.1 s for a worker · executed 3.4 s");
    expect(cloudTimingsText(job({ id: "b", execution_ms: 800 }))).toBe("executed 800 ms");
    expect(cloudTimingsText(job({ id: "c" }))).toBeNull();
  });
});

describe("job costs", () => {
  const c = { job_id: "a", backend: "serverless" as const, cost_micros: 4_030, saved_micros: 0, exact: false, how: "" };
  it("say what a job cost, whether it is an estimate, and what a local job saved", () => {
    expect(jobCostText(c)).toBe("cost $0.0041 (estimate)");
    expect(jobCostText({ ...c, exact: true })).toBe("cost $0.0041");
    expect(jobCostText({ ...c, backend: "local", cost_micros: 0, saved_micros: 3_100 })).toBe("free · saved $0.0031");
  });
});
