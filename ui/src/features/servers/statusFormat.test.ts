import { describe, expect, it } from "vitest";
import { queueText, statusLabel, vramText } from "./statusFormat";

const GIB = 1024 ** 3;

describe("status formatting", () => {
  it("labels every status for people", () => {
    expect(statusLabel("unknown")).toBe("Not tested");
    expect(statusLabel("timeout")).toBe("Timed out");
    expect(statusLabel("auth_failed")).toBe("Auth failed");
    expect(statusLabel("not_comfyui")).toBe("Not ComfyUI");
  });

  it("shows VRAM of the first device, one decimal only when useful", () => {
    expect(vramText([{ name: "a", type: "cuda", vram_total: 24 * GIB, vram_free: 24 * GIB }])).toBe("VRAM 24/24 GB free");
    expect(vramText([{ name: "a", type: "cuda", vram_total: 12 * GIB, vram_free: 3.26 * GIB }])).toBe("VRAM 3.3/12 GB free");
    expect(vramText([])).toBeNull();
  });

  it("shows the queue against its limit, or alone without one", () => {
    expect(queueText({ running: 1, pending: 1 }, 10)).toBe("Queue 2/10");
    expect(queueText({ running: 0, pending: 0 }, null)).toBe("Queue 0");
    expect(queueText(null, 10)).toBeNull();
  });
});
