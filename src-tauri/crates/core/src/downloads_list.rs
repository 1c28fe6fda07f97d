//! The list of downloads a person sees (the desktop Downloads panel): every download started in this session with
//! its state, bytes, speed, ETA and error, plus the verified files the database remembers. It turns a URL and a
//! destination typed by a person into a [`DownloadRequest`] (validated, tokens from the keychain), runs it on the
//! [`Downloads`] queue, steers it by id (pause, resume, cancel, retry), and broadcasts changes with progress
//! throttled per download (state changes always go out). Nothing here ever holds a token in what it shows.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::downloads::{
    credentials_for, human_bytes, plan::normalize_sha256, redact_text, redact_url, DownloadError,
    DownloadRequest, Downloads, Outcome, Phase, Progress, ProgressSink,
};
use crate::secrets::Secrets;
use crate::{ErrorInfo, HasErrorInfo};

/// Progress of one download goes out at most this often (state changes always go out at once).
pub const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// Where a download is, as a person reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum DownloadState {
    /// Waiting for a free slot (or for its first answer).
    Queued,
    /// Connecting, transferring or verifying.
    Running,
    /// Stopped by the person; the part is kept.
    Paused,
    /// Stopped by an error; the part is kept so Retry resumes.
    Failed,
    /// The file is there, verified.
    Done,
    /// Stopped by the person; the part was removed.
    Cancelled,
}

impl DownloadState {
    /// Queued, running or paused: the queue still holds it.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            DownloadState::Queued | DownloadState::Running | DownloadState::Paused
        )
    }

    fn label(self) -> &'static str {
        match self {
            DownloadState::Queued => "queued",
            DownloadState::Running => "downloading",
            DownloadState::Paused => "paused",
            DownloadState::Failed => "failed",
            DownloadState::Done => "finished",
            DownloadState::Cancelled => "cancelled",
        }
    }
}

/// One download as the UI shows it. `url` is redacted; no token is ever in here.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct DownloadItem {
    pub id: String,
    /// Redacted (secret query values replaced by `***`).
    pub url: String,
    /// The absolute path of the final file.
    pub dest: String,
    pub file_name: String,
    pub state: DownloadState,
    /// What it is doing or what happened ("Verifying the SHA-256…", "Already downloaded and verified.").
    pub detail: Option<String>,
    pub downloaded: u64,
    pub total: Option<u64>,
    pub bytes_per_sec: u64,
    pub eta_secs: Option<u64>,
    /// The SHA-256 of the finished file, or the expected one while it downloads.
    pub sha256: Option<String>,
    /// Why it failed (failed downloads only).
    pub error: Option<ErrorInfo>,
    pub added_ms: i64,
    pub updated_ms: i64,
    /// False for a verified file remembered from an earlier session (it can only be shown).
    pub this_session: bool,
}

/// A change the UI should apply to the list: a download now looks like this, or downloads left it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[allow(clippy::large_enum_variant)] // short-lived messages, mostly `Changed`; boxing would only add allocations
pub enum DownloadUpdate {
    Changed {
        item: DownloadItem,
    },
    /// These downloads left the list (Clear finished).
    Removed {
        ids: Vec<String>,
    },
}

/// What a person asks to download.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct DownloadInput {
    pub url: String,
    /// A folder (the file keeps the name from the URL) or a file path; empty or absent: the downloads folder.
    pub destination: Option<String>,
    /// The expected SHA-256 (64 hex digits, `sha256:` prefix accepted).
    pub sha256: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DownloadListError {
    #[error(transparent)]
    Download(#[from] DownloadError),
    #[error("There is no download with id {id}. The list may be out of date: reopen the Downloads page.")]
    UnknownId { id: String },
    #[error("{file} is {state}, so it cannot be {action}.")]
    NotNow {
        file: String,
        state: String,
        action: String,
    },
}

impl HasErrorInfo for DownloadListError {
    fn code(&self) -> &'static str {
        match self {
            DownloadListError::Download(e) => e.code(),
            DownloadListError::UnknownId { .. } => "downloads.unknown_id",
            DownloadListError::NotNow { .. } => "downloads.not_now",
        }
    }
}

type Res<T> = Result<T, DownloadListError>;

/// Checks a URL typed by a person: http(s), with a host.
pub fn parse_url(url: &str) -> Result<url::Url, DownloadError> {
    let text = url.trim();
    let bad = |reason: &str| DownloadError::BadUrl {
        url: redact_url(text),
        reason: reason.into(),
    };
    if text.is_empty() {
        return Err(bad("it is empty"));
    }
    let parsed = url::Url::parse(text).map_err(|e| bad(&e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad(&format!("it starts with {}:", parsed.scheme())));
    }
    if parsed.host_str().unwrap_or("").is_empty() {
        return Err(bad("it has no host"));
    }
    Ok(parsed)
}

