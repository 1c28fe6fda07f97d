import { describe, expect, it } from "vitest";
import { installCheckFor, stepStatus } from "../../test/fakeBackend";
import {
  defaultInstallPath,
  gpuSummary,
  initialForm,
  installBlocker,
  localActions,
  portError,
  screenFor,
  showsBar,
  stepFraction,
  stepProgressLine,
  toInstallRequest,
  togglePack,
  worstLevel,
} from "./installModel";

const MB = 1_000_000;

describe("which screen an install shows", () => {
  it("shows the steps while running, paused or failed; done its own screen; else the check", () => {
    expect(screenFor("running")).toBe("progress");
    expect(screenFor("paused")).toBe("progress");
    expect(screenFor("failed")).toBe("progress");
    expect(screenFor("done")).toBe("done");
    expect(screenFor("idle")).toBe("check");
    expect(screenFor("cancelled")).toBe("check");
  });
});

describe("the install form", () => {
  it("builds the request: auto and empty fields become null, the port a number", () => {
    const form = { ...initialForm(" /opt/ComfyUI "), modelsDir: "  " };
    expect(toInstallRequest(form)).toEqual({ install_path: "/opt/ComfyUI", variant: null, packs: ["sd15"], models_dir: null, manifest: null, port: 8188 });
    expect(toInstallRequest({ ...form, variant: "rocm", port: "", modelsDir: "/data/models" })).toMatchObject({ variant: "rocm", port: null, models_dir: "/data/models" });
  });

  it("accepts ports from 1024 to 65535", () => {
    expect(portError("8188")).toBeNull();
    expect(portError("")).toBeNull();
    expect(portError("80")).toMatch(/1024 to 65535/);
    expect(portError("81a")).toMatch(/whole number/);
    expect(toInstallRequest({ ...initialForm("/x"), port: "99999" }).port).toBeNull();
  });

  it("toggles packs in the order they were picked", () => {
    expect(togglePack(["sd15"], "sdxl", true)).toEqual(["sd15", "sdxl"]);
    expect(togglePack(["sd15", "sdxl"], "sd15", false)).toEqual(["sdxl"]);
    expect(togglePack(["sd15"], "sd15", true)).toEqual(["sd15"]);
  });

  it("puts ComfyUI in the app home by default, with the home's separator", () => {
    expect(defaultInstallPath("/home/a/.local/share/comfyfleet/")).toBe("/home/a/.local/share/comfyfleet/ComfyUI");
    expect(defaultInstallPath("C:\\Users\\a\\AppData\\comfyfleet")).toBe("C:\\Users\\a\\AppData\\comfyfleet\\ComfyUI");
  });

  it("blocks Install without a plan, with a failed check or a bad port", () => {
    const form = initialForm("/opt/ComfyUI");
    const ok = installCheckFor(toInstallRequest(form));
    expect(installBlocker(ok, form)).toBeNull();
    expect(installBlocker(null, form)).toMatch(/Checking/);
    expect(installBlocker(ok, { ...form, port: "1" })).toMatch(/port/);
    expect(installBlocker({ ...ok, plan: null, plan_error: { code: "x", message: "Not enough disk space.", details: null } }, form)).toBe("Not enough disk space.");
    const failing = { ...ok, checks: [...ok.checks, { id: "python", label: "Python", level: "fail" as const, detail: "No Python 3.10+." }] };
    expect(installBlocker(failing, form)).toBe("Python: No Python 3.10+.");
    expect(worstLevel(failing.checks)).toBe("fail");
    expect(worstLevel(ok.checks)).toBe("pass");
  });
});

describe("how the machine and the steps read", () => {
  it("summarises the GPU, or says why there is none", () => {
    const gpu = installCheckFor(toInstallRequest(initialForm("/x"))).facts.gpu;
    expect(gpuSummary(gpu)).toBe("NVIDIA GeForce RTX 4090 · 24 GB VRAM · driver 570.124 · CUDA 12.8");
    expect(gpuSummary({ gpus: [], nvml_unavailable: "no NVIDIA driver" })).toBe("No GPU found (no NVIDIA driver)");
  });

  it("shows a step's bytes, speed and time left only when known", () => {
    const running = stepStatus({ id: "models:sd15", state: "running", done_bytes: 500 * MB, total_bytes: 2_000 * MB, bytes_per_sec: 10 * MB, eta_secs: 150 });
    expect(stepProgressLine(running)).toBe("500.0 MB of 2.0 GB · 10.0 MB/s · 2 min 30 s left");
    expect(stepFraction(running)).toBe(0.25);
    expect(showsBar(running)).toBe(true);
    expect(stepProgressLine(stepStatus({ id: "venv", state: "running" }))).toBeNull();
    expect(showsBar(stepStatus({ id: "venv", state: "running" }))).toBe(false);
    expect(stepFraction(stepStatus({ id: "uv", state: "skipped" }))).toBe(1);
    expect(stepProgressLine({ ...running, state: "pending" })).toBe("500.0 MB of 2.0 GB");
  });

  it("offers Start, Stop and Restart where they make sense", () => {
    expect(localActions("stopped")).toEqual({ start: true, stop: false, restart: false });
    expect(localActions("running")).toEqual({ start: false, stop: true, restart: true });
    expect(localActions("starting")).toEqual({ start: false, stop: true, restart: false });
    expect(localActions("crashed")).toEqual({ start: true, stop: true, restart: true });
  });
});
