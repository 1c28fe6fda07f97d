// WebdriverIO config for end-to-end tests of the real, built ComfyFleet app.
//
// tauri-driver (port 4444) starts the app through WebKitWebDriver; the app gets a fresh data
// dir (COMFYFLEET_HOME) per run through tauri-driver's environment, and talks to a fake ComfyUI
// from the testkit on loopback. Build first (scripts/test.sh does):
//   npm --prefix ui run build
//   cargo build --workspace --features comfyfleet-app/custom-protocol
// Needs a display (xvfb-run) and a Secret Service (scripts/with-keyring.sh).
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const targetDir = process.env.CARGO_TARGET_DIR || path.join(os.homedir(), ".cache/comfyfleet/target");
const APP = path.resolve(targetDir, "debug/comfyfleet-app");
const TESTKIT = path.resolve(targetDir, "debug/comfyfleet-testkit");
const LOG_DIR = path.join(here, "logs");
const DRIVER_PORT = 4444; // tauri-driver
const NATIVE_PORT = 4445; // WebKitWebDriver, started by tauri-driver

let tauriDriver;
let fakeComfy;
let renderComfy;
let fileHost;
let installHost;
let fakeRunpod;
let home;
let exiting = false;

function requireBinary(file, how) {
  if (!fs.existsSync(file)) {
    throw new Error(`${file} not found: build it first with \`${how}\` (or run scripts/test.sh)`);
  }
}

/**
 * Start a testkit server (a fake ComfyUI, the file host) and resolve with its URL from the `LISTENING <url>` line
 * and everything it printed before (the file host prints `SHA256 PATH HEX` lines first).
 */
function startFakeComfy(log, args) {
  const child = spawn(TESTKIT, args, { stdio: ["ignore", "pipe", "pipe"] });
  child.stderr.pipe(log);
  return new Promise((resolve, reject) => {
    let buf = "";
    const timer = setTimeout(() => reject(new Error("fake ComfyUI did not print LISTENING within 20 s")), 20_000);
    child.on("exit", (code) => reject(new Error(`fake ComfyUI exited early (code ${code}); see ${LOG_DIR}/fake-comfyui.log`)));
    child.stdout.on("data", (chunk) => {
      log.write(chunk);
      buf += chunk.toString();
      const m = buf.match(/LISTENING (http:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1].replace(/\/$/, ""), output: buf });
      }
    });
  });
}

function waitForPort(port, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const sock = net.connect(port, "127.0.0.1");
      sock.once("connect", () => {
        sock.end();
        resolve();
      });
      sock.once("error", () => {
        sock.destroy();
        if (Date.now() > deadline) reject(new Error(`nothing listening on 127.0.0.1:${port} after ${timeoutMs} ms`));
        else setTimeout(attempt, 100);
      });
    };
    attempt();
  });
}

/** Resolve true when something already accepts connections on 127.0.0.1:port. */
function portInUse(port) {
  return new Promise((resolve) => {
    const sock = net.connect(port, "127.0.0.1");
    sock.once("connect", () => {
      sock.destroy();
      resolve(true);
    });
    sock.once("error", () => resolve(false));
  });
}

function killTree(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, "SIGTERM"); // its own process group: the driver, WebKitWebDriver, the app
  } catch {
    child.kill("SIGTERM");
  }
}

