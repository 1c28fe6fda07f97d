import { describe, expect, it, vi } from "vitest";
import { createImageCache } from "./imageCache";

describe("image cache", () => {
  it("loads each path once, shares a pending load, and retries after a failure", async () => {
    let fail = true;
    const load = vi.fn(async (path: string) => {
      if (path === "/bad.png" && fail) throw new Error("gone");
      return `data:image/png;base64,${path}`;
    });
    const cache = createImageCache(load);

    const [a, b] = await Promise.all([cache.get("/a.png"), cache.get("/a.png")]);
    expect(a).toBe("data:image/png;base64,/a.png");
    expect(b).toBe(a);
    expect(await cache.get("/a.png")).toBe(a);
    expect(cache.peek("/a.png")).toBe(a);
    expect(load).toHaveBeenCalledTimes(1);

    await expect(cache.get("/bad.png")).rejects.toThrow("gone");
    fail = false;
    expect(await cache.get("/bad.png")).toBe("data:image/png;base64,/bad.png");
    expect(load).toHaveBeenCalledTimes(3);
  });

  it("drops the least recently used images past the size budget", async () => {
    const load = vi.fn(async (path: string) => `url:${path}`); // 5 characters each
    const cache = createImageCache(load, 10);
    await cache.get("1");
    await cache.get("2");
    await cache.get("1"); // 1 is now the most recent
    await cache.get("3");
    expect(cache.peek("2")).toBeUndefined();
    expect(cache.peek("1")).toBe("url:1");
    expect(cache.peek("3")).toBe("url:3");

    const big = createImageCache(async (p) => `data:${p}`.padEnd(50, "x"), 10);
    await big.get("a");
    expect(big.peek("a")).toHaveLength(50); // the newest stays even over the budget
    await big.get("b");
    expect(big.peek("a")).toBeUndefined();
  });
});
