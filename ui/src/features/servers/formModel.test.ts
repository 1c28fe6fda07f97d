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

describe("RunPod serverless endpoints", () => {
  const endpoint = { ...emptyValues(), name: "Cloud", serverKind: "runpod_serverless" as const };

  it("need an endpoint id and a GPU class instead of a URL", () => {
    expect(validate({ ...endpoint, endpointId: "abc123" })).toEqual({});
    expect(validate({ ...endpoint, endpointId: "" }).endpointId).toMatch(/endpoint id/);
    expect(validate({ ...endpoint, endpointId: "a b" }).endpointId).toMatch(/letters, digits/);
    expect(validate({ ...endpoint, endpointId: "abc", gpuClass: " " }).gpuClass).toMatch(/GPU class/);
    expect(validate({ ...endpoint, endpointId: "abc", extraModels: "model.safetensors" }).extraModels).toMatch(/folder\/file/);
  });

  it("send the endpoint with the account key (no URL, no per-server secret)", () => {
    const input = toServerInput({
      ...endpoint,
      endpointId: " abc123 ",
      flavour: "flux1-schnell",
      extraModels: "loras/a.safetensors\n, loras/b.safetensors",
      url: "http://ignored",
      authKind: "bearer",
      secret: "stray",
    });
    expect(input.kind).toBe("runpod_serverless");
    expect(input.url).toBe("");
    expect(input.auth).toEqual({ kind: "none", user: null, header: null, secret: null });
    expect(input.runpod).toEqual({
      endpoint_id: "abc123",
      gpu_class: "ADA_24",
      flavour: "flux1-schnell",
      extra_models: ["loras/a.safetensors", "loras/b.safetensors"],
    });
  });

  it("ComfyUI servers send no endpoint", () => {
    expect(toServerInput({ ...emptyValues(), name: "A", url: "http://h" }).runpod).toBeNull();
  });
});
