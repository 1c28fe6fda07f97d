//! The embedded database (SQLite in WAL mode) and its migrations, shared safely by the desktop app and the CLI.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// How long a writer waits for another process (the CLI or the app) to finish its transaction.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Ordered migrations; `PRAGMA user_version` records how many have run. Never edit a shipped one: append.
const MIGRATIONS: &[&str] = &[
    // 1: the server list, the active server and app settings.
    r#"
    CREATE TABLE servers (
        id                TEXT PRIMARY KEY,
        name              TEXT NOT NULL,
        name_key          TEXT NOT NULL UNIQUE,
        url               TEXT NOT NULL,
        kind              TEXT NOT NULL DEFAULT 'comfyui',
        auth_kind         TEXT NOT NULL DEFAULT 'none',
        auth_user         TEXT,
        auth_header       TEXT,
        has_secret        INTEGER NOT NULL DEFAULT 0,
        tags              TEXT NOT NULL DEFAULT '[]',
        timeout_ms        INTEGER NOT NULL,
        max_queue         INTEGER,
        notes             TEXT NOT NULL DEFAULT '',
        position          INTEGER NOT NULL,
        last_connected_ms INTEGER,
        created_ms        INTEGER NOT NULL,
        updated_ms        INTEGER NOT NULL
    );
    CREATE TABLE active_server (
        slot      INTEGER PRIMARY KEY CHECK (slot = 1),
        server_id TEXT REFERENCES servers(id) ON DELETE SET NULL
    );
    INSERT INTO active_server (slot, server_id) VALUES (1, NULL);
    CREATE TABLE settings (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    "#,
    // 2: the job queue.
    r#"
    CREATE TABLE jobs (
        id            TEXT PRIMARY KEY,
        name          TEXT NOT NULL,
        state         TEXT NOT NULL,
        priority      INTEGER NOT NULL,
        target        TEXT,
        workflow      TEXT NOT NULL,
        server_id     TEXT,
        remote_id     TEXT,
        attempts      INTEGER NOT NULL DEFAULT 0,
        max_attempts  INTEGER NOT NULL,
        queued_ms     INTEGER NOT NULL,
        started_ms    INTEGER,
        finished_ms   INTEGER,
        not_before_ms INTEGER NOT NULL,
        timeout_ms    INTEGER NOT NULL,
        progress      REAL NOT NULL DEFAULT 0,
        outputs       TEXT NOT NULL DEFAULT '[]',
        error         TEXT,
        failed_on     TEXT NOT NULL DEFAULT '[]',
        notes         TEXT NOT NULL DEFAULT '[]'
    );
    CREATE INDEX jobs_by_state ON jobs (state, priority DESC, queued_ms);
    "#,
    // 3: leases, so only one process (the app or a CLI) dispatches jobs at a time.
    r#"
    CREATE TABLE leases (
        name       TEXT PRIMARY KEY,
        holder     TEXT NOT NULL,
        expires_ms INTEGER NOT NULL
    );
    "#,
    // 4: downloads: where each file goes, its state, and the verified hash once done (the part's byte-level
    // progress lives in `<dest>.part.json` beside it).
    r#"
    CREATE TABLE downloads (
        dest       TEXT PRIMARY KEY,
        url        TEXT NOT NULL,
        state      TEXT NOT NULL,
        total      INTEGER,
        downloaded INTEGER NOT NULL DEFAULT 0,
        sha256     TEXT,
        size       INTEGER,
        mtime_ms   INTEGER,
        error      TEXT,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL
    );
    "#,
    // 5: RunPod serverless endpoints in the server list (their endpoint id, GPU class and image flavour as JSON),
    // and each job's cloud timings (queue wait and execution, ms) as RunPod reports them.
    r#"
    ALTER TABLE servers ADD COLUMN runpod TEXT;
    ALTER TABLE jobs ADD COLUMN delay_ms INTEGER;
    ALTER TABLE jobs ADD COLUMN execution_ms INTEGER;
    "#,
    // 6: RunPod pods the app created (and so may stop or terminate): the server entry registered for each, its
    // price, its last activity (creation, start or a job on its server) for the idle auto-shutdown, and its state.
    // Pods made elsewhere are never recorded here.
    r#"
    CREATE TABLE pods (
        pod_id             TEXT PRIMARY KEY,
        server_id          TEXT,
        name               TEXT NOT NULL,
        gpu                TEXT NOT NULL DEFAULT '',
        cost_per_hr_micros INTEGER NOT NULL DEFAULT 0,
        created_ms         INTEGER NOT NULL,
        last_job_ms        INTEGER,
        state              TEXT NOT NULL,
        stopped_reason     TEXT,
        updated_ms         INTEGER NOT NULL
    );
    "#,
    // 7: the cost ledger (one row per finished job, settled once), spending reservations of jobs on their way to a
    // paid backend (one per job, so concurrent jobs cannot together pass a cap), and pod uptime per interval split
    // into busy and idle time. Money in integer micro-dollars.
    r#"
    CREATE TABLE ledger (
        job_id       TEXT PRIMARY KEY,
        server_id    TEXT NOT NULL,
        backend      TEXT NOT NULL,
        at_ms        INTEGER NOT NULL,
        billed_ms    INTEGER NOT NULL,
        rate_micros  INTEGER NOT NULL,
        rate_per     TEXT NOT NULL,
        cost_micros  INTEGER NOT NULL,
        exact        INTEGER NOT NULL,
        how          TEXT NOT NULL,
        saved_micros INTEGER NOT NULL DEFAULT 0,
        ok           INTEGER NOT NULL DEFAULT 1,
        duration_ms  INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX ledger_by_time ON ledger (at_ms);
    CREATE TABLE reservations (
        id            TEXT PRIMARY KEY,
        job_id        TEXT NOT NULL UNIQUE,
        server_id     TEXT NOT NULL,
        amount_micros INTEGER NOT NULL,
        created_ms    INTEGER NOT NULL
    );
    CREATE INDEX reservations_by_time ON reservations (created_ms);
    CREATE TABLE pod_usage (
        pod_id      TEXT NOT NULL,
        start_ms    INTEGER NOT NULL,
        busy_ms     INTEGER NOT NULL,
        idle_ms     INTEGER NOT NULL,
        cost_micros INTEGER NOT NULL,
        PRIMARY KEY (pod_id, start_ms)
    );
    CREATE INDEX pod_usage_by_time ON pod_usage (start_ms);
    "#,
    // 8: how many times each ledger job moved off a server that failed it (failovers), for the cost reports.
    r#"
    ALTER TABLE ledger ADD COLUMN failovers INTEGER NOT NULL DEFAULT 0;
    "#,
    // 9: whether a finished download is shown in the Downloads list (Clear finished hides it; the record stays, so a
    // verified file is still not fetched again).
    r#"
    ALTER TABLE downloads ADD COLUMN listed INTEGER NOT NULL DEFAULT 1;
    "#,
    // 10: a job's `extra_data` as a ComfyUI client sent it with the prompt (e.g. the web page's workflow, which
    // ComfyUI embeds in the images it saves), passed on to the server that runs it.
    r#"
    ALTER TABLE jobs ADD COLUMN extra_data TEXT;
    "#,
];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("Could not open the database {path}: {source}. Check that the folder is writable and not on a full disk.")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("The database {path} was written by a newer ComfyFleet (schema {found}, this version knows {known}). Update ComfyFleet.")]
    TooNew {
        path: String,
        found: i64,
        known: i64,
    },
    #[error("The database is busy (another ComfyFleet process holds it). Try again in a moment.")]
    Busy,
    #[error("Database error: {0}")]
    Sql(rusqlite::Error),
    #[error("A database task stopped unexpectedly.")]
    TaskLost,
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy) | Some(rusqlite::ErrorCode::DatabaseLocked) => {
                StoreError::Busy
            }
            _ => StoreError::Sql(e),
        }
    }
}

