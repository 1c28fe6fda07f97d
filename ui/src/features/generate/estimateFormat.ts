// What running a job on each server would take and cost, as the Generate page's chooser shows it before Run.
import type { Estimate } from "../../bindings";
import { formatMoneyFine } from "../../lib/format";

/** Money for one job: cents from a cent up, else to the hundredth of a cent (rounded up), e.g. "$0.0041". */
export function jobMoney(micros: number): string {
  return micros <= 0 ? "free" : formatMoneyFine(micros);
}

/** "~12 s · $0.0041", "~4 s · free", "time not measured yet · ~$0.02 · wakes a worker", "billed by the pod's uptime". */
export function estimateText(e: Estimate | undefined): string | null {
  if (!e) return null;
  if (e.lacks_models) return "lacks a model this needs";
  if (!e.online) return "offline";
  const time = e.time_secs == null ? "time not measured yet" : `~${e.time_secs < 10 ? e.time_secs.toFixed(1) : Math.round(e.time_secs)} s`;
  const cost = e.cost_micros == null ? "billed by the pod's uptime" : e.cost_micros === 0 ? "free" : `~${jobMoney(e.cost_micros)}`;
  return [time, cost, e.cold ? "wakes a worker" : null].filter(Boolean).join(" · ");
}
