//! The fake's life on its port and everything a request passes before a route: recording, connection faults
//! (hang, drop), HTTP faults (429, 500) and the API key check. Also the handle tests hold, [`FakeRunpod`].

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, Response, StatusCode};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tower::ServiceExt;

use super::config::{FakeRunpodConfig, Fault, PodComfy};
use super::pods::{Effect, Pods, RunpodPod, Timings};
use super::routes;
use super::serverless::{Endpoint, Health, JobFault, RunpodJob};
use crate::FakeComfy;

/// How many requests the fake records; later ones are served but not recorded.
pub const MAX_RUNPOD_RECORDS: usize = 100_000;

/// Endpoint ids that would collide with the pods API under the same `/v2` prefix.
pub const RESERVED_ENDPOINT_IDS: [&str; 2] = ["pods", "catalog"];

/// What the API key of a request was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthCheck {
    /// The configured key: the request went on.
    Valid,
    /// No `Authorization: Bearer` header: 401.
    Missing,
    /// Some other key: 401.
    Wrong,
    /// The configured forbidden key: 403.
    Forbidden,
    /// Paths that take no key: the pod proxy and the `s3_url` files.
    NotRequired,
}

impl AuthCheck {
    /// The request carried the working key.
    pub fn ok(self) -> bool {
        self == AuthCheck::Valid
    }
}

/// One request as the fake received it and what it answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunpodRequest {
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    pub auth: AuthCheck,
    /// The answer's status; `None` for a hung or dropped request (or one still being answered).
    pub status: Option<u16>,
}

impl RunpodRequest {
    pub fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or("")
    }

    /// The pod this request is about (`/v2/pods/{id}...`), if any.
    pub fn pod_id(&self) -> Option<&str> {
        let rest = self.path_only().strip_prefix("/v2/pods/")?;
        rest.split('/').next().filter(|id| !id.is_empty())
    }
}

pub(crate) struct State {
    pub config: FakeRunpodConfig,
    pub endpoints: BTreeMap<String, Endpoint>,
    pub pods: Pods,
    faults: Vec<Fault>,
    requests: Vec<RunpodRequest>,
    /// The fake ComfyUI of each pod that has one (`PodComfy::Start`).
    pub comfies: BTreeMap<String, FakeComfy>,
}

impl State {
    pub fn timings(&self) -> Timings {
        Timings {
            provisioning: self.config.pod_provisioning,
            starting: self.config.pod_starting,
            terminated_visible: self.config.terminated_visible,
        }
    }

    fn sync_endpoints(&mut self, base: &str) {
        for ep in self.config.endpoints.clone() {
            match self.endpoints.get_mut(&ep.id) {
                Some(existing) => existing.reconfigure(ep),
                None => {
                    let s3 = format!("{base}/s3/fake-bucket/{}", ep.id);
                    self.endpoints.insert(ep.id.clone(), Endpoint::new(ep, s3));
                }
            }
        }
    }

    /// Uses up one request fault that applies to `path`.
    fn take_fault(&mut self, path: &str) -> Option<Fault> {
        let i = self.faults.iter().position(|f| match f {
            Fault::RateLimited { target, .. }
            | Fault::ServerError { target, .. }
            | Fault::Hang { target, .. }
            | Fault::Drop { target, .. } => target.matches(path),
            _ => false,
        })?;
        let fault = self.faults[i].clone();
        let times = self.faults[i].times_mut();
        *times = times.saturating_sub(1);
        if *times == 0 {
            self.faults.remove(i);
        }
        Some(fault)
    }

    /// Applies what a pod action means for the pod's fake ComfyUI.
    pub fn comfy_effect(&mut self, pod_id: &str, effect: Effect) {
        match effect {
            Effect::Boot => {
                if let Some(comfy) = self.comfies.get(pod_id) {
                    comfy.restart();
                }
            }
            Effect::Stop => {
                if let Some(comfy) = self.comfies.get(pod_id) {
                    comfy.kill();
                }
            }
            Effect::Terminate => {
                self.comfies.remove(pod_id);
            }
        }
    }
}

/// What the handle, the accept loop and the routes share.
pub(crate) struct Shared {
    state: Mutex<State>,
    pub url: String,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A fake RunPod on `127.0.0.1`: the serverless API (`api.runpod.ai/v2/{endpoint_id}/...`) and the pods REST API
/// (`api.runpod.io/v2/pods`, `/v2/catalog/gpus`) on one port. A client's two base URLs are both `{url}/v2`; they
/// never collide because endpoint ids `pods` and `catalog` are refused. Pods' HTTP ports
/// (`https://{podId}-{port}.proxy.runpod.net`) are at `{url}/proxy/{podId}-{port}`, see
/// [`FakeRunpod::pod_comfy_url`]. Dropping it shuts it down.
pub struct FakeRunpod {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    accept_task: Option<JoinHandle<()>>,
}

fn check_ids(config: &FakeRunpodConfig) -> io::Result<()> {
    for ep in &config.endpoints {
        let id = ep.id.as_str();
        if RESERVED_ENDPOINT_IDS.contains(&id) || id.is_empty() || id.contains('/') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("fake RunPod: endpoint id '{id}' is not allowed: it would collide with /v2/{id} of the pods API (ids must not be empty, contain '/', or be 'pods' or 'catalog')"),
            ));
        }
    }
    Ok(())
}

