// Where the month's money went: one table by backend, one by server (pods' uptime under their own rows).
import { formatDuration, formatMoney } from "../../lib/format";
import type { BreakdownRow } from "./costsModel";

function Rows({ rows, prefix }: { rows: BreakdownRow[]; prefix: string }) {
  return (
    <>
      {rows.map((r) => (
        <tr key={r.key} data-testid={`${prefix}-${r.key}`} data-kind={r.kind}>
          <th scope="row" className={r.kind === "removed" ? "muted" : undefined}>
            {r.label}
          </th>
          <td className="num">{r.totals.jobs}</td>
          <td className="num">{r.totals.jobs > 0 ? `${r.totals.success_percent} %` : "—"}</td>
          <td className="num">{r.totals.jobs > 0 ? formatDuration(r.totals.mean_ms) : "—"}</td>
          <td className="num" data-testid={`${prefix}-${r.key}-failovers`}>
            {r.totals.failovers}
          </td>
          <td className="num" data-testid={`${prefix}-${r.key}-spent`}>
            {formatMoney(r.totals.spent_micros)}
          </td>
          <td className="num" data-testid={`${prefix}-${r.key}-saved`}>
            {formatMoney(r.totals.saved_micros)}
          </td>
          <td className="num" data-testid={`${prefix}-${r.key}-idle`}>
            {r.totals.idle_ms > 0 || r.totals.idle_micros > 0 ? `${formatMoney(r.totals.idle_micros)} (${formatDuration(r.totals.idle_ms)})` : "—"}
          </td>
        </tr>
      ))}
    </>
  );
}

function Table({ caption, first, rows, prefix, testId }: { caption: string; first: string; rows: BreakdownRow[]; prefix: string; testId: string }) {
  return (
    <table className="data-table" data-testid={testId}>
      <caption className="data-table-caption">{caption}</caption>
      <thead>
        <tr>
          <th scope="col">{first}</th>
          <th scope="col" className="num">
            Jobs
          </th>
          <th scope="col" className="num">
            Success
          </th>
          <th scope="col" className="num">
            Mean time
          </th>
          <th scope="col" className="num" title="Times a job moved on from a server that failed it">
            Failovers
          </th>
          <th scope="col" className="num">
            Spent
          </th>
          <th scope="col" className="num">
            Saved
          </th>
          <th scope="col" className="num" title="Pod uptime with no job running">
            Idle (wasted)
          </th>
        </tr>
      </thead>
      <tbody>
        <Rows rows={rows} prefix={prefix} />
      </tbody>
    </table>
  );
}

export function BreakdownTable({ backends, servers }: { backends: BreakdownRow[]; servers: BreakdownRow[] }) {
  return (
    <section className="card costs-breakdown" data-testid="costs-breakdown" aria-labelledby="costs-breakdown-title">
      <h2 id="costs-breakdown-title" className="card-title">
        Breakdown
      </h2>
      <div className="table-scroll">
        <Table caption="By backend" first="Backend" rows={backends} prefix="breakdown-backend" testId="costs-breakdown-backends" />
      </div>
      <div className="table-scroll">
        <Table caption="By server" first="Server" rows={servers} prefix="breakdown-server" testId="costs-breakdown-servers" />
      </div>
      <p className="field-hint">
        Saved is what local jobs would have cost on the reference cloud GPU, minus what they cost here. Idle is pod uptime
        with no job running: paid for, not used.
      </p>
    </section>
  );
}