export const config = {
  runner: "local",
  // The app is started by tauri-driver from the launcher, so the display must come from outside
  // (xvfb-run in scripts/test.sh), not from a per-worker Xvfb.
  autoXvfb: false,
  // In this order: the Servers spec starts from an empty list; the Generate spec adds its own server after it;
  // the Downloads spec fetches a file from the testkit's file host; the Install spec installs from the testkit's
  // install host (a manifest, a ComfyUI-compatible server program, a package index, a model) and registers "Local".
  // The RunPod spec adds a serverless endpoint and a pod on the testkit's fake RunPod; the Costs spec reads the ledger
  // those jobs filled.
  specs: [
    [
      "./specs/servers.e2e.mjs",
      "./specs/generate.e2e.mjs",
      "./specs/downloads.e2e.mjs",
      "./specs/install.e2e.mjs",
      "./specs/runpod.e2e.mjs",
      "./specs/costs.e2e.mjs",
    ],
  ],
  maxInstances: 1,
  hostname: "127.0.0.1",
  port: DRIVER_PORT,
  capabilities: [
    {
      maxInstances: 1,
      browserName: "wry",
      "wdio:enforceWebDriverClassic": true,
      "tauri:options": { application: APP },
    },
  ],
  logLevel: "warn",
  outputDir: LOG_DIR,
  bail: 0,
  waitforTimeout: 15_000,
  connectionRetryTimeout: 60_000,
  connectionRetryCount: 1,
  framework: "mocha",
  reporters: ["spec"],
  mochaOpts: { ui: "bdd", timeout: 180_000 },

  onPrepare: async () => {
    requireBinary(APP, "cargo build -p comfyfleet-app --features custom-protocol");
    requireBinary(TESTKIT, "cargo build -p comfyfleet-testkit");
    fs.mkdirSync(LOG_DIR, { recursive: true });
    for (const port of [DRIVER_PORT, NATIVE_PORT]) {
      if (await portInUse(port)) {
        throw new Error(`127.0.0.1:${port} is already in use (another E2E run, or a leftover tauri-driver/WebKitWebDriver?)`);
      }
    }

    home = fs.mkdtempSync(path.join(os.tmpdir(), "comfyfleet-e2e-"));
    process.env.COMFYFLEET_HOME = home; // inherited by tauri-driver, hence by the app
    process.env.COMFYFLEET_E2E_HOME = home; // for the specs

    // The Servers spec's fake shows a busy GPU box (another client's job holds its queue).
    const fake = await startFakeComfy(fs.createWriteStream(path.join(LOG_DIR, "fake-comfyui.log")), [
      "comfyui",
      "--port", "0",
      "--gpu-name", "NVIDIA GeForce RTX 4090",
      "--vram-total", "25757220864",
      "--vram-free", "24000000000",
      "--queue-running", "1",
      "--queue-pending", "1",
    ]);
    // The Generate spec's fake runs prompts (1.5 s each, with sampler progress) and has the SD 1.5 checkpoint.
    const render = await startFakeComfy(fs.createWriteStream(path.join(LOG_DIR, "fake-render.log")), [
      "comfyui",
      "--port", "0",
      "--exec-ms", "1500",
      "--model", "checkpoints/v1-5-pruned-emaonly-fp16.safetensors",
    ]);
    renderComfy = render.child;
    // The Downloads spec's file host: a 6 MiB model served at 400 kB/s per connection (about 16 s), so progress,
    // pause and resume can be seen.
    const files = await startFakeComfy(fs.createWriteStream(path.join(LOG_DIR, "file-host.log")), [
      "files",
      "--port", "0",
      "--generate", "/models/e2e-model.safetensors=6MiB",
      "--rate", "400K",
      "--print-sha256",
    ]);
    fileHost = files.child;
    const sha = files.output.match(/SHA256 \/models\/e2e-model\.safetensors ([0-9a-f]{64})/);
    if (!sha) throw new Error(`the file host did not print the SHA-256 of its file; see ${LOG_DIR}/file-host.log`);
    process.env.COMFYFLEET_E2E_FILES_URL = files.url;
    process.env.COMFYFLEET_E2E_FILE_SHA256 = sha[1];
    process.env.COMFYFLEET_E2E_RENDER_URL = render.url;
    // The Install spec's host: the app installs from its manifest (COMFYFLEET_MANIFEST replaces the shipped one);
    // the model comes at 1 MB/s so the wizard's progress can be seen.
    const install = await startFakeComfy(fs.createWriteStream(path.join(LOG_DIR, "install-host.log")), [
      "install-host",
      "--port", "0",
      "--model-size", "5MiB",
      "--model-rate", "1M",
    ]);
    installHost = install.child;
    const manifest = install.output.match(/MANIFEST (http:\/\/\S+)/);
    if (!manifest) throw new Error(`the install host did not print its manifest URL; see ${LOG_DIR}/install-host.log`);
    process.env.COMFYFLEET_MANIFEST = manifest[1]; // inherited by tauri-driver, hence by the app
    // The RunPod spec's fake RunPod: one worker-comfyui endpoint whose workers take 3 s to wake and 1.5 s per job,
    // and pods with a fake ComfyUI behind their proxy address. The app reaches it through runpod-python's variables.
    const runpod = await startFakeComfy(fs.createWriteStream(path.join(LOG_DIR, "fake-runpod.log")), [
      "runpod",
      "--port", "0",
      "--endpoint", "ep-e2e",
      "--cold-start-ms", "3000",
      "--exec-ms", "1500",
    ]);
    fakeRunpod = runpod.child;
    process.env.RUNPOD_ENDPOINT_BASE_URL = `${runpod.url}/v2`;
    process.env.RUNPOD_REST_API_URL = `${runpod.url}/v2`;
    process.env.COMFYFLEET_RUNPOD_PROXY_URL = `${runpod.url}/proxy/{podId}-{port}`;
    fakeComfy = fake.child;
    process.env.COMFYFLEET_E2E_COMFYUI_URL = fake.url; // workers inherit the launcher's env
    console.log(`[e2e] fake ComfyUI at ${fake.url}; COMFYFLEET_HOME=${home}`);

    const driverLog = fs.createWriteStream(path.join(LOG_DIR, "tauri-driver.log"));
    tauriDriver = spawn("tauri-driver", ["--port", String(DRIVER_PORT), "--native-port", String(NATIVE_PORT)], {
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        COMFYFLEET_HOME: home,
        RUST_LOG: process.env.RUST_LOG || "info",
        // Note: WEBKIT_DISABLE_DMABUF_RENDERER=1 makes WebKitWebDriver's screenshot hang under
        // Xvfb, so the webview keeps its default renderer here.
      },
    });
    tauriDriver.stdout.pipe(driverLog);
    tauriDriver.stderr.pipe(driverLog);
    tauriDriver.on("error", (err) => {
      console.error(`[e2e] tauri-driver failed to start: ${err.message} (install it: cargo install tauri-driver --locked)`);
      process.exit(1);
    });
    tauriDriver.on("exit", (code, signal) => {
      if (!exiting) console.error(`[e2e] tauri-driver exited early (code ${code}, signal ${signal}); see ${LOG_DIR}/tauri-driver.log`);
    });
    await waitForPort(DRIVER_PORT, 20_000);
  },

  // A failed step says what the app showed and what it logged, so a failure in CI can be understood from its output.
  afterTest: async (test, _context, { passed }) => {
    if (passed) return;
    try {
      const seen = await globalThis.browser.execute(() => {
        const texts = (sel) => [...document.querySelectorAll(sel)].map((e) => e.textContent.trim()).filter(Boolean);
        return { alerts: texts('[role="alert"], .notice'), page: (document.querySelector("main") || document.body).innerText };
      });
      console.log(`[e2e] "${test.title}" failed; the app showed:`);
      for (const a of seen.alerts) console.log(`[e2e]   alert: ${a}`);
      console.log(`[e2e]   page: ${seen.page.replace(/\s+/g, " ").slice(0, 1500)}`);
    } catch (e) {
      console.log(`[e2e] could not read the page after the failure: ${e.message}`);
    }
    try {
      const log = fs.readFileSync(path.join(LOG_DIR, "tauri-driver.log"), "utf8").trimEnd().split("\n");
      console.log(`[e2e] the app's last log lines:\n${log.slice(-40).join("\n")}`);
    } catch {
      // no log yet
    }
  },

  onComplete: (exitCode) => {
    exiting = true;
    killTree(tauriDriver);
    for (const f of [fakeComfy, renderComfy, fileHost, installHost, fakeRunpod]) if (f && f.exitCode === null) f.kill("SIGTERM");
    stopLocalComfy();
    if (home && exitCode === 0 && !process.env.COMFYFLEET_E2E_KEEP_HOME) {
      fs.rmSync(home, { recursive: true, force: true });
    } else if (home) {
      console.log(`[e2e] kept the app's data dir for inspection: ${home}`);
    }
  },
};

/** The app is killed, not quit: stop the ComfyUI the Install spec started (its pid is in the app's data dir). */
function stopLocalComfy() {
  try {
    const rec = JSON.parse(fs.readFileSync(path.join(home, "local-server.json"), "utf8"));
    process.kill(-rec.pid, "SIGTERM");
  } catch {
    // none running
  }
}

// If the launcher is interrupted, don't leave the driver, the app or the fake behind.
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    exiting = true;
    killTree(tauriDriver);
    for (const f of [fakeComfy, renderComfy, fileHost, installHost, fakeRunpod]) if (f && f.exitCode === null) f.kill("SIGTERM");
    if (home) stopLocalComfy();
    process.exit(130);
  });
}
