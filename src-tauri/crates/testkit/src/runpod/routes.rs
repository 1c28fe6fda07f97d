//! The routes of both APIs after the gate: serverless (`/v2/{endpoint_id}/...`), pods (`/v2/pods...`), the GPU
//! catalog, the `s3_url` files and the pod proxy. Each handler locks the state, calls one method and wraps the
//! answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, Response, StatusCode};
use axum::routing::{any, get, post};
use axum::Router;
use serde_json::{json, Value};

use super::catalog::GPU_CATALOG;
use super::pods::{error_body, PodError};
use super::proxy;
use super::server::{json_response, start_pod_comfy, Shared};
use super::serverless::RetryError;

/// `/run` refuses bodies over this (RunPod: 10 MB).
pub const RUN_MAX_BODY: usize = 10 * 1024 * 1024;
/// `/runsync` refuses bodies over this (RunPod: 20 MB).
pub const RUNSYNC_MAX_BODY: usize = 20 * 1024 * 1024;

type Fake = State<Arc<Shared>>;
type Answer = Response<Body>;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v2/pods", get(list_pods).post(create_pod))
        .route(
            "/v2/pods/{id}",
            get(get_pod).patch(patch_pod).delete(delete_pod),
        )
        .route("/v2/pods/{id}/action", post(pod_action))
        .route("/v2/catalog/gpus", get(catalog))
        .route("/v2/{endpoint}/run", post(run))
        .route("/v2/{endpoint}/runsync", post(runsync))
        .route("/v2/{endpoint}/status/{id}", get(status).post(status))
        .route("/v2/{endpoint}/stream/{id}", get(stream).post(stream))
        .route("/v2/{endpoint}/cancel/{id}", post(cancel))
        .route("/v2/{endpoint}/retry/{id}", post(retry))
        .route("/v2/{endpoint}/purge-queue", post(purge_queue))
        .route("/v2/{endpoint}/health", get(health))
        .route("/s3/fake-bucket/{endpoint}/{job}/{file}", get(s3_file))
        .route("/proxy/{slug}", any(proxy::forward))
        .route("/proxy/{slug}/{*rest}", any(proxy::forward))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not found") })
        .method_not_allowed_fallback(|| async {
            error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        })
        .layer(DefaultBodyLimit::max(64 * 1024 * 1024))
        .with_state(shared)
}

fn error(status: StatusCode, message: &str) -> Answer {
    json_response(status, &error_body(message))
}

fn ok(body: &Value) -> Answer {
    json_response(StatusCode::OK, body)
}

fn unknown_endpoint(id: &str) -> Answer {
    error(StatusCode::NOT_FOUND, &format!("endpoint {id} not found"))
}

fn unknown_job(id: &str) -> Answer {
    error(
        StatusCode::NOT_FOUND,
        &format!("request {id} does not exist"),
    )
}

/// The `input` and `policy.executionTimeout` of a `/run` body, or the 400 answer.
// The refusal is the answer itself; handlers return it as is.
#[allow(clippy::result_large_err)]
fn job_body(bytes: &Bytes, limit: usize, op: &str) -> Result<(Value, Option<Duration>), Answer> {
    if bytes.len() > limit {
        return Err(error(
            StatusCode::BAD_REQUEST,
            &format!(
                "payload too large: {} bytes, the limit of /{op} is {} MB",
                bytes.len(),
                limit / (1024 * 1024)
            ),
        ));
    }
    let body: Value = serde_json::from_slice(bytes)
        .map_err(|e| error(StatusCode::BAD_REQUEST, &format!("invalid JSON body: {e}")))?;
    let Some(input) = body.get("input").filter(|i| i.is_object()).cloned() else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "the body must have an \"input\" object",
        ));
    };
    let timeout = body
        .get("policy")
        .and_then(|p| p.get("executionTimeout"))
        .and_then(Value::as_u64)
        .map(Duration::from_millis);
    Ok((input, timeout))
}

async fn run(State(shared): Fake, Path(endpoint): Path<String>, bytes: Bytes) -> Answer {
    let (input, timeout) = match job_body(&bytes, RUN_MAX_BODY, "run") {
        Ok(parsed) => parsed,
        Err(answer) => return answer,
    };
    let mut state = shared.lock();
    let Some(ep) = state.endpoints.get_mut(&endpoint) else {
        return unknown_endpoint(&endpoint);
    };
    let id = ep.submit(input, false, timeout, Instant::now());
    ok(&json!({"id": id, "status": "IN_QUEUE"}))
}

