// Downloading a file in the real app from the testkit's file host (6 MiB at 400 kB/s): the progress bar moves,
// the download pauses (its bytes stop) and resumes, then finishes verified against the SHA-256 given in the form.
import fs from "node:fs";
import path from "node:path";
import { $, browser, expect } from "@wdio/globals";
import { fill, shot, tid } from "../helpers.mjs";

const FILES_URL = process.env.COMFYFLEET_E2E_FILES_URL;
const SHA256 = process.env.COMFYFLEET_E2E_FILE_SHA256;
const HOME = process.env.COMFYFLEET_E2E_HOME;
const FILE = "e2e-model.safetensors";
const SIZE = 6 * 1024 * 1024;
const row = `${tid("download-row")}[data-file-name="${FILE}"]`;

/** The row's progress bar value in percent (0 when the bar is indeterminate or gone). */
async function percent() {
  const bar = $(`${row} ${tid("download-progress")}`);
  if (!(await bar.isExisting())) return 0;
  return Number((await bar.getAttribute("aria-valuenow")) ?? 0);
}

async function state() {
  return $(row).getAttribute("data-state");
}

async function waitForState(want, timeout = 30_000) {
  await browser.waitUntil(async () => want.includes(await state()), {
    timeout,
    interval: 100,
    timeoutMsg: `the download did not become ${want.join(" or ")} (it is ${await state().catch(() => "gone")})`,
  });
}

describe("Downloads", () => {
  before(() => {
    if (!FILES_URL || !SHA256 || !HOME) throw new Error("COMFYFLEET_E2E_FILES_URL/FILE_SHA256/HOME are not set: run through wdio.conf.mjs");
  });

  it("opens the Downloads page from the nav and shows the empty state", async () => {
    await $(tid("nav-downloads")).waitForClickable({ timeout: 60_000 });
    await $(tid("nav-downloads")).click();
    await $(tid("downloads-empty")).waitForDisplayed({ timeout: 20_000 });
  });

  it("checks the form before sending", async () => {
    await fill("download-url-input", "ftp://example.com/model.bin");
    await $(tid("add-download")).click();
    await $(tid("download-url-input-error")).waitForDisplayed();
    await expect($(tid("download-url-input-error"))).toHaveText(expect.stringContaining("http://"));
  });

  it("downloads a file with live progress, pauses and resumes it, and verifies it", async () => {
    await fill("download-url-input", `${FILES_URL}/models/${FILE}`);
    await fill("download-sha-input", SHA256);
    await $(tid("add-download")).click();
    await $(row).waitForDisplayed({ timeout: 20_000 });

    // The bar moves.
    await browser.waitUntil(async () => (await percent()) > 0, { timeout: 30_000, interval: 100, timeoutMsg: "no progress" });
    const first = await percent();
    await browser.waitUntil(async () => (await percent()) > first, { timeout: 30_000, interval: 100, timeoutMsg: `progress stayed at ${first}%` });
    await expect($(`${row} ${tid("download-numbers")}`)).toHaveText(expect.stringMatching(/MB of 6\.3 MB · .*\/s/));
    await expect($(tid("nav-downloads-count"))).toHaveText("1");
    await shot("downloads-running.png");

    // Paused: the bytes stop.
    await $(`${row} ${tid("download-pause")}`).click();
    await waitForState(["paused"]);
    await $(`${row} ${tid("download-resume")}`).waitForClickable();
    await browser.pause(1_000); // bytes already in flight settle
    const held = await percent();
    await browser.pause(1_500);
    expect(await percent()).toBe(held);
    expect(held).toBeLessThan(100);

    // Resumed: it goes on from there (not from zero) and finishes.
    await $(`${row} ${tid("download-resume")}`).click();
    await browser.waitUntil(async () => (await state()) === "done" || (await percent()) > held, {
      timeout: 30_000,
      interval: 100,
      timeoutMsg: "the download did not move after Resume",
    });
    await waitForState(["done"], 120_000);
    await expect($(`${row} ${tid("download-sha256")}`)).toHaveText(expect.stringContaining(SHA256));
    await expect($(`${row} ${tid("download-numbers")}`)).toHaveText(expect.stringContaining("matches the SHA-256 you gave"));
    await $(`${row} ${tid("download-reveal")}`).waitForDisplayed();
    const dest = path.join(HOME, "downloads", FILE);
    expect(fs.statSync(dest).size).toBe(SIZE);
    expect(fs.existsSync(`${dest}.part`)).toBe(false);
    await shot("downloads-done.png");
  });

  it("clears the finished download from the list and keeps its file", async () => {
    await $(tid("downloads-clear-finished")).click();
    await $(tid("downloads-empty")).waitForDisplayed({ timeout: 20_000 });
    expect(fs.statSync(path.join(HOME, "downloads", FILE)).size).toBe(SIZE);
  });
});
