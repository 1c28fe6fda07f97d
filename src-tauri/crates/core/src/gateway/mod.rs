//! gateway: a ComfyUI-compatible HTTP/WebSocket API in front of the router, so any ComfyUI client (scripts, the
//! Krita plugin, another ComfyFleet) shares the fleet without knowing it.
//!
//! Prompts become jobs of the shared queue (the router picks their server); history, queue, `/view` and the
//! WebSocket messages are ComfyUI's, built from the jobs. Everything else (node information such as `/object_info`
//! and `/models`, `/system_stats`, the ComfyUI web page and its files, user settings) is passed on to a connected
//! ComfyUI of the fleet, the active one first. Images uploaded with `/upload/image` are kept by the gateway and sent
//! to whichever server runs the prompt that names them.

pub mod api;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{DefaultBodyLimit, Multipart, Path as UrlPath, Query, Request, State};
use axum::http::{header, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::broadcast;

use crate::comfyui::ComfyClient;
use crate::dispatcher::{Dispatcher, JobUpdate};
use crate::health::Health;
use crate::jobs::{Job, JobState, Jobs, NewJob};
use crate::servers::{ServerKind, ServerList};
use api::Told;

/// Uploads up to this size are accepted (ComfyUI's own limit).
const MAX_UPLOAD_BYTES: usize = 100 * 1024 * 1024;
/// Node information can be several MB (`/object_info` of a server with many custom nodes).
const MAX_PROXIED_BYTES: usize = 64 * 1024 * 1024;
/// How often jobs run by another process (the desktop app dispatching) are looked at.
const POLL: Duration = Duration::from_millis(500);
/// How long a request passed on to a server may take (RunPod's proxy gives up at 100 s too).
const FORWARD_TIMEOUT: Duration = Duration::from_secs(100);
/// How long `POST /prompt` waits for a server's node list before queueing the prompt unchecked against it.
const NODE_LIST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a server's node list is trusted before it is read again.
const NODE_LIST_TTL: Duration = Duration::from_secs(60);
/// `GET /history` without `max_items` lists this many of the latest finished jobs.
const HISTORY_DEFAULT: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("'{text}' is not an address and port; write it like 127.0.0.1:8189 (this computer only) or 0.0.0.0:8189 (the LAN too).")]
    BadAddress { text: String },
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    #[error("The gateway could not listen on {addr}: {source}. Is another program (a ComfyUI?) using that port? Choose another with --listen.")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("The gateway could not create its uploads folder {path}: {source}")]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl crate::HasErrorInfo for GatewayError {
    fn code(&self) -> &'static str {
        match self {
            GatewayError::BadAddress { .. } => "gateway.bad_address",
            GatewayError::Listen { .. } => "gateway.listen_failed",
            GatewayError::Folder { .. } => "gateway.folder_failed",
            GatewayError::Store(e) => e.code(),
        }
    }
}

/// Where the gateway listens by default: this computer only, beside ComfyUI's own 8188.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8189";
const SETTINGS_KEY: &str = "gateway";

/// Whether the desktop app serves the fleet as a ComfyUI, and where.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(default)]
pub struct GatewaySettings {
    pub enabled: bool,
    /// Address and port, e.g. "127.0.0.1:8189" (this computer) or "0.0.0.0:8189" (the LAN too).
    pub listen: String,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        GatewaySettings {
            enabled: false,
            listen: DEFAULT_LISTEN.into(),
        }
    }
}

/// The gateway as it stands: its settings, its address while it runs, and why it does not run when it should.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct GatewayStatus {
    pub settings: GatewaySettings,
    /// "http://127.0.0.1:8189" while it serves.
    pub address: Option<String>,
    /// Open beyond this computer (not a loopback address).
    pub exposed: bool,
    pub error: Option<String>,
}

/// An address and port as people type them ("127.0.0.1:8189", "0.0.0.0:8189", "[::1]:8189"). Pure.
pub fn parse_listen(text: &str) -> Result<SocketAddr, GatewayError> {
    text.trim()
        .parse()
        .map_err(|_| GatewayError::BadAddress { text: text.into() })
}

pub async fn load_settings(settings: &crate::settings::SettingsStore) -> GatewaySettings {
    settings.json(SETTINGS_KEY).await.unwrap_or_default()
}

/// Keep the settings once the address reads as one.
pub async fn save_settings(
    settings: &crate::settings::SettingsStore,
    mut value: GatewaySettings,
) -> Result<GatewaySettings, GatewayError> {
    value.listen = parse_listen(&value.listen)?.to_string();
    settings.put_json(SETTINGS_KEY, &value).await?;
    Ok(value)
}

/// What the gateway stands on: the fleet's queue (through a running dispatcher), servers and their status.
#[derive(Clone)]
pub struct GatewayParts {
    pub dispatcher: Dispatcher,
    pub jobs: Jobs,
    pub servers: ServerList,
    pub health: Health,
    /// Where uploaded input images are kept.
    pub uploads: PathBuf,
}

