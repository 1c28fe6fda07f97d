//! The dispatcher: one task that keeps every server fed from the persistent queue through the
//! router, runs each job on its backend, moves jobs off servers that die, and reconciles in-flight
//! jobs against their servers after a restart so no job is lost or run twice.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{broadcast, watch, Notify};

use crate::backend::Backend;
use crate::comfyui::follow::{RunEvent, RunOutcome};
use crate::comfyui::{ComfyClient, SubmitError};
use crate::health::{Health, Status};
use crate::jobs::{Job, JobEvent, JobState, Jobs, JobsError, NewJob, WAKING_NOTE};
use crate::router::{decide, Candidate, Decision, JobNeeds, RouterConfig};
use crate::runpod::client::ServerlessClient;
use crate::servers::{Server, ServerKind, ServerList};
use crate::workflow::Workflow;

/// How long a server's backend (its credentials and shared WebSocket) is reused before it is rebuilt,
/// so a changed secret is picked up.
const BACKEND_TTL: Duration = Duration::from_secs(30);
/// How many recent successes the fastest policy's estimates are rebuilt from at start.
const TIMINGS_FROM_JOBS: u32 = 500;
/// How many queued jobs one dispatch round looks at.
const READY_WINDOW: u32 = 256;
/// How long a server's model list is trusted.
const INVENTORY_TTL: Duration = Duration::from_secs(60);
/// Only the holder of this lease dispatches; it lapses this long after its holder stops renewing.
const LEASE: &str = "dispatcher";
const LEASE_TTL_MS: i64 = 5_000;
/// How often a local GPU's power draw is sampled during a job.
const POWER_SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// How long a job on a RunPod endpoint is assumed to run, until measured (for its cost estimate).
const EXPECTED_CLOUD_SECS: f64 = 30.0;
/// What a cold start (waking a RunPod worker) is assumed to add to a job, until measured.
const COLD_START_SECS: f64 = 30.0;
/// How long a graceful shutdown waits for jobs being sent to reach their servers.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A change to a job, for the UI and the CLI.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(tag = "kind", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)] // short-lived messages; boxing would only add allocations
pub enum JobUpdate {
    /// State, server, error or outputs changed.
    Changed {
        job: Job,
    },
    Progress {
        job_id: String,
        progress: f64,
    },
    Preview {
        job_id: String,
        mime: String,
        data_base64: String,
    },
    /// Something the user should see now, e.g. 80 % of a cloud spending cap used.
    Notice {
        job_id: String,
        title: String,
        message: String,
    },
}

/// What one server would take and cost for a workflow, for the Generate page's chooser.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Estimate {
    pub server_id: String,
    pub name: String,
    pub online: bool,
    /// It lacks a model the workflow needs: the router will not send it there.
    pub lacks_models: bool,
    /// Where Auto would send it now.
    pub auto: bool,
    /// A RunPod endpoint with no worker up: the job would wait for one to wake.
    pub cold: bool,
    /// Seconds until it would finish there; `None` before anything was measured.
    pub time_secs: Option<f64>,
    /// Micro-dollars; `None` for a pod (billed by its uptime).
    pub cost_micros: Option<u64>,
}

#[derive(Default)]
struct State {
    in_flight: HashMap<String, u32>,
    cancels: HashMap<String, watch::Sender<bool>>,
    rr_cursor: usize,
    /// (server id, workflow shape) → smoothed seconds per job.
    timings: HashMap<(String, String), f64>,
    inventories: HashMap<String, (Instant, BTreeMap<String, Vec<String>>)>,
    /// Server id → (what it was built from, when, the backend).
    backends: HashMap<String, (String, Instant, Backend)>,
    /// The dispatch loop.
    main: Option<tokio::task::AbortHandle>,
    /// One task per job run here, so `stop` can end them all.
    tasks: Vec<tokio::task::AbortHandle>,
}

struct Inner {
    /// This dispatcher's name in the lease table.
    holder: String,
    store: crate::store::Store,
    jobs: Jobs,
    servers: ServerList,
    health: Health,
    /// Spending caps: money is reserved before a job goes to a paid backend.
    costs: crate::costs::Costs,
    gallery: PathBuf,
    http: reqwest::Client,
    config: Mutex<RouterConfig>,
    state: Mutex<State>,
    wake: Arc<Notify>,
    updates: broadcast::Sender<JobUpdate>,
    /// Set by `shutdown`: the loop dispatches nothing more.
    stopping: AtomicBool,
    /// How many dispatch rounds and sends are under way (see [`Sending`]).
    sending: watch::Sender<u32>,
}

/// Held from the moment a job is recorded as dispatched until its server has accepted it (or the
/// send failed), so a shutdown never leaves a job half-sent.
struct Sending(watch::Sender<u32>);

impl Sending {
    fn new(count: &watch::Sender<u32>) -> Self {
        count.send_modify(|n| *n += 1);
        Self(count.clone())
    }
}

