import { act, screen, waitFor, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import type { Job } from "../../bindings";
import { installFakeBackend, job, server, succeededJob, uiError } from "../../test/fakeBackend";
import { renderApp } from "../../test/render";

const T0 = 1_700_000_000_000;
const gpu = server({ name: "GPU box" });
const laptop = server({ name: "Laptop" });

function rows(section: "Queue" | "History") {
  const list = screen.queryByRole("list", { name: section });
  return list ? within(list).getAllByTestId("job-row") : [];
}

function row(section: "Queue" | "History", id: string) {
  const found = rows(section).find((r) => r.dataset.jobId === id);
  if (!found) throw new Error(`no ${section} row for ${id}`);
  return found;
}

const FLEET: Job[] = [
  job({ id: "low", name: "Low priority sketch", priority: 2, queued_ms: T0 + 1 }),
  job({ id: "urgent", name: "Client poster", priority: 9, queued_ms: T0 + 2, target: laptop.id }),
  job({ id: "run", name: "Castle at dawn", state: "running", server_id: gpu.id, started_ms: T0 + 3_000, queued_ms: T0, progress: 0.4 }),
  succeededJob("done", ["a.png", "b.png"], { name: "Foxes", server_id: gpu.id, started_ms: T0 + 1_000, finished_ms: T0 + 13_400 }),
  job({
    id: "broke",
    name: "Big upscale",
    state: "failed",
    server_id: "id-sold-box",
    attempts: 3,
    started_ms: T0 + 1_000,
    finished_ms: T0 + 126_000,
    error: "CUDA out of memory on 'Old box'. Lower the size or pick a server with more VRAM.",
    notes: ["attempt 1 failed: CUDA out of memory; retrying", "attempt 2 failed: CUDA out of memory; retrying"],
  }),
  job({ id: "stop", name: "Abandoned", state: "cancelled", finished_ms: T0 + 5_000 }),
];

describe("Jobs page", () => {
  it("loads the stored jobs and shows the queue in run order and the history with server, duration, images and errors", async () => {
    const fake = installFakeBackend({ servers: [gpu, laptop], jobs: FLEET });
    renderApp("jobs");

    await waitFor(() => expect(rows("Queue").map((r) => r.dataset.jobId)).toEqual(["run", "urgent", "low"]));
    expect(fake.callsTo("jobs_list")[0].args).toEqual({ states: [], limit: 200 });
    expect(screen.getByTestId("jobs-summary")).toHaveTextContent("3 in the queue · 3 finished");
    expect(screen.getByTestId("nav-jobs-count")).toHaveTextContent("3");

    const running = row("Queue", "run");
    expect(running).toHaveAttribute("data-state", "running");
    expect(within(running).getByTestId("job-status-line")).toHaveTextContent("Running on GPU box · 40%");
    expect(within(running).getByTestId("job-progress")).toHaveAttribute("aria-valuenow", "40");
    expect(within(row("Queue", "urgent")).getByTestId("job-status-line")).toHaveTextContent("Waiting for Laptop");
    expect(within(row("Queue", "urgent")).getByTestId("job-priority")).toHaveValue("9");

    expect(rows("History").map((r) => r.dataset.jobId)).toEqual(["broke", "done", "stop"]);
    const done = row("History", "done");
    expect(within(done).getByTestId("job-state")).toHaveTextContent("Done");
    expect(within(done).getByTestId("job-server")).toHaveTextContent("on GPU box");
    expect(within(done).getByTestId("job-duration")).toHaveTextContent("took 12 s");
    const thumbs = within(done).getAllByTestId("job-output");
    expect(thumbs.map((t) => t.dataset.path)).toEqual(["/gallery/done/a.png", "/gallery/done/b.png"]);
    expect(await within(thumbs[0]).findByRole("img")).toHaveAttribute("src", `data:image/png;base64,${btoa("/gallery/done/a.png")}`);

    const broke = row("History", "broke");
    expect(within(broke).getByTestId("job-state")).toHaveTextContent("Failed");
    expect(within(broke).getByTestId("job-error")).toHaveTextContent("CUDA out of memory on 'Old box'");
    expect(within(broke).getByTestId("job-server")).toHaveTextContent("on a removed server");
    expect(within(broke).getByTestId("job-duration")).toHaveTextContent("took 2 min 5 s");
    expect(within(broke).getByTestId("job-notes")).toHaveTextContent("attempt 2 failed: CUDA out of memory; retrying");
    expect(within(row("History", "stop")).queryByTestId("job-error")).not.toBeInTheDocument();
  });

  it("cancels a job through jobsCancel and moves it to the history", async () => {
    const fake = installFakeBackend({ servers: [gpu], jobs: FLEET });
    const { user } = renderApp("jobs");
    await waitFor(() => expect(rows("Queue")).toHaveLength(3));
    await user.click(within(row("Queue", "urgent")).getByTestId("cancel-job"));

    await waitFor(() => expect(rows("Queue").map((r) => r.dataset.jobId)).toEqual(["run", "low"]));
    expect(fake.callsTo("jobs_cancel")).toEqual([{ cmd: "jobs_cancel", args: { id: "urgent" } }]);
    expect(row("History", "urgent")).toHaveAttribute("data-state", "cancelled");
  });

  it("says why a cancel failed", async () => {
    installFakeBackend({ jobs: FLEET }, {
      jobs_cancel: () => {
        throw uiError("The job 'Castle at dawn' already finished; there is nothing to cancel.", "jobs.invalid");
      },
    });
    const { user } = renderApp("jobs");
    await waitFor(() => expect(rows("Queue")).toHaveLength(3));
    await user.click(within(row("Queue", "run")).getByTestId("cancel-job"));
    expect(await screen.findByTestId("toast")).toHaveTextContent("already finished; there is nothing to cancel.");
  });

  it("runs a failed or cancelled job again as a new job in the queue; a finished one has no Retry", async () => {
    const fake = installFakeBackend({ servers: [gpu], jobs: FLEET });
    const { user } = renderApp("jobs");
    await waitFor(() => expect(rows("History")).toHaveLength(3));
    expect(within(row("History", "done")).queryByTestId("retry-job")).not.toBeInTheDocument();
    expect(within(row("History", "stop")).getByTestId("retry-job")).toBeInTheDocument();

    await user.click(within(row("History", "broke")).getByRole("button", { name: "Run Big upscale again" }));
    await waitFor(() => expect(rows("Queue")).toHaveLength(4));
    expect(fake.callsTo("jobs_retry")).toEqual([{ cmd: "jobs_retry", args: { id: "broke" } }]);
    const again = rows("Queue").find((r) => r.dataset.jobId !== "low" && r.dataset.jobId !== "urgent" && r.dataset.jobId !== "run");
    expect(again).toHaveAttribute("data-state", "queued");
    expect(again).toHaveTextContent("Big upscale");
    // The failed one stays in the history as it ended.
    expect(row("History", "broke")).toHaveAttribute("data-state", "failed");
    expect(await screen.findByTestId("toast")).toHaveTextContent("Big upscale is in the queue again, as a new job.");
  });

  it("says why a retry failed", async () => {
    installFakeBackend({ jobs: FLEET }, {
      jobs_retry: () => {
        throw uiError("The database is busy (another ComfyFleet process holds it). Try again in a moment.", "store.busy");
      },
    });
    const { user } = renderApp("jobs");
    await waitFor(() => expect(rows("History")).toHaveLength(3));
    await user.click(within(row("History", "stop")).getByTestId("retry-job"));
    const toast = await screen.findByTestId("toast");
    expect(toast).toHaveTextContent("Could not run Abandoned again");
    expect(toast).toHaveTextContent("The database is busy");
  });

  it("changes a waiting job's priority and re-sorts the line; jobs on a server keep theirs", async () => {
    const fake = installFakeBackend({ jobs: FLEET });
    const { user } = renderApp("jobs");
    await waitFor(() => expect(rows("Queue")).toHaveLength(3));
    expect(within(row("Queue", "run")).getByTestId("job-priority")).toBeDisabled();

    await user.selectOptions(within(row("Queue", "low")).getByTestId("job-priority"), "10");
    await waitFor(() => expect(rows("Queue").map((r) => r.dataset.jobId)).toEqual(["run", "low", "urgent"]));
    expect(fake.callsTo("jobs_set_priority")[0].args).toEqual({ id: "low", priority: 10 });
  });

  it("filters the history by state, with an empty state for a filter that matches nothing", async () => {
    installFakeBackend({ jobs: FLEET.filter((j) => j.id !== "stop") });
    const { user } = renderApp("jobs");
    await waitFor(() => expect(rows("History")).toHaveLength(2));

    await user.selectOptions(screen.getByTestId("job-filter"), "failed");
    expect(rows("History").map((r) => r.dataset.jobId)).toEqual(["broke"]);
    await user.selectOptions(screen.getByTestId("job-filter"), "succeeded");
    expect(rows("History").map((r) => r.dataset.jobId)).toEqual(["done"]);
    await user.selectOptions(screen.getByTestId("job-filter"), "cancelled");
    expect(rows("History")).toHaveLength(0);
    expect(screen.getByTestId("history-empty")).toHaveTextContent("No cancelled jobs");
    expect(screen.getByTestId("history-empty")).toHaveTextContent("All finished");
    // The queue is not filtered.
    expect(rows("Queue")).toHaveLength(3);
  });

  it("says what to do when there are no jobs, and goes to Generate", async () => {
    installFakeBackend();
    const { user } = renderApp("jobs");
    const empty = await screen.findByTestId("queue-empty");
    expect(empty).toHaveTextContent("Nothing in the queue");
    expect(empty).toHaveTextContent("Generate page");
    expect(screen.getByTestId("history-empty")).toHaveTextContent("No finished jobs yet");
    expect(screen.queryByTestId("nav-jobs-count")).not.toBeInTheDocument();
    await user.click(within(empty).getByRole("button", { name: "Go to Generate" }));
    expect(screen.getByTestId("nav-generate")).toHaveAttribute("aria-current", "page");
  });

  it("moves a job from the queue to the history when the stream says it finished", async () => {
    const fake = installFakeBackend({ servers: [gpu], jobs: [FLEET[2]] });
    renderApp("jobs");
    await waitFor(() => expect(rows("Queue")).toHaveLength(1));
    await waitFor(() => expect(fake.subscribers()).toBe(1));

    await act(async () => fake.pushJobUpdate({ kind: "progress", job_id: "run", progress: 0.9 }));
    expect(within(row("Queue", "run")).getByTestId("job-progress")).toHaveAttribute("aria-valuenow", "90");

    await act(async () => fake.pushJobUpdate({ kind: "changed", job: succeededJob("run", ["x.png"], { name: "Castle at dawn", server_id: gpu.id }) }));
    expect(rows("Queue")).toHaveLength(0);
    expect(screen.getByTestId("queue-empty")).toBeInTheDocument();
    expect(row("History", "run")).toHaveAttribute("data-state", "succeeded");
  });

  it("shows why the jobs could not be loaded and retries", async () => {
    let fail = true;
    installFakeBackend({ jobs: FLEET }, {
      jobs_list: () => {
        if (fail) throw uiError("The job queue in /data/comfyfleet.db could not be read: database is locked.", "store");
        return FLEET;
      },
    });
    const { user } = renderApp("jobs");
    const error = await screen.findByTestId("jobs-load-error");
    expect(error).toHaveTextContent("database is locked");
    fail = false;
    await user.click(within(error).getByRole("button", { name: "Try again" }));
    await waitFor(() => expect(rows("Queue")).toHaveLength(3));
  });

  it("warns when live updates could not be started, and reconnects", async () => {
    let fail = true;
    const fake = installFakeBackend({ jobs: FLEET }, {
      jobs_subscribe: (a) => {
        if (fail) throw uiError("Live job updates could not start: the dispatcher is not running. Restart ComfyFleet.", "jobs.subscribe");
        return null;
      },
    });
    const { user } = renderApp("jobs");
    const warning = await screen.findByTestId("live-error");
    expect(warning).toHaveTextContent("the dispatcher is not running");
    await waitFor(() => expect(rows("Queue")).toHaveLength(3));
    fail = false;
    await user.click(within(warning).getByRole("button", { name: "Reconnect" }));
    await waitFor(() => expect(screen.queryByTestId("live-error")).not.toBeInTheDocument());
    expect(fake.callsTo("jobs_subscribe")).toHaveLength(2);
  });
});

describe("Jobs: notices", () => {
  it("shows a notice from the dispatcher (80 % of a cloud spending cap) at once, on any page", async () => {
    const fake = installFakeBackend({ servers: [gpu] });
    renderApp("servers");
    await waitFor(() => expect(fake.subscribers()).toBe(1));
    await act(async () =>
      fake.pushJobUpdate({
        kind: "notice",
        job_id: "j1",
        title: "Cloud spending",
        message: "80% of today's cloud spending limit is used. At the limit, jobs run on your local GPU or wait.",
      }),
    );
    expect(await screen.findByText(/80% of today's cloud spending limit is used/)).toBeInTheDocument();
    expect(screen.getByText("Cloud spending")).toBeInTheDocument();
  });
});

describe("Jobs: costs", () => {
  it("shows what each finished job cost and saved, from the cost ledger", async () => {
    installFakeBackend({
      servers: [gpu],
      jobs: [succeededJob("done", ["a.png"], { name: "Foxes", server_id: gpu.id, started_ms: T0, finished_ms: T0 + 5_000 })],
      jobCosts: [{ job_id: "done", backend: "local", cost_micros: 0, saved_micros: 3_100, exact: false, how: "5000 ms locally" }],
    });
    renderApp("jobs");
    const cost = await screen.findByTestId("job-cost");
    expect(cost).toHaveTextContent("free · saved $0.0031");
  });
});
