// The Cost Monitor in the real app, on the ledger the earlier specs filled with real jobs (a local render, a RunPod
// endpoint job, a pod's uptime): the page shows the same totals the CLI reads from the database, per backend.
import { execFileSync } from "node:child_process";
import os from "node:os";
import path from "node:path";
import { $, browser, expect } from "@wdio/globals";
import { shot, tid } from "../helpers.mjs";

const targetDir = process.env.CARGO_TARGET_DIR || path.join(os.homedir(), ".cache/comfyfleet/target");
const CLI = path.resolve(targetDir, "debug/comfyfleet");

/** Dollars to the cent, rounded half up, as the page writes them (integer maths on micro-dollars). */
function dollars(micros) {
  const cents = Math.floor((micros + 5_000) / 10_000);
  const whole = Math.floor(cents / 100).toLocaleString("en-US");
  return `$${whole}.${String(cents % 100).padStart(2, "0")}`;
}

describe("Cost Monitor", () => {
  it("stops the pod, so its uptime stops accruing", async () => {
    await $(tid("nav-servers")).click();
    const running = $(`${tid("pod-card")}[data-state="running"]`);
    await running.waitForDisplayed({ timeout: 20_000 });
    await running.$(tid("pod-stop")).click();
    await $(`${tid("pod-card")}[data-state="stopped"]`).waitForDisplayed({ timeout: 30_000 });
  });

  it("shows this month's totals as the ledger holds them, per backend", async () => {
    const home = process.env.COMFYFLEET_E2E_HOME;
    const out = execFileSync(CLI, ["costs", "--json"], { env: { ...process.env, COMFYFLEET_HOME: home } });
    const { totals } = JSON.parse(out.toString());
    expect(totals.jobs).toBeGreaterThanOrEqual(2);
    await $(tid("nav-costs")).click();
    await $(tid("costs-page")).waitForDisplayed({ timeout: 20_000 });
    await expect($(tid("costs-jobs"))).toHaveText(expect.stringContaining(String(totals.jobs)));
    await expect($(tid("costs-spent"))).toHaveText(expect.stringContaining(dollars(totals.spent_micros)));
    await expect($(tid("costs-saved"))).toHaveText(expect.stringContaining(dollars(totals.saved_micros)));
    // The local render, the RunPod endpoint job and the pod's uptime each have their row.
    for (const backend of ["local", "serverless", "pod"]) {
      await $(tid(`breakdown-backend-${backend}`)).waitForExist({ timeout: 10_000 });
    }
    await $(tid("cap-daily")).waitForDisplayed();
    await browser.execute(() => window.scrollTo(0, 0));
    await shot("cost-monitor.png");
  });
});
