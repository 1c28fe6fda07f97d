//! The app's own RunPod pods: create one and register it as a cloud ComfyUI server, list them with RunPod's live
//! state, start/stop/terminate only pods the app created, reconcile the record with RunPod (at start and
//! periodically) and stop pods left idle, sooner when they are expensive. Pods made elsewhere are never recorded,
//! listed as ours or acted on.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rusqlite::{params, OptionalExtension, Row};
use serde::{Deserialize, Serialize};

use super::account::{AccountError, RunpodAccount};
use super::pods::{Pod, PodError, PodPreset, PodsClient};
use super::RunpodUrls;
use crate::servers::model::NAME_MAX_CHARS;
use crate::servers::{InputProblem, ServerInput, ServerList, ServersError};
use crate::settings::SettingsStore;
use crate::store::{Store, StoreError};
use crate::Fleet;

/// The settings key of the idle auto-shutdown ([`IdleConfig`], JSON).
pub const IDLE_KEY: &str = "pods_idle";
/// How long `create` and `start` wait for ComfyUI to answer behind the pod's proxy (image pull included).
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// The tags of a pod's server entry.
pub const SERVER_TAGS: [&str; 2] = ["cloud", "runpod"];
/// Where people manage pods ComfyFleet leaves alone.
pub const CONSOLE_URL: &str = "https://www.runpod.io/console/pods";

/// A recorded pod's state, as the app last saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum PodState {
    /// Created or started; ComfyUI does not answer yet.
    Starting,
    Running,
    Stopped,
    Terminated,
}

impl PodState {
    pub const ALL: [PodState; 4] = [
        PodState::Starting,
        PodState::Running,
        PodState::Stopped,
        PodState::Terminated,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            PodState::Starting => "starting",
            PodState::Running => "running",
            PodState::Stopped => "stopped",
            PodState::Terminated => "terminated",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        PodState::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A pod the app created, as recorded in the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct PodRecord {
    pub pod_id: String,
    /// The server entry registered for it (none until it is ready, and after it is terminated).
    pub server_id: Option<String>,
    pub name: String,
    pub gpu: String,
    pub cost_per_hr_micros: u64,
    pub created_ms: i64,
    /// The last activity the app saw: when it became ready or was started, or the last job on its server.
    pub last_job_ms: Option<i64>,
    pub state: PodState,
    /// Why it was stopped or terminated ("idle for 5 min", "stopped by you", ...).
    pub stopped_reason: Option<String>,
    pub updated_ms: i64,
}

/// When to stop a running pod nobody uses. Times in milliseconds (the UI shows minutes; tests use seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(default)]
pub struct IdleConfig {
    pub enabled: bool,
    /// Stop a pod after this long without a job (default 5 min).
    pub idle_ms: u64,
    /// A pod costing at least this per hour, in micro-dollars, is expensive (default $1.00/h).
    pub expensive_threshold_micros_per_hr: u64,
    /// An expensive pod is stopped after this long without a job instead (default 2 min).
    pub expensive_idle_ms: u64,
}

/// The longest idle time a setting may hold; longer is what turning auto-shutdown off is for.
pub const MAX_IDLE_MS: u64 = 7 * 24 * 3_600_000;

impl IdleConfig {
    /// Whether the idle times are usable: more than 0 (0 would stop every pod the moment it is ready) and at most a
    /// week. Says what to change otherwise. Pure.
    pub fn check(&self) -> Result<(), String> {
        for (what, ms) in [
            ("The idle time", self.idle_ms),
            ("The idle time for expensive pods", self.expensive_idle_ms),
        ] {
            if ms == 0 {
                return Err(format!("{what} must be more than 0 minutes (0 would stop every pod as soon as it is ready)."));
            }
            if ms > MAX_IDLE_MS {
                return Err(format!(
                    "{what} can be at most a week ({} min); to never stop idle pods, turn auto-shutdown off.",
                    MAX_IDLE_MS / 60_000
                ));
            }
        }
        Ok(())
    }
}

impl Default for IdleConfig {
    fn default() -> Self {
        IdleConfig {
            enabled: true,
            idle_ms: 5 * 60_000,
            expensive_threshold_micros_per_hr: 1_000_000,
            expensive_idle_ms: 2 * 60_000,
        }
    }
}

/// The idle rule's verdict: stop the pod, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdleStop {
    pub reason: String,
}

/// Whether a pod should be stopped now for being idle. Pure.
///
/// Only running pods are stopped, never while a job of its server is dispatched or running (`in_flight_jobs`).
/// Last activity is the latest of the pod's creation, its recorded activity (ready, started, jobs seen before) and
/// `last_activity_ms` (the latest queued/started/finished time of a job on its server). A pod costing at least
/// `expensive_threshold_micros_per_hr` gets the shorter of the two limits.
pub fn idle_action(
    now_ms: i64,
    pod: &PodRecord,
    last_activity_ms: Option<i64>,
    in_flight_jobs: u32,
    cfg: &IdleConfig,
) -> Option<IdleStop> {
    if !cfg.enabled || pod.state != PodState::Running || in_flight_jobs > 0 {
        return None;
    }
    let last = [Some(pod.created_ms), pod.last_job_ms, last_activity_ms]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(pod.created_ms);
    let idle = now_ms.saturating_sub(last).max(0) as u64;
    let expensive = pod.cost_per_hr_micros >= cfg.expensive_threshold_micros_per_hr;
    let limit = if expensive {
        cfg.expensive_idle_ms.min(cfg.idle_ms)
    } else {
        cfg.idle_ms
    };
    if idle < limit {
        return None;
    }
    let reason = if expensive && limit < cfg.idle_ms {
        format!(
            "idle for {} (auto-shutdown: it costs {}/h, at or above the {}/h limit for longer idling)",
            human_ms(idle),
            usd(pod.cost_per_hr_micros),
            usd(cfg.expensive_threshold_micros_per_hr)
        )
    } else {
        format!("idle for {} (auto-shutdown)", human_ms(idle))
    };
    Some(IdleStop { reason })
}

/// Which accrual of a running pod's uptime this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accrual {
    /// A pass while it runs: less than a second waits for the next pass.
    Periodic,
    /// The last one, as it is stopped: whatever is left is charged, and a run not charged yet counts its uptime
    /// rounded up to the second (RunPod gives uptime in whole seconds; a pod that ran was never free).
    Final,
}

