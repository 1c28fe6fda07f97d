import type { JobState } from "../../bindings";
import { Badge } from "../../components/Badge";
import { JOB_STATE_LABELS, jobStateTone } from "./jobFormat";

export function JobStateBadge({ state, testId = "job-state" }: { state: JobState; testId?: string }) {
  return (
    <Badge tone={jobStateTone(state)} dot data-testid={testId} data-state={state} className="job-state-badge">
      {JOB_STATE_LABELS[state]}
    </Badge>
  );
}
