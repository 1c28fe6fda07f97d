//! Resumable, segmented, verified downloads that survive restarts: bytes go to `<dest>.part` with a small state
//! file beside it, several connections fetch segments of large files from servers that serve ranges, the SHA-256 is
//! computed while the bytes arrive, and the final name appears only once the content is verified (an atomic
//! rename). [`fetch`] downloads one file; [`Downloads`] queues many, with pause, resume, cancel and a record of
//! verified files in the database.

pub mod disk;
pub mod hash;
mod manager;
pub mod plan;
pub mod state;
mod transfer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

use crate::secrets::{Secret, Secrets, SecretsError};

pub use manager::{DownloadRecord, Downloads};
pub use plan::{human_bytes, redact_text, redact_url};
pub use transfer::Bandwidth;

/// The keychain account of the Hugging Face token.
pub const HUGGINGFACE_ACCOUNT: &str = "token:huggingface";
/// The keychain account of the CivitAI API key.
pub const CIVITAI_ACCOUNT: &str = "token:civitai";

/// A bearer token and the one host it may be sent to. Redirects to other hosts (CDNs) never get it.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// `host` or `host:port`, as in the URL it was made for.
    pub host: String,
    /// Never send it over plain HTTP (true when the URL it was made for is HTTPS).
    pub https_only: bool,
    pub token: Secret,
}

impl Credentials {
    /// A token for the host of `url`.
    pub fn bearer_for(url: &str, token: Secret) -> Option<Credentials> {
        let u = url::Url::parse(url).ok()?;
        let host = match u.port() {
            Some(p) => format!("{}:{p}", u.host_str()?),
            None => u.host_str()?.to_string(),
        };
        Some(Credentials {
            host,
            https_only: u.scheme() == "https",
            token,
        })
    }
}

/// The token the keychain holds for the host of `url`: the Hugging Face token for huggingface.co / hf.co, the
/// CivitAI key for civitai.com; `None` for other hosts or when none is set.
pub async fn credentials_for(
    secrets: &Secrets,
    url: &str,
) -> Result<Option<Credentials>, SecretsError> {
    let Some(host) = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
    else {
        return Ok(None);
    };
    let account = if ["huggingface.co", "hf.co"]
        .iter()
        .any(|h| host == *h || host.ends_with(&format!(".{h}")))
    {
        HUGGINGFACE_ACCOUNT
    } else if host == "civitai.com" || host.ends_with(".civitai.com") {
        CIVITAI_ACCOUNT
    } else {
        return Ok(None);
    };
    Ok(secrets
        .get(account)
        .await?
        .and_then(|token| Credentials::bearer_for(url, token)))
}

/// One file to download.
#[derive(Clone, Debug)]
pub struct DownloadRequest {
    pub url: String,
    pub dest: PathBuf,
    /// The expected SHA-256 (64 hex; `sha256:` prefix and upper case accepted): from the caller, CivitAI's
    /// `hashes.SHA256` or a GitHub asset's `digest`. Without it, Hugging Face's `X-Linked-Etag` is used when it is a
    /// SHA-256.
    pub sha256: Option<String>,
    pub credentials: Option<Credentials>,
    /// Parallel connections for this file (default: [`Options::connections`]).
    pub connections: Option<u32>,
}

impl DownloadRequest {
    pub fn new(url: impl Into<String>, dest: impl Into<PathBuf>) -> Self {
        DownloadRequest {
            url: url.into(),
            dest: dest.into(),
            sha256: None,
            credentials: None,
            connections: None,
        }
    }
}

