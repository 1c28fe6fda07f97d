// Every download the UI knows about: the list loaded on start (this session's downloads and the verified files
// the database remembers), kept live by ONE app-wide Channel the Rust side streams download changes through
// (states at once, progress throttled). Used by the Downloads page and the nav count; later by the installer.
import { createContext, useCallback, useContext, useMemo, useState, type ReactNode } from "react";
import { commands, type DownloadItem, type DownloadUpdate } from "../../bindings";
import { call, errorMessage } from "../../lib/errors";
import { useLiveFeed, useMounted } from "../../lib/liveFeed";

type DownloadsApi = {
  /** This session's downloads newest first, then remembered ones; null until the first load. */
  downloads: DownloadItem[] | null;
  loadError: string | null;
  liveError: string | null;
  refresh: () => Promise<void>;
  reconnect: () => Promise<void>;
  /** Puts an item a command returned into the list (a newer copy already there wins). */
  upsert: (item: DownloadItem) => void;
  /** Takes these downloads out of the list (Clear finished). */
  remove: (ids: string[]) => void;
};

const DownloadsContext = createContext<DownloadsApi | null>(null);

export function useDownloads(): DownloadsApi {
  const api = useContext(DownloadsContext);
  if (!api) throw new Error("useDownloads must be used inside <DownloadsProvider>");
  return api;
}

type Items = Record<string, DownloadItem>;

/** The list with `item` in it: a newer copy already there wins; an older download of the same file is replaced. */
export function merge(items: Items, item: DownloadItem): Items {
  const have = items[item.id];
  if (have && have.updated_ms > item.updated_ms) return items;
  const next: Items = {};
  for (const [id, other] of Object.entries(items)) if (other.dest !== item.dest) next[id] = other;
  next[item.id] = item;
  return next;
}

/** The list without `ids`. */
export function without(items: Items, ids: string[]): Items {
  if (!ids.some((id) => id in items)) return items;
  const next = { ...items };
  for (const id of ids) delete next[id];
  return next;
}

/** A loaded snapshot merged with what arrived live meanwhile. */
export function withSnapshot(items: Items, list: DownloadItem[]): Items {
  let next: Items = {};
  for (const item of list) next = merge(next, items[item.id] && items[item.id].updated_ms > item.updated_ms ? items[item.id] : item);
  for (const item of Object.values(items)) if (!next[item.id] && item.this_session && !Object.values(next).some((n) => n.dest === item.dest)) next = merge(next, item);
  return next;
}

/** This session's first (newest first), then the remembered files (most recent first). */
export function downloadOrder(items: DownloadItem[]): DownloadItem[] {
  return [...items].sort((a, b) => {
    if (a.this_session !== b.this_session) return a.this_session ? -1 : 1;
    return b.added_ms - a.added_ms;
  });
}

export function DownloadsProvider({ children }: { children: ReactNode }) {
  const [items, setItems] = useState<Items>({});
  const [loaded, setLoaded] = useState(false);
  const [loadError, setLoadError] = useState<string | null>(null);
  const mounted = useMounted();

  const upsert = useCallback((item: DownloadItem) => setItems((all) => merge(all, item)), []);
  const remove = useCallback((ids: string[]) => setItems((all) => without(all, ids)), []);

  const refresh = useCallback(async () => {
    try {
      const list = await call(commands.downloadsList());
      if (!mounted.current) return;
      setItems((all) => withSnapshot(all, list));
      setLoaded(true);
      setLoadError(null);
    } catch (e) {
      if (mounted.current) setLoadError(errorMessage(e));
    }
  }, [mounted]);

  const { liveError, reconnect } = useLiveFeed<DownloadUpdate>(
    commands.downloadsSubscribe,
    (update) => {
      if (update.kind === "changed") upsert(update.item);
      else remove(update.ids);
    },
    refresh,
    mounted,
  );

  const downloads = useMemo(() => (loaded ? downloadOrder(Object.values(items)) : null), [loaded, items]);

  const api = useMemo<DownloadsApi>(
    () => ({ downloads, loadError, liveError, refresh, reconnect, upsert, remove }),
    [downloads, loadError, liveError, refresh, reconnect, upsert, remove],
  );
  return <DownloadsContext.Provider value={api}>{children}</DownloadsContext.Provider>;
}
