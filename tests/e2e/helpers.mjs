// What the E2E specs share: finding elements by test id, typing into a field, and saving screenshots a person can
// look at (a blank one, taken before the first paint, is retried).
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { $, browser } from "@wdio/globals";

const here = path.dirname(fileURLToPath(import.meta.url));
export const SHOTS = path.resolve(here, "screenshots");

export const tid = (id) => `[data-testid="${id}"]`;

export async function shot(name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  const file = path.join(SHOTS, name);
  for (let attempt = 1; ; attempt++) {
    await browser.executeAsync((done) => requestAnimationFrame(() => requestAnimationFrame(() => done())));
    await browser.pause(300);
    await browser.saveScreenshot(file);
    if (fs.statSync(file).size > 20_000) return file;
    if (attempt === 10) throw new Error(`screenshot ${name} is still blank`);
    await browser.pause(500);
  }
}

export async function fill(id, value) {
  const input = await $(tid(id));
  await input.waitForDisplayed();
  await input.clearValue();
  await input.setValue(value);
}