/// The file name a URL ends with (percent-decoded, characters no file system accepts replaced by `_`).
pub fn file_name_from_url(url: &url::Url) -> Option<String> {
    let last = url.path_segments()?.rev().find(|s| !s.is_empty())?;
    let decoded = percent_decode(last);
    let name: String = decoded
        .chars()
        .map(|c| {
            if c.is_control() || "<>:\"/\\|?*".contains(c) {
                '_'
            } else {
                c
            }
        })
        .collect();
    let name = name.trim().trim_end_matches('.').to_string();
    (!name.is_empty() && name != "." && name != "..").then_some(name)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Where the file goes: `destination` empty means `default_dir`; an existing folder (or a path ending in a
/// separator) gets the file name from the URL; anything else is the file's own path. It must be absolute.
pub fn resolve_destination(
    url: &url::Url,
    destination: Option<&str>,
    default_dir: &Path,
    is_dir: impl Fn(&Path) -> bool,
) -> Result<PathBuf, DownloadError> {
    let text = destination.map(str::trim).unwrap_or("");
    let name = || {
        file_name_from_url(url).ok_or_else(|| DownloadError::BadDestination {
            path: text.to_string(),
            reason: "the URL does not end with a file name, so give the full path of the file to save (folder and name)".into(),
        })
    };
    if text.is_empty() {
        return Ok(default_dir.join(name()?));
    }
    let path = PathBuf::from(text);
    if !path.is_absolute() {
        return Err(DownloadError::BadDestination {
            path: text.into(),
            reason: "give a full path, such as /home/you/models or C:\\Models (a relative path has no clear place)".into(),
        });
    }
    if text.ends_with('/') || text.ends_with('\\') || is_dir(&path) {
        return Ok(path.join(name()?));
    }
    Ok(path)
}

/// The item after a progress report: bytes, speed and ETA, and the state the phase means. Reports that carry no
/// byte count (connecting, paused, failed) keep the last known bytes.
pub fn apply_progress(item: &mut DownloadItem, p: &Progress, now_ms: i64) {
    let (state, detail) = match p.phase {
        Phase::Queued => (DownloadState::Queued, p.note.clone()),
        Phase::Connecting => (
            DownloadState::Running,
            p.note.clone().or_else(|| Some("Connecting…".into())),
        ),
        Phase::Downloading => (DownloadState::Running, p.note.clone()),
        Phase::Verifying => (
            DownloadState::Running,
            Some("Verifying the SHA-256…".into()),
        ),
        // Done only once the result is in (with its checksum and how it was verified): until then it is finishing.
        Phase::Done => (DownloadState::Running, Some("Finishing…".into())),
        Phase::Paused => (
            DownloadState::Paused,
            p.note.clone().filter(|n| !n.contains("was paused")),
        ),
        // The error itself arrives with the result.
        Phase::Failed => (item.state, item.detail.clone()),
    };
    let carries_bytes =
        matches!(p.phase, Phase::Downloading | Phase::Verifying | Phase::Done) || p.downloaded > 0;
    if carries_bytes {
        item.downloaded = p.downloaded;
    }
    if p.total.is_some() {
        item.total = p.total;
    }
    let moving = p.phase == Phase::Downloading;
    item.bytes_per_sec = if moving { p.bytes_per_sec } else { 0 };
    item.eta_secs = if moving { p.eta_secs } else { None };
    // Bytes in flight when a pause was asked for still arrive; the download stays paused until resumed.
    let late = item.state == DownloadState::Paused && state == DownloadState::Running;
    if !late {
        item.state = state;
        item.detail = detail.map(|d| redact_text(&d));
    }
    item.updated_ms = now_ms;
}

/// The item once the download ended.
pub fn apply_result(item: &mut DownloadItem, result: &Result<Outcome, DownloadError>, now_ms: i64) {
    item.bytes_per_sec = 0;
    item.eta_secs = None;
    item.updated_ms = now_ms;
    match result {
        Ok(o) => {
            item.state = DownloadState::Done;
            item.downloaded = o.size;
            item.total = Some(o.size);
            item.sha256 = Some(o.sha256.clone());
            item.error = None;
            item.detail = Some(if o.already_present {
                "Already downloaded and verified.".into()
            } else {
                match o.verified_against.as_deref() {
                    Some("caller") => "Verified: matches the SHA-256 you gave.".into(),
                    Some(from) => {
                        format!("Verified: matches the SHA-256 the server gave ({from}).")
                    }
                    None => {
                        "The server gave no checksum; the SHA-256 is shown for reference.".into()
                    }
                }
            });
        }
        Err(DownloadError::Cancelled { .. }) => {
            item.state = DownloadState::Cancelled;
            item.detail = None;
            item.error = None;
            item.downloaded = 0;
        }
        Err(e) => {
            let mut info = e.to_info();
            info.message = redact_text(&info.message);
            info.details = info.details.map(|d| redact_text(&d));
            item.state = DownloadState::Failed;
            item.detail = None;
            item.error = Some(info);
        }
    }
}

/// Lets progress of one download through at most once per `every`; a change of state always goes through.
#[derive(Debug)]
pub struct Throttle {
    every: Duration,
    last: HashMap<String, (DownloadState, Instant)>,
}

impl Throttle {
    pub fn new(every: Duration) -> Self {
        Throttle {
            every,
            last: HashMap::new(),
        }
    }

    /// Whether an update of `id` in `state` at `now` goes out.
    pub fn admit(&mut self, id: &str, state: DownloadState, now: Instant) -> bool {
        let pass = match self.last.get(id) {
            Some((s, at)) => *s != state || now.duration_since(*at) >= self.every,
            None => true,
        };
        if pass {
            self.last.insert(id.to_string(), (state, now));
        }
        pass
    }
}

/// What the list keeps about one download of this session: the request to run again on Retry (with the
/// unredacted URL, which never leaves this process) and what is shown.
struct Entry {
    url: String,
    sha256: Option<String>,
    item: DownloadItem,
}

struct Inner {
    downloads: Downloads,
    secrets: Secrets,
    default_dir: PathBuf,
    /// Oldest first.
    entries: Mutex<Vec<Entry>>,
    throttle: Mutex<Throttle>,
    updates: broadcast::Sender<DownloadUpdate>,
    /// Unfinished downloads of earlier sessions were taken into the list.
    adopted: std::sync::atomic::AtomicBool,
}

/// The downloads of this session and the remembered verified files. Cheap to clone.
#[derive(Clone)]
pub struct DownloadList {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl DownloadList {
    /// A list over `downloads`; files without a destination go to `default_dir`.
    pub fn new(downloads: Downloads, secrets: Secrets, default_dir: PathBuf) -> Self {
        Self::with_throttle(downloads, secrets, default_dir, PROGRESS_EVERY)
    }

    pub fn with_throttle(
        downloads: Downloads,
        secrets: Secrets,
        default_dir: PathBuf,
        progress_every: Duration,
    ) -> Self {
        DownloadList {
            inner: Arc::new(Inner {
                downloads,
                secrets,
                default_dir,
                entries: Mutex::new(Vec::new()),
                throttle: Mutex::new(Throttle::new(progress_every)),
                updates: broadcast::channel(1024).0,
                adopted: Default::default(),
            }),
        }
    }

    /// The queue underneath (for callers that wait for a file themselves).
    pub fn downloads(&self) -> &Downloads {
        &self.inner.downloads
    }

    /// Where files without a destination go.
    pub fn default_dir(&self) -> &Path {
        &self.inner.default_dir
    }

    /// Every change from now on (progress throttled per download).
    pub fn subscribe(&self) -> broadcast::Receiver<DownloadUpdate> {
        self.inner.updates.subscribe()
    }

    /// The downloads of this session, newest first.
    pub fn session(&self) -> Vec<DownloadItem> {
        lock(&self.inner.entries)
            .iter()
            .rev()
            .map(|e| e.item.clone())
            .collect()
    }

    /// The downloads of this session (newest first), then the verified files remembered from before.
    pub async fn list(&self) -> Res<Vec<DownloadItem>> {
        let records = self.inner.downloads.list().await?;
        self.adopt_unfinished(&records);
        let mut items = self.session();
        for r in records
            .into_iter()
            .filter(|r| r.state == "done" && r.listed)
        {
            if items.iter().any(|i| i.dest == r.dest) {
                continue;
            }
            let size = r.total.unwrap_or(r.downloaded);
            items.push(DownloadItem {
                id: format!("saved:{}", r.dest),
                url: redact_url(&r.url),
                file_name: Path::new(&r.dest)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| r.dest.clone()),
                dest: r.dest,
                state: DownloadState::Done,
                detail: None,
                downloaded: size,
                total: Some(size),
                bytes_per_sec: 0,
                eta_secs: None,
                sha256: r.sha256,
                error: None,
                added_ms: r.updated_ms,
                updated_ms: r.updated_ms,
                this_session: false,
            });
        }
        Ok(items)
    }

    /// Downloads an earlier session left unfinished (the app quit or crashed) join this session's list as stopped,
    /// with Retry going on from their part. Done once per list; ones whose URL held a secret (shown redacted) or
    /// whose part is gone are left out, since they could not go on.
    fn adopt_unfinished(&self, records: &[crate::downloads::DownloadRecord]) {
        if self
            .inner
            .adopted
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return;
        }
        let mut adopted = Vec::new();
        {
            let mut entries = lock(&self.inner.entries);
            for r in records.iter().filter(|r| r.state != "done") {
                let part = crate::downloads::state::part_path(Path::new(&r.dest));
                if entries.iter().any(|e| e.item.dest == r.dest)
                    || r.url.contains("***")
                    || !part.is_file()
                {
                    continue;
                }
                let downloaded = std::fs::metadata(&part)
                    .map(|m| m.len())
                    .unwrap_or(r.downloaded);
                let so_far = match r.total {
                    Some(t) => format!("{} of {}", human_bytes(downloaded), human_bytes(t)),
                    None => human_bytes(downloaded),
                };
                let item = DownloadItem {
                    id: uuid::Uuid::new_v4().to_string(),
                    url: r.url.clone(),
                    file_name: Path::new(&r.dest)
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_else(|| r.dest.clone()),
                    dest: r.dest.clone(),
                    state: DownloadState::Failed,
                    detail: None,
                    downloaded,
                    total: r.total,
                    bytes_per_sec: 0,
                    eta_secs: None,
                    sha256: None,
                    error: Some(crate::ErrorInfo {
                        code: "downloads.interrupted".into(),
                        message: format!(
                            "Stopped when ComfyFleet last closed, with {so_far} downloaded. Retry goes on from there."
                        ),
                        details: None,
                    }),
                    added_ms: r.updated_ms,
                    updated_ms: crate::now_ms(),
                    this_session: true,
                };
                entries.push(Entry {
                    url: r.url.clone(),
                    sha256: None,
                    item: item.clone(),
                });
                adopted.push(item);
            }
        }
        for item in &adopted {
            self.publish(item, true);
        }
    }

    /// The finished, verified file at `path`, if this list knows one there (for "Show in folder").
    pub async fn finished_file(&self, path: &str) -> Option<PathBuf> {
        let known = self
            .list()
            .await
            .ok()?
            .into_iter()
            .any(|i| i.state == DownloadState::Done && i.dest == path);
        let file = PathBuf::from(path);
        (known && file.is_file()).then_some(file)
    }

    /// Validates `input` and starts the download (or returns the one already under way to the same file).
    pub async fn add(&self, input: DownloadInput) -> Res<DownloadItem> {
        let parsed = parse_url(&input.url)?;
        let sha256 = match input
            .sha256
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(s) => Some(
                normalize_sha256(s).ok_or_else(|| DownloadError::BadChecksum {
                    sha256: s.to_string(),
                })?,
            ),
            None => None,
        };
        let dest = resolve_destination(
            &parsed,
            input.destination.as_deref(),
            &self.inner.default_dir,
            Path::is_dir,
        )?;
        let dest = std::path::absolute(&dest).unwrap_or(dest);
        if dest.is_dir() {
            return Err(DownloadError::BadDestination {
                path: dest.display().to_string(),
                reason: "it is a folder".into(),
            }
            .into());
        }
        let url = input.url.trim().to_string();
        let shown = redact_url(&url);
        let dest_text = dest.display().to_string();
        let now = crate::now_ms();
        let item = {
            let mut entries = lock(&self.inner.entries);
            if let Some(e) = entries
                .iter()
                .find(|e| e.item.dest == dest_text && e.item.state.is_active())
            {
                if e.item.url == shown {
                    return Ok(e.item.clone());
                }
                return Err(DownloadError::Conflict {
                    dest: dest_text,
                    url: e.item.url.clone(),
                }
                .into());
            }
            // A finished or failed download of the same file is replaced by the new one.
            entries.retain(|e| e.item.dest != dest_text);
            let item = DownloadItem {
                id: uuid::Uuid::new_v4().to_string(),
                url: shown,
                file_name: dest
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| dest_text.clone()),
                dest: dest_text,
                state: DownloadState::Queued,
                detail: None,
                downloaded: 0,
                total: None,
                bytes_per_sec: 0,
                eta_secs: None,
                sha256: sha256.clone(),
                error: None,
                added_ms: now,
                updated_ms: now,
                this_session: true,
            };
            entries.push(Entry {
                url,
                sha256,
                item: item.clone(),
            });
            item
        };
        self.publish(&item, true);
        self.spawn(item.id.clone());
        Ok(item)
    }

    /// Pauses a queued or running download (the part is kept).
    pub fn pause(&self, id: &str) -> Res<DownloadItem> {
        let (dest, state, file) = self.peek(id)?;
        if !matches!(state, DownloadState::Queued | DownloadState::Running)
            || !self.inner.downloads.pause(Path::new(&dest))
        {
            return Err(not_now(&file, state, "paused"));
        }
        self.update(id, |i| {
            i.state = DownloadState::Paused;
            i.bytes_per_sec = 0;
            i.eta_secs = None;
            i.detail = None;
        })
    }

    /// Resumes a paused download from where it stopped.
    pub fn resume(&self, id: &str) -> Res<DownloadItem> {
        let (dest, state, file) = self.peek(id)?;
        if state != DownloadState::Paused || !self.inner.downloads.resume(Path::new(&dest)) {
            return Err(not_now(&file, state, "resumed"));
        }
        self.update(id, |i| {
            i.state = DownloadState::Queued;
            i.detail = None;
        })
    }

    /// Cancels a download and removes its part. A failed one is cancelled too (its kept part is removed).
    pub fn cancel(&self, id: &str) -> Res<DownloadItem> {
        let (dest, state, file) = self.peek(id)?;
        match state {
            DownloadState::Queued | DownloadState::Running | DownloadState::Paused => {
                if !self.inner.downloads.cancel(Path::new(&dest)) {
                    return Err(not_now(&file, state, "cancelled"));
                }
                // The result of the transfer marks it cancelled once the part is gone.
                self.update(id, |i| i.detail = Some("Cancelling…".into()))
            }
            DownloadState::Failed => {
                crate::downloads::state::discard(Path::new(&dest));
                self.update(id, |i| {
                    i.state = DownloadState::Cancelled;
                    i.downloaded = 0;
                    i.error = None;
                })
            }
            _ => Err(not_now(&file, state, "cancelled")),
        }
    }

    /// Runs a failed or cancelled download again (a failed one resumes from its part).
    pub fn retry(&self, id: &str) -> Res<DownloadItem> {
        let (_, state, file) = self.peek(id)?;
        if !matches!(state, DownloadState::Failed | DownloadState::Cancelled) {
            return Err(not_now(&file, state, "retried"));
        }
        let item = self.update(id, |i| {
            i.state = DownloadState::Queued;
            i.error = None;
            i.detail = None;
        })?;
        self.spawn(id.to_string());
        Ok(item)
    }

    /// Takes the finished and cancelled downloads out of the list (files stay on disk, and a verified file is still
    /// not fetched again); those under way, paused or failed stay. Returns the ids that left, also sent as
    /// [`DownloadUpdate::Removed`].
    pub async fn clear_finished(&self) -> Res<Vec<String>> {
        // The files remembered from earlier sessions, then this session's (decided under its lock, so one retried
        // meanwhile stays).
        let mut ids: Vec<String> = self
            .list()
            .await?
            .into_iter()
            .filter(|i| !i.this_session)
            .map(|i| i.id)
            .collect();
        self.inner.downloads.unlist_done().await?;
        lock(&self.inner.entries).retain(|e| {
            let cleared = matches!(e.item.state, DownloadState::Done | DownloadState::Cancelled);
            if cleared {
                ids.push(e.item.id.clone());
            }
            !cleared
        });
        if !ids.is_empty() {
            tracing::info!(
                count = ids.len(),
                "finished downloads cleared from the list"
            );
            let _ = self
                .inner
                .updates
                .send(DownloadUpdate::Removed { ids: ids.clone() });
        }
        Ok(ids)
    }

    fn peek(&self, id: &str) -> Res<(String, DownloadState, String)> {
        lock(&self.inner.entries)
            .iter()
            .find(|e| e.item.id == id)
            .map(|e| (e.item.dest.clone(), e.item.state, e.item.file_name.clone()))
            .ok_or_else(|| DownloadListError::UnknownId { id: id.into() })
    }

    fn update(&self, id: &str, change: impl FnOnce(&mut DownloadItem)) -> Res<DownloadItem> {
        let item = {
            let mut entries = lock(&self.inner.entries);
            let e = entries
                .iter_mut()
                .find(|e| e.item.id == id)
                .ok_or_else(|| DownloadListError::UnknownId { id: id.into() })?;
            change(&mut e.item);
            e.item.updated_ms = crate::now_ms();
            e.item.clone()
        };
        self.publish(&item, true);
        Ok(item)
    }

    /// Sends a change to every subscriber: progress through the throttle, anything else (`always`) at once.
    fn publish(&self, item: &DownloadItem, always: bool) {
        let admitted = lock(&self.inner.throttle).admit(&item.id, item.state, Instant::now());
        if admitted || always {
            let _ = self
                .inner
                .updates
                .send(DownloadUpdate::Changed { item: item.clone() });
        }
    }

    /// Runs the download of `id` on the queue until it ends, keeping its item up to date.
    fn spawn(&self, id: String) {
        let me = self.clone();
        tokio::spawn(async move {
            let Some((url, dest, sha256)) = lock(&me.inner.entries)
                .iter()
                .find(|e| e.item.id == id)
                .map(|e| (e.url.clone(), e.item.dest.clone(), e.sha256.clone()))
            else {
                return;
            };
            let credentials = match credentials_for(&me.inner.secrets, &url).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!("no token for a download: the keychain could not be read: {e}");
                    let _ = me.update(&id, |i| {
                        i.detail = Some(format!(
                            "The keychain could not be read ({e}); downloading without a token."
                        ));
                    });
                    None
                }
            };
            let mut request = DownloadRequest::new(url, dest);
            request.sha256 = sha256;
            request.credentials = credentials;
            let sink: ProgressSink = {
                let (me, id) = (me.clone(), id.clone());
                Arc::new(move |p: Progress| {
                    let item = {
                        let mut entries = lock(&me.inner.entries);
                        let Some(e) = entries.iter_mut().find(|e| e.item.id == id) else {
                            return;
                        };
                        apply_progress(&mut e.item, &p, crate::now_ms());
                        e.item.clone()
                    };
                    me.publish(&item, false);
                })
            };
            let result = me.inner.downloads.download(request, sink).await;
            let _ = me.update(&id, |i| apply_result(i, &result, crate::now_ms()));
        });
    }
}

