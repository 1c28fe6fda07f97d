//! The effects of one download: requests that follow redirects by hand (credentials stay on their host), segment
//! workers with retries and stall detection, one disk writer, a hasher that follows the written prefix (hashing
//! bytes in memory as they arrive when it can, reading them back only when a later segment got ahead), periodic
//! checkpoints of the state file after an fsync of the part, progress, and the final verified rename.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{
    HeaderMap, ACCEPT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE, ETAG, IF_RANGE, LAST_MODIFIED,
    LOCATION, RANGE, RETRY_AFTER,
};
use tokio::sync::{mpsc, watch};

use super::disk::{free_space, is_disk_full, reserve, start_writeback, try_lock};
use super::hash::{Midstate, Sha256Stream};
use super::plan::{
    self, backoff, classify_status, contiguous_end, done_bytes, judge_range_answer, redact_text,
    redact_url, Failure, Meter, RangeVerdict, Segment, Validators,
};
use super::state::{self, lock_path, part_path, state_path, PartState};
use super::{
    io_error, Control, Credentials, DownloadError, DownloadRequest, Options, Outcome, Phase,
    Progress, ProgressSink,
};

/// A cap on bytes per second shared by every download that uses it (0 or `None`: no cap).
#[derive(Debug)]
pub struct Bandwidth {
    rate: AtomicU64,
    next: Mutex<Instant>,
}

impl Bandwidth {
    pub fn new(bytes_per_sec: Option<u64>) -> Arc<Self> {
        Arc::new(Bandwidth {
            rate: AtomicU64::new(bytes_per_sec.unwrap_or(0)),
            next: Mutex::new(Instant::now()),
        })
    }

    pub fn set(&self, bytes_per_sec: Option<u64>) {
        self.rate
            .store(bytes_per_sec.unwrap_or(0), Ordering::Relaxed);
    }

    pub fn get(&self) -> Option<u64> {
        Some(self.rate.load(Ordering::Relaxed)).filter(|r| *r > 0)
    }

    /// Waits until `n` more bytes fit under the cap.
    pub async fn take(&self, n: u64) {
        let Some(rate) = self.get() else { return };
        let start = {
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let start = (*next).max(now);
            *next = start + Duration::from_secs_f64(n as f64 / rate as f64);
            start
        };
        tokio::time::sleep_until(start.into()).await;
    }
}

/// Why an attempt stopped.
pub(super) enum Stop {
    Fatal(DownloadError),
    /// The part cannot be used (the remote file changed, the server ignored the range…): discard it and start over.
    Restart(String),
    /// Worth trying again after a pause.
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// The disk writer stopped; its error says why.
    Disk,
}

impl From<DownloadError> for Stop {
    fn from(e: DownloadError) -> Self {
        Stop::Fatal(e)
    }
}

/// What every part of one download needs.
struct Ctx<'a> {
    http: &'a reqwest::Client,
    url: url::Url,
    shown: String,
    creds: Option<&'a Credentials>,
    opts: &'a Options,
    connections: u32,
    dest: &'a Path,
    sink: ProgressSink,
}

impl Ctx<'_> {
    fn progress(&self, phase: Phase, downloaded: u64, total: Option<u64>, note: Option<String>) {
        (self.sink)(Progress {
            dest: self.dest.to_path_buf(),
            phase,
            downloaded,
            total,
            bytes_per_sec: 0,
            eta_secs: None,
            note,
        });
    }
}

