//! Cost reports, pure over ledger rows and pod usage: totals per local day, week, backend and server (jobs, success
//! rate, mean time, spent, saved, idle pod cost) and the month-end projection.

use std::collections::BTreeMap;

use serde::Serialize;

use super::calendar::{day_key, week_key, Span};
use super::ledger::{Backend, LedgerEntry, PodUsage};

/// Totals over a set of jobs (and pod uptime).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Totals {
    pub jobs: u32,
    pub succeeded: u32,
    /// Succeeded jobs as a percent of jobs (0 with no jobs).
    pub success_percent: u32,
    /// Mean job time, start to finish (ms).
    pub mean_ms: u64,
    /// Money spent: serverless jobs, pod uptime, LAN rates and local electricity.
    pub spent_micros: u64,
    /// Of which in the cloud (serverless and pods): what the caps count.
    pub cloud_spent_micros: u64,
    /// What local jobs saved against the reference cloud GPU.
    pub saved_micros: u64,
    /// Pod uptime with no job running ("wasted"), and what it cost.
    pub idle_ms: u64,
    pub idle_micros: u64,
    /// Times jobs moved off a server that failed them.
    pub failovers: u32,
    #[serde(skip)]
    total_ms: u64,
}

impl Totals {
    fn add_entry(&mut self, e: &LedgerEntry) {
        self.jobs = self.jobs.saturating_add(1);
        self.succeeded = self.succeeded.saturating_add(e.ok as u32);
        self.total_ms = self.total_ms.saturating_add(e.duration_ms);
        self.saved_micros = self.saved_micros.saturating_add(e.saved_micros);
        self.failovers = self.failovers.saturating_add(e.failovers);
        // A pod job's cost is its share of the pod's uptime, which the usage rows already count.
        if e.backend != Backend::Pod {
            self.spent_micros = self.spent_micros.saturating_add(e.cost_micros);
        }
        if e.counts_as_spend() {
            self.cloud_spent_micros = self.cloud_spent_micros.saturating_add(e.cost_micros);
        }
        self.finish();
    }

    fn add_pod(&mut self, u: &PodUsage) {
        self.spent_micros = self.spent_micros.saturating_add(u.cost_micros);
        self.cloud_spent_micros = self.cloud_spent_micros.saturating_add(u.cost_micros);
        self.idle_ms = self.idle_ms.saturating_add(u.idle_ms);
        self.idle_micros = self.idle_micros.saturating_add(u.idle_cost_micros());
    }

    fn finish(&mut self) {
        if self.jobs > 0 {
            self.success_percent = (self.succeeded as u64 * 100 / self.jobs as u64) as u32;
            self.mean_ms = self.total_ms / self.jobs as u64;
        }
    }
}

/// Totals of one group (a day "2026-12-05", a week "2026-W49", a backend "serverless", a server id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Group {
    pub key: String,
    pub totals: Totals,
}

/// A report over one span of time (usually a local month).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Report {
    pub span: Span,
    pub totals: Totals,
    pub by_day: Vec<Group>,
    pub by_week: Vec<Group>,
    pub by_backend: Vec<Group>,
    /// By server id; pod uptime is listed under `pod:<pod id>`.
    pub by_server: Vec<Group>,
    /// By local day and backend (keyed `YYYY-MM-DD/backend`), for a chart of spend per day stacked by backend.
    pub by_day_backend: Vec<Group>,
    /// Spend at the span's end if it goes on at the rate so far.
    pub projection_micros: u64,
}

/// Spend at the end of `span` if it goes on as it did from the start to `now_ms`: spent / elapsed fraction.
/// Before the span starts (or once it is over), what was spent. Pure.
pub fn projection(spent_micros: u64, span: Span, now_ms: i64) -> u64 {
    let elapsed = now_ms.saturating_sub(span.from_ms);
    let length = span.to_ms.saturating_sub(span.from_ms);
    if elapsed <= 0 || elapsed >= length {
        return spent_micros;
    }
    let p = spent_micros as u128 * length as u128 / elapsed as u128;
    u64::try_from(p).unwrap_or(u64::MAX)
}

fn groups(map: BTreeMap<String, Totals>) -> Vec<Group> {
    map.into_iter()
        .map(|(key, totals)| Group { key, totals })
        .collect()
}

