//! The cost ledger: one row per finished job (recorded once, whatever restarts or retries of the recording happen),
//! pod uptime per interval split into busy and idle time, and what was spent in a range of time.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};

use super::prices::{Charge, RatePer};
use super::CostsError;
use crate::store::{self, Store, StoreError};

/// Where a job ran, as the ledger counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// This computer's GPU (cost: electricity, if the user set a price per kWh).
    Local,
    /// A ComfyUI server on the LAN (cost: its optional internal hourly rate).
    Lan,
    /// A RunPod serverless endpoint (billed per second).
    Serverless,
    /// A RunPod pod (billed per second of uptime; see [`PodUsage`]).
    Pod,
}

impl Backend {
    pub const ALL: [Backend; 4] = [
        Backend::Local,
        Backend::Lan,
        Backend::Serverless,
        Backend::Pod,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Local => "local",
            Backend::Lan => "lan",
            Backend::Serverless => "serverless",
            Backend::Pod => "pod",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Backend::ALL.into_iter().find(|b| b.as_str() == s)
    }
    /// How the ledger counts jobs on `server`: a RunPod endpoint is serverless; a server tagged `cloud` or `runpod`
    /// (a pod) is a pod; one tagged `lan` is a LAN server; one tagged `local` or on this computer (loopback) is local;
    /// any other is a LAN server.
    pub fn of_server(server: &crate::servers::Server) -> Backend {
        if server.kind == crate::servers::ServerKind::RunpodServerless {
            return Backend::Serverless;
        }
        if server.has_tag("cloud") || server.has_tag("runpod") {
            return Backend::Pod;
        }
        if server.has_tag("lan") {
            return Backend::Lan;
        }
        if server.has_tag("local") || crate::servers::address::is_loopback(&server.url) {
            Backend::Local
        } else {
            Backend::Lan
        }
    }
    /// Paid in the cloud: counts toward the spending caps.
    pub fn is_cloud(self) -> bool {
        matches!(self, Backend::Serverless | Backend::Pod)
    }
}

/// One finished job's cost, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct LedgerEntry {
    /// The job (unique: a job is recorded once). A job that is billed again on a retry records each attempt under
    /// its own key, e.g. `"{job_id}#2"`.
    pub job_id: String,
    pub server_id: String,
    pub backend: Backend,
    /// When the job finished (ms since the epoch).
    pub at_ms: i64,
    pub billed_ms: u64,
    pub rate_micros: u64,
    pub rate_per: RatePer,
    pub cost_micros: u64,
    pub exact: bool,
    /// How the figure was made.
    pub how: String,
    /// For local jobs: its cloud equivalent minus its local cost.
    pub saved_micros: u64,
    /// The job succeeded.
    pub ok: bool,
    /// How long the job took, start to finish (ms).
    pub duration_ms: u64,
    /// Servers it failed on before (it moved on from them).
    pub failovers: u32,
}

impl LedgerEntry {
    /// An entry from a computed [`Charge`].
    pub fn from_charge(
        job_id: impl Into<String>,
        server_id: impl Into<String>,
        backend: Backend,
        at_ms: i64,
        charge: Charge,
    ) -> LedgerEntry {
        LedgerEntry {
            job_id: job_id.into(),
            server_id: server_id.into(),
            backend,
            at_ms,
            billed_ms: charge.billed_ms,
            rate_micros: charge.rate_micros,
            rate_per: charge.rate_per,
            cost_micros: charge.cost_micros,
            exact: charge.exact,
            how: charge.how,
            saved_micros: 0,
            ok: true,
            duration_ms: charge.billed_ms,
            failovers: 0,
        }
    }

    /// Counted toward the caps and the cloud spend. Pod jobs are not: a pod is billed for its uptime, which
    /// [`PodUsage`] records; a pod job's cost is its share of that, shown per job but not added twice.
    pub fn counts_as_spend(&self) -> bool {
        self.backend == Backend::Serverless
    }
}

/// What one job cost and saved, its attempts summed, for the job lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct JobCost {
    pub job_id: String,
    pub backend: Backend,
    pub cost_micros: u64,
    pub saved_micros: u64,
    /// Every figure exact (RunPod's execution time); else an estimate, and `how` says how it was made.
    pub exact: bool,
    pub how: String,
}

