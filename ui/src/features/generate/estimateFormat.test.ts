import { describe, expect, it } from "vitest";
import type { Estimate } from "../../bindings";
import { estimateText, jobMoney } from "./estimateFormat";

const e = (over: Partial<Estimate>): Estimate => ({
  server_id: "s",
  name: "S",
  online: true,
  lacks_models: false,
  auto: false,
  cold: false,
  time_secs: 12.3,
  cost_micros: 0,
  ...over,
});

describe("estimates before Run", () => {
  it("price one job to the hundredth of a cent, rounded up, and cents from a cent up", () => {
    expect(jobMoney(4_030)).toBe("$0.0041");
    expect(jobMoney(100)).toBe("$0.0001");
    expect(jobMoney(12_345)).toBe("$0.01");
    expect(jobMoney(0)).toBe("free");
  });

  it("say time, cost and a cold start, or why a server will not take it", () => {
    expect(estimateText(e({}))).toBe("~12 s · free");
    expect(estimateText(e({ time_secs: 4.25, cost_micros: 4_030 }))).toBe("~4.3 s · ~$0.0041");
    expect(estimateText(e({ time_secs: null, cost_micros: 20_150, cold: true }))).toBe(
      "time not measured yet · ~$0.02 · wakes a worker",
    );
    expect(estimateText(e({ cost_micros: null }))).toBe("~12 s · billed by the pod's uptime");
    expect(estimateText(e({ lacks_models: true }))).toBe("lacks a model this needs");
    expect(estimateText(e({ online: false }))).toBe("offline");
    expect(estimateText(undefined)).toBeNull();
  });
});
