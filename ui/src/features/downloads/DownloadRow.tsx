import type { DownloadItem } from "../../bindings";
import { Badge } from "../../components/Badge";
import { Button } from "../../components/Button";
import { ProgressBar } from "../../components/ProgressBar";
import { DOWNLOAD_STATE_LABELS, downloadStateTone, fractionOf, humanBytes, progressLine } from "./downloadFormat";

export type DownloadAction = "pause" | "resume" | "cancel" | "retry" | "reveal";

type Props = {
  item: DownloadItem;
  /** The action under way for this item, if any (its button shows a spinner). */
  busy: DownloadAction | null;
  onAction: (item: DownloadItem, action: DownloadAction) => void;
};

/** One download: what and where, how far (bar, bytes, speed, time left), what went wrong, and what can be done. */
export function DownloadRow({ item, busy, onAction }: Props) {
  const fraction = fractionOf(item);
  const showBar = item.state === "queued" || item.state === "running" || item.state === "paused";
  const act = (action: DownloadAction, label: string, variant: "secondary" | "ghost" = "secondary", extra?: string) => (
    <Button
      size="sm"
      variant={variant}
      className={extra}
      data-testid={`download-${action}`}
      busy={busy === action}
      disabled={busy !== null && busy !== action}
      onClick={() => onAction(item, action)}
      aria-label={`${label} ${item.file_name}`}
    >
      {label}
    </Button>
  );
  return (
    <li
      className="job-row download-row"
      data-testid="download-row"
      data-state={item.state}
      data-download-id={item.id}
      data-file-name={item.file_name}
      aria-label={`${item.file_name}, ${DOWNLOAD_STATE_LABELS[item.state].toLowerCase()}`}
    >
      <div className="row-main">
        <div className="row-title">
          <Badge tone={downloadStateTone(item.state)} dot data-testid="download-state" data-state={item.state} className="job-state-badge">
            {DOWNLOAD_STATE_LABELS[item.state]}
          </Badge>
          <h3 className="job-name" title={item.dest}>
            {item.file_name}
          </h3>
        </div>
        <div className="row-sub download-where">
          <span className="muted path" data-testid="download-url" title={item.url}>
            {item.url}
          </span>
          <span className="muted path" data-testid="download-dest">
            → {item.dest}
          </span>
        </div>
        {showBar && (
          <ProgressBar
            value={item.state === "queued" && item.downloaded === 0 ? null : fraction}
            label={`${item.file_name} download progress`}
            size="sm"
            testId="download-progress"
          />
        )}
        {item.state !== "failed" && item.state !== "cancelled" && (
          <p className="row-sub download-numbers" data-testid="download-numbers">
            {item.state === "done" ? humanBytes(item.total ?? item.downloaded) : progressLine(item)}
            {item.detail && <span className="muted"> · {item.detail}</span>}
          </p>
        )}
        {item.state === "done" && item.sha256 && (
          <p className="muted small mono download-sha" data-testid="download-sha256" title="SHA-256">
            SHA-256 {item.sha256}
          </p>
        )}
        {item.state === "failed" && item.error && (
          <p className="notice notice-bad" role="alert" data-testid="download-error" data-code={item.error.code}>
            {item.error.message}
          </p>
        )}
      </div>
      <div className="row-actions">
        {(item.state === "queued" || item.state === "running") && act("pause", "Pause")}
        {item.state === "paused" && act("resume", "Resume", "secondary")}
        {(item.state === "failed" || item.state === "cancelled") && item.this_session && act("retry", "Retry")}
        {item.state === "done" && act("reveal", "Show in folder")}
        {(item.state === "queued" || item.state === "running" || item.state === "paused" || item.state === "failed") &&
          act("cancel", "Cancel", "ghost", "btn-danger-text")}
      </div>
    </li>
  );
}
