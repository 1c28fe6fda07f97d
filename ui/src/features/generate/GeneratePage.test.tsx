import { act, screen, waitFor, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { events, type Job, type JobUpdate, type SubmitRequest } from "../../bindings";
import { connected, failed, installFakeBackend, server, UI_FORMAT_MESSAGE, uiError } from "../../test/fakeBackend";
import { renderApp } from "../../test/render";

type Fake = ReturnType<typeof installFakeBackend>;
type User = ReturnType<typeof renderApp>["user"];

const API_WORKFLOW = JSON.stringify({
  "4": { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "juggernautXL_v9.safetensors" } },
  "6": { class_type: "CLIPTextEncode", inputs: { text: "a castle in the clouds", clip: ["4", 1] } },
  "7": { class_type: "CLIPTextEncode", inputs: { text: "blurry", clip: ["4", 1] } },
  "10": { class_type: "LoraLoader", inputs: { lora_name: "film-grain.safetensors", model: ["4", 0], clip: ["4", 1] } },
});

function submitted(fake: Fake): SubmitRequest[] {
  return fake.callsTo("jobs_submit").map((c) => c.args.request as SubmitRequest);
}

async function push(fake: Fake, update: JobUpdate) {
  await waitFor(() => expect(fake.subscribers()).toBe(1));
  await act(async () => fake.pushJobUpdate(update));
}

/** Runs the default template and returns the job the fake queued. */
async function runDefault(fake: Fake, user: User): Promise<Job> {
  await screen.findByTestId("prompt");
  await user.click(screen.getByTestId("run"));
  await screen.findByTestId("job-card");
  return fake.state.jobs[fake.state.jobs.length - 1];
}

