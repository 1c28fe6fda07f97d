// ONE app-wide live feed per kind of thing (jobs, downloads, the install): a Tauri Channel the Rust side streams
// changes through, opened once (kept across StrictMode's effect re-run), then the snapshot loaded — subscribe
// first, so a change that happens in between is never missed. Says why changes are not arriving; `reconnect`
// subscribes again and reloads.
import { Channel } from "@tauri-apps/api/core";
import { useCallback, useEffect, useRef, useState, type MutableRefObject } from "react";
import type { UiError } from "../bindings";
import { call, errorMessage, type Result } from "./errors";

/** True while the component is mounted (set again when StrictMode re-runs effects). */
export function useMounted(): MutableRefObject<boolean> {
  const mounted = useRef(true);
  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
    };
  }, []);
  return mounted;
}

export type LiveFeed = {
  /** Why live changes are not arriving; null while they are. */
  liveError: string | null;
  /** Subscribes again after a failure, then reloads. */
  reconnect: () => Promise<void>;
};

/**
 * `subscribe` hands the channel to the Rust side (e.g. `commands.jobsSubscribe`); `onMessage` gets each message of
 * the current channel while mounted; `load` loads the snapshot after subscribing (and after each reconnect).
 */
export function useLiveFeed<T>(
  subscribe: (channel: Channel<T>) => Promise<Result<null, UiError>>,
  onMessage: (message: T) => void,
  load: () => Promise<void>,
  mounted: MutableRefObject<boolean>,
): LiveFeed {
  const [liveError, setLiveError] = useState<string | null>(null);
  const channel = useRef<Channel<T> | null>(null);
  // The latest callbacks, so the one channel always calls what this render gave.
  const latest = useRef({ subscribe, onMessage, load });
  latest.current = { subscribe, onMessage, load };

  const open = useCallback(async () => {
    let ch: Channel<T>;
    try {
      ch = new Channel<T>((message) => {
        if (channel.current === ch && mounted.current) latest.current.onMessage(message);
      });
    } catch (e) {
      // Outside the desktop app there is no IPC to open a channel on.
      setLiveError(errorMessage(e));
      return;
    }
    channel.current = ch;
    try {
      await call(latest.current.subscribe(ch));
      if (mounted.current) setLiveError(null);
    } catch (e) {
      if (channel.current === ch) channel.current = null;
      if (mounted.current) setLiveError(errorMessage(e));
    }
  }, [mounted]);

  const reconnect = useCallback(async () => {
    await open();
    await latest.current.load();
  }, [open]);

  useEffect(() => {
    const opened = channel.current ? Promise.resolve() : open();
    void opened.then(() => latest.current.load());
  }, [open]);

  return { liveError, reconnect };
}