/// Where the interval to charge starts, from when the pod's uptime was last charged (`accrued_until`), RunPod's
/// `uptime_secs` for this run and the pod's creation; `None` when there is nothing to charge yet. Pure.
pub fn accrual_start(
    accrual: Accrual,
    accrued_until: Option<i64>,
    uptime_secs: Option<u64>,
    created_ms: i64,
    now_ms: i64,
) -> Option<i64> {
    let whole_secs = uptime_secs.unwrap_or(0);
    let secs = match accrual {
        Accrual::Periodic => whole_secs,
        Accrual::Final => whole_secs.saturating_add(1),
    };
    let run_start = now_ms.saturating_sub(secs.saturating_mul(1000) as i64);
    let from = accrued_until
        .unwrap_or(i64::MIN)
        .max(run_start)
        .max(created_ms);
    let least = match accrual {
        Accrual::Periodic => 1_000,
        Accrual::Final => 1,
    };
    (now_ms.saturating_sub(from) >= least).then_some(from)
}

/// Micro-dollars as "$0.69", to the nearest cent. Pure.
pub fn usd(micros: u64) -> String {
    let cents = micros.saturating_add(5_000) / 10_000;
    format!("${}.{:02}", cents / 100, cents % 100)
}

/// The stored idle auto-shutdown settings, or the defaults (no RunPod key needed).
pub async fn load_idle_config(settings: &SettingsStore) -> Result<IdleConfig, StoreError> {
    settings.json(IDLE_KEY).await
}

/// Save the idle settings, once [`IdleConfig::check`] passes.
pub async fn save_idle_config(
    settings: &SettingsStore,
    cfg: IdleConfig,
) -> Result<IdleConfig, PodFleetError> {
    cfg.check().map_err(PodFleetError::InvalidIdle)?;
    settings.put_json(IDLE_KEY, &cfg).await?;
    Ok(cfg)
}

/// Dollars as people type them ("1", "1.5", "$0.69") to micro-dollars, without floating point; `None` for
/// anything else or more than six decimals. Pure.
pub fn parse_usd(text: &str) -> Option<u64> {
    let t = text.trim();
    decimal(t.strip_prefix('$').unwrap_or(t), 6)
}

/// Minutes as people type them ("5", "1.5", "0.25") to milliseconds, without floating point; `None` for anything
/// else or more than three decimals (60 ms). Pure.
pub fn parse_minutes(text: &str) -> Option<u64> {
    decimal(text, 3)?.checked_mul(60)
}

/// A non-negative decimal number with at most `places` decimals, times 10^`places`.
fn decimal(text: &str, places: usize) -> Option<u64> {
    let t = text.trim();
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty())
        || !digits(whole)
        || !digits(frac)
        || frac.len() > places
    {
        return None;
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let frac: u64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<places$}").parse().ok()?
    };
    whole
        .checked_mul(10u64.pow(places as u32))?
        .checked_add(frac)
}

/// "45 s", "5 min", "2 min 30 s". Pure.
pub fn human_ms(ms: u64) -> String {
    let secs = ms / 1000;
    match (secs / 60, secs % 60) {
        (0, s) => format!("{s} s"),
        (m, 0) => format!("{m} min"),
        (m, s) => format!("{m} min {s} s"),
    }
}

/// A server name for a pod, unique among `taken` (compared without case) and short enough. Pure.
pub fn server_name(pod_name: &str, pod_id: &str, taken: &[String]) -> String {
    let base = if pod_name.trim().is_empty() {
        "RunPod pod"
    } else {
        pod_name.trim()
    };
    let fit = |s: String| -> String { s.chars().take(NAME_MAX_CHARS).collect() };
    let free = |s: &str| {
        !taken
            .iter()
            .any(|t| t.trim().to_lowercase() == s.to_lowercase())
    };
    let plain = fit(base.to_string());
    if free(&plain) {
        return plain;
    }
    for n in 1u32.. {
        let suffix = if n == 1 {
            format!(" ({pod_id})")
        } else {
            format!(" ({pod_id} {n})")
        };
        let room = NAME_MAX_CHARS.saturating_sub(suffix.chars().count());
        let name = fit(base.chars().take(room).collect::<String>() + &suffix);
        if free(&name) {
            return name;
        }
    }
    unreachable!("some suffix is free")
}

/// A pod of the app as the UI and the CLI show it: the record with RunPod's live state.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct FleetPod {
    pub pod_id: String,
    pub name: String,
    pub server_id: Option<String>,
    /// The pod's ComfyUI through RunPod's proxy.
    pub url: String,
    pub gpu: String,
    pub cost_per_hr_micros: u64,
    pub state: PodState,
    /// RunPod's status now (RUNNING, EXITED, ...); `None` when RunPod no longer has the pod.
    pub status: Option<String>,
    pub uptime_secs: Option<u64>,
    pub created_ms: i64,
    pub last_activity_ms: Option<i64>,
    pub stopped_reason: Option<String>,
}

/// Where a `create` or `start` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum PodStage {
    Creating,
    Provisioning,
    Starting,
    WaitingForComfyui,
    Registering,
    Ready,
}

/// Progress of a `create` or `start`, for a "starting" indicator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct PodProgress {
    /// `None` until RunPod has accepted the pod.
    pub pod_id: Option<String>,
    pub stage: PodStage,
    pub message: String,
    pub elapsed_ms: u64,
}

