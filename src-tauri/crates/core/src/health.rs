//! Probing servers (in parallel, with timeouts), their live status, a TTL cache, change events and auto-switch.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::join_all;
use serde::Serialize;
use tokio::sync::broadcast;

use crate::comfyui::{ComfyClient, ComfyError, QueueCounts, SystemStats};
use crate::runpod::client::{EndpointHealth, RunpodError, ServerlessClient};
use crate::runpod::RunpodUrls;
use crate::secrets::Secret;
use crate::servers::{Credentials, Server, ServerInput, ServerKind, ServerList, ServersError};
use crate::settings::SettingsStore;

/// Results younger than this are served from the cache unless a fresh test is asked for.
pub const CACHE_TTL: Duration = Duration::from_secs(30);
/// How often the background monitor probes every server.
pub const MONITOR_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default, Hash)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not tested yet.
    #[default]
    Unknown,
    Connected,
    Unreachable,
    Timeout,
    AuthFailed,
    NotComfyui,
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Unknown => "unknown",
            Status::Connected => "connected",
            Status::Unreachable => "unreachable",
            Status::Timeout => "timeout",
            Status::AuthFailed => "auth_failed",
            Status::NotComfyui => "not_comfyui",
            Status::Error => "error",
        }
    }
    pub fn is_online(self) -> bool {
        self == Status::Connected
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Device {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub vram_total: u64,
    pub vram_free: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct QueueInfo {
    pub running: u32,
    pub pending: u32,
}

/// A RunPod endpoint's workers, as its `/health` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Workers {
    pub idle: u32,
    pub running: u32,
}

impl Workers {
    /// A worker is up: a job starts without waiting for one to wake.
    pub fn warm(&self) -> bool {
        self.idle + self.running > 0
    }
}

/// A server's live status as the UI and CLI show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct ServerStatus {
    pub server_id: String,
    pub status: Status,
    pub latency_ms: Option<u32>,
    pub comfyui_version: Option<String>,
    pub python_version: Option<String>,
    pub pytorch_version: Option<String>,
    pub devices: Vec<Device>,
    pub queue: Option<QueueInfo>,
    /// RunPod endpoints: their workers (none up = the next job waits for a cold start).
    pub workers: Option<Workers>,
    pub last_connected_ms: Option<i64>,
    pub checked_at_ms: i64,
    /// What went wrong and what to do; `None` when connected.
    pub error: Option<String>,
}

impl ServerStatus {
    pub fn unknown(server: &Server) -> Self {
        ServerStatus {
            server_id: server.id.clone(),
            status: Status::Unknown,
            latency_ms: None,
            comfyui_version: None,
            python_version: None,
            pytorch_version: None,
            devices: vec![],
            queue: None,
            workers: None,
            last_connected_ms: server.last_connected_ms,
            checked_at_ms: 0,
            error: None,
        }
    }
}

/// What a probe saw, before classification.
pub type ProbeOutcome = Result<(SystemStats, QueueCounts), ComfyError>;

