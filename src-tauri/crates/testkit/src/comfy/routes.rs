//! The HTTP and WebSocket routes of ComfyUI 0.3.64 (each also under `/api`). Each handler locks the state, calls
//! one method and wraps the answer.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::mpsc;

use super::bodies;
use super::files::{UploadAnswer, ViewAnswer};
use super::fixtures;
use super::gate::{self, json, query_param, server_error, text};
use super::server::{generation_ended, Shared};
use super::state::{Outgoing, PromptAnswer, PyError, SocketRegistration};
use crate::pyjson::OrderedJson;

/// Every route, behind the gate.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let mut router = Router::new();
    for prefix in ["", "/api"] {
        let at = |path: &str| format!("{prefix}{path}");
        router = router
            .route(&at("/ws"), get(websocket))
            .route(&at("/system_stats"), get(system_stats))
            .route(&at("/prompt"), get(get_prompt).post(post_prompt))
            .route(&at("/queue"), get(get_queue).post(post_queue))
            .route(&at("/history"), get(get_history).post(post_history))
            .route(&at("/history/{prompt_id}"), get(get_history_item))
            .route(&at("/object_info"), get(object_info))
            .route(&at("/object_info/{node_class}"), get(object_info_class))
            .route(&at("/models"), get(model_folders))
            .route(&at("/models/{folder}"), get(models))
            .route(&at("/embeddings"), get(embeddings))
            .route(
                &at("/features"),
                get(|| async { fixture(fixtures::FEATURES) }),
            )
            .route(
                &at("/extensions"),
                get(|| async { fixture(fixtures::EXTENSIONS) }),
            )
            .route(&at("/users"), get(|| async { fixture(fixtures::USERS) }))
            .route(
                &at("/settings"),
                get(|| async { fixture(fixtures::SETTINGS) }),
            )
            .route(&at("/interrupt"), post(interrupt))
            .route(&at("/free"), post(free))
            .route(&at("/view"), get(view))
            .route(&at("/upload/image"), post(upload_image));
    }
    router
        // ComfyUI's web page (the frontend's index.html; its scripts and styles are not needed by tests).
        .route("/", get(|| async { index_page() }))
        .fallback(|| async { text(StatusCode::NOT_FOUND, "404: Not Found") })
        .method_not_allowed_fallback(|| async {
            text(StatusCode::METHOD_NOT_ALLOWED, "405: Method Not Allowed")
        })
        .layer(middleware::from_fn_with_state(shared.clone(), gate::gate))
        .with_state(shared)
}

/// The page a browser gets at `/`: a stand-in for the frontend's index.html, marked so tests can tell it apart.
pub const INDEX_TITLE: &str = "ComfyUI (testkit)";

