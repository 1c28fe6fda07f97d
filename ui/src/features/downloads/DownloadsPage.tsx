import { useEffect, useMemo, useState } from "react";
import { commands, type DownloadItem } from "../../bindings";
import { Button } from "../../components/Button";
import { LiveOffNotice, LoadFailedNotice } from "../../components/ListNotices";
import { EmptyState } from "../../components/EmptyState";
import { Loading } from "../../components/Spinner";
import { useToast } from "../../components/Toast";
import { call, errorMessage } from "../../lib/errors";
import { AddDownloadForm } from "./AddDownloadForm";
import { isActive } from "./downloadFormat";
import { DownloadRow, type DownloadAction } from "./DownloadRow";
import { useDownloads } from "./DownloadsContext";

const ACTION_TITLES: Record<DownloadAction, string> = {
  pause: "Could not pause",
  resume: "Could not resume",
  cancel: "Could not cancel",
  retry: "Could not retry",
  reveal: "Could not show",
};

/** The downloads folder inside the app home, as the core names it. */
export function downloadsFolder(home: string): string {
  const sep = home.includes("\\") && !home.includes("/") ? "\\" : "/";
  return `${home.replace(/[\\/]+$/, "")}${sep}downloads`;
}

export function DownloadsPage() {
  const { downloads, loadError, liveError, refresh, reconnect, upsert, remove } = useDownloads();
  const toast = useToast();
  const [busy, setBusy] = useState<Record<string, DownloadAction>>({});
  const [clearing, setClearing] = useState(false);
  const [defaultFolder, setDefaultFolder] = useState<string | null>(null);

  useEffect(() => {
    let live = true;
    void commands.appInfo().then((r) => {
      if (live && r.status === "ok") setDefaultFolder(downloadsFolder(r.data.home));
    });
    return () => {
      live = false;
    };
  }, []);

  const activeCount = useMemo(() => (downloads ? downloads.filter(isActive).length : 0), [downloads]);
  const clearable = useMemo(() => (downloads ?? []).some((d) => d.state === "done" || d.state === "cancelled"), [downloads]);

  async function clearFinished() {
    setClearing(true);
    try {
      remove(await call(commands.downloadsClearFinished()));
    } catch (e) {
      toast.show(errorMessage(e), { kind: "error", title: "Could not clear the finished downloads" });
    } finally {
      setClearing(false);
    }
  }

  async function act(item: DownloadItem, action: DownloadAction) {
    setBusy((b) => ({ ...b, [item.id]: action }));
    try {
      switch (action) {
        case "pause":
          upsert(await call(commands.downloadsPause(item.id)));
          break;
        case "resume":
          upsert(await call(commands.downloadsResume(item.id)));
          break;
        case "cancel":
          upsert(await call(commands.downloadsCancel(item.id)));
          break;
        case "retry":
          upsert(await call(commands.downloadsRetry(item.id)));
          break;
        case "reveal":
          await call(commands.openPath(item.dest, true));
          break;
      }
    } catch (e) {
      toast.show(errorMessage(e), { kind: "error", title: `${ACTION_TITLES[action]} ${item.file_name}` });
    } finally {
      setBusy((b) => {
        const next = { ...b };
        delete next[item.id];
        return next;
      });
    }
  }

  return (
    <div className="page">
      <header className="page-header">
        <div>
          <h1 className="page-title">Downloads</h1>
          <p className="page-subtitle muted" data-testid="downloads-summary">
            {downloads === null ? "Loading…" : `${activeCount} in progress · ${downloads.length - activeCount} finished or stopped`}
          </p>
        </div>
      </header>

      <AddDownloadForm defaultFolder={defaultFolder} onAdded={upsert} />

      {liveError && (
        <LiveOffNotice title="Live progress is off." error={liveError} onReconnect={() => void reconnect()} testId="downloads-live-error" />
      )}

      {loadError ? (
        <LoadFailedNotice title="The downloads could not be loaded." error={loadError} onRetry={() => void refresh()} testId="downloads-load-error" />
      ) : downloads === null ? (
        <Loading>Loading downloads…</Loading>
      ) : downloads.length === 0 ? (
        <EmptyState testId="downloads-empty" title="No downloads yet">
          <p>
            Paste a link to a model or any file above and press Download. Downloads resume where they stopped, even after a
            restart, and every file is checked before it gets its final name.
          </p>
        </EmptyState>
      ) : (
        <section className="section" aria-labelledby="downloads-list-title">
          <header className="section-header">
            <h2 id="downloads-list-title" className="section-title">
              Queue <span className="section-count">{downloads.length}</span>
            </h2>
            {clearable && (
              <Button
                size="sm"
                busy={clearing}
                onClick={() => void clearFinished()}
                data-testid="downloads-clear-finished"
                title="Take finished and cancelled downloads out of this list; their files stay where they are"
              >
                Clear finished
              </Button>
            )}
          </header>
          <ul className="job-list" aria-label="Downloads">
            {downloads.map((item) => (
              <DownloadRow key={item.id} item={item} busy={busy[item.id] ?? null} onAction={(i, a) => void act(i, a)} />
            ))}
          </ul>
        </section>
      )}
    </div>
  );
}