impl FakeRunpod {
    /// Starts on a free port of 127.0.0.1. Panics if the OS has no free loopback port or an endpoint id is reserved.
    pub async fn start(config: FakeRunpodConfig) -> FakeRunpod {
        FakeRunpod::start_on(0, config)
            .await
            .unwrap_or_else(|e| panic!("fake RunPod: cannot start: {e}"))
    }

    /// Starts on `127.0.0.1:port` (0 picks a free one).
    pub async fn start_on(port: u16, config: FakeRunpodConfig) -> io::Result<FakeRunpod> {
        check_ids(&config)?;
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
        let addr = listener.local_addr()?;
        let url = format!("http://{addr}");
        let now = Instant::now();
        let mut pods = Pods::default();
        for seeded in &config.seeded_pods {
            pods.seed(seeded, now);
        }
        let mut state = State {
            config,
            endpoints: BTreeMap::new(),
            pods,
            faults: Vec::new(),
            requests: Vec::new(),
            comfies: BTreeMap::new(),
        };
        state.sync_endpoints(&url);
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            url,
        });
        let router = routes::router(shared.clone());
        let (shutdown, on_shutdown) = watch::channel(false);
        let accept_task = tokio::spawn(accept_loop(listener, shared.clone(), router, on_shutdown));
        Ok(FakeRunpod {
            shared,
            addr,
            shutdown,
            accept_task: Some(accept_task),
        })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash: the base of both APIs (append `/v2`).
    pub fn url(&self) -> String {
        self.shared.url.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `{url}/v2/{endpoint_id}`, what stands for `https://api.runpod.ai/v2/{endpoint_id}`.
    pub fn endpoint_url(&self, endpoint_id: &str) -> String {
        format!("{}/v2/{endpoint_id}", self.shared.url)
    }

    /// `{url}/proxy/{podId}-{port}` with the placeholders left in: what stands for
    /// `https://{podId}-{port}.proxy.runpod.net`.
    pub fn proxy_url_template(&self) -> String {
        format!("{}/proxy/{{podId}}-{{port}}", self.shared.url)
    }

    /// The pod's port 8188 through the proxy (`https://{podId}-8188.proxy.runpod.net`), if the pod is known. While
    /// the pod is not RUNNING it answers 502 as Cloudflare does; once RUNNING, the pod's fake ComfyUI (HTTP and
    /// WebSocket).
    pub fn pod_comfy_url(&self, pod_id: &str) -> Option<String> {
        let state = self.shared.lock();
        state.pods.get(pod_id, Instant::now(), state.timings())?;
        Some(format!("{}/proxy/{pod_id}-8188", self.shared.url))
    }

    /// The direct URL of the pod's own fake ComfyUI (not through the proxy), with `PodComfy::Start`.
    pub fn pod_comfy_direct_url(&self, pod_id: &str) -> Option<String> {
        self.shared.lock().comfies.get(pod_id).map(FakeComfy::url)
    }

    /// A copy of the current config.
    pub fn config(&self) -> FakeRunpodConfig {
        self.shared.lock().config.clone()
    }

    /// Changes anything live. New endpoints start cold; changed ones keep their workers, queue and jobs. Panics on a
    /// reserved endpoint id.
    pub fn set_config(&self, f: impl FnOnce(&mut FakeRunpodConfig)) {
        let mut state = self.shared.lock();
        f(&mut state.config);
        if let Err(e) = check_ids(&state.config) {
            panic!("{e}");
        }
        state.sync_endpoints(&self.shared.url);
    }

    /// Adds a fault. Request faults are used up in the order set; job faults apply to the next jobs submitted.
    pub fn set_fault(&self, fault: Fault) {
        let mut state = self.shared.lock();
        match &fault {
            Fault::JobRuntimeError { endpoint, times } | Fault::JobHangs { endpoint, times } => {
                let kind = match fault {
                    Fault::JobRuntimeError { .. } => JobFault::RuntimeError,
                    _ => JobFault::Hangs,
                };
                if let Some(ep) = state.endpoints.get_mut(endpoint) {
                    ep.add_job_fault(kind, *times);
                }
            }
            _ => state.faults.push(fault),
        }
    }

    /// Removes every request fault not used up yet.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Every request so far (the first 100,000), oldest first.
    pub fn requests(&self) -> Vec<RunpodRequest> {
        self.shared.lock().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }

    /// The job with this id, on any endpoint, as `/status` would show it now (`None` once expired).
    pub fn job(&self, id: &str) -> Option<RunpodJob> {
        let now = Instant::now();
        let mut state = self.shared.lock();
        state.endpoints.values_mut().find_map(|ep| ep.job(id, now))
    }

    /// `/health` of an endpoint, now.
    pub fn health(&self, endpoint_id: &str) -> Option<Health> {
        let now = Instant::now();
        self.shared
            .lock()
            .endpoints
            .get_mut(endpoint_id)
            .map(|ep| ep.health(now))
    }

    /// Every pod `GET /v2/pods` would list now (seeded ones included).
    pub fn pods(&self) -> Vec<RunpodPod> {
        let state = self.shared.lock();
        state.pods.list(Instant::now(), state.timings())
    }

    /// Closes the port and every connection, and waits for the accept loop to end.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(t) = self.accept_task.take() {
            let _ = t.await;
        }
        self.shared.lock().comfies.clear();
    }
}

