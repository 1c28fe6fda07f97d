import { describe, expect, it } from "vitest";
import { GPUS } from "../../test/fakePods";
import {
  dollarsText,
  elapsedOf,
  formatDollars,
  formatElapsed,
  formatPricePerHour,
  formatUptime,
  gpuPriceLines,
  fullIdleConfig,
  IDLE_DEFAULTS,
  minutesText,
  parseDollars,
  parseGpuTypes,
  parseMinutes,
  parseScaled,
  podActions,
  POD_STATE_LABELS,
  presetErrors,
  stageFraction,
} from "./podFormat";

describe("pod money", () => {
  it("shows micro-dollars with two decimals, or three when the third matters", () => {
    expect(formatPricePerHour(690_000)).toBe("$0.69/h");
    expect(formatPricePerHour(1_000_000)).toBe("$1.00/h");
    expect(formatPricePerHour(345_000)).toBe("$0.345/h");
    expect(formatDollars(2_990_000)).toBe("$2.99");
    expect(formatDollars(0)).toBe("$0.00");
    expect(formatDollars(344_567)).toBe("$0.345");
    expect(formatDollars(12_340_000)).toBe("$12.34");
    expect(dollarsText(1_500_000)).toBe("1.50");
  });

  it("parses typed dollars into exact micro-dollars", () => {
    expect(parseDollars("1.5")).toBe(1_500_000);
    expect(parseDollars("1")).toBe(1_000_000);
    expect(parseDollars("$0.69")).toBe(690_000);
    expect(parseDollars(" 0.345 ")).toBe(345_000);
    expect(parseDollars(".5")).toBe(500_000);
    expect(parseDollars("1,25")).toBe(1_250_000);
    // 0.29 * 1e6 is 289999.99999999994 in floats; the parse must not go through them.
    expect(parseDollars("0.29")).toBe(290_000);
    expect(parseDollars("")).toBeNull();
    expect(parseDollars(".")).toBeNull();
    expect(parseDollars("-1")).toBeNull();
    expect(parseDollars("abc")).toBeNull();
    expect(parseDollars("1.0000001")).toBeNull();
    expect(parseScaled("12.3", 2)).toBe(1230);
  });

  it("round-trips what it shows", () => {
    for (const micros of [0, 250_000, 690_000, 1_000_000, 1_500_000, 3_450_000]) {
      expect(parseDollars(dollarsText(micros))).toBe(micros);
    }
  });
});

describe("pod times", () => {
  it("converts minutes and milliseconds exactly", () => {
    expect(parseMinutes("5")).toBe(300_000);
    expect(parseMinutes("2")).toBe(120_000);
    expect(parseMinutes("1.5")).toBe(90_000);
    expect(parseMinutes("0.5")).toBe(30_000);
    expect(parseMinutes("x")).toBeNull();
    expect(parseMinutes("")).toBeNull();
    expect(minutesText(300_000)).toBe("5");
    expect(minutesText(90_000)).toBe("1.5");
    expect(minutesText(30_000)).toBe("0.5");
    expect(minutesText(120_000)).toBe("2");
  });

  it("fills the idle rule's missing fields with the core's defaults", () => {
    expect(fullIdleConfig({})).toEqual(IDLE_DEFAULTS);
    expect(fullIdleConfig({ idle_ms: 60_000, enabled: false })).toEqual({ ...IDLE_DEFAULTS, idle_ms: 60_000, enabled: false });
  });

  it("shows uptime at its scale", () => {
    expect(formatUptime(0)).toBe("0 s");
    expect(formatUptime(45)).toBe("45 s");
    expect(formatUptime(12 * 60 + 30)).toBe("12 min");
    expect(formatUptime(3600)).toBe("1 h");
    expect(formatUptime(3600 + 5 * 60)).toBe("1 h 5 min");
    expect(formatUptime(2 * 86_400 + 3 * 3600)).toBe("2 d 3 h");
    expect(formatElapsed(83_400)).toBe("83 s");
  });

  it("keeps counting between progress messages", () => {
    expect(elapsedOf({ progress: null, startedMs: 1_000 }, 6_500)).toBe(5_500);
    expect(elapsedOf({ progress: { elapsed_ms: 4_000 }, startedMs: 1_000 }, 3_000)).toBe(4_000);
    expect(elapsedOf({ progress: { elapsed_ms: 4_000 }, startedMs: 1_000 }, 31_000)).toBe(30_000);
    expect(stageFraction("creating")).toBeCloseTo(1 / 6);
    expect(stageFraction("ready")).toBe(1);
  });
});

describe("pod states and the create form", () => {
  it("labels states and offers Start only when stopped, Stop only when up", () => {
    expect(POD_STATE_LABELS).toEqual({ starting: "Starting…", running: "Running", stopped: "Stopped", terminated: "Terminated" });
    expect(podActions("stopped")).toEqual({ start: true, stop: false });
    expect(podActions("running")).toEqual({ start: false, stop: true });
    expect(podActions("terminated")).toEqual({ start: false, stop: false });
  });

  it("prices the typed GPU types in the chosen cloud from RunPod's catalogue", () => {
    const ids = ["NVIDIA GeForce RTX 4090", "NVIDIA RTX A5000", "RTX 9999"];
    expect(gpuPriceLines(ids, GPUS, "SECURE")).toEqual([
      { id: "NVIDIA GeForce RTX 4090", text: "RTX 4090 · 24 GB · $0.69/h", known: true },
      { id: "NVIDIA RTX A5000", text: "RTX A5000 · 24 GB · not offered in Secure cloud", known: false },
      { id: "RTX 9999", text: "RTX 9999: not a GPU id RunPod lists", known: false },
    ]);
    expect(gpuPriceLines(ids.slice(0, 2), GPUS, "COMMUNITY").map((l) => l.text)).toEqual(["RTX 4090 · 24 GB · $0.34/h", "RTX A5000 · 24 GB · $0.16/h"]);
  });

  it("splits GPU types and checks the fields", () => {
    expect(parseGpuTypes(" NVIDIA GeForce RTX 4090 , NVIDIA RTX A5000,, ")).toEqual(["NVIDIA GeForce RTX 4090", "NVIDIA RTX A5000"]);
    const ok = { name: "pod", gpuTypes: "NVIDIA GeForce RTX 4090", cloudType: "SECURE", image: "runpod/worker-comfyui:5.8.0-base", diskGb: "30" };
    expect(presetErrors(ok)).toEqual({});
    expect(Object.keys(presetErrors({ ...ok, name: " ", gpuTypes: ",", image: "", diskGb: "9" })).sort()).toEqual(["diskGb", "gpuTypes", "image", "name"]);
    expect(presetErrors({ ...ok, diskGb: "501" }).diskGb).toMatch(/10–500 GB/);
    expect(presetErrors({ ...ok, diskGb: "10" })).toEqual({});
    expect(presetErrors({ ...ok, diskGb: "500" })).toEqual({});
    expect(presetErrors({ ...ok, diskGb: "12.5" }).diskGb).toBeDefined();
  });
});
