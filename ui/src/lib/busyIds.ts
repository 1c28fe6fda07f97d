// Which items of a list have an action under way (e.g. cancelling a job), so each row can show its own spinner.
import { useCallback, useState } from "react";

export type BusyIds = {
  /** Whether `id` has an action under way. */
  has: (id: string) => boolean;
  /** Marks `id` busy while `action` runs (also when it throws). */
  during: (id: string, action: () => Promise<void>) => Promise<void>;
};

export function useBusyIds(): BusyIds {
  const [ids, setIds] = useState<ReadonlySet<string>>(new Set());
  const during = useCallback(async (id: string, action: () => Promise<void>) => {
    setIds((s) => new Set(s).add(id));
    try {
      await action();
    } finally {
      setIds((s) => {
        const next = new Set(s);
        next.delete(id);
        return next;
      });
    }
  }, []);
  return { has: (id: string) => ids.has(id), during };
}