/// What a response carried on the way (Hugging Face puts these on its 302).
#[derive(Default)]
struct Linked {
    sha256: Option<String>,
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// One GET of `[from, to)` (to the end when `to` is `None`), following redirects.
async fn request_once(
    ctx: &Ctx<'_>,
    from: u64,
    to: Option<u64>,
    if_range: Option<&str>,
) -> Result<(reqwest::Response, Linked), Stop> {
    let mut current = ctx.url.clone();
    let mut linked = Linked::default();
    for _ in 0..10 {
        let mut rb = ctx
            .http
            .get(current.clone())
            .header(ACCEPT_ENCODING, "identity");
        let range = match to {
            Some(end) if end > from => format!("bytes={from}-{}", end - 1),
            _ => format!("bytes={from}-"),
        };
        rb = rb.header(RANGE, range);
        if let Some(v) = if_range {
            rb = rb.header(IF_RANGE, v);
        }
        if let Some(c) = ctx.creds {
            if plan::credential_applies(&c.host, c.https_only, &current) {
                rb = rb.bearer_auth(c.token.expose());
            }
        }
        let response = match tokio::time::timeout(ctx.opts.stall_timeout, rb.send()).await {
            Err(_) => {
                return Err(Stop::Transient {
                    reason: format!("no answer within {} s", ctx.opts.stall_timeout.as_secs()),
                    retry_after: None,
                })
            }
            Ok(Err(e)) => {
                return Err(Stop::Transient {
                    reason: redact_text(&error_chain(&e.without_url())),
                    retry_after: None,
                })
            }
            Ok(Ok(r)) => r,
        };
        let headers = response.headers();
        if let Some(sha) = header(headers, "x-linked-etag").and_then(plan::sha256_from_etag) {
            linked.sha256 = Some(sha);
        }
        let status = response.status().as_u16();
        if matches!(status, 301 | 302 | 303 | 307 | 308) {
            let Some(next) = header(headers, LOCATION.as_str()).and_then(|l| current.join(l).ok())
            else {
                return Err(Stop::Fatal(DownloadError::Http {
                    url: ctx.shown.clone(),
                    status,
                    detail: " (a redirect without a usable Location)".into(),
                }));
            };
            tracing::debug!(from = %redact_url(current.as_str()), to = %redact_url(next.as_str()), "download redirected");
            current = next;
            continue;
        }
        if matches!(status, 200 | 206 | 416) {
            return Ok((response, linked));
        }
        return Err(status_stop(ctx, &response));
    }
    Err(Stop::Fatal(DownloadError::TooManyRedirects {
        url: ctx.shown.clone(),
    }))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = inner.source();
    }
    s
}

fn status_stop(ctx: &Ctx<'_>, response: &reqwest::Response) -> Stop {
    let status = response.status().as_u16();
    let headers = response.headers();
    let code = header(headers, "x-error-code").unwrap_or("");
    if matches!(status, 401 | 403) && code == "GatedRepo" {
        return Stop::Fatal(DownloadError::Gated {
            page: plan::model_page(ctx.url.as_str()),
        });
    }
    match status {
        401 | 403 => Stop::Fatal(DownloadError::Unauthorized {
            url: ctx.shown.clone(),
            status,
            host: ctx.url.host_str().unwrap_or("").to_string(),
        }),
        404 => Stop::Fatal(DownloadError::NotFound {
            url: ctx.shown.clone(),
        }),
        _ if classify_status(status) == Failure::Transient => Stop::Transient {
            reason: format!("the server answered {status}"),
            retry_after: header(headers, RETRY_AFTER.as_str())
                .and_then(|v| plan::parse_retry_after(v, crate::now_ms() as u64 / 1000)),
        },
        _ => Stop::Fatal(DownloadError::Http {
            url: ctx.shown.clone(),
            status,
            detail: header(headers, "x-error-message")
                .map(|m| format!(" ({})", redact_text(m)))
                .unwrap_or_default(),
        }),
    }
}

