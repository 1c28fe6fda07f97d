import { describe, expect, it } from "vitest";
import { formatDuration, percent, timeAgo } from "./format";

describe("formatDuration", () => {
  it("reads at the scale of the duration", () => {
    expect(formatDuration(850)).toBe("850 ms");
    expect(formatDuration(4_260)).toBe("4.3 s");
    expect(formatDuration(12_400)).toBe("12 s");
    expect(formatDuration(125_000)).toBe("2 min 5 s");
    expect(formatDuration(120_000)).toBe("2 min");
    expect(formatDuration(3_780_000)).toBe("1 h 3 min");
    expect(formatDuration(-5)).toBe("0 ms");
  });
});

describe("percent", () => {
  it("rounds and clamps a fraction", () => {
    expect(percent(0.426)).toBe(43);
    expect(percent(1.7)).toBe(100);
    expect(percent(-1)).toBe(0);
    expect(percent(Number.NaN)).toBe(0);
  });
});

describe("timeAgo", () => {
  it("says how long ago", () => {
    expect(timeAgo(1_000, 20_000)).toBe("just now");
    expect(timeAgo(0, 5 * 60_000)).toBe("5 min ago");
  });
});