/// A prompt submitted through the gateway: who asked, under which id, and what they have been told.
struct Tracked {
    client_id: Option<String>,
    prompt_id: String,
    told: Told,
    /// When its client was told the end (tracked jobs are forgotten a day later).
    ended: Option<std::time::Instant>,
}

/// How long a finished prompt's client id and chosen prompt id are remembered.
const FORGET_AFTER: Duration = Duration::from_secs(24 * 3600);

/// A message for WebSocket clients: to one client id, or to all.
#[derive(Clone)]
struct Outgoing {
    to: Option<String>,
    message: Message,
}

struct Shared {
    parts: GatewayParts,
    http: reqwest::Client,
    /// By job id.
    tracked: Mutex<HashMap<String, Tracked>>,
    /// Client-chosen prompt ids to job ids.
    aliases: Mutex<HashMap<String, String>>,
    out: broadcast::Sender<Outgoing>,
    queue_remaining: Mutex<Option<usize>>,
    /// Each connected server's node classes (from `/object_info`), and when they were read.
    /// `None`: the server did not answer (not asked again until the minute is over).
    nodes: tokio::sync::Mutex<HashMap<String, (std::time::Instant, Option<NodeClasses>)>>,
}

type Ctx = Arc<Shared>;
/// Node class → whether it is an output node.
type NodeClasses = Arc<HashMap<String, bool>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running gateway; dropping it (or [`Gateway::stop`]) stops serving.
pub struct Gateway {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
    pump: tokio::task::JoinHandle<()>,
}

impl Gateway {
    /// Listen on `addr` (port 0: any free port) and serve until stopped.
    pub async fn start(parts: GatewayParts, addr: SocketAddr) -> Result<Gateway, GatewayError> {
        std::fs::create_dir_all(&parts.uploads).map_err(|source| GatewayError::Folder {
            path: parts.uploads.clone(),
            source,
        })?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| GatewayError::Listen { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| GatewayError::Listen { addr, source })?;
        let (out, _) = broadcast::channel(1024);
        let ctx: Ctx = Arc::new(Shared {
            parts,
            http: crate::comfyui::http_client(),
            tracked: Mutex::new(HashMap::new()),
            aliases: Mutex::new(HashMap::new()),
            out,
            queue_remaining: Mutex::new(None),
            nodes: tokio::sync::Mutex::new(HashMap::new()),
        });
        let pump = tokio::spawn(pump(ctx.clone()));
        let routes = routes();
        let app = Router::new()
            .merge(routes.clone())
            .nest("/api", routes)
            .fallback(forwarded)
            .layer(middleware::from_fn(same_origin))
            .with_state(ctx);
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "gateway: serving ended");
            }
        });
        tracing::info!(%addr, "gateway listening");
        Ok(Gateway {
            addr,
            shutdown: Some(shutdown),
            server,
            pump,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop accepting requests and end open connections.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.pump.abort();
        // Open WebSockets keep a graceful shutdown waiting: give requests a moment, then end.
        let server = &mut self.server;
        if tokio::time::timeout(Duration::from_secs(2), server)
            .await
            .is_err()
        {
            self.server.abort();
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.pump.abort();
        self.server.abort();
    }
}

/// The desktop app's gateway: running or not as its saved settings say.
#[derive(Clone)]
pub struct GatewayHost {
    parts: GatewayParts,
    settings: crate::settings::SettingsStore,
    state: Arc<tokio::sync::Mutex<HostState>>,
}

#[derive(Default)]
struct HostState {
    running: Option<Gateway>,
    /// Why it is not running although enabled (the port was taken at start, ...).
    error: Option<String>,
}

impl GatewayHost {
    pub fn new(parts: GatewayParts, settings: crate::settings::SettingsStore) -> Self {
        GatewayHost {
            parts,
            settings,
            state: Arc::default(),
        }
    }

    /// At app start: serve if the saved settings say so (a failure is kept for [`Self::status`], not fatal).
    pub async fn start_saved(&self) -> GatewayStatus {
        let saved = load_settings(&self.settings).await;
        let mut state = self.state.lock().await;
        if saved.enabled && state.running.is_none() {
            match self.start_at(&saved.listen).await {
                Ok(g) => state.running = Some(g),
                Err(e) => {
                    tracing::warn!(error = %e, "gateway: not started");
                    state.error = Some(e.to_string());
                }
            }
        }
        self.view(saved, &state)
    }

    pub async fn status(&self) -> GatewayStatus {
        let saved = load_settings(&self.settings).await;
        let state = self.state.lock().await;
        self.view(saved, &state)
    }

    /// Change the settings and start or stop serving to match. When the new address cannot be served, nothing
    /// changes (the gateway goes on where it was) and the error says why.
    pub async fn set(&self, value: GatewaySettings) -> Result<GatewayStatus, GatewayError> {
        let addr = parse_listen(&value.listen)?;
        let before = load_settings(&self.settings).await;
        let mut state = self.state.lock().await;
        // Already serving there (port 0 asks for any free port): nothing to restart.
        let serves_there = |g: &Gateway| {
            g.local_addr() == addr || (addr.port() == 0 && g.local_addr().ip() == addr.ip())
        };
        let keep = value.enabled && state.running.as_ref().is_some_and(serves_there);
        if !keep {
            // The same port may be asked for again: the old one lets go of it first.
            if let Some(old) = state.running.take() {
                old.stop().await;
            }
        }
        if value.enabled && !keep {
            match Gateway::start(self.parts.clone(), addr).await {
                Ok(g) => state.running = Some(g),
                Err(e) => {
                    if before.enabled {
                        state.running = self.start_at(&before.listen).await.ok();
                    }
                    return Err(e);
                }
            }
        }
        state.error = None;
        let saved = save_settings(&self.settings, value).await?;
        Ok(self.view(saved, &state))
    }

    /// Stop serving (the app is quitting); the settings stay.
    pub async fn shutdown(&self) {
        if let Some(g) = self.state.lock().await.running.take() {
            g.stop().await;
        }
    }

    async fn start_at(&self, listen: &str) -> Result<Gateway, GatewayError> {
        Gateway::start(self.parts.clone(), parse_listen(listen)?).await
    }

    fn view(&self, settings: GatewaySettings, state: &HostState) -> GatewayStatus {
        let address = state
            .running
            .as_ref()
            .map(|g| format!("http://{}", g.local_addr()));
        let exposed = state
            .running
            .as_ref()
            .is_some_and(|g| !g.local_addr().ip().is_loopback());
        GatewayStatus {
            error: if settings.enabled && state.running.is_none() {
                state.error.clone()
            } else {
                None
            },
            settings,
            address,
            exposed,
        }
    }
}

fn routes() -> Router<Ctx> {
    Router::new()
        .route(
            "/prompt",
            get(prompt_info).post(submit).layer(DefaultBodyLimit::max(
                crate::workflow::MAX_WORKFLOW_BYTES + 4096,
            )),
        )
        .route("/queue", get(queue).post(queue_edit))
        .route("/interrupt", post(interrupt))
        .route("/history", get(history_list).post(history_edit))
        .route("/history/{id}", get(history_one))
        .route("/view", get(view))
        .route(
            "/upload/image",
            post(upload).layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES + 64 * 1024)),
        )
        .route("/free", post(|| async { StatusCode::OK }))
        .route("/system_stats", get(system_stats))
        .route("/ws", get(websocket))
}