fn index_page() -> Response {
    let mut r = format!("<!doctype html><html><head><title>{INDEX_TITLE}</title></head><body><div id=\"vue-app\"></div></body></html>").into_response();
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

type Fake = State<Arc<Shared>>;

fn ok(body: String) -> Response {
    json(StatusCode::OK, body)
}

fn fixture(body: &'static str) -> Response {
    json(StatusCode::OK, body.to_string())
}

/// 200 with an empty body, or aiohttp's 500.
fn empty_or_error(result: Result<(), PyError>) -> Response {
    match result {
        Ok(()) => StatusCode::OK.into_response(),
        Err(PyError) => server_error(),
    }
}

async fn system_stats(State(fake): Fake) -> Response {
    ok(fake.lock().system_stats())
}

async fn get_prompt(State(fake): Fake) -> Response {
    ok(fake.lock().queue_info())
}

async fn post_prompt(State(fake): Fake, body: Bytes) -> Response {
    match fake.lock().post_prompt(&body) {
        Ok(PromptAnswer::Queued(body)) => ok(body),
        Ok(PromptAnswer::Invalid(body)) => json(StatusCode::BAD_REQUEST, body),
        Err(PyError) => server_error(),
    }
}

async fn get_queue(State(fake): Fake) -> Response {
    ok(fake.lock().queue())
}

async fn post_queue(State(fake): Fake, body: Bytes) -> Response {
    empty_or_error(fake.lock().post_queue(&body))
}

async fn get_history(State(fake): Fake, uri: Uri) -> Response {
    let max_items = query_param(uri.query(), "max_items");
    let offset = query_param(uri.query(), "offset");
    match fake.lock().history(max_items.as_deref(), offset.as_deref()) {
        Ok(body) => ok(body),
        Err(PyError) => server_error(),
    }
}

async fn post_history(State(fake): Fake, body: Bytes) -> Response {
    empty_or_error(fake.lock().post_history(&body))
}

async fn get_history_item(State(fake): Fake, Path(prompt_id): Path<String>) -> Response {
    ok(fake.lock().history_item(&prompt_id))
}

async fn object_info(State(fake): Fake) -> Response {
    ok(fake.lock().object_info())
}

async fn object_info_class(State(fake): Fake, Path(class): Path<String>) -> Response {
    ok(fake.lock().object_info_class(&class))
}

async fn model_folders(State(fake): Fake) -> Response {
    ok(fake.lock().model_folders())
}

async fn models(State(fake): Fake, Path(folder): Path<String>) -> Response {
    match fake.lock().models(&folder) {
        Some(body) => ok(body),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn embeddings(State(fake): Fake) -> Response {
    ok(fake.lock().embeddings())
}

async fn interrupt(State(fake): Fake, body: Bytes) -> Response {
    empty_or_error(fake.lock().post_interrupt(&body))
}

async fn free(State(fake): Fake, body: Bytes) -> Response {
    empty_or_error(fake.lock().post_free(&body))
}

/// `GET /view?filename=F&type=T&subfolder=S`: the file with `Content-Disposition: filename="F"`, or an empty
/// 400/403/404. (`preview=webp;Q` is not converted: the PNG itself is sent.)
async fn view(State(fake): Fake, uri: Uri) -> Response {
    let query = uri.query();
    let param = |name: &str| query_param(query, name);
    let answer = fake.lock().view(
        param("filename").as_deref(),
        param("type").as_deref(),
        param("subfolder").as_deref(),
    );
    match answer {
        ViewAnswer::File {
            name,
            content_type,
            bytes,
        } => {
            let mut response = (StatusCode::OK, bytes).into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            if let Ok(disposition) = HeaderValue::from_str(&format!("filename=\"{name}\"")) {
                headers.insert(header::CONTENT_DISPOSITION, disposition);
            }
            response
        }
        ViewAnswer::Status(code) => StatusCode::from_u16(code)
            .unwrap_or(StatusCode::NOT_FOUND)
            .into_response(),
    }
}

/// `POST /upload/image` (multipart: `image`, optional `type`, `subfolder`, `overwrite`).
async fn upload_image(State(fake): Fake, headers: HeaderMap, body: Bytes) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let answer = fake.lock().upload_image(content_type, &body);
    match answer {
        UploadAnswer::Stored(body) => ok(body),
        UploadAnswer::BadRequest => StatusCode::BAD_REQUEST.into_response(),
        UploadAnswer::ServerError => server_error(),
    }
}

/// `GET /ws?clientId=X`: the socket's id is `clientId`, or a fresh `uuid4().hex`.
async fn websocket(
    State(fake): Fake,
    uri: Uri,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let Ok(upgrade) = upgrade else {
        return text(StatusCode::BAD_REQUEST, "400: Bad Request");
    };
    let sid = query_param(uri.query(), "clientId")
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    upgrade.on_upgrade(move |socket| run_socket(fake, socket, sid))
}

/// Sends `status` first, then whatever the state sends this socket, and answers a first `feature_flags` message,
/// until the client leaves, the fake stops listening, shuts down or drops its sockets (then without a close frame).
async fn run_socket(fake: Arc<Shared>, mut socket: WebSocket, sid: String) {
    let mut lifecycle = fake.lifecycle();
    let generation = lifecycle.borrow().generation;
    let mut drops = fake.socket_drops();
    let SocketRegistration {
        serial,
        first_message,
        rx,
    } = fake.lock().register_socket(&sid);
    let mut outgoing = Some(rx);
    let mut first_incoming = true;
    let mut open = socket
        .send(Message::Text(first_message.into()))
        .await
        .is_ok();
    while open {
        tokio::select! {
            biased;
            _ = generation_ended(&mut lifecycle, generation) => break,
            _ = drops.changed() => break,
            message = next_outgoing(&mut outgoing) => match message {
                Some(Outgoing::Text(message)) => open = socket.send(Message::Text(message.into())).await.is_ok(),
                Some(Outgoing::Binary(frame)) => open = socket.send(Message::Binary(frame.into())).await.is_ok(),
                // Another socket took this client id: this one stays open but hears nothing more.
                None => outgoing = None,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(message))) => {
                    if let Ok(data @ OrderedJson::Object(_)) = OrderedJson::parse(message.as_bytes()) {
                        if first_incoming && data.get("type").and_then(OrderedJson::as_str) == Some("feature_flags") {
                            let client_flags = data.get("data").cloned().unwrap_or(OrderedJson::Null);
                            fake.lock().set_feature_flags(&sid, serial, &client_flags);
                            let flags = bodies::feature_flags_message();
                            open = socket.send(Message::Text(flags.into())).await.is_ok();
                        }
                        first_incoming = false;
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
    fake.lock().unregister_socket(&sid, serial);
}

async fn next_outgoing(rx: &mut Option<mpsc::UnboundedReceiver<Outgoing>>) -> Option<Outgoing> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