/// A pod's uptime over one interval (e.g. a minute), split into busy (a job ran) and idle ("wasted") time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct PodUsage {
    pub pod_id: String,
    pub start_ms: i64,
    pub busy_ms: u64,
    pub idle_ms: u64,
    pub cost_micros: u64,
}

impl PodUsage {
    /// A pod's usage over `[start_ms, end_ms)` at `per_hr_micros`, of which `busy_ms` ran jobs (the rest is idle).
    /// Pure.
    pub fn accrue(
        pod_id: impl Into<String>,
        start_ms: i64,
        end_ms: i64,
        busy_ms: u64,
        per_hr_micros: u64,
    ) -> PodUsage {
        let length = end_ms.saturating_sub(start_ms).max(0) as u64;
        let busy_ms = busy_ms.min(length);
        PodUsage {
            pod_id: pod_id.into(),
            start_ms,
            busy_ms,
            idle_ms: length - busy_ms,
            cost_micros: super::prices::hourly_cost_micros(length, per_hr_micros),
        }
    }

    /// The idle part of the interval's cost, rounded down (busy time gets the rounding).
    pub fn idle_cost_micros(&self) -> u64 {
        let total = self.busy_ms.saturating_add(self.idle_ms);
        if total == 0 {
            return 0;
        }
        let c = self.cost_micros as u128 * self.idle_ms as u128 / total as u128;
        c as u64
    }
}

/// Stored integers are `i64`: larger amounts are kept at `i64::MAX` (no real bill gets near it).
pub(crate) fn db_int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn from_db(v: i64) -> u64 {
    v.max(0) as u64
}

const ENTRY_COLUMNS: &str =
    "job_id, server_id, backend, at_ms, billed_ms, rate_micros, rate_per, cost_micros, \
     exact, how, saved_micros, ok, duration_ms, failovers";

fn entry_from_row(r: &Row) -> rusqlite::Result<LedgerEntry> {
    let backend: String = r.get(2)?;
    let rate_per: String = r.get(6)?;
    Ok(LedgerEntry {
        job_id: r.get(0)?,
        server_id: r.get(1)?,
        backend: Backend::parse(&backend).unwrap_or(Backend::Serverless),
        at_ms: r.get(3)?,
        billed_ms: from_db(r.get(4)?),
        rate_micros: from_db(r.get(5)?),
        rate_per: RatePer::parse(&rate_per).unwrap_or(RatePer::Second),
        cost_micros: from_db(r.get(7)?),
        exact: r.get(8)?,
        how: r.get(9)?,
        saved_micros: from_db(r.get(10)?),
        ok: r.get(11)?,
        duration_ms: from_db(r.get(12)?),
        failovers: r.get::<_, i64>(13)?.clamp(0, u32::MAX as i64) as u32,
    })
}

/// Insert `e` unless its job is already recorded, and drop the job's reservation, in the caller's transaction.
/// True when this call recorded it.
pub(crate) fn insert_entry(c: &Connection, e: &LedgerEntry) -> rusqlite::Result<bool> {
    let n = c.execute(
        &format!(
            "INSERT INTO ledger ({ENTRY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
             ON CONFLICT(job_id) DO NOTHING"
        ),
        params![
            e.job_id,
            e.server_id,
            e.backend.as_str(),
            e.at_ms,
            db_int(e.billed_ms),
            db_int(e.rate_micros),
            e.rate_per.as_str(),
            db_int(e.cost_micros),
            e.exact,
            e.how,
            db_int(e.saved_micros),
            e.ok,
            db_int(e.duration_ms),
            e.failovers,
        ],
    )?;
    c.execute("DELETE FROM reservations WHERE job_id = ?1", [&e.job_id])?;
    Ok(n == 1)
}

/// Sum of the amounts a query yields, saturating.
fn sum_u64(c: &Connection, sql: &str, from_ms: i64, to_ms: i64) -> rusqlite::Result<u64> {
    let mut stmt = c.prepare_cached(sql)?;
    let rows = stmt.query_map([from_ms, to_ms], |r| r.get::<_, i64>(0))?;
    let mut total = 0u64;
    for v in rows {
        total = total.saturating_add(from_db(v?));
    }
    Ok(total)
}