/// Waits until `control` leaves `Run`, and says why.
async fn halted(control: &mut watch::Receiver<Control>, dest: &Path) -> DownloadError {
    let dest = dest.display().to_string();
    loop {
        match *control.borrow_and_update() {
            Control::Pause => return DownloadError::Paused { dest },
            Control::Cancel => return DownloadError::Cancelled { dest },
            Control::Run => {}
        }
        if control.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// `request_once` with retries and backoff, stopping early on pause or cancel.
async fn request_retrying(
    ctx: &Ctx<'_>,
    control: &mut watch::Receiver<Control>,
    from: u64,
    to: Option<u64>,
    if_range: Option<&str>,
) -> Result<(reqwest::Response, Linked), Stop> {
    let mut attempt = 0;
    loop {
        let result = tokio::select! {
            e = halted(control, ctx.dest) => return Err(Stop::Fatal(e)),
            r = request_once(ctx, from, to, if_range) => r,
        };
        match result {
            Err(Stop::Transient {
                reason,
                retry_after,
            }) => {
                attempt += 1;
                if attempt >= ctx.opts.max_attempts {
                    return Err(Stop::Fatal(DownloadError::Network {
                        url: ctx.shown.clone(),
                        reason,
                    }));
                }
                tracing::info!(url = %ctx.shown, %reason, attempt, "download request failed; retrying");
                tokio::select! {
                    e = halted(control, ctx.dest) => return Err(Stop::Fatal(e)),
                    _ = tokio::time::sleep(backoff(attempt - 1, retry_after)) => {}
                }
            }
            other => return other,
        }
    }
}

/// A finished transfer, before verification.
pub(super) struct Finished {
    sha256: String,
    size: u64,
    expected: Option<String>,
    fetched: u64,
    resumed_from: u64,
}

pub(super) async fn fetch(
    http: &reqwest::Client,
    request: &DownloadRequest,
    opts: &Options,
    mut control: watch::Receiver<Control>,
    sink: ProgressSink,
) -> Result<Outcome, DownloadError> {
    let shown = redact_url(&request.url);
    let url = url::Url::parse(&request.url).map_err(|e| DownloadError::BadUrl {
        url: shown.clone(),
        reason: e.to_string(),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(DownloadError::BadUrl {
            url: shown,
            reason: format!("the scheme is {}", url.scheme()),
        });
    }
    let caller_sha = match &request.sha256 {
        Some(s) => Some(
            plan::normalize_sha256(s)
                .ok_or_else(|| DownloadError::BadChecksum { sha256: s.clone() })?,
        ),
        None => None,
    };
    let dest = request.dest.as_path();
    if dest.file_name().is_none() || dest.is_dir() {
        return Err(DownloadError::BadDestination {
            path: dest.display().to_string(),
            reason: "it is a folder, not a file name".into(),
        });
    }
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| io_error("create the folder", parent, &e))?;

    let ctx = Ctx {
        http,
        url,
        shown,
        creds: request.credentials.as_ref(),
        opts,
        connections: request.connections.unwrap_or(opts.connections),
        dest,
        sink,
    };
    // One process per part: another one downloading the same file is waited for.
    let lock_file = lock_path(dest);
    let mut waited = false;
    let _lock = loop {
        match try_lock(&lock_file).map_err(|e| io_error("lock", &lock_file, &e))? {
            Some(lock) => break lock,
            None => {
                if !waited {
                    waited = true;
                    ctx.progress(
                        Phase::Queued,
                        0,
                        None,
                        Some(
                            "Another ComfyFleet process is downloading this file; waiting for it."
                                .into(),
                        ),
                    );
                }
                tokio::select! {
                    e = halted(&mut control, dest) => return Err(e),
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                }
            }
        }
    };
    if waited && dest.exists() && !state_path(dest).exists() && !part_path(dest).exists() {
        if let Some(sha) = &caller_sha {
            if super::file_matches(dest, sha).await {
                let size = std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0);
                return Ok(Outcome {
                    dest: dest.to_path_buf(),
                    size,
                    sha256: sha.clone(),
                    verified_against: Some("caller".into()),
                    resumed_from: size,
                    fetched: 0,
                    already_present: true,
                    notes: vec![],
                });
            }
        }
    }

    let mut notes: Vec<String> = Vec::new();
    let mut mismatches = 0;
    let mut restarts = 0;
    let mut fetched = 0;
    let mut resumed_from = None;
    loop {
        match attempt(&ctx, &mut control, caller_sha.as_deref()).await {
            Ok(done) => {
                fetched += done.fetched;
                resumed_from.get_or_insert(done.resumed_from);
                if let Some(expected) = done.expected.as_ref().filter(|e| **e != done.sha256) {
                    state::discard(dest);
                    mismatches += 1;
                    if mismatches >= 2 {
                        ctx.progress(Phase::Failed, 0, Some(done.size), None);
                        return Err(DownloadError::ChecksumMismatch {
                            url: ctx.shown.clone(),
                            expected: expected.clone(),
                            actual: done.sha256,
                        });
                    }
                    let note = format!(
                        "The downloaded file did not match its SHA-256 (expected {expected}, got {}); it was discarded and is being downloaded again.",
                        done.sha256
                    );
                    tracing::warn!(url = %ctx.shown, "{note}");
                    ctx.progress(Phase::Connecting, 0, Some(done.size), Some(note.clone()));
                    notes.push(note);
                    continue;
                }
                ctx.progress(Phase::Verifying, done.size, Some(done.size), None);
                finalize(dest)?;
                ctx.progress(Phase::Done, done.size, Some(done.size), None);
                let verified_against = done.expected.as_ref().map(|_| {
                    if caller_sha.is_some() {
                        "caller"
                    } else {
                        "X-Linked-Etag"
                    }
                    .to_string()
                });
                return Ok(Outcome {
                    dest: dest.to_path_buf(),
                    size: done.size,
                    sha256: done.sha256,
                    verified_against,
                    resumed_from: resumed_from.unwrap_or(0),
                    fetched,
                    already_present: false,
                    notes,
                });
            }
            Err(Stop::Restart(note)) => {
                state::discard(dest);
                restarts += 1;
                tracing::warn!(url = %ctx.shown, "{note}");
                if restarts > 3 {
                    return Err(DownloadError::KeepsChanging {
                        url: ctx.shown.clone(),
                    });
                }
                ctx.progress(Phase::Connecting, 0, None, Some(note.clone()));
                notes.push(note);
            }
            Err(Stop::Fatal(e)) => {
                match &e {
                    DownloadError::Cancelled { .. } => state::discard(dest),
                    DownloadError::Paused { .. } | DownloadError::DiskFull { .. } => {
                        ctx.progress(Phase::Paused, 0, None, Some(e.to_string()))
                    }
                    _ => ctx.progress(Phase::Failed, 0, None, Some(e.to_string())),
                }
                return Err(e);
            }
            Err(Stop::Transient { reason, .. }) => {
                return Err(DownloadError::Network {
                    url: ctx.shown.clone(),
                    reason,
                })
            }
            Err(Stop::Disk) => {
                return Err(DownloadError::Io {
                    action: "write".into(),
                    path: part_path(dest).display().to_string(),
                    reason: "the writer stopped".into(),
                })
            }
        }
    }
}

/// The verified part takes the final name: fsync, rename, fsync the folder, drop the state.
fn finalize(dest: &Path) -> Result<(), DownloadError> {
    let part = part_path(dest);
    File::open(&part)
        .and_then(|f| f.sync_all())
        .map_err(|e| io_error("flush", &part, &e))?;
    std::fs::rename(&part, dest).map_err(|e| io_error("rename the finished part to", dest, &e))?;
    if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        if let Ok(d) = File::open(parent) {
            let _ = d.sync_all();
        }
    }
    let _ = std::fs::remove_file(state_path(dest));
    Ok(())
}