/// The report of `entries` and `pods` within `span`, as of `now_ms`, with days and weeks in the local zone at
/// `utc_offset_secs`. Rows outside `span` are left out. Pure.
pub fn report(
    entries: &[LedgerEntry],
    pods: &[PodUsage],
    span: Span,
    now_ms: i64,
    utc_offset_secs: i32,
) -> Report {
    let mut totals = Totals::default();
    let (mut by_day, mut by_week, mut by_backend, mut by_server) = (
        BTreeMap::<String, Totals>::new(),
        BTreeMap::<String, Totals>::new(),
        BTreeMap::<String, Totals>::new(),
        BTreeMap::<String, Totals>::new(),
    );
    let mut by_day_backend = BTreeMap::<String, Totals>::new();
    for e in entries.iter().filter(|e| span.contains(e.at_ms)) {
        totals.add_entry(e);
        by_day
            .entry(day_key(e.at_ms, utc_offset_secs))
            .or_default()
            .add_entry(e);
        by_week
            .entry(week_key(e.at_ms, utc_offset_secs))
            .or_default()
            .add_entry(e);
        by_backend
            .entry(e.backend.as_str().to_string())
            .or_default()
            .add_entry(e);
        by_server
            .entry(e.server_id.clone())
            .or_default()
            .add_entry(e);
        by_day_backend
            .entry(format!(
                "{}/{}",
                day_key(e.at_ms, utc_offset_secs),
                e.backend.as_str()
            ))
            .or_default()
            .add_entry(e);
    }
    for u in pods.iter().filter(|u| span.contains(u.start_ms)) {
        totals.add_pod(u);
        by_day
            .entry(day_key(u.start_ms, utc_offset_secs))
            .or_default()
            .add_pod(u);
        by_week
            .entry(week_key(u.start_ms, utc_offset_secs))
            .or_default()
            .add_pod(u);
        by_backend
            .entry(Backend::Pod.as_str().to_string())
            .or_default()
            .add_pod(u);
        by_server
            .entry(format!("pod:{}", u.pod_id))
            .or_default()
            .add_pod(u);
        by_day_backend
            .entry(format!(
                "{}/{}",
                day_key(u.start_ms, utc_offset_secs),
                Backend::Pod.as_str()
            ))
            .or_default()
            .add_pod(u);
    }
    Report {
        span,
        projection_micros: projection(totals.spent_micros, span, now_ms),
        totals,
        by_day: groups(by_day),
        by_week: groups(by_week),
        by_backend: groups(by_backend),
        by_server: groups(by_server),
        by_day_backend: groups(by_day_backend),
    }
}

