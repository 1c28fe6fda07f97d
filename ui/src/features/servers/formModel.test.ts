import { describe, expect, it } from "vitest";
import { emptyValues, parseTags, plainHttpWarning, toServerInput, validate } from "./formModel";

describe("plainHttpWarning", () => {
  it.each([
    ["http://192.168.1.20:8188", "basic", true],
    ["http://gpu.lan:8188", "bearer", true],
    ["http://10.0.0.5", "api_key", true],
    ["http://192.168.1.20:8188", "none", false],
    ["https://192.168.1.20:8188", "basic", false],
    ["http://127.0.0.1:8188", "basic", false],
    ["http://127.5.6.7:8188", "comfyui_login", false],
    ["http://localhost:8188", "basic", false],
    ["http://[::1]:8188", "basic", false],
    ["not a url", "basic", false],
  ] as const)("%s with %s auth -> warn: %s", (url, kind, warns) => {
    expect(plainHttpWarning(url, kind) !== null).toBe(warns);
  });
});

describe("validate", () => {
  it("accepts a minimal valid form", () => {
    expect(validate({ ...emptyValues(), name: "Local", url: "http://127.0.0.1:8188" })).toEqual({});
  });

  it("rejects bad timeout and max queue values", () => {
    const errors = validate({ ...emptyValues(), name: "x", url: "http://h", timeoutSec: "0", maxQueue: "2.5" });
    expect(errors.timeoutSec).toMatch(/seconds/);
    expect(errors.maxQueue).toMatch(/whole number/);
  });

  it("needs a user for basic auth and a header name for API keys", () => {
    expect(validate({ ...emptyValues(), name: "x", url: "http://h", authKind: "basic" }).user).toBeTruthy();
    expect(validate({ ...emptyValues(), name: "x", url: "http://h", authKind: "api_key" }).header).toBeTruthy();
    expect(validate({ ...emptyValues(), name: "x", url: "http://h", authKind: "api_key", header: "X Key" }).header).toMatch(/header name/);
  });
});

describe("toServerInput", () => {
  it("sends null for an empty secret, no timeout or no queue limit", () => {
    const input = toServerInput({ ...emptyValues(), name: "A", url: "http://h", authKind: "bearer", timeoutSec: "", maxQueue: "" });
    expect(input.auth.secret).toBeNull();
    expect(input.timeout_ms).toBeNull();
    expect(input.max_queue).toBeNull();
  });

  it("drops user, header and secret that do not belong to the auth kind", () => {
    const input = toServerInput({ ...emptyValues(), name: "A", url: "http://h", authKind: "none", user: "u", header: "H", secret: "s" });
    expect(input.auth).toEqual({ kind: "none", user: null, header: null, secret: null });
  });

  it("parses tags: trimmed, no empties, no duplicates", () => {
    expect(parseTags(" a, b ,,A, c ")).toEqual(["a", "b", "c"]);
  });
});