/// One pass: resume or start the part, transfer it, hash it.
async fn attempt(
    ctx: &Ctx<'_>,
    control: &mut watch::Receiver<Control>,
    caller_sha: Option<&str>,
) -> Result<Finished, Stop> {
    let dest = ctx.dest;
    let part = part_path(dest);
    let saved = state::load(&state_path(dest)).filter(|s| s.url == ctx.shown && part.exists());
    if saved.is_none() {
        state::discard(dest);
    }
    let resumed = saved.as_ref().map_or(0, |s| done_bytes(&s.segments));
    ctx.progress(
        Phase::Connecting,
        resumed,
        saved.as_ref().and_then(|s| s.total),
        None,
    );

    let (mut st, first) = match saved {
        Some(st) if st.segments.iter().all(Segment::is_done) => (st, None),
        Some(mut st) => {
            let Some(validator) = st.validators.if_range().map(str::to_string) else {
                return Err(Stop::Restart(
                    "The server gave no ETag or Last-Modified date to check the part against, so the download started over.".into(),
                ));
            };
            let i = st.segments.iter().position(|s| !s.is_done()).unwrap_or(0);
            let seg = st.segments[i];
            let (response, _) =
                request_retrying(ctx, control, seg.next(), seg.end, Some(&validator)).await?;
            let verdict = judge(&response, seg.next(), st.total);
            match verdict {
                RangeVerdict::Partial { .. } => (st, Some((i, response))),
                RangeVerdict::AlreadyComplete => {
                    st.segments[i].done = seg.end.unwrap_or(seg.next()) - seg.start;
                    (st, None)
                }
                RangeVerdict::Whole { .. } => {
                    return Err(Stop::Restart(whole_answer_note(
                        &st.validators,
                        response.headers(),
                    )));
                }
                RangeVerdict::Mismatch(why) => {
                    return Err(Stop::Restart(format!(
                        "Could not resume: {why}; the download started over."
                    )))
                }
            }
        }
        None => {
            let (response, linked) = request_retrying(ctx, control, 0, None, None).await?;
            let (ranges, total) = match judge(&response, 0, None) {
                RangeVerdict::Partial { total } => (true, total),
                RangeVerdict::Whole { total } => (false, total),
                RangeVerdict::AlreadyComplete => (false, Some(0)),
                RangeVerdict::Mismatch(why) => {
                    return Err(Stop::Fatal(DownloadError::Http {
                        url: ctx.shown.clone(),
                        status: response.status().as_u16(),
                        detail: format!(" ({why})"),
                    }))
                }
            };
            let connections = ctx.connections.max(1);
            let segments = plan::plan_segments(total, ranges, connections, ctx.opts.min_segment);
            let mut st = PartState::new(
                ctx.shown.clone(),
                validators_of(response.headers()),
                total,
                ranges,
                segments,
            );
            st.expected_sha256 = linked.sha256;
            if let Some(total) = total {
                let dir = dest
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                if let Ok(free) = free_space(dir) {
                    if free < total {
                        return Err(Stop::Fatal(DownloadError::NotEnoughSpace {
                            dir: dir.display().to_string(),
                            needed: plan::human_bytes(total),
                            free: plan::human_bytes(free),
                        }));
                    }
                }
            }
            File::create(&part).map_err(|e| io_error("create", &part, &e))?;
            state::save(&state_path(dest), &st).map_err(|e| disk_error(&part, &e))?;
            (st, Some((0, response)))
        }
    };
    if let Some(sha) = caller_sha {
        st.expected_sha256 = Some(sha.to_string());
    }
    transfer(ctx, control, st, first, resumed).await
}

