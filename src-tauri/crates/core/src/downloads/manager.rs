//! The queue of downloads: a global limit on how many run at once, pause, resume and cancel, an optional shared
//! bandwidth cap, one transfer per destination however often it is asked for (every caller gets the result), and a
//! `downloads` table that remembers verified files so they are not fetched again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{params, OptionalExtension};
use serde::Serialize;
use tokio::sync::{watch, Semaphore};

use super::{
    fetch, file_matches, redact_url, Bandwidth, Control, DownloadError, DownloadRequest, Options,
    Outcome, Phase, Progress, ProgressSink,
};
use crate::store::{Store, StoreError};

/// How many downloads run at once unless told otherwise.
pub const DEFAULT_CONCURRENT: usize = 3;

/// A download as the database remembers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DownloadRecord {
    pub dest: String,
    /// Redacted: never holds a token.
    pub url: String,
    /// queued, downloading, paused, failed, done.
    pub state: String,
    pub total: Option<u64>,
    pub downloaded: u64,
    pub sha256: Option<String>,
    pub error: Option<String>,
    pub updated_ms: i64,
    /// Shown in the Downloads list (false once a finished download is cleared from it).
    pub listed: bool,
}

type Shared<T> = Arc<Mutex<T>>;
/// url, sha256, size, mtime_ms of a finished download.
type DoneRow = (String, Option<String>, Option<i64>, Option<i64>);
type Finished = Option<Result<Outcome, DownloadError>>;

struct Active {
    url: String,
    control: watch::Sender<Control>,
    result: watch::Receiver<Finished>,
    sinks: Shared<Vec<ProgressSink>>,
}

struct Inner {
    store: Store,
    http: reqwest::Client,
    options: Options,
    slots: Arc<Semaphore>,
    bandwidth: Arc<Bandwidth>,
    active: Mutex<HashMap<PathBuf, Active>>,
}

/// The download queue. Cheap to clone.
#[derive(Clone)]
pub struct Downloads {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn mtime_ms(path: &Path) -> Option<(u64, i64)> {
    let m = std::fs::metadata(path).ok()?;
    let t = m
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    Some((m.len(), t.as_millis() as i64))
}

impl Downloads {
    pub fn new(store: Store, options: Options) -> Self {
        Self::with_limit(store, options, DEFAULT_CONCURRENT)
    }

