import { useMemo, useState } from "react";
import { commands, type Job, type JobOutput } from "../../bindings";
import { Button } from "../../components/Button";
import { ConfirmDialog } from "../../components/ConfirmDialog";
import { LoadFailedNotice } from "../../components/ListNotices";
import { EmptyState } from "../../components/EmptyState";
import { Loading } from "../../components/Spinner";
import { useToast } from "../../components/Toast";
import { call, errorMessage } from "../../lib/errors";
import { plural, timeAgo } from "../../lib/format";
import { useJobs } from "../jobs/JobsContext";
import { OutputThumb } from "./OutputThumb";
import { useOpenOutput } from "./useOpenOutput";

export type GalleryEntry = { job: Job; output: JobOutput };

/** Every saved output of the succeeded jobs, newest job first, in the order the workflow produced them. */
export function galleryEntries(jobs: Job[]): GalleryEntry[] {
  return jobs
    .filter((j) => j.state === "succeeded")
    .sort((a, b) => (b.finished_ms ?? b.queued_ms) - (a.finished_ms ?? a.queued_ms))
    .flatMap((job) => job.outputs.filter((o) => o.path !== "").map((output) => ({ job, output })));
}

export function GalleryPage({ onGoToGenerate }: { onGoToGenerate?: () => void }) {
  const { jobs, loadError, refresh, upsert } = useJobs();
  const open = useOpenOutput();
  const toast = useToast();
  const entries = useMemo(() => (jobs ? galleryEntries(jobs) : []), [jobs]);
  // The image asked about in the confirmation, and whether its deletion is under way.
  const [doomed, setDoomed] = useState<GalleryEntry | null>(null);
  const [deleting, setDeleting] = useState(false);

  async function remove({ job, output }: GalleryEntry) {
    setDeleting(true);
    try {
      upsert(await call(commands.galleryDelete(job.id, output.path)));
    } catch (e) {
      toast.show(errorMessage(e), { kind: "error", title: `Could not delete ${output.filename}` });
    } finally {
      setDeleting(false);
      setDoomed(null);
    }
  }

  return (
    <div className="page page-wide">
      <header className="page-header">
        <div>
          <h1 className="page-title">Gallery</h1>
          <p className="page-subtitle muted" data-testid="gallery-summary">
            {jobs === null ? "Loading…" : entries.length === 0 ? "Images your jobs made." : `${plural(entries.length, "image")}, newest first`}
          </p>
        </div>
      </header>

      {loadError ? (
        <LoadFailedNotice title="The jobs could not be loaded." error={loadError} onRetry={() => void refresh()} />
      ) : jobs === null ? (
        <Loading>Loading images…</Loading>
      ) : entries.length === 0 ? (
        <EmptyState
          testId="gallery-empty"
          title="No images yet"
          actions={
            onGoToGenerate && (
              <Button variant="primary" onClick={onGoToGenerate}>
                Generate an image
              </Button>
            )
          }
        >
          <p>Every image a job makes is saved on this computer and shows up here, newest first.</p>
          <p>Start one on the Generate page: pick a template, describe the image and press Run.</p>
        </EmptyState>
      ) : (
        <ul className="gallery-grid" aria-label="Images">
          {entries.map(({ job, output }) => (
            <li key={`${job.id}/${output.path}`} className="gallery-item" data-testid="gallery-item" data-path={output.path} data-job-id={job.id}>
              <OutputThumb output={output} size="md" onOpen={(o) => void open(o)} />
              <div className="gallery-caption">
                <span className="gallery-name" title={job.name}>
                  {job.name}
                </span>
                <span className="muted small gallery-file" title={output.path}>
                  {output.filename}
                  {job.finished_ms != null && ` · ${timeAgo(job.finished_ms)}`}
                </span>
              </div>
              <div className="gallery-actions">
                <Button size="sm" data-testid="open-output" onClick={() => void open(output)} aria-label={`Open ${output.filename}`}>
                  Open
                </Button>
                <Button size="sm" variant="ghost" data-testid="reveal-output" onClick={() => void open(output, true)} aria-label={`Show ${output.filename} in its folder`}>
                  Show in folder
                </Button>
                <Button
                  size="sm"
                  variant="ghost"
                  className="btn-danger-text"
                  data-testid="delete-output"
                  onClick={() => setDoomed({ job, output })}
                  aria-label={`Delete ${output.filename}`}
                >
                  Delete
                </Button>
              </div>
            </li>
          ))}
        </ul>
      )}

      {doomed && (
        <ConfirmDialog
          title="Delete this image?"
          confirmLabel="Delete"
          danger
          busy={deleting}
          onConfirm={() => void remove(doomed)}
          onCancel={() => setDoomed(null)}
          testId="confirm-delete-output"
        >
          <p>
            <strong>{doomed.output.filename}</strong> from “{doomed.job.name}” is removed from this computer. This cannot be
            undone.
          </p>
        </ConfirmDialog>
      )}
    </div>
  );
}
