import type { ImportReport } from "../../bindings";
import { Button } from "../../components/Button";
import { Modal } from "../../components/Modal";
import { plural } from "../../lib/format";

export function ImportReportDialog({ report, onClose }: { report: ImportReport; onClose: () => void }) {
  const { added, skipped, needs_credentials } = report;
  return (
    <Modal title="Import finished" onClose={onClose} testId="import-report" size="sm">
      <div className="modal-body report">
        <section data-testid="import-added">
          <h3>{added.length > 0 ? `Added ${plural(added.length, "server")}` : "No servers added"}</h3>
          {added.length > 0 ? (
            <ul>
              {added.map((name) => (
                <li key={name}>{name}</li>
              ))}
            </ul>
          ) : (
            <p className="muted">The file had no servers that are not already in your list.</p>
          )}
        </section>
        {skipped.length > 0 && (
          <section data-testid="import-skipped">
            <h3>Skipped {plural(skipped.length, "server")}</h3>
            <ul>
              {skipped.map((s, i) => (
                <li key={`${s.name}-${i}`}>
                  <strong>{s.name}</strong>: {s.reason}
                </li>
              ))}
            </ul>
          </section>
        )}
        {needs_credentials.length > 0 && (
          <section data-testid="import-needs-credentials">
            <h3>{plural(needs_credentials.length, "server")} need credentials</h3>
            <p className="muted">
              Exports never contain passwords or tokens. Choose Edit on each of these servers to enter them.
            </p>
            <ul>
              {needs_credentials.map((name) => (
                <li key={name}>{name}</li>
              ))}
            </ul>
          </section>
        )}
      </div>
      <footer className="modal-footer">
        <span className="spacer" />
        <Button variant="primary" onClick={onClose} data-testid="import-report-close">
          Done
        </Button>
      </footer>
    </Modal>
  );
}
