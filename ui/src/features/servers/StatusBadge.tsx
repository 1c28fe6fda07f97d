import type { Status } from "../../bindings";
import { Badge } from "../../components/Badge";
import { statusLabel, statusTone } from "./statusFormat";

export function StatusBadge({ status, testId = "status-badge" }: { status: Status; testId?: string }) {
  return (
    <Badge tone={statusTone(status)} dot data-testid={testId} data-status={status} className="status-badge">
      {statusLabel(status)}
    </Badge>
  );
}