fn not_now(file: &str, state: DownloadState, action: &str) -> DownloadListError {
    DownloadListError::NotNow {
        file: file.into(),
        state: state.label().into(),
        action: action.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::downloads::Options;
    use crate::store::Store;
    use comfyfleet_testkit::{FileHost, HostedFile};

    const MIB: u64 = 1 << 20;

    fn url(s: &str) -> url::Url {
        url::Url::parse(s).unwrap()
    }

    fn item() -> DownloadItem {
        DownloadItem {
            id: "a".into(),
            url: "http://h/f.bin".into(),
            dest: "/d/f.bin".into(),
            file_name: "f.bin".into(),
            state: DownloadState::Queued,
            detail: None,
            downloaded: 0,
            total: None,
            bytes_per_sec: 0,
            eta_secs: None,
            sha256: None,
            error: None,
            added_ms: 0,
            updated_ms: 0,
            this_session: true,
        }
    }

    fn progress(phase: Phase, downloaded: u64, total: Option<u64>) -> Progress {
        Progress {
            dest: "/d/f.bin".into(),
            phase,
            downloaded,
            total,
            bytes_per_sec: 1000,
            eta_secs: Some(7),
            note: None,
        }
    }

    #[test]
    fn downloads_list_rejects_urls_that_are_not_http_links() {
        for (text, reason) in [
            ("", "empty"),
            ("ftp://example.com/a.bin", "ftp:"),
            ("example.com/a.bin", "relative URL"),
            ("file:///etc/passwd", "file:"),
        ] {
            let e = parse_url(text).unwrap_err();
            assert_eq!(e.code(), "downloads.bad_url");
            assert!(e.to_string().contains(reason), "{text}: {e}");
            assert!(e.to_string().contains("http:// or https://"), "{e}");
        }
        assert!(parse_url(" https://huggingface.co/a/b/resolve/main/m.safetensors ").is_ok());
        // A token in the URL never shows in the error.
        let e = parse_url("gopher://h/x?token=SECRET123").unwrap_err();
        assert!(!e.to_string().contains("SECRET123"), "{e}");
    }

    #[test]
    fn downloads_list_takes_the_file_name_from_the_url() {
        assert_eq!(
            file_name_from_url(&url(
                "https://huggingface.co/o/r/resolve/main/sd%20xl.safetensors?download=true"
            ))
            .as_deref(),
            Some("sd xl.safetensors")
        );
        assert_eq!(
            file_name_from_url(&url("https://h/dir/")).as_deref(),
            Some("dir")
        );
        assert_eq!(
            file_name_from_url(&url("https://h/a%2F..%5Cb")).as_deref(),
            Some("a_.._b")
        );
        assert_eq!(file_name_from_url(&url("https://h/")), None);
        assert_eq!(file_name_from_url(&url("https://h/..")), None);
    }

    #[test]
    fn downloads_list_resolves_folders_files_and_the_default_folder() {
        let u = url("https://h/models/m.bin");
        let default = Path::new("/home/me/.comfyfleet/downloads");
        let dirs = |p: &Path| p == Path::new("/data/models");
        let r = |d: Option<&str>| resolve_destination(&u, d, default, dirs);
        assert_eq!(r(None).unwrap(), default.join("m.bin"));
        assert_eq!(r(Some("  ")).unwrap(), default.join("m.bin"));
        assert_eq!(
            r(Some("/data/models")).unwrap(),
            PathBuf::from("/data/models/m.bin")
        );
        assert_eq!(
            r(Some("/new/folder/")).unwrap(),
            PathBuf::from("/new/folder/m.bin")
        );
        assert_eq!(
            r(Some("/data/models/x.ckpt")).unwrap(),
            PathBuf::from("/data/models/x.ckpt")
        );
        let e = r(Some("models/m.bin")).unwrap_err();
        assert_eq!(e.code(), "downloads.bad_destination");
        assert!(e.to_string().contains("full path"), "{e}");
        let e = resolve_destination(&url("https://h/"), None, default, dirs).unwrap_err();
        assert!(
            e.to_string().contains("does not end with a file name"),
            "{e}"
        );
    }

    #[test]
    fn downloads_list_maps_progress_to_states_and_keeps_bytes_across_pauses() {
        let mut i = item();
        apply_progress(&mut i, &progress(Phase::Connecting, 0, None), 1);
        assert_eq!(i.state, DownloadState::Running);
        assert_eq!(i.detail.as_deref(), Some("Connecting…"));
        apply_progress(&mut i, &progress(Phase::Downloading, 500, Some(2000)), 2);
        assert_eq!(
            (i.downloaded, i.total, i.bytes_per_sec, i.eta_secs),
            (500, Some(2000), 1000, Some(7))
        );
        assert_eq!(i.detail, None);
        let mut paused = progress(Phase::Paused, 0, None);
        paused.note = Some("The download of /d/f.bin was paused; resume it to go on.".into());
        apply_progress(&mut i, &paused, 3);
        assert_eq!(i.state, DownloadState::Paused);
        assert_eq!(
            (i.downloaded, i.total, i.bytes_per_sec, i.eta_secs),
            (500, Some(2000), 0, None)
        );
        assert_eq!(i.detail, None);
        apply_progress(&mut i, &progress(Phase::Downloading, 600, Some(2000)), 4);
        assert_eq!(
            (i.state, i.downloaded),
            (DownloadState::Paused, 600),
            "late bytes"
        );
        i.state = DownloadState::Queued; // resumed
        apply_progress(&mut i, &progress(Phase::Verifying, 2000, Some(2000)), 4);
        assert_eq!(i.state, DownloadState::Running);
        assert!(i.detail.as_deref().unwrap().contains("Verifying"));
        assert_eq!(i.updated_ms, 4);
        // The engine's last report does not make it Done: the result does, with its checksum.
        apply_progress(&mut i, &progress(Phase::Done, 2000, Some(2000)), 5);
        assert_eq!((i.state, i.downloaded), (DownloadState::Running, 2000));
    }

    #[test]
    fn downloads_list_shows_failures_redacted_with_their_code() {
        let mut i = item();
        i.state = DownloadState::Running;
        i.downloaded = 10;
        let e = DownloadError::Network {
            url: "http://h/f.bin".into(),
            reason: "reset by peer, token=SECRET9".into(),
        };
        apply_result(&mut i, &Err(e), 5);
        assert_eq!(i.state, DownloadState::Failed);
        let err = i.error.clone().unwrap();
        assert_eq!(err.code, "downloads.network");
        assert!(!err.message.contains("SECRET9"), "{}", err.message);
        assert_eq!(i.downloaded, 10, "the part is kept, so are its bytes");
        apply_result(
            &mut i,
            &Err(DownloadError::Cancelled {
                dest: "/d/f.bin".into(),
            }),
            6,
        );
        assert_eq!(
            (i.state, i.downloaded, i.error.clone()),
            (DownloadState::Cancelled, 0, None)
        );
    }

    #[test]
    fn downloads_list_throttles_progress_but_never_a_change_of_state() {
        let mut t = Throttle::new(Duration::from_millis(200));
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        assert!(t.admit("a", DownloadState::Running, ms(0)), "first");
        assert!(!t.admit("a", DownloadState::Running, ms(50)));
        assert!(
            t.admit("b", DownloadState::Running, ms(60)),
            "another download"
        );
        assert!(t.admit("a", DownloadState::Paused, ms(70)), "state change");
        assert!(t.admit("a", DownloadState::Queued, ms(80)), "state change");
        assert!(!t.admit("a", DownloadState::Queued, ms(100)));
        assert!(
            t.admit("a", DownloadState::Queued, ms(300)),
            "after the interval"
        );
    }

    // ---- with the real queue and a loopback file host ----

    async fn setup(dir: &Path) -> DownloadList {
        let store = Store::open(&dir.join("db.sqlite")).unwrap();
        let options = Options {
            min_segment: MIB,
            ..Options::default()
        };
        DownloadList::new(
            Downloads::new(store, options),
            Secrets::new("comfyfleet-test-unused"),
            dir.join("downloads"),
        )
    }

    fn input(url: &str, destination: Option<&str>) -> DownloadInput {
        DownloadInput {
            url: url.into(),
            destination: destination.map(str::to_string),
            sha256: None,
        }
    }

    /// Waits (generously) until the item `id` satisfies `ok`, reading the list the UI reads.
    async fn wait_for(
        list: &DownloadList,
        id: &str,
        what: &str,
        ok: impl Fn(&DownloadItem) -> bool,
    ) -> DownloadItem {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let item = list.session().into_iter().find(|i| i.id == id).unwrap();
            if ok(&item) {
                return item;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {item:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn downloads_list_runs_a_download_to_done_and_broadcasts_its_states() {
        let host = FileHost::start().await;
        let file = HostedFile::generated(3 * MIB, 4);
        let sha = file.content.sha256();
        host.add("/m/model.bin", file);
        let dir = tempfile::tempdir().unwrap();
        let list = setup(dir.path()).await;
        let mut rx = list.subscribe();
        let item = list
            .add(DownloadInput {
                sha256: Some(format!("sha256:{}", sha.to_uppercase())),
                ..input(&format!("{}/m/model.bin?token=SECRET77", host.url()), None)
            })
            .await
            .unwrap();
        assert_eq!(item.state, DownloadState::Queued);
        assert_eq!(
            item.dest,
            dir.path().join("downloads/model.bin").display().to_string()
        );
        assert!(!item.url.contains("SECRET77"), "{}", item.url);
        let done = wait_for(&list, &item.id, "done", |i| !i.state.is_active()).await;
        assert_eq!(done.state, DownloadState::Done, "{done:?}");
        assert_eq!((done.downloaded, done.total), (3 * MIB, Some(3 * MIB)));
        assert_eq!(done.sha256.as_deref(), Some(sha.as_str()));
        assert!(done.detail.unwrap().contains("you gave"));
        // Every update went out redacted, and the last one says done.
        let mut seen = vec![];
        while let Ok(DownloadUpdate::Changed { item }) = rx.try_recv() {
            assert!(!item.url.contains("SECRET77"));
            seen.push(item);
        }
        assert_eq!(seen.first().map(|i| i.state), Some(DownloadState::Queued));
        let last = seen.last().unwrap();
        assert_eq!(
            (last.state, last.sha256.as_deref()),
            (DownloadState::Done, Some(sha.as_str()))
        );
        // The same file again is not downloaded again: it is found verified.
        let again = list
            .add(input(
                &format!("{}/m/model.bin?token=SECRET77", host.url()),
                Some(&dir.path().join("downloads").display().to_string()),
            ))
            .await
            .unwrap();
        let again = wait_for(&list, &again.id, "done", |i| i.state == DownloadState::Done).await;
        assert_eq!(
            again.detail.as_deref(),
            Some("Already downloaded and verified.")
        );
        assert_eq!(list.session().len(), 1, "the earlier item was replaced");
        // A fresh list (a new session) still shows the verified file, and can reveal it.
        let later = setup(dir.path()).await;
        let remembered = later.list().await.unwrap();
        assert_eq!(remembered.len(), 1);
        assert!(!remembered[0].this_session);
        assert_eq!(remembered[0].state, DownloadState::Done);
        assert!(later.finished_file(&remembered[0].dest).await.is_some());
        assert!(later.finished_file("/etc/passwd").await.is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn downloads_clear_finished_takes_out_done_and_cancelled_keeps_the_rest_and_never_refetches(
    ) {
        let host = FileHost::start().await;
        host.add("/old.bin", HostedFile::generated(MIB, 1));
        host.add("/a.bin", HostedFile::generated(MIB, 2));
        for slow in ["/slow.bin", "/stopped.bin"] {
            host.add(
                slow,
                HostedFile::generated(8 * MIB, 3).with_rate(Some(500_000)),
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let url = |p: &str| format!("{}{p}", host.url());
        // An earlier session downloaded old.bin: this one remembers it.
        {
            let earlier = setup(dir.path()).await;
            let old = earlier.add(input(&url("/old.bin"), None)).await.unwrap();
            let old = wait_for(&earlier, &old.id, "done", |i| !i.state.is_active()).await;
            assert_eq!(old.state, DownloadState::Done, "{old:?}");
        }
        let list = setup(dir.path()).await;
        let a = list.add(input(&url("/a.bin"), None)).await.unwrap();
        let slow = list.add(input(&url("/slow.bin"), None)).await.unwrap();
        let stopped = list.add(input(&url("/stopped.bin"), None)).await.unwrap();
        let missing = list.add(input(&url("/missing.bin"), None)).await.unwrap();
        wait_for(&list, &a.id, "done", |i| i.state == DownloadState::Done).await;
        wait_for(&list, &missing.id, "failed", |i| {
            i.state == DownloadState::Failed
        })
        .await;
        wait_for(&list, &stopped.id, "bytes", |i| i.downloaded > 0).await;
        list.cancel(&stopped.id).unwrap();
        wait_for(&list, &stopped.id, "cancelled", |i| {
            i.state == DownloadState::Cancelled
        })
        .await;
        let old_id = format!("saved:{}", dir.path().join("downloads/old.bin").display());
        assert!(list.list().await.unwrap().iter().any(|i| i.id == old_id));

        let mut rx = list.subscribe();
        let mut cleared = list.clear_finished().await.unwrap();
        cleared.sort();
        let mut want = vec![old_id.clone(), a.id.clone(), stopped.id.clone()];
        want.sort();
        assert_eq!(cleared, want);
        let mut removed = None;
        while let Ok(u) = rx.try_recv() {
            if let DownloadUpdate::Removed { mut ids } = u {
                ids.sort();
                removed = Some(ids);
            }
        }
        assert_eq!(removed, Some(want), "the UI is told which left");
        // What is under way and what failed (it has a part to go on from) stay.
        let mut left: Vec<String> = list
            .list()
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.id)
            .collect();
        left.sort();
        let mut kept = vec![slow.id.clone(), missing.id.clone()];
        kept.sort();
        assert_eq!(left, kept);
        assert!(
            dir.path().join("downloads/a.bin").is_file(),
            "files stay on disk"
        );
        // Cleared stays cleared in the next session.
        let next = setup(dir.path()).await;
        assert!(next
            .list()
            .await
            .unwrap()
            .iter()
            .all(|i| i.id != old_id && i.id != a.id));
        // A cleared, verified file asked for again is not fetched again, and is listed again.
        let fetched = host
            .requests()
            .iter()
            .filter(|r| r.path_only() == "/old.bin")
            .count();
        let again = next.add(input(&url("/old.bin"), None)).await.unwrap();
        let again = wait_for(&next, &again.id, "done", |i| !i.state.is_active()).await;
        assert_eq!(again.state, DownloadState::Done, "{again:?}");
        assert_eq!(
            host.requests()
                .iter()
                .filter(|r| r.path_only() == "/old.bin")
                .count(),
            fetched
        );
        drop(next);
        let later = setup(dir.path()).await;
        assert!(later.list().await.unwrap().iter().any(|i| i.id == old_id));
        list.cancel(&slow.id).unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn downloads_list_pauses_resumes_and_cancels_by_id() {
        let host = FileHost::start().await;
        host.add("/big.bin", HostedFile::generated(8 * MIB, 5));
        host.set(|c| c.rate = Some(1_000_000));
        let dir = tempfile::tempdir().unwrap();
        let list = setup(dir.path()).await;
        let dest = dir.path().join("out");
        std::fs::create_dir_all(&dest).unwrap();
        let item = list
            .add(input(
                &format!("{}/big.bin", host.url()),
                Some(&dest.display().to_string()),
            ))
            .await
            .unwrap();
        // The same file asked for again while it runs is the same download.
        let twice = list
            .add(input(
                &format!("{}/big.bin", host.url()),
                Some(&dest.display().to_string()),
            ))
            .await
            .unwrap();
        assert_eq!(twice.id, item.id);
        wait_for(&list, &item.id, "bytes", |i| {
            i.state == DownloadState::Running && i.downloaded > 0
        })
        .await;
        let paused = list.pause(&item.id).unwrap();
        assert_eq!(paused.state, DownloadState::Paused);
        let e = list.pause(&item.id).unwrap_err();
        assert_eq!(e.code(), "downloads.not_now");
        assert!(e.to_string().contains("big.bin is paused"), "{e}");
        // Paused stays paused: its bytes stop growing.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let a = wait_for(&list, &item.id, "paused", |i| {
            i.state == DownloadState::Paused
        })
        .await;
        tokio::time::sleep(Duration::from_millis(700)).await;
        let b = wait_for(&list, &item.id, "paused", |i| {
            i.state == DownloadState::Paused
        })
        .await;
        assert_eq!(a.downloaded, b.downloaded);
        assert!(b.downloaded > 0);
        list.resume(&item.id).unwrap();
        wait_for(&list, &item.id, "more bytes", |i| {
            i.downloaded > b.downloaded
        })
        .await;
        list.cancel(&item.id).unwrap();
        let cancelled = wait_for(&list, &item.id, "cancelled", |i| !i.state.is_active()).await;
        assert_eq!(cancelled.state, DownloadState::Cancelled);
        assert!(!dest.join("big.bin").exists());
        assert!(!crate::downloads::state::part_path(&dest.join("big.bin")).exists());
        assert_eq!(
            list.retry("nope").unwrap_err().code(),
            "downloads.unknown_id"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn downloads_list_offers_to_finish_what_an_earlier_session_left_unfinished() {
        let host = FileHost::start().await;
        host.add("/half.bin", HostedFile::generated(6 * MIB, 9));
        host.set(|c| c.rate = Some(2_000_000));
        let dir = tempfile::tempdir().unwrap();
        let url = format!("{}/half.bin", host.url());
        let dest = dir.path().join("downloads/half.bin");
        {
            // The first session stops in the middle (paused, then the app quits).
            let first = setup(dir.path()).await;
            let item = first.add(input(&url, None)).await.unwrap();
            wait_for(&first, &item.id, "bytes", |i| i.downloaded > MIB).await;
            first.pause(&item.id).unwrap();
            wait_for(&first, &item.id, "paused", |i| {
                i.state == DownloadState::Paused
            })
            .await;
        }
        host.set(|c| c.rate = None);
        let later = setup(dir.path()).await;
        let listed = later.list().await.unwrap();
        assert_eq!(listed.len(), 1, "{listed:?}");
        let left = &listed[0];
        assert_eq!(
            (left.state, left.this_session),
            (DownloadState::Failed, true)
        );
        assert!(left.downloaded > MIB);
        let why = left.error.as_ref().unwrap();
        assert_eq!(why.code, "downloads.interrupted");
        assert!(
            why.message.contains("Retry goes on from there"),
            "{}",
            why.message
        );
        // Listed once, however often the list is read.
        assert_eq!(later.list().await.unwrap().len(), 1);
        later.retry(&left.id).unwrap();
        let done = wait_for(&later, &left.id, "done", |i| i.state == DownloadState::Done).await;
        assert_eq!(done.downloaded, 6 * MIB);
        assert_eq!(
            crate::downloads::hash::sha256_file(&dest).unwrap(),
            host.content("/half.bin").unwrap().sha256()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn downloads_list_shows_a_failure_and_retry_downloads_it() {
        let host = FileHost::start().await;
        let dir = tempfile::tempdir().unwrap();
        let list = setup(dir.path()).await;
        let item = list
            .add(input(&format!("{}/later.bin", host.url()), None))
            .await
            .unwrap();
        let failed = wait_for(&list, &item.id, "failure", |i| {
            i.state == DownloadState::Failed
        })
        .await;
        let error = failed.error.unwrap();
        assert_eq!(error.code, "downloads.not_found");
        assert!(error.message.contains("404"), "{}", error.message);
        host.add("/later.bin", HostedFile::generated(MIB, 6));
        let retried = list.retry(&item.id).unwrap();
        assert_eq!(
            (retried.state, retried.error),
            (DownloadState::Queued, None)
        );
        let done = wait_for(&list, &item.id, "done", |i| !i.state.is_active()).await;
        assert_eq!(done.state, DownloadState::Done, "{done:?}");
        assert_eq!(
            list.retry(&item.id).unwrap_err().code(),
            "downloads.not_now"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn downloads_list_refuses_bad_input_with_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let list = setup(dir.path()).await;
        let e = list.add(input("not a url", None)).await.unwrap_err();
        assert_eq!(e.code(), "downloads.bad_url");
        let e = list
            .add(DownloadInput {
                sha256: Some("abc".into()),
                ..input("http://127.0.0.1:9/x.bin", None)
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), "downloads.bad_checksum");
        let e = list
            .add(input("http://127.0.0.1:9/x.bin", Some("rel/x.bin")))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "downloads.bad_destination");
        assert!(list.session().is_empty());
    }
}