/// Turn what a probe saw into a status with a message that says what to do. Pure.
pub fn classify(
    server: &Server,
    outcome: ProbeOutcome,
    latency_ms: u32,
    now_ms: i64,
) -> ServerStatus {
    let mut st = ServerStatus::unknown(server);
    st.checked_at_ms = now_ms;
    let name = &server.name;
    let url = &server.url;
    let secs = format_secs(server.timeout_ms);
    match outcome {
        Ok((stats, queue)) => {
            st.status = Status::Connected;
            st.latency_ms = Some(latency_ms);
            st.comfyui_version = stats.system.comfyui_version;
            st.python_version = stats.system.python_version;
            st.pytorch_version = stats.system.pytorch_version;
            st.devices = stats
                .devices
                .into_iter()
                .map(|d| Device {
                    name: d.name,
                    kind: d.kind,
                    vram_total: d.vram_total,
                    vram_free: d.vram_free,
                })
                .collect();
            st.queue = Some(QueueInfo {
                running: queue.running,
                pending: queue.pending,
            });
            st.last_connected_ms = Some(now_ms);
        }
        Err(e) => {
            let (status, message) = match e {
                ComfyError::Connect(detail) if crate::servers::address::is_loopback(url) => (Status::Unreachable, format!(
                    "Could not connect to '{name}' at {url} ({detail}): ComfyUI is not running on this computer at that port. Start it (the ComfyUI ComfyFleet installed starts from the Install page), or check the port.")),
                ComfyError::Connect(detail) => (Status::Unreachable, format!(
                    "Could not connect to '{name}' at {url} ({detail}). Check that ComfyUI is running there (start it with --listen to accept connections from other machines), that the port is right, and that no firewall blocks it.")),
                ComfyError::Timeout => (Status::Timeout, format!(
                    "'{name}' did not answer within {secs}. The server may be overloaded or stuck, or a firewall drops the connection. Check the machine, or raise the timeout in Edit > Advanced if it is just slow.")),
                ComfyError::Unauthorized { credentials_sent: false, .. } => (Status::AuthFailed, format!(
                    "'{name}' requires authentication. Add its credentials in Servers > Edit (for ComfyUI-Login, use the token it prints at startup).")),
                ComfyError::Unauthorized { credentials_sent: true, .. } => (Status::AuthFailed, format!(
                    "'{name}' refused the credentials (401). Update them in Servers > Edit.")),
                ComfyError::Forbidden => (Status::Error, format!(
                    "'{name}' refused the request (403 Forbidden). A proxy or ComfyUI's --enable-cors-header origin setting blocks ComfyFleet; allow it there.")),
                ComfyError::Redirect { location } => (Status::Error, format!(
                    "'{name}' redirects to {location}. Use that address as the server URL.")),
                ComfyError::Http { status: 404, path, .. } => (Status::NotComfyui, format!(
                    "{url} answered, but has no {path}: it is not ComfyUI (or a very old version). Check the URL and port.")),
                ComfyError::Http { status, path, .. } => (Status::Error, format!(
                    "'{name}' answered HTTP {status} for {path}. The server has a problem: check the ComfyUI console or its log, then test again.")),
                ComfyError::TooLarge { path, limit } => (Status::NotComfyui, format!(
                    "{url} sent more than {} for {path}, which ComfyUI never does. Check the URL and port — this is probably not a ComfyUI server.", format_bytes(limit))),
                ComfyError::NotComfy { reason, .. } => (Status::NotComfyui, format!(
                    "{url} answered, but not like ComfyUI ({reason}). Check the URL and port — is this the ComfyUI address?")),
                ComfyError::Transport(detail) => (Status::Error, format!(
                    "The connection to '{name}' failed ({detail}). Test again; if it keeps failing, check the network and the server.")),
            };
            st.status = status;
            st.error = Some(message);
        }
    }
    st
}