fn judge(
    response: &reqwest::Response,
    asked_from: u64,
    expected_total: Option<u64>,
) -> RangeVerdict {
    let h = response.headers();
    judge_range_answer(
        response.status().as_u16(),
        header(h, CONTENT_RANGE.as_str()),
        header(h, CONTENT_LENGTH.as_str()).and_then(|v| v.parse().ok()),
        asked_from,
        expected_total,
    )
}

/// Why a range request got the whole file (200): the file changed, or the server does not resume.
fn whole_answer_note(before: &Validators, headers: &HeaderMap) -> String {
    let now = validators_of(headers);
    if now.if_range().is_some() && now != *before {
        "The file changed on the server since the download began, so it started over.".into()
    } else {
        "The server did not resume the download (it sent the whole file again), so it started over."
            .into()
    }
}

fn validators_of(h: &HeaderMap) -> Validators {
    Validators {
        etag: header(h, ETAG.as_str()).map(str::to_string),
        last_modified: header(h, LAST_MODIFIED.as_str()).map(str::to_string),
    }
}

fn disk_error(part: &Path, e: &std::io::Error) -> Stop {
    if is_disk_full(e) {
        Stop::Fatal(DownloadError::DiskFull {
            part: part.display().to_string(),
            reason: e.to_string(),
        })
    } else {
        Stop::Fatal(io_error("write", part, e))
    }
}

/// What the workers, the writer, the hasher and the checkpoints share.
struct Shared {
    /// Segment bounds (`end` fixed once known) and bytes written per segment.
    segments: Mutex<Vec<Segment>>,
    done: Vec<AtomicU64>,
    unsaved: AtomicU64,
    midstate: Mutex<Midstate>,
    all_written: AtomicBool,
    checkpointing: Mutex<()>,
    template: PartState,
}

impl Shared {
    fn snapshot(&self) -> Vec<Segment> {
        let mut segs = self
            .segments
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for (s, d) in segs.iter_mut().zip(&self.done) {
            s.done = d.load(Ordering::Acquire);
        }
        segs
    }

    fn downloaded(&self) -> u64 {
        self.done.iter().map(|d| d.load(Ordering::Relaxed)).sum()
    }

    /// Fsyncs the part, then records what is durable (segments and the hash midstate).
    fn checkpoint(&self, file: &File, path: &Path) -> std::io::Result<()> {
        let _one_at_a_time = self.checkpointing.lock().unwrap_or_else(|p| p.into_inner());
        let midstate = *self.midstate.lock().unwrap_or_else(|p| p.into_inner());
        let segments = self.snapshot();
        self.unsaved.store(0, Ordering::Relaxed);
        file.sync_data()?;
        let mut st = self.template.clone();
        st.segments = segments;
        st.hash = midstate;
        state::save(path, &st)
    }
}

struct Chunk {
    segment: usize,
    offset: u64,
    data: Bytes,
}

/// Writes chunks at their offsets and offers them to the hasher (a busy hasher reads them back from the file later:
/// the transfer never waits for it); stops at the first write error. Writeback of what is written starts at once,
/// in the background, so the checkpoints' fsyncs and the final one have little left to wait for.
fn disk_loop(
    file: &File,
    shared: &Shared,
    mut rx: mpsc::Receiver<Chunk>,
    hash_tx: std_mpsc::SyncSender<(u64, Bytes)>,
) -> std::io::Result<()> {
    let mut write_behind = vec![WriteBehind::default(); shared.done.len()];
    while let Some(c) = rx.blocking_recv() {
        file.write_all_at(&c.data, c.offset)?;
        let n = c.data.len() as u64;
        shared.done[c.segment].fetch_add(n, Ordering::Release);
        shared.unsaved.fetch_add(n, Ordering::Relaxed);
        if let Some((from, len)) = write_behind[c.segment].wrote(c.offset, n) {
            start_writeback(file, from, len);
        }
        // A full channel only means the hasher reads these bytes back from the file later.
        let _ = hash_tx.try_send((c.offset, c.data));
    }
    Ok(())
}

/// Where writeback was last started, per segment: every few MiB of bytes written one after another, the range
/// behind is handed to the kernel to write out.
#[derive(Default, Clone, Copy)]
struct WriteBehind {
    from: u64,
    to: u64,
}

impl WriteBehind {
    const EVERY: u64 = 32 << 20;

