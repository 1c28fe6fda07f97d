//! The job model and the persistent queue: states, priorities, attempts with backoff, timings,
//! progress, outputs and errors, stored in SQLite so nothing accepted is ever lost.

use rusqlite::{params, OptionalExtension, Row};
use serde::{Deserialize, Serialize};

use crate::store::{self, Store, StoreError};

/// Priorities run from 1 (lowest) to 10 (highest); new jobs default to 5.
pub const DEFAULT_PRIORITY: u8 = 5;
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
pub const DEFAULT_TIMEOUT_MS: u64 = 10 * 60 * 1000;
/// First retry delay; doubles each attempt, capped.
pub const BACKOFF_BASE_MS: i64 = 2_000;
pub const BACKOFF_MAX_MS: i64 = 60_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Dispatched,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub const ALL: [JobState; 6] = [
        JobState::Queued,
        JobState::Dispatched,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Dispatched => "dispatched",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        JobState::ALL.into_iter().find(|k| k.as_str() == s)
    }
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }
    /// Accepted by a server and not finished: after a crash these are reconciled against the server.
    pub fn is_in_flight(self) -> bool {
        matches!(self, JobState::Dispatched | JobState::Running)
    }
}

/// What can happen to a job.
#[derive(Debug, Clone, PartialEq)]
pub enum JobEvent {
    /// The router chose a server and the prompt was accepted there under `remote_id`.
    Dispatched {
        server_id: String,
        remote_id: String,
    },
    /// The server started executing it.
    Started,
    Succeeded,
    /// A failure. `retryable` (transport failures only) sends it back to the queue while attempts remain.
    Failed {
        message: String,
        retryable: bool,
    },
    Cancelled,
    /// Back to the queue without using an attempt. `avoid_server`: the server died mid-job, so the job
    /// goes elsewhere (failover); otherwise the job never reached it (the app stopped while sending).
    Requeued {
        reason: String,
        avoid_server: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("A job that is {from} cannot become {to}.")]
pub struct InvalidTransition {
    pub from: &'static str,
    pub to: &'static str,
}

/// The next state for an event, given the attempts used. Pure.
pub fn next_state(
    state: JobState,
    event: &JobEvent,
    attempts: u32,
    max_attempts: u32,
) -> Result<JobState, InvalidTransition> {
    use JobState::*;
    let target = match event {
        JobEvent::Dispatched { .. } => Dispatched,
        JobEvent::Started => Running,
        JobEvent::Succeeded => Succeeded,
        JobEvent::Failed {
            retryable: true, ..
        } if attempts < max_attempts => Queued,
        JobEvent::Failed { .. } => Failed,
        JobEvent::Cancelled => Cancelled,
        JobEvent::Requeued { .. } => Queued,
    };
    let ok = match (state, target) {
        (s, _) if s.is_final() => false,
        (Queued, Dispatched) | (Queued, Cancelled) | (Queued, Failed) => true,
        (Dispatched, Running)
        | (Dispatched, Succeeded)
        | (Dispatched, Failed)
        | (Dispatched, Cancelled)
        | (Dispatched, Queued) => true,
        (Running, Succeeded) | (Running, Failed) | (Running, Cancelled) | (Running, Queued) => true,
        (Running, Running) => true,
        _ => false,
    };
    if ok {
        Ok(target)
    } else {
        Err(InvalidTransition {
            from: state.as_str(),
            to: target.as_str(),
        })
    }
}

/// Delay before retry number `attempt` (1-based): 2 s, 4 s, 8 s … capped at a minute. Pure.
pub fn backoff_ms(attempt: u32) -> i64 {
    BACKOFF_BASE_MS
        .saturating_mul(1i64 << attempt.saturating_sub(1).min(20))
        .min(BACKOFF_MAX_MS)
}

/// One output file of a job, saved in the gallery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct JobOutput {
    pub node_id: String,
    pub filename: String,
    /// Absolute path in the gallery folder (empty until downloaded).
    pub path: String,
}