fn format_secs(ms: u32) -> String {
    if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

fn format_bytes(n: usize) -> String {
    format!("{} MB", n / (1024 * 1024))
}

/// Probe one server: `/system_stats` and `/queue` at once, the whole bounded by the server's timeout.
pub async fn probe(
    http: &reqwest::Client,
    server: &Server,
    creds: Option<&Credentials>,
) -> ServerStatus {
    let client = ComfyClient::new(http.clone(), &server.url, creds);
    let timeout = Duration::from_millis(server.timeout_ms as u64);
    let deadline = Instant::now() + timeout;
    let once = || async {
        let start = Instant::now();
        let stats = async {
            let s = client.system_stats().await;
            (s, start.elapsed())
        };
        let (stats, queue) = tokio::join!(stats, client.queue());
        let (stats, stats_took) = stats;
        (stats.and_then(|s| queue.map(|q| (s, q))), stats_took)
    };
    let work = async {
        let first = once().await;
        // A kept-alive connection that the server closed (it restarted or died) fails mid-request;
        // one fresh attempt tells a dead server (refused) from a passing hiccup.
        if matches!(first.0, Err(ComfyError::Transport(_))) {
            once().await
        } else {
            first
        }
    };
    let (outcome, took) = match tokio::time::timeout_at(deadline.into(), work).await {
        Ok((outcome, took)) => (outcome, took),
        Err(_) => (Err(ComfyError::Timeout), timeout),
    };
    classify(
        server,
        outcome,
        took.as_millis().min(u32::MAX as u128) as u32,
        crate::now_ms(),
    )
}

/// What a RunPod endpoint's `/health` answer means for the user. Pure.
pub fn classify_endpoint(
    server: &Server,
    outcome: Result<EndpointHealth, RunpodError>,
    latency_ms: u32,
    now_ms: i64,
) -> ServerStatus {
    let mut st = ServerStatus::unknown(server);
    st.checked_at_ms = now_ms;
    let name = &server.name;
    match outcome {
        Ok(h) => {
            st.status = Status::Connected;
            st.latency_ms = Some(latency_ms);
            st.queue = Some(QueueInfo {
                running: h.jobs_in_progress,
                pending: h.jobs_in_queue,
            });
            st.workers = Some(Workers {
                idle: h.workers_idle,
                running: h.workers_running,
            });
            st.last_connected_ms = Some(now_ms);
        }
        Err(e) => {
            let status = match &e {
                RunpodError::Refused(_) => Status::AuthFailed,
                RunpodError::Network(_) => Status::Unreachable,
                _ => Status::Error,
            };
            st.status = status;
            st.error = Some(format!("'{name}': {e}"));
        }
    }
    st
}

/// Probe a RunPod endpoint: its `/health`, with the account key, bounded by the server's timeout.
pub async fn probe_endpoint(
    http: &reqwest::Client,
    server: &Server,
    key: Option<&Secret>,
    urls: &RunpodUrls,
) -> ServerStatus {
    let endpoint = server
        .runpod
        .as_ref()
        .map(|r| r.endpoint_id.as_str())
        .unwrap_or_default();
    let Some(key) = key else {
        let mut st = ServerStatus::unknown(server);
        st.checked_at_ms = crate::now_ms();
        st.status = Status::AuthFailed;
        st.error = Some(format!(
            "'{}' is a RunPod endpoint and no RunPod API key is set. Add it in Settings → RunPod account (or run 'comfyfleet runpod key set').",
            server.name
        ));
        return st;
    };
    let client = ServerlessClient::new(http.clone(), urls, endpoint, key.clone());
    let timeout = Duration::from_millis(server.timeout_ms as u64);
    let start = Instant::now();
    let outcome = match tokio::time::timeout(timeout, client.health()).await {
        Ok(r) => r,
        Err(_) => {
            let mut st = ServerStatus::unknown(server);
            st.checked_at_ms = crate::now_ms();
            st.status = Status::Timeout;
            st.error = Some(format!(
                "RunPod did not answer for '{}' within {}. Check the network connection, or raise the timeout in Edit > Advanced.",
                server.name,
                format_secs(server.timeout_ms)
            ));
            return st;
        }
    };
    let took = start.elapsed().as_millis().min(u32::MAX as u128) as u32;
    classify_endpoint(server, outcome, took, crate::now_ms())
}

/// Probe any kind of server with its credentials.
pub async fn probe_any(
    http: &reqwest::Client,
    server: &Server,
    creds: &Credentials,
    urls: &RunpodUrls,
) -> ServerStatus {
    match server.kind {
        ServerKind::Comfyui => probe(http, server, Some(creds)).await,
        ServerKind::RunpodServerless => {
            probe_endpoint(http, server, creds.secret.as_ref(), urls).await
        }
    }
}

/// A status change worth telling the user about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct StatusChange {
    pub server_id: String,
    pub name: String,
    pub previous: Status,
    pub current: ServerStatus,
    /// True when the server went offline or came back.
    pub availability_changed: bool,
}

/// The active server changed without the user asking (auto-switch), or could not be changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct ActiveChange {
    pub server_id: Option<String>,
    pub name: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthEvent {
    Status(StatusChange),
    Active(ActiveChange),
}

/// Whether a new result differs from the last one in anything the user sees. Pure.
pub fn visible_change(prev: Option<&ServerStatus>, next: &ServerStatus) -> bool {
    match prev {
        None => true,
        Some(p) => {
            p.status != next.status
                || p.queue != next.queue
                || p.devices != next.devices
                || p.comfyui_version != next.comfyui_version
                || p.error != next.error
        }
    }
}

/// The server auto-switch should make active when the active one fails: the next healthy server
/// after it in list order (wrapping around). Pure.
pub fn next_active<'a>(
    servers: &'a [Server],
    failed_id: &str,
    statuses: &HashMap<String, Status>,
) -> Option<&'a Server> {
    let start = servers.iter().position(|s| s.id == failed_id)?;
    (1..servers.len())
        .map(|i| &servers[(start + i) % servers.len()])
        .find(|s| statuses.get(&s.id).copied() == Some(Status::Connected))
}

struct CacheEntry {
    at: Instant,
    status: ServerStatus,
}

/// Live status of every server: tests, the cache, and change events.
#[derive(Clone)]
pub struct Health {
    servers: ServerList,
    http: reqwest::Client,
    cache: Arc<Mutex<HashMap<String, CacheEntry>>>,
    events: broadcast::Sender<HealthEvent>,
    ttl: Duration,
}