/// Everything else ComfyUI serves for reading (its web page and their files, node information, user settings,
/// custom nodes' pages) is passed on to the server node information comes from, so the ComfyUI web page itself works
/// through the gateway. Requests that change something on a server (POST, PUT, DELETE: settings, user files, a
/// custom node manager's installs) are not passed on with the fleet's credentials: they go to that server directly.
async fn forwarded(State(ctx): State<Ctx>, method: Method, uri: Uri) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            format!(
                "The gateway runs prompts on the fleet and passes on only requests that read ({} {} would change \
                 something on one of its servers); send it to that server directly.",
                method,
                uri.path()
            ),
        )
            .into_response();
    }
    match node_source(&ctx).await {
        Some(client) => pass_on(&client, &method, &uri).await,
        None => no_server(),
    }
}

/// A reading request passed on to `client`'s server, its answer (status, content type, body) passed back.
async fn pass_on(client: &ComfyClient, method: &Method, uri: &Uri) -> Response {
    let method = if method == Method::HEAD {
        reqwest::Method::HEAD
    } else {
        reqwest::Method::GET
    };
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
    match client
        .forward(method, path_and_query, MAX_PROXIED_BYTES, FORWARD_TIMEOUT)
        .await
    {
        Ok(answer) => {
            let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut response = (status, answer.body).into_response();
            if let Some(ct) = answer
                .content_type
                .and_then(|c| header::HeaderValue::from_str(&c).ok())
            {
                response.headers_mut().insert(header::CONTENT_TYPE, ct);
            }
            response
        }
        Err(e) => unavailable(format!("{} answered: {e}", client.base_url())),
    }
}

fn no_server() -> Response {
    unavailable(
        "No ComfyUI server of the fleet is connected to answer this; add one or start one, then try again.".into(),
    )
}