/// A job as the UI, the CLI and the dispatcher see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Job {
    pub id: String,
    pub name: String,
    pub state: JobState,
    pub priority: u8,
    /// The server the user chose; `None` = Auto (the router decides).
    pub target: Option<String>,
    pub server_id: Option<String>,
    pub remote_id: Option<String>,
    pub attempts: u32,
    pub max_attempts: u32,
    pub queued_ms: i64,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
    pub not_before_ms: i64,
    pub timeout_ms: i64,
    /// 0.0 – 1.0.
    pub progress: f64,
    pub outputs: Vec<JobOutput>,
    pub error: Option<String>,
    /// Servers this job failed on (failover avoids them).
    pub failed_on: Vec<String>,
    /// What happened, for the user: where it went, why it moved.
    pub notes: Vec<String>,
    /// On a RunPod endpoint: how long it waited for a worker, and executed (ms), as RunPod bills them.
    pub delay_ms: Option<i64>,
    pub execution_ms: Option<i64>,
    /// A cloud worker is being woken for it (a cold start): dispatched, with the waking note last.
    pub waking: bool,
}

/// How a job's note starts while a RunPod worker is being woken for it (the bill reads it too).
pub const WAKING_NOTE: &str = "waking a worker";

/// Whether a worker is being woken for a job: it is dispatched and its latest note is the waking note. Pure.
pub fn is_waking(state: JobState, notes: &[String]) -> bool {
    state == JobState::Dispatched && notes.last().is_some_and(|n| n.starts_with(WAKING_NOTE))
}

/// A failed or cancelled job asked to run again: a new job with its workflow, name, priority, target and limits (the
/// old one stays in the history as it ended). Pure.
pub fn retry_of(old: &Job, workflow: serde_json::Value) -> Result<NewJob, JobsError> {
    if !matches!(old.state, JobState::Failed | JobState::Cancelled) {
        return Err(JobsError::NotRetryable {
            name: old.name.clone(),
            state: match old.state {
                JobState::Queued => "still waiting in the queue",
                JobState::Dispatched | JobState::Running => "still running",
                _ => "done",
            },
        });
    }
    Ok(NewJob {
        name: old.name.clone(),
        workflow,
        priority: old.priority,
        target: old.target.clone(),
        max_attempts: old.max_attempts,
        timeout_ms: old.timeout_ms,
        extra_data: None,
    })
}

/// A new job.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub name: String,
    pub workflow: serde_json::Value,
    pub priority: u8,
    pub target: Option<String>,
    pub max_attempts: u32,
    pub timeout_ms: i64,
    /// What a ComfyUI client sent beside the prompt (`extra_data`), passed on with it; `None` for the app's own jobs.
    pub extra_data: Option<serde_json::Value>,
}