impl Drop for FakeRunpod {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

impl std::fmt::Debug for FakeRunpod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeRunpod")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    let for_connections = shutdown.clone();
    loop {
        tokio::select! {
            biased;
            _ = until_shutdown(&mut shutdown) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let shared = shared.clone();
                    let router = router.clone();
                    let mut shutdown = for_connections.clone();
                    connections.spawn(async move {
                        let service = hyper::service::service_fn(move |req| {
                            gate(shared.clone(), router.clone(), req)
                        });
                        let conn = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .with_upgrades();
                        tokio::select! {
                            _ = conn => {}
                            _ = until_shutdown(&mut shutdown) => {}
                        }
                    });
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            },
        }
    }
    connections.shutdown().await;
}

async fn until_shutdown(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await.is_ok();
}

/// The key check, pure.
pub(crate) fn check_auth(headers: &HeaderMap, config: &FakeRunpodConfig) -> AuthCheck {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return AuthCheck::Missing;
    };
    let key = match value.split_once(' ') {
        Some((scheme, key)) if scheme.eq_ignore_ascii_case("bearer") => key.trim(),
        // RunPod also takes the bare key.
        _ => value.trim(),
    };
    if key == config.api_key {
        AuthCheck::Valid
    } else if config.forbidden_key.as_deref() == Some(key) {
        AuthCheck::Forbidden
    } else {
        AuthCheck::Wrong
    }
}

pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

/// Records the request, applies a fault or the key check, then routes.
async fn gate(
    shared: Arc<Shared>,
    router: Router,
    request: Request<Incoming>,
) -> Result<Response<Body>, io::Error> {
    let path = request.uri().path().to_string();
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str().to_string())
        .unwrap_or_else(|| path.clone());
    let public = path.starts_with("/proxy/") || path.starts_with("/s3/");
    let (index, fault, auth) = {
        let mut state = shared.lock();
        let auth = if public {
            AuthCheck::NotRequired
        } else {
            check_auth(request.headers(), &state.config)
        };
        let index = (state.requests.len() < MAX_RUNPOD_RECORDS).then(|| {
            state.requests.push(RunpodRequest {
                method: request.method().to_string(),
                path: path_and_query,
                auth,
                status: None,
            });
            state.requests.len() - 1
        });
        (index, state.take_fault(&path), auth)
    };
    let response = match fault {
        Some(Fault::Hang { .. }) => std::future::pending().await,
        Some(Fault::Drop { .. }) => {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "fault: drop",
            ))
        }
        Some(Fault::RateLimited { .. }) => {
            let mut r = json_response(
                StatusCode::TOO_MANY_REQUESTS,
                &json!({"error": "rate limit exceeded"}),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            r
        }
        Some(_) => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({"error": "internal server error"}),
        ),
        None => match auth {
            AuthCheck::Missing | AuthCheck::Wrong => json_response(
                StatusCode::UNAUTHORIZED,
                &json!({"error": "Unauthorized: a valid API key is required (Authorization: Bearer <key>)"}),
            ),
            AuthCheck::Forbidden => json_response(
                StatusCode::FORBIDDEN,
                &json!({"error": "Forbidden: this API key may not do this"}),
            ),
            AuthCheck::Valid | AuthCheck::NotRequired => {
                let routed: Result<_, Infallible> = router.oneshot(request).await;
                match routed {
                    Ok(response) => response,
                    Err(never) => match never {},
                }
            }
        },
    };
    if let Some(i) = index {
        if let Some(r) = shared.lock().requests.get_mut(i) {
            r.status = Some(response.status().as_u16());
        }
    }
    Ok(response)
}

/// Starts the pod's fake ComfyUI when the config says so (outside the state lock).
pub(crate) async fn start_pod_comfy(shared: &Shared, pod: &RunpodPod) {
    let wanted = pod.ports.iter().any(|p| p == "8188/http");
    let config = match &shared.lock().config.pod_comfy {
        PodComfy::Start(config) if wanted => (**config).clone(),
        _ => return,
    };
    let comfy = FakeComfy::start(config).await;
    shared.lock().comfies.insert(pod.id.clone(), comfy);
}
