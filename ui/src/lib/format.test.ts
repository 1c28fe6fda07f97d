import { describe, expect, it } from "vitest";
import { dollarsExact, formatDollars, formatDuration, formatMoney, formatMoneyFine, parseDollars, percent, timeAgo } from "./format";

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

describe("money", () => {
  it("formats micro-dollars as dollars and cents, rounding half up, with thousands grouped", () => {
    expect(formatMoney(12_345_678)).toBe("$12.35");
    expect(formatMoney(12_344_999)).toBe("$12.34");
    expect(formatMoney(0)).toBe("$0.00");
    expect(formatMoney(4_999)).toBe("$0.00");
    expect(formatMoney(5_000)).toBe("$0.01");
    expect(formatMoney(1_234_567_890_000)).toBe("$1,234,567.89");
    expect(formatMoney(-2_500_000)).toBe("-$2.50");
    expect(formatMoney(-1_000)).toBe("$0.00");
  });

  it("shows totals under a cent to the hundredth of a cent, never less than spent", () => {
    expect(formatMoneyFine(4_100)).toBe("$0.0041");
    expect(formatMoneyFine(4_101)).toBe("$0.0042");
    expect(formatMoneyFine(1)).toBe("$0.0001");
    expect(formatMoneyFine(9_999)).toBe("$0.0100");
    expect(formatMoneyFine(0)).toBe("$0.00");
    expect(formatMoneyFine(10_000)).toBe("$0.01");
    expect(formatMoneyFine(12_345_678)).toBe("$12.35");
  });

  it("sums many small amounts exactly (integers, no float drift)", () => {
    // 0.1 + 0.2 style drift would show up after 10 000 additions of 310 micro-dollars (one second of an RTX 4090).
    let total = 0;
    for (let i = 0; i < 10_000; i++) total += 310;
    expect(formatMoney(total)).toBe("$3.10");
    expect(formatMoney(9_007_199_254_740_991)).toBe("$9,007,199,254.74");
  });

  it("writes an amount for a field exactly and reads it back to the same micro-dollars", () => {
    expect(dollarsExact(5_000_000)).toBe("5.00");
    expect(dollarsExact(150_000)).toBe("0.15");
    expect(dollarsExact(5_123_456)).toBe("5.123456");
    expect(dollarsExact(1_500)).toBe("0.0015");
    expect(dollarsExact(0)).toBe("0.00");
    for (const m of [0, 1, 10, 999_999, 5_000_000, 5_123_456, 50_000_001, 123_456_789_012]) {
      expect(parseDollars(dollarsExact(m))).toBe(m);
    }
  });

  it("parses typed dollars without floats", () => {
    expect(parseDollars("5")).toBe(5_000_000);
    expect(parseDollars("$12.34")).toBe(12_340_000);
    expect(parseDollars("0.000001")).toBe(1);
    expect(parseDollars("0.1")).toBe(100_000);
    expect(parseDollars("0.0000001")).toBeNull();
    expect(parseDollars("-1")).toBeNull();
    expect(parseDollars("five")).toBeNull();
    expect(parseDollars("")).toBeNull();
  });

  it("keeps the pods' short form (three decimals when the third matters)", () => {
    expect(formatDollars(690_000)).toBe("$0.69");
    expect(formatDollars(345_000)).toBe("$0.345");
  });
});
