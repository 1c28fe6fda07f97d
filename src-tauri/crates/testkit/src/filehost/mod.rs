//! A file host on loopback for download tests and benchmarks, answering as model hosts and CDNs do: single byte
//! ranges (206, 416), ETag and Last-Modified with If-Range, HEAD, a per-connection throughput cap, dropped
//! connections, a no-Range mode, files that change, a corrupted byte, 302 to another host, Hugging Face headers
//! (`X-Linked-Etag`, `X-Linked-Size`, `X-Repo-Commit`) and gated 401 answers. Every request is recorded.

mod content;
mod serve;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use content::{generate, Content};
pub use serve::{if_range_matches, parse_range, resolve_range, RangeSpec};
use serve::{FileStream, HostBody};

/// How many requests the host records; later ones are served but not recorded.
pub const MAX_HOST_RECORDS: usize = 100_000;

/// Hugging Face's `X-Linked-*` headers, sent on the answer to `/{repo}/resolve/{rev}/{file}` (also on its 302).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Linked {
    /// The content's SHA-256, 64 hex digits (sent quoted, as HF does).
    pub sha256: String,
    pub size: u64,
    pub commit: String,
}

/// Serve one byte wrong (XOR 0x5A at `offset`) for the first `times` requests that cover it (`None`: always),
/// as a flaky CDN would, with unchanged validators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Corruption {
    pub offset: u64,
    pub times: Option<u32>,
}

/// One file on the host and how it answers.
#[derive(Clone, Debug)]
pub struct HostedFile {
    pub content: Content,
    /// Answer `302 Found` with this `Location` instead of the content (like Hugging Face → its CDN).
    pub redirect: Option<String>,
    /// Send Hugging Face's `X-Linked-*` headers.
    pub linked: Option<Linked>,
    /// Gated: without `Authorization: Bearer <token>` answer 401 with `X-Error-Code: GatedRepo`.
    pub token: Option<String>,
    pub corruption: Option<Corruption>,
    /// A new version (other bytes, ETag and Last-Modified) at every request.
    pub changes_every_request: bool,
    /// `Content-Type` of the answer (`None`: `application/octet-stream`).
    pub content_type: Option<String>,
    /// Bytes per second per connection for this file, instead of the host-wide [`HostConfig::rate`].
    pub rate: Option<u64>,
}

impl HostedFile {
    pub fn new(content: Content) -> Self {
        HostedFile {
            content,
            redirect: None,
            linked: None,
            token: None,
            corruption: None,
            changes_every_request: false,
            content_type: None,
            rate: None,
        }
    }

    /// `size` deterministic pseudo-random bytes from `seed` (never held in memory).
    pub fn generated(size: u64, seed: u64) -> Self {
        Self::new(Content::Generated { size, seed })
    }

    pub fn bytes(bytes: impl Into<Vec<u8>>) -> Self {
        Self::new(Content::Bytes(Arc::new(bytes.into())))
    }

    /// A file on disk, read at each request.
    pub fn path(path: impl Into<PathBuf>) -> std::io::Result<Self> {
        let path = path.into();
        let size = std::fs::metadata(&path)?.len();
        Ok(Self::new(Content::Path { path, size }))
    }

    /// A 302 to `location` (an absolute URL), carrying `linked` headers when given.
    pub fn redirect(location: impl Into<String>, linked: Option<Linked>) -> Self {
        HostedFile {
            redirect: Some(location.into()),
            linked,
            ..Self::new(Content::Bytes(Arc::new(Vec::new())))
        }
    }

    pub fn with_linked(mut self, commit: &str) -> Self {
        self.linked = Some(Linked {
            sha256: self.content.sha256(),
            size: self.content.len(),
            commit: commit.into(),
        });
        self
    }

    pub fn gated(mut self, token: &str) -> Self {
        self.token = Some(token.into());
        self
    }

    pub fn corrupted(mut self, offset: u64, times: Option<u32>) -> Self {
        self.corruption = Some(Corruption { offset, times });
        self
    }

    /// Answers with this `Content-Type` (e.g. `text/html` for a package index page).
    pub fn with_content_type(mut self, content_type: &str) -> Self {
        self.content_type = Some(content_type.into());
        self
    }

    /// Caps each connection that fetches this file at `bytes_per_second` (`None`: the host-wide rate).
    pub fn with_rate(mut self, bytes_per_second: Option<u64>) -> Self {
        self.rate = bytes_per_second;
        self
    }
}

