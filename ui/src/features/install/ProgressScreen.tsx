import { useState } from "react";
import { commands, type InstallStatus, type StepStatus } from "../../bindings";
import { Badge } from "../../components/Badge";
import { Button } from "../../components/Button";
import { ProgressBar } from "../../components/ProgressBar";
import { useToast } from "../../components/Toast";
import { call, errorMessage } from "../../lib/errors";
import { formatDuration } from "../../lib/format";
import { useInstall } from "./InstallContext";
import {
  INSTALL_STATE_LABELS,
  installStateTone,
  showsBar,
  STEP_ICONS,
  STEP_STATE_LABELS,
  stepFraction,
  stepProgressLine,
} from "./installModel";

type Action = "pause" | "resume" | "cancel" | "retry" | "log";

const ACTION_TITLES: Record<Action, string> = {
  pause: "Could not pause the install",
  resume: "Could not resume the install",
  cancel: "Could not cancel the install",
  retry: "Could not retry the install",
  log: "Could not open the install log",
};

/** Screen 2: the steps as they run, with Pause / Resume / Cancel; a failure with Retry and the log. */
export function ProgressScreen({ status, onChangeChoices }: { status: InstallStatus; onChangeChoices: () => void }) {
  const { run } = useInstall();
  const toast = useToast();
  const [busy, setBusy] = useState<Action | null>(null);
  const done = status.steps.filter((s) => s.state === "done" || s.state === "skipped").length;

  async function act(action: Action) {
    setBusy(action);
    try {
      switch (action) {
        case "pause":
          await run(() => commands.installPause());
          break;
        case "resume":
        case "retry":
          await run(() => commands.installResume());
          break;
        case "cancel":
          await run(() => commands.installCancel());
          break;
        case "log":
          await call(commands.openPath(status.log_path, false));
          break;
      }
    } catch (e) {
      toast.show(errorMessage(e), { kind: "error", title: ACTION_TITLES[action] });
    } finally {
      setBusy(null);
    }
  }

  const button = (action: Action, label: string, variant: "primary" | "secondary" | "ghost" = "secondary", testId = `install-${action}`) => (
    <Button
      variant={variant}
      className={action === "cancel" ? "btn-danger-text" : undefined}
      data-testid={testId}
      busy={busy === action}
      disabled={busy !== null && busy !== action}
      onClick={() => void act(action)}
    >
      {label}
    </Button>
  );

  return (
    <div className="install-progress" data-testid="install-progress" data-state={status.state}>
      <section className="card">
        <header className="install-progress-head">
          <Badge tone={installStateTone(status.state)} dot data-testid="install-state" data-state={status.state}>
            {INSTALL_STATE_LABELS[status.state]}
          </Badge>
          <span className="muted">
            {done} of {status.steps.length} steps done
          </span>
          <span className="muted" data-testid="install-elapsed">
            {formatDuration(status.elapsed_ms)} elapsed
          </span>
          <span className="muted small path" title="Install folder">
            {status.install_path}
          </span>
          <span className="spacer" />
          <div className="page-actions">
            {status.state === "running" && button("pause", "Pause")}
            {status.state === "paused" && button("resume", "Resume", "primary")}
            {status.state === "failed" && button("retry", "Retry", "primary")}
            {status.state === "failed" && button("log", "Open log", "secondary", "install-open-log")}
            {(status.state === "paused" || status.state === "failed") && (
              <Button variant="ghost" onClick={onChangeChoices} disabled={busy !== null} data-testid="install-change">
                Change choices
              </Button>
            )}
            {button("cancel", "Cancel", "ghost")}
          </div>
        </header>

        {status.state === "failed" && status.error && (
          <div className="notice notice-bad install-error" role="alert" data-testid="install-error" data-code={status.error.code}>
            <p>{status.error.message}</p>
            {status.error.details && (
              <details className="install-error-details">
                <summary>Details</summary>
                <pre className="install-pre">{status.error.details}</pre>
              </details>
            )}
            <p className="small">Retry goes on from the step that failed; finished steps and downloaded bytes are kept.</p>
          </div>
        )}
        {status.state === "paused" && (
          <p className="notice notice-warn" role="status">
            Paused. Finished steps and downloaded bytes are kept; Resume goes on from here.
          </p>
        )}

        <ol className="install-steps" aria-label="Install steps">
          {status.steps.map((step) => (
            <StepRow key={step.id} step={step} />
          ))}
        </ol>
      </section>
    </div>
  );
}

function StepRow({ step }: { step: StepStatus }) {
  const line = stepProgressLine(step);
  return (
    <li className={`install-step install-step-${step.state}`} data-testid={`install-step-${step.id}`} data-state={step.state}>
      <span className="install-step-icon" aria-hidden="true">
        {STEP_ICONS[step.state]}
      </span>
      <div className="install-step-main">
        <div className="row-title">
          <span className="install-step-title">{step.title}</span>
          <span className="install-step-state muted small">{STEP_STATE_LABELS[step.state]}</span>
        </div>
        {step.detail && <p className="muted small install-step-detail">{step.detail}</p>}
        {showsBar(step) && <ProgressBar value={stepFraction(step)} label={`${step.title} progress`} size="sm" testId="install-step-progress" />}
        {line && step.state !== "skipped" && (
          <p className="small install-step-numbers" data-testid="install-step-numbers">
            {line}
          </p>
        )}
      </div>
    </li>
  );
}