impl NewJob {
    pub fn new(name: impl Into<String>, workflow: serde_json::Value) -> Self {
        Self {
            name: name.into(),
            workflow,
            priority: DEFAULT_PRIORITY,
            target: None,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            timeout_ms: DEFAULT_TIMEOUT_MS as i64,
            extra_data: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    #[error("No job has the id '{0}'. Run 'comfyfleet jobs list' to see them.")]
    NotFound(String),
    #[error("Priority {0} is out of range: use 1 (lowest) to 10 (highest).")]
    BadPriority(u8),
    #[error("{0}")]
    Transition(#[from] InvalidTransition),
    #[error("'{name}' is {state}: only a failed or cancelled job can be run again.")]
    NotRetryable { name: String, state: &'static str },
    #[error("{path} is not an image of this job (it may have been deleted already). Reopen the gallery.")]
    NoSuchOutput { path: String },
    #[error(
        "Could not delete {path}: {reason}. Check that the folder is writable, then try again."
    )]
    Delete { path: String, reason: String },
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for JobsError {
    fn from(e: rusqlite::Error) -> Self {
        JobsError::Store(e.into())
    }
}

impl crate::HasErrorInfo for JobsError {
    fn code(&self) -> &'static str {
        match self {
            JobsError::NotFound(_) => "jobs.not_found",
            JobsError::BadPriority(_) => "jobs.bad_priority",
            JobsError::Transition(_) => "jobs.invalid_transition",
            JobsError::NotRetryable { .. } => "jobs.not_retryable",
            JobsError::NoSuchOutput { .. } => "jobs.no_such_output",
            JobsError::Delete { .. } => "jobs.delete_failed",
            JobsError::Store(e) => e.code(),
        }
    }
}

/// `WHERE state IN (...)` for `states` (nothing when empty); the names are the enum's own, never user text.
fn state_filter(states: &[JobState]) -> String {
    if states.is_empty() {
        return String::new();
    }
    let names: Vec<String> = states.iter().map(|s| format!("'{}'", s.as_str())).collect();
    format!("WHERE state IN ({})", names.join(","))
}

const COLUMNS: &str = "id, name, state, priority, target, server_id, remote_id, attempts, max_attempts, queued_ms, started_ms,
    finished_ms, not_before_ms, timeout_ms, progress, outputs, error, failed_on, notes, delay_ms, execution_ms";

/// How many columns `COLUMNS` names (a query adding one reads it at this index).
const COLUMN_COUNT: usize = 21;

fn from_row(r: &Row<'_>) -> rusqlite::Result<Job> {
    let json = |i: usize| -> rusqlite::Result<String> { r.get(i) };
    let state = JobState::parse(&r.get::<_, String>(2)?).unwrap_or(JobState::Failed);
    let notes: Vec<String> = serde_json::from_str(&json(18)?).unwrap_or_default();
    Ok(Job {
        id: r.get(0)?,
        name: r.get(1)?,
        state,
        priority: r.get(3)?,
        target: r.get(4)?,
        server_id: r.get(5)?,
        remote_id: r.get(6)?,
        attempts: r.get(7)?,
        max_attempts: r.get(8)?,
        queued_ms: r.get(9)?,
        started_ms: r.get(10)?,
        finished_ms: r.get(11)?,
        not_before_ms: r.get(12)?,
        timeout_ms: r.get(13)?,
        progress: r.get(14)?,
        outputs: serde_json::from_str(&json(15)?).unwrap_or_default(),
        error: r.get(16)?,
        failed_on: serde_json::from_str(&json(17)?).unwrap_or_default(),
        waking: is_waking(state, &notes),
        notes,
        delay_ms: r.get(19)?,
        execution_ms: r.get(20)?,
    })
}

fn get_in(c: &rusqlite::Connection, id: &str) -> Result<Job, JobsError> {
    c.prepare_cached(&format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1"))?
        .query_row([id], from_row)
        .optional()?
        .ok_or_else(|| JobsError::NotFound(id.to_string()))
}

/// The persistent job queue.
#[derive(Clone)]
pub struct Jobs {
    store: Store,
}

impl Jobs {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Queue a job; it is on disk before this returns.
    pub async fn submit(&self, job: NewJob, now_ms: i64) -> Result<Job, JobsError> {
        if !(1..=10).contains(&job.priority) {
            return Err(JobsError::BadPriority(job.priority));
        }
        let id = uuid::Uuid::new_v4().to_string();
        let id2 = id.clone();
        self.store
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO jobs (id, name, state, priority, target, workflow, attempts, max_attempts, queued_ms, not_before_ms, timeout_ms, progress, outputs, failed_on, notes, extra_data)
                     VALUES (?1, ?2, 'queued', ?3, ?4, ?5, 0, ?6, ?7, ?7, ?8, 0, '[]', '[]', '[]', ?9)",
                    params![id2, job.name, job.priority, job.target, job.workflow.to_string(), job.max_attempts, now_ms, job.timeout_ms, job.extra_data.as_ref().map(|v| v.to_string())],
                )?;
                get_in(tx, &id2)
            })
            .await
    }

    pub async fn get(&self, id: &str) -> Result<Job, JobsError> {
        let id = id.to_string();
        self.store.call(move |c| get_in(c, &id)).await
    }