impl Drop for Sending {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// One job on one server: a fresh send (`sending` is `Some`) or a re-attach after a restart.
struct Attempt {
    job: Job,
    server: Server,
    workflow: serde_json::Value,
    /// Sent beside the prompt (a fresh send only).
    extra_data: Option<serde_json::Value>,
    prompt_id: String,
    shape: String,
    sending: Option<Sending>,
    /// The key money was reserved under for this attempt on a paid backend (settled or released when it ends).
    bill_key: Option<String>,
}

/// A handle to the running dispatcher. Cheap to clone; the task stops when every handle is dropped.
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

/// Seconds a finished job executed on its server, when it was seen starting.
fn execution_secs(job: &Job) -> Option<f64> {
    let (s, f) = (job.started_ms?, job.finished_ms?);
    (f >= s).then(|| (f - s) as f64 / 1000.0)
}

/// The running estimate of a server's time for a workflow after one more run. Pure.
fn smooth(previous: Option<f64>, secs: f64) -> f64 {
    match previous {
        Some(p) => 0.7 * p + 0.3 * secs,
        None => secs,
    }
}

/// Fold one more run into the estimates.
fn learn(timings: &mut HashMap<(String, String), f64>, key: (String, String), secs: f64) {
    let next = smooth(timings.get(&key).copied(), secs);
    timings.insert(key, next);
}

/// The cost ledger's key of one attempt of a job: `{job id}#{attempt}` (the attempt from its dispatch id), so a job
/// billed again on a retry is a second row; a restart finds the job by the part before `#`.
fn bill_key(job_id: &str, prompt_id: &str) -> String {
    format!("{job_id}#{}", &prompt_id[..prompt_id.len().min(8)])
}

/// A RunPod endpoint's GPU class (empty for other servers: priced at the highest known rate).
fn gpu_class(server: &Server) -> &str {
    server
        .runpod
        .as_ref()
        .map(|r| r.gpu_class.as_str())
        .unwrap_or_default()
}

fn capitalize_first(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// What a job is expected to cost on a RunPod endpoint of `gpu_class`: its measured run time (or
/// [`EXPECTED_CLOUD_SECS`]), a cold start ([`COLD_START_SECS`]) when no worker is up, and RunPod's idle timeout,
/// at the class's rate (the highest known rate when the class is unknown, so caps err on the safe side). Pure.
pub fn cloud_estimate_micros(gpu_class: &str, secs_per_job: Option<f64>, cold: bool) -> u64 {
    let (rate, _) = crate::costs::prices::serverless_rate_or_highest(gpu_class);
    cloud_estimate_at(rate, secs_per_job, cold)
}

/// [`cloud_estimate_micros`] at a given rate (micro-dollars per second), e.g. one refreshed from RunPod's
/// catalogue. Pure.
pub fn cloud_estimate_at(rate_per_sec: u64, secs_per_job: Option<f64>, cold: bool) -> u64 {
    let secs = secs_per_job.unwrap_or(EXPECTED_CLOUD_SECS);
    let cold_secs = if cold { COLD_START_SECS } else { 0.0 };
    crate::costs::prices::serverless_charge(
        rate_per_sec,
        (secs * 1000.0) as u64,
        (cold_secs * 1000.0) as u64,
        crate::costs::prices::DEFAULT_IDLE_TIMEOUT_MS,
    )
    .cost_micros
}

/// The "shape" of a workflow (its node classes), so timings of the same workflow with other prompts are shared.
pub fn workflow_shape(workflow: &serde_json::Value) -> String {
    let mut classes: Vec<&str> = workflow
        .as_object()
        .map(|o| {
            o.values()
                .filter_map(|n| n.get("class_type").and_then(|c| c.as_str()))
                .collect()
        })
        .unwrap_or_default();
    classes.sort_unstable();
    classes.join(",")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Dispatcher {
    /// Start dispatching: reconcile what was in flight, then run queued jobs.
    pub fn start(
        store: crate::store::Store,
        servers: ServerList,
        health: Health,
        gallery: PathBuf,
        config: RouterConfig,
    ) -> Self {
        let (updates, _) = broadcast::channel(1024);
        let inner = Arc::new(Inner {
            holder: format!("{}:{}", std::process::id(), uuid::Uuid::new_v4()),
            jobs: Jobs::new(store.clone()),
            costs: crate::costs::Costs::new(store.clone()),
            store,
            servers,
            health,
            gallery,
            http: crate::comfyui::http_client(),
            config: Mutex::new(config),
            state: Mutex::new(State::default()),
            wake: Arc::new(Notify::new()),
            updates,
            stopping: AtomicBool::new(false),
            sending: watch::channel(0).0,
        });
        let weak = Arc::downgrade(&inner);
        let main = tokio::spawn(async move {
            let mut leader = false;
            let mut renewed: Option<Instant> = None;
            loop {
                let Some(inner) = weak.upgrade() else { break };
                if inner.stopping.load(Ordering::SeqCst) {
                    break;
                }
                // Another process (the app or a CLI) may be dispatching: then this one only waits.
                // A held lease is renewed once a second, not on every round.
                let fresh = leader && renewed.is_some_and(|t| t.elapsed() < Duration::from_secs(1));
                let has_lease = fresh
                    || inner
                        .store
                        .lease(LEASE, &inner.holder, crate::now_ms(), LEASE_TTL_MS)
                        .await
                        .unwrap_or(false);
                if has_lease && !fresh {
                    renewed = Some(Instant::now());
                }
                if has_lease && !leader {
                    // Newly in charge: first pick up whatever the previous holder left in flight.
                    inner.reconcile().await;
                }
                leader = has_lease;
                if leader {
                    let _round = Sending::new(&inner.sending);
                    if let Err(e) = inner.dispatch_ready().await {
                        tracing::warn!(error = %e, "dispatch round failed");
                    }
                }
                let wake = inner.wake.clone();
                drop(inner);
                let notified = wake.notified();
                tokio::select! {
                    _ = notified => {}
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        });
        lock(&inner.state).main = Some(main.abort_handle());
        Self { inner }
    }

    /// Whether this dispatcher holds the dispatch lease (no other process is dispatching).
    pub async fn is_leader(&self) -> bool {
        self.inner
            .store
            .lease(LEASE, &self.inner.holder, crate::now_ms(), LEASE_TTL_MS)
            .await
            .unwrap_or(false)
    }

    /// Stop dispatching and hand the lease over. Jobs being sent are given a moment to reach their
    /// servers first; jobs already on a server are followed by whoever dispatches next.
    pub async fn shutdown(&self) {
        self.inner.stopping.store(true, Ordering::SeqCst);
        self.inner.wake.notify_one();
        let main = lock(&self.inner.state).main.clone();
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        if let Some(main) = &main {
            while !main.is_finished() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            main.abort();
        }
        let mut sending = self.inner.sending.subscribe();
        let _ = tokio::time::timeout_at(deadline.into(), sending.wait_for(|n| *n == 0)).await;
        let _ = self.inner.store.release(LEASE, &self.inner.holder).await;
    }

    /// Stop at once, recording nothing more (as if the process died): jobs stay as they are on disk.
    pub fn stop(&self) {
        let mut state = lock(&self.inner.state);
        for t in state.main.take().into_iter().chain(state.tasks.drain(..)) {
            t.abort();
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<JobUpdate> {
        self.inner.updates.subscribe()
    }

    pub fn config(&self) -> RouterConfig {
        *lock(&self.inner.config)
    }

    pub fn set_config(&self, config: RouterConfig) {
        *lock(&self.inner.config) = config;
        self.inner.wake.notify_one();
    }

    /// Queue a job (on disk before this returns) and wake the dispatcher.
    pub async fn submit(&self, job: NewJob) -> Result<Job, JobsError> {
        let job = self.inner.jobs.submit(job, crate::now_ms()).await?;
        let _ = self
            .inner
            .updates
            .send(JobUpdate::Changed { job: job.clone() });
        self.inner.wake.notify_one();
        Ok(job)
    }

    /// Deletes one of a job's saved images: its file in the gallery, then its entry in the job (with a note). Only a
    /// path the job recorded, and only where the gallery would have put it, is ever deleted.
    pub async fn delete_output(&self, job_id: &str, path: &str) -> Result<Job, JobsError> {
        let job = self.inner.jobs.get(job_id).await?;
        let no_such = || JobsError::NoSuchOutput {
            path: path.to_string(),
        };
        let output = job
            .outputs
            .iter()
            .find(|o| o.path == path && !path.is_empty())
            .ok_or_else(no_such)?;
        let file = crate::gallery::output_path(&self.inner.gallery, &job.id, &output.filename)
            .map_err(|_| no_such())?;
        if file != std::path::Path::new(path) {
            return Err(no_such());
        }
        match tokio::fs::remove_file(&file).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(JobsError::Delete {
                    path: path.to_string(),
                    reason: e.to_string(),
                })
            }
        }
        let job = self.inner.jobs.remove_output(job_id, path).await?;
        tracing::info!(job = %job.id, file = %output.filename, "output deleted from the gallery");
        self.inner.changed(&job);
        Ok(job)
    }

    /// Run a failed or cancelled job again, as a new job queued now (see [`crate::jobs::retry_of`]).
    pub async fn retry(&self, id: &str) -> Result<Job, JobsError> {
        let old = self.inner.jobs.get(id).await?;
        let workflow = self.inner.jobs.workflow(id).await?;
        let again = crate::jobs::NewJob {
            extra_data: self.inner.jobs.extra_data(id).await?,
            ..crate::jobs::retry_of(&old, workflow)?
        };
        self.submit(again).await
    }

    /// Cancel a job: a queued one at once; a running one is interrupted on its server.
    pub async fn cancel(&self, id: &str) -> Result<Job, JobsError> {
        let job = self.inner.jobs.get(id).await?;
        if job.state.is_final() {
            return Err(crate::jobs::InvalidTransition {
                from: job.state.as_str(),
                to: "cancelled",
            }
            .into());
        }
        if job.state == JobState::Queued {
            let job = self
                .inner
                .jobs
                .apply(id, JobEvent::Cancelled, crate::now_ms())
                .await?;
            let _ = self
                .inner
                .updates
                .send(JobUpdate::Changed { job: job.clone() });
            return Ok(job);
        }
        let local = lock(&self.inner.state)
            .cancels
            .get(&job.id)
            .map(|tx| tx.send(true).is_ok())
            .unwrap_or(false);
        if !local {
            // Running under another process (or none): stop it on its server ourselves.
            if let (Some(server_id), Some(prompt_id)) = (&job.server_id, &job.remote_id) {
                if let Ok(server) = self.inner.servers.find(server_id).await {
                    self.inner.backend_for(&server).await.stop(prompt_id).await;
                }
            }
            let job = self
                .inner
                .jobs
                .apply(id, JobEvent::Cancelled, crate::now_ms())
                .await?;
            self.inner.changed(&job);
            return Ok(job);
        }
        Ok(job)
    }

    /// Before Run: where a workflow would go now and what each server would take and cost. `time_secs` is the
    /// estimated finish (its queue, a cold start, its measured speed for this workflow), `None` when nothing is
    /// measured yet; `cost_micros` is what a RunPod endpoint would bill (an estimate), 0 locally (electricity is
    /// counted after the job) and at a LAN server's hourly rate, `None` for a pod (billed by its uptime).
    pub async fn estimates(&self, workflow: &serde_json::Value) -> Vec<Estimate> {
        let inner = &self.inner;
        let servers = inner.servers.list().await.unwrap_or_default();
        let shape = workflow_shape(workflow);
        let models = Workflow::from_value(workflow.clone())
            .map(|w| w.models())
            .unwrap_or_default();
        let mut folders: Vec<String> = models.iter().map(|m| m.folder.clone()).collect();
        folders.dedup();
        let cands = inner.candidates(&servers, &folders, &shape).await;
        let cfg = *lock(&inner.config);
        let needs = JobNeeds {
            models: models.clone(),
            backlog: 1,
            ..Default::default()
        };
        let cursor = lock(&inner.state).rr_cursor;
        let auto = match decide(&needs, &cands, &cfg, cursor).0 {
            Decision::Dispatch { server_id, .. } => Some(server_id),
            _ => None,
        };
        let prices = inner.costs.prices().await.unwrap_or_default();
        let table = inner.costs.price_table().await.unwrap_or_default();
        let online: Vec<&Candidate> = cands.iter().filter(|c| c.online).collect();
        let fallback = {
            let known: Vec<f64> = online.iter().filter_map(|c| c.secs_per_job).collect();
            (!known.is_empty()).then(|| known.iter().sum::<f64>() / known.len() as f64)
        };
        servers
            .iter()
            .filter_map(|s| {
                let c = cands.iter().find(|c| c.id == s.id)?;
                let secs = c.secs_per_job.or(fallback);
                let time_secs = secs.map(|per| crate::router::estimated_finish(c, per));
                let run_ms = secs.map(|x| (x * 1000.0) as u64);
                let cost_micros = match crate::costs::ledger::Backend::of_server(s) {
                    crate::costs::ledger::Backend::Serverless => Some(cloud_estimate_at(
                        table.rate_or_highest(gpu_class(s)).0,
                        secs,
                        c.warmup_secs > 0.0,
                    )),
                    crate::costs::ledger::Backend::Local => Some(0),
                    crate::costs::ledger::Backend::Lan => {
                        Some(prices.lan_job(&s.id, run_ms.unwrap_or(0)).cost_micros)
                    }
                    crate::costs::ledger::Backend::Pod => None,
                };
                Some(Estimate {
                    server_id: s.id.clone(),
                    name: s.name.clone(),
                    online: c.online,
                    lacks_models: !crate::router::missing_models(c, &models).is_empty(),
                    auto: auto.as_deref() == Some(s.id.as_str()),
                    cold: c.warmup_secs > 0.0,
                    time_secs,
                    cost_micros,
                })
            })
            .collect()
    }

    /// Wait until the job is finished (succeeded, failed or cancelled).
    pub async fn wait(&self, id: &str) -> Result<Job, JobsError> {
        let mut rx = self.subscribe();
        loop {
            let job = self.inner.jobs.get(id).await?;
            if job.state.is_final() {
                return Ok(job);
            }
            let _ = tokio::time::timeout(Duration::from_millis(250), async {
                while let Ok(u) = rx.recv().await {
                    if matches!(&u, JobUpdate::Changed { job } if job.id == id) {
                        break;
                    }
                }
            })
            .await;
        }
    }
}

impl Inner {
    fn changed(&self, job: &Job) {
        let _ = self.updates.send(JobUpdate::Changed { job: job.clone() });
    }

    async fn apply(&self, id: &str, event: JobEvent) -> Option<Job> {
        match self.jobs.apply(id, event, crate::now_ms()).await {
            Ok(job) => {
                self.changed(&job);
                Some(job)
            }
            Err(e) => {
                tracing::warn!(job = id, error = %e, "job update refused");
                None
            }
        }
    }

    /// A job no longer occupies its server's slot.
    fn finish_run(&self, server_id: &str, job_id: &str) {
        let mut state = lock(&self.state);
        if let Some(n) = state.in_flight.get_mut(server_id) {
            *n = n.saturating_sub(1);
        }
        state.cancels.remove(job_id);
    }

    /// Fail a job for good (no retry).
    async fn fail(&self, id: &str, message: String) {
        self.apply(
            id,
            JobEvent::Failed {
                message,
                retryable: false,
            },
        )
        .await;
    }

    /// The server's backend, reused across jobs (one WebSocket per server) while it is unchanged.
    async fn backend_for(&self, server: &Server) -> Backend {
        let built_from = format!(
            "{}|{:?}|{}|{:?}",
            server.url, server.auth, server.has_secret, server.runpod
        );
        if let Some((from, at, backend)) = lock(&self.state).backends.get(&server.id) {
            if *from == built_from && at.elapsed() < BACKEND_TTL {
                return backend.clone();
            }
        }
        let creds = self.servers.credentials(server).await;
        let backend = match server.kind {
            ServerKind::Comfyui => Backend::comfyui(ComfyClient::new(
                self.http.clone(),
                &server.url,
                creds.as_ref().ok(),
            )),
            ServerKind::RunpodServerless => {
                let endpoint = server.runpod.clone().unwrap_or_default();
                let client = match creds.map(|c| c.secret) {
                    Ok(Some(key)) => Ok(ServerlessClient::new(
                        self.http.clone(),
                        &self.servers.runpod_urls(),
                        &endpoint.endpoint_id,
                        key,
                    )),
                    Ok(None) => Err(format!("'{}' is a RunPod endpoint and no RunPod API key is set. Add it in Settings → RunPod account (or run 'comfyfleet runpod key set'), then retry the job.", server.name)),
                    Err(e) => Err(format!("Could not read the RunPod API key: {e}")),
                };
                Backend::runpod_serverless(client, endpoint)
            }
        };
        lock(&self.state).backends.insert(
            server.id.clone(),
            (built_from, Instant::now(), backend.clone()),
        );
        backend
    }

    /// Model files per folder on a server, cached; `None` when it cannot be listed.
    async fn inventory(
        &self,
        server: &Server,
        folders: &[String],
    ) -> Option<BTreeMap<String, Vec<String>>> {
        if let Some((at, inv)) = lock(&self.state).inventories.get(&server.id) {
            if at.elapsed() < INVENTORY_TTL && folders.iter().all(|f| inv.contains_key(f)) {
                return Some(inv.clone());
            }
        }
        let backend = self.backend_for(server).await;
        let mut inv = BTreeMap::new();
        for folder in folders {
            let files = tokio::time::timeout(
                Duration::from_millis(server.timeout_ms as u64),
                backend.models(folder),
            )
            .await
            .ok()?
            .ok()?;
            inv.insert(folder.clone(), files.unwrap_or_default());
        }
        lock(&self.state)
            .inventories
            .insert(server.id.clone(), (Instant::now(), inv.clone()));
        Some(inv)
    }

    async fn candidates(
        &self,
        servers: &[Server],
        needs_folders: &[String],
        shape: &str,
    ) -> Vec<Candidate> {
        let statuses = self.health.known_statuses(servers);
        let mut out = Vec::new();
        for s in servers {
            let st = statuses.iter().find(|x| x.server_id == s.id);
            let status = st.map(|x| x.status).unwrap_or(Status::Unknown);
            let online = matches!(status, Status::Connected | Status::Unknown);
            let models = if needs_folders.is_empty() || !online {
                None
            } else {
                self.inventory(s, needs_folders).await
            };
            let (in_flight, secs) = {
                let state = lock(&self.state);
                (
                    state.in_flight.get(&s.id).copied().unwrap_or(0),
                    state
                        .timings
                        .get(&(s.id.clone(), shape.to_string()))
                        .copied(),
                )
            };
            let queue = st
                .and_then(|x| x.queue)
                .map(|q| q.running + q.pending)
                .unwrap_or(0);
            // An endpoint with no worker up makes its next job wait for one: a warm backend is preferred.
            let cold = st.and_then(|x| x.workers).is_some_and(|w| !w.warm());
            out.push(Candidate {
                id: s.id.clone(),
                name: s.name.clone(),
                online,
                active: s.active,
                local: s.has_tag("local"),
                in_flight,
                queue_depth: queue.max(in_flight),
                models,
                secs_per_job: secs,
                warmup_secs: if cold { COLD_START_SECS } else { 0.0 },
            });
        }
        out
    }

    /// One round: route every ready job that can go somewhere now.
    async fn dispatch_ready(self: &Arc<Self>) -> Result<(), JobsError> {
        lock(&self.state).tasks.retain(|t| !t.is_finished());
        // The head of the queue is enough: a round dispatches at most a few jobs per server, and
        // reading the whole of a long backlog every round would make a burst quadratic.
        let ready = self.jobs.ready(crate::now_ms(), READY_WINDOW).await?;
        if ready.is_empty() {
            return Ok(());
        }
        let servers = self.servers.list().await.unwrap_or_default();
        let cfg = *lock(&self.config);
        let backlog = ready.len() as u32;
        // Jobs of this round that had to wait (local first counts them in the local queue).
        let mut waiting_ahead = 0u32;
        for (i, job) in ready.into_iter().enumerate() {
            let workflow = self.jobs.workflow(&job.id).await?;
            let parsed = Workflow::from_value(workflow.clone());
            let models = parsed.as_ref().map(|w| w.models()).unwrap_or_default();
            let mut folders: Vec<String> = models.iter().map(|m| m.folder.clone()).collect();
            folders.dedup();
            let shape = workflow_shape(&workflow);
            let cands = self.candidates(&servers, &folders, &shape).await;
            let needs = JobNeeds {
                models,
                pinned: job.target.clone(),
                avoid: job.failed_on.clone(),
                backlog: backlog - i as u32,
                waiting_ahead,
            };
            let cursor = lock(&self.state).rr_cursor;
            let (decision, next) = decide(&needs, &cands, &cfg, cursor);
            lock(&self.state).rr_cursor = next;
            let prompt_id = uuid::Uuid::new_v4().to_string();
            let (decision, bill_key) = self
                .afford(
                    &job, decision, &servers, &needs, &cands, &cfg, &shape, &prompt_id,
                )
                .await;
            match decision {
                Decision::Dispatch { server_id, reason } => {
                    let Some(server) = servers.iter().find(|s| s.id == server_id).cloned() else {
                        if let Some(key) = &bill_key {
                            let _ = self.costs.release(key).await;
                        }
                        continue;
                    };
                    let sending = Sending::new(&self.sending);
                    // Recorded before sending, so a crash mid-send is reconciled against the server.
                    let Some(job) = self
                        .apply(
                            &job.id,
                            JobEvent::Dispatched {
                                server_id: server.id.clone(),
                                remote_id: prompt_id.clone(),
                            },
                        )
                        .await
                    else {
                        if let Some(key) = &bill_key {
                            let _ = self.costs.release(key).await;
                        }
                        continue;
                    };
                    tracing::info!(job = %job.id, server = %server.name, %reason, "dispatched");
                    let extra_data = self.jobs.extra_data(&job.id).await.unwrap_or_default();
                    self.spawn_run(Attempt {
                        job,
                        server,
                        workflow,
                        extra_data,
                        prompt_id,
                        shape,
                        sending: Some(sending),
                        bill_key,
                    });
                }
                Decision::Wait { .. } => {
                    waiting_ahead += 1;
                    // When no server has a free slot, no later job can go anywhere either.
                    let any_free = cands
                        .iter()
                        .any(|c| c.online && c.in_flight < cfg.max_in_flight);
                    if !any_free {
                        break;
                    }
                }
                Decision::Refuse { reason } => {
                    self.apply(
                        &job.id,
                        JobEvent::Failed {
                            message: reason,
                            retryable: false,
                        },
                    )
                    .await;
                }
            }
        }
        Ok(())
    }

    /// Before a job goes to a backend paid per job (a RunPod endpoint), reserve its estimated cost against the
    /// spending caps, atomically with every other reservation. At a cap the job goes where it costs nothing (the
    /// router decides again without paid backends) or waits, and says why.
    #[allow(clippy::too_many_arguments)]
    async fn afford(
        &self,
        job: &Job,
        decision: Decision,
        servers: &[Server],
        needs: &JobNeeds,
        cands: &[Candidate],
        cfg: &RouterConfig,
        shape: &str,
        prompt_id: &str,
    ) -> (Decision, Option<String>) {
        let paid = |id: &str| {
            servers
                .iter()
                .any(|s| s.id == id && s.kind == ServerKind::RunpodServerless)
        };
        let Decision::Dispatch { server_id, .. } = &decision else {
            return (decision, None);
        };
        let Some(server) = servers
            .iter()
            .find(|s| &s.id == server_id)
            .filter(|s| paid(&s.id))
        else {
            return (decision, None);
        };
        let key = bill_key(&job.id, prompt_id);
        let estimate = self.estimate_micros(server, cands, shape).await;
        match self
            .costs
            .reserve(&key, &server.id, estimate, crate::now_ms())
            .await
        {
            Ok(r) => {
                if let Some(w) = r.warning {
                    let which = match w.which {
                        crate::costs::caps::CapWhich::Daily => "today's",
                        crate::costs::caps::CapWhich::Monthly => "this month's",
                    };
                    let message = format!("{}% of {which} cloud spending limit is used", w.percent);
                    self.note(&job.id, &message).await;
                    let _ = self.updates.send(JobUpdate::Notice {
                        job_id: job.id.clone(),
                        title: "Cloud spending".into(),
                        message: format!(
                            "{}. At the limit, jobs run on your local GPU or wait.",
                            capitalize_first(&message)
                        ),
                    });
                }
                (decision, Some(key))
            }
            Err(crate::costs::CostsError::CapReached { message, .. }) => {
                // What costs nothing: the router decides again without paid backends.
                let free: Vec<Candidate> = cands.iter().filter(|c| !paid(&c.id)).cloned().collect();
                let (again, _) = decide(needs, &free, cfg, lock(&self.state).rr_cursor);
                if job.notes.last() != Some(&message) {
                    self.note(&job.id, &message).await;
                }
                match again {
                    d @ Decision::Dispatch { .. } => (d, None),
                    _ => (Decision::Wait { reason: message }, None),
                }
            }
            Err(e) => {
                tracing::warn!(job = %job.id, error = %e, "could not reserve the job's cost; it waits");
                (
                    Decision::Wait {
                        reason: e.to_string(),
                    },
                    None,
                )
            }
        }
    }

    async fn estimate_micros(&self, server: &Server, cands: &[Candidate], shape: &str) -> u64 {
        let secs = lock(&self.state)
            .timings
            .get(&(server.id.clone(), shape.to_string()))
            .copied();
        let cold = cands
            .iter()
            .find(|c| c.id == server.id)
            .is_some_and(|c| c.warmup_secs > 0.0);
        cloud_estimate_at(self.rate_of(server).await, secs, cold)
    }

    /// A RunPod endpoint's price per second: RunPod's catalogue when it was read, else the shipped price of its GPU
    /// class, else the highest known (so caps err on the safe side).
    async fn rate_of(&self, server: &Server) -> u64 {
        let table = self.costs.price_table().await.unwrap_or_default();
        table.rate_or_highest(gpu_class(server)).0
    }

    /// When an attempt on a paid backend ends: its billed cost goes to the ledger (RunPod's wait and run times), or
    /// its reservation is dropped when it never ran there.
    async fn settle(&self, key: &str, server: &Server, job_id: &str, succeeded: bool) {
        let job = self.jobs.get(job_id).await.ok();
        let billed = job.as_ref().and_then(|j| j.execution_ms);
        let result = match billed {
            Some(exec) => {
                let rate = self.rate_of(server).await;
                let wait = job.as_ref().and_then(|j| j.delay_ms).unwrap_or(0).max(0) as u64;
                // RunPod's delay includes a cold start when a worker had to wake (billed); a warm queue wait is not.
                let cold = if job
                    .as_ref()
                    .is_some_and(|j| j.notes.iter().any(|n| n.starts_with(WAKING_NOTE)))
                {
                    wait
                } else {
                    0
                };
                let charge = crate::costs::prices::serverless_charge(
                    rate,
                    exec.max(0) as u64,
                    cold,
                    crate::costs::prices::DEFAULT_IDLE_TIMEOUT_MS,
                );
                let mut entry = crate::costs::ledger::LedgerEntry::from_charge(
                    key,
                    server.id.clone(),
                    crate::costs::ledger::Backend::Serverless,
                    crate::now_ms(),
                    charge,
                );
                entry.ok = succeeded;
                entry.duration_ms = (wait + exec.max(0) as u64).max(entry.duration_ms);
                entry.failovers = job.as_ref().map_or(0, |j| j.failed_on.len() as u32);
                self.costs.settle(entry).await.map(|_| ())
            }
            None => self.costs.release(key).await.map(|_| ()),
        };
        if let Err(e) = result {
            tracing::warn!(job = %job_id, error = %e, "could not record the job's cost");
        }
    }

    /// A job that ran where nothing is billed per job: the local GPU (its electricity, and what it saved against
    /// the reference cloud GPU), a LAN server (its hourly rate, if set) or a pod (paid by its uptime, shown per job).
    async fn record_free(
        &self,
        kind: crate::costs::ledger::Backend,
        server: &Server,
        job_id: &str,
        prompt_id: &str,
        ok: bool,
        mean_mw: Option<u64>,
    ) {
        use crate::costs::ledger::{Backend, LedgerEntry};
        let Ok(job) = self.jobs.get(job_id).await else {
            return;
        };
        // Called as the job ends (before its finish is recorded): from when it started until now.
        let now = crate::now_ms();
        let ms = job
            .started_ms
            .map_or(0, |s| now.saturating_sub(s).max(0) as u64);
        let prices = self.costs.prices().await.unwrap_or_default();
        let (mut charge, saved) = match kind {
            Backend::Local => prices.local_job(ms, mean_mw.unwrap_or(0)),
            Backend::Lan => (prices.lan_job(&server.id, ms), 0),
            // A pod's cost is its uptime, recorded apart; its jobs are listed at no extra cost.
            Backend::Pod => (
                crate::costs::prices::hourly_charge(ms, 0, "the pod (billed by its uptime)"),
                0,
            ),
            Backend::Serverless => return,
        };
        if kind == Backend::Local && mean_mw.is_none() {
            charge.how = format!(
                "{}; no power reading (no NVIDIA GPU with NVML), so no electricity counted",
                charge.how
            );
        }
        let key = bill_key(job_id, prompt_id);
        let mut entry =
            LedgerEntry::from_charge(key, server.id.clone(), kind, crate::now_ms(), charge);
        entry.saved_micros = saved;
        entry.ok = ok;
        entry.duration_ms = ms;
        entry.failovers = job.failed_on.len() as u32;
        if let Err(e) = self.costs.settle(entry).await {
            tracing::warn!(job = %job_id, error = %e, "could not record the job in the cost ledger");
        }
    }

    /// Add a line to a job's notes and tell the UI.
    async fn note(&self, job_id: &str, text: &str) {
        if let Ok(job) = self.jobs.add_note(job_id, text).await {
            self.changed(&job);
        }
    }

    /// Count the attempt as in flight on its server, make its job cancellable, and run it.
    fn spawn_run(self: &Arc<Self>, attempt: Attempt) {
        let (cancel_tx, cancel) = watch::channel(false);
        let mut state = lock(&self.state);
        *state
            .in_flight
            .entry(attempt.server.id.clone())
            .or_default() += 1;
        state.cancels.insert(attempt.job.id.clone(), cancel_tx);
        let me = self.clone();
        let task = tokio::spawn(async move { me.run(attempt, cancel).await });
        state.tasks.push(task.abort_handle());
    }

    /// Run (or, after a restart, re-attach to) one job on one server, then record how it ended; `cancel` turns true
    /// when the job is cancelled.
    async fn run(self: Arc<Self>, attempt: Attempt, cancel: watch::Receiver<bool>) {
        let Attempt {
            job,
            server,
            workflow,
            extra_data,
            prompt_id,
            shape,
            sending,
            bill_key,
        } = attempt;
        let submit = sending.is_some();
        let backend = self.backend_for(&server).await;
        // A local job's electricity: the GPU's draw is sampled while it runs.
        let kind = crate::costs::ledger::Backend::of_server(&server);
        let power = (kind == crate::costs::ledger::Backend::Local).then(|| {
            crate::costs::power::PowerSampler::start(
                POWER_SAMPLE_EVERY,
                crate::costs::power::nvml_reader(),
            )
        });
        let timeout = Duration::from_millis(job.timeout_ms.max(1000) as u64);
        let started = Instant::now();
        let job_id = job.id.clone();
        // The first progress write waits half a second: short jobs go straight to their result.
        let mut last_progress = Instant::now();
        let (ev_tx, mut ev_rx) = tokio::sync::mpsc::unbounded_channel::<RunEvent>();
        let events = {
            let me = self.clone();
            let job_id = job_id.clone();
            let waking_note = format!(
                "{WAKING_NOTE} on '{}' (a cold start; the job starts when it is up)",
                server.name
            );
            tokio::spawn(async move {
                while let Some(ev) = ev_rx.recv().await {
                    match ev {
                        RunEvent::Started => {
                            me.apply(&job_id, JobEvent::Started).await;
                        }
                        RunEvent::Progress(p) => {
                            let _ = me.updates.send(JobUpdate::Progress {
                                job_id: job_id.clone(),
                                progress: p,
                            });
                            // Success records 1.0 itself.
                            if last_progress.elapsed() > Duration::from_millis(500) && p < 1.0 {
                                last_progress = Instant::now();
                                let _ = me.jobs.set_progress(&job_id, p).await;
                            }
                        }
                        RunEvent::Preview { mime, bytes } => {
                            use base64::Engine;
                            let data_base64 =
                                base64::engine::general_purpose::STANDARD.encode(bytes);
                            let _ = me.updates.send(JobUpdate::Preview {
                                job_id: job_id.clone(),
                                mime: mime.into(),
                                data_base64,
                            });
                        }
                        RunEvent::Assigned { remote_id } => {
                            if let Err(e) = me.jobs.set_remote_id(&job_id, &remote_id).await {
                                tracing::warn!(job = %job_id, error = %e, "could not record the remote id");
                            }
                        }
                        RunEvent::Waking => {
                            if let Ok(job) = me.jobs.add_note(&job_id, &waking_note).await {
                                me.changed(&job);
                            }
                        }
                        RunEvent::CloudTimings {
                            delay_ms,
                            execution_ms,
                        } => {
                            if let Ok(job) = me
                                .jobs
                                .set_cloud_timings(&job_id, delay_ms, execution_ms)
                                .await
                            {
                                me.changed(&job);
                            }
                        }
                        RunEvent::Accepted { .. } | RunEvent::SocketLost => {}
                    }
                }
            })
        };
        let outcome = if submit {
            let mut sending = sending;
            backend
                .run(
                    workflow,
                    extra_data,
                    &prompt_id,
                    timeout,
                    cancel,
                    move |e| {
                        if matches!(e, RunEvent::Accepted { .. }) {
                            sending.take(); // on the server now: a shutdown no longer needs to wait
                        }
                        let _ = ev_tx.send(e);
                    },
                )
                .await
        } else {
            backend
                .attach(&prompt_id, timeout, cancel, move |e| {
                    let _ = ev_tx.send(e);
                })
                .await
        };
        // Outputs come home while the last events are recorded.
        let saved = match &outcome {
            Ok(RunOutcome::Succeeded { outputs }) => Some(
                backend
                    .save_outputs(&self.gallery, &job_id, outputs.clone())
                    .await,
            ),
            _ => None,
        };
        let _ = events.await;
        self.finish_run(&server.id, &job_id);
        let mean_mw = match power {
            Some(p) => p.finish().await,
            None => None,
        };
        let ok =
            matches!(&outcome, Ok(RunOutcome::Succeeded { .. })) && matches!(&saved, Some(Ok(_)));
        let ran = matches!(
            &outcome,
            Ok(RunOutcome::Succeeded { .. }) | Ok(RunOutcome::Failed { .. })
        );
        match &bill_key {
            Some(key) => self.settle(key, &server, &job_id, ok).await,
            None if ran => {
                self.record_free(kind, &server, &job_id, &prompt_id, ok, mean_mw)
                    .await
            }
            None => {}
        }
        match outcome {
            Ok(RunOutcome::Succeeded { .. }) => {
                match saved.unwrap_or_else(|| Ok(Vec::new())) {
                    Ok(saved) => match self.jobs.succeed(&job_id, saved, crate::now_ms()).await {
                        Ok(job) => {
                            // Execution time on the server when it was seen starting, else all of it.
                            let secs = execution_secs(&job)
                                .unwrap_or_else(|| started.elapsed().as_secs_f64());
                            learn(
                                &mut lock(&self.state).timings,
                                (server.id.clone(), shape),
                                secs,
                            );
                            self.changed(&job)
                        }
                        Err(e) => tracing::warn!(job = %job_id, error = %e, "job update refused"),
                    },
                    Err(message) => {
                        self.fail(&job_id, message).await;
                    }
                }
            }
            Ok(RunOutcome::Failed { message }) => {
                self.fail(&job_id, message).await;
            }
            Ok(RunOutcome::Interrupted) | Ok(RunOutcome::Cancelled) => {
                self.apply(&job_id, JobEvent::Cancelled).await;
            }
            Ok(RunOutcome::TimedOut) => {
                let message = format!("The job did not finish within {} s on '{}' and was stopped. Raise the job timeout for long workflows.", timeout.as_secs(), server.name);
                self.fail(&job_id, message).await;
            }
            Ok(RunOutcome::Lost { reason }) => {
                // Re-attached after a restart to a job that never started: the server is up but does
                // not know it, so the send never landed (or the server restarted before running it).
                // That is not the server's fault; anything else moves the job elsewhere.
                let never_received = !submit && job.state == JobState::Dispatched;
                let note = if never_received {
                    format!(
                        "'{}' never received the job (ComfyFleet stopped while sending it); queued again",
                        server.name
                    )
                } else {
                    format!(
                        "'{}' stopped answering ({reason}); the job moves to another server",
                        server.name
                    )
                };
                if never_received {
                    tracing::info!(job = %job_id, server = %server.name, "{note}");
                } else {
                    tracing::warn!(job = %job_id, server = %server.name, "{note}");
                }
                self.apply(
                    &job_id,
                    JobEvent::Requeued {
                        reason: note,
                        avoid_server: !never_received,
                    },
                )
                .await;
            }
            Err(SubmitError::Invalid { message }) => {
                self.apply(
                    &job_id,
                    JobEvent::Failed {
                        message: format!("'{}' refused the workflow:\n{message}", server.name),
                        retryable: false,
                    },
                )
                .await;
            }
            Err(SubmitError::Backend { message, retryable }) => {
                let message = format!("'{}' did not take the job: {message}", server.name);
                self.apply(&job_id, JobEvent::Failed { message, retryable })
                    .await;
            }
            Err(SubmitError::Call(e)) => {
                let message = format!("Could not send the job to '{}': {e}", server.name);
                self.apply(
                    &job_id,
                    JobEvent::Failed {
                        message,
                        retryable: true,
                    },
                )
                .await;
            }
        }
        self.wake.notify_one();
    }

    /// The fastest policy's estimates, rebuilt from the jobs that finished before this start.
    async fn learn_timings(&self) {
        let Ok(recent) = self.jobs.recent_successes(TIMINGS_FROM_JOBS).await else {
            return;
        };
        let mut timings: HashMap<(String, String), f64> = HashMap::new();
        // Oldest first, so the newest weigh the most.
        for (job, workflow) in recent.into_iter().rev() {
            let (Some(server_id), Some(secs)) = (job.server_id.clone(), execution_secs(&job))
            else {
                continue;
            };
            learn(&mut timings, (server_id, workflow_shape(&workflow)), secs);
        }
        let mut state = lock(&self.state);
        for (key, secs) in timings {
            state.timings.entry(key).or_insert(secs);
        }
    }

    /// After a restart: every job that was dispatched or running is checked against its server.
    async fn reconcile(self: &Arc<Self>) {
        self.learn_timings().await;
        let Ok(in_flight) = self
            .jobs
            .list(&[JobState::Dispatched, JobState::Running], 100_000)
            .await
        else {
            return;
        };
        let servers = self.servers.list().await.unwrap_or_default();
        // Money reserved by the previous holder: kept for the jobs still in flight (settled when they end), released
        // for the others (they ended, or never reached their paid backend).
        let mut reserved: HashMap<String, String> = self
            .costs
            .reservations()
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|r| {
                let job = r.job_id.split('#').next().unwrap_or_default().to_string();
                (job, r.job_id)
            })
            .collect();
        let mut keep: HashMap<String, String> = HashMap::new();
        for job in &in_flight {
            if let Some(key) = reserved.remove(&job.id) {
                keep.insert(job.id.clone(), key);
            }
        }
        for key in reserved.into_values() {
            if let Err(e) = self.costs.release(&key).await {
                tracing::warn!(error = %e, "could not release a stale reservation");
            }
        }
        for job in in_flight {
            let bill_key = keep.remove(&job.id);
            let (Some(server_id), Some(prompt_id)) = (job.server_id.clone(), job.remote_id.clone())
            else {
                self.apply(
                    &job.id,
                    JobEvent::Requeued {
                        reason: "ComfyFleet restarted before the job was sent; queued again".into(),
                        avoid_server: false,
                    },
                )
                .await;
                if let Some(key) = &bill_key {
                    let _ = self.costs.release(key).await;
                }
                continue;
            };
            let Some(server) = servers.iter().find(|s| s.id == server_id).cloned() else {
                self.apply(
                    &job.id,
                    JobEvent::Requeued {
                        reason: "its server was removed; queued again".into(),
                        avoid_server: false,
                    },
                )
                .await;
                if let Some(key) = &bill_key {
                    let _ = self.costs.release(key).await;
                }
                continue;
            };
            tracing::info!(job = %job.id, server = %server.name, "reconciling an in-flight job");
            let workflow = self.jobs.workflow(&job.id).await.unwrap_or_default();
            let shape = workflow_shape(&workflow);
            self.spawn_run(Attempt {
                job,
                server,
                workflow,
                extra_data: None,
                prompt_id,
                shape,
                sending: None,
                bill_key,
            });
        }
    }
}