/// One request as the host received it, and what it answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostRequest {
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    /// Every header, names lowercased, in the order received.
    pub headers: Vec<(String, String)>,
    pub status: u16,
    /// Body bytes handed to the connection so far.
    pub body_bytes: u64,
}

impl HostRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or("")
    }
}

/// Host-wide behaviour, changeable while running ([`FileHost::set`]).
#[derive(Clone, Debug, Default)]
pub struct HostConfig {
    /// Bytes per second per connection (CDNs cap each connection); `None`: as fast as it goes.
    pub rate: Option<u64>,
    /// Ignore `Range` and answer 200 with the whole file, without `Accept-Ranges`.
    pub no_range: bool,
    /// Drop the connection after this many body bytes ...
    pub drop_after: Option<u64>,
    /// ... for the next this-many body-carrying requests (`None`: every one).
    pub drop_requests: Option<u32>,
    /// Stop sending (keeping the connection open, as a stalled CDN does) after this many body bytes, for the next
    /// body-carrying request only.
    pub stall_after: Option<u64>,
    /// Answer the next this-many requests with `fail_status` (e.g. 503, 429) and `Retry-After: retry_after`.
    pub fail_next: u32,
    pub fail_status: u16,
    pub retry_after: Option<u64>,
}

struct Entry {
    file: HostedFile,
    version: u64,
    corrupt_serves: u32,
}

struct State {
    config: HostConfig,
    files: HashMap<String, Entry>,
    dirs: Vec<(String, PathBuf)>,
    requests: Vec<HostRequest>,
}

/// What the handle, the accept loop and the bodies share.
pub struct Shared {
    state: Mutex<State>,
    sent: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn count_sent(&self, record: Option<usize>, n: u64) {
        self.sent.fetch_add(n, Ordering::Relaxed);
        if let Some(i) = record {
            if let Some(r) = self.lock().requests.get_mut(i) {
                r.body_bytes += n;
            }
        }
    }
}

/// A file host on `127.0.0.1`. Dropping it closes the port and every connection.
pub struct FileHost {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    accept_task: Option<JoinHandle<()>>,
}

impl FileHost {
    /// Starts on a free port. Panics only if the OS has no free loopback port.
    pub async fn start() -> FileHost {
        FileHost::start_on(0)
            .await
            .unwrap_or_else(|e| panic!("file host: cannot bind 127.0.0.1:0: {e}"))
    }

    pub async fn start_on(port: u16) -> std::io::Result<FileHost> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                config: HostConfig::default(),
                files: HashMap::new(),
                dirs: Vec::new(),
                requests: Vec::new(),
            }),
            sent: AtomicU64::new(0),
        });
        let (shutdown, on_shutdown) = watch::channel(false);
        let accept_task = tokio::spawn(accept_loop(listener, shared.clone(), on_shutdown));
        Ok(FileHost {
            shared,
            addr,
            shutdown,
            accept_task: Some(accept_task),
        })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Hosts `file` at `path` (e.g. `/org/model/resolve/main/model.safetensors`; queries are ignored when matching).
    pub fn add(&self, path: &str, file: HostedFile) {
        self.shared.lock().files.insert(
            path.to_string(),
            Entry {
                file,
                version: 0,
                corrupt_serves: 0,
            },
        );
    }

    /// Serves the files of `dir` under `prefix` (e.g. `/files`), read at each request.
    pub fn add_dir(&self, prefix: &str, dir: impl AsRef<Path>) {
        self.shared.lock().dirs.push((
            prefix.trim_end_matches('/').to_string(),
            dir.as_ref().to_path_buf(),
        ));
    }

    /// The file at `path` changes: other bytes (for generated and in-memory content), a new ETag and Last-Modified.
    pub fn change(&self, path: &str) {
        if let Some(e) = self.shared.lock().files.get_mut(path) {
            e.version += 1;
        }
    }

    /// The content `path` serves now.
    pub fn content(&self, path: &str) -> Option<Content> {
        let state = self.shared.lock();
        let e = state.files.get(path)?;
        Some(e.file.content.at_version(e.version))
    }

    /// The SHA-256 (64 hex) of what `path` serves now.
    pub fn sha256(&self, path: &str) -> Option<String> {
        self.content(path).map(|c| c.sha256())
    }

    /// Changes the host-wide behaviour.
    pub fn set(&self, f: impl FnOnce(&mut HostConfig)) {
        f(&mut self.shared.lock().config);
    }

    /// Changes a hosted file in place (e.g. to stop corrupting it).
    pub fn update(&self, path: &str, f: impl FnOnce(&mut HostedFile)) {
        if let Some(e) = self.shared.lock().files.get_mut(path) {
            f(&mut e.file);
        }
    }

    /// Every request so far (the first 100,000), oldest first.
    pub fn requests(&self) -> Vec<HostRequest> {
        self.shared.lock().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }

    /// Body bytes handed to connections since the start, over every request.
    pub fn bytes_sent(&self) -> u64 {
        self.shared.sent.load(Ordering::Relaxed)
    }

    /// Closes the port and every connection, and waits for the accept loop to end.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(t) = self.accept_task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for FileHost {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

