//! A client for one ComfyUI server over HTTP (and, for jobs, its WebSocket), with the server's auth.

pub mod feed;
pub mod follow;
pub mod messages;

use std::time::Duration;

use base64::Engine;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, AUTHORIZATION};
use serde::Deserialize;

use crate::servers::{AuthKind, Credentials};

/// Bodies larger than this are not read: a real `/system_stats` is under 1 KB.
pub const STATS_BODY_LIMIT: usize = 1024 * 1024;
/// `/queue` carries every queued prompt; hundreds of large workflows fit.
pub const QUEUE_BODY_LIMIT: usize = 64 * 1024 * 1024;

/// Why a call to ComfyUI failed, classified for status and messages. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ComfyError {
    #[error("could not connect: {0}")]
    Connect(String),
    #[error("no answer in time")]
    Timeout,
    #[error("the server asks for credentials (HTTP {status})")]
    Unauthorized { status: u16, credentials_sent: bool },
    #[error("the server refused the request (HTTP 403)")]
    Forbidden,
    #[error("the server redirects to {location}")]
    Redirect { location: String },
    #[error("HTTP {status} from {path}")]
    Http {
        status: u16,
        path: String,
        snippet: String,
    },
    #[error("{path} answered with more than {limit} bytes")]
    TooLarge { path: String, limit: usize },
    #[error("{path} did not answer like ComfyUI: {reason}")]
    NotComfy { path: String, reason: String },
    #[error("the connection failed: {0}")]
    Transport(String),
}

/// `GET /system_stats`, as far as ComfyFleet needs it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SystemStats {
    pub system: SystemInfo,
    #[serde(default)]
    pub devices: Vec<DeviceInfo>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SystemInfo {
    #[serde(default)]
    pub os: Option<String>,
    #[serde(default)]
    pub comfyui_version: Option<String>,
    #[serde(default)]
    pub python_version: Option<String>,
    #[serde(default)]
    pub pytorch_version: Option<String>,
    #[serde(default)]
    pub ram_total: Option<u64>,
    #[serde(default)]
    pub ram_free: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DeviceInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub vram_total: u64,
    #[serde(default)]
    pub vram_free: u64,
}

/// Counts from `GET /queue` (items are `[number, prompt_id, prompt, extra, outputs]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueCounts {
    pub running: u32,
    pub pending: u32,
}

#[derive(Deserialize)]
struct QueueBody {
    queue_running: Vec<serde_json::Value>,
    queue_pending: Vec<serde_json::Value>,
}

