import type { ServerStatus, Server } from "../../bindings";
import { Badge } from "../../components/Badge";
import { Button } from "../../components/Button";
import { timeAgo } from "../../lib/format";
import { StatusBadge } from "./StatusBadge";
import {
  AUTH_LABELS,
  isCloud,
  latencyText,
  queueFraction,
  queueText,
  versionText,
  vramText,
  vramUsedFraction,
  workersText,
} from "./statusFormat";

type Props = {
  server: Server;
  status: ServerStatus | undefined;
  testing: boolean;
  activating: boolean;
  onActivate: (s: Server) => void;
  onTest: (s: Server) => void;
  onEdit: (s: Server) => void;
  onDelete: (s: Server) => void;
};

function Meter({ fraction, label }: { fraction: number; label: string }) {
  const level = fraction >= 0.9 ? "high" : fraction >= 0.6 ? "mid" : "low";
  return (
    <span className={`meter meter-${level}`} title={label} aria-hidden="true">
      <span className="meter-fill" style={{ width: `${Math.round(fraction * 100)}%` }} />
    </span>
  );
}

function authSummary(server: Server): string {
  if (server.runpod) return `RunPod serverless · ${server.runpod.flavour} on ${server.runpod.gpu_class}`;
  const a = server.auth;
  if (a.kind === "none") return "No authentication";
  if (a.kind === "basic" && a.user) return `Basic auth as ${a.user}`;
  if (a.kind === "api_key" && a.header) return `API key in ${a.header}`;
  return AUTH_LABELS[a.kind];
}

export function ServerRow({ server, status, testing, activating, onActivate, onTest, onEdit, onDelete }: Props) {
  const st = status?.status ?? "unknown";
  const vram = status ? vramText(status.devices) : null;
  const vramUsed = status ? vramUsedFraction(status.devices) : null;
  const queue = status ? queueText(status.queue, server.max_queue) : null;
  const queueFill = status ? queueFraction(status.queue, server.max_queue) : null;
  const version = status ? versionText(status) : null;
  const workers = status ? workersText(status.workers) : null;
  const latency = status && st === "connected" ? latencyText(status.latency_ms) : null;
  const device = status?.devices[0];
  const lastSeen =
    status && st !== "connected" && status.last_connected_ms != null ? `Last connected ${timeAgo(status.last_connected_ms)}` : null;
  const error = status && st !== "connected" ? status.error : null;

  return (
    <li
      className={`server-row${server.active ? " server-row-active" : ""}`}
      data-testid="server-row"
      data-server-name={server.name}
      data-server-id={server.id}
      aria-label={`${server.name}${server.active ? ", active" : ""}`}
    >
      <div className="row-main">
        <div className="row-title">
          <StatusBadge status={st} />
          <h3 className="server-name">{server.name}</h3>
          {server.active && (
            <Badge tone="accent" data-testid="active-marker">
              Active
            </Badge>
          )}
          {isCloud(server) && (
            <Badge tone="info" data-testid="cloud-badge" title="Runs in the cloud and is billed while it works">
              ☁ Cloud
            </Badge>
          )}
          {server.needs_credentials && (
            <Badge tone="warn" data-testid="needs-credentials" title="Open Edit and enter the password or token">
              Needs credentials
            </Badge>
          )}
          {server.tags.map((tag) => (
            <span key={tag} className="tag-chip" data-testid="server-tag">
              {tag}
            </span>
          ))}
        </div>

        <div className="row-sub">
          <span className="server-url" data-testid="server-url">
            {server.url}
          </span>
          <span className="muted">{authSummary(server)}</span>
        </div>

        {(vram || queue || version || workers || latency || lastSeen) && (
          <div className="row-metrics">
            {vram && (
              <span className="metric" title={device ? `${device.name}` : undefined}>
                <span data-testid="server-vram">{vram}</span>
                {vramUsed != null && <Meter fraction={vramUsed} label={`${Math.round(vramUsed * 100)}% of VRAM in use`} />}
              </span>
            )}
            {vram && queue && (
              <span className="metric-sep" aria-hidden="true">
                |
              </span>
            )}
            {queue && (
              <span className="metric">
                <span data-testid="server-queue">{queue}</span>
                {queueFill != null && <Meter fraction={queueFill} label={`Queue ${Math.round(queueFill * 100)}% full`} />}
              </span>
            )}
            {workers && (
              <span className="metric muted" data-testid="server-workers">
                {workers}
              </span>
            )}
            {version && (
              <span className="metric muted" data-testid="server-version">
                {version}
              </span>
            )}
            {latency && (
              <span className="metric muted" data-testid="server-latency">
                {latency}
              </span>
            )}
            {lastSeen && <span className="metric muted">{lastSeen}</span>}
          </div>
        )}

        {server.plain_http_warning && (
          <p className="notice notice-warn" data-testid="plain-http-warning">
            <span aria-hidden="true">⚠ </span>
            {server.plain_http_warning}
          </p>
        )}
        {server.needs_credentials && (
          <p className="notice notice-warn">
            This server has no stored password or token yet (exports never include them). Choose Edit to enter it.
          </p>
        )}
        {error && (
          <p className="notice notice-bad" data-testid="server-error">
            {error}
          </p>
        )}
      </div>

      <div className="row-actions">
        {!server.active && (
          <Button
            size="sm"
            data-testid="activate-server"
            busy={activating}
            onClick={() => onActivate(server)}
            aria-label={`Make ${server.name} the active server`}
          >
            Make active
          </Button>
        )}
        <Button size="sm" data-testid="test-server" busy={testing} onClick={() => onTest(server)} aria-label={`Test connection to ${server.name}`}>
          Test
        </Button>
        <Button size="sm" data-testid="edit-server" onClick={() => onEdit(server)} aria-label={`Edit ${server.name}`}>
          Edit
        </Button>
        <Button size="sm" variant="ghost" className="btn-danger-text" data-testid="delete-server" onClick={() => onDelete(server)} aria-label={`Delete ${server.name}`}>
          Delete
        </Button>
      </div>
    </li>
  );
}