/// As ComfyUI does: a browser request from another site (its Origin is not this host) is refused, so a web page
/// cannot queue prompts on the fleet behind the user's back.
async fn same_origin(request: Request, next: Next) -> Response {
    let headers = request.headers();
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let origin_host = url::Url::parse(origin).ok().and_then(|u| {
            u.host_str().map(|h| match u.port_or_known_default() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_string(),
            })
        });
        let host_with_port = if host.contains(':') && !host.ends_with(']') {
            host.to_string()
        } else {
            format!("{host}:80")
        };
        if origin_host.as_deref() != Some(host_with_port.as_str()) {
            return (
                StatusCode::FORBIDDEN,
                "Requests from another site are refused (the Origin is not this gateway).",
            )
                .into_response();
        }
    }
    next.run(request).await
}

fn bad_request(e: &api::ApiError) -> Response {
    (StatusCode::BAD_REQUEST, Json(e.to_json())).into_response()
}

fn unavailable(message: String) -> Response {
    tracing::warn!(%message, "gateway: refused a request");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"error": {"type": "gateway_unavailable", "message": message, "details": "", "extra_info": {}}})),
    )
        .into_response()
}

async fn queue_remaining(ctx: &Ctx) -> usize {
    ctx.parts
        .jobs
        .count(&[JobState::Queued, JobState::Dispatched, JobState::Running])
        .await
        .unwrap_or(0) as usize
}

async fn prompt_info(State(ctx): State<Ctx>) -> Json<Value> {
    Json(json!({"exec_info": {"queue_remaining": queue_remaining(&ctx).await}}))
}

/// `POST /prompt`: the prompt becomes a job of the fleet's queue.
async fn submit(State(ctx): State<Ctx>, body: Bytes) -> Response {
    let request = match api::parse_prompt(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(&e),
    };
    if let Some(known) = known_nodes(&ctx).await {
        if let Err(e) = api::check_nodes(&request.workflow, &known) {
            return bad_request(&e);
        }
    }
    if let Some(id) = &request.prompt_id {
        if lock(&ctx.aliases).contains_key(id) {
            return bad_request(&api::ApiError {
                kind: "invalid_prompt",
                message: "Duplicate prompt_id".into(),
                details: format!("a prompt with the id '{id}' was already queued"),
            });
        }
    }
    let workflow = with_uploads(request.workflow.to_value(), &ctx.parts.uploads);
    let name = match &request.client_id {
        Some(c) => format!(
            "Gateway · {}",
            c.chars()
                .filter(|c| !c.is_control())
                .take(24)
                .collect::<String>()
        ),
        None => "Gateway".to_string(),
    };
    let extra_data =
        Some(request.extra_data).filter(|v| v.as_object().is_some_and(|o| !o.is_empty()));
    let job = match ctx
        .parts
        .dispatcher
        .submit(NewJob {
            extra_data,
            ..NewJob::new(name, workflow)
        })
        .await
    {
        Ok(job) => job,
        Err(e) => return unavailable(e.to_string()),
    };
    let prompt_id = request.prompt_id.clone().unwrap_or_else(|| job.id.clone());
    if request.prompt_id.is_some() {
        lock(&ctx.aliases).insert(prompt_id.clone(), job.id.clone());
    }
    lock(&ctx.tracked).insert(
        job.id.clone(),
        Tracked {
            client_id: request.client_id,
            prompt_id: prompt_id.clone(),
            told: Told::default(),
            ended: None,
        },
    );
    tracing::info!(job = %job.id, "gateway: prompt queued");
    announce_queue(&ctx).await;
    Json(json!({"prompt_id": prompt_id, "number": job.queued_ms, "node_errors": {}}))
        .into_response()
}

/// `LoadImage` nodes naming an image uploaded here get its path, which the dispatcher uploads to the server that runs
/// the prompt.
fn with_uploads(mut workflow: Value, uploads: &Path) -> Value {
    let Some(nodes) = workflow.as_object_mut() else {
        return workflow;
    };
    for node in nodes.values_mut() {
        if node.get("class_type").and_then(Value::as_str) != Some("LoadImage") {
            continue;
        }
        let Some(image) = node.pointer_mut("/inputs/image") else {
            continue;
        };
        let Some((sub, name)) = image.as_str().and_then(api::named_upload) else {
            continue;
        };
        let path = uploads.join(&sub).join(&name);
        if path.is_file() {
            *image = Value::String(path.to_string_lossy().into_owned());
        }
    }
    workflow
}

/// The id clients know a job by, and the job id a prompt id names.
fn prompt_id_of(ctx: &Ctx, job_id: &str) -> String {
    lock(&ctx.tracked)
        .get(job_id)
        .map(|t| t.prompt_id.clone())
        .unwrap_or_else(|| job_id.to_string())
}

fn job_id_of(ctx: &Ctx, prompt_id: &str) -> String {
    lock(&ctx.aliases)
        .get(prompt_id)
        .cloned()
        .unwrap_or_else(|| prompt_id.to_string())
}