describe("Generate page", () => {
  it("is the first page, with the templates from the core", async () => {
    installFakeBackend();
    renderApp();
    expect(screen.getAllByRole("button", { name: /Generate|Jobs|Gallery|Servers|Settings/ }).map((b) => b.textContent)).toEqual([
      "Generate",
      "Jobs",
      "Gallery",
      "Servers",
      "Settings",
    ]);
    expect(screen.getByTestId("nav-generate")).toHaveAttribute("aria-current", "page");
    const select = await screen.findByTestId("template-select");
    expect(within(select).getAllByRole("option").map((o) => o.textContent)).toEqual([
      "SD 1.5 — text to image",
      "SDXL — text to image",
      "FLUX.1-schnell — text to image",
    ]);
    expect(screen.getByText(/Runs on 4 GB of VRAM/)).toBeInTheDocument();
    expect(screen.getByTestId("steps")).toHaveValue(20);
    expect(screen.getByTestId("seed")).toHaveValue("");
    expect(screen.getByTestId("seed")).toHaveAttribute("placeholder", "Random");
  });

  it("sends the template's fields, the chosen server and priority; an empty seed is null", async () => {
    const gpu = server({ name: "GPU box" });
    const fake = installFakeBackend({ servers: [gpu], statuses: [connected(gpu.id)] });
    const { user } = renderApp();

    await user.selectOptions(await screen.findByTestId("template-select"), "sdxl");
    expect(screen.getByTestId("steps")).toHaveValue(25);
    expect(screen.getByTestId("width")).toHaveValue(1024);
    await user.clear(screen.getByTestId("prompt"));
    await user.type(screen.getByTestId("prompt"), "a red fox in fresh snow");
    await user.clear(screen.getByTestId("negative"));
    await user.type(screen.getByTestId("negative"), "people");
    await user.clear(screen.getByTestId("steps"));
    await user.type(screen.getByTestId("steps"), "30");
    await user.clear(screen.getByTestId("height"));
    await user.type(screen.getByTestId("height"), "768");
    await screen.findByRole("option", { name: "GPU box — Connected" });
    await user.selectOptions(screen.getByTestId("target-select"), gpu.id);
    expect(screen.getByTestId("target-status")).toHaveTextContent("Connected");
    await user.selectOptions(screen.getByTestId("priority"), "8");
    await user.click(screen.getByTestId("run"));

    const card = await screen.findByTestId("job-card");
    expect(submitted(fake)).toEqual([
      {
        name: "a red fox in fresh snow",
        source: {
          kind: "template",
          template_id: "sdxl",
          fields: { prompt: "a red fox in fresh snow", negative: "people", seed: null, steps: 30, width: 1024, height: 768 },
        },
        target: gpu.id,
        priority: 8,
      },
    ]);
    expect(card).toHaveAttribute("data-state", "queued");
    expect(within(card).getByTestId("job-status-line")).toHaveTextContent("Waiting for GPU box");
    expect(within(card).getByTestId("job-progress")).toHaveAttribute("aria-valuenow", "0");
  });

  it("sends a typed or rolled seed as a number, and Auto as a null target", async () => {
    const fake = installFakeBackend();
    const { user } = renderApp();
    const seed = await screen.findByTestId("seed");
    await user.type(seed, "1234");
    await user.click(screen.getByTestId("run"));
    await waitFor(() => expect(submitted(fake)).toHaveLength(1));
    expect(submitted(fake)[0]).toMatchObject({ target: null, priority: 5, source: { fields: { seed: 1234 } } });

    await user.click(screen.getByTestId("seed-dice"));
    const rolled = Number((seed as HTMLInputElement).value);
    expect(Number.isInteger(rolled) && rolled >= 0 && rolled <= 4_294_967_295).toBe(true);
    // Ctrl+Enter in the prompt runs too.
    await user.click(screen.getByTestId("prompt"));
    await user.keyboard("{Control>}{Enter}{/Control}");
    await waitFor(() => expect(submitted(fake)).toHaveLength(2));
    expect(submitted(fake)[1]).toMatchObject({ source: { fields: { seed: rolled } } });
  });

  it("points at the mistakes instead of running when a field is wrong", async () => {
    const fake = installFakeBackend();
    const { user } = renderApp();
    await user.clear(await screen.findByTestId("prompt"));
    await user.type(screen.getByTestId("seed"), "lucky");
    await user.clear(screen.getByTestId("width"));
    await user.type(screen.getByTestId("width"), "500");
    await user.click(screen.getByTestId("run"));

    expect(screen.getByTestId("prompt-error")).toHaveTextContent("Describe the image you want.");
    expect(screen.getByTestId("seed-error")).toHaveTextContent("Leave it empty for a random one");
    expect(screen.getByTestId("width-error")).toHaveTextContent("multiple of 8");
    expect(screen.getByTestId("prompt")).toHaveFocus();
    expect(fake.callsTo("jobs_submit")).toHaveLength(0);
    expect(screen.queryByTestId("job-card")).not.toBeInTheDocument();

    await user.type(screen.getByTestId("prompt"), "a fox");
    expect(screen.queryByTestId("prompt-error")).not.toBeInTheDocument();
  });

  it("shows the core's message when submitting fails", async () => {
    installFakeBackend({}, {
      jobs_submit: () => {
        throw uiError("Width and height must be multiples of 8 (got 500×512).", "templates.invalid");
      },
    });
    const { user } = renderApp();
    await screen.findByTestId("prompt");
    await user.click(screen.getByTestId("run"));
    expect(await screen.findByTestId("submit-error")).toHaveTextContent("Width and height must be multiples of 8 (got 500×512).");
  });

  it("refuses a workflow in UI format with the core's explanation", async () => {
    const fake = installFakeBackend();
    const { user } = renderApp();
    await user.click(await screen.findByTestId("source-workflow"));
    const file = new File([JSON.stringify({ nodes: [{ id: 1 }], links: [] })], "my-workflow.json", { type: "application/json" });
    await user.upload(screen.getByTestId("workflow-file"), file);

    const error = await screen.findByTestId("workflow-error");
    expect(error).toHaveTextContent(UI_FORMAT_MESSAGE);
    expect(error).toHaveTextContent("Workflow > Export (API)");
    expect(fake.callsTo("workflow_inspect")[0].args).toEqual({ workflowJson: JSON.stringify({ nodes: [{ id: 1 }], links: [] }) });
    expect(screen.getByTestId("workflow-file-name")).toHaveTextContent("my-workflow.json");
    expect(screen.queryByTestId("workflow-info")).not.toBeInTheDocument();

    await user.click(screen.getByTestId("run"));
    expect(screen.getByTestId("submit-error")).toHaveTextContent("This workflow cannot run");
    expect(fake.callsTo("jobs_submit")).toHaveLength(0);
  });

  it("shows an imported workflow's text inputs and models, and sends only the edited inputs", async () => {
    const fake = installFakeBackend();
    const { user } = renderApp();
    await user.click(await screen.findByTestId("source-workflow"));
    await user.click(screen.getByTestId("workflow-json"));
    await user.paste(API_WORKFLOW);
    await user.click(screen.getByTestId("inspect-workflow"));

    const info = await screen.findByTestId("workflow-info");
    expect(within(info).getByTestId("workflow-summary")).toHaveTextContent("4 nodes · 4 text inputs · 2 models");
    expect(within(info).getAllByTestId("workflow-model").map((m) => m.textContent)).toEqual([
      "checkpoints/juggernautXL_v9.safetensors",
      "loras/film-grain.safetensors",
    ]);
    const inputs = within(info).getAllByTestId("workflow-input");
    expect(inputs.map((i) => `${i.dataset.nodeId}.${i.dataset.field}=${(i as HTMLTextAreaElement).value}`)).toEqual([
      "4.ckpt_name=juggernautXL_v9.safetensors",
      "6.text=a castle in the clouds",
      "7.text=blurry",
      "10.lora_name=film-grain.safetensors",
    ]);
    expect(screen.getByLabelText("#6 · CLIPTextEncode · text")).toBe(inputs[1]);

    await user.clear(inputs[1]);
    await user.type(inputs[1], "a lighthouse at night");
    await user.click(screen.getByTestId("run"));
    await waitFor(() => expect(submitted(fake)).toHaveLength(1));
    expect(submitted(fake)[0]).toEqual({
      name: "Imported workflow",
      source: { kind: "workflow", workflow_json: API_WORKFLOW, edits: [{ node_id: "6", field: "text", value: "a lighthouse at night" }] },
      target: null,
      priority: 5,
    });
  });

  it("follows the job live: progress, preview, server, then the images", async () => {
    const gpu = server({ name: "GPU box" });
    const fake = installFakeBackend({ servers: [gpu], statuses: [connected(gpu.id)] });
    const { user } = renderApp();
    const queued = await runDefault(fake, user);
    const card = screen.getByTestId("job-card");
    expect(within(card).queryByTestId("live-preview")).not.toBeInTheDocument();

    const running: Job = { ...queued, state: "running", server_id: gpu.id, started_ms: queued.queued_ms + 500 };
    await push(fake, { kind: "changed", job: running });
    expect(card).toHaveAttribute("data-state", "running");
    expect(within(card).getByTestId("job-server")).toHaveTextContent("GPU box");

    await push(fake, { kind: "progress", job_id: queued.id, progress: 0.42 });
    expect(within(card).getByTestId("job-progress")).toHaveAttribute("aria-valuenow", "42");
    expect(within(card).getByTestId("job-status-line")).toHaveTextContent("Running on GPU box · 42%");

    await push(fake, { kind: "preview", job_id: queued.id, mime: "image/jpeg", data_base64: "/9j/4AAQ" });
    expect(within(card).getByTestId("live-preview")).toHaveAttribute("src", "data:image/jpeg;base64,/9j/4AAQ");

    const output = { node_id: "9", filename: "ComfyFleet_sd15_00001_.png", path: "/gallery/job-1/ComfyFleet_sd15_00001_.png" };
    await push(fake, { kind: "changed", job: { ...running, state: "succeeded", progress: 1, finished_ms: running.started_ms! + 12_400, outputs: [output] } });
    expect(card).toHaveAttribute("data-state", "succeeded");
    expect(within(card).getByTestId("job-progress")).toHaveAttribute("aria-valuenow", "100");
    expect(within(card).getByTestId("job-status-line")).toHaveTextContent("Done in 12 s on GPU box");
    expect(within(card).queryByTestId("live-preview")).not.toBeInTheDocument();
    const thumb = within(card).getByTestId("job-output");
    expect(await within(thumb).findByRole("img")).toHaveAttribute("src", `data:image/png;base64,${btoa(output.path)}`);

    await user.click(thumb);
    expect(fake.callsTo("open_path").at(-1)?.args).toEqual({ path: output.path, reveal: false });
  });

  it("shows why a job failed and where it moved on the way", async () => {
    const a = server({ name: "A" });
    const b = server({ name: "B" });
    const fake = installFakeBackend({ servers: [a, b], statuses: [failed(a.id, "timeout", "A did not answer."), connected(b.id)] });
    const { user } = renderApp();
    const queued = await runDefault(fake, user);
    const note = "'A' stopped answering; the job moves to another server";
    await push(fake, {
      kind: "changed",
      job: {
        ...queued,
        state: "failed",
        server_id: b.id,
        attempts: 1,
        finished_ms: queued.queued_ms + 9_000,
        failed_on: [a.id, b.id],
        notes: [note],
        error: "ComfyUI on 'B' rejected the prompt: Value not in list: ckpt_name 'v1-5-pruned-emaonly-fp16.safetensors'. Install the model or pick another server.",
      },
    });
    const card = screen.getByTestId("job-card");
    expect(card).toHaveAttribute("data-state", "failed");
    expect(within(card).getByTestId("job-error")).toHaveTextContent("Value not in list: ckpt_name");
    expect(within(card).getByTestId("job-notes")).toHaveTextContent(note);
    expect(within(card).queryByTestId("cancel-job")).not.toBeInTheDocument();
  });

  it("cancels the running job from its card", async () => {
    const fake = installFakeBackend();
    const { user } = renderApp();
    const queued = await runDefault(fake, user);
    await user.click(within(screen.getByTestId("job-card")).getByTestId("cancel-job"));
    await waitFor(() => expect(screen.getByTestId("job-card")).toHaveAttribute("data-state", "cancelled"));
    expect(fake.callsTo("jobs_cancel")[0].args).toEqual({ id: queued.id });
  });

  it("keeps the form and the current job while you visit other pages", async () => {
    installFakeBackend();
    const { user } = renderApp();
    await user.clear(await screen.findByTestId("prompt"));
    await user.type(screen.getByTestId("prompt"), "a quiet harbour");
    await user.click(screen.getByTestId("run"));
    await screen.findByTestId("job-card");
    await user.click(screen.getByTestId("nav-jobs"));
    await user.click(screen.getByTestId("nav-generate"));
    expect(await screen.findByTestId("prompt")).toHaveValue("a quiet harbour");
    expect(screen.getByTestId("job-card")).toHaveTextContent("a quiet harbour");
  });

  it("changes the routing policy through routerSet and explains what Auto does", async () => {
    const fake = installFakeBackend({
      servers: [server({ name: "GPU box" })],
      router: { policy: "manual", auto_switch: true, local_queue_threshold: 3, max_in_flight: 2 },
    });
    const { user } = renderApp();
    const select = await screen.findByTestId("policy-select");
    await waitFor(() => expect(select).toHaveValue("manual"));
    await user.selectOptions(select, "least_busy");
    await waitFor(() => expect(fake.callsTo("router_set")).toHaveLength(1));
    expect(fake.callsTo("router_set")[0].args).toEqual({ config: { policy: "least_busy", auto_switch: true, local_queue_threshold: 3, max_in_flight: 2 } });
    await waitFor(() => expect(select).toBeEnabled());
    expect(select).toHaveValue("least_busy");
    expect(screen.getByText("Auto sends each job to the server with the shortest queue.")).toBeInTheDocument();
    expect(screen.getByTestId("target-select")).toHaveValue("");
  });

  it("puts the policy back and says why when saving it fails", async () => {
    installFakeBackend({}, {
      router_set: () => {
        throw uiError("The router settings could not be saved: database is locked. Try again.", "store");
      },
    });
    const { user } = renderApp();
    const select = await screen.findByTestId("policy-select");
    await waitFor(() => expect(select).toHaveValue("manual"));
    await user.selectOptions(select, "fastest");
    expect(await screen.findByTestId("toast")).toHaveTextContent("database is locked");
    await waitFor(() => expect(select).toHaveValue("manual"));
  });
});

