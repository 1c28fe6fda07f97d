// Spend per day of the month, stacked by backend (recharts), with the same numbers as a table for screen readers
// and for anyone who wants the figures (a disclosure under the chart).
import { Bar, BarChart, CartesianGrid, Legend, Tooltip, XAxis, YAxis } from "recharts";
import { formatMoney } from "../../lib/format";
import { jobMoney } from "../generate/estimateFormat";

/** Axis and tooltip amounts: cents, or hundredths of a cent for the small sums of a few cloud jobs. */
function chartMoney(micros: number): string {
  return micros > 0 && micros < 10_000 ? jobMoney(micros) : formatMoney(micros);
}
import { BACKEND_COLORS, BACKEND_LABELS, backendsWithSpend, monthLabel, type Backend, type DayRow } from "./costsModel";

type Props = { month: string; rows: DayRow[] };

export function CostChart({ month, rows }: Props) {
  const backends = backendsWithSpend(rows);
  const spentDays = rows.filter((r) => r.total > 0);
  const caption = `Spend per day in ${monthLabel(month)}, by backend`;
  return (
    <section className="card costs-chart" data-testid="costs-chart" aria-labelledby="costs-chart-title">
      <h2 id="costs-chart-title" className="card-title">
        Spend per day
      </h2>
      {backends.length === 0 ? (
        <p className="muted" data-testid="costs-chart-empty">
          Nothing was spent this month: every job ran for free (local GPU without an electricity price).
        </p>
      ) : (
        <div className="costs-chart-canvas" aria-hidden="true">
          <BarChart responsive data={rows} style={{ width: "100%", height: 240 }} margin={{ top: 8, right: 8, bottom: 0, left: 8 }}>
            <CartesianGrid strokeDasharray="3 3" stroke="#2c323e" vertical={false} />
            <XAxis dataKey="label" stroke="#a4abb9" tick={{ fontSize: 11 }} interval="preserveStartEnd" />
            <YAxis stroke="#a4abb9" tick={{ fontSize: 11 }} width={64} tickFormatter={(v: number) => chartMoney(v)} />
            <Tooltip
              cursor={{ fill: "rgba(122, 162, 255, 0.08)" }}
              contentStyle={{ background: "#1e222b", border: "1px solid #3b4352", borderRadius: 6 }}
              labelFormatter={(_label, payload) => (payload?.[0]?.payload as DayRow | undefined)?.day ?? ""}
              formatter={(value, name) => [chartMoney(Number(value)), BACKEND_LABELS[name as Backend] ?? String(name)]}
            />
            <Legend formatter={(name) => BACKEND_LABELS[name as Backend] ?? String(name)} />
            {backends.map((b) => (
              <Bar key={b} dataKey={b} stackId="spend" fill={BACKEND_COLORS[b]} isAnimationActive={false} />
            ))}
          </BarChart>
        </div>
      )}
      <details className="costs-chart-table">
        <summary>Show the figures</summary>
        <table className="data-table" data-testid="costs-chart-table">
          <caption className="sr-only">{caption}</caption>
          <thead>
            <tr>
              <th scope="col">Day</th>
              {backends.map((b) => (
                <th scope="col" key={b} className="num">
                  {BACKEND_LABELS[b]}
                </th>
              ))}
              <th scope="col" className="num">
                Total
              </th>
            </tr>
          </thead>
          <tbody>
            {spentDays.length === 0 ? (
              <tr>
                <td colSpan={backends.length + 2} className="muted">
                  No spend.
                </td>
              </tr>
            ) : (
              spentDays.map((r) => (
                <tr key={r.day} data-testid={`chart-row-${r.day}`}>
                  <th scope="row">{r.day}</th>
                  {backends.map((b) => (
                    <td key={b} className="num" data-testid={`chart-cell-${r.day}-${b}`}>
                      {formatMoney(r[b])}
                    </td>
                  ))}
                  <td className="num" data-testid={`chart-cell-${r.day}-total`}>
                    {formatMoney(r.total)}
                  </td>
                </tr>
              ))
            )}
          </tbody>
        </table>
      </details>
    </section>
  );
}