/// Forget prompts whose end was told a day ago (their jobs stay in the history, under their job ids).
fn forget_old(ctx: &Ctx) {
    let mut forgotten = Vec::new();
    lock(&ctx.tracked).retain(|_, t| {
        let keep = t.ended.is_none_or(|at| at.elapsed() < FORGET_AFTER);
        if !keep {
            forgotten.push(t.prompt_id.clone());
        }
        keep
    });
    if !forgotten.is_empty() {
        let mut aliases = lock(&ctx.aliases);
        for p in forgotten {
            aliases.remove(&p);
        }
    }
}

/// The jobs queued through this gateway that its clients have not yet been told the end of.
fn unfinished(ctx: &Ctx) -> Vec<String> {
    lock(&ctx.tracked)
        .iter()
        .filter(|(_, t)| !t.told.finished)
        .map(|(id, _)| id.clone())
        .collect()
}

/// What the client sent beside the job's prompt, as `extra_data` is listed (`{}` when nothing).
async fn extra_of(ctx: &Ctx, job_id: &str) -> Value {
    ctx.parts
        .jobs
        .extra_data(job_id)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| json!({}))
}

async fn queue(State(ctx): State<Ctx>) -> Response {
    let jobs = match ctx
        .parts
        .jobs
        .list(
            &[JobState::Queued, JobState::Dispatched, JobState::Running],
            1_000,
        )
        .await
    {
        Ok(j) => j,
        Err(e) => return unavailable(e.to_string()),
    };
    let (mut running, mut pending) = (Vec::new(), Vec::new());
    for job in jobs.iter().rev() {
        let workflow = ctx.parts.jobs.workflow(&job.id).await.unwrap_or(json!({}));
        let tuple = api::prompt_tuple(
            job,
            &prompt_id_of(&ctx, &job.id),
            &workflow,
            &extra_of(&ctx, &job.id).await,
        );
        if job.state == JobState::Queued {
            pending.push(tuple);
        } else {
            running.push(tuple);
        }
    }
    Json(json!({"queue_running": running, "queue_pending": pending})).into_response()
}

/// `POST /queue`: `{"delete": [ids]}` cancels those prompts while they wait; `{"clear": true}` cancels the waiting
/// prompts queued through this gateway (the desktop's own jobs are left alone).
async fn queue_edit(State(ctx): State<Ctx>, Json(body): Json<Value>) -> StatusCode {
    let mut ids: Vec<String> = body
        .get("delete")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|p| job_id_of(&ctx, p))
                .collect()
        })
        .unwrap_or_default();
    if body.get("clear").and_then(Value::as_bool) == Some(true) {
        ids.extend(unfinished(&ctx));
    }
    for id in ids {
        if let Ok(job) = ctx.parts.jobs.get(&id).await {
            if job.state == JobState::Queued {
                let _ = ctx.parts.dispatcher.cancel(&id).await;
            }
        }
    }
    StatusCode::OK
}