describe("Generate: Retry", () => {
  it("runs a failed job again from its card, and the card follows the new job", async () => {
    const gpu = server({ name: "GPU box", active: true });
    const fake = installFakeBackend({ servers: [gpu], statuses: [connected(gpu.id)] });
    const { user } = renderApp("generate");
    const queued = await runDefault(fake, user);
    const card = screen.getByTestId("job-card");
    expect(within(card).queryByTestId("retry-job")).not.toBeInTheDocument();
    await push(fake, { kind: "changed", job: { ...queued, state: "failed", error: "CUDA out of memory", finished_ms: queued.queued_ms + 900 } });
    expect(within(card).getByTestId("job-error")).toHaveTextContent("CUDA out of memory");

    await user.click(within(card).getByRole("button", { name: `Run ${queued.name} again` }));
    await waitFor(() => expect(screen.getByTestId("job-card")).toHaveAttribute("data-state", "queued"));
    expect(fake.callsTo("jobs_retry")).toEqual([{ cmd: "jobs_retry", args: { id: queued.id } }]);
    expect(screen.getByTestId("job-card").dataset.jobId).not.toBe(queued.id);
  });
});

describe("Generate: estimates before Run", () => {
  it("shows each server's time and cost in the chooser and what Auto would use", async () => {
    const gpu = server({ name: "GPU box", active: true });
    const cloud = server({ name: "Cloud", kind: "runpod_serverless" });
    const estimates = [
      { server_id: gpu.id, name: gpu.name, online: true, lacks_models: false, auto: true, cold: false, time_secs: 8.2, cost_micros: 0 },
      { server_id: cloud.id, name: cloud.name, online: true, lacks_models: false, auto: false, cold: true, time_secs: null, cost_micros: 20_150 },
    ];
    installFakeBackend({ servers: [gpu, cloud], estimates });
    renderApp("generate");
    const hint = await screen.findByTestId("target-estimate", {}, { timeout: 3000 });
    expect(hint).toHaveTextContent("Auto would use GPU box: ~8.2 s · free");
    const select = screen.getByTestId("target-select");
    expect(select).toHaveTextContent("Cloud — Not tested · time not measured yet · ~$0.02 · wakes a worker");
  });
  it("asks again when the job shown finishes, so the time it measured shows before the next Run", async () => {
    const gpu = server({ name: "GPU box", active: true });
    const unmeasured = { server_id: gpu.id, name: gpu.name, online: true, lacks_models: false, auto: true, cold: false, time_secs: null, cost_micros: 0 };
    const fake = installFakeBackend({ servers: [gpu], statuses: [connected(gpu.id)], estimates: [unmeasured] });
    const { user } = renderApp("generate");
    expect(await screen.findByTestId("target-estimate", {}, { timeout: 3000 })).toHaveTextContent("Auto would use GPU box: time not measured yet · free");
    const queued = await runDefault(fake, user);
    const asked = fake.callsTo("jobs_estimate").length;

    fake.state.estimates = [{ ...unmeasured, time_secs: 1.6 }];
    await push(fake, { kind: "changed", job: { ...queued, state: "succeeded", progress: 1, server_id: gpu.id, started_ms: queued.queued_ms, finished_ms: queued.queued_ms + 1600 } });
    await waitFor(() => expect(screen.getByTestId("target-estimate")).toHaveTextContent("Auto would use GPU box: ~1.6 s · free"), { timeout: 3000 });
    expect(fake.callsTo("jobs_estimate").length).toBe(asked + 1);
  });
  it("asks again when a server's queue changes, so the wait before the job starts is current", async () => {
    const gpu = server({ name: "GPU box", active: true });
    const idle = { server_id: gpu.id, name: gpu.name, online: true, lacks_models: false, auto: true, cold: false, time_secs: 8, cost_micros: 0 };
    const fake = installFakeBackend({ servers: [gpu], statuses: [connected(gpu.id, { queue: { running: 0, pending: 0 }, checked_at_ms: 1000 })], estimates: [idle] });
    renderApp("generate");
    expect(await screen.findByTestId("target-estimate", {}, { timeout: 3000 })).toHaveTextContent("~8.0 s");

    fake.state.estimates = [{ ...idle, time_secs: 40 }];
    const busy = connected(gpu.id, { queue: { running: 1, pending: 3 }, checked_at_ms: 2000 });
    await act(() => events.serverStatusChanged.emit({ server_id: gpu.id, name: gpu.name, previous: "connected", current: busy, availability_changed: false }));
    await waitFor(() => expect(screen.getByTestId("target-estimate")).toHaveTextContent("Auto would use GPU box: ~40 s · free"), { timeout: 3000 });
  });

  it("asks again when a cloud endpoint's worker wakes, so Auto stops saying it has to wake one", async () => {
    const cloud = server({ name: "Cloud", kind: "runpod_serverless", active: true });
    const cold = { server_id: cloud.id, name: cloud.name, online: true, lacks_models: false, auto: true, cold: true, time_secs: 3, cost_micros: 10_000 };
    const fake = installFakeBackend({
      servers: [cloud],
      statuses: [connected(cloud.id, { workers: { idle: 0, running: 0 }, checked_at_ms: 1000 })],
      estimates: [cold],
    });
    renderApp("generate");
    expect(await screen.findByTestId("target-estimate", {}, { timeout: 3000 })).toHaveTextContent("wakes a worker");

    fake.state.estimates = [{ ...cold, cold: false }];
    const warm = connected(cloud.id, { workers: { idle: 1, running: 0 }, checked_at_ms: 2000 });
    await act(() => events.serverStatusChanged.emit({ server_id: cloud.id, name: cloud.name, previous: "connected", current: warm, availability_changed: false }));
    await waitFor(() => expect(screen.getByTestId("target-estimate")).not.toHaveTextContent("wakes a worker"), { timeout: 3000 });
    expect(screen.getByTestId("target-estimate")).toHaveTextContent("Auto would use Cloud: ~3.0 s · ~$0.01");
  });
});