impl std::fmt::Debug for FileHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileHost")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = tokio::task::JoinSet::new();
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
                    let mut shutdown = for_connections.clone();
                    connections.spawn(async move {
                        let service = hyper::service::service_fn(move |req| {
                            let shared = shared.clone();
                            async move { Ok::<_, Infallible>(answer(&shared, req)) }
                        });
                        let conn = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service);
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

/// The HF message for a gated repository.
fn gated_message(path: &str) -> String {
    let repo = match path.split_once("/resolve/") {
        Some((repo, _)) => repo.trim_start_matches('/').to_string(),
        None => path.trim_start_matches('/').to_string(),
    };
    format!("Access to model {repo} is restricted. You must have access to it and be authenticated to access it. Please log in.")
}

fn etag_of(content: &Content, version: u64) -> String {
    let id = match content {
        Content::Generated { seed, size } => format!("{seed:x}-{size:x}"),
        Content::Bytes(b) => format!("b{:x}", b.len()),
        Content::Path { size, .. } => format!("p{size:x}"),
    };
    format!("\"{id}-v{version}\"")
}

fn last_modified_of(version: u64) -> String {
    let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_759_276_800); // 2025-10-01
    httpdate::fmt_http_date(base + Duration::from_secs(version * 60))
}

fn response(
    status: StatusCode,
    headers: &[(&'static str, String)],
    body: HostBody,
) -> Response<HostBody> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    for (name, value) in headers {
        if let Ok(v) = hyper::header::HeaderValue::from_str(value) {
            r.headers_mut().append(*name, v);
        }
    }
    r
}

fn answer(shared: &Arc<Shared>, req: Request<hyper::body::Incoming>) -> Response<HostBody> {
    let method = req.method().as_str().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let head = method == "HEAD";
    let path_only = path.split('?').next().unwrap_or("").to_string();

    let mut state = shared.lock();
    let record = (state.requests.len() < MAX_HOST_RECORDS).then(|| {
        state.requests.push(HostRequest {
            method: method.clone(),
            path: path.clone(),
            headers: headers.clone(),
            status: 0,
            body_bytes: 0,
        });
        state.requests.len() - 1
    });
    let config = state.config.clone();
    let found = match state.files.get_mut(&path_only) {
        Some(entry) => {
            if entry.file.changes_every_request {
                entry.version += 1;
            }
            Some((entry.file.clone(), entry.version))
        }
        None => state.dirs.iter().find_map(|(prefix, dir)| {
            let rest = path_only.strip_prefix(prefix.as_str())?.strip_prefix('/')?;
            if rest.is_empty() || rest.split('/').any(|s| s == ".." || s.is_empty()) {
                return None;
            }
            HostedFile::path(dir.join(rest)).ok().map(|f| (f, 0))
        }),
    };
    let Some((file, version)) = found else {
        return finish(
            &mut state,
            record,
            response(
                StatusCode::NOT_FOUND,
                &[("content-type", "text/plain".into())],
                HostBody::Fixed(Some(Bytes::from_static(b"Not Found"))),
            ),
        );
    };

    if state.config.fail_next > 0 {
        state.config.fail_next -= 1;
        let status = StatusCode::from_u16(state.config.fail_status)
            .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        let h: Vec<(&'static str, String)> = state
            .config
            .retry_after
            .map(|s| vec![("retry-after", s.to_string())])
            .unwrap_or_default();
        return finish(
            &mut state,
            record,
            response(status, &h, HostBody::Fixed(None)),
        );
    }
    let content = file.content.at_version(version);
    let size = content.len();
    let mut common: Vec<(&'static str, String)> = Vec::new();
    if let Some(l) = &file.linked {
        common.push(("x-repo-commit", l.commit.clone()));
        common.push(("x-linked-etag", format!("\"{}\"", l.sha256)));
        common.push(("x-linked-size", l.size.to_string()));
    }

    if let Some(token) = &file.token {
        let sent = header("authorization");
        if sent.as_deref() != Some(&format!("Bearer {token}")) {
            let message = gated_message(&path_only);
            let body = serde_json::json!({ "error": message }).to_string();
            let mut h = vec![
                (
                    "content-type",
                    "application/json; charset=utf-8".to_string(),
                ),
                ("x-error-code", "GatedRepo".into()),
                ("x-error-message", message),
            ];
            h.extend(common);
            let body = if head { None } else { Some(Bytes::from(body)) };
            return finish(
                &mut state,
                record,
                response(StatusCode::UNAUTHORIZED, &h, HostBody::Fixed(body)),
            );
        }
    }

    if let Some(location) = &file.redirect {
        let mut h = vec![("location", location.clone())];
        h.extend(common);
        return finish(
            &mut state,
            record,
            response(StatusCode::FOUND, &h, HostBody::Fixed(None)),
        );
    }

    let etag = etag_of(&file.content, version);
    let last_modified = last_modified_of(version);
    common.push(("etag", etag.clone()));
    common.push(("last-modified", last_modified.clone()));
    common.push((
        "content-type",
        file.content_type
            .clone()
            .unwrap_or_else(|| "application/octet-stream".into()),
    ));
    if !config.no_range {
        common.push(("accept-ranges", "bytes".into()));
    }

    let range = if config.no_range {
        None
    } else {
        let usable = header("if-range").is_none_or(|v| if_range_matches(&v, &etag, &last_modified));
        header("range")
            .and_then(|r| parse_range(&r))
            .filter(|_| usable)
    };
    let (status, start, end) = match range {
        None => (StatusCode::OK, 0, size),
        Some(spec) => match resolve_range(spec, size) {
            Some((s, e)) => (StatusCode::PARTIAL_CONTENT, s, e),
            None => {
                let mut h = common;
                h.push(("content-range", format!("bytes */{size}")));
                return finish(
                    &mut state,
                    record,
                    response(StatusCode::RANGE_NOT_SATISFIABLE, &h, HostBody::Fixed(None)),
                );
            }
        },
    };
    let mut h = common;
    h.push(("content-length", (end - start).to_string()));
    if status == StatusCode::PARTIAL_CONTENT {
        h.push(("content-range", format!("bytes {start}-{}/{size}", end - 1)));
    }
    if head {
        return finish(
            &mut state,
            record,
            response(status, &h, HostBody::Fixed(None)),
        );
    }

    let mut drop_after = None;
    if let Some(after) = config.drop_after {
        match config.drop_requests {
            None => drop_after = Some(after),
            Some(0) => {}
            Some(n) => {
                drop_after = Some(after);
                state.config.drop_requests = Some(n - 1);
                if n == 1 {
                    state.config.drop_after = None;
                    state.config.drop_requests = None;
                }
            }
        }
    }
    let stall_after = state.config.stall_after.take();
    let mut corrupt_at = None;
    if let Some(c) = file.corruption {
        if (start..end).contains(&c.offset) {
            let entry = state.files.get_mut(&path_only);
            if let Some(entry) = entry {
                if c.times.is_none_or(|t| entry.corrupt_serves < t) {
                    entry.corrupt_serves += 1;
                    corrupt_at = Some(c.offset);
                }
            }
        }
    }
    let body = FileStream::new(
        content,
        start,
        end,
        file.rate.or(config.rate),
        drop_after,
        corrupt_at,
        shared.clone(),
        record,
    )
    .stalling_after(stall_after);
    finish(
        &mut state,
        record,
        response(status, &h, HostBody::Stream(body)),
    )
}

fn finish(state: &mut State, record: Option<usize>, r: Response<HostBody>) -> Response<HostBody> {
    if let Some(rec) = record.and_then(|i| state.requests.get_mut(i)) {
        rec.status = r.status().as_u16();
    }
    r
}
