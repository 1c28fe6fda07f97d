import type { InstallStatus } from "../../bindings";
import { Button } from "../../components/Button";
import { formatDuration } from "../../lib/format";

type Props = {
  status: InstallStatus;
  onGoToGenerate: () => void;
  onGoToServers: () => void;
  onInstallMore: () => void;
};

/** Screen 3: ComfyUI runs here and is the active "Local" server; what to do next. */
export function DoneScreen({ status, onGoToGenerate, onGoToServers, onInstallMore }: Props) {
  return (
    <section className="card install-done" data-testid="install-done" aria-labelledby="install-done-title">
      <span className="install-done-mark" aria-hidden="true">
        ✓
      </span>
      <h2 id="install-done-title" className="install-done-title">
        ComfyUI is installed and running
      </h2>
      <p>
        It answers at{" "}
        <code className="path" data-testid="install-done-url">
          {status.url ?? "this computer"}
        </code>{" "}
        and was added as the active <strong>Local</strong> server. Jobs you run now go there.
      </p>
      <p className="muted small">
        Installed in <span className="path">{status.install_path}</span> in {formatDuration(status.elapsed_ms)}.
      </p>
      <div className="empty-actions">
        <Button variant="primary" data-testid="install-go-generate" onClick={onGoToGenerate}>
          Generate an image
        </Button>
        <Button data-testid="install-go-servers" onClick={onGoToServers}>
          Open Servers
        </Button>
        <Button variant="ghost" data-testid="install-more" onClick={onInstallMore}>
          Install more model packs
        </Button>
      </div>
    </section>
  );
}
