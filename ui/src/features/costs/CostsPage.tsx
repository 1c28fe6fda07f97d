// The Cost Monitor: a month's jobs, spend, what the local GPU saved and the month-end projection; spend per day by
// backend; where it went by backend and server; the cloud spending caps; prices; CSV export.
import { save } from "@tauri-apps/plugin-dialog";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { commands, type CapStatus, type MonthReport, type PriceSettings, type ServerlessClass } from "../../bindings";
import { Button } from "../../components/Button";
import { EmptyState } from "../../components/EmptyState";
import { LoadFailedNotice } from "../../components/ListNotices";
import { Loading } from "../../components/Spinner";
import { useToast } from "../../components/Toast";
import { call, errorMessage } from "../../lib/errors";
import { formatMoneyFine } from "../../lib/format";
import { HISTORY_STATES } from "../jobs/jobFormat";
import { useJobs } from "../jobs/JobsContext";
import { useServers } from "../servers/ServersContext";
import { BreakdownTable } from "./BreakdownTable";
import { CapSettings } from "./CapSettings";
import { CostChart } from "./CostChart";
import { backendRows, chartRows, monthLabel, serverRows, shiftMonth } from "./costsModel";
import { PriceSettingsForm } from "./PriceSettingsForm";

const CSV_FILTER = [{ name: "CSV", extensions: ["csv"] }];

function Card({ label, value, hint, testId }: { label: string; value: string; hint?: string; testId: string }) {
  return (
    <div className="stat-card">
      <span className="stat-label">{label}</span>
      <strong className="stat-value" data-testid={testId}>
        {value}
      </strong>
      {hint && <span className="stat-hint muted">{hint}</span>}
    </div>
  );
}