    /// The workflow a job runs (kept out of `Job` to keep lists light).
    pub async fn workflow(&self, id: &str) -> Result<serde_json::Value, JobsError> {
        let id = id.to_string();
        self.store
            .call(move |c| {
                let text: String = c
                    .query_row("SELECT workflow FROM jobs WHERE id = ?1", [&id], |r| {
                        r.get(0)
                    })
                    .optional()?
                    .ok_or_else(|| JobsError::NotFound(id.clone()))?;
                Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
            })
            .await
    }

    /// What a ComfyUI client sent beside the job's prompt (`None` for the app's own jobs).
    pub async fn extra_data(&self, id: &str) -> Result<Option<serde_json::Value>, JobsError> {
        let id = id.to_string();
        self.store
            .call(move |c| {
                let text: Option<String> = c
                    .query_row("SELECT extra_data FROM jobs WHERE id = ?1", [&id], |r| {
                        r.get(0)
                    })
                    .optional()?
                    .ok_or_else(|| JobsError::NotFound(id.clone()))?;
                Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
            })
            .await
    }

    /// Jobs, newest first, optionally only some states.
    pub async fn list(&self, states: &[JobState], limit: u32) -> Result<Vec<Job>, JobsError> {
        let filter = state_filter(states);
        self.store
            .call(move |c| {
                let sql = format!("SELECT {COLUMNS} FROM jobs {filter} ORDER BY queued_ms DESC, rowid DESC LIMIT ?1");
                Ok(store::rows(c, &sql, [limit], from_row)?)
            })
            .await
    }

    /// How many jobs are in `states` (all jobs when empty).
    pub async fn count(&self, states: &[JobState]) -> Result<u32, JobsError> {
        let filter = state_filter(states);
        self.store
            .call(move |c| {
                let n: i64 =
                    c.query_row(&format!("SELECT COUNT(*) FROM jobs {filter}"), [], |r| {
                        r.get(0)
                    })?;
                Ok(n.max(0) as u32)
            })
            .await
    }

    /// The latest succeeded jobs with their workflows, newest first (for timing estimates).
    pub async fn recent_successes(
        &self,
        limit: u32,
    ) -> Result<Vec<(Job, serde_json::Value)>, JobsError> {
        self.store
            .call(move |c| {
                let sql = format!("SELECT {COLUMNS}, workflow FROM jobs WHERE state = 'succeeded' ORDER BY finished_ms DESC LIMIT ?1");
                Ok(store::rows(c, &sql, [limit], |r| {
                    let workflow: String = r.get(COLUMN_COUNT)?;
                    Ok((
                        from_row(r)?,
                        serde_json::from_str(&workflow).unwrap_or(serde_json::Value::Null),
                    ))
                })?)
            })
            .await
    }

    /// Queued jobs ready to run at `now`, in dispatch order (priority, then age), at most `limit`.
    pub async fn ready(&self, now_ms: i64, limit: u32) -> Result<Vec<Job>, JobsError> {
        self.store
            .call(move |c| {
                let sql = format!("SELECT {COLUMNS} FROM jobs WHERE state = 'queued' AND not_before_ms <= ?1 ORDER BY priority DESC, queued_ms, rowid LIMIT ?2");
                Ok(store::rows(c, &sql, rusqlite::params![now_ms, limit], from_row)?)
            })
            .await
    }