    /// Records `n` bytes written at `offset`; returns the range (offset, length) to start writing out, if any.
    fn wrote(&mut self, offset: u64, n: u64) -> Option<(u64, u64)> {
        if offset != self.to {
            self.from = offset;
        }
        self.to = offset + n;
        (self.to - self.from >= Self::EVERY).then(|| {
            let range = (self.from, self.to - self.from);
            self.from = self.to;
            range
        })
    }
}

/// Hashes the part's leading written bytes as they grow, from memory when a chunk arrives right at its position,
/// else from the file. Ends once everything is written and hashed as far as it is contiguous.
fn hash_loop(
    file: &File,
    shared: &Shared,
    rx: std_mpsc::Receiver<(u64, Bytes)>,
) -> std::io::Result<Sha256Stream> {
    let mut h = Sha256Stream::resume(*shared.midstate.lock().unwrap_or_else(|p| p.into_inner()));
    let mut buf = vec![0u8; 1 << 20];
    let publish = |h: &Sha256Stream| {
        *shared.midstate.lock().unwrap_or_else(|p| p.into_inner()) = h.midstate()
    };
    let feed = |h: &mut Sha256Stream, offset: u64, data: &Bytes| {
        let pos = h.position();
        if offset <= pos && offset + data.len() as u64 > pos {
            h.update(&data[(pos - offset) as usize..]);
            true
        } else {
            false
        }
    };
    loop {
        let finished = shared.all_written.load(Ordering::Acquire);
        // In memory first.
        while let Ok((offset, data)) = rx.try_recv() {
            if feed(&mut h, offset, &data) {
                publish(&h);
            }
        }
        let end = contiguous_end(&shared.snapshot());
        if h.position() < end {
            let n = (end - h.position()).min(buf.len() as u64) as usize;
            file.read_exact_at(&mut buf[..n], h.position())?;
            h.update(&buf[..n]);
            publish(&h);
            continue;
        }
        if finished {
            return Ok(h);
        }
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok((offset, data)) => {
                if feed(&mut h, offset, &data) {
                    publish(&h);
                }
            }
            Err(std_mpsc::RecvTimeoutError::Timeout) => {}
            Err(std_mpsc::RecvTimeoutError::Disconnected) => {
                std::thread::sleep(Duration::from_millis(5))
            }
        }
    }
}

