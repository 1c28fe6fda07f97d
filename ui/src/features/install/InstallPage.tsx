import { useEffect, useState } from "react";
import { commands } from "../../bindings";
import { Button } from "../../components/Button";
import { LoadFailedNotice } from "../../components/ListNotices";
import { Loading } from "../../components/Spinner";
import { CheckScreen } from "./CheckScreen";
import { DoneScreen } from "./DoneScreen";
import { useInstall } from "./InstallContext";
import { defaultInstallPath, initialForm, screenFor, type InstallScreen } from "./installModel";
import { ProgressScreen } from "./ProgressScreen";

type Props = { onGoToGenerate: () => void; onGoToServers: () => void };

const SUBTITLES: Record<InstallScreen, string> = {
  check: "Step 1 of 3 · Check this computer and choose what to install.",
  progress: "Step 2 of 3 · Installing. You can leave this page; it goes on in the background.",
  done: "Step 3 of 3 · Done.",
};

/** The install wizard: check → installing → done; the install's state decides the screen. */
export function InstallPage({ onGoToGenerate, onGoToServers }: Props) {
  const { status, loadError, liveError, refresh, reconnect, form, setForm } = useInstall();
  /** The person chose to go back to the choices from a paused, failed or finished install. */
  const [editing, setEditing] = useState(false);

  // The form's defaults: the folder of the install under way, else ComfyUI in the app's home.
  useEffect(() => {
    if (form || !status) return;
    if (status.install_path) {
      setForm((f) => f ?? initialForm(status.install_path));
      return;
    }
    let live = true;
    void commands.appInfo().then((r) => {
      if (live) setForm((f) => f ?? initialForm(r.status === "ok" ? defaultInstallPath(r.data.home) : ""));
    });
    return () => {
      live = false;
    };
  }, [form, status, setForm]);

  const natural = status ? screenFor(status.state) : null;
  // A running install always shows its steps.
  const screen: InstallScreen | null = editing && status?.state !== "running" ? "check" : natural;

  useEffect(() => {
    if (status?.state === "running") setEditing(false);
  }, [status?.state]);

  return (
    <div className="page">
      <header className="page-header">
        <div>
          <h1 className="page-title">Install ComfyUI</h1>
          <p className="page-subtitle muted" data-testid="install-subtitle">
            {screen ? SUBTITLES[screen] : "Loading…"}
          </p>
        </div>
      </header>

      {liveError && (
        <div className="notice notice-warn list-error" role="status" data-testid="install-live-error">
          <p>
            <strong>Live progress is off.</strong> {liveError}
          </p>
          <Button size="sm" onClick={() => void reconnect()}>
            Reconnect
          </Button>
        </div>
      )}

      {loadError && !status ? (
        <LoadFailedNotice title="The install status could not be loaded." error={loadError} onRetry={() => void refresh()} testId="install-load-error" />
      ) : !status || !screen ? (
        <Loading>Loading…</Loading>
      ) : screen === "progress" ? (
        <ProgressScreen status={status} onChangeChoices={() => setEditing(true)} />
      ) : screen === "done" ? (
        <DoneScreen status={status} onGoToGenerate={onGoToGenerate} onGoToServers={onGoToServers} onInstallMore={() => setEditing(true)} />
      ) : !form ? (
        <Loading>Loading…</Loading>
      ) : (
        <>
        {editing && natural !== "check" && (
          <p className="install-back">
            <Button size="sm" variant="ghost" data-testid="install-back" onClick={() => setEditing(false)}>
              ← Back to the {natural === "done" ? "finished" : "current"} install
            </Button>
          </p>
        )}
        <CheckScreen
          form={form}
          note={
            status.state === "cancelled"
              ? "The last install was cancelled. Finished steps are kept; Install goes on from where it stopped."
              : status.state === "failed"
                ? "The last install failed. Change what you need, then Install again; finished steps are kept."
                : null
          }
        />
        </>
      )}
    </div>
  );
}