impl crate::HasErrorInfo for StoreError {
    fn code(&self) -> &'static str {
        match self {
            StoreError::Open { .. } => "store.open_failed",
            StoreError::TooNew { .. } => "store.too_new",
            StoreError::Busy => "store.busy",
            StoreError::Sql(_) => "store.sql",
            StoreError::TaskLost => "store.task_lost",
        }
    }
}

/// Every row `sql` selects with `params`, each read by `read` (the statement is prepared once and cached).
pub fn rows<T, P: rusqlite::Params>(
    c: &Connection,
    sql: &str,
    params: P,
    read: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    c.prepare_cached(sql)?.query_map(params, read)?.collect()
}

/// A handle to the database. Cheap to clone; calls run on the blocking pool.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

impl Store {
    /// Open (creating if needed) and migrate the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.display().to_string(),
            source,
        };
        let mut conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        migrate(&mut conn, path)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Run `f` with the connection on the blocking pool.
    pub async fn call<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|_| E::from(StoreError::TaskLost))?
    }

    /// Run `f` inside one write transaction (`BEGIN IMMEDIATE`), committed only if `f` succeeds.
    /// Taking the write lock up front means two processes never interleave a read-modify-write.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T, E> + Send + 'static,
    {
        self.call(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(|e| E::from(StoreError::from(e)))?;
            let out = f(&tx)?;
            tx.commit().map_err(|e| E::from(StoreError::from(e)))?;
            Ok(out)
        })
        .await
    }
}

