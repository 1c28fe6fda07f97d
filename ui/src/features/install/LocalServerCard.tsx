import { useCallback, useEffect, useLayoutEffect, useRef, useState } from "react";
import { commands, type LocalStatus, type LogTail, type UiError } from "../../bindings";
import { Badge } from "../../components/Badge";
import { Button } from "../../components/Button";
import { ConfirmDialog } from "../../components/ConfirmDialog";
import { Modal } from "../../components/Modal";
import { Loading } from "../../components/Spinner";
import { call, errorMessage, type Result } from "../../lib/errors";
import { plural } from "../../lib/format";
import { LOCAL_STATE_LABELS, localActions, localStateTone } from "./installModel";

export const LOCAL_POLL_MS = 2000;
export const LOG_LINES = 500;

type Action = "start" | "stop" | "restart" | "keep" | "repair" | "uninstall";

const ACTION_FAILED: Record<Action, string> = {
  start: "ComfyUI did not start.",
  stop: "ComfyUI did not stop.",
  restart: "ComfyUI did not restart.",
  keep: "The setting was not saved.",
  repair: "The repair did not start.",
  uninstall: "ComfyUI was not removed.",
};

/** The ComfyUI this app installed and runs on this computer: its state, Start/Stop/Restart and its log. */
export function LocalServerCard({ onGoToInstall }: { onGoToInstall: () => void }) {
  const [status, setStatus] = useState<LocalStatus | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [busy, setBusy] = useState<Action | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);
  const [showLogs, setShowLogs] = useState(false);
  const [confirmUninstall, setConfirmUninstall] = useState(false);
  const [removeModels, setRemoveModels] = useState(false);
  /** Bumped by every action so a poll answer older than the action's is not shown. */
  const epoch = useRef(0);

  const poll = useCallback(async () => {
    const mine = epoch.current;
    try {
      const s = await call(commands.localStatus());
      if (epoch.current === mine) {
        setStatus(s);
        setLoadError(null);
      }
    } catch (e) {
      if (epoch.current === mine) setLoadError(errorMessage(e));
    }
  }, []);

  useEffect(() => {
    let live = true;
    let inFlight = false;
    const tick = async () => {
      if (inFlight || !live) return;
      inFlight = true;
      await poll();
      inFlight = false;
    };
    void tick();
    const timer = setInterval(() => void tick(), LOCAL_POLL_MS);
    return () => {
      live = false;
      epoch.current += 1;
      clearInterval(timer);
    };
  }, [poll]);

  async function act(action: Action, command: () => Promise<Result<LocalStatus, UiError>>) {
    epoch.current += 1;
    setBusy(action);
    setActionError(null);
    try {
      const s = await call(command());
      setStatus(s);
    } catch (e) {
      setActionError(`${ACTION_FAILED[action]} ${errorMessage(e)}`);
    } finally {
      epoch.current += 1;
      setBusy(null);
    }
  }

  /** Re-verifies the install (model checksums, the Python environment); its progress shows on the Install page. */
  async function repair(installPath: string) {
    setBusy("repair");
    setActionError(null);
    try {
      await call(commands.installRepair(installPath));
      onGoToInstall();
    } catch (e) {
      setActionError(`${ACTION_FAILED.repair} ${errorMessage(e)}`);
    } finally {
      setBusy(null);
    }
  }

  async function uninstall(installPath: string) {
    epoch.current += 1;
    setBusy("uninstall");
    setActionError(null);
    try {
      await call(commands.installUninstall(installPath, removeModels));
      setConfirmUninstall(false);
      await poll();
    } catch (e) {
      setConfirmUninstall(false);
      setActionError(`${ACTION_FAILED.uninstall} ${errorMessage(e)}`);
    } finally {
      epoch.current += 1;
      setBusy(null);
    }
  }

  if (!status) {
    if (!loadError) return null;
    return (
      <div className="notice notice-bad list-error local-card-error" role="alert" data-testid="local-load-error">
        <p>
          <strong>The local server's status could not be read.</strong> {loadError}
        </p>
        <Button size="sm" onClick={() => void poll()}>
          Try again
        </Button>
      </div>
    );
  }

  if (status.state === "not_installed") {
    return (
      <section className="card local-cta" aria-label="ComfyUI on this computer">
        <div>
          <h2 className="card-title">No ComfyUI on this computer yet</h2>
          <p className="muted">
            ComfyFleet can install ComfyUI here in one go: it checks your GPU, downloads ComfyUI and the models you pick, and
            adds it as the Local server.
          </p>
        </div>
        <Button variant="primary" data-testid="local-install-cta" onClick={onGoToInstall}>
          Install ComfyUI on this computer
        </Button>
      </section>
    );
  }

  const can = localActions(status.state);
  return (
    <section className="card local-card" data-testid="local-card" data-state={status.state} aria-labelledby="local-card-title">
      <div className="row-main">
        <div className="row-title">
          <Badge tone={localStateTone(status.state)} dot data-testid="local-state" data-state={status.state} className="status-badge">
            {LOCAL_STATE_LABELS[status.state]}
          </Badge>
          <h2 id="local-card-title" className="server-name">
            Local ComfyUI
          </h2>
          {status.restarts > 0 && (
            <Badge tone="warn" data-testid="local-restarts">
              Restarted {plural(status.restarts, "time")} after crashes
            </Badge>
          )}
        </div>
        <div className="row-sub local-facts">
          {status.url && (
            <span className="server-url" data-testid="local-url">
              {status.url}
            </span>
          )}
          <span className="muted">Port {status.port}</span>
          {status.pid != null && <span className="muted" data-testid="local-pid">PID {status.pid}</span>}
          {status.install_path && (
            <span className="muted path" title="Install folder">
              {status.install_path}
            </span>
          )}
        </div>
        {status.last_error && (
          <p className="notice notice-bad" data-testid="local-last-error" data-code={status.last_error.code}>
            {status.last_error.message}
          </p>
        )}
        {actionError && (
          <p className="notice notice-bad" role="alert" data-testid="local-error">
            {actionError}
          </p>
        )}
        <label className="check-row local-keep">
          <input
            type="checkbox"
            data-testid="local-keep-running"
            checked={status.keep_running}
            disabled={busy === "keep"}
            onChange={(e) => {
              const keep = e.target.checked;
              void act("keep", () => commands.localSetKeepRunning(keep));
            }}
          />
          <span className="check-label">Keep running when ComfyFleet quits</span>
        </label>
      </div>
      <div className="row-actions">
        <Button size="sm" data-testid="local-start" busy={busy === "start"} disabled={!can.start || busy !== null} onClick={() => void act("start", () => commands.localStart())}>
          Start
        </Button>
        <Button size="sm" data-testid="local-stop" busy={busy === "stop"} disabled={!can.stop || busy !== null} onClick={() => void act("stop", () => commands.localStop())}>
          Stop
        </Button>
        <Button
          size="sm"
          data-testid="local-restart"
          busy={busy === "restart"}
          disabled={!can.restart || busy !== null}
          onClick={() => void act("restart", () => commands.localRestart())}
        >
          Restart
        </Button>
        <Button size="sm" variant="ghost" data-testid="local-logs" onClick={() => setShowLogs(true)}>
          Logs
        </Button>
        {status.install_path && (
          <>
            <Button
              size="sm"
              variant="ghost"
              data-testid="local-repair"
              title="Check the models' checksums and the Python environment, and fix what is damaged"
              busy={busy === "repair"}
              disabled={busy !== null}
              onClick={() => void repair(status.install_path as string)}
            >
              Repair
            </Button>
            <Button size="sm" variant="ghost" data-testid="local-uninstall" disabled={busy !== null} onClick={() => setConfirmUninstall(true)}>
              Uninstall
            </Button>
          </>
        )}
      </div>
      {showLogs && <LogViewer onClose={() => setShowLogs(false)} />}
      {confirmUninstall && status.install_path && (
        <ConfirmDialog
          title="Uninstall the local ComfyUI?"
          confirmLabel="Uninstall"
          danger
          busy={busy === "uninstall"}
          testId="local-uninstall-confirm"
          onConfirm={() => void uninstall(status.install_path as string)}
          onCancel={() => setConfirmUninstall(false)}
        >
          <p>
            ComfyUI stops, the Local server leaves the list and <span className="path">{status.install_path}</span> is deleted,
            with the models inside it. Models in a shared folder you chose are kept.
          </p>
          <label className="check-row">
            <input type="checkbox" data-testid="local-uninstall-models" checked={removeModels} onChange={(e) => setRemoveModels(e.target.checked)} />
            <span className="check-label">Also delete the models it downloaded into the shared folder</span>
          </label>
        </ConfirmDialog>
      )}
    </section>
  );
}

