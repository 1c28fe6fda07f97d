// The Servers page of the real app: add a server after a connection test against a fake
// ComfyUI, see its live status, make it active, and find it still active after a restart.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { $, $$, browser, expect } from "@wdio/globals";

const here = path.dirname(fileURLToPath(import.meta.url));
const SHOTS = path.resolve(here, "../screenshots");
const DOCS_SHOT = path.resolve(here, "../../../docs/screenshot.png");
const COMFY_URL = process.env.COMFYFLEET_E2E_COMFYUI_URL;
const NAME = "Studio GPU";

const tid = (id) => `[data-testid="${id}"]`;
const rowSelector = `${tid("server-row")}[data-server-name="${NAME}"]`;
const inRow = (id) => `${rowSelector} ${tid(id)}`;

/** Wait until the webview has painted the current DOM (two animation frames, then a beat). */
async function settle() {
  await browser.executeAsync((done) => requestAnimationFrame(() => requestAnimationFrame(() => done())));
  await browser.pause(300);
}

/** Save a screenshot a person can look at; a blank one (taken before the first paint) is retried. */
async function shot(name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  const file = path.join(SHOTS, name);
  for (let attempt = 1; ; attempt++) {
    await settle();
    await browser.saveScreenshot(file);
    // A blank 1200x800 frame compresses to a few KB; any rendered page is far larger.
    if (fs.statSync(file).size > 20_000) return file;
    if (attempt === 10) throw new Error(`screenshot ${name} is still blank after ${attempt} tries`);
    await browser.pause(500);
  }
}

async function fill(id, value) {
  const input = await $(tid(id));
  await input.waitForDisplayed();
  await input.clearValue();
  await input.setValue(value);
  await browser.waitUntil(async () => (await input.getValue()) === value, {
    timeoutMsg: `input ${id} did not take the value ${JSON.stringify(value)}`,
  });
}

async function waitForAttr(selector, attr, want, timeout = 20_000) {
  let last;
  await browser.waitUntil(
    async () => {
      const el = await $(selector);
      if (!(await el.isExisting())) return false;
      last = await el.getAttribute(attr);
      return last === want;
    },
    { timeout, interval: 200, timeoutMsg: `${selector} never had ${attr}="${want}" (last: ${JSON.stringify(last)})` },
  );
}

describe("Servers", () => {
  before(() => {
    if (!COMFY_URL) throw new Error("COMFYFLEET_E2E_COMFYUI_URL is not set: run through wdio.conf.mjs, which starts the fake ComfyUI");
  });

  it("opens, and shows the empty Servers page", async () => {
    // The app opens on Generate; the server list is one click away.
    await $(tid("nav-servers")).waitForClickable({ timeout: 60_000 });
    await $(tid("nav-servers")).click();
    await $(tid("empty-state")).waitForDisplayed({ timeout: 20_000 });
    await expect($(tid("add-server"))).toBeDisplayed();
    await expect($$(tid("server-row"))).toBeElementsArrayOfSize(0);
  });

  it("tests the connection in the Add form and saves the server", async () => {
    await $(tid("add-server")).click();
    await $(tid("server-form")).waitForDisplayed();

    await fill("server-name", NAME);
    await fill("server-url-input", COMFY_URL);
    await shot("add-form.png");

    await $(tid("test-connection")).click();
    await waitForAttr(tid("test-result"), "data-status", "connected");
    await expect($(tid("test-result"))).toHaveText(expect.stringContaining("Connected"));
    await shot("add-form-tested.png");

    await $(tid("save-server")).click();
    // The form is a dialog that leaves the page when saved: wait for it to be gone (a handle to it would go stale).
    await $(tid("server-form")).waitForExist({ reverse: true });
    await $(rowSelector).waitForDisplayed();
    await expect($(inRow("server-url"))).toHaveText(expect.stringContaining(COMFY_URL.replace(/^https?:\/\//, "")));
  });

  it("shows live status, version and VRAM of the saved server", async () => {
    await $(inRow("test-server")).click();
    await waitForAttr(inRow("status-badge"), "data-status", "connected");
    await expect($(inRow("server-version"))).toHaveText(expect.stringContaining("0.3.64"));
    // 24,000,000,000 bytes free of 25,757,220,864: the UI shows "... /24 GB" or "24 GB" free.
    await expect($(inRow("server-vram"))).toHaveText(expect.stringMatching(/\b24(\.0+)?\s*GB/));
    await expect($(inRow("server-queue"))).toHaveText(expect.stringContaining("2"));
    await expect($(inRow("server-error"))).not.toBeExisting();
  });

  it("makes the server active", async () => {
    await expect($(inRow("active-marker"))).not.toBeExisting();
    await $(inRow("activate-server")).click();
    await $(inRow("active-marker")).waitForDisplayed();
    await expect($(inRow("activate-server"))).not.toBeExisting();

    const file = await shot("servers-page.png");
    if (process.env.COMFYFLEET_E2E_UPDATE_DOCS) {
      fs.mkdirSync(path.dirname(DOCS_SHOT), { recursive: true });
      fs.copyFileSync(file, DOCS_SHOT);
    }
  });

  it("keeps the server, still active, after the app restarts", async () => {
    await browser.reloadSession(); // ends the app process and starts a new one on the same data dir
    await $(tid("nav-servers")).waitForClickable({ timeout: 60_000 });
    await $(tid("nav-servers")).click();
    await $(rowSelector).waitForDisplayed({ timeout: 20_000 });
    await expect($(inRow("active-marker"))).toBeDisplayed();
    await expect($(inRow("server-url"))).toHaveText(expect.stringContaining(COMFY_URL.replace(/^https?:\/\//, "")));
    await expect($$(tid("server-row"))).toBeElementsArrayOfSize(1);
    await shot("servers-after-restart.png");
  });
});
