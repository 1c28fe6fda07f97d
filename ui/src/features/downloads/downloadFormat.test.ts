import { describe, expect, it } from "vitest";
import { download } from "../../test/fakeBackend";
import { isAbsolutePath, toDownloadInput, validateAdd } from "./addFormModel";
import { merge, withSnapshot } from "./DownloadsContext";
import { fractionOf, humanBytes, humanEta, progressLine } from "./downloadFormat";

describe("download numbers", () => {
  it("reads sizes in decimal units and time left at its scale", () => {
    expect(humanBytes(512)).toBe("512 B");
    expect(humanBytes(1_500_000)).toBe("1.5 MB");
    expect(humanBytes(24_000_000_000)).toBe("24.0 GB");
    expect(humanEta(0)).toBe("0 s left");
    expect(humanEta(59.6)).toBe("1 min left");
    expect(humanEta(200)).toBe("3 min 20 s left");
    expect(humanEta(7_500)).toBe("2 h 5 min left");
  });

  it("shows only what is known", () => {
    expect(progressLine(download({ id: "a", total: null, downloaded: 2_000_000, bytes_per_sec: 0, eta_secs: null }))).toBe("2.0 MB");
    expect(progressLine(download({ id: "a", state: "paused" }))).toBe("12.0 MB of 48.0 MB");
    expect(fractionOf(download({ id: "a", total: null }))).toBeNull();
    expect(fractionOf(download({ id: "a" }))).toBe(0.25);
    expect(fractionOf(download({ id: "a", state: "done", total: null }))).toBe(1);
  });
});

describe("add form", () => {
  it("accepts http(s) links, full paths and 64-hex checksums", () => {
    expect(validateAdd({ url: " https://h/x.bin ", destination: "", sha256: "" })).toEqual({});
    expect(validateAdd({ url: "https://h/x.bin", destination: "C:\\Models", sha256: `SHA256:${"F".repeat(64)}` })).toEqual({});
    expect(Object.keys(validateAdd({ url: "not a link", destination: "~/models", sha256: "12" })).sort()).toEqual(["destination", "sha256", "url"]);
    expect(isAbsolutePath("/a")).toBe(true);
    expect(isAbsolutePath("\\\\nas\\models")).toBe(true);
    expect(isAbsolutePath("models")).toBe(false);
    expect(toDownloadInput({ url: " https://h/x ", destination: " ", sha256: "" })).toEqual({ url: "https://h/x", destination: null, sha256: null });
  });
});

describe("download list merging", () => {
  it("keeps the newest copy and replaces an older download of the same file", () => {
    const old = download({ id: "a", updated_ms: 5 });
    let items = merge({}, old);
    items = merge(items, download({ id: "a", updated_ms: 4, downloaded: 1 }));
    expect(items.a.downloaded).toBe(old.downloaded);
    items = merge(items, download({ id: "b", file_name: "a.safetensors", updated_ms: 6 }));
    expect(Object.keys(items)).toEqual(["b"]);
    const live = merge({}, download({ id: "c", file_name: "c.bin", updated_ms: 9, downloaded: 7 }));
    const snap = withSnapshot(live, [download({ id: "c", file_name: "c.bin", updated_ms: 8 }), download({ id: "d", file_name: "d.bin" })]);
    expect(snap.c.downloaded).toBe(7);
    expect(Object.keys(snap).sort()).toEqual(["c", "d"]);
  });
});