    /// Apply an event atomically, checking the transition against the stored state.
    pub async fn apply(&self, id: &str, event: JobEvent, now_ms: i64) -> Result<Job, JobsError> {
        let id = id.to_string();
        self.store
            .write(move |tx| {
                let job = get_in(tx, &id)?;
                let next = next_state(job.state, &event, job.attempts + 1, job.max_attempts)?;
                let mut notes = job.notes.clone();
                let mut failed_on = job.failed_on.clone();
                match &event {
                    JobEvent::Dispatched { server_id, remote_id } => {
                        tx.execute(
                            "UPDATE jobs SET state=?2, server_id=?3, remote_id=?4, progress=0, delay_ms=NULL, execution_ms=NULL WHERE id=?1",
                            params![id, next.as_str(), server_id, remote_id],
                        )?;
                    }
                    JobEvent::Started => {
                        tx.execute("UPDATE jobs SET state=?2, started_ms=COALESCE(started_ms, ?3) WHERE id=?1", params![id, next.as_str(), now_ms])?;
                    }
                    JobEvent::Succeeded => {
                        tx.execute("UPDATE jobs SET state=?2, finished_ms=?3, progress=1, error=NULL WHERE id=?1", params![id, next.as_str(), now_ms])?;
                    }
                    JobEvent::Failed { message, .. } => {
                        if let Some(s) = &job.server_id {
                            if !failed_on.contains(s) {
                                failed_on.push(s.clone());
                            }
                        }
                        let attempts = job.attempts + 1;
                        if next == JobState::Queued {
                            notes.push(format!("attempt {attempts} failed: {message}; retrying"));
                            tx.execute(
                                "UPDATE jobs SET state='queued', attempts=?2, not_before_ms=?3, error=?4, server_id=NULL, remote_id=NULL, failed_on=?5, notes=?6 WHERE id=?1",
                                params![id, attempts, now_ms + backoff_ms(attempts), message, serde_json::to_string(&failed_on).unwrap_or_default(), serde_json::to_string(&notes).unwrap_or_default()],
                            )?;
                        } else {
                            tx.execute(
                                "UPDATE jobs SET state='failed', attempts=?2, finished_ms=?3, error=?4, failed_on=?5 WHERE id=?1",
                                params![id, attempts, now_ms, message, serde_json::to_string(&failed_on).unwrap_or_default()],
                            )?;
                        }
                    }
                    JobEvent::Cancelled => {
                        tx.execute("UPDATE jobs SET state='cancelled', finished_ms=?2 WHERE id=?1", params![id, now_ms])?;
                    }
                    JobEvent::Requeued {
                        reason,
                        avoid_server,
                    } => {
                        if let Some(s) = job.server_id.as_ref().filter(|_| *avoid_server) {
                            if !failed_on.contains(s) {
                                failed_on.push(s.clone());
                            }
                        }
                        notes.push(reason.clone());
                        tx.execute(
                            "UPDATE jobs SET state='queued', server_id=NULL, remote_id=NULL, progress=0, failed_on=?2, notes=?3 WHERE id=?1",
                            params![id, serde_json::to_string(&failed_on).unwrap_or_default(), serde_json::to_string(&notes).unwrap_or_default()],
                        )?;
                    }
                }
                get_in(tx, &id)
            })
            .await
    }

    /// Record progress (0.0 – 1.0) of a running job.
    pub async fn set_progress(&self, id: &str, progress: f64) -> Result<(), JobsError> {
        let id = id.to_string();
        self.store
            .write(move |tx| {
                tx.execute(
                    "UPDATE jobs SET progress=?2 WHERE id=?1 AND state IN ('dispatched','running')",
                    params![id, progress.clamp(0.0, 1.0)],
                )?;
                Ok::<_, JobsError>(())
            })
            .await
    }

    /// The backend named the job itself (a RunPod job id): remember it to find the job after a restart.
    pub async fn set_remote_id(&self, id: &str, remote_id: &str) -> Result<Job, JobsError> {
        let (id, remote_id) = (id.to_string(), remote_id.to_string());
        self.store
            .write(move |tx| {
                tx.execute(
                    "UPDATE jobs SET remote_id=?2 WHERE id=?1 AND state IN ('dispatched','running')",
                    params![id, remote_id],
                )?;
                get_in(tx, &id)
            })
            .await
    }

    /// Record what the cloud billed a job for: waiting for a worker and executing (ms).
    pub async fn set_cloud_timings(
        &self,
        id: &str,
        delay_ms: Option<u64>,
        execution_ms: Option<u64>,
    ) -> Result<Job, JobsError> {
        let id = id.to_string();
        self.store
            .write(move |tx| {
                tx.execute(
                    "UPDATE jobs SET delay_ms=COALESCE(?2, delay_ms), execution_ms=COALESCE(?3, execution_ms) WHERE id=?1",
                    params![id, delay_ms.map(|v| v as i64), execution_ms.map(|v| v as i64)],
                )?;
                get_in(tx, &id)
            })
            .await
    }