impl Store {
    /// Take or renew the lease `name` for `holder` until `now_ms + ttl_ms`. True when `holder` has it:
    /// it was free, expired, or already ours. Atomic across processes.
    pub async fn lease(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        let (name, holder) = (name.to_string(), holder.to_string());
        self.write(move |tx| {
            let n = tx.execute(
                "INSERT INTO leases (name, holder, expires_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, expires_ms = excluded.expires_ms
                 WHERE leases.holder = excluded.holder OR leases.expires_ms <= ?4",
                rusqlite::params![name, holder, now_ms + ttl_ms, now_ms],
            )?;
            Ok::<_, StoreError>(n == 1)
        })
        .await
    }

    /// Give the lease up (if `holder` has it).
    pub async fn release(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let (name, holder) = (name.to_string(), holder.to_string());
        self.write(move |tx| {
            tx.execute(
                "DELETE FROM leases WHERE name = ?1 AND holder = ?2",
                [name, holder],
            )?;
            Ok::<_, StoreError>(())
        })
        .await
    }
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let known = MIGRATIONS.len() as i64;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let found: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > known {
        return Err(StoreError::TooNew {
            path: path.display().to_string(),
            found,
            known,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn store_migrates_a_new_database_to_the_latest_schema() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("a.db")).unwrap();
        let (version, mode): (i64, String) = store
            .call(|c| {
                Ok::<_, StoreError>((
                    c.pragma_query_value(None, "user_version", |r| r.get(0))?,
                    c.pragma_query_value(None, "journal_mode", |r| r.get(0))?,
                ))
            })
            .await
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        assert_eq!(mode, "wal");
    }

    #[tokio::test]
    async fn store_reopen_keeps_data_and_does_not_rerun_migrations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let store = Store::open(&path).unwrap();
        store
            .write(|tx| {
                tx.execute("INSERT INTO settings(key, value) VALUES ('k', 'v')", [])?;
                Ok::<_, StoreError>(())
            })
            .await
            .unwrap();
        drop(store);
        let store = Store::open(&path).unwrap();
        let v: String = store
            .call(|c| {
                Ok::<_, StoreError>(c.query_row(
                    "SELECT value FROM settings WHERE key='k'",
                    [],
                    |r| r.get(0),
                )?)
            })
            .await
            .unwrap();
        assert_eq!(v, "v");
    }

    #[tokio::test]
    async fn store_lease_has_one_holder_until_it_expires_or_is_released() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let (a, b) = (Store::open(&path).unwrap(), Store::open(&path).unwrap());
        assert!(a.lease("d", "app", 1_000, 5_000).await.unwrap());
        assert!(
            !b.lease("d", "cli", 2_000, 5_000).await.unwrap(),
            "held by the app"
        );
        assert!(a.lease("d", "app", 3_000, 5_000).await.unwrap(), "renewed");
        assert!(!b.lease("d", "cli", 7_999, 5_000).await.unwrap());
        assert!(
            b.lease("d", "cli", 8_000, 5_000).await.unwrap(),
            "expired, taken over"
        );
        b.release("d", "cli").await.unwrap();
        assert!(a.lease("d", "app", 8_001, 5_000).await.unwrap());
    }

    #[tokio::test]
    async fn store_refuses_a_database_from_a_newer_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        {
            let c = Connection::open(&path).unwrap();
            c.pragma_update(None, "user_version", 999).unwrap();
        }
        match Store::open(&path) {
            Err(StoreError::TooNew { found: 999, .. }) => {}
            other => panic!("expected TooNew, got {:?}", other.err()),
        }
    }

    #[tokio::test]
    async fn store_failed_write_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("a.db")).unwrap();
        let r: Result<(), StoreError> = store
            .write(|tx| {
                tx.execute("INSERT INTO settings(key, value) VALUES ('x', '1')", [])?;
                Err(StoreError::Busy)
            })
            .await;
        assert!(r.is_err());
        let n: i64 = store
            .call(|c| {
                Ok::<_, StoreError>(c.query_row("SELECT COUNT(*) FROM settings", [], |r| r.get(0))?)
            })
            .await
            .unwrap();
        assert_eq!(n, 0);
    }
}
