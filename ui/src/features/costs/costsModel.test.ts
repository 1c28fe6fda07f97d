import { describe, expect, it } from "vitest";
import type { Server } from "../../bindings";
import { group } from "../../test/fakeCosts";
import { backendRows, backendsWithSpend, capLevel, chartRows, daysInMonth, monthLabel, serverRows, shiftMonth } from "./costsModel";

describe("months", () => {
  it("steps across year ends", () => {
    expect(shiftMonth("2026-12", 1)).toBe("2027-01");
    expect(shiftMonth("2026-01", -1)).toBe("2025-12");
    expect(shiftMonth("2026-05", -17)).toBe("2024-12");
    expect(shiftMonth("not a month", 1)).toBe("not a month");
  });

  it("names a month and counts its days, leap years included", () => {
    expect(monthLabel("2026-12")).toBe("December 2026");
    expect(daysInMonth("2026-12")).toBe(31);
    expect(daysInMonth("2026-11")).toBe(30);
    expect(daysInMonth("2024-02")).toBe(29);
    expect(daysInMonth("2100-02")).toBe(28);
    expect(daysInMonth("2000-02")).toBe(29);
  });
});

describe("chartRows", () => {
  const groups = [
    group("2026-12-03/serverless", { spent_micros: 3_000_000 }),
    group("2026-12-01/local", { spent_micros: 200_000 }),
    group("2026-12-03/pod", { spent_micros: 7_500_000 }),
    group("2026-12-01/serverless", { spent_micros: 1_500_000 }),
    group("2026-12-03/local", { spent_micros: 145_678 }),
    group("2026-12-03/quantum", { spent_micros: 99 }),
    group("2026-11-30/local", { spent_micros: 1 }),
    group("garbage", { spent_micros: 1 }),
  ];

  it("groups day/backend keys into one row per day with each backend's spend and the day's total", () => {
    const rows = chartRows(groups);
    expect(rows.map((r) => r.day)).toEqual(["2026-11-30", "2026-12-01", "2026-12-03"]);
    expect(rows[1]).toEqual({ day: "2026-12-01", label: "1", total: 1_700_000, local: 200_000, lan: 0, serverless: 1_500_000, pod: 0 });
    expect(rows[2]).toEqual({ day: "2026-12-03", label: "3", total: 10_645_678, local: 145_678, lan: 0, serverless: 3_000_000, pod: 7_500_000 });
  });

  it("with a month, has every day of it in order and drops other months", () => {
    const rows = chartRows(groups, "2026-12");
    expect(rows).toHaveLength(31);
    expect(rows[0].day).toBe("2026-12-01");
    expect(rows[30].day).toBe("2026-12-31");
    expect(rows[1]).toMatchObject({ day: "2026-12-02", total: 0 });
    expect(rows[2].total).toBe(10_645_678);
    expect(rows.reduce((sum, r) => sum + r.total, 0)).toBe(12_345_678);
  });

  it("draws only the backends that spent something, in stacking order", () => {
    expect(backendsWithSpend(chartRows(groups, "2026-12"))).toEqual(["local", "serverless", "pod"]);
    expect(backendsWithSpend(chartRows([], "2026-12"))).toEqual([]);
  });
});

describe("breakdown rows", () => {
  it("orders backends as they stack and labels them", () => {
    const rows = backendRows([group("pod"), group("local"), group("serverless"), group("lan")]);
    expect(rows.map((r) => r.label)).toEqual(["Local GPU", "LAN servers", "RunPod serverless", "RunPod pods"]);
  });

  it("names servers from the list, pods by id, and marks removed servers", () => {
    const servers = [{ id: "id-local", name: "This computer" }, { id: "id-endpoint", name: "Flux endpoint" }] as Server[];
    const rows = serverRows(
      [group("id-local", { spent_micros: 1 }), group("pod:abc123", { spent_micros: 7_500_000 }), group("id-gone"), group("id-endpoint", { spent_micros: 4_500_000 })],
      servers,
    );
    expect(rows.map((r) => [r.label, r.kind])).toEqual([
      ["Pod abc123", "pod"],
      ["Flux endpoint", "server"],
      ["This computer", "server"],
      ["id-gone (removed)", "removed"],
    ]);
  });
});

describe("capLevel", () => {
  it("warns from 80 % and is full from 100 %", () => {
    expect(capLevel(0)).toBe("ok");
    expect(capLevel(79)).toBe("ok");
    expect(capLevel(80)).toBe("warn");
    expect(capLevel(99)).toBe("warn");
    expect(capLevel(100)).toBe("full");
    expect(capLevel(250)).toBe("full");
  });
});