/// `POST /interrupt`: stops the prompt named by `prompt_id`, or else the running prompts queued through this
/// gateway.
async fn interrupt(State(ctx): State<Ctx>, body: Bytes) -> StatusCode {
    let named = serde_json::from_slice::<Value>(&body).ok().and_then(|v| {
        v.get("prompt_id")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    let ids: Vec<String> = match named {
        Some(p) => vec![job_id_of(&ctx, &p)],
        None => unfinished(&ctx),
    };
    for id in ids {
        if let Ok(job) = ctx.parts.jobs.get(&id).await {
            if matches!(job.state, JobState::Dispatched | JobState::Running) {
                let _ = ctx.parts.dispatcher.cancel(&id).await;
            }
        }
    }
    StatusCode::OK
}

#[derive(serde::Deserialize)]
struct HistoryQuery {
    max_items: Option<usize>,
    offset: Option<usize>,
}

async fn history_value(ctx: &Ctx, job: &Job) -> Option<(String, Value)> {
    let prompt_id = prompt_id_of(ctx, &job.id);
    let workflow = ctx.parts.jobs.workflow(&job.id).await.unwrap_or(json!({}));
    api::history_entry(job, &prompt_id, &workflow, &extra_of(ctx, &job.id).await)
        .map(|h| (prompt_id, h))
}

async fn history_list(State(ctx): State<Ctx>, Query(q): Query<HistoryQuery>) -> Response {
    let limit = q.max_items.unwrap_or(HISTORY_DEFAULT).min(10_000);
    let offset = q.offset.unwrap_or(0);
    let finished = [JobState::Succeeded, JobState::Failed, JobState::Cancelled];
    let jobs = match ctx
        .parts
        .jobs
        .list(&finished, (offset + limit).min(20_000) as u32)
        .await
    {
        Ok(j) => j,
        Err(e) => return unavailable(e.to_string()),
    };
    let mut out = serde_json::Map::new();
    // Oldest first, as ComfyUI lists its history.
    for job in jobs.iter().skip(offset).take(limit).rev() {
        if let Some((id, entry)) = history_value(&ctx, job).await {
            out.insert(id, entry);
        }
    }
    Json(Value::Object(out)).into_response()
}

async fn history_one(State(ctx): State<Ctx>, UrlPath(id): UrlPath<String>) -> Json<Value> {
    let mut out = serde_json::Map::new();
    if let Ok(job) = ctx.parts.jobs.get(&job_id_of(&ctx, &id)).await {
        if let Some((id, entry)) = history_value(&ctx, &job).await {
            out.insert(id, entry);
        }
    }
    Json(Value::Object(out))
}

/// `POST /history`: the fleet's history is the Jobs page's; a client clearing its view of it deletes nothing.
async fn history_edit() -> StatusCode {
    StatusCode::OK
}

#[derive(serde::Deserialize)]
struct ViewQuery {
    filename: String,
    #[serde(default)]
    subfolder: String,
    #[serde(default, rename = "type")]
    kind: String,
}

/// `GET /view`: an output of a job (its subfolder is the job's id), or an image uploaded here (type input). Only files
/// a job recorded, or uploads inside the uploads folder, are ever read.
async fn view(State(ctx): State<Ctx>, Query(q): Query<ViewQuery>) -> Response {
    let path = if q.kind == "input" {
        match (
            api::upload_subfolder(&q.subfolder),
            api::upload_name(&q.filename),
        ) {
            (Some(sub), Some(name)) if name == q.filename => {
                Some(ctx.parts.uploads.join(sub).join(name))
            }
            _ => {
                return (
                    StatusCode::FORBIDDEN,
                    "That path leaves the uploads folder.",
                )
                    .into_response()
            }
        }
    } else {
        let job_id = job_id_of(&ctx, &q.subfolder);
        ctx.parts.jobs.get(&job_id).await.ok().and_then(|job| {
            job.outputs
                .iter()
                .find(|o| o.filename == q.filename && !o.path.is_empty())
                .map(|o| PathBuf::from(&o.path))
        })
    };
    let Some(path) = path else {
        return (StatusCode::NOT_FOUND, "No such output.").into_response();
    };
    match tokio::fs::read(&path).await {
        Ok(bytes) => {
            let mime =
                crate::gallery::media_type(&q.filename).unwrap_or("application/octet-stream");
            let disposition = format!("filename=\"{}\"", q.filename.replace('"', ""));
            (
                [
                    (header::CONTENT_TYPE, mime.to_string()),
                    (header::CONTENT_DISPOSITION, disposition),
                ],
                bytes,
            )
                .into_response()
        }
        Err(_) => (StatusCode::NOT_FOUND, "The file is no longer there.").into_response(),
    }
}

/// `POST /upload/image` (multipart: image, subfolder, overwrite): kept in the uploads folder; a prompt naming it
/// carries it to its server. A name already taken gets " (1)", " (2)"… unless `overwrite` is true, as in ComfyUI.
async fn upload(State(ctx): State<Ctx>, mut form: Multipart) -> Response {
    let (mut file, mut subfolder, mut overwrite) = (None, String::new(), false);
    loop {
        match form.next_field().await {
            Ok(Some(field)) => match field.name().unwrap_or("") {
                "image" => {
                    let name = field.file_name().unwrap_or("").to_string();
                    match field.bytes().await {
                        Ok(b) => file = Some((name, b)),
                        Err(e) => return (StatusCode::BAD_REQUEST, e.body_text()).into_response(),
                    }
                }
                "subfolder" => subfolder = field.text().await.unwrap_or_default(),
                "overwrite" => {
                    overwrite = matches!(field.text().await.as_deref(), Ok("true" | "1"))
                }
                _ => {}
            },
            Ok(None) => break,
            Err(e) => return (StatusCode::BAD_REQUEST, e.body_text()).into_response(),
        }
    }
    let Some((name, bytes)) = file else {
        return (
            StatusCode::BAD_REQUEST,
            "No image in the form (field \"image\").",
        )
            .into_response();
    };
    let (Some(sub), Some(name)) = (api::upload_subfolder(&subfolder), api::upload_name(&name))
    else {
        return (
            StatusCode::BAD_REQUEST,
            "That file name or subfolder is not allowed.",
        )
            .into_response();
    };
    let folder = ctx.parts.uploads.join(&sub);
    if let Err(e) = tokio::fs::create_dir_all(&folder).await {
        return unavailable(format!("The upload could not be kept: {e}"));
    }
    let mut kept = name.clone();
    if !overwrite {
        let (stem, ext) = match name.rsplit_once('.') {
            Some((s, e)) => (s.to_string(), format!(".{e}")),
            None => (name.clone(), String::new()),
        };
        let mut n = 1;
        while folder.join(&kept).exists() {
            kept = format!("{stem} ({n}){ext}");
            n += 1;
        }
    }
    // Written beside, then renamed: a prompt never reads half an image.
    let part = folder.join(format!(".{kept}.part"));
    let written = async {
        tokio::fs::write(&part, &bytes).await?;
        tokio::fs::rename(&part, folder.join(&kept)).await
    }
    .await;
    if let Err(e) = written {
        let _ = tokio::fs::remove_file(&part).await;
        return unavailable(format!("The upload could not be kept: {e}"));
    }
    Json(json!({"name": kept, "subfolder": sub, "type": "input"})).into_response()
}

/// A connected ComfyUI server to read node information from: the active one if it is connected, else the first.
async fn node_source(ctx: &Ctx) -> Option<ComfyClient> {
    let (server, _) = connected(ctx).await.into_iter().next()?;
    Some(client_for(ctx, &server).await)
}

/// A client for one of the fleet's servers, with its credentials.
async fn client_for(ctx: &Ctx, server: &crate::servers::Server) -> ComfyClient {
    let creds = ctx.parts.servers.credentials(server).await.ok();
    ComfyClient::new(ctx.http.clone(), &server.url, creds.as_ref())
}

/// The node classes the fleet's connected servers have (each server's list is read again after a minute); `None`
/// when no server is connected or none answered (the prompt then waits in the queue unchecked, as any job).
async fn known_nodes(ctx: &Ctx) -> Option<HashMap<String, bool>> {
    let mut union: Option<HashMap<String, bool>> = None;
    for (server, _) in connected(ctx).await {
        let cached = ctx
            .nodes
            .lock()
            .await
            .get(&server.id)
            .filter(|(at, _)| at.elapsed() < NODE_LIST_TTL)
            .map(|(_, classes)| classes.clone());
        let classes = match cached {
            Some(Some(c)) => c,
            Some(None) => continue,
            None => {
                let read = client_for(ctx, &server)
                    .await
                    .forward(
                        reqwest::Method::GET,
                        "/object_info",
                        MAX_PROXIED_BYTES,
                        NODE_LIST_TIMEOUT,
                    )
                    .await;
                let Some(info) = read
                    .ok()
                    .filter(|a| a.status == 200)
                    .and_then(|a| serde_json::from_slice::<Value>(&a.body).ok())
                else {
                    // Not asked again for a minute: a hanging server must not hold up every prompt.
                    tracing::warn!(server = %server.name, "gateway: could not read the server's nodes; not checking against them");
                    let now = std::time::Instant::now();
                    ctx.nodes
                        .lock()
                        .await
                        .insert(server.id.clone(), (now, None));
                    continue;
                };
                let classes = Arc::new(api::node_classes(&info));
                ctx.nodes.lock().await.insert(
                    server.id.clone(),
                    (std::time::Instant::now(), Some(classes.clone())),
                );
                classes
            }
        };
        let all = union.get_or_insert_with(HashMap::new);
        for (class, output) in classes.iter() {
            *all.entry(class.clone()).or_insert(false) |= *output;
        }
    }
    union
}

/// The fleet's connected ComfyUI servers with their status, the active one first.
async fn connected(ctx: &Ctx) -> Vec<(crate::servers::Server, crate::health::ServerStatus)> {
    let Ok(servers) = ctx.parts.servers.list().await else {
        return Vec::new();
    };
    let online = |statuses: Vec<crate::health::ServerStatus>| {
        let mut found: Vec<_> = servers
            .iter()
            .filter(|s| s.kind == ServerKind::Comfyui)
            .filter_map(|s| {
                let st = statuses.iter().find(|st| st.server_id == s.id)?;
                st.status.is_online().then(|| (s.clone(), st.clone()))
            })
            .collect();
        found.sort_by_key(|(s, _)| !s.active);
        found
    };
    let known = online(ctx.parts.health.known_statuses(&servers));
    if !known.is_empty() {
        return known;
    }
    // Nothing probed yet (the gateway just started): probe now.
    match ctx.parts.health.test_all(false).await {
        Ok(fresh) => online(fresh),
        Err(_) => Vec::new(),
    }
}

/// `GET /system_stats`: the answering server's system, with the devices of every connected server of the fleet
/// (its own first), so a client sees the GPUs its prompts may run on.
async fn system_stats(State(ctx): State<Ctx>, uri: Uri) -> Response {
    let fleet = connected(&ctx).await;
    let Some((answering, _)) = fleet.first() else {
        return no_server();
    };
    let answer = pass_on(&client_for(&ctx, answering).await, &Method::GET, &uri).await;
    if answer.status() != StatusCode::OK {
        return answer;
    }
    let Ok(body) = axum::body::to_bytes(answer.into_body(), MAX_PROXIED_BYTES).await else {
        return unavailable("The server's system information could not be read.".into());
    };
    let Ok(mut stats) = serde_json::from_slice::<Value>(&body) else {
        return unavailable("The server's system information is not JSON.".into());
    };
    let servers: Vec<(String, Vec<crate::health::Device>)> = fleet
        .into_iter()
        .map(|(s, st)| (s.name, st.devices))
        .collect();
    let devices = api::fleet_devices(&servers);
    if !devices.is_empty() {
        stats["devices"] = Value::Array(devices);
    }
    Json(stats).into_response()
}

#[derive(serde::Deserialize)]
struct WsQuery {
    #[serde(rename = "clientId")]
    client_id: Option<String>,
}

async fn websocket(
    State(ctx): State<Ctx>,
    Query(q): Query<WsQuery>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let client_id = q
        .client_id
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    upgrade.on_upgrade(move |socket| serve_socket(ctx, socket, client_id))
}

async fn serve_socket(ctx: Ctx, mut socket: WebSocket, client_id: String) {
    let mut rx = ctx.out.subscribe();
    let hello = api::status_message(queue_remaining(&ctx).await, Some(&client_id));
    if socket
        .send(Message::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    loop {
        tokio::select! {
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            outgoing = rx.recv() => match outgoing {
                Ok(o) if o.to.as_ref().map_or(true, |to| *to == client_id) => {
                    if socket.send(o.message).await.is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(client = %client_id, skipped = n, "gateway: a slow WebSocket client missed messages");
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
        }
    }
}

/// Tell everyone how many prompts remain, when that changed.
async fn announce_queue(ctx: &Ctx) {
    let n = queue_remaining(ctx).await;
    let changed = {
        let mut last = lock(&ctx.queue_remaining);
        let changed = *last != Some(n);
        *last = Some(n);
        changed
    };
    if changed {
        let _ = ctx.out.send(Outgoing {
            to: None,
            message: Message::Text(api::status_message(n, None).to_string().into()),
        });
    }
}

/// Tell the client that queued `job` what changed in it.
fn tell(ctx: &Ctx, job: &Job) -> bool {
    let mut tracked = lock(&ctx.tracked);
    let Some(t) = tracked.get_mut(&job.id) else {
        return false;
    };
    let (messages, told) = api::job_messages(job, &t.prompt_id, t.told);
    if told.finished && !t.told.finished {
        t.ended = Some(std::time::Instant::now());
    }
    t.told = told;
    for m in messages {
        let _ = ctx.out.send(Outgoing {
            to: t.client_id.clone(),
            message: Message::Text(m.to_string().into()),
        });
    }
    true
}

/// Turn job changes into WebSocket messages: at once from this process's dispatcher, and by looking at the
/// unfinished tracked jobs every half second for jobs another process (the desktop app) dispatches.
async fn pump(ctx: Ctx) {
    let mut updates = ctx.parts.dispatcher.subscribe();
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            update = updates.recv() => match update {
                Ok(JobUpdate::Changed { job }) => {
                    if tell(&ctx, &job) {
                        announce_queue(&ctx).await;
                    }
                }
                // Progress of jobs no client of this gateway queued (the desktop's own) is not read at all.
                Ok(JobUpdate::Progress { job_id, progress }) if lock(&ctx.tracked).contains_key(&job_id) => {
                    if let Ok(mut job) = ctx.parts.jobs.get(&job_id).await {
                        job.progress = progress;
                        tell(&ctx, &job);
                    }
                }
                Ok(JobUpdate::Preview { job_id, mime, data_base64 }) => {
                    use base64::Engine;
                    let to = lock(&ctx.tracked).get(&job_id).map(|t| t.client_id.clone());
                    if let (Some(to), Ok(bytes)) = (to, base64::engine::general_purpose::STANDARD.decode(data_base64)) {
                        let _ = ctx.out.send(Outgoing {
                            to,
                            message: Message::Binary(api::preview_frame(&mime, &bytes).into()),
                        });
                    }
                }
                Ok(JobUpdate::Progress { .. } | JobUpdate::Notice { .. }) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            },
            _ = tick.tick() => {
                forget_old(&ctx);
                for id in unfinished(&ctx) {
                    if let Ok(job) = ctx.parts.jobs.get(&id).await {
                        tell(&ctx, &job);
                    }
                }
                announce_queue(&ctx).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_points_load_image_nodes_at_images_uploaded_here_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("pets")).unwrap();
        std::fs::write(dir.path().join("pets/cat.png"), b"png").unwrap();
        let wf = json!({
            "1": {"class_type": "LoadImage", "inputs": {"image": "pets/cat.png [input]"}},
            "2": {"class_type": "LoadImage", "inputs": {"image": "dog.png"}},
            "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "pets/cat.png"}}
        });
        let out = with_uploads(wf, dir.path());
        let cat = dir.path().join("pets/cat.png");
        assert_eq!(out["1"]["inputs"]["image"], cat.to_string_lossy().as_ref());
        // Not uploaded here: left for the server's own input folder.
        assert_eq!(out["2"]["inputs"]["image"], "dog.png");
        assert_eq!(out["3"]["inputs"]["text"], "pets/cat.png");
    }
}
