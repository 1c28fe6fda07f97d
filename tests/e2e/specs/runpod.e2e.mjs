// RunPod in the real app, against the testkit's fake RunPod: the API key goes into the keychain from Settings, a
// serverless endpoint is added from the Servers page (cloud badge, workers), a job runs on it while a worker wakes,
// and the billed timings are shown; then a pod is created and its card shown.
import { $, browser, expect } from "@wdio/globals";
import { fill, shot, tid } from "../helpers.mjs";

// The fake RunPod's key (testkit DEFAULT_API_KEY): a test value, not a real key.
const KEY = "rpa_FAKEKEY0000000000000000000000000000000000000000";
const NAME = "Cloud SD";
const row = `${tid("server-row")}[data-server-name="${NAME}"]`;

describe("RunPod", () => {
  before(() => {
    if (!process.env.RUNPOD_ENDPOINT_BASE_URL) throw new Error("RUNPOD_ENDPOINT_BASE_URL is not set: run through wdio.conf.mjs");
  });

  it("keeps the API key in the keychain and tests it", async () => {
    await $(tid("nav-settings")).waitForClickable({ timeout: 60_000 });
    await $(tid("nav-settings")).click();
    await fill("runpod-key-input", KEY);
    await $(tid("runpod-key-save")).click();
    await $(`${tid("runpod-key")}[data-set="true"]`).waitForDisplayed({ timeout: 20_000 });
    await $(tid("runpod-key-test")).click();
    await $(`${tid("runpod-key-result")}[data-ok="true"]`).waitForDisplayed({ timeout: 20_000 });
    // The key never comes back to the webview.
    expect(await browser.execute(() => document.documentElement.outerHTML.includes("rpa_FAKEKEY"))).toBe(false);
  });

  it("adds a serverless endpoint from the Servers page and shows it as cloud", async () => {
    await $(tid("nav-servers")).click();
    await $(tid("add-server")).waitForClickable();
    await $(tid("add-server")).click();
    await fill("server-name", NAME);
    await $(tid("server-kind-runpod_serverless")).click();
    await fill("endpoint-id", "ep-e2e");
    await fill("gpu-class", "ADA_24");
    await $(tid("flavour")).selectByAttribute("value", "sdxl");
    // The SD 1.5 template's checkpoint is on the endpoint's network volume.
    await fill("extra-models", "checkpoints/v1-5-pruned-emaonly-fp16.safetensors");
    await $(tid("test-connection")).click();
    await $(`${tid("test-result")}[data-status="connected"]`).waitForDisplayed({ timeout: 20_000 });
    await shot("runpod-endpoint-form.png");
    await $(tid("save-server")).click();
    await $(row).waitForDisplayed({ timeout: 20_000 });
    await $(`${row} ${tid("cloud-badge")}`).waitForDisplayed();
    await $(`${row} ${tid("test-server")}`).click();
    await $(`${row} ${tid("server-workers")}`).waitForDisplayed({ timeout: 20_000 });
    await $(`${row} ${tid("activate-server")}`).click();
    await $(`${row} ${tid("active-marker")}`).waitForDisplayed({ timeout: 20_000 });
  });

  it("runs a job on the endpoint, says a worker is waking, and shows the billed timings", async () => {
    await $(tid("nav-generate")).click();
    await $(tid("template-select")).waitForDisplayed({ timeout: 20_000 });
    await fill("prompt", "a cloud over a lighthouse, end-to-end test");
    // The router's estimate first: Auto goes to the active endpoint, which has to wake a worker.
    await expect($(tid("target-estimate"))).toHaveText(expect.stringContaining(`Auto would use ${NAME}`), { wait: 20_000 });
    await $(tid("run")).click();
    const card = $(tid("job-card"));
    await card.waitForDisplayed({ timeout: 20_000 });
    // No worker was up: the card says one is waking instead of a bar frozen at 0%.
    await $(tid("job-waking")).waitForDisplayed({ timeout: 20_000 });
    await shot("runpod-waking.png");
    await browser.waitUntil(async () => (await card.getAttribute("data-state")) === "succeeded", {
      timeout: 60_000,
      interval: 250,
      timeoutMsg: "the job on the RunPod endpoint did not succeed",
    });
    await $(tid("job-output")).waitForDisplayed({ timeout: 20_000 });
    await expect($(tid("job-server"))).toHaveText(expect.stringContaining(NAME));
    const timings = $(tid("job-cloud-timings"));
    await timings.waitForDisplayed({ timeout: 20_000 });
    await expect(timings).toHaveText(expect.stringMatching(/waited .* for a worker · executed /));
    await shot("runpod-job-done.png");
  });
});

describe("RunPod pods", () => {
  it("creates a pod from the default preset and shows its card, and its server as cloud", async () => {
    await $(tid("nav-servers")).click();
    await $(tid("create-pod")).waitForClickable({ timeout: 20_000 });
    await $(tid("create-pod")).click();
    await $(tid("create-pod-submit")).waitForClickable({ timeout: 20_000 });
    await $(tid("create-pod-submit")).click();
    const card = $(`${tid("pod-card")}[data-state="running"]`);
    await card.waitForDisplayed({ timeout: 60_000 });
    await expect(card.$(tid("pod-price"))).toHaveText(expect.stringMatching(/\$\d+\.\d+\/h/));
    await card.scrollIntoView();
    await shot("pod-card.png");
    // The pod's ComfyUI joined the server list as a cloud server.
    const podRow = $(`${tid("server-row")} ${tid("cloud-badge")}`);
    await podRow.waitForDisplayed({ timeout: 20_000 });
  });
});