/// Cloud spend recorded in `[from_ms, to_ms)`: serverless jobs and pod uptime.
pub(crate) fn cloud_spent_in(c: &Connection, from_ms: i64, to_ms: i64) -> rusqlite::Result<u64> {
    let jobs = sum_u64(
        c,
        "SELECT cost_micros FROM ledger WHERE backend = 'serverless' AND at_ms >= ?1 AND at_ms < ?2",
        from_ms,
        to_ms,
    )?;
    let pods = sum_u64(
        c,
        "SELECT cost_micros FROM pod_usage WHERE start_ms >= ?1 AND start_ms < ?2",
        from_ms,
        to_ms,
    )?;
    Ok(jobs.saturating_add(pods))
}

/// Outstanding reservations made in `[from_ms, to_ms)`.
pub(crate) fn reserved_in(c: &Connection, from_ms: i64, to_ms: i64) -> rusqlite::Result<u64> {
    sum_u64(
        c,
        "SELECT amount_micros FROM reservations WHERE created_ms >= ?1 AND created_ms < ?2",
        from_ms,
        to_ms,
    )
}

/// The ledger over the shared database. Cheap to clone.
#[derive(Clone)]
pub struct Ledger {
    store: Store,
}

impl Ledger {
    pub fn new(store: Store) -> Ledger {
        Ledger { store }
    }

    /// Record a finished job, once: recording the same job again (after a restart, or a second settle) changes
    /// nothing and answers false. Also drops the job's reservation, in the same transaction.
    pub async fn record_job(&self, entry: LedgerEntry) -> Result<bool, CostsError> {
        self.store
            .write(move |tx| {
                Ok::<_, CostsError>(insert_entry(tx, &entry).map_err(StoreError::from)?)
            })
            .await
    }

    /// The recorded entry of `job_id`, if any.
    pub async fn entry(&self, job_id: &str) -> Result<Option<LedgerEntry>, CostsError> {
        let job_id = job_id.to_string();
        self.store
            .call(move |c| {
                Ok::<_, CostsError>(
                    c.query_row(
                        &format!("SELECT {ENTRY_COLUMNS} FROM ledger WHERE job_id = ?1"),
                        [job_id],
                        entry_from_row,
                    )
                    .optional()
                    .map_err(StoreError::from)?,
                )
            })
            .await
    }

    /// What each of `job_ids` cost and saved, every attempt summed (attempts are recorded as `{job}#{attempt}`).
    /// Jobs not in the ledger are left out.
    pub async fn job_costs(&self, job_ids: Vec<String>) -> Result<Vec<JobCost>, CostsError> {
        self.store
            .call(move |c| {
                // `{job}#…` keys sort between `{job}#` and `{job}$` ('$' follows '#'): a range on the key's index,
                // where LIKE would scan and read `_` and `%` in ids as wildcards.
                let sql = format!(
                    "SELECT {ENTRY_COLUMNS} FROM ledger WHERE job_id = ?1 OR (job_id >= ?1 || '#' AND job_id < ?1 || '$')"
                );
                let mut out = Vec::new();
                for id in job_ids {
                    let rows = store::rows(c, &sql, [&id], entry_from_row).map_err(StoreError::from)?;
                    if rows.is_empty() {
                        continue;
                    }
                    out.push(JobCost {
                        job_id: id,
                        cost_micros: rows.iter().map(|e| e.cost_micros).fold(0, u64::saturating_add),
                        saved_micros: rows.iter().map(|e| e.saved_micros).fold(0, u64::saturating_add),
                        exact: rows.iter().all(|e| e.exact),
                        how: rows.iter().map(|e| e.how.as_str()).collect::<Vec<_>>().join("; "),
                        backend: rows.last().map(|e| e.backend).unwrap_or(Backend::Local),
                    });
                }
                Ok::<_, CostsError>(out)
            })
            .await
    }

    /// Cloud spend in `[from_ms, to_ms)`: serverless jobs plus pod uptime (what counts toward the caps).
    pub async fn spent_between(&self, from_ms: i64, to_ms: i64) -> Result<u64, CostsError> {
        self.store
            .call(move |c| {
                Ok::<_, CostsError>(cloud_spent_in(c, from_ms, to_ms).map_err(StoreError::from)?)
            })
            .await
    }