impl Health {
    pub fn new(servers: ServerList) -> Self {
        let (events, _) = broadcast::channel(256);
        Self {
            servers,
            http: crate::comfyui::http_client(),
            cache: Arc::new(Mutex::new(HashMap::new())),
            events,
            ttl: CACHE_TTL,
        }
    }

    /// Use a different cache lifetime (tests).
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Subscribe to status and active-server changes.
    pub fn subscribe(&self) -> broadcast::Receiver<HealthEvent> {
        self.events.subscribe()
    }

    fn cached(&self, id: &str) -> Option<ServerStatus> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(id)
            .filter(|e| e.at.elapsed() < self.ttl)
            .map(|e| e.status.clone())
    }

    /// The last known status of every server (no probing), in list order.
    pub async fn statuses(&self) -> Result<Vec<ServerStatus>, ServersError> {
        let servers = self.servers.list().await?;
        Ok(self.known_statuses(&servers))
    }

    /// The last known status of each of `servers` (no probing, no database).
    pub fn known_statuses(&self, servers: &[Server]) -> Vec<ServerStatus> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        servers
            .iter()
            .map(|s| {
                cache
                    .get(&s.id)
                    .map(|e| e.status.clone())
                    .unwrap_or_else(|| ServerStatus::unknown(s))
            })
            .collect()
    }

    async fn record(&self, server: &Server, status: ServerStatus) {
        let prev = {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            let prev = cache.get(&server.id).map(|e| e.status.clone());
            cache.insert(
                server.id.clone(),
                CacheEntry {
                    at: Instant::now(),
                    status: status.clone(),
                },
            );
            prev
        };
        if status.status == Status::Connected {
            if let Err(e) = self
                .servers
                .record_connected(&server.id, status.checked_at_ms)
                .await
            {
                tracing::warn!(error = %e, "could not record the last connection time");
            }
        }
        if visible_change(prev.as_ref(), &status) {
            let previous = prev.map(|p| p.status).unwrap_or_default();
            if previous.is_online() != status.status.is_online() {
                tracing::info!(server = %server.name, from = previous.as_str(), to = status.status.as_str(), "server status changed");
            }
            let _ = self.events.send(HealthEvent::Status(StatusChange {
                server_id: server.id.clone(),
                name: server.name.clone(),
                previous,
                availability_changed: previous != Status::Unknown
                    && previous.is_online() != status.status.is_online(),
                current: status,
            }));
        }
    }

    async fn probe_and_record(&self, server: &Server) -> ServerStatus {
        let status = match self.servers.credentials(server).await {
            Ok(creds) => probe_any(&self.http, server, &creds, &self.servers.runpod_urls()).await,
            Err(e) => {
                let mut st = ServerStatus::unknown(server);
                st.status = Status::Error;
                st.checked_at_ms = crate::now_ms();
                st.error = Some(format!(
                    "Could not read the credentials of '{}': {e}",
                    server.name
                ));
                st
            }
        };
        self.record(server, status.clone()).await;
        status
    }

    /// Test one server (by id or name); served from the cache when fresh unless `fresh`.
    pub async fn test(&self, query: &str, fresh: bool) -> Result<ServerStatus, ServersError> {
        let server = self.servers.find(query).await?;
        if !fresh {
            if let Some(s) = self.cached(&server.id) {
                return Ok(s);
            }
        }
        Ok(self.probe_and_record(&server).await)
    }

    /// Test every server in parallel: the wall time is bounded by the slowest timeout, not the sum.
    pub async fn test_all(&self, fresh: bool) -> Result<Vec<ServerStatus>, ServersError> {
        let servers = self.servers.list().await?;
        Ok(join_all(servers.iter().map(|s| async move {
            if !fresh {
                if let Some(c) = self.cached(&s.id) {
                    return c;
                }
            }
            self.probe_and_record(s).await
        }))
        .await)
    }

    /// Test a server that is not saved yet (the form's Test connection). With `id`, a missing secret
    /// is taken from that server's keychain entry.
    pub async fn test_input(
        &self,
        input: &ServerInput,
        id: Option<&str>,
    ) -> Result<ServerStatus, ServersError> {
        let existing = match id {
            Some(id) => Some(self.servers.find(id).await?),
            None => None,
        };
        let valid = crate::servers::model::validate(input, &[])?;
        let mut secret = valid.secret.clone();
        if secret.is_none() {
            if let Some(server) = &existing {
                if server.auth.kind.needs_secret() && valid.auth.kind.needs_secret() {
                    secret = self.servers.credentials(server).await?.secret;
                }
            }
        }
        let server = Server {
            id: existing.as_ref().map(|s| s.id.clone()).unwrap_or_default(),
            name: valid.name.clone(),
            url: valid.url.clone(),
            kind: valid.kind,
            runpod: valid.runpod.clone(),
            auth: valid.auth.clone(),
            tags: valid.tags.clone(),
            timeout_ms: valid.timeout_ms,
            max_queue: valid.max_queue,
            notes: String::new(),
            active: false,
            has_secret: secret.is_some(),
            needs_credentials: false,
            plain_http_warning: None,
            last_connected_ms: None,
        };
        if server.kind == ServerKind::RunpodServerless {
            secret = self.servers.credentials(&server).await?.secret;
        }
        let creds = Credentials {
            auth: valid.auth,
            secret,
        };
        Ok(probe_any(&self.http, &server, &creds, &self.servers.runpod_urls()).await)
    }

    /// One monitor round: probe everything fresh, then apply auto-switch if the active server failed.
    pub async fn monitor_round(&self, settings: &SettingsStore) -> Result<(), ServersError> {
        let before: HashMap<String, Status> = {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            cache
                .iter()
                .map(|(k, v)| (k.clone(), v.status.status))
                .collect()
        };
        let results = self.test_all(true).await?;
        let servers = self.servers.list().await?;
        let now: HashMap<String, Status> = results
            .iter()
            .map(|s| (s.server_id.clone(), s.status))
            .collect();
        let Some(active) = servers.iter().find(|s| s.active) else {
            return Ok(());
        };
        let active_now = now.get(&active.id).copied().unwrap_or_default();
        let was = before.get(&active.id).copied().unwrap_or_default();
        let failed_now = active_now != Status::Connected && active_now != Status::Unknown;
        // Act once per failure: when the active server was fine (or untested) and now fails.
        if !failed_now || was == active_now {
            return Ok(());
        }
        let auto_switch = settings.get().await.map(|s| s.auto_switch).unwrap_or(false);
        if !auto_switch {
            return Ok(());
        }
        let change = match next_active(&servers, &active.id, &now) {
            Some(next) => {
                self.servers.activate(Some(&next.id)).await?;
                tracing::info!(from = %active.name, to = %next.name, "auto-switched the active server");
                ActiveChange {
                    server_id: Some(next.id.clone()),
                    name: Some(next.name.clone()),
                    message: format!("'{}' stopped answering ({}); switched to '{}'.", active.name, active_now.as_str().replace('_', " "), next.name),
                }
            }
            None => ActiveChange {
                server_id: Some(active.id.clone()),
                name: Some(active.name.clone()),
                message: format!("'{}' stopped answering ({}) and no other server is healthy, so it stays active.", active.name, active_now.as_str().replace('_', " ")),
            },
        };
        let _ = self.events.send(HealthEvent::Active(change));
        Ok(())
    }

    /// Run the monitor until the returned handle is dropped or stopped: a round every `interval`, and one at once
    /// when servers are added or edited (a new server shows its status in moments, not at the next round).
    pub fn spawn_monitor(&self, settings: SettingsStore, interval: Duration) -> MonitorHandle {
        let health = self.clone();
        let task = tokio::spawn(async move {
            loop {
                if let Err(e) = health.monitor_round(&settings).await {
                    tracing::warn!(error = %e, "status monitor round failed");
                }
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = health.servers.changed() => {}
                }
            }
        });
        MonitorHandle { task }
    }
}

