// The install wizard in the real app against the testkit's install host (COMFYFLEET_MANIFEST points the app at
// its manifest): the system check and the plan, every step with progress (a real venv, pip from the loopback
// index, the model at 1 MB/s), the success screen, then the Local server card with its log, and Stop.
import net from "node:net";
import path from "node:path";
import { $, $$, browser, expect } from "@wdio/globals";
import { shot, tid } from "../helpers.mjs";

const HOME = process.env.COMFYFLEET_E2E_HOME;
const STEPS = ["comfyui", "python", "torch", "requirements", "models:tiny", "start", "verify", "register"];

/** Replaces a field's value as a user would (select all, type), then checks React kept exactly that. */
async function fill(id, value) {
  const input = await $(tid(id));
  await input.waitForDisplayed();
  // The install folder is pre-filled once the app's data dir is known: wait for that before replacing it.
  await browser.waitUntil(async () => (await input.getValue()) !== "", { timeout: 10_000, timeoutMsg: `${id} has no default` });
  await input.click();
  await browser.keys(["Control", "a"]);
  await browser.keys(["Backspace"]);
  await input.setValue(value);
  await browser.waitUntil(async () => (await input.getValue()) === value, {
    timeout: 5_000,
    timeoutMsg: `${id} is not '${value}' (it is '${await input.getValue()}')`,
  });
}

function freePort() {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const stepState = (id) => $(tid(`install-step-${id}`)).getAttribute("data-state");

describe("Install", () => {
  let port;

  before(async () => {
    if (!HOME || !process.env.COMFYFLEET_MANIFEST) throw new Error("COMFYFLEET_E2E_HOME/COMFYFLEET_MANIFEST are not set: run through wdio.conf.mjs");
    port = await freePort();
  });

  it("checks the machine and shows the plan for the chosen folder, pack and port", async () => {
    await $(tid("nav-install")).waitForClickable({ timeout: 60_000 });
    await $(tid("nav-install")).click();
    await $(tid("install-check-screen")).waitForDisplayed({ timeout: 20_000 });
    await fill("install-path", path.join(HOME, "ComfyUI"));
    await fill("install-port", String(port));
    const pack = await $(tid("install-pack-tiny"));
    await pack.waitForDisplayed({ timeout: 20_000 });
    if (!(await pack.isSelected())) await pack.click();
    // The checks of this machine: no GPU here (a warning), Python and the folder pass.
    await $(tid("install-check-gpu")).waitForDisplayed();
    await browser.waitUntil(async () => (await $(tid("install-check-python")).getAttribute("data-level")) === "pass", {
      timeout: 20_000,
      timeoutMsg: "the Python check did not pass",
    });
    expect(await $(tid("install-check-folder")).getAttribute("data-level")).toBe("pass");
    const plan = await $(tid("install-plan"));
    await plan.waitForDisplayed({ timeout: 20_000 });
    expect(await plan.getAttribute("data-variant")).toBe("cpu");
    for (const id of STEPS) await $(tid(`install-plan-step-${id}`)).waitForExist({ timeout: 10_000 });
    await $(tid("install-start")).waitForEnabled({ timeout: 20_000 });
    await shot("install-check.png");
  });

  it("installs step by step with progress, then says ComfyUI is running", async () => {
    await $(tid("install-start")).click();
    await $(tid("install-step-comfyui")).waitForDisplayed({ timeout: 20_000 });
    // The model download (5 MiB at 1 MB/s) shows a moving progress bar.
    await browser.waitUntil(async () => (await stepState("models:tiny")) === "running", {
      timeout: 120_000,
      interval: 200,
      timeoutMsg: "the model download never started",
    });
    for (const id of ["comfyui", "python", "torch", "requirements"]) expect(await stepState(id)).toBe("done");
    await $(`${tid("install-step-models:tiny")} ${tid("install-step-progress")}`).waitForDisplayed({ timeout: 10_000 });
    await shot("install-running.png");
    await $(tid("install-done")).waitForDisplayed({ timeout: 120_000 });
    expect(await $(tid("install-done-url")).getText()).toContain(`127.0.0.1:${port}`);
    await shot("install-done.png");
  });

  it("shows the Local server card running, its log, and stops it", async () => {
    await $(tid("install-go-servers")).click();
    const card = await $(tid("local-card"));
    await card.waitForDisplayed({ timeout: 20_000 });
    await browser.waitUntil(async () => (await $(tid("local-state")).getText()).toLowerCase().includes("running"), {
      timeout: 20_000,
      timeoutMsg: "the Local card does not say running",
    });
    // The installer registered it as the active "Local" server.
    const rows = await $$(tid("server-row"));
    let local = null;
    for (const r of rows) if ((await r.getText()).includes("Local")) local = r;
    expect(local).not.toBeNull();
    await shot("local-card.png");
    await $(tid("local-logs")).click();
    await browser.waitUntil(async () => (await $(tid("local-log-text")).getText()).includes("To see the GUI go to"), {
      timeout: 10_000,
      timeoutMsg: "the log viewer does not show ComfyUI's output",
    });
    await shot("local-logs.png");
    await browser.keys("Escape");
    // A closed dialog leaves the page: wait for it to be gone (a handle to it would go stale).
    await $(tid("local-log-viewer")).waitForExist({ reverse: true, timeout: 5_000 });
    await $(tid("local-stop")).click();
    await browser.waitUntil(async () => (await $(tid("local-state")).getText()).toLowerCase().includes("stopped"), {
      timeout: 20_000,
      timeoutMsg: "the Local card does not say stopped",
    });
  });
});