    /// Every job recorded in `[from_ms, to_ms)`, oldest first.
    pub async fn entries_between(
        &self,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<LedgerEntry>, CostsError> {
        self.store
            .call(move |c| {
                let sql = format!(
                    "SELECT {ENTRY_COLUMNS} FROM ledger WHERE at_ms >= ?1 AND at_ms < ?2 ORDER BY at_ms, job_id"
                );
                Ok::<_, CostsError>(
                    store::rows(c, &sql, [from_ms, to_ms], entry_from_row).map_err(StoreError::from)?,
                )
            })
            .await
    }

    /// Record (or replace: accrual may revise the current interval) a pod's usage over the interval at `start_ms`.
    pub async fn record_pod_usage(&self, usage: PodUsage) -> Result<(), CostsError> {
        self.store
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO pod_usage (pod_id, start_ms, busy_ms, idle_ms, cost_micros) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT(pod_id, start_ms) DO UPDATE SET busy_ms = excluded.busy_ms,
                         idle_ms = excluded.idle_ms, cost_micros = excluded.cost_micros",
                    params![
                        usage.pod_id,
                        usage.start_ms,
                        db_int(usage.busy_ms),
                        db_int(usage.idle_ms),
                        db_int(usage.cost_micros)
                    ],
                )
                .map_err(StoreError::from)?;
                Ok::<_, CostsError>(())
            })
            .await
    }

    /// Up to when a pod's uptime has been accrued (`None` before its first interval).
    pub async fn pod_accrued_until(&self, pod_id: &str) -> Result<Option<i64>, CostsError> {
        let pod_id = pod_id.to_string();
        self.store
            .call(move |c| {
                Ok::<_, CostsError>(
                    c.query_row(
                        "SELECT MAX(start_ms + busy_ms + idle_ms) FROM pod_usage WHERE pod_id = ?1",
                        [pod_id],
                        |r| r.get::<_, Option<i64>>(0),
                    )
                    .map_err(StoreError::from)?,
                )
            })
            .await
    }

    /// Pod usage intervals starting in `[from_ms, to_ms)`, oldest first.
    pub async fn pod_usage_between(
        &self,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<PodUsage>, CostsError> {
        self.store
            .call(move |c| {
                let rows = store::rows(
                    c,
                    "SELECT pod_id, start_ms, busy_ms, idle_ms, cost_micros FROM pod_usage
                     WHERE start_ms >= ?1 AND start_ms < ?2 ORDER BY start_ms, pod_id",
                    [from_ms, to_ms],
                    |r| {
                        Ok(PodUsage {
                            pod_id: r.get(0)?,
                            start_ms: r.get(1)?,
                            busy_ms: from_db(r.get(2)?),
                            idle_ms: from_db(r.get(3)?),
                            cost_micros: from_db(r.get(4)?),
                        })
                    },
                )
                .map_err(StoreError::from)?;
                Ok::<_, CostsError>(rows)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::costs::prices::serverless_charge;

    fn entry(job: &str, backend: Backend, at_ms: i64, cost: u64) -> LedgerEntry {
        let mut e =
            LedgerEntry::from_charge(job, "s1", backend, at_ms, serverless_charge(190, 1, 0, 0));
        e.cost_micros = cost;
        e
    }

    #[test]
    fn ledger_pod_minute_splits_busy_and_idle_time() {
        // A minute at $0.69/h, 45 s of it running a job.
        let u = PodUsage::accrue("p", 0, 60_000, 45_000, 690_000);
        assert_eq!(
            (u.busy_ms, u.idle_ms, u.cost_micros),
            (45_000, 15_000, 11_500)
        );
        assert_eq!(u.idle_cost_micros(), 2_875);
        // Busy time is capped at the interval; a reversed interval is empty.
        assert_eq!(PodUsage::accrue("p", 0, 60_000, 90_000, 690_000).idle_ms, 0);
        assert_eq!(PodUsage::accrue("p", 10, 0, 0, 690_000).cost_micros, 0);
    }

    #[test]
    fn ledger_backend_of_a_server_follows_kind_tags_and_address() {
        use crate::servers::{AuthView, Server, ServerKind};
        let server = |kind, url: &str, tags: &[&str]| Server {
            id: "s".into(),
            name: "s".into(),
            url: url.into(),
            kind,
            runpod: None,
            auth: AuthView::default(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            timeout_ms: 1_000,
            max_queue: None,
            notes: String::new(),
            active: false,
            has_secret: false,
            needs_credentials: false,
            plain_http_warning: None,
            last_connected_ms: None,
        };
        let of = |kind, url, tags| Backend::of_server(&server(kind, url, tags));
        assert_eq!(
            of(
                ServerKind::RunpodServerless,
                "https://api.runpod.ai/v2/x",
                &[]
            ),
            Backend::Serverless
        );
        assert_eq!(
            of(
                ServerKind::Comfyui,
                "https://p-8188.proxy.runpod.net",
                &["cloud", "runpod"]
            ),
            Backend::Pod
        );
        assert_eq!(
            of(ServerKind::Comfyui, "http://127.0.0.1:8188", &[]),
            Backend::Local
        );
        assert_eq!(
            of(ServerKind::Comfyui, "http://localhost:8188", &[]),
            Backend::Local
        );
        assert_eq!(
            of(ServerKind::Comfyui, "http://192.168.1.20:8188", &["local"]),
            Backend::Local
        );
        assert_eq!(
            of(ServerKind::Comfyui, "http://192.168.1.20:8188", &[]),
            Backend::Lan
        );
    }

    #[tokio::test]
    async fn ledger_job_costs_sum_a_jobs_attempts_and_no_other_jobs() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(Store::open(&dir.path().join("a.db")).unwrap());
        for (key, cost) in [
            ("job_1#0", 100),
            ("job_1#1", 20),
            // Would match `job_1#%` as a LIKE pattern (`_` is a wildcard there), and `job_10` starts with `job_1`.
            ("jobX1#0", 5_000),
            ("job_10#0", 7_000),
            ("job_2", 3),
        ] {
            ledger
                .record_job(entry(key, Backend::Serverless, 10, cost))
                .await
                .unwrap();
        }
        let costs = ledger
            .job_costs(vec!["job_1".into(), "job_2".into(), "job_3".into()])
            .await
            .unwrap();
        let got: Vec<(&str, u64)> = costs
            .iter()
            .map(|c| (c.job_id.as_str(), c.cost_micros))
            .collect();
        assert_eq!(got, vec![("job_1", 120), ("job_2", 3)]);
    }

    #[tokio::test]
    async fn ledger_records_a_job_once() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(Store::open(&dir.path().join("a.db")).unwrap());
        assert!(ledger
            .record_job(entry("j1", Backend::Serverless, 10, 700))
            .await
            .unwrap());
        assert!(!ledger
            .record_job(entry("j1", Backend::Serverless, 11, 900))
            .await
            .unwrap());
        assert_eq!(ledger.spent_between(0, 100).await.unwrap(), 700);
        assert_eq!(ledger.entry("j1").await.unwrap().unwrap().at_ms, 10);
    }

    #[tokio::test]
    async fn ledger_spend_counts_serverless_jobs_and_pod_uptime_in_range_only() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(Store::open(&dir.path().join("a.db")).unwrap());
        ledger
            .record_job(entry("a", Backend::Serverless, 10, 100))
            .await
            .unwrap();
        ledger
            .record_job(entry("b", Backend::Serverless, 100, 1_000))
            .await
            .unwrap();
        ledger
            .record_job(entry("c", Backend::Local, 20, 5))
            .await
            .unwrap();
        ledger
            .record_job(entry("d", Backend::Pod, 30, 50))
            .await
            .unwrap();
        ledger
            .record_pod_usage(PodUsage {
                pod_id: "p".into(),
                start_ms: 40,
                busy_ms: 30_000,
                idle_ms: 30_000,
                cost_micros: 11_500,
            })
            .await
            .unwrap();
        // Revising an interval replaces it.
        ledger
            .record_pod_usage(PodUsage {
                pod_id: "p".into(),
                start_ms: 40,
                busy_ms: 15_000,
                idle_ms: 45_000,
                cost_micros: 11_500,
            })
            .await
            .unwrap();
        assert_eq!(ledger.spent_between(0, 100).await.unwrap(), 100 + 11_500);
        assert_eq!(ledger.spent_between(100, 101).await.unwrap(), 1_000);
        assert_eq!(ledger.entries_between(0, 100).await.unwrap().len(), 3);
        let usage = ledger.pod_usage_between(0, 100).await.unwrap();
        assert_eq!(usage.len(), 1);
        assert_eq!(usage[0].idle_cost_micros(), 8_625);
    }
}