/// Owns the monitor task; dropping it stops the monitor.
pub struct MonitorHandle {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MonitorHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::comfyui::{DeviceInfo, SystemInfo};
    use crate::servers::AuthView;

    fn server(id: &str) -> Server {
        Server {
            id: id.into(),
            name: format!("S{id}"),
            url: "http://127.0.0.1:1".into(),
            kind: ServerKind::Comfyui,
            runpod: None,
            auth: AuthView::default(),
            tags: vec![],
            timeout_ms: 2000,
            max_queue: None,
            notes: String::new(),
            active: false,
            has_secret: false,
            needs_credentials: false,
            plain_http_warning: None,
            last_connected_ms: None,
        }
    }

    #[test]
    fn classify_maps_each_failure_to_a_status_and_a_fix() {
        let s = server("1");
        let cases = [
            (
                ComfyError::Connect("refused".into()),
                Status::Unreachable,
                "running",
            ),
            (ComfyError::Timeout, Status::Timeout, "2 s"),
            (
                ComfyError::Unauthorized {
                    status: 401,
                    credentials_sent: false,
                },
                Status::AuthFailed,
                "Add its credentials",
            ),
            (
                ComfyError::Unauthorized {
                    status: 401,
                    credentials_sent: true,
                },
                Status::AuthFailed,
                "Update them",
            ),
            (
                ComfyError::Http {
                    status: 500,
                    path: "/system_stats".into(),
                    snippet: String::new(),
                },
                Status::Error,
                "HTTP 500",
            ),
            (
                ComfyError::Http {
                    status: 404,
                    path: "/system_stats".into(),
                    snippet: String::new(),
                },
                Status::NotComfyui,
                "not ComfyUI",
            ),
            (
                ComfyError::NotComfy {
                    path: "/system_stats".into(),
                    reason: "it sent an HTML page".into(),
                },
                Status::NotComfyui,
                "HTML",
            ),
            (
                ComfyError::TooLarge {
                    path: "/system_stats".into(),
                    limit: 1 << 20,
                },
                Status::NotComfyui,
                "1 MB",
            ),
            (ComfyError::Forbidden, Status::Error, "403"),
        ];
        for (err, status, hint) in cases {
            let st = classify(&s, Err(err), 5, 100);
            assert_eq!(st.status, status);
            let msg = st.error.unwrap();
            assert!(msg.contains(hint), "{msg} should contain {hint}");
            assert_eq!(st.latency_ms, None);
        }
    }