/// Streams one segment to the writer, reconnecting on failures, until it is complete.
#[allow(clippy::too_many_arguments)]
async fn worker(
    ctx: &Ctx<'_>,
    shared: &Shared,
    index: usize,
    mut first: Option<reqwest::Response>,
    disk: mpsc::Sender<Chunk>,
    fetched: &AtomicU64,
    if_range: Option<&str>,
    total: Option<u64>,
) -> Result<(), Stop> {
    let seg = shared.segments.lock().unwrap_or_else(|p| p.into_inner())[index];
    let mut next = seg.start + shared.done[index].load(Ordering::Acquire);
    let mut attempt = 0u32;
    loop {
        if seg.end.is_some_and(|e| next >= e) {
            return Ok(());
        }
        let response = match first.take() {
            Some(r) => Ok(r),
            None => match request_once(ctx, next, seg.end, if_range).await {
                Ok((r, _)) => match judge(&r, next, total) {
                    RangeVerdict::Partial { .. } => Ok(r),
                    RangeVerdict::AlreadyComplete => return Ok(()),
                    RangeVerdict::Whole { .. } => {
                        return Err(Stop::Restart(whole_answer_note(
                            &shared.template.validators,
                            r.headers(),
                        )))
                    }
                    RangeVerdict::Mismatch(why) => {
                        return Err(Stop::Restart(format!("{why}; the download started over.")))
                    }
                },
                Err(e) => Err(e),
            },
        };
        let before = next;
        let result = match response {
            Ok(r) => stream(ctx, r, index, &mut next, seg.end, &disk, fetched).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) if seg.end.is_none() => {
                shared.segments.lock().unwrap_or_else(|p| p.into_inner())[index].end = Some(next);
                return Ok(());
            }
            Ok(()) if seg.end.is_some_and(|e| next >= e) => return Ok(()),
            Ok(()) => {
                // The body ended early without an error: try again from where it stopped.
                attempt = if next > before { 0 } else { attempt + 1 };
                if attempt >= ctx.opts.max_attempts {
                    return Err(Stop::Fatal(DownloadError::Network {
                        url: ctx.shown.clone(),
                        reason: "the server keeps ending the transfer early".into(),
                    }));
                }
            }
            Err(Stop::Transient {
                reason,
                retry_after,
            }) => {
                attempt = if next > before { 1 } else { attempt + 1 };
                if attempt >= ctx.opts.max_attempts {
                    return Err(Stop::Fatal(DownloadError::Network {
                        url: ctx.shown.clone(),
                        reason,
                    }));
                }
                tracing::info!(url = %ctx.shown, segment = index, %reason, attempt, "download connection failed; reconnecting");
                tokio::time::sleep(backoff(attempt - 1, retry_after)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Copies a response body to the writer, up to the segment's end.
async fn stream(
    ctx: &Ctx<'_>,
    mut response: reqwest::Response,
    index: usize,
    next: &mut u64,
    end: Option<u64>,
    disk: &mpsc::Sender<Chunk>,
    fetched: &AtomicU64,
) -> Result<(), Stop> {
    loop {
        let mut data = match tokio::time::timeout(ctx.opts.stall_timeout, response.chunk()).await {
            Err(_) => {
                return Err(Stop::Transient {
                    reason: format!("no data for {} s", ctx.opts.stall_timeout.as_secs()),
                    retry_after: None,
                })
            }
            Ok(Err(e)) => {
                return Err(Stop::Transient {
                    reason: redact_text(&error_chain(&e.without_url())),
                    retry_after: None,
                })
            }
            Ok(Ok(None)) => return Ok(()),
            Ok(Ok(Some(data))) => data,
        };
        if let Some(end) = end {
            let room = end.saturating_sub(*next);
            if data.len() as u64 > room {
                data.truncate(room as usize);
            }
        }
        if data.is_empty() {
            return Ok(());
        }
        let n = data.len() as u64;
        if let Some(bw) = &ctx.opts.bandwidth {
            bw.take(n).await;
        }
        fetched.fetch_add(n, Ordering::Relaxed);
        disk.send(Chunk {
            segment: index,
            offset: *next,
            data,
        })
        .await
        .map_err(|_| Stop::Disk)?;
        *next += n;
        if end.is_some_and(|e| *next >= e) {
            return Ok(());
        }
    }
}

/// Moves the bytes: workers, writer, hasher, checkpoints, progress. Returns once every segment is written (and
/// hashed), or with why it stopped, after a last checkpoint that keeps the part resumable.
async fn transfer(
    ctx: &Ctx<'_>,
    control: &mut watch::Receiver<Control>,
    st: PartState,
    first: Option<(usize, reqwest::Response)>,
    resumed: u64,
) -> Result<Finished, Stop> {
    let dest = ctx.dest;
    let part = part_path(dest);
    let state_file = state_path(dest);
    let file = Arc::new(
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&part)
            .map_err(|e| io_error("open", &part, &e))?,
    );
    let total = st.total;
    // New or resumed (say after a full disk was cleared), the rest of the file gets its room now.
    if let Some(total) = total {
        reserve(&file, total);
    }
    let shared = Arc::new(Shared {
        done: st.segments.iter().map(|s| AtomicU64::new(s.done)).collect(),
        segments: Mutex::new(st.segments.clone()),
        unsaved: AtomicU64::new(0),
        midstate: Mutex::new(st.hash),
        all_written: AtomicBool::new(false),
        checkpointing: Mutex::new(()),
        template: st.clone(),
    });
    let (disk_tx, disk_rx) = mpsc::channel::<Chunk>(16);
    let (hash_tx, hash_rx) = std_mpsc::sync_channel::<(u64, Bytes)>(16);
    let writer = {
        let (file, shared) = (file.clone(), shared.clone());
        tokio::task::spawn_blocking(move || disk_loop(&file, &shared, disk_rx, hash_tx))
    };
    let hasher = ctx.opts.verify.then(|| {
        let (file, shared) = (file.clone(), shared.clone());
        tokio::task::spawn_blocking(move || hash_loop(&file, &shared, hash_rx))
    });
    let ticker = {
        let (file, shared, sink, opts) = (
            file.clone(),
            shared.clone(),
            ctx.sink.clone(),
            ctx.opts.clone(),
        );
        let (state_file, dest) = (state_file.clone(), dest.to_path_buf());
        let checkpoint_bytes = plan::checkpoint_bytes(&st.segments, opts.checkpoint_bytes);
        tokio::spawn(async move {
            let origin = Instant::now();
            let mut meter = Meter::new(opts.progress_every);
            let mut last_checkpoint = Instant::now();
            let mut tick =
                tokio::time::interval(opts.progress_every.min(Duration::from_millis(100)));
            loop {
                tick.tick().await;
                let downloaded = shared.downloaded();
                if let Some(rate) = meter.observe(origin.elapsed(), downloaded, total, false) {
                    sink(Progress {
                        dest: dest.clone(),
                        phase: Phase::Downloading,
                        downloaded,
                        total,
                        bytes_per_sec: rate.bytes_per_sec,
                        eta_secs: rate.eta.map(|d| d.as_secs()),
                        note: None,
                    });
                }
                let unsaved = shared.unsaved.load(Ordering::Relaxed);
                if unsaved >= checkpoint_bytes
                    || (unsaved > 0 && last_checkpoint.elapsed() >= opts.checkpoint_every)
                {
                    last_checkpoint = Instant::now();
                    let (file, shared, state_file) =
                        (file.clone(), shared.clone(), state_file.clone());
                    let _ =
                        tokio::task::spawn_blocking(move || shared.checkpoint(&file, &state_file))
                            .await;
                }
            }
        })
    };

    let fetched = AtomicU64::new(0);
    let if_range = st.validators.if_range().map(str::to_string);
    let mut first = first;
    let workers: Vec<_> = (0..st.segments.len())
        .filter(|&i| !st.segments[i].is_done())
        .map(|i| {
            let first = match &first {
                Some((j, _)) if *j == i => first.take().map(|(_, r)| r),
                _ => None,
            };
            worker(
                ctx,
                &shared,
                i,
                first,
                disk_tx.clone(),
                &fetched,
                if_range.as_deref(),
                total,
            )
        })
        .collect();
    drop(disk_tx);
    let result: Result<(), Stop> = tokio::select! {
        e = halted(control, dest) => Err(Stop::Fatal(e)),
        r = futures::future::try_join_all(workers) => r.map(|_| ()),
    };
    // Every sender is gone now: the writer drains what it has and ends.
    let written = writer
        .await
        .unwrap_or_else(|_| Err(std::io::Error::other("the disk writer stopped")));
    shared.all_written.store(true, Ordering::Release);
    let hashed = match hasher {
        Some(h) => h
            .await
            .unwrap_or_else(|_| Err(std::io::Error::other("the hasher stopped")))
            .map(Some),
        None => Ok(None),
    };
    ticker.abort();
    let _ = ticker.await;
    let result = match (result, written) {
        (_, Err(e)) => Err(disk_error(&part, &e)),
        (Err(Stop::Disk), Ok(())) => Err(Stop::Fatal(io_error(
            "write",
            &part,
            &std::io::Error::other("the writer stopped"),
        ))),
        (r, Ok(())) => r,
    };
    let keep = !matches!(
        result,
        Err(Stop::Restart(_)) | Err(Stop::Fatal(DownloadError::Cancelled { .. }))
    );
    if keep {
        let (file, shared, state_file) = (file.clone(), shared.clone(), state_file.clone());
        let saved = tokio::task::spawn_blocking(move || shared.checkpoint(&file, &state_file))
            .await
            .unwrap_or_else(|_| Err(std::io::Error::other("the checkpoint stopped")));
        if let Err(e) = saved {
            if result.is_ok() {
                return Err(disk_error(&part, &e));
            }
        }
    }
    result?;
    let hashed = hashed.map_err(|e| io_error("read back", &part, &e))?;
    let segments = shared.snapshot();
    let size = segments.iter().filter_map(|s| s.end).max().unwrap_or(0);
    if !segments.iter().all(Segment::is_done)
        || hashed.as_ref().is_some_and(|h| h.position() != size)
    {
        return Err(Stop::Restart(
            "The part was incomplete after the transfer, so the download started over.".into(),
        ));
    }
    let on_disk = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    if on_disk != size {
        return Err(Stop::Restart(format!(
            "The part holds {on_disk} bytes instead of {size}, so the download started over."
        )));
    }
    Ok(Finished {
        sha256: hashed.map(Sha256Stream::finish_hex).unwrap_or_default(),
        size,
        expected: st.expected_sha256.clone().filter(|_| ctx.opts.verify),
        fetched: fetched.load(Ordering::Relaxed),
        resumed_from: resumed,
    })
}

#[cfg(test)]
mod tests {
    use super::WriteBehind;

    #[test]
    fn write_behind_starts_writeback_every_32_mib_of_consecutive_writes() {
        let mib = 1u64 << 20;
        let mut w = WriteBehind::default();
        let mut started = vec![];
        for i in 0..80 {
            started.extend(w.wrote(i * mib, mib));
        }
        assert_eq!(started, vec![(0, 32 * mib), (32 * mib, 32 * mib)]);
        // A jump (a resumed segment) starts counting again from there.
        assert_eq!(w.wrote(500 * mib, 31 * mib), None);
        assert_eq!(w.wrote(531 * mib, mib), Some((500 * mib, 32 * mib)));
    }
}
