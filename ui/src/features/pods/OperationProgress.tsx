// The progress of a pod's create or start: the latest message from its Channel, a bar by stage, and the seconds so
// far on a clock that ticks between messages (so a slow step never looks frozen).
import { useEffect, useState } from "react";
import type { PodProgress } from "../../bindings";
import { ProgressBar } from "../../components/ProgressBar";
import { elapsedOf, formatElapsed, stageFraction } from "./podFormat";

/** A create or start under way: the latest progress from its Channel and when it began (for a ticking clock). */
export type PodOperation = { progress: PodProgress | null; startedMs: number };
export type CreateOperation = PodOperation & { name: string; error: string | null; done: boolean };

/** Date.now(), re-read every second while `ticking`, so elapsed times move between progress messages. */
export function useNow(ticking: boolean): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!ticking) return;
    setNow(Date.now());
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, [ticking]);
  return now;
}

/** The latest progress message, a bar by stage, and the seconds so far (ticking, so it never looks frozen). */
export function OperationProgress({ op, now, testId, fallback }: { op: PodOperation; now: number; testId: string; fallback: string }) {
  const message = op.progress?.message ?? fallback;
  return (
    <div className="pod-progress" role="status" data-testid={testId} data-stage={op.progress?.stage ?? ""}>
      <ProgressBar value={op.progress ? stageFraction(op.progress.stage) : null} label={message} size="sm" />
      <p className="pod-progress-line">
        <span data-testid={`${testId}-message`}>{message}</span>{" "}
        <span className="muted" data-testid={`${testId}-elapsed`}>
          {formatElapsed(elapsedOf(op, now))}
        </span>
      </p>
    </div>
  );
}