    /// Add a line to what the user reads about a job.
    pub async fn add_note(&self, id: &str, note: &str) -> Result<Job, JobsError> {
        let (id, note) = (id.to_string(), note.to_string());
        self.store
            .write(move |tx| {
                let mut notes = get_in(tx, &id)?.notes;
                notes.push(note);
                tx.execute(
                    "UPDATE jobs SET notes=?2 WHERE id=?1",
                    params![id, serde_json::to_string(&notes).unwrap_or_default()],
                )?;
                get_in(tx, &id)
            })
            .await
    }

    /// Record a job's outputs and its success in one transaction.
    pub async fn succeed(
        &self,
        id: &str,
        outputs: Vec<JobOutput>,
        now_ms: i64,
    ) -> Result<Job, JobsError> {
        let id = id.to_string();
        self.store
            .write(move |tx| {
                let job = get_in(tx, &id)?;
                let next = next_state(job.state, &JobEvent::Succeeded, job.attempts + 1, job.max_attempts)?;
                tx.execute(
                    "UPDATE jobs SET state=?2, finished_ms=?3, progress=1, error=NULL, outputs=?4 WHERE id=?1",
                    params![id, next.as_str(), now_ms, serde_json::to_string(&outputs).unwrap_or_default()],
                )?;
                get_in(tx, &id)
            })
            .await
    }

    /// Takes one saved output out of a job (the caller deleted its file), with a note saying so.
    pub async fn remove_output(&self, id: &str, path: &str) -> Result<Job, JobsError> {
        let (id, path) = (id.to_string(), path.to_string());
        self.store
            .write(move |tx| {
                let job = get_in(tx, &id)?;
                let Some(gone) = job
                    .outputs
                    .iter()
                    .find(|o| o.path == path && !path.is_empty())
                else {
                    return Err(JobsError::NoSuchOutput { path });
                };
                let note = format!("deleted {} from the gallery", gone.filename);
                let outputs: Vec<&JobOutput> =
                    job.outputs.iter().filter(|o| o.path != path).collect();
                let mut notes = job.notes.clone();
                notes.push(note);
                tx.execute(
                    "UPDATE jobs SET outputs=?2, notes=?3 WHERE id=?1",
                    params![
                        id,
                        serde_json::to_string(&outputs).unwrap_or_default(),
                        serde_json::to_string(&notes).unwrap_or_default()
                    ],
                )?;
                get_in(tx, &id)
            })
            .await
    }