/// Tunables of the engine.
#[derive(Clone, Debug)]
pub struct Options {
    /// Connections per file when the server serves ranges.
    pub connections: u32,
    /// Segments are at least this large (smaller files use fewer connections).
    pub min_segment: u64,
    /// Save the state after at most this many new bytes (and a quarter of the smallest segment) ...
    pub checkpoint_bytes: u64,
    /// ... or this much time.
    pub checkpoint_every: Duration,
    /// No byte for this long: reconnect.
    pub stall_timeout: Duration,
    /// Attempts per request before giving up (counted again after progress).
    pub max_attempts: u32,
    /// Progress reports at most this often (first and last always).
    pub progress_every: Duration,
    /// Shared cap on the bytes per second of every download using it.
    pub bandwidth: Option<Arc<Bandwidth>>,
    /// Compute the SHA-256 and check it (default). `false` skips hashing altogether: the outcome's `sha256` is
    /// empty and no checksum is checked (for measurements, or files checked by other means).
    pub verify: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            connections: 8,
            min_segment: 16 << 20,
            // Each checkpoint fsyncs the part: much more often costs throughput on fast links (the disk is written
            // in small synchronous steps); this way a kill or a power cut loses at most 64 MiB or one second.
            checkpoint_bytes: 64 << 20,
            checkpoint_every: Duration::from_secs(1),
            stall_timeout: Duration::from_secs(30),
            max_attempts: 8,
            progress_every: Duration::from_millis(100),
            bandwidth: None,
            verify: true,
        }
    }
}

/// What a download is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Queued,
    Connecting,
    Downloading,
    Verifying,
    Done,
    Paused,
    Failed,
}

/// A progress report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Progress {
    pub dest: PathBuf,
    pub phase: Phase,
    /// Bytes of the file on disk.
    pub downloaded: u64,
    pub total: Option<u64>,
    pub bytes_per_sec: u64,
    pub eta_secs: Option<u64>,
    /// Something the user should know (the remote file changed and the download started over, …).
    pub note: Option<String>,
}

/// Where progress reports go (the shell maps it to a Tauri Channel, the CLI to a bar).
pub type ProgressSink = Arc<dyn Fn(Progress) + Send + Sync>;

/// A sink that drops every report.
pub fn no_progress() -> ProgressSink {
    Arc::new(|_| {})
}

/// Steering a running download.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    Run,
    /// Stop, keep the part and its state.
    Pause,
    /// Stop, remove the part and its state.
    Cancel,
}

/// A finished, verified file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub dest: PathBuf,
    pub size: u64,
    pub sha256: String,
    /// Where the expected SHA-256 came from (`caller`, `X-Linked-Etag`), when there was one.
    pub verified_against: Option<String>,
    /// Bytes already in the part when this run began.
    pub resumed_from: u64,
    /// Bytes received over the network in this run.
    pub fetched: u64,
    /// The file was already there, verified; nothing was downloaded.
    pub already_present: bool,
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DownloadError {
    #[error(
        "'{url}' is not a download URL ({reason}). Use an http:// or https:// link to the file."
    )]
    BadUrl { url: String, reason: String },
    #[error(
        "'{sha256}' is not a SHA-256: give 64 hexadecimal digits (a 'sha256:' prefix is fine)."
    )]
    BadChecksum { sha256: String },
    #[error("Cannot download to {path}: {reason}.")]
    BadDestination { path: String, reason: String },
    #[error("This Hugging Face model is gated: open {page}, sign in and accept its licence, then add your Hugging Face token to ComfyFleet (it is kept in the system keychain) and download again.")]
    Gated { page: String },
    #[error(
        "{url} refused access ({status}). Add or update the access token for {host} and try again."
    )]
    Unauthorized {
        url: String,
        status: u16,
        host: String,
    },
    #[error("{url} does not exist on the server (404). Check the link (repository, revision and file name).")]
    NotFound { url: String },
    #[error("{url} answered {status}{detail}. Check the link, or try again later.")]
    Http {
        url: String,
        status: u16,
        detail: String,
    },
    #[error("Could not download {url}: {reason}. Check the network connection and run the download again: it resumes where it stopped.")]
    Network { url: String, reason: String },
    #[error(
        "{url} redirected more than 10 times. The link is broken or loops; check it in a browser."
    )]
    TooManyRedirects { url: String },
    #[error("The file at {url} changed on the server during every attempt. Try again later.")]
    KeepsChanging { url: String },
    #[error("The file downloaded from {url} does not match its checksum twice in a row (expected SHA-256 {expected}, got {actual}). The part was discarded; the source may be corrupt or the checksum wrong.")]
    ChecksumMismatch {
        url: String,
        expected: String,
        actual: String,
    },
    #[error("Not enough free space in {dir}: the download needs {needed} more and only {free} is free. Free some space or choose another folder.")]
    NotEnoughSpace {
        dir: String,
        needed: String,
        free: String,
    },
    #[error("The disk is full while writing {part} ({reason}). The download is paused and the part is kept: free some space and run it again to resume.")]
    DiskFull { part: String, reason: String },
    #[error("Could not {action} {path}: {reason}.")]
    Io {
        action: String,
        path: String,
        reason: String,
    },
    #[error(
        "{dest} is being downloaded from another URL ({url}). Wait for it or cancel it first."
    )]
    Conflict { dest: String, url: String },
    #[error("The download of {dest} was paused; resume it to go on.")]
    Paused { dest: String },
    #[error("The download of {dest} was cancelled.")]
    Cancelled { dest: String },
    #[error("{0}")]
    Store(String),
}

