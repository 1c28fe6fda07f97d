// Generating from a template in the real app: the job goes to a fake ComfyUI that runs it with
// sampler progress and previews, the output lands in the gallery (and can be deleted there), and the Jobs page lists it.
// Then the app shares the fleet as one ComfyUI server, and a client's prompt runs through it.
import fs from "node:fs";
import { $, $$, browser, expect } from "@wdio/globals";
import { fill, shot, tid } from "../helpers.mjs";

const RENDER_URL = process.env.COMFYFLEET_E2E_RENDER_URL;
const NAME = "Render box";
const row = `${tid("server-row")}[data-server-name="${NAME}"]`;

describe("Generate", () => {
  before(() => {
    if (!RENDER_URL) throw new Error("COMFYFLEET_E2E_RENDER_URL is not set: run through wdio.conf.mjs");
  });

  it("adds a render server and makes it active", async () => {
    await $(tid("nav-servers")).waitForClickable({ timeout: 60_000 });
    await $(tid("nav-servers")).click();
    await $(tid("add-server")).waitForClickable();
    await $(tid("add-server")).click();
    await fill("server-name", NAME);
    await fill("server-url-input", RENDER_URL);
    await $(tid("save-server")).click();
    await $(row).waitForDisplayed({ timeout: 20_000 });
    await $(`${row} ${tid("activate-server")}`).click();
    await $(`${row} ${tid("active-marker")}`).waitForDisplayed({ timeout: 20_000 });
  });

  it("generates from the SD 1.5 template with live progress and shows the output", async () => {
    await $(tid("nav-generate")).click();
    await $(tid("template-select")).waitForDisplayed({ timeout: 20_000 });
    await fill("prompt", "a lighthouse made of glass, end-to-end test");
    // Before Run: the router's estimate for what is in the form (asked a moment after typing stops).
    await expect($(tid("target-estimate"))).toHaveText(expect.stringContaining(`Auto would use ${NAME}`), { wait: 20_000 });
    await shot("generate-page.png");
    await $(tid("run")).click();
    const card = $(tid("job-card"));
    await card.waitForDisplayed({ timeout: 20_000 });
    // While it runs: a progress bar and a live preview from the sampler.
    await $(tid("job-progress")).waitForDisplayed({ timeout: 20_000 });
    await $(tid("live-preview")).waitForDisplayed({ timeout: 20_000 });
    await shot("generate-running.png");
    await browser.waitUntil(async () => (await card.getAttribute("data-state")) === "succeeded", {
      timeout: 30_000,
      interval: 200,
      timeoutMsg: "the job did not succeed",
    });
    await $(tid("job-output")).waitForDisplayed({ timeout: 20_000 });
    await expect($(tid("job-server"))).toHaveText(expect.stringContaining(NAME));
    // Asked again once the job is done, the estimate knows how long this server takes.
    await expect($(tid("target-estimate"))).toHaveText(expect.stringMatching(new RegExp(`Auto would use ${NAME}: ~[\\d.]+ s`)), { wait: 20_000 });
    await shot("generate-done.png");
  });

  it("lists the job on the Jobs page and its output in the gallery", async () => {
    await $(tid("nav-jobs")).click();
    await $(`${tid("job-row")}[data-state="succeeded"]`).waitForDisplayed({ timeout: 20_000 });
    await shot("jobs-page.png");
    await $(tid("nav-gallery")).click();
    await $(tid("gallery-item")).waitForDisplayed({ timeout: 20_000 });
    await expect($$(tid("gallery-item"))).toBeElementsArrayOfSize(1);
    await shot("gallery-page.png");
  });

  it("deletes the image from the gallery and from the disk, after asking", async () => {
    const file = await $(tid("gallery-item")).getAttribute("data-path");
    expect(fs.existsSync(file)).toBe(true);
    await $(tid("delete-output")).click();
    await $(tid("confirm-delete-output-yes")).waitForClickable({ timeout: 20_000 });
    await $(tid("confirm-delete-output-yes")).click();
    await $(tid("gallery-empty")).waitForDisplayed({ timeout: 20_000 });
    expect(fs.existsSync(file)).toBe(false);
  });

  it("shares the fleet as one ComfyUI server that runs a client's prompt", async () => {
    await $(tid("nav-settings")).click();
    const section = $(tid("gateway-settings"));
    await section.waitForDisplayed({ timeout: 20_000 });
    await fill("gateway-listen", "127.0.0.1:0");
    await $(tid("gateway-enabled")).click();
    await $(tid("gateway-save")).click();
    await $(tid("gateway-address")).waitForDisplayed({ timeout: 20_000 });
    const base = await $(tid("gateway-address")).getText();
    expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    await section.scrollIntoView();
    await shot("settings-gateway.png");
    // A ComfyUI client (plain HTTP, as scripts use ComfyUI's API) queues a prompt; the fleet runs it on the render box.
    const prompt = {
      1: { class_type: "EmptyImage", inputs: { width: 64, height: 64, batch_size: 1, color: 255 } },
      2: { class_type: "SaveImage", inputs: { images: ["1", 0], filename_prefix: "shared" } },
    };
    const queued = await fetch(`${base}/prompt`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ prompt, client_id: "e2e-script" }),
    });
    expect(queued.status).toBe(200);
    const { prompt_id: id } = await queued.json();
    let entry;
    await browser.waitUntil(
      async () => {
        entry = (await (await fetch(`${base}/history/${id}`)).json())[id];
        return Boolean(entry);
      },
      { timeout: 30_000, interval: 250, timeoutMsg: "the client's prompt did not finish" },
    );
    expect(entry.status.status_str).toBe("success");
    const image = entry.outputs["2"].images[0];
    const view = await fetch(`${base}/view?filename=${encodeURIComponent(image.filename)}&subfolder=${encodeURIComponent(image.subfolder)}&type=output`);
    expect(view.headers.get("content-type")).toBe("image/png");
    // It is a job of the fleet like any other, on the Jobs page.
    await $(tid("nav-jobs")).click();
    const row = $(`${tid("job-row")}[data-job-id="${id}"][data-state="succeeded"]`);
    await row.waitForDisplayed({ timeout: 20_000 });
    await expect(row).toHaveAttribute("aria-label", "Gateway · e2e-script, succeeded");
  });
});