    #[test]
    fn classify_says_how_to_reach_a_refused_server_on_this_computer_or_on_another() {
        let refused = |url: &str| {
            let s = Server {
                url: url.into(),
                ..server("1")
            };
            classify(&s, Err(ComfyError::Connect("refused".into())), 0, 1)
                .error
                .unwrap()
        };
        for here in [
            "http://127.0.0.1:8188",
            "http://localhost:8188",
            "http://[::1]:8188",
        ] {
            let msg = refused(here);
            assert!(msg.contains("not running on this computer"), "{msg}");
            assert!(!msg.contains("--listen"), "{msg}");
        }
        let msg = refused("http://192.168.1.20:8188");
        assert!(msg.contains("--listen"), "{msg}");
        assert!(msg.contains("firewall"), "{msg}");
    }

    #[test]
    fn classify_reports_versions_devices_and_queue_when_connected() {
        let stats = SystemStats {
            system: SystemInfo {
                os: None,
                comfyui_version: Some("0.3.64".into()),
                python_version: Some("3.11".into()),
                pytorch_version: Some("2.8".into()),
                ram_total: None,
                ram_free: None,
            },
            devices: vec![DeviceInfo {
                name: "cuda:0".into(),
                kind: "cuda".into(),
                vram_total: 24,
                vram_free: 20,
            }],
        };
        let st = classify(
            &server("1"),
            Ok((
                stats,
                QueueCounts {
                    running: 1,
                    pending: 3,
                },
            )),
            12,
            777,
        );
        assert_eq!(st.status, Status::Connected);
        assert_eq!(st.latency_ms, Some(12));
        assert_eq!(
            st.queue,
            Some(QueueInfo {
                running: 1,
                pending: 3
            })
        );
        assert_eq!(st.devices[0].vram_total, 24);
        assert_eq!(st.last_connected_ms, Some(777));
        assert_eq!(st.error, None);
    }

    #[test]
    fn next_active_picks_the_next_healthy_server_in_list_order_wrapping() {
        let servers = vec![server("a"), server("b"), server("c"), server("d")];
        let mut st = HashMap::new();
        st.insert("a".to_string(), Status::Connected);
        st.insert("b".to_string(), Status::Timeout);
        st.insert("c".to_string(), Status::Unreachable);
        st.insert("d".to_string(), Status::Connected);
        assert_eq!(next_active(&servers, "b", &st).unwrap().id, "d");
        assert_eq!(next_active(&servers, "d", &st).unwrap().id, "a");
        st.insert("a".to_string(), Status::Error);
        assert_eq!(next_active(&servers, "d", &st), None);
        assert_eq!(next_active(&servers, "zzz", &st), None);
    }

    #[test]
    fn visible_change_ignores_identical_results() {
        let a = classify(&server("1"), Err(ComfyError::Timeout), 0, 1);
        let b = classify(&server("1"), Err(ComfyError::Timeout), 0, 2);
        assert!(!visible_change(Some(&a), &b));
        let c = classify(&server("1"), Err(ComfyError::Connect("x".into())), 0, 3);
        assert!(visible_change(Some(&a), &c));
        assert!(visible_change(None, &a));
    }
}