/// Something reconciling did to a pod of the app (for a notice in the UI).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct PodChange {
    pub pod_id: String,
    pub name: String,
    pub state: PodState,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PodFleetError {
    #[error("Pod {id} was not created by ComfyFleet, so ComfyFleet does not start, stop or terminate it. Manage it in the RunPod console: {CONSOLE_URL}")]
    NotOurs { id: String },
    #[error("Pod '{name}' ({id}) is already terminated.")]
    Terminated { id: String, name: String },
    #[error("Pod {id} is running but could not be added to the server list: {source} It keeps costing money while it runs: stop or terminate it if you do not need it.")]
    Register { id: String, source: ServersError },
    #[error("{0}")]
    InvalidIdle(String),
    #[error("{0}")]
    Account(#[from] AccountError),
    #[error("{0}")]
    Pods(#[from] PodError),
    #[error("{0}")]
    Servers(#[from] ServersError),
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for PodFleetError {
    fn from(e: rusqlite::Error) -> Self {
        PodFleetError::Store(e.into())
    }
}

impl crate::HasErrorInfo for PodFleetError {
    fn code(&self) -> &'static str {
        match self {
            PodFleetError::NotOurs { .. } => "pods.not_ours",
            PodFleetError::Terminated { .. } => "pods.terminated",
            PodFleetError::Register { .. } => "pods.register_failed",
            PodFleetError::InvalidIdle(_) => "pods.invalid_idle",
            PodFleetError::Account(e) => e.code(),
            PodFleetError::Pods(e) => e.code(),
            PodFleetError::Servers(e) => e.code(),
            PodFleetError::Store(e) => e.code(),
        }
    }
}

const COLUMNS: &str = "pod_id, server_id, name, gpu, cost_per_hr_micros, created_ms, last_job_ms, state, stopped_reason, updated_ms";

fn from_row(r: &Row<'_>) -> rusqlite::Result<PodRecord> {
    Ok(PodRecord {
        pod_id: r.get(0)?,
        server_id: r.get(1)?,
        name: r.get(2)?,
        gpu: r.get(3)?,
        cost_per_hr_micros: r.get::<_, i64>(4)?.max(0) as u64,
        created_ms: r.get(5)?,
        last_job_ms: r.get(6)?,
        state: PodState::parse(&r.get::<_, String>(7)?).unwrap_or(PodState::Stopped),
        stopped_reason: r.get(8)?,
        updated_ms: r.get(9)?,
    })
}

fn get_in(c: &rusqlite::Connection, id: &str) -> Result<Option<PodRecord>, PodFleetError> {
    Ok(
        c.prepare_cached(&format!("SELECT {COLUMNS} FROM pods WHERE pod_id = ?1"))?
            .query_row([id], from_row)
            .optional()?,
    )
}

fn save_in(tx: &rusqlite::Transaction<'_>, p: &PodRecord) -> Result<(), PodFleetError> {
    tx.execute(
        &format!(
            "INSERT INTO pods ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT(pod_id) DO UPDATE SET server_id=excluded.server_id, name=excluded.name, gpu=excluded.gpu,
                cost_per_hr_micros=excluded.cost_per_hr_micros, last_job_ms=excluded.last_job_ms,
                state=excluded.state, stopped_reason=excluded.stopped_reason, updated_ms=excluded.updated_ms"
        ),
        params![
            p.pod_id,
            p.server_id,
            p.name,
            p.gpu,
            p.cost_per_hr_micros.min(i64::MAX as u64) as i64,
            p.created_ms,
            p.last_job_ms,
            p.state.as_str(),
            p.stopped_reason,
            p.updated_ms
        ],
    )?;
    Ok(())
}

/// What the jobs table says about a server: its latest job time and how many of its jobs are in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ServerActivity {
    pub last_ms: Option<i64>,
    pub in_flight: u32,
}

/// The pods the app created. Cheap to clone.
#[derive(Clone)]
pub struct PodFleet {
    store: Store,
    servers: ServerList,
    settings: SettingsStore,
    client: PodsClient,
    ready_timeout: Duration,
}

impl PodFleet {
    pub fn new(fleet: &Fleet, client: PodsClient) -> PodFleet {
        PodFleet {
            store: fleet.store.clone(),
            servers: fleet.servers.clone(),
            settings: fleet.settings.clone(),
            client,
            ready_timeout: DEFAULT_READY_TIMEOUT,
        }
    }

    /// With the RunPod key from the keychain (`runpod.no_key` when none is set).
    pub async fn connect(fleet: &Fleet, urls: RunpodUrls) -> Result<PodFleet, PodFleetError> {
        let account = RunpodAccount::new(fleet.servers.secrets().clone(), urls.clone());
        let key = account.key().await?;
        let client = PodsClient::new(crate::downloads::http_client(), urls, key);
        Ok(PodFleet::new(fleet, client))
    }

    /// How long `create` and `start` wait for ComfyUI; a pod still starting after this long is adopted by
    /// [`Self::reconcile`] (its creator is gone).
    pub fn with_ready_timeout(mut self, timeout: Duration) -> PodFleet {
        self.ready_timeout = timeout;
        self
    }

    /// The GPU types RunPod offers pods on, with their prices.
    pub async fn gpu_types(&self) -> Result<Vec<crate::runpod::pods::GpuType>, PodFleetError> {
        Ok(self.client.gpu_types().await?)
    }

    pub async fn idle_config(&self) -> Result<IdleConfig, PodFleetError> {
        Ok(load_idle_config(&self.settings).await?)
    }

    pub async fn set_idle_config(&self, cfg: IdleConfig) -> Result<IdleConfig, PodFleetError> {
        save_idle_config(&self.settings, cfg).await
    }

    /// The recorded pods, oldest first; terminated ones only with `include_terminated`.
    pub async fn records(&self, include_terminated: bool) -> Result<Vec<PodRecord>, PodFleetError> {
        self.store
            .call(move |c| {
                let filter = if include_terminated {
                    ""
                } else {
                    "WHERE state != 'terminated'"
                };
                let sql = format!("SELECT {COLUMNS} FROM pods {filter} ORDER BY created_ms, rowid");
                Ok(crate::store::rows(c, &sql, [], from_row)?)
            })
            .await
    }

    pub async fn record(&self, pod_id: &str) -> Result<Option<PodRecord>, PodFleetError> {
        let id = pod_id.to_string();
        self.store.call(move |c| get_in(c, &id)).await
    }

    async fn insert(&self, record: PodRecord) -> Result<PodRecord, PodFleetError> {
        self.store
            .write(move |tx| {
                save_in(tx, &record)?;
                Ok(record)
            })
            .await
    }

    /// Change a record in one write transaction.
    async fn update(
        &self,
        pod_id: &str,
        f: impl FnOnce(&mut PodRecord) + Send + 'static,
    ) -> Result<PodRecord, PodFleetError> {
        let id = pod_id.to_string();
        let now = crate::now_ms();
        self.store
            .write(move |tx| {
                let mut record = get_in(tx, &id)?.ok_or(PodFleetError::NotOurs { id })?;
                f(&mut record);
                record.updated_ms = now;
                save_in(tx, &record)?;
                Ok(record)
            })
            .await
    }

    /// The latest job time on a server and its jobs in flight (dispatched or running).
    pub async fn server_activity(&self, server_id: &str) -> Result<ServerActivity, PodFleetError> {
        let id = server_id.to_string();
        self.store
            .call(move |c| {
                let (last_ms, in_flight): (Option<i64>, i64) = c.query_row(
                    "SELECT MAX(MAX(queued_ms, COALESCE(started_ms, 0), COALESCE(finished_ms, 0))),
                            COALESCE(SUM(state IN ('dispatched', 'running')), 0)
                     FROM jobs WHERE server_id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                Ok(ServerActivity {
                    last_ms,
                    in_flight: in_flight.max(0) as u32,
                })
            })
            .await
    }

    /// Accrue a running pod's uptime since it was last accrued (or since this run of it started, from RunPod's
    /// uptime) into the cost ledger, split into busy time (a job of its server ran) and idle ("wasted") time.
    async fn accrue(&self, record: &PodRecord, pod: &Pod, now: i64, accrual: Accrual) {
        let costs = crate::costs::Costs::new(self.store.clone());
        let until = costs
            .ledger()
            .pod_accrued_until(&record.pod_id)
            .await
            .ok()
            .flatten();
        let Some(from) = accrual_start(accrual, until, pod.uptime_secs, record.created_ms, now)
        else {
            return;
        };
        let busy = match &record.server_id {
            Some(id) => self.busy_ms(id, from, now).await.unwrap_or(0),
            None => 0,
        };
        let rate = if pod.cost_per_hr_micros > 0 {
            pod.cost_per_hr_micros
        } else {
            record.cost_per_hr_micros
        };
        let usage = crate::costs::PodUsage::accrue(&record.pod_id, from, now, busy, rate);
        if let Err(e) = costs.ledger().record_pod_usage(usage).await {
            tracing::warn!(pod = %record.pod_id, error = %e, "pods: could not record the pod's uptime cost");
        }
    }

    /// How long jobs of `server_id` ran within `[from, to)` (overlapping jobs each count).
    async fn busy_ms(&self, server_id: &str, from: i64, to: i64) -> Result<u64, PodFleetError> {
        let id = server_id.to_string();
        self.store
            .call(move |c| {
                let ms: i64 = c.query_row(
                    "SELECT COALESCE(SUM(MIN(?3, COALESCE(finished_ms, ?3)) - MAX(?2, started_ms)), 0) FROM jobs
                     WHERE server_id = ?1 AND started_ms IS NOT NULL AND started_ms < ?3
                       AND COALESCE(finished_ms, ?3) > ?2",
                    rusqlite::params![id, from, to],
                    |r| r.get(0),
                )?;
                Ok(ms.max(0) as u64)
            })
            .await
    }

    /// A pod the app may act on: recorded and not terminated.
    async fn ours(&self, pod_id: &str) -> Result<PodRecord, PodFleetError> {
        let id = pod_id.trim();
        match self.record(id).await? {
            None => Err(PodFleetError::NotOurs { id: id.to_string() }),
            Some(r) if r.state == PodState::Terminated => Err(PodFleetError::Terminated {
                id: r.pod_id,
                name: r.name,
            }),
            Some(r) => Ok(r),
        }
    }

    /// RunPod's view of one pod; `None` when RunPod no longer has it.
    async fn live(&self, pod_id: &str) -> Result<Option<Pod>, PodFleetError> {
        match self.client.get(pod_id).await {
            Ok(p) => Ok(Some(p)),
            Err(PodError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn view(&self, r: PodRecord, live: Option<&Pod>) -> FleetPod {
        FleetPod {
            url: self.client.urls().pod_url(&r.pod_id, 8188),
            pod_id: r.pod_id,
            name: r.name,
            server_id: r.server_id,
            gpu: r.gpu,
            cost_per_hr_micros: live
                .map(|p| p.cost_per_hr_micros)
                .filter(|c| *c > 0)
                .unwrap_or(r.cost_per_hr_micros),
            state: r.state,
            status: live.map(|p| p.status.clone()),
            uptime_secs: live.and_then(|p| p.uptime_secs),
            created_ms: r.created_ms,
            last_activity_ms: r.last_job_ms,
            stopped_reason: r.stopped_reason,
        }
    }

    /// The app's pods (not terminated) with RunPod's live status, uptime and price. Other pods on the account are
    /// not listed.
    pub async fn list(&self) -> Result<Vec<FleetPod>, PodFleetError> {
        let records = self.records(false).await?;
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let live: HashMap<String, Pod> = self
            .client
            .list()
            .await?
            .into_iter()
            .map(|p| (p.id.clone(), p))
            .collect();
        let mut out = Vec::with_capacity(records.len());
        for r in records {
            let pod = match live.get(&r.pod_id) {
                Some(p) => Some(p.clone()),
                // Not in the (maybe paged) list: ask for it.
                None => self.live(&r.pod_id).await?,
            };
            out.push(self.view(r, pod.as_ref()));
        }
        Ok(out)
    }

    /// Create a pod, record it, wait until ComfyUI answers behind its proxy address, and register it as a cloud
    /// ComfyUI server (tags `cloud`, `runpod`). `progress` hears each step.
    pub async fn create(
        &self,
        preset: &PodPreset,
        mut progress: impl FnMut(PodProgress) + Send,
    ) -> Result<FleetPod, PodFleetError> {
        let started = Instant::now();
        let elapsed = || started.elapsed().as_millis() as u64;
        progress(PodProgress {
            pod_id: None,
            stage: PodStage::Creating,
            message: format!(
                "Asking RunPod for a pod ({})",
                preset.gpu_types.join(" or ")
            ),
            elapsed_ms: elapsed(),
        });
        let pod = self.client.create(preset).await?;
        let now = crate::now_ms();
        let recorded = self
            .insert(PodRecord {
                pod_id: pod.id.clone(),
                server_id: None,
                name: if pod.name.is_empty() {
                    preset.name.clone()
                } else {
                    pod.name.clone()
                },
                gpu: pod.gpu.clone(),
                cost_per_hr_micros: pod.cost_per_hr_micros,
                created_ms: now,
                last_job_ms: None,
                state: PodState::Starting,
                stopped_reason: None,
                updated_ms: now,
            })
            .await;
        let record = match recorded {
            Ok(r) => r,
            Err(e) => {
                // Unrecorded, it would look foreign and never be stopped: do not leave it billing.
                if let Err(t) = self.client.action(&pod.id, "terminate").await {
                    tracing::error!(pod = %pod.id, error = %t, "could not terminate a pod the app failed to record");
                }
                return Err(e);
            }
        };
        tracing::info!(pod = %pod.id, gpu = %pod.gpu, cost_per_hr_micros = pod.cost_per_hr_micros, "pod created");
        progress(PodProgress {
            pod_id: Some(pod.id.clone()),
            stage: PodStage::Provisioning,
            message: format!(
                "Pod {} created ({}, {}/h); waiting for it to start",
                pod.id,
                if pod.gpu.is_empty() { "GPU" } else { &pod.gpu },
                usd(pod.cost_per_hr_micros)
            ),
            elapsed_ms: elapsed(),
        });
        self.bring_up(record, started, &mut progress).await
    }

    /// Waits until a starting pod's ComfyUI answers, adds it to the server list when it is not there yet, records
    /// it running (which counts as activity) and says it is ready.
    async fn bring_up(
        &self,
        record: PodRecord,
        started: Instant,
        progress: &mut (impl FnMut(PodProgress) + Send),
    ) -> Result<FleetPod, PodFleetError> {
        let elapsed = || started.elapsed().as_millis() as u64;
        let pod_id = record.pod_id.clone();
        let url = self.wait(&pod_id, started, progress).await?;
        let server_id = match &record.server_id {
            Some(id) => id.clone(),
            None => {
                progress(PodProgress {
                    pod_id: Some(pod_id.clone()),
                    stage: PodStage::Registering,
                    message: "ComfyUI answers; adding the pod to the server list".into(),
                    elapsed_ms: elapsed(),
                });
                self.register(&record, &url).await?
            }
        };
        let record = self
            .update(&pod_id, move |r| {
                r.server_id = Some(server_id);
                r.state = PodState::Running;
                r.last_job_ms = Some(crate::now_ms());
            })
            .await?;
        progress(PodProgress {
            pod_id: Some(pod_id.clone()),
            stage: PodStage::Ready,
            message: format!("Pod '{}' is ready at {url}", record.name),
            elapsed_ms: elapsed(),
        });
        let live = self.live(&pod_id).await.ok().flatten();
        Ok(self.view(record, live.as_ref()))
    }

    async fn wait(
        &self,
        pod_id: &str,
        started: Instant,
        progress: &mut (impl FnMut(PodProgress) + Send),
    ) -> Result<String, PodFleetError> {
        let mut said = String::new();
        let url = self
            .client
            .wait_ready_with(pod_id, self.ready_timeout, |last| {
                if last == said {
                    return;
                }
                said = last.to_string();
                let stage = if last.contains("PROVISIONING") {
                    PodStage::Provisioning
                } else if last.contains("ComfyUI") {
                    PodStage::WaitingForComfyui
                } else {
                    PodStage::Starting
                };
                progress(PodProgress {
                    pod_id: Some(pod_id.to_string()),
                    stage,
                    message: format!("Waiting: {last}"),
                    elapsed_ms: started.elapsed().as_millis() as u64,
                });
            })
            .await?;
        Ok(url)
    }

    /// Add the pod's server entry under a free name; answers its id.
    async fn register(&self, record: &PodRecord, url: &str) -> Result<String, PodFleetError> {
        let register_err = |source| PodFleetError::Register {
            id: record.pod_id.clone(),
            source,
        };
        let mut attempts = 0;
        loop {
            let taken: Vec<String> = self
                .servers
                .list()
                .await
                .map_err(register_err)?
                .into_iter()
                .map(|s| s.name)
                .collect();
            let input = ServerInput {
                name: server_name(&record.name, &record.pod_id, &taken),
                url: url.to_string(),
                tags: SERVER_TAGS.iter().map(|t| t.to_string()).collect(),
                notes: format!(
                    "RunPod pod {} ({}, {}/h), created by ComfyFleet. Stopped automatically when idle; terminating it removes this entry.",
                    record.pod_id,
                    record.gpu,
                    usd(record.cost_per_hr_micros)
                ),
                ..Default::default()
            };
            match self.servers.add(input).await {
                Ok(server) => {
                    tracing::info!(pod = %record.pod_id, server = %server.name, "pod registered as a server");
                    return Ok(server.id);
                }
                // Another process took the name meanwhile: pick again.
                Err(ServersError::Input(InputProblem::DuplicateName { .. })) if attempts < 3 => {
                    attempts += 1
                }
                Err(e) => return Err(register_err(e)),
            }
        }
    }

    /// Start a stopped pod of the app and wait until ComfyUI answers again.
    pub async fn start(
        &self,
        pod_id: &str,
        mut progress: impl FnMut(PodProgress) + Send,
    ) -> Result<FleetPod, PodFleetError> {
        let record = self.ours(pod_id).await?;
        let started = Instant::now();
        progress(PodProgress {
            pod_id: Some(record.pod_id.clone()),
            stage: PodStage::Starting,
            message: format!("Starting pod '{}'", record.name),
            elapsed_ms: 0,
        });
        match self.client.action(&record.pod_id, "start").await {
            // Already up (started in the console, or by another ComfyFleet): wait for it all the same.
            Ok(()) | Err(PodError::Conflict { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        self.update(&record.pod_id, |r| {
            r.state = PodState::Starting;
            r.stopped_reason = None;
            // Starting counts as activity (and dates the start for reconcile).
            r.last_job_ms = Some(crate::now_ms());
        })
        .await?;
        self.bring_up(record, started, &mut progress).await
    }

    /// Stop a pod of the app (billing for the GPU stops; its disk is kept). Its server entry stays, offline.
    pub async fn stop(&self, pod_id: &str) -> Result<FleetPod, PodFleetError> {
        let record = self.ours(pod_id).await?;
        if let Ok(Some(p)) = self.live(&record.pod_id).await {
            if p.status == "RUNNING" {
                self.accrue(&record, &p, crate::now_ms(), Accrual::Final)
                    .await;
            }
        }
        self.stop_record(&record, "stopped by you".to_string())
            .await?;
        let record = self.ours(pod_id).await?;
        let live = self.live(&record.pod_id).await.ok().flatten();
        Ok(self.view(record, live.as_ref()))
    }

    async fn stop_record(&self, record: &PodRecord, reason: String) -> Result<(), PodFleetError> {
        match self.client.action(&record.pod_id, "stop").await {
            // Already stopped (elsewhere, or by another ComfyFleet).
            Ok(()) | Err(PodError::Conflict { .. }) => {}
            Err(PodError::NotFound(_)) => {
                return self
                    .forget(record, "RunPod no longer has it".to_string())
                    .await
                    .map(|_| ())
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!(pod = %record.pod_id, %reason, "pod stopped");
        self.update(&record.pod_id, move |r| {
            r.state = PodState::Stopped;
            r.stopped_reason = Some(reason);
        })
        .await?;
        Ok(())
    }

    /// Terminate a pod of the app (its disk is deleted), remove its server entry and mark it terminated.
    pub async fn terminate(&self, pod_id: &str) -> Result<PodRecord, PodFleetError> {
        let record = self.ours(pod_id).await?;
        match self.client.action(&record.pod_id, "terminate").await {
            Ok(()) | Err(PodError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        tracing::info!(pod = %record.pod_id, "pod terminated");
        self.forget(&record, "terminated by you".to_string()).await
    }

    /// Remove the server entry of a pod that is gone and mark it terminated.
    async fn forget(&self, record: &PodRecord, reason: String) -> Result<PodRecord, PodFleetError> {
        if let Some(server_id) = &record.server_id {
            match self.servers.delete(server_id).await {
                Ok(_) | Err(ServersError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.update(&record.pod_id, move |r| {
            r.server_id = None;
            r.state = PodState::Terminated;
            r.stopped_reason = Some(reason);
        })
        .await
    }

    /// Match the record with RunPod and apply the idle rule: pods gone from RunPod are marked terminated (their
    /// server entries removed), pods stopped or started elsewhere are recorded so, a pod still starting after the
    /// ready timeout (its creator died) is adopted, and running pods idle past the limit are stopped. Pods the app
    /// did not create are not touched. Call at app start, then periodically ([`Self::watch`]).
    pub async fn reconcile(&self) -> Result<Vec<PodChange>, PodFleetError> {
        let records = self.records(false).await?;
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let cfg = self.idle_config().await?;
        let live: HashMap<String, Pod> = self
            .client
            .list()
            .await?
            .into_iter()
            .map(|p| (p.id.clone(), p))
            .collect();
        let mut changes = Vec::new();
        for record in records {
            let pod = match live.get(&record.pod_id) {
                Some(p) => Some(p.clone()),
                None => match self.live(&record.pod_id).await {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!(pod = %record.pod_id, error = %e, "pods: could not read a pod; next time");
                        continue;
                    }
                },
            };
            if let Some(p) = pod.as_ref().filter(|p| p.status == "RUNNING") {
                self.accrue(&record, p, crate::now_ms(), Accrual::Periodic)
                    .await;
            }
            match self.reconcile_one(record.clone(), pod, &cfg).await {
                Ok(Some(change)) => {
                    tracing::info!(pod = %change.pod_id, state = change.state.as_str(), message = %change.message, "pod reconciled");
                    changes.push(change);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(pod = %record.pod_id, error = %e, "pods: could not reconcile a pod; next time")
                }
            }
        }
        Ok(changes)
    }

    async fn reconcile_one(
        &self,
        record: PodRecord,
        pod: Option<Pod>,
        cfg: &IdleConfig,
    ) -> Result<Option<PodChange>, PodFleetError> {
        let now = crate::now_ms();
        let change = |r: &PodRecord, message: String| PodChange {
            pod_id: r.pod_id.clone(),
            name: r.name.clone(),
            state: r.state,
            message,
        };
        // A pod still starting this long after it was created or started: whoever waited for it has given up.
        let starting_since = record.last_job_ms.unwrap_or(0).max(record.created_ms);
        let creator_gone =
            now.saturating_sub(starting_since) > self.ready_timeout.as_millis() as i64;
        let status = pod.as_ref().map(|p| p.status.as_str()).unwrap_or("GONE");
        match (record.state, status) {
            (_, "GONE" | "TERMINATED") => {
                let r = self
                    .forget(
                        &record,
                        "terminated outside ComfyFleet (RunPod no longer has it)".into(),
                    )
                    .await?;
                let message = format!(
                    "Pod '{}' was terminated outside ComfyFleet; its server entry is removed.",
                    r.name
                );
                Ok(Some(change(&r, message)))
            }
            (PodState::Running, "EXITED" | "ERROR") | (PodState::Starting, "EXITED" | "ERROR")
                if record.state == PodState::Running || creator_gone =>
            {
                let reason = format!("stopped outside ComfyFleet ({status})");
                let r = self
                    .update(&record.pod_id, move |r| {
                        r.state = PodState::Stopped;
                        r.stopped_reason = Some(reason);
                    })
                    .await?;
                let message = format!("Pod '{}' was stopped outside ComfyFleet.", r.name);
                Ok(Some(change(&r, message)))
            }
            (PodState::Stopped, "RUNNING") => {
                // Started elsewhere: it counts as active from when it started.
                let uptime_ms = pod
                    .as_ref()
                    .and_then(|p| p.uptime_secs)
                    .unwrap_or(0)
                    .saturating_mul(1000) as i64;
                let r = self
                    .update(&record.pod_id, move |r| {
                        r.state = PodState::Running;
                        r.stopped_reason = None;
                        r.last_job_ms = Some(now - uptime_ms);
                    })
                    .await?;
                let message = format!(
                    "Pod '{}' was started outside ComfyFleet; it is stopped again once idle.",
                    r.name
                );
                Ok(Some(change(&r, message)))
            }
            (PodState::Starting, "RUNNING") if creator_gone => {
                // Its creator died while it was starting: register it now; the idle rule decides from here.
                let url = self.client.urls().pod_url(&record.pod_id, 8188);
                let server_id = match &record.server_id {
                    Some(id) => id.clone(),
                    None => self.register(&record, &url).await?,
                };
                let r = self
                    .update(&record.pod_id, move |r| {
                        r.server_id = Some(server_id);
                        r.state = PodState::Running;
                    })
                    .await?;
                let message = format!("Pod '{}' was left starting by a ComfyFleet that stopped; it is in the server list now.", r.name);
                Ok(Some(change(&r, message)))
            }
            (PodState::Starting, "PROVISIONING" | "STARTING") if creator_gone => {
                // Stuck (no GPU, an image that never boots): it costs money and serves nothing.
                let reason = format!(
                    "did not become ready within {}",
                    human_ms(self.ready_timeout.as_millis() as u64)
                );
                self.stop_record(&record, reason.clone()).await?;
                let r = self.record(&record.pod_id).await?.unwrap_or(record);
                let message = format!("Stopped pod '{}': it {reason}.", r.name);
                Ok(Some(change(&r, message)))
            }
            (PodState::Running, "RUNNING") => self.idle_check(record, pod, cfg, now).await,
            _ => Ok(None),
        }
    }

    async fn idle_check(
        &self,
        record: PodRecord,
        pod: Option<Pod>,
        cfg: &IdleConfig,
        now: i64,
    ) -> Result<Option<PodChange>, PodFleetError> {
        let activity = match &record.server_id {
            Some(id) => self.server_activity(id).await?,
            None => ServerActivity::default(),
        };
        // Keep what was seen, and RunPod's current price.
        let seen = activity.last_ms.max(record.last_job_ms);
        let cost = pod
            .as_ref()
            .map(|p| p.cost_per_hr_micros)
            .filter(|c| *c > 0)
            .unwrap_or(record.cost_per_hr_micros);
        let record = if seen != record.last_job_ms || cost != record.cost_per_hr_micros {
            self.update(&record.pod_id, move |r| {
                r.last_job_ms = seen;
                r.cost_per_hr_micros = cost;
            })
            .await?
        } else {
            record
        };
        // At a spending cap an idle pod stops at once: it would only cost more.
        let capped = if activity.in_flight == 0 {
            crate::costs::Costs::new(self.store.clone())
                .cap_status(now)
                .await
                .ok()
                .and_then(|c| {
                    if c.daily_percent >= 100 {
                        Some("the daily cloud spending limit is reached")
                    } else if c.monthly_percent >= 100 {
                        Some("the monthly cloud spending limit is reached")
                    } else {
                        None
                    }
                })
        } else {
            None
        };
        let stop = match capped {
            Some(reason) => IdleStop {
                reason: reason.to_string(),
            },
            None => match idle_action(now, &record, activity.last_ms, activity.in_flight, cfg) {
                Some(stop) => stop,
                None => return Ok(None),
            },
        };
        // The pass charged its uptime just before; what is left up to the stop is charged too.
        if let Some(p) = &pod {
            self.accrue(&record, p, crate::now_ms(), Accrual::Final)
                .await;
        }
        self.stop_record(&record, stop.reason.clone()).await?;
        let r = self.record(&record.pod_id).await?.unwrap_or(record);
        Ok(Some(PodChange {
            message: format!("Stopped pod '{}': {}.", r.name, stop.reason),
            pod_id: r.pod_id,
            name: r.name,
            state: r.state,
        }))
    }

    /// Reconcile now and then every `interval` on a background task, until the handle is stopped or dropped.
    /// The idle settings are read on each pass. `on_change` hears what changed.
    pub fn watch(
        &self,
        interval: Duration,
        mut on_change: impl FnMut(PodChange) + Send + 'static,
    ) -> PodWatch {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let fleet = self.clone();
        let task = tokio::spawn(async move {
            loop {
                match fleet.reconcile().await {
                    Ok(changes) => changes.into_iter().for_each(&mut on_change),
                    Err(e) => {
                        tracing::warn!(error = %e, "pods: could not reconcile with RunPod; trying again later")
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = stopped.changed() => break,
                }
            }
        });
        PodWatch {
            stop,
            task: Some(task),
        }
    }
}

/// The background task of [`PodFleet::watch`]; dropping it stops the task.
pub struct PodWatch {
    stop: tokio::sync::watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl PodWatch {
    /// Stop after the current pass.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for PodWatch {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn pod(state: PodState, cost: u64, created_ms: i64, last_job_ms: Option<i64>) -> PodRecord {
        PodRecord {
            pod_id: "p1".into(),
            server_id: Some("s1".into()),
            name: "comfy".into(),
            gpu: "RTX 4090".into(),
            cost_per_hr_micros: cost,
            created_ms,
            last_job_ms,
            state,
            stopped_reason: None,
            updated_ms: created_ms,
        }
    }

    #[test]
    fn pods_idle_rule_stops_a_running_pod_after_the_idle_time_since_its_last_activity() {
        let cfg = IdleConfig::default();
        let cheap = pod(PodState::Running, 690_000, 0, Some(10 * MIN));
        // Idle is counted from the latest of creation, recorded activity and jobs.
        assert_eq!(idle_action(14 * MIN, &cheap, None, 0, &cfg), None);
        let stop = idle_action(15 * MIN, &cheap, None, 0, &cfg).unwrap();
        assert_eq!(stop.reason, "idle for 5 min (auto-shutdown)");
        assert_eq!(idle_action(15 * MIN, &cheap, Some(12 * MIN), 0, &cfg), None);
        assert!(idle_action(17 * MIN, &cheap, Some(12 * MIN), 0, &cfg).is_some());
        // A job older than the recorded activity does not make it look idle for longer.
        assert_eq!(idle_action(14 * MIN, &cheap, Some(MIN), 0, &cfg), None);
        // Never created-but-never-used forever: creation counts as activity.
        let fresh = pod(PodState::Running, 690_000, 20 * MIN, None);
        assert_eq!(idle_action(24 * MIN, &fresh, None, 0, &cfg), None);
        assert!(idle_action(25 * MIN, &fresh, None, 0, &cfg).is_some());
    }

    #[test]
    fn pods_uptime_accrual_waits_a_second_between_passes_and_charges_the_rest_at_the_stop() {
        let now = 100_000;
        // First pass of a run: from its start by RunPod's uptime, not before the pod was created.
        assert_eq!(
            accrual_start(Accrual::Periodic, None, Some(30), 0, now),
            Some(70_000)
        );
        assert_eq!(
            accrual_start(Accrual::Periodic, None, Some(30), 80_000, now),
            Some(80_000)
        );
        // Later passes go on from the last; under a second waits for the next pass.
        assert_eq!(
            accrual_start(Accrual::Periodic, Some(95_000), Some(30), 0, now),
            Some(95_000)
        );
        assert_eq!(
            accrual_start(Accrual::Periodic, Some(99_500), Some(30), 0, now),
            None
        );
        // At the stop, the rest is charged however short it is.
        assert_eq!(
            accrual_start(Accrual::Final, Some(99_500), Some(30), 0, now),
            Some(99_500)
        );
        // A run stopped within its first second was still paid for: RunPod says 0 s; one second is charged.
        assert_eq!(
            accrual_start(Accrual::Periodic, None, Some(0), 0, now),
            None
        );
        assert_eq!(
            accrual_start(Accrual::Final, None, Some(0), 0, now),
            Some(99_000)
        );
        // A new run after a stop starts from its own uptime, not from the last charge of the run before.
        assert_eq!(
            accrual_start(Accrual::Final, Some(10_000), Some(4), 0, now),
            Some(95_000)
        );
        // Nothing to charge twice.
        assert_eq!(
            accrual_start(Accrual::Final, Some(now), Some(4), 0, now),
            None
        );
    }

    #[test]
    fn pods_idle_settings_refuse_no_idle_time_and_more_than_a_week() {
        assert_eq!(IdleConfig::default().check(), Ok(()));
        let zero = IdleConfig {
            idle_ms: 0,
            ..IdleConfig::default()
        };
        assert!(zero
            .check()
            .unwrap_err()
            .starts_with("The idle time must be more than 0"));
        let long = IdleConfig {
            expensive_idle_ms: MAX_IDLE_MS + 1,
            ..IdleConfig::default()
        };
        let e = long.check().unwrap_err();
        assert!(
            e.starts_with("The idle time for expensive pods can be at most a week"),
            "{e}"
        );
        assert!(e.contains("turn auto-shutdown off"), "{e}");
        // A week exactly, and a millisecond, are fine; so is any value while auto-shutdown is off... checked the same.
        let edges = IdleConfig {
            idle_ms: MAX_IDLE_MS,
            expensive_idle_ms: 1,
            ..IdleConfig::default()
        };
        assert_eq!(edges.check(), Ok(()));
    }

    #[test]
    fn pods_idle_rule_never_stops_a_busy_pod_a_pod_not_running_or_when_disabled() {
        let cfg = IdleConfig::default();
        let old = pod(PodState::Running, 690_000, 0, Some(0));
        assert!(idle_action(60 * MIN, &old, None, 0, &cfg).is_some());
        assert_eq!(
            idle_action(60 * MIN, &old, None, 1, &cfg),
            None,
            "a job runs"
        );
        for state in [PodState::Starting, PodState::Stopped, PodState::Terminated] {
            assert_eq!(
                idle_action(60 * MIN, &pod(state, 690_000, 0, Some(0)), None, 0, &cfg),
                None,
                "{state:?}"
            );
        }
        let off = IdleConfig {
            enabled: false,
            ..cfg
        };
        assert_eq!(idle_action(60 * MIN, &old, None, 0, &off), None);
        // A clock behind the record (another machine's time) is not idleness.
        assert_eq!(idle_action(-MIN, &old, None, 0, &cfg), None);
    }

    #[test]
    fn pods_idle_rule_stops_expensive_pods_sooner_and_says_why() {
        let cfg = IdleConfig::default();
        let h100 = pod(PodState::Running, 2_990_000, 0, Some(0));
        assert_eq!(idle_action(2 * MIN - 1, &h100, None, 0, &cfg), None);
        let stop = idle_action(2 * MIN, &h100, None, 0, &cfg).unwrap();
        assert!(
            stop.reason.contains("idle for 2 min")
                && stop.reason.contains("$2.99/h")
                && stop.reason.contains("$1.00/h"),
            "{}",
            stop.reason
        );
        // Exactly at the threshold counts as expensive; just below does not.
        let at = pod(PodState::Running, 1_000_000, 0, Some(0));
        assert!(idle_action(2 * MIN, &at, None, 0, &cfg).is_some());
        let below = pod(PodState::Running, 999_999, 0, Some(0));
        assert_eq!(idle_action(2 * MIN, &below, None, 0, &cfg), None);
        // An "expensive" limit longer than the normal one never keeps a pod up longer.
        let odd = IdleConfig {
            expensive_idle_ms: 10 * MIN as u64,
            ..cfg
        };
        let stop = idle_action(5 * MIN, &h100, None, 0, &odd).unwrap();
        assert_eq!(stop.reason, "idle for 5 min (auto-shutdown)");
    }

    #[test]
    fn pods_idle_config_defaults_and_reads_partial_settings() {
        let d = IdleConfig::default();
        assert_eq!(
            (
                d.enabled,
                d.idle_ms,
                d.expensive_threshold_micros_per_hr,
                d.expensive_idle_ms
            ),
            (true, 300_000, 1_000_000, 120_000)
        );
        let partial: IdleConfig = serde_json::from_str(r#"{"idle_ms": 1500}"#).unwrap();
        assert_eq!(
            partial,
            IdleConfig {
                idle_ms: 1500,
                ..IdleConfig::default()
            }
        );
    }

    #[test]
    fn pods_server_names_are_unique_and_fit() {
        assert_eq!(server_name("comfy", "abc", &[]), "comfy");
        assert_eq!(
            server_name("comfy", "abc", &["Comfy".into()]),
            "comfy (abc)"
        );
        assert_eq!(
            server_name("comfy", "abc", &["comfy".into(), "comfy (abc)".into()]),
            "comfy (abc 2)"
        );
        assert_eq!(server_name("  ", "abc", &[]), "RunPod pod");
        let long = "x".repeat(100);
        let name = server_name(&long, "abcdef123456", &[long[..NAME_MAX_CHARS].to_string()]);
        assert_eq!(name.chars().count(), NAME_MAX_CHARS);
        assert!(name.ends_with(" (abcdef123456)"), "{name}");
    }

    #[test]
    fn pods_money_and_durations_read_as_people_write_them() {
        assert_eq!(usd(690_000), "$0.69");
        assert_eq!(usd(2_994_999), "$2.99");
        assert_eq!(usd(2_995_000), "$3.00");
        assert_eq!(usd(0), "$0.00");
        assert_eq!(human_ms(45_000), "45 s");
        assert_eq!(human_ms(300_000), "5 min");
        assert_eq!(human_ms(150_500), "2 min 30 s");
        assert_eq!(parse_usd("1"), Some(1_000_000));
        assert_eq!(parse_usd(" $0.69 "), Some(690_000));
        assert_eq!(parse_usd(".5"), Some(500_000));
        assert_eq!(parse_usd("2.4999"), Some(2_499_900));
        for bad in ["", ".", "-1", "1.2.3", "abc", "0.0000001", "1e3"] {
            assert_eq!(parse_usd(bad), None, "{bad}");
        }
        assert_eq!(parse_minutes("5"), Some(300_000));
        assert_eq!(parse_minutes(" 1.5 "), Some(90_000));
        assert_eq!(parse_minutes("0.01"), Some(600));
        for bad in ["", "$5", "-1", "0.0001", "5 min", "99999999999999999999"] {
            assert_eq!(parse_minutes(bad), None, "{bad}");
        }
    }
}