    /// Change a queued job's priority.
    pub async fn set_priority(&self, id: &str, priority: u8) -> Result<Job, JobsError> {
        if !(1..=10).contains(&priority) {
            return Err(JobsError::BadPriority(priority));
        }
        let id = id.to_string();
        self.store
            .write(move |tx| {
                tx.execute(
                    "UPDATE jobs SET priority=?2 WHERE id=?1",
                    params![id, priority],
                )?;
                get_in(tx, &id)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_column_count_matches_the_column_list() {
        assert_eq!(COLUMNS.split(',').count(), COLUMN_COUNT);
    }

    #[test]
    fn jobs_are_waking_only_while_dispatched_with_the_waking_note_last() {
        let notes = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let woken = notes(&["sent to 'Flux'", "waking a worker on 'Flux' (a cold start)"]);
        assert!(is_waking(JobState::Dispatched, &woken));
        // Once it runs, or a later note says something else, it is no longer waking.
        assert!(!is_waking(JobState::Running, &woken));
        let later = notes(&["waking a worker on 'Flux'", "moved to 'Local'"]);
        assert!(!is_waking(JobState::Dispatched, &later));
        assert!(!is_waking(JobState::Dispatched, &[]));
    }
    #[test]
    fn jobs_retry_of_a_failed_or_cancelled_job_keeps_what_was_asked_and_refuses_the_others() {
        let old = Job {
            id: "j1".into(),
            name: "castle".into(),
            state: JobState::Failed,
            priority: 8,
            target: Some("gpu".into()),
            server_id: Some("gpu".into()),
            remote_id: Some("p1".into()),
            attempts: 3,
            max_attempts: 3,
            queued_ms: 1,
            started_ms: Some(2),
            finished_ms: Some(3),
            not_before_ms: 1,
            timeout_ms: 90_000,
            progress: 0.4,
            outputs: vec![],
            error: Some("CUDA out of memory".into()),
            failed_on: vec!["gpu".into()],
            notes: vec!["sent to 'GPU'".into()],
            delay_ms: None,
            execution_ms: None,
            waking: false,
        };
        let wf = serde_json::json!({"1": {"class_type": "EmptyImage", "inputs": {}}});
        for state in [JobState::Failed, JobState::Cancelled] {
            let again = retry_of(
                &Job {
                    state,
                    ..old.clone()
                },
                wf.clone(),
            )
            .unwrap();
            assert_eq!(
                again,
                NewJob {
                    name: "castle".into(),
                    workflow: wf.clone(),
                    priority: 8,
                    target: Some("gpu".into()),
                    max_attempts: 3,
                    timeout_ms: 90_000,
                    extra_data: None,
                }
            );
        }
        for (state, says) in [
            (JobState::Queued, "still waiting in the queue"),
            (JobState::Running, "still running"),
            (JobState::Succeeded, "done"),
        ] {
            let e = retry_of(
                &Job {
                    state,
                    ..old.clone()
                },
                wf.clone(),
            )
            .unwrap_err();
            assert_eq!(crate::HasErrorInfo::code(&e), "jobs.not_retryable");
            assert!(e.to_string().contains(says), "{e}");
            assert!(e.to_string().contains("'castle'"), "{e}");
        }
    }

    use JobState::*;

    fn fail(retryable: bool) -> JobEvent {
        JobEvent::Failed {
            message: "x".into(),
            retryable,
        }
    }

    #[test]
    fn jobs_state_machine_allows_the_documented_paths_only() {
        let d = JobEvent::Dispatched {
            server_id: "s".into(),
            remote_id: "r".into(),
        };
        assert_eq!(next_state(Queued, &d, 1, 3), Ok(Dispatched));
        assert_eq!(
            next_state(Dispatched, &JobEvent::Started, 1, 3),
            Ok(Running)
        );
        assert_eq!(
            next_state(Running, &JobEvent::Succeeded, 1, 3),
            Ok(Succeeded)
        );
        assert_eq!(
            next_state(Dispatched, &JobEvent::Succeeded, 1, 3),
            Ok(Succeeded),
            "a cached prompt can finish before it is seen running"
        );
        assert_eq!(
            next_state(Queued, &JobEvent::Cancelled, 1, 3),
            Ok(Cancelled)
        );
        assert_eq!(
            next_state(
                Running,
                &JobEvent::Requeued {
                    reason: "died".into(),
                    avoid_server: true
                },
                1,
                3
            ),
            Ok(Queued)
        );
        // A finished job never runs again.
        for s in [Succeeded, Failed, Cancelled] {
            assert!(next_state(s, &d, 1, 3).is_err());
            assert!(next_state(s, &JobEvent::Succeeded, 1, 3).is_err());
        }
        assert!(next_state(Queued, &JobEvent::Started, 1, 3).is_err());
        assert!(next_state(Queued, &JobEvent::Succeeded, 1, 3).is_err());
    }

    #[test]
    fn jobs_retry_only_transport_failures_while_attempts_remain() {
        assert_eq!(next_state(Running, &fail(true), 1, 3), Ok(Queued));
        assert_eq!(next_state(Running, &fail(true), 2, 3), Ok(Queued));
        assert_eq!(next_state(Running, &fail(true), 3, 3), Ok(Failed));
        assert_eq!(
            next_state(Running, &fail(false), 1, 3),
            Ok(Failed),
            "a validation or runtime error is not retried"
        );
    }

    #[test]
    fn jobs_backoff_doubles_and_is_capped() {
        assert_eq!(backoff_ms(1), 2_000);
        assert_eq!(backoff_ms(2), 4_000);
        assert_eq!(backoff_ms(3), 8_000);
        assert_eq!(backoff_ms(30), BACKOFF_MAX_MS);
    }

    async fn jobs() -> (Jobs, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("j.db")).unwrap();
        (Jobs::new(store), dir)
    }

    #[tokio::test]
    async fn jobs_are_counted_by_state_as_they_are_listed() {
        let (j, _d) = jobs().await;
        let w = serde_json::json!({});
        let a = j.submit(NewJob::new("a", w.clone()), 1).await.unwrap();
        j.submit(NewJob::new("b", w.clone()), 2).await.unwrap();
        j.apply(&a.id, JobEvent::Cancelled, 3).await.unwrap();
        for states in [
            vec![],
            vec![JobState::Queued],
            vec![JobState::Cancelled, JobState::Running],
            vec![JobState::Failed],
        ] {
            let listed = j.list(&states, 100).await.unwrap().len() as u32;
            assert_eq!(j.count(&states).await.unwrap(), listed, "{states:?}");
        }
        assert_eq!(j.count(&[JobState::Queued]).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn jobs_ready_orders_by_priority_then_age_and_respects_backoff() {
        let (j, _d) = jobs().await;
        let w = serde_json::json!({});
        let a = j.submit(NewJob::new("a", w.clone()), 1).await.unwrap();
        let mut hi = NewJob::new("hi", w.clone());
        hi.priority = 9;
        let h = j.submit(hi, 2).await.unwrap();
        let b = j.submit(NewJob::new("b", w.clone()), 3).await.unwrap();
        let ids: Vec<_> = j
            .ready(10, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|x| x.id)
            .collect();
        assert_eq!(ids, vec![h.id.clone(), a.id.clone(), b.id.clone()]);
        // A retried job waits out its backoff.
        j.apply(
            &a.id,
            JobEvent::Dispatched {
                server_id: "s1".into(),
                remote_id: "r".into(),
            },
            11,
        )
        .await
        .unwrap();
        let back = j.apply(&a.id, fail(true), 12).await.unwrap();
        assert_eq!(
            (back.state, back.attempts, back.failed_on.clone()),
            (Queued, 1, vec!["s1".to_string()])
        );
        assert!(!j.ready(13, 100).await.unwrap().iter().any(|x| x.id == a.id));
        assert!(j
            .ready(12 + backoff_ms(1), 100)
            .await
            .unwrap()
            .iter()
            .any(|x| x.id == a.id));
        assert!(matches!(
            j.submit(
                NewJob {
                    priority: 11,
                    ..NewJob::new("x", w)
                },
                1
            )
            .await,
            Err(JobsError::BadPriority(11))
        ));
    }

    #[tokio::test]
    async fn jobs_record_timings_outputs_and_refuse_to_finish_twice() {
        let (j, _d) = jobs().await;
        let job = j
            .submit(NewJob::new("a", serde_json::json!({"1": {}})), 100)
            .await
            .unwrap();
        assert_eq!(
            j.workflow(&job.id).await.unwrap(),
            serde_json::json!({"1": {}})
        );
        j.apply(
            &job.id,
            JobEvent::Dispatched {
                server_id: "s".into(),
                remote_id: "p1".into(),
            },
            110,
        )
        .await
        .unwrap();
        j.apply(&job.id, JobEvent::Started, 120).await.unwrap();
        j.set_progress(&job.id, 0.5).await.unwrap();
        let outputs = vec![JobOutput {
            node_id: "9".into(),
            filename: "a.png".into(),
            path: "/g/a.png".into(),
        }];
        let done = j.succeed(&job.id, outputs.clone(), 150).await.unwrap();
        assert_eq!(
            (done.queued_ms, done.started_ms, done.finished_ms),
            (100, Some(120), Some(150))
        );
        assert_eq!(done.remote_id.as_deref(), Some("p1"));
        assert_eq!(done.outputs.len(), 1);
        assert_eq!(done.progress, 1.0);
        assert!(j.succeed(&job.id, outputs, 160).await.is_err());
        assert!(j.apply(&job.id, JobEvent::Cancelled, 160).await.is_err());
    }
}