/** The end of the local server's log, scrolled to the newest line. */
export function LogViewer({ onClose }: { onClose: () => void }) {
  const [tail, setTail] = useState<LogTail | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const [openError, setOpenError] = useState<string | null>(null);
  const pre = useRef<HTMLPreElement>(null);

  const load = useCallback(async () => {
    setLoading(true);
    try {
      setTail(await call(commands.localLogs(LOG_LINES)));
      setError(null);
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setLoading(false);
    }
  }, []);

  useEffect(() => {
    void load();
  }, [load]);

  useLayoutEffect(() => {
    if (pre.current) pre.current.scrollTop = pre.current.scrollHeight;
  }, [tail]);

  async function openFile() {
    if (!tail) return;
    try {
      await call(commands.openPath(tail.path, false));
      setOpenError(null);
    } catch (e) {
      setOpenError(errorMessage(e));
    }
  }

  return (
    <Modal title="Local ComfyUI log" onClose={onClose} testId="local-log-viewer">
      <div className="modal-body">
        {tail && (
          <p className="muted small path">
            {tail.path}
            {tail.truncated && ` · the last ${LOG_LINES} lines`}
          </p>
        )}
        {error && (
          <p className="notice notice-bad" role="alert" data-testid="local-log-error">
            {error}
          </p>
        )}
        {openError && (
          <p className="notice notice-bad" role="alert">
            {openError}
          </p>
        )}
        {tail ? (
          <pre ref={pre} className="install-pre local-log" data-testid="local-log-text" tabIndex={0} aria-label="Log text">
            {tail.text || "The log is empty."}
          </pre>
        ) : (
          !error && (
            <Loading>Loading the log…</Loading>
          )
        )}
      </div>
      <footer className="modal-footer">
        <Button data-testid="local-log-open" onClick={() => void openFile()} disabled={!tail}>
          Open log file
        </Button>
        <span className="spacer" />
        <Button data-testid="local-log-refresh" busy={loading} onClick={() => void load()}>
          Refresh
        </Button>
        <Button variant="primary" onClick={onClose}>
          Close
        </Button>
      </footer>
    </Modal>
  );
}