/// Build the headers a server's auth needs. The ComfyUI-Login token goes as `Bearer` (the plugin
/// checks the scheme case-sensitively).
pub fn auth_headers(creds: Option<&Credentials>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    let Some(creds) = creds else { return headers };
    let Some(secret) = creds.secret.as_ref() else {
        return headers;
    };
    let sensitive = |v: String| {
        HeaderValue::from_str(&v).ok().map(|mut h| {
            h.set_sensitive(true);
            h
        })
    };
    match creds.auth.kind {
        AuthKind::None => {}
        AuthKind::Basic => {
            let user = creds.auth.user.clone().unwrap_or_default();
            let token = base64::engine::general_purpose::STANDARD
                .encode(format!("{user}:{}", secret.expose()));
            if let Some(v) = sensitive(format!("Basic {token}")) {
                headers.insert(AUTHORIZATION, v);
            }
        }
        AuthKind::Bearer | AuthKind::ComfyuiLogin => {
            if let Some(v) = sensitive(format!("Bearer {}", secret.expose())) {
                headers.insert(AUTHORIZATION, v);
            }
        }
        AuthKind::ApiKey => {
            let name = creds.auth.header.as_deref().unwrap_or("X-API-Key");
            if let (Ok(n), Some(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                sensitive(secret.expose().to_string()),
            ) {
                headers.insert(n, v);
            }
        }
    }
    headers
}

/// How long [`ComfyClient::stop`] tries to reach the server.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The HTTP client shared by every server call: no redirects followed (a redirect to a login page
/// means auth is needed), no proxy surprises for loopback, connection reuse.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(30))
        .user_agent(concat!("ComfyFleet/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

/// A client for one server.
#[derive(Clone)]
pub struct ComfyClient {
    http: reqwest::Client,
    base: String,
    headers: HeaderMap,
    credentials_sent: bool,
}

impl ComfyClient {
    pub fn new(http: reqwest::Client, base_url: &str, creds: Option<&Credentials>) -> Self {
        Self {
            http,
            base: base_url.trim_end_matches('/').to_string(),
            headers: auth_headers(creds),
            credentials_sent: creds
                .is_some_and(|c| c.secret.is_some() && c.auth.kind != AuthKind::None),
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        limit: usize,
    ) -> Result<T, ComfyError> {
        let resp = self
            .http
            .get(format!("{}{}", self.base, path))
            .headers(self.headers.clone())
            .send()
            .await
            .map_err(transport_error)?;
        let status = resp.status();
        if status.as_u16() == 401 {
            return Err(ComfyError::Unauthorized {
                status: 401,
                credentials_sent: self.credentials_sent,
            });
        }
        if status.as_u16() == 403 {
            return Err(ComfyError::Forbidden);
        }
        if status.is_redirection() {
            let location = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .unwrap_or("")
                .to_string();
            if location.contains("login") {
                return Err(ComfyError::Unauthorized {
                    status: status.as_u16(),
                    credentials_sent: self.credentials_sent,
                });
            }
            return Err(ComfyError::Redirect { location });
        }
        let body = read_limited(resp, limit, path).await?;
        if !status.is_success() {
            let snippet: String =
                String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            return Err(ComfyError::Http {
                status: status.as_u16(),
                path: path.into(),
                snippet,
            });
        }
        serde_json::from_slice(&body).map_err(|e| ComfyError::NotComfy {
            path: path.into(),
            reason: if body.first().is_some_and(|b| *b == b'<') {
                "it sent an HTML page".into()
            } else {
                format!("unexpected content ({e})")
            },
        })
    }

    /// `GET path` as JSON of any shape, refused past `limit` bytes (the gateway passes node information on).
    pub async fn get_value(
        &self,
        path: &str,
        limit: usize,
    ) -> Result<serde_json::Value, ComfyError> {
        self.get_json(path, limit).await
    }

    /// `GET /system_stats`: versions and devices.
    pub async fn system_stats(&self) -> Result<SystemStats, ComfyError> {
        self.get_json("/system_stats", STATS_BODY_LIMIT).await
    }

    /// `GET /queue`: how many prompts run and wait.
    pub async fn queue(&self) -> Result<QueueCounts, ComfyError> {
        let q: QueueBody = self.get_json("/queue", QUEUE_BODY_LIMIT).await?;
        Ok(QueueCounts {
            running: q.queue_running.len() as u32,
            pending: q.queue_pending.len() as u32,
        })
    }
}

/// What `POST /prompt` answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    pub prompt_id: String,
    pub number: i64,
}

/// Why a prompt was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The server refused the workflow (400): never retried; the message is per node.
    #[error("{message}")]
    Invalid { message: String },
    #[error("{0}")]
    Call(#[from] ComfyError),
    /// Another kind of backend (a RunPod endpoint) did not take the job; `retryable` when trying again may help.
    #[error("{message}")]
    Backend { message: String, retryable: bool },
}

/// A finished prompt as `/history/{id}` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    pub success: bool,
    pub completed: bool,
    /// (node id, image) for every output image.
    pub outputs: Vec<(String, messages::OutputImage)>,
    /// The last status message's kind (`execution_success`, `execution_error`, `execution_interrupted`).
    pub last_message: Option<String>,
    /// For errors: the exception message from the `execution_error` entry.
    pub error: Option<String>,
}

/// Prompt ids in `/queue`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueueIds {
    pub running: Vec<String>,
    pub pending: Vec<String>,
}

impl ComfyClient {
    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<reqwest::Response, ComfyError> {
        let resp = self
            .http
            .post(self.url(path))
            .headers(self.headers.clone())
            .json(body)
            .send()
            .await
            .map_err(transport_error)?;
        match resp.status().as_u16() {
            401 => Err(ComfyError::Unauthorized {
                status: 401,
                credentials_sent: self.credentials_sent,
            }),
            403 => Err(ComfyError::Forbidden),
            _ => Ok(resp),
        }
    }

    /// `POST /prompt` with our own prompt id (so a crash between sending and recording can be
    /// reconciled exactly) and client id (so execution messages come to our socket).
    pub async fn submit(
        &self,
        prompt: Prompt<'_>,
        client_id: &str,
        prompt_id: &str,
    ) -> Result<Submitted, SubmitError> {
        let mut body = serde_json::json!({ "prompt": prompt.workflow, "client_id": client_id, "prompt_id": prompt_id });
        if let Some(extra) = prompt.extra_data {
            body["extra_data"] = extra.clone();
        }
        let resp = self.post_json("/prompt", &body).await?;
        let status = resp.status().as_u16();
        let bytes = read_limited(resp, STATS_BODY_LIMIT, "/prompt").await?;
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| ComfyError::NotComfy {
                path: "/prompt".into(),
                reason: e.to_string(),
            })?;
        match status {
            200 => Ok(Submitted {
                prompt_id: v
                    .get("prompt_id")
                    .and_then(|p| p.as_str())
                    .unwrap_or(prompt_id)
                    .to_string(),
                number: v.get("number").and_then(|n| n.as_i64()).unwrap_or(0),
            }),
            400 => Err(SubmitError::Invalid {
                message: messages::validation_message(&v),
            }),
            _ => Err(ComfyError::Http {
                status,
                path: "/prompt".into(),
                snippet: String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned(),
            }
            .into()),
        }
    }

    /// `GET /history/{id}`: `None` while the prompt is pending, running, or unknown.
    pub async fn history(&self, prompt_id: &str) -> Result<Option<HistoryEntry>, ComfyError> {
        let v: serde_json::Value = self
            .get_json(&format!("/history/{prompt_id}"), QUEUE_BODY_LIMIT)
            .await?;
        let Some(entry) = v.get(prompt_id) else {
            return Ok(None);
        };
        let status = entry.get("status").cloned().unwrap_or_default();
        let msgs = status
            .get("messages")
            .and_then(|m| m.as_array())
            .cloned()
            .unwrap_or_default();
        let last_message = msgs
            .last()
            .and_then(|m| m.get(0))
            .and_then(|k| k.as_str())
            .map(str::to_string);
        let error = msgs
            .iter()
            .find(|m| m.get(0).and_then(|k| k.as_str()) == Some("execution_error"))
            .and_then(|m| m.get(1))
            .map(|d| {
                let node = d
                    .get("node_type")
                    .and_then(|x| x.as_str())
                    .unwrap_or("a node");
                let msg = d
                    .get("exception_message")
                    .and_then(|x| x.as_str())
                    .unwrap_or("failed")
                    .trim();
                format!("{node} failed: {msg}")
            });
        let mut outputs = Vec::new();
        if let Some(serde_json::Value::Object(nodes)) = entry.get("outputs") {
            for (node, out) in nodes {
                for img in messages::images_of(out) {
                    outputs.push((node.clone(), img));
                }
            }
        }
        Ok(Some(HistoryEntry {
            success: status.get("status_str").and_then(|x| x.as_str()) == Some("success"),
            completed: status
                .get("completed")
                .and_then(|x| x.as_bool())
                .unwrap_or(false),
            outputs,
            last_message,
            error,
        }))
    }

    /// Prompt ids running and pending (`/queue` items are `[number, prompt_id, …]`; pending sorted by number).
    pub async fn queue_ids(&self) -> Result<QueueIds, ComfyError> {
        let q: QueueBody = self.get_json("/queue", QUEUE_BODY_LIMIT).await?;
        let ids = |items: Vec<serde_json::Value>| {
            let mut v: Vec<(f64, String)> = items
                .into_iter()
                .filter_map(|i| Some((i.get(0)?.as_f64()?, i.get(1)?.as_str()?.to_string())))
                .collect();
            v.sort_by(|a, b| a.0.total_cmp(&b.0));
            v.into_iter().map(|(_, id)| id).collect()
        };
        Ok(QueueIds {
            running: ids(q.queue_running),
            pending: ids(q.queue_pending),
        })
    }

    /// Interrupt `prompt_id` if it is the one running.
    pub async fn interrupt(&self, prompt_id: &str) -> Result<(), ComfyError> {
        self.post_json("/interrupt", &serde_json::json!({ "prompt_id": prompt_id }))
            .await
            .map(|_| ())
    }

    /// Remove pending prompts from the server's queue.
    pub async fn delete_pending(&self, prompt_ids: &[String]) -> Result<(), ComfyError> {
        self.post_json("/queue", &serde_json::json!({ "delete": prompt_ids }))
            .await
            .map(|_| ())
    }

    /// Stop a prompt wherever it is: removed from the queue if pending, interrupted if running.
    pub async fn stop(&self, prompt_id: &str) {
        // Best effort, and bounded: a server that stopped answering must not keep a cancelled job waiting.
        let stop = async {
            let _ = self.delete_pending(&[prompt_id.to_string()]).await;
            let _ = self.interrupt(prompt_id).await;
        };
        let _ = tokio::time::timeout(STOP_TIMEOUT, stop).await;
    }

    /// `GET /models/{folder}`: the files in one models folder (`None` when the server has no such folder).
    pub async fn models(&self, folder: &str) -> Result<Option<Vec<String>>, ComfyError> {
        match self
            .get_json::<Vec<String>>(&format!("/models/{folder}"), QUEUE_BODY_LIMIT)
            .await
        {
            Ok(v) => Ok(Some(v)),
            Err(ComfyError::Http { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Download an output through `/view` into `dest` (written to a `.part` file, renamed when complete).
    pub async fn download(
        &self,
        image: &messages::OutputImage,
        dest: &std::path::Path,
        limit: u64,
    ) -> Result<u64, ComfyError> {
        // Small outputs (images) are gathered in memory and written in one go; big ones (videos)
        // are streamed to disk past the first few MB.
        self.download_via(image, dest, limit, 16 * 1024 * 1024)
            .await
    }

    async fn download_via(
        &self,
        image: &messages::OutputImage,
        dest: &std::path::Path,
        limit: u64,
        in_memory: usize,
    ) -> Result<u64, ComfyError> {
        use tokio::io::AsyncWriteExt;
        let resp = self
            .http
            .get(self.url("/view"))
            .headers(self.headers.clone())
            .query(&[
                ("filename", image.filename.as_str()),
                ("subfolder", image.subfolder.as_str()),
                ("type", image.kind.as_str()),
            ])
            .send()
            .await
            .map_err(transport_error)?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(ComfyError::Http {
                status,
                path: "/view".into(),
                snippet: String::new(),
            });
        }
        // A unique part name: two downloads of the same output never trip over each other's file.
        let part = dest.with_extension(format!(
            "{}.part",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ));
        let io = {
            let part = part.clone();
            move |e: std::io::Error| {
                ComfyError::Transport(format!("could not write {}: {e}", part.display()))
            }
        };
        let mut buffer = Vec::new();
        let mut file: Option<tokio::fs::File> = None;
        let mut resp = resp;
        let mut written = 0u64;
        let outcome = async {
            while let Some(chunk) = resp.chunk().await.map_err(transport_error)? {
                written += chunk.len() as u64;
                if written > limit {
                    return Err(ComfyError::TooLarge {
                        path: "/view".into(),
                        limit: limit as usize,
                    });
                }
                match file.as_mut() {
                    Some(f) => f.write_all(&chunk).await.map_err(io.clone())?,
                    None if buffer.len() + chunk.len() <= in_memory => {
                        buffer.extend_from_slice(&chunk)
                    }
                    None => {
                        if let Some(dir) = dest.parent() {
                            tokio::fs::create_dir_all(dir).await.map_err(io.clone())?;
                        }
                        let mut f = tokio::fs::File::create(&part).await.map_err(io.clone())?;
                        f.write_all(&buffer).await.map_err(io.clone())?;
                        f.write_all(&chunk).await.map_err(io.clone())?;
                        buffer = Vec::new();
                        file = Some(f);
                    }
                }
            }
            Ok(())
        }
        .await;
        let flushed = match file.take() {
            Some(mut f) => f.flush().await.map_err(io.clone()).map(|_| true),
            None => Ok(false),
        };
        let streamed = match outcome.and(flushed) {
            Ok(streamed) => streamed,
            Err(e) => {
                let _ = tokio::fs::remove_file(&part).await;
                return Err(e);
            }
        };
        let dest = dest.to_path_buf();
        tokio::task::spawn_blocking(move || {
            if !streamed {
                if let Some(dir) = dest.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                std::fs::write(&part, &buffer)?;
            }
            std::fs::rename(&part, &dest).inspect_err(|_| {
                let _ = std::fs::remove_file(&part);
            })
        })
        .await
        .map_err(|e| ComfyError::Transport(e.to_string()))?
        .map_err(io)?;
        Ok(written)
    }

    /// Upload a local image for `LoadImage` (`POST /upload/image`); returns the name the server stored.
    pub async fn upload_image(
        &self,
        file_name: &str,
        bytes: Vec<u8>,
    ) -> Result<String, ComfyError> {
        let part = reqwest::multipart::Part::bytes(bytes).file_name(file_name.to_string());
        let form = reqwest::multipart::Form::new()
            .part("image", part)
            .text("type", "input")
            .text("overwrite", "false");
        let resp = self
            .http
            .post(self.url("/upload/image"))
            .headers(self.headers.clone())
            .multipart(form)
            .send()
            .await
            .map_err(transport_error)?;
        let status = resp.status().as_u16();
        let body = read_limited(resp, STATS_BODY_LIMIT, "/upload/image").await?;
        if status != 200 {
            return Err(ComfyError::Http {
                status,
                path: "/upload/image".into(),
                snippet: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
            });
        }
        let v: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| ComfyError::NotComfy {
                path: "/upload/image".into(),
                reason: e.to_string(),
            })?;
        let name = v.get("name").and_then(|n| n.as_str()).unwrap_or(file_name);
        let sub = v.get("subfolder").and_then(|n| n.as_str()).unwrap_or("");
        Ok(if sub.is_empty() {
            name.to_string()
        } else {
            format!("{sub}/{name}")
        })
    }

    /// The WebSocket URL for `client_id` (ws:// or wss:// matching the server URL).
    pub fn ws_url(&self, client_id: &str) -> String {
        let base = if let Some(rest) = self.base.strip_prefix("https://") {
            format!("wss://{rest}")
        } else {
            format!("ws://{}", self.base.trim_start_matches("http://"))
        };
        format!("{base}/ws?clientId={client_id}")
    }

    /// Pass a reading request (GET or HEAD, path with query) on with this server's credentials; the answer's
    /// status, content type and body (refused past `limit` bytes, given up after `timeout`). Redirects are not
    /// followed. For the gateway's pages and routes of ComfyUI it does not answer itself.
    pub async fn forward(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        limit: usize,
        timeout: Duration,
    ) -> Result<Forwarded, ComfyError> {
        let resp = self
            .http
            .request(method, format!("{}{}", self.base, path_and_query))
            .timeout(timeout)
            .headers(self.headers.clone())
            .send()
            .await
            .map_err(transport_error)?;
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = read_limited(resp, limit, path_and_query).await?;
        Ok(Forwarded {
            status,
            content_type,
            body,
        })
    }

    /// Headers for the WebSocket handshake (the same auth as HTTP).
    pub fn auth_header_map(&self) -> &HeaderMap {
        &self.headers
    }
}

/// What `POST /prompt` sends: the workflow (API format) and what a client wants kept beside it (`extra_data`, e.g. the
/// web page's workflow, which ComfyUI embeds in the images it saves).
#[derive(Debug, Clone, Copy)]
pub struct Prompt<'a> {
    pub workflow: &'a serde_json::Value,
    pub extra_data: Option<&'a serde_json::Value>,
}

impl<'a> Prompt<'a> {
    /// Just the workflow.
    pub fn of(workflow: &'a serde_json::Value) -> Self {
        Prompt {
            workflow,
            extra_data: None,
        }
    }
}

/// A server's answer to a forwarded request.
#[derive(Debug, Clone)]
pub struct Forwarded {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

async fn read_limited(
    mut resp: reqwest::Response,
    limit: usize,
    path: &str,
) -> Result<Vec<u8>, ComfyError> {
    if resp.content_length().is_some_and(|n| n as usize > limit) {
        return Err(ComfyError::TooLarge {
            path: path.into(),
            limit,
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(transport_error)? {
        if body.len() + chunk.len() > limit {
            return Err(ComfyError::TooLarge {
                path: path.into(),
                limit,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn transport_error(e: reqwest::Error) -> ComfyError {
    // reqwest's text names the URL (ours never carries secrets) and the OS error.
    let detail = std::error::Error::source(&e)
        .map(|s| {
            let mut text = s.to_string();
            let mut cur = s.source();
            while let Some(inner) = cur {
                text = inner.to_string();
                cur = inner.source();
            }
            text
        })
        .unwrap_or_else(|| e.to_string());
    if e.is_timeout() {
        ComfyError::Timeout
    } else if e.is_connect() {
        ComfyError::Connect(detail)
    } else {
        ComfyError::Transport(detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::Secret;
    use crate::servers::AuthView;

    fn creds(
        kind: AuthKind,
        user: Option<&str>,
        header: Option<&str>,
        secret: &str,
    ) -> Credentials {
        Credentials {
            auth: AuthView {
                kind,
                user: user.map(Into::into),
                header: header.map(Into::into),
            },
            secret: Some(Secret::new(secret)),
        }
    }

    #[test]
    fn auth_headers_follow_each_auth_kind() {
        let h = auth_headers(Some(&creds(AuthKind::Basic, Some("bob"), None, "pw")));
        assert_eq!(h[AUTHORIZATION], "Basic Ym9iOnB3");
        assert!(h[AUTHORIZATION].is_sensitive());
        let h = auth_headers(Some(&creds(
            AuthKind::ComfyuiLogin,
            None,
            None,
            "$2b$12$abc",
        )));
        assert_eq!(h[AUTHORIZATION], "Bearer $2b$12$abc");
        let h = auth_headers(Some(&creds(AuthKind::Bearer, None, None, "t")));
        assert_eq!(h[AUTHORIZATION], "Bearer t");
        let h = auth_headers(Some(&creds(AuthKind::ApiKey, None, Some("X-API-Key"), "k")));
        assert_eq!(h["x-api-key"], "k");
        assert!(!h.contains_key(AUTHORIZATION));
        let h = auth_headers(None);
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn system_stats_parses_the_recorded_answer() {
        let recorded = r#"{"system": {"os": "posix", "ram_total": 25325273088, "ram_free": 23772950528, "comfyui_version": "0.3.64", "required_frontend_version": "1.27.10", "installed_templates_version": "0.1.95", "required_templates_version": "0.1.95", "python_version": "3.11.7 (main, May  9 2026, 07:35:25) [GCC 12.2.0]", "pytorch_version": "2.8.0+cu128", "embedded_python": false, "argv": ["main.py", "--cpu", "--listen", "127.0.0.1", "--port", "8188"]}, "devices": [{"name": "cpu", "type": "cpu", "index": null, "vram_total": 25325273088, "vram_free": 23772950528, "torch_vram_total": 25325273088, "torch_vram_free": 23772950528}]}"#;
        let s: SystemStats = serde_json::from_str(recorded).unwrap();
        assert_eq!(s.system.comfyui_version.as_deref(), Some("0.3.64"));
        assert_eq!(s.system.pytorch_version.as_deref(), Some("2.8.0+cu128"));
        assert_eq!(s.devices[0].kind, "cpu");
        assert_eq!(s.devices[0].vram_total, 25325273088);
    }

    #[tokio::test]
    async fn download_keeps_small_files_in_memory_streams_big_ones_and_refuses_too_big() {
        let fake = comfyfleet_testkit::FakeComfy::start(Default::default()).await;
        let client = ComfyClient::new(http_client(), &fake.url(), None);
        let bytes: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let name = client.upload_image("big.bin", bytes.clone()).await.unwrap();
        let image = messages::OutputImage {
            filename: name,
            subfolder: String::new(),
            kind: "input".into(),
        };
        let dir = tempfile::tempdir().unwrap();
        for (in_memory, file) in [(1 << 20, "kept.bin"), (4096, "streamed.bin")] {
            let dest = dir.path().join("new folder").join(file);
            let n = client
                .download_via(&image, &dest, 1 << 30, in_memory)
                .await
                .unwrap();
            assert_eq!(n, bytes.len() as u64);
            assert!(std::fs::read(&dest).unwrap() == bytes, "{file} intact");
        }
        let refused = dir.path().join("new folder").join("refused.bin");
        let err = client
            .download_via(&image, &refused, 100_000, 4096)
            .await
            .unwrap_err();
        assert!(matches!(err, ComfyError::TooLarge { .. }), "{err}");
        let left: Vec<_> = std::fs::read_dir(dir.path().join("new folder"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left.len(), 2, "no part or partial file left: {left:?}");
    }
}
