// Output images as data: URLs, loaded through `galleryImage` once per path and kept for the session.
// Pending loads are shared, failures are not kept (the next view tries again), and the least recently used
// images are dropped past a size budget: `galleryImage` may return whole files, and a long session must not
// hold every image it ever showed.
export type ImageLoader = (path: string) => Promise<string>;

export type ImageCache = {
  /** The image at `path`, loading it on first use. */
  get: (path: string) => Promise<string>;
  /** The image if it is already loaded, for a first render without a placeholder flash. */
  peek: (path: string) => string | undefined;
};

/** About 160 MB of data: URLs. */
export const DEFAULT_BUDGET_CHARS = 160 * 1024 * 1024;

export function createImageCache(load: ImageLoader, budgetChars = DEFAULT_BUDGET_CHARS): ImageCache {
  const pending = new Map<string, Promise<string>>();
  // Insertion order is use order: the first key is the least recently used.
  const done = new Map<string, string>();
  let total = 0;

  function remember(path: string, url: string) {
    const old = done.get(path);
    if (old !== undefined) {
      total -= old.length;
      done.delete(path);
    }
    done.set(path, url);
    total += url.length;
    // The newest image always stays, even when it alone is over the budget.
    while (total > budgetChars && done.size > 1) {
      const [oldestPath, oldestUrl] = done.entries().next().value as [string, string];
      done.delete(oldestPath);
      total -= oldestUrl.length;
    }
  }

  return {
    peek: (path) => done.get(path),
    get: (path) => {
      const hit = done.get(path);
      if (hit !== undefined) {
        remember(path, hit);
        return Promise.resolve(hit);
      }
      const inFlight = pending.get(path);
      if (inFlight) return inFlight;
      const p = load(path).then(
        (url) => {
          pending.delete(path);
          remember(path, url);
          return url;
        },
        (e: unknown) => {
          pending.delete(path);
          throw e;
        },
      );
      pending.set(path, p);
      return p;
    },
  };
}