    /// At most `concurrent` downloads transfer at once; the others wait in order.
    pub fn with_limit(store: Store, mut options: Options, concurrent: usize) -> Self {
        let bandwidth = options
            .bandwidth
            .clone()
            .unwrap_or_else(|| Bandwidth::new(None));
        options.bandwidth = Some(bandwidth.clone());
        Downloads {
            inner: Arc::new(Inner {
                store,
                http: super::http_client(),
                options,
                slots: Arc::new(Semaphore::new(concurrent.max(1))),
                bandwidth,
                active: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Caps all downloads together at `bytes_per_sec` (`None`: no cap).
    pub fn set_bandwidth(&self, bytes_per_sec: Option<u64>) {
        self.inner.bandwidth.set(bytes_per_sec);
    }

    /// Downloads `request` (or joins the download of the same file already under way) and waits for the verified
    /// file. A file recorded as downloaded and verified, unchanged since, is not downloaded again.
    pub async fn download(
        &self,
        mut request: DownloadRequest,
        sink: ProgressSink,
    ) -> Result<Outcome, DownloadError> {
        request.dest = std::path::absolute(&request.dest).unwrap_or(request.dest.clone());
        let dest = request.dest.clone();
        let url = redact_url(&request.url);
        if let Some(outcome) = self.already_present(&request, &url).await? {
            sink(Progress {
                dest: dest.clone(),
                phase: Phase::Done,
                downloaded: outcome.size,
                total: Some(outcome.size),
                bytes_per_sec: 0,
                eta_secs: Some(0),
                note: Some("Already downloaded and verified.".into()),
            });
            return Ok(outcome);
        }
        let mut result = {
            let mut active = lock(&self.inner.active);
            match active.get(&dest) {
                Some(a) if a.url == url => {
                    lock(&a.sinks).push(sink);
                    a.result.clone()
                }
                Some(a) => {
                    return Err(DownloadError::Conflict {
                        dest: dest.display().to_string(),
                        url: a.url.clone(),
                    })
                }
                None => {
                    let (control, control_rx) = watch::channel(Control::Run);
                    let (done_tx, done_rx) = watch::channel(None);
                    let sinks = Arc::new(Mutex::new(vec![sink]));
                    active.insert(
                        dest.clone(),
                        Active {
                            url: url.clone(),
                            control,
                            result: done_rx.clone(),
                            sinks: sinks.clone(),
                        },
                    );
                    let me = self.clone();
                    tokio::spawn(async move {
                        let outcome = me.run(request, url, control_rx, sinks).await;
                        lock(&me.inner.active).remove(&dest);
                        let _ = done_tx.send(Some(outcome));
                    });
                    done_rx
                }
            }
        };
        let finished = result
            .wait_for(Option::is_some)
            .await
            .map(|r| r.clone())
            .ok()
            .flatten();
        finished.unwrap_or_else(|| Err(DownloadError::Store("the download task stopped".into())))
    }

    /// Pauses the download of `dest`; false when none is running.
    pub fn pause(&self, dest: &Path) -> bool {
        self.steer(dest, Control::Pause)
    }

    /// Resumes a paused download of `dest`; false when none is paused here.
    pub fn resume(&self, dest: &Path) -> bool {
        self.steer(dest, Control::Run)
    }

    /// Cancels the download of `dest` and removes its part; false when none is running.
    pub fn cancel(&self, dest: &Path) -> bool {
        self.steer(dest, Control::Cancel)
    }

    fn steer(&self, dest: &Path, to: Control) -> bool {
        let dest = std::path::absolute(dest).unwrap_or(dest.to_path_buf());
        let active = lock(&self.inner.active);
        match active.get(&dest) {
            Some(a) => {
                a.control.send_replace(to);
                true
            }
            None => false,
        }
    }

    /// Every recorded download, most recent first.
    pub async fn list(&self) -> Result<Vec<DownloadRecord>, DownloadError> {
        self.inner
            .store
            .call(|c| {
                let rows = crate::store::rows(
                    c,
                    "SELECT dest, url, state, total, downloaded, sha256, error, updated_ms, listed FROM downloads ORDER BY updated_ms DESC",
                    [],
                    row_record,
                )
                .map_err(StoreError::from)?;
                Ok::<_, DownloadError>(rows)
            })
            .await
    }

    /// Hides every finished download from the list (Clear finished); their records stay, so a verified file is still
    /// not fetched again. A later download to the same file is listed again.
    pub async fn unlist_done(&self) -> Result<(), DownloadError> {
        self.execute(
            "UPDATE downloads SET listed = 0 WHERE state = 'done' AND listed = 1",
            vec![],
        )
        .await
    }

    /// One write statement with text arguments.
    async fn execute(&self, sql: &'static str, args: Vec<String>) -> Result<(), DownloadError> {
        self.inner
            .store
            .write(move |tx| {
                tx.execute(sql, rusqlite::params_from_iter(args))
                    .map_err(StoreError::from)?;
                Ok::<_, DownloadError>(())
            })
            .await
    }

    /// The record of `dest`, if any.
    pub async fn record(&self, dest: &Path) -> Result<Option<DownloadRecord>, DownloadError> {
        let dest = std::path::absolute(dest)
            .unwrap_or(dest.to_path_buf())
            .display()
            .to_string();
        self.inner
            .store
            .call(move |c| {
                Ok::<_, DownloadError>(
                    c.query_row(
                        "SELECT dest, url, state, total, downloaded, sha256, error, updated_ms, listed FROM downloads WHERE dest = ?1",
                        [dest],
                        row_record,
                    )
                    .optional()
                    .map_err(StoreError::from)?,
                )
            })
            .await
    }

    /// The outcome for a file already there and verified: recorded as done and unchanged since (size and
    /// modification time), or matching the expected SHA-256 given by the caller.
    async fn already_present(
        &self,
        request: &DownloadRequest,
        url: &str,
    ) -> Result<Option<Outcome>, DownloadError> {
        let dest = &request.dest;
        let Some((size, mtime)) = mtime_ms(dest) else {
            return Ok(None);
        };
        let want = request
            .sha256
            .as_deref()
            .and_then(super::plan::normalize_sha256);
        let key = dest.display().to_string();
        let row: Option<DoneRow> = self
            .inner
            .store
            .call(move |c| {
                Ok::<_, DownloadError>(
                    c.query_row(
                        "SELECT url, sha256, size, mtime_ms FROM downloads WHERE dest = ?1 AND state = 'done'",
                        [key],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                    )
                    .optional()
                    .map_err(StoreError::from)?,
                )
            })
            .await?;
        let present = |sha256: String, against: Option<&str>| Outcome {
            dest: dest.clone(),
            size,
            sha256,
            verified_against: against.map(str::to_string),
            resumed_from: size,
            fetched: 0,
            already_present: true,
            notes: vec![],
        };
        if let Some((rec_url, Some(sha), Some(rec_size), Some(rec_mtime))) = row {
            let unchanged = rec_size as u64 == size && rec_mtime == mtime;
            let same_source = match &want {
                Some(w) => *w == sha,
                None => rec_url == url,
            };
            if unchanged && same_source {
                // Asked for again: listed again if it had been cleared from the list.
                self.execute(
                    "UPDATE downloads SET listed = 1 WHERE dest = ?1 AND listed = 0",
                    vec![dest.display().to_string()],
                )
                .await?;
                return Ok(Some(present(sha, want.as_ref().map(|_| "caller"))));
            }
        }
        if let Some(w) = want {
            if file_matches(dest, &w).await {
                self.save(dest, url, "done", Some(size), size, Some(&w), None)
                    .await?;
                return Ok(Some(present(w, Some("caller"))));
            }
        }
        Ok(None)
    }

    #[allow(clippy::too_many_arguments)]
    async fn save(
        &self,
        dest: &Path,
        url: &str,
        state: &str,
        total: Option<u64>,
        downloaded: u64,
        sha256: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), DownloadError> {
        let (size, mtime) = match state {
            "done" => mtime_ms(dest).map_or((None, None), |(s, m)| (Some(s as i64), Some(m))),
            _ => (None, None),
        };
        let (dest, url, state) = (
            dest.display().to_string(),
            url.to_string(),
            state.to_string(),
        );
        let (sha256, error) = (sha256.map(str::to_string), error.map(str::to_string));
        let now = crate::now_ms();
        self.inner
            .store
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO downloads (dest, url, state, total, downloaded, sha256, size, mtime_ms, error, created_ms, updated_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)
                     ON CONFLICT(dest) DO UPDATE SET url = excluded.url, state = excluded.state, total = excluded.total,
                        downloaded = excluded.downloaded, sha256 = excluded.sha256, size = excluded.size,
                        mtime_ms = excluded.mtime_ms, error = excluded.error, updated_ms = excluded.updated_ms, listed = 1",
                    params![dest, url, state, total.map(|t| t as i64), downloaded as i64, sha256, size, mtime, error, now],
                )
                .map_err(StoreError::from)?;
                Ok::<_, DownloadError>(())
            })
            .await
    }

    async fn forget(&self, dest: &Path) -> Result<(), DownloadError> {
        self.execute(
            "DELETE FROM downloads WHERE dest = ?1",
            vec![dest.display().to_string()],
        )
        .await
    }

    /// One download's life: wait for a slot, transfer, and on pause give the slot back until resumed.
    async fn run(
        &self,
        request: DownloadRequest,
        url: String,
        mut control: watch::Receiver<Control>,
        sinks: Shared<Vec<ProgressSink>>,
    ) -> Result<Outcome, DownloadError> {
        let dest = request.dest.clone();
        let last = Arc::new(Mutex::new((0u64, None::<u64>)));
        let fan_out: ProgressSink = {
            let (sinks, last) = (sinks.clone(), last.clone());
            Arc::new(move |p: Progress| {
                if p.phase == Phase::Downloading || p.phase == Phase::Done {
                    *lock(&last) = (p.downloaded, p.total);
                }
                let current: Vec<ProgressSink> = lock(&sinks).clone();
                for s in current {
                    s(p.clone());
                }
            })
        };
        let _ = self.save(&dest, &url, "queued", None, 0, None, None).await;
        fan_out(Progress {
            dest: dest.clone(),
            phase: Phase::Queued,
            downloaded: 0,
            total: None,
            bytes_per_sec: 0,
            eta_secs: None,
            note: None,
        });
        let result = loop {
            let permit = tokio::select! {
                p = self.inner.slots.clone().acquire_owned() => p.ok(),
                _ = control.wait_for(|c| *c == Control::Cancel) => {
                    break Err(DownloadError::Cancelled { dest: dest.display().to_string() });
                }
            };
            let _ = self
                .save(&dest, &url, "downloading", None, 0, None, None)
                .await;
            let result = fetch(
                &self.inner.http,
                &request,
                &self.inner.options,
                control.clone(),
                fan_out.clone(),
            )
            .await;
            drop(permit);
            match result {
                Err(DownloadError::Paused { .. }) => {
                    let (downloaded, total) = *lock(&last);
                    let _ = self
                        .save(&dest, &url, "paused", total, downloaded, None, None)
                        .await;
                    let resumed = control.wait_for(|c| *c != Control::Pause).await.map(|c| *c);
                    if matches!(resumed, Ok(Control::Cancel)) {
                        super::state::discard(&dest);
                        break Err(DownloadError::Cancelled {
                            dest: dest.display().to_string(),
                        });
                    }
                }
                other => break other,
            }
        };
        let (downloaded, total) = *lock(&last);
        let saved = match &result {
            Ok(o) => {
                self.save(
                    &dest,
                    &url,
                    "done",
                    Some(o.size),
                    o.size,
                    Some(&o.sha256),
                    None,
                )
                .await
            }
            Err(DownloadError::Cancelled { .. }) => self.forget(&dest).await,
            Err(e @ DownloadError::DiskFull { .. }) => {
                self.save(
                    &dest,
                    &url,
                    "paused",
                    total,
                    downloaded,
                    None,
                    Some(&e.to_string()),
                )
                .await
            }
            Err(e) => {
                self.save(
                    &dest,
                    &url,
                    "failed",
                    total,
                    downloaded,
                    None,
                    Some(&e.to_string()),
                )
                .await
            }
        };
        if let Err(e) = saved {
            tracing::warn!(dest = %dest.display(), "could not record the download: {e}");
        }
        result
    }
}

fn row_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<DownloadRecord> {
    Ok(DownloadRecord {
        dest: r.get(0)?,
        url: r.get(1)?,
        state: r.get(2)?,
        total: r.get::<_, Option<i64>>(3)?.map(|t| t as u64),
        downloaded: r.get::<_, i64>(4)? as u64,
        sha256: r.get(5)?,
        error: r.get(6)?,
        updated_ms: r.get(7)?,
        listed: r.get(8)?,
    })
}
