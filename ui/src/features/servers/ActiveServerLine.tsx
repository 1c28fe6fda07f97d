import { StatusBadge } from "./StatusBadge";
import { useServers } from "./ServersContext";
import { latencyText } from "./statusFormat";

/** The status line's account of the active server: which one, and whether it answers. */
export function ActiveServerLine() {
  const { servers, activeServer, statuses } = useServers();
  if (servers === null) return <span className="muted">Loading servers…</span>;
  if (!activeServer) {
    return (
      <span data-testid="active-server-status" data-active-name="">
        No active server{servers.length > 0 ? " — choose Make active on a server." : " — add a server to start."}
      </span>
    );
  }
  const status = statuses[activeServer.id];
  const latency = status?.status === "connected" ? latencyText(status.latency_ms) : null;
  return (
    <span className="active-line" data-testid="active-server-status" data-active-name={activeServer.name}>
      <span className="muted">Active server:</span> <strong>{activeServer.name}</strong>
      <StatusBadge status={status?.status ?? "unknown"} testId="active-status-badge" />
      {latency && <span className="muted">{latency}</span>}
    </span>
  );
}