impl crate::HasErrorInfo for DownloadError {
    fn code(&self) -> &'static str {
        match self {
            DownloadError::BadUrl { .. } => "downloads.bad_url",
            DownloadError::BadChecksum { .. } => "downloads.bad_checksum",
            DownloadError::BadDestination { .. } => "downloads.bad_destination",
            DownloadError::Gated { .. } => "downloads.gated",
            DownloadError::Unauthorized { .. } => "downloads.unauthorized",
            DownloadError::NotFound { .. } => "downloads.not_found",
            DownloadError::Http { .. } => "downloads.http",
            DownloadError::Network { .. } => "downloads.network",
            DownloadError::TooManyRedirects { .. } => "downloads.too_many_redirects",
            DownloadError::KeepsChanging { .. } => "downloads.keeps_changing",
            DownloadError::ChecksumMismatch { .. } => "downloads.checksum_mismatch",
            DownloadError::NotEnoughSpace { .. } => "downloads.not_enough_space",
            DownloadError::DiskFull { .. } => "downloads.disk_full",
            DownloadError::Io { .. } => "downloads.io",
            DownloadError::Conflict { .. } => "downloads.conflict",
            DownloadError::Paused { .. } => "downloads.paused",
            DownloadError::Cancelled { .. } => "downloads.cancelled",
            DownloadError::Store(_) => "downloads.store",
        }
    }
}

impl From<crate::store::StoreError> for DownloadError {
    fn from(e: crate::store::StoreError) -> Self {
        DownloadError::Store(e.to_string())
    }
}

pub(crate) fn io_error(action: &str, path: &Path, e: &std::io::Error) -> DownloadError {
    DownloadError::Io {
        action: action.into(),
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// An HTTP client for downloads: redirects are followed by the engine (so credentials stay on their host), no
/// overall timeout (stalls are detected per read).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(15))
        .pool_idle_timeout(Duration::from_secs(30))
        .tcp_nodelay(true)
        .user_agent(concat!("ComfyFleet/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

/// Downloads one file to `request.dest` (see the module docs). Runs until the file is there and verified, or
/// fails, or `control` says pause or cancel. Running it again after a crash, a pause or an error resumes from the
/// part.
pub async fn fetch(
    http: &reqwest::Client,
    request: &DownloadRequest,
    options: &Options,
    control: watch::Receiver<Control>,
    sink: ProgressSink,
) -> Result<Outcome, DownloadError> {
    transfer::fetch(http, request, options, control, sink).await
}

/// Whether `dest` already holds a file with this SHA-256 (hashes it: use only when there is no record).
pub async fn file_matches(dest: &Path, sha256: &str) -> bool {
    let (dest, want) = (dest.to_path_buf(), sha256.to_string());
    tokio::task::spawn_blocking(move || hash::sha256_file(&dest).is_ok_and(|h| h == want))
        .await
        .unwrap_or(false)
}