export function CostsPage({ onGoToGenerate }: { onGoToGenerate?: () => void }) {
  const { servers } = useServers();
  const toast = useToast();
  /** The month the core calls this month (the first report answers it). */
  const [current, setCurrent] = useState<string | null>(null);
  /** The month asked for; null asks for this month. */
  const [wanted, setWanted] = useState<string | null>(null);
  const [data, setData] = useState<MonthReport | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [caps, setCaps] = useState<CapStatus | null>(null);
  const [prices, setPrices] = useState<PriceSettings | null>(null);
  const [classes, setClasses] = useState<ServerlessClass[] | null>(null);
  const [exporting, setExporting] = useState(false);

  /** Only the latest request's answer is shown (months clicked through quickly can answer out of order). */
  const latest = useRef(0);

  const load = useCallback(async (month: string | null) => {
    const request = ++latest.current;
    setLoading(true);
    try {
      const [r, c] = await Promise.all([call(commands.costsReport(month)), call(commands.costsCaps())]);
      if (request !== latest.current) return;
      setData(r);
      setCaps(c);
      if (month === null) setCurrent(r.month);
      setLoadError(null);
    } catch (e) {
      if (request === latest.current) setLoadError(errorMessage(e));
    } finally {
      if (request === latest.current) setLoading(false);
    }
  }, []);

  useEffect(() => {
    void load(wanted);
  }, [load, wanted]);

  // A job that finishes changes this month's figures and the caps' use: load them again.
  const { jobs } = useJobs();
  const finished = jobs ? jobs.filter((j) => HISTORY_STATES.includes(j.state)).length : null;
  const seenFinished = useRef<number | null>(null);
  useEffect(() => {
    const before = seenFinished.current;
    seenFinished.current = finished;
    if (before != null && finished != null && finished > before) void load(wanted);
  }, [finished, load, wanted]);

  useEffect(() => {
    call(commands.costsPrices()).then(setPrices, (e) => toast.show(errorMessage(e), { kind: "error", title: "The prices could not be loaded" }));
    call(commands.costsGpuClasses()).then(setClasses, (e) => toast.show(errorMessage(e), { kind: "error", title: "The cloud GPU prices could not be loaded" }));
  }, [toast]);

  const month = data?.month ?? wanted ?? current;
  const report = data?.report ?? null;
  const rows = useMemo(() => (report && data ? chartRows(report.by_day_backend, data.month) : []), [report, data]);
  const backends = useMemo(() => (report ? backendRows(report.by_backend) : []), [report]);
  const byServer = useMemo(() => (report ? serverRows(report.by_server, servers) : []), [report, servers]);
  const isCurrent = month != null && month === current;
  const empty = report != null && report.totals.jobs === 0 && report.totals.spent_micros === 0;

  function go(delta: number) {
    if (!month) return;
    const next = shiftMonth(month, delta);
    setWanted(current != null && next === current ? null : next);
  }

  async function exportCsv() {
    if (!month) return;
    setExporting(true);
    try {
      const path = await save({ title: "Export costs", defaultPath: `comfyfleet-costs-${month}.csv`, filters: CSV_FILTER });
      if (!path) return;
      const written = await call(commands.costsExportCsv(month, path));
      toast.show(`Exported the costs of ${monthLabel(month)} to ${written}.`, { kind: "success" });
    } catch (e) {
      toast.show(errorMessage(e), { kind: "error", title: "Export failed" });
    } finally {
      setExporting(false);
    }
  }

  const t = report?.totals;
  return (
    <div className="page page-wide" data-testid="costs-page">
      <header className="page-header">
        <div>
          <h1 className="page-title">Costs</h1>
          <p className="page-subtitle muted">What every job cost, what your local GPU saved, and caps that hold.</p>
        </div>
        <div className="page-actions">
          <div className="month-chooser" role="group" aria-label="Month">
            <Button size="sm" data-testid="costs-prev-month" aria-label="Previous month" onClick={() => go(-1)} disabled={!month}>
              ‹
            </Button>
            <span className="month-label" data-testid="costs-month" aria-live="polite">
              {month ? monthLabel(month) : "…"}
            </span>
            <Button size="sm" data-testid="costs-next-month" aria-label="Next month" onClick={() => go(1)} disabled={!month || isCurrent || current == null}>
              ›
            </Button>
            {!isCurrent && current != null && (
              <Button size="sm" variant="ghost" data-testid="costs-this-month" onClick={() => setWanted(null)}>
                This month
              </Button>
            )}
          </div>
          <Button size="sm" data-testid="costs-refresh" onClick={() => void load(wanted)} busy={loading && data != null}>
            Refresh
          </Button>
          <Button size="sm" data-testid="costs-export" onClick={exportCsv} busy={exporting} disabled={!month || empty}>
            Export CSV
          </Button>
        </div>
      </header>

      {loadError ? (
        <LoadFailedNotice title="The costs could not be loaded." error={loadError} onRetry={() => void load(wanted)} testId="costs-load-error" />
      ) : report == null || t == null || month == null ? (
        <Loading>Loading the costs…</Loading>
      ) : empty ? (
        <EmptyState
          title={`No jobs in ${monthLabel(month)}`}
          testId="costs-empty"
          actions={
            onGoToGenerate && (
              <Button variant="primary" onClick={onGoToGenerate}>
                Go to Generate
              </Button>
            )
          }
        >
          <p>
            {isCurrent
              ? "Every job you run is counted here: what it cost, where it ran, and what your local GPU saved. Run one from Generate."
              : "Nothing ran and nothing was billed that month. Choose another month."}
          </p>
        </EmptyState>
      ) : (
        <>
          <div className="stat-cards" aria-label={`Totals for ${monthLabel(month)}`} role="group">
            <Card label="Jobs" value={String(t.jobs)} hint={`${t.succeeded} succeeded · ${t.success_percent} %`} testId="costs-jobs" />
            <Card label="Spent" value={formatMoneyFine(t.spent_micros)} hint={`${formatMoneyFine(t.cloud_spent_micros)} in the cloud`} testId="costs-spent" />
            <Card label="Saved thanks to your local GPU" value={formatMoneyFine(t.saved_micros)} hint="against the reference cloud GPU" testId="costs-saved" />
            <Card
              label={isCurrent ? "Month-end projection" : "Month total"}
              value={formatMoneyFine(report.projection_micros)}
              hint={isCurrent ? "if spending goes on at this rate" : "the month is over"}
              testId="costs-projection"
            />
          </div>
          {t.idle_micros > 0 && (
            <p className="notice notice-warn costs-idle-note" data-testid="costs-idle">
              Idle pods cost {formatMoneyFine(t.idle_micros)} this month with no job running. Idle auto-stop (Servers › Pods) keeps this down.
            </p>
          )}
          <CostChart month={month} rows={rows} />
          <BreakdownTable backends={backends} servers={byServer} />
        </>
      )}

      <div className="costs-settings">
        {caps && <CapSettings status={caps} onSaved={setCaps} />}
        {prices && <PriceSettingsForm prices={prices} classes={classes} onSaved={setPrices} />}
      </div>
    </div>
  );
}
