import { useState } from "react";
import { open, save } from "@tauri-apps/plugin-dialog";
import { commands, type ImportReport, type Server } from "../../bindings";
import { Button } from "../../components/Button";
import { LoadFailedNotice } from "../../components/ListNotices";
import { ConfirmDialog } from "../../components/ConfirmDialog";
import { EmptyState } from "../../components/EmptyState";
import { Loading } from "../../components/Spinner";
import { useToast } from "../../components/Toast";
import { call, errorMessage } from "../../lib/errors";
import { LocalServerCard } from "../install/LocalServerCard";
import { PodsSection } from "../pods/PodsSection";
import { plural } from "../../lib/format";
import { ImportReportDialog } from "./ImportReportDialog";
import { ServerForm } from "./ServerForm";
import { ServerRow } from "./ServerRow";
import { useServers } from "./ServersContext";

const JSON_FILTER = [{ name: "ComfyFleet server list", extensions: ["json"] }];

type FormState = { server: Server | null } | null;

/** `onGoToInstall` opens the Install page (from the local server's call to action). */
export function ServersPage({ onGoToInstall, onGoToSettings }: { onGoToInstall: () => void; onGoToSettings?: () => void }) {
  const { servers, statuses, loadError, refresh, applyStatuses } = useServers();
  const toast = useToast();
  const [form, setForm] = useState<FormState>(null);
  const [toDelete, setToDelete] = useState<Server | null>(null);
  const [deleting, setDeleting] = useState(false);
  const [testingAll, setTestingAll] = useState(false);
  const [testing, setTesting] = useState<ReadonlySet<string>>(new Set());
  const [activating, setActivating] = useState<string | null>(null);
  const [importing, setImporting] = useState(false);
  const [exporting, setExporting] = useState(false);
  const [importReport, setImportReport] = useState<ImportReport | null>(null);

  const fail = (title: string) => (e: unknown) => toast.show(errorMessage(e), { kind: "error", title });

  async function testOne(server: Server) {
    setTesting((s) => new Set(s).add(server.id));
    try {
      applyStatuses([await call(commands.serversTest(server.id, true))]);
    } catch (e) {
      fail(`Could not test ${server.name}`)(e);
    } finally {
      setTesting((s) => {
        const next = new Set(s);
        next.delete(server.id);
        return next;
      });
    }
  }

  async function testAll() {
    setTestingAll(true);
    try {
      const results = await call(commands.serversTestAll(true));
      applyStatuses(results);
      const ok = results.filter((r) => r.status === "connected").length;
      toast.show(`${ok} of ${plural(results.length, "server")} connected.`, { kind: ok === results.length ? "success" : "info" });
    } catch (e) {
      fail("Could not test the servers")(e);
    } finally {
      setTestingAll(false);
    }
  }

  async function activate(server: Server) {
    setActivating(server.id);
    try {
      await call(commands.serversActivate(server.id));
      await refresh();
    } catch (e) {
      fail(`Could not make ${server.name} active`)(e);
    } finally {
      setActivating(null);
    }
  }

  async function confirmDelete() {
    if (!toDelete) return;
    setDeleting(true);
    try {
      const outcome = await call(commands.serversDelete(toDelete.id));
      toast.show(outcome.message, { kind: "success" });
      setToDelete(null);
      await refresh();
    } catch (e) {
      fail(`Could not delete ${toDelete.name}`)(e);
      setToDelete(null);
    } finally {
      setDeleting(false);
    }
  }

  async function onSaved(saved: Server, isNew: boolean) {
    setForm(null);
    toast.show(isNew ? `Added ${saved.name}.` : `Saved ${saved.name}.`, { kind: "success" });
    await refresh();
    if (isNew) void testOne(saved);
  }

  async function importServers() {
    setImporting(true);
    try {
      const path = await open({ title: "Import servers", multiple: false, directory: false, filters: JSON_FILTER });
      if (typeof path !== "string") return;
      const report = await call(commands.serversImport(path));
      setImportReport(report);
      await refresh();
    } catch (e) {
      fail("Import failed")(e);
    } finally {
      setImporting(false);
    }
  }

  async function exportServers() {
    setExporting(true);
    try {
      const path = await save({ title: "Export servers", defaultPath: "comfyfleet-servers.json", filters: JSON_FILTER });
      if (!path) return;
      const report = await call(commands.serversExport(path));
      toast.show(
        `Exported ${plural(report.count, "server")} to ${report.path}. Passwords and tokens are not included; they stay in your keychain.`,
        { kind: "success" },
      );
    } catch (e) {
      fail("Export failed")(e);
    } finally {
      setExporting(false);
    }
  }

  const connected = servers ? servers.filter((s) => statuses[s.id]?.status === "connected").length : 0;

  return (
    <div className="page">
      <header className="page-header">
        <div>
          <h1 className="page-title">Servers</h1>
          <p className="page-subtitle muted" data-testid="servers-summary">
            {servers === null
              ? "Loading…"
              : servers.length === 0
                ? "ComfyUI servers you can run jobs on."
                : `${plural(servers.length, "server")} · ${connected} connected`}
          </p>
        </div>
        <div className="page-actions">
          <Button data-testid="import-servers" onClick={importServers} busy={importing}>
            Import
          </Button>
          <Button data-testid="export-servers" onClick={exportServers} busy={exporting} disabled={!servers || servers.length === 0}>
            Export
          </Button>
          <Button data-testid="test-all" onClick={testAll} busy={testingAll} disabled={!servers || servers.length === 0}>
            {testingAll ? "Testing…" : "Test all"}
          </Button>
          <Button variant="primary" data-testid="add-server" onClick={() => setForm({ server: null })}>
            + Add server
          </Button>
        </div>
      </header>

      <LocalServerCard onGoToInstall={onGoToInstall} />

      {loadError ? (
        <LoadFailedNotice title="The server list could not be loaded." error={loadError} onRetry={() => void refresh()} testId="list-error" />
      ) : servers === null ? (
        <Loading>Loading servers…</Loading>
      ) : servers.length === 0 ? (
        <EmptyState
          testId="empty-state"
          title="No servers yet"
          actions={
            <>
              <Button variant="primary" data-testid="empty-add-server" onClick={() => setForm({ server: null })}>
                + Add your first server
              </Button>
              <Button data-testid="empty-import-servers" onClick={importServers} busy={importing}>
                Import a list
              </Button>
            </>
          }
        >
          <p>
            Add the ComfyUI you want to run jobs on. For ComfyUI on this computer that is usually{" "}
            <code>http://127.0.0.1:8188</code>; a GPU box on your network looks like <code>http://192.168.1.20:8188</code>.
          </p>
          <p>Already have a list exported from ComfyFleet? Import it.</p>
        </EmptyState>
      ) : (
        <ul className="server-list" aria-label="Servers">
          {servers.map((s) => (
            <ServerRow
              key={s.id}
              server={s}
              status={statuses[s.id]}
              testing={testingAll || testing.has(s.id)}
              activating={activating === s.id}
              onActivate={activate}
              onTest={testOne}
              onEdit={(server) => setForm({ server })}
              onDelete={setToDelete}
            />
          ))}
        </ul>
      )}

      {form && <ServerForm server={form.server} onClose={() => setForm(null)} onSaved={onSaved} />}

      {toDelete && (
        <ConfirmDialog
          testId="confirm-delete"
          title={`Delete ${toDelete.name}?`}
          confirmLabel="Delete server"
          danger
          busy={deleting}
          onConfirm={confirmDelete}
          onCancel={() => !deleting && setToDelete(null)}
        >
          <p>
            <strong>{toDelete.name}</strong> ({toDelete.url}) will be removed from ComfyFleet, with its stored credentials.
            ComfyUI itself on that machine is not touched.
          </p>
          {toDelete.active && <p className="notice notice-warn">It is the active server: no server will be active afterwards.</p>}
        </ConfirmDialog>
      )}

      {importReport && <ImportReportDialog report={importReport} onClose={() => setImportReport(null)} />}

      <PodsSection onGoToSettings={onGoToSettings} />
    </div>
  );
}