/// Micro-dollars as a plain decimal with six places ("0.001900"), for spreadsheets: exact. Pure.
pub fn decimal_usd(micros: u64) -> String {
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The ledger rows as CSV, one job a line, with a header; times as local dates. Pure.
pub fn csv(entries: &[LedgerEntry], utc_offset_secs: i32) -> String {
    let mut out = String::from(
        "job_id,server_id,backend,day,at_ms,billed_ms,rate_micros,rate_per,cost_usd,exact,saved_usd,ok,duration_ms,how\n",
    );
    for e in entries {
        let row = [
            csv_field(&e.job_id),
            csv_field(&e.server_id),
            e.backend.as_str().to_string(),
            day_key(e.at_ms, utc_offset_secs),
            e.at_ms.to_string(),
            e.billed_ms.to_string(),
            e.rate_micros.to_string(),
            e.rate_per.as_str().to_string(),
            decimal_usd(e.cost_micros),
            e.exact.to_string(),
            decimal_usd(e.saved_micros),
            e.ok.to_string(),
            e.duration_ms.to_string(),
            csv_field(&e.how),
        ];
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::costs::calendar::month_span_of;
    use crate::costs::prices::RatePer;

    const DAY: i64 = 86_400_000;

    fn entry(job: &str, server: &str, backend: Backend, at_ms: i64, cost: u64) -> LedgerEntry {
        LedgerEntry {
            job_id: job.into(),
            server_id: server.into(),
            backend,
            at_ms,
            billed_ms: 10_000,
            rate_micros: 190,
            rate_per: RatePer::Second,
            cost_micros: cost,
            exact: true,
            how: String::new(),
            saved_micros: if backend == Backend::Local { 1_900 } else { 0 },
            ok: true,
            duration_ms: 10_000,
            failovers: 0,
        }
    }

    #[test]
    fn report_csv_has_exact_money_and_quotes_text() {
        let mut e = entry("j,1", "ep", Backend::Serverless, 0, 1_900);
        e.how = "11 s billed (a \"cold\" start)".into();
        let text = csv(&[e], 0);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("job_id,server_id,backend,day"));
        assert_eq!(
            lines[1],
            "\"j,1\",ep,serverless,1970-01-01,0,10000,190,second,0.001900,true,0.000000,true,10000,\"11 s billed (a \"\"cold\"\" start)\""
        );
        assert_eq!(decimal_usd(50_000_000), "50.000000");
    }

    #[test]
    fn report_projection_scales_spend_by_the_elapsed_fraction() {
        let span = Span {
            from_ms: 0,
            to_ms: 30 * DAY,
        };
        assert_eq!(projection(1_000_000, span, 10 * DAY), 3_000_000);
        assert_eq!(projection(1_000_000, span, 0), 1_000_000);
        assert_eq!(projection(1_000_000, span, 40 * DAY), 1_000_000);
        assert_eq!(projection(u64::MAX, span, 1), u64::MAX);
    }

    #[test]
    fn report_totals_per_day_backend_and_server() {
        let span = month_span_of(2026, 12, 0).unwrap();
        let d = |n: i64| span.from_ms + n * DAY + 3_600_000;
        let mut failed = entry("f", "ep", Backend::Serverless, d(1), 500);
        failed.ok = false;
        failed.failovers = 2;
        failed.duration_ms = 30_000;
        let entries = vec![
            entry("a", "ep", Backend::Serverless, d(0), 1_900),
            entry("b", "gpu", Backend::Local, d(0), 100),
            failed,
            entry("p", "podsrv", Backend::Pod, d(1), 999),
            // Next month: left out.
            entry("z", "ep", Backend::Serverless, span.to_ms, 7),
        ];
        let pods = vec![PodUsage {
            pod_id: "pod1".into(),
            start_ms: d(1),
            busy_ms: 20_000,
            idle_ms: 40_000,
            cost_micros: 6_000,
        }];
        let r = report(&entries, &pods, span, span.from_ms + 2 * DAY, 0);
        assert_eq!(r.totals.jobs, 4);
        assert_eq!(r.totals.succeeded, 3);
        assert_eq!(r.totals.success_percent, 75);
        assert_eq!(r.totals.mean_ms, (10_000 * 3 + 30_000) / 4);
        assert_eq!(r.totals.spent_micros, 1_900 + 100 + 500 + 6_000);
        assert_eq!(r.totals.cloud_spent_micros, 1_900 + 500 + 6_000);
        assert_eq!(r.totals.saved_micros, 1_900);
        assert_eq!((r.totals.idle_ms, r.totals.idle_micros), (40_000, 4_000));
        assert_eq!(
            r.by_day.iter().map(|g| g.key.as_str()).collect::<Vec<_>>(),
            ["2026-12-01", "2026-12-02"]
        );
        assert_eq!(r.by_day[1].totals.spent_micros, 6_500);
        let backend = |k: &str| r.by_backend.iter().find(|g| g.key == k).unwrap();
        assert_eq!(backend("serverless").totals.jobs, 2);
        assert_eq!(
            (
                r.totals.failovers,
                backend("serverless").totals.failovers,
                backend("local").totals.failovers
            ),
            (2, 2, 0)
        );
        assert_eq!(backend("pod").totals.spent_micros, 6_000);
        assert!(r.by_server.iter().any(|g| g.key == "pod:pod1"));
        let day_backend = |k: &str| {
            r.by_day_backend
                .iter()
                .find(|g| g.key == k)
                .map(|g| g.totals.spent_micros)
        };
        assert_eq!(day_backend("2026-12-01/serverless"), Some(1_900));
        assert_eq!(day_backend("2026-12-01/local"), Some(100));
        assert_eq!(day_backend("2026-12-02/pod"), Some(6_000));
        assert_eq!(day_backend("2026-12-02/serverless"), Some(500));
        // 8 500 spent in 2 of December's 31 days.
        assert_eq!(r.projection_micros, 8_500 * 31 / 2);
    }
}