#[derive(serde::Deserialize)]
struct WaitQuery {
    wait: Option<u64>,
}

async fn runsync(
    State(shared): Fake,
    Path(endpoint): Path<String>,
    Query(query): Query<WaitQuery>,
    bytes: Bytes,
) -> Answer {
    let (input, timeout) = match job_body(&bytes, RUNSYNC_MAX_BODY, "runsync") {
        Ok(parsed) => parsed,
        Err(answer) => return answer,
    };
    let (id, wait) = {
        let mut state = shared.lock();
        let Some(ep) = state.endpoints.get_mut(&endpoint) else {
            return unknown_endpoint(&endpoint);
        };
        let wait = query
            .wait
            .map(|ms| Duration::from_millis(ms.clamp(1000, 300_000)))
            .unwrap_or(ep.config.runsync_wait);
        (ep.submit(input, true, timeout, Instant::now()), wait)
    };
    let deadline = Instant::now() + wait;
    loop {
        let job = shared
            .lock()
            .endpoints
            .get_mut(&endpoint)
            .and_then(|ep| ep.job(&id, Instant::now()));
        match job {
            None => return unknown_job(&id),
            Some(job) if job.status.is_final() || Instant::now() >= deadline => {
                return ok(&job.status_json())
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

async fn status(State(shared): Fake, Path((endpoint, id)): Path<(String, String)>) -> Answer {
    let mut state = shared.lock();
    let Some(ep) = state.endpoints.get_mut(&endpoint) else {
        return unknown_endpoint(&endpoint);
    };
    match ep.job(&id, Instant::now()) {
        Some(job) => ok(&job.status_json()),
        None => unknown_job(&id),
    }
}

async fn stream(State(shared): Fake, Path((endpoint, id)): Path<(String, String)>) -> Answer {
    let mut state = shared.lock();
    let Some(ep) = state.endpoints.get_mut(&endpoint) else {
        return unknown_endpoint(&endpoint);
    };
    match ep.job(&id, Instant::now()) {
        Some(job) => ok(&job.stream_json()),
        None => unknown_job(&id),
    }
}

async fn cancel(State(shared): Fake, Path((endpoint, id)): Path<(String, String)>) -> Answer {
    let mut state = shared.lock();
    let Some(ep) = state.endpoints.get_mut(&endpoint) else {
        return unknown_endpoint(&endpoint);
    };
    match ep.cancel(&id, Instant::now()) {
        Some(status) => ok(&json!({"id": id, "status": status.as_str()})),
        None => unknown_job(&id),
    }
}

async fn retry(State(shared): Fake, Path((endpoint, id)): Path<(String, String)>) -> Answer {
    let mut state = shared.lock();
    let Some(ep) = state.endpoints.get_mut(&endpoint) else {
        return unknown_endpoint(&endpoint);
    };
    match ep.retry(&id, Instant::now()) {
        Ok(()) => ok(&json!({"id": id, "status": "IN_QUEUE"})),
        Err(RetryError::Unknown) => unknown_job(&id),
        Err(RetryError::NotRetryable(status)) => error(
            StatusCode::BAD_REQUEST,
            &format!(
                "request {id} is {}: only FAILED or TIMED_OUT requests can be retried",
                status.as_str()
            ),
        ),
    }
}

async fn purge_queue(State(shared): Fake, Path(endpoint): Path<String>) -> Answer {
    let mut state = shared.lock();
    let Some(ep) = state.endpoints.get_mut(&endpoint) else {
        return unknown_endpoint(&endpoint);
    };
    let removed = ep.purge_queue(Instant::now());
    ok(&json!({"removed": removed, "status": "completed"}))
}

async fn health(State(shared): Fake, Path(endpoint): Path<String>) -> Answer {
    let mut state = shared.lock();
    let Some(ep) = state.endpoints.get_mut(&endpoint) else {
        return unknown_endpoint(&endpoint);
    };
    ok(&ep.health(Instant::now()).to_json())
}

async fn s3_file(
    State(shared): Fake,
    Path((endpoint, job, file)): Path<(String, String, String)>,
) -> Answer {
    let png = shared
        .lock()
        .endpoints
        .get_mut(&endpoint)
        .and_then(|ep| ep.s3_file(&job, &file, Instant::now()));
    match png {
        Some(bytes) => {
            let mut r = Response::new(Body::from(bytes));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("image/png"),
            );
            r
        }
        None => {
            let mut r = Response::new(Body::from(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>",
            ));
            *r.status_mut() = StatusCode::NOT_FOUND;
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/xml"),
            );
            r
        }
    }
}

fn pod_error(e: PodError) -> Answer {
    match e {
        PodError::NotFound => error(StatusCode::NOT_FOUND, "pod not found"),
        PodError::Conflict(m) => error(StatusCode::CONFLICT, &m),
        PodError::Invalid(m) => error(StatusCode::UNPROCESSABLE_ENTITY, &m),
    }
}

/// The body as JSON, or 422 as REST v2 answers a malformed body.
// The refusal is the answer itself; handlers return it as is.
#[allow(clippy::result_large_err)]
fn json_body(bytes: &Bytes) -> Result<Value, Answer> {
    serde_json::from_slice(bytes).map_err(|e| {
        error(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("request body is not valid JSON: {e}"),
        )
    })
}

async fn list_pods(State(shared): Fake) -> Answer {
    let state = shared.lock();
    let now = Instant::now();
    let names = state.config.runtime_names;
    let pods: Vec<Value> = state
        .pods
        .list(now, state.timings())
        .iter()
        .map(|p| state.pods.to_json(p, names, now))
        .collect();
    ok(&Value::Array(pods))
}

async fn create_pod(State(shared): Fake, bytes: Bytes) -> Answer {
    let body = match json_body(&bytes) {
        Ok(body) => body,
        Err(answer) => return answer,
    };
    let created = {
        let mut state = shared.lock();
        let t = state.timings();
        state.pods.create(&body, t, Instant::now())
    };
    let pod = match created {
        Ok(pod) => pod,
        Err(e) => return pod_error(e),
    };
    start_pod_comfy(&shared, &pod).await;
    let state = shared.lock();
    let now = Instant::now();
    // The status at creation (PROVISIONING), whatever time starting the fake ComfyUI took.
    json_response(
        StatusCode::CREATED,
        &state.pods.to_json(&pod, state.config.runtime_names, now),
    )
}

async fn get_pod(State(shared): Fake, Path(id): Path<String>) -> Answer {
    let state = shared.lock();
    let now = Instant::now();
    match state.pods.get(&id, now, state.timings()) {
        Some(pod) => ok(&state.pods.to_json(&pod, state.config.runtime_names, now)),
        None => pod_error(PodError::NotFound),
    }
}

async fn patch_pod(State(shared): Fake, Path(id): Path<String>, bytes: Bytes) -> Answer {
    let body = match json_body(&bytes) {
        Ok(body) => body,
        Err(answer) => return answer,
    };
    let mut state = shared.lock();
    let now = Instant::now();
    let t = state.timings();
    match state.pods.update(&id, &body, now, t) {
        Ok(pod) => ok(&state.pods.to_json(&pod, state.config.runtime_names, now)),
        Err(e) => pod_error(e),
    }
}

async fn delete_pod(State(shared): Fake, Path(id): Path<String>) -> Answer {
    act(&shared, &id, "terminate")
}

fn act(shared: &Shared, id: &str, action: &str) -> Answer {
    let mut state = shared.lock();
    let now = Instant::now();
    let t = state.timings();
    match state.pods.act(id, action, now, t) {
        Ok(effect) => {
            state.comfy_effect(id, effect);
            match state.pods.get(id, now, t) {
                Some(pod) => ok(&state.pods.to_json(&pod, state.config.runtime_names, now)),
                None => Response::new(Body::empty()),
            }
        }
        Err(e) => pod_error(e),
    }
}

async fn pod_action(State(shared): Fake, Path(id): Path<String>, bytes: Bytes) -> Answer {
    let body = match json_body(&bytes) {
        Ok(body) => body,
        Err(answer) => return answer,
    };
    let Some(action) = body.get("action").and_then(Value::as_str) else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "action is required: start, stop, restart or terminate",
        );
    };
    act(&shared, &id, action)
}

async fn catalog() -> Answer {
    ok(&Value::Array(
        GPU_CATALOG.iter().map(|g| g.to_json()).collect(),
    ))
}
