//! The server list: add, edit, delete, order, the active server, credentials in the keychain, import and export.

pub mod address;
pub mod model;
pub mod transfer;

use std::path::Path;

use rusqlite::{params, OptionalExtension, Row};
use serde::Serialize;

pub use model::{
    AuthInput, AuthKind, AuthView, Flavour, InputProblem, RunpodEndpoint, Server, ServerInput,
    ServerKind,
};
pub use transfer::ImportProblem;

use crate::runpod::RunpodUrls;
use crate::secrets::{server_account, Secret, Secrets, SecretsError};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ServersError {
    #[error("{0}")]
    Input(#[from] InputProblem),
    #[error("{0}")]
    Import(#[from] ImportProblem),
    #[error("No server is called or has the id '{query}'. Run 'comfyfleet servers list' or open Servers to see them.")]
    NotFound { query: String },
    #[error("Could not read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("Could not write {path}: {reason}. Check the folder exists, is writable and the disk is not full.")]
    Write { path: String, reason: String },
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Secrets(#[from] SecretsError),
}

impl crate::HasErrorInfo for ServersError {
    fn code(&self) -> &'static str {
        match self {
            ServersError::Input(InputProblem::DuplicateName { .. }) => "servers.duplicate_name",
            ServersError::Input(InputProblem::Url(_)) => "servers.invalid_url",
            ServersError::Input(_) => "servers.invalid_input",
            ServersError::Import(_) => "servers.import_invalid",
            ServersError::NotFound { .. } => "servers.not_found",
            ServersError::Read { .. } => "servers.read_failed",
            ServersError::Write { .. } => "servers.write_failed",
            ServersError::Store(e) => e.code(),
            ServersError::Secrets(e) => e.code(),
        }
    }
}

/// What deleting a server did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct DeleteOutcome {
    pub was_active: bool,
    pub message: String,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct ImportReport {
    pub added: Vec<String>,
    pub skipped: Vec<SkippedImport>,
    pub needs_credentials: Vec<String>,
    /// The server the import made active, if any.
    pub activated: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct SkippedImport {
    pub name: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct ExportReport {
    pub count: u32,
    pub path: String,
}

/// The credential for one request: the stored auth settings plus the secret from the keychain.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub auth: AuthView,
    pub secret: Option<Secret>,
}

const SELECT: &str =
    "SELECT s.id, s.name, s.url, s.kind, s.auth_kind, s.auth_user, s.auth_header, s.has_secret,
    s.tags, s.timeout_ms, s.max_queue, s.notes, s.last_connected_ms,
    (a.server_id IS NOT NULL) AS active, s.runpod
    FROM servers s LEFT JOIN active_server a ON a.server_id = s.id";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Server> {
    let url: String = r.get(2)?;
    let auth = AuthView {
        kind: AuthKind::parse(&r.get::<_, String>(4)?).unwrap_or_default(),
        user: r.get(5)?,
        header: r.get(6)?,
    };
    let has_secret: bool = r.get(7)?;
    let (needs_credentials, plain_http_warning) = model::derive_flags(&url, &auth, has_secret);
    let tags: String = r.get(8)?;
    Ok(Server {
        id: r.get(0)?,
        name: r.get(1)?,
        kind: ServerKind::parse(&r.get::<_, String>(3)?).unwrap_or_default(),
        runpod: r
            .get::<_, Option<String>>(14)?
            .and_then(|t| serde_json::from_str(&t).ok()),
        url,
        auth,
        has_secret,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        timeout_ms: r.get(9)?,
        max_queue: r.get(10)?,
        notes: r.get(11)?,
        last_connected_ms: r.get(12)?,
        active: r.get(13)?,
        needs_credentials,
        plain_http_warning,
    })
}

fn list_in(conn: &rusqlite::Connection) -> Result<Vec<Server>, StoreError> {
    let mut stmt = conn.prepare(&format!("{SELECT} ORDER BY s.position, s.created_ms"))?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn names_except(conn: &rusqlite::Connection, id: Option<&str>) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare("SELECT name FROM servers WHERE id IS NOT ?1")?;
    let rows = stmt.query_map([id], |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn get_in(conn: &rusqlite::Connection, id: &str) -> Result<Option<Server>, StoreError> {
    Ok(conn
        .query_row(&format!("{SELECT} WHERE s.id = ?1"), [id], from_row)
        .optional()?)
}

fn runpod_json(v: &model::ValidServer) -> Option<String> {
    v.runpod
        .as_ref()
        .and_then(|r| serde_json::to_string(r).ok())
}

fn insert(
    tx: &rusqlite::Transaction<'_>,
    id: &str,
    v: &model::ValidServer,
    has_secret: bool,
    now: i64,
) -> Result<(), StoreError> {
    let position: i64 = tx.query_row(
        "SELECT COALESCE(MAX(position), 0) + 1 FROM servers",
        [],
        |r| r.get(0),
    )?;
    tx.execute(
        "INSERT INTO servers (id, name, name_key, url, kind, auth_kind, auth_user, auth_header, has_secret,
            tags, timeout_ms, max_queue, notes, position, created_ms, updated_ms, runpod)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15, ?16)",
        params![
            id,
            v.name,
            v.name_key,
            v.url,
            v.kind.as_str(),
            v.auth.kind.as_str(),
            v.auth.user,
            v.auth.header,
            has_secret,
            serde_json::to_string(&v.tags).unwrap_or_else(|_| "[]".into()),
            v.timeout_ms,
            v.max_queue,
            v.notes,
            position,
            now,
            runpod_json(v)
        ],
    )?;
    Ok(())
}

/// The server list, stored in the database with credentials in the keychain.
#[derive(Clone)]
pub struct ServerList {
    store: Store,
    secrets: Secrets,
    /// Where RunPod endpoints are reached (RunPod's addresses unless overridden).
    runpod_urls: std::sync::Arc<std::sync::RwLock<RunpodUrls>>,
    /// Signalled when this process adds, edits or imports servers (see [`ServerList::changed`]).
    changed: std::sync::Arc<tokio::sync::Notify>,
}

impl ServerList {
    pub fn new(store: Store, secrets: Secrets) -> Self {
        Self {
            store,
            secrets,
            runpod_urls: std::sync::Arc::new(std::sync::RwLock::new(RunpodUrls::from_env())),
            changed: std::sync::Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// RunPod's API addresses, shared by every handle on this list.
    pub fn runpod_urls(&self) -> RunpodUrls {
        self.runpod_urls
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Point every handle on this list at other RunPod addresses (tests, mirrors).
    pub fn set_runpod_urls(&self, urls: RunpodUrls) {
        *self.runpod_urls.write().unwrap_or_else(|p| p.into_inner()) = urls;
    }

    /// The keychain this list keeps its secrets in (tokens for downloads live there too).
    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    /// Every server, in list order.
    pub async fn list(&self) -> Result<Vec<Server>, ServersError> {
        self.store.call(|c| Ok(list_in(c)?)).await
    }

    /// Find a server by id or by name (case-insensitive).
    pub async fn find(&self, query: &str) -> Result<Server, ServersError> {
        let q = query.to_string();
        self.store
            .call(move |c| {
                let key = model::name_key(&q);
                let found = c
                    .query_row(
                        &format!("{SELECT} WHERE s.id = ?1 OR s.name_key = ?2"),
                        params![q.trim(), key],
                        from_row,
                    )
                    .optional()
                    .map_err(StoreError::from)?;
                found.ok_or(ServersError::NotFound { query: q })
            })
            .await
    }

    /// Resolves once this process has added, edited or imported servers since the last time it resolved (a change
    /// made before anyone waits is kept), so the status monitor can probe a new server at once instead of at its
    /// next round. Changes made by another process (the CLI) are seen at the next round.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// The active server, if one is set.
    pub async fn active(&self) -> Result<Option<Server>, ServersError> {
        Ok(self.list().await?.into_iter().find(|s| s.active))
    }

    /// Add a server. Its secret goes to the keychain first, so a stored server never claims a secret it lacks.
    pub async fn add(&self, input: ServerInput) -> Result<Server, ServersError> {
        let others = self
            .store
            .call(|c| Ok::<_, ServersError>(names_except(c, None)?))
            .await?;
        let valid = model::validate(&input, &others)?;
        if valid.auth.kind.needs_secret() && valid.secret.is_none() {
            return Err(InputProblem::MissingSecret {
                kind: valid.auth.kind,
            }
            .into());
        }
        let id = uuid::Uuid::new_v4().to_string();
        let account = server_account(&id);
        if let Some(secret) = &valid.secret {
            self.secrets.set(&account, secret).await?;
        }
        let has_secret = valid.secret.is_some();
        let now = crate::now_ms();
        let id2 = id.clone();
        let result = self
            .store
            .write(move |tx| {
                // Re-check under the write lock: another process may have added the same name meanwhile.
                let others = names_except(tx, None)?;
                let valid = model::validate(&input, &others)?;
                insert(tx, &id2, &valid, has_secret, now)?;
                Ok::<_, ServersError>(get_in(tx, &id2)?)
            })
            .await;
        match result {
            Ok(Some(server)) => {
                tracing::info!(server = %server.name, id = %server.id, "server added");
                self.changed.notify_one();
                Ok(server)
            }
            Ok(None) => Err(ServersError::NotFound { query: id }),
            Err(e) => {
                if has_secret {
                    let _ = self.secrets.delete(&account).await;
                }
                Err(e)
            }
        }
    }

    /// Edit a server. `input.auth.secret == None` keeps the stored secret; switching to no
    /// authentication removes it from the keychain.
    pub async fn update(&self, id: &str, input: ServerInput) -> Result<Server, ServersError> {
        let current = self.find(id).await?;
        let id = current.id.clone();
        let others = {
            let id = id.clone();
            self.store
                .call(move |c| Ok::<_, ServersError>(names_except(c, Some(&id))?))
                .await?
        };
        let valid = model::validate(&input, &others)?;
        let account = server_account(&id);
        let kind = valid.auth.kind;
        let keep_secret = kind.needs_secret() && current.has_secret;
        if kind.needs_secret() && valid.secret.is_none() && !keep_secret {
            return Err(InputProblem::MissingSecret { kind }.into());
        }
        // Replace the secret, remembering the old one so a failed database write can put it back.
        let previous = match &valid.secret {
            Some(new) => {
                let old = self.secrets.get(&account).await?;
                self.secrets.set(&account, new).await?;
                Some(old)
            }
            None => None,
        };
        let has_secret = valid.secret.is_some() || keep_secret;
        let now = crate::now_ms();
        let id2 = id.clone();
        let result = self
            .store
            .write(move |tx| {
                let others = names_except(tx, Some(&id2))?;
                let v = model::validate(&input, &others)?;
                let n = tx.execute(
                    "UPDATE servers SET name=?2, name_key=?3, url=?4, auth_kind=?5, auth_user=?6, auth_header=?7,
                        has_secret=?8, tags=?9, timeout_ms=?10, max_queue=?11, notes=?12, updated_ms=?13,
                        kind=?14, runpod=?15 WHERE id=?1",
                    params![
                        id2,
                        v.name,
                        v.name_key,
                        v.url,
                        v.auth.kind.as_str(),
                        v.auth.user,
                        v.auth.header,
                        has_secret,
                        serde_json::to_string(&v.tags).unwrap_or_else(|_| "[]".into()),
                        v.timeout_ms,
                        v.max_queue,
                        v.notes,
                        now,
                        v.kind.as_str(),
                        runpod_json(&v)
                    ],
                ).map_err(StoreError::from)?;
                if n == 0 {
                    return Err(ServersError::NotFound { query: id2.clone() });
                }
                Ok(get_in(tx, &id2)?)
            })
            .await;
        match result {
            Ok(Some(server)) => {
                if !kind.needs_secret() && current.has_secret {
                    if let Err(e) = self.secrets.delete(&account).await {
                        tracing::warn!(error = %e, server = %server.name, "could not remove an unused secret");
                    }
                }
                tracing::info!(server = %server.name, id = %server.id, "server edited");
                self.changed.notify_one();
                Ok(server)
            }
            Ok(None) => Err(ServersError::NotFound { query: id }),
            Err(e) => {
                match previous {
                    Some(Some(old)) => {
                        let _ = self.secrets.set(&account, &old).await;
                    }
                    Some(None) => {
                        let _ = self.secrets.delete(&account).await;
                    }
                    None => {}
                }
                Err(e)
            }
        }
    }

    /// Delete a server and its secret. Deleting the active server leaves none active, and says so.
    pub async fn delete(&self, query: &str) -> Result<DeleteOutcome, ServersError> {
        let server = self.find(query).await?;
        let id = server.id.clone();
        let was_active = self
            .store
            .write(move |tx| {
                let active: Option<String> = tx
                    .query_row(
                        "SELECT server_id FROM active_server WHERE slot = 1",
                        [],
                        |r| r.get(0),
                    )
                    .map_err(StoreError::from)?;
                let n = tx
                    .execute("DELETE FROM servers WHERE id = ?1", [&id])
                    .map_err(StoreError::from)?;
                if n == 0 {
                    return Err(ServersError::NotFound { query: id.clone() });
                }
                Ok(active.as_deref() == Some(id.as_str()))
            })
            .await?;
        if let Err(e) = self.secrets.delete(&server_account(&server.id)).await {
            tracing::warn!(error = %e, server = %server.name, "could not remove the deleted server's secret");
        }
        tracing::info!(server = %server.name, was_active, "server deleted");
        let message = if was_active {
            format!("Deleted '{}'. It was the active server; no server is active now. Choose another with Make active.", server.name)
        } else {
            format!("Deleted '{}'.", server.name)
        };
        Ok(DeleteOutcome {
            was_active,
            message,
        })
    }

    /// Make a server active, or none with `None`.
    pub async fn activate(&self, query: Option<&str>) -> Result<Option<Server>, ServersError> {
        let server = match query {
            Some(q) => Some(self.find(q).await?),
            None => None,
        };
        let id = server.as_ref().map(|s| s.id.clone());
        self.store
            .write(move |tx| {
                tx.execute(
                    "UPDATE active_server SET server_id = ?1 WHERE slot = 1",
                    [id],
                )
                .map_err(StoreError::from)?;
                Ok::<_, ServersError>(())
            })
            .await?;
        Ok(server.map(|s| Server { active: true, ..s }))
    }

    /// Move a server to a new place in the list order (0-based).
    pub async fn reorder(&self, ordered_ids: Vec<String>) -> Result<(), ServersError> {
        self.store
            .write(move |tx| {
                for (i, id) in ordered_ids.iter().enumerate() {
                    tx.execute(
                        "UPDATE servers SET position = ?2 WHERE id = ?1",
                        params![id, i as i64 + 1],
                    )
                    .map_err(StoreError::from)?;
                }
                Ok::<_, ServersError>(())
            })
            .await
    }

    /// The auth settings and secret to call a server with.
    /// RunPod endpoints are called with the account's API key (`None` when it is not set).
    pub async fn credentials(&self, server: &Server) -> Result<Credentials, ServersError> {
        let secret = if server.kind == ServerKind::RunpodServerless {
            self.secrets.get(crate::runpod::account::ACCOUNT).await?
        } else if server.auth.kind.needs_secret() && server.has_secret {
            self.secrets.get(&server_account(&server.id)).await?
        } else {
            None
        };
        Ok(Credentials {
            auth: server.auth.clone(),
            secret,
        })
    }

    /// Remember that a server answered (survives restarts).
    pub async fn record_connected(&self, id: &str, at_ms: i64) -> Result<(), ServersError> {
        let id = id.to_string();
        self.store
            .write(move |tx| {
                tx.execute(
                    "UPDATE servers SET last_connected_ms = ?2 WHERE id = ?1",
                    params![id, at_ms],
                )
                .map_err(StoreError::from)?;
                Ok::<_, ServersError>(())
            })
            .await
    }

    /// The list as a versioned JSON document, without secrets.
    pub async fn export_document(&self) -> Result<(String, u32), ServersError> {
        let servers = self.list().await?;
        let count = servers.len() as u32;
        let exported = servers
            .into_iter()
            .map(|s| transfer::ExportedServer {
                name: s.name,
                url: s.url,
                kind: s.kind,
                runpod: s.runpod,
                auth: s.auth,
                tags: s.tags,
                timeout_ms: Some(s.timeout_ms),
                max_queue: s.max_queue,
                notes: s.notes,
                active: s.active,
            })
            .collect();
        Ok((transfer::to_document(exported, crate::now_ms()), count))
    }

    /// Write the document to `path` atomically (a temporary file renamed into place).
    pub async fn export_to(&self, path: &Path) -> Result<ExportReport, ServersError> {
        let (text, count) = self.export_document().await?;
        let write_err = |e: std::io::Error| ServersError::Write {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        let tmp = path.with_extension("json.tmp");
        tokio::fs::write(&tmp, text.as_bytes())
            .await
            .map_err(write_err)?;
        tokio::fs::rename(&tmp, path).await.map_err(write_err)?;
        Ok(ExportReport {
            count,
            path: path.display().to_string(),
        })
    }

    /// Read and import a file; refuses files over the size limit before reading them.
    pub async fn import_from(&self, path: &Path) -> Result<ImportReport, ServersError> {
        let read_err = |e: std::io::Error| ServersError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        let meta = tokio::fs::metadata(path).await.map_err(read_err)?;
        if meta.len() > transfer::MAX_IMPORT_BYTES {
            return Err(ImportProblem::TooLarge {
                size_mb: meta.len().div_ceil(1024 * 1024),
            }
            .into());
        }
        let bytes = {
            use tokio::io::AsyncReadExt;
            let f = tokio::fs::File::open(path).await.map_err(read_err)?;
            let mut buf = Vec::new();
            f.take(transfer::MAX_IMPORT_BYTES + 1)
                .read_to_end(&mut buf)
                .await
                .map_err(read_err)?;
            if buf.len() as u64 > transfer::MAX_IMPORT_BYTES {
                return Err(ImportProblem::TooLarge {
                    size_mb: transfer::MAX_IMPORT_BYTES / 1024 / 1024 + 1,
                }
                .into());
            }
            buf
        };
        let text = String::from_utf8(bytes).map_err(|_| ImportProblem::NotJson {
            reason: "the file is not UTF-8 text".into(),
        })?;
        self.import_document(&text).await
    }

    /// Import a document: all or nothing. Servers whose name is already in the list are skipped and
    /// reported; servers whose auth needs a secret come in marked as needing credentials.
    pub async fn import_document(&self, text: &str) -> Result<ImportReport, ServersError> {
        let imported = transfer::parse(text)?;
        let existing = self.list().await?;
        let mut report = ImportReport::default();
        let mut to_add = Vec::new();
        let mut taken: Vec<String> = existing.iter().map(|s| s.name.clone()).collect();
        for (i, item) in imported.into_iter().enumerate() {
            let mut input = item.input;
            if let Some(same) = existing
                .iter()
                .find(|s| model::name_key(&s.name) == model::name_key(&input.name))
            {
                if input.name == transfer::LEGACY_NAME && item.active && same.url != input.url {
                    input.name = unique_name(&input.name, &taken);
                } else {
                    report.skipped.push(SkippedImport {
                        name: input.name.clone(),
                        reason: format!("a server named '{}' is already in your list", same.name),
                    });
                    continue;
                }
            }
            let valid = model::validate(&input, &taken).map_err(|p| ImportProblem::Invalid {
                index: i + 1,
                name: input.name.clone(),
                problem: p.to_string(),
            })?;
            taken.push(valid.name.clone());
            to_add.push((uuid::Uuid::new_v4().to_string(), valid, item.active));
        }
        // Secrets (legacy files only) go to the keychain first; if that fails the server is imported
        // as needing credentials rather than failing the whole import.
        let mut with_secret = Vec::new();
        for (id, valid, _) in &to_add {
            if let Some(secret) = &valid.secret {
                match self.secrets.set(&server_account(id), secret).await {
                    Ok(()) => with_secret.push(id.clone()),
                    Err(e) => {
                        tracing::warn!(error = %e, server = %valid.name, "imported without its secret")
                    }
                }
            }
        }
        let no_active = !existing.iter().any(|s| s.active);
        let now = crate::now_ms();
        let rows: Vec<_> = to_add
            .iter()
            .map(|(id, v, active)| (id.clone(), v.clone(), *active, with_secret.contains(id)))
            .collect();
        let result = self
            .store
            .write(move |tx| {
                let mut activated = None;
                for (id, v, active, has_secret) in &rows {
                    insert(tx, id, v, *has_secret, now)?;
                    if *active && no_active && activated.is_none() {
                        tx.execute(
                            "UPDATE active_server SET server_id = ?1 WHERE slot = 1",
                            [id],
                        )
                        .map_err(StoreError::from)?;
                        activated = Some(v.name.clone());
                    }
                }
                Ok::<_, ServersError>(activated)
            })
            .await;
        match result {
            Ok(activated) => {
                for (id, v, _) in &to_add {
                    report.added.push(v.name.clone());
                    if v.auth.kind.needs_secret() && !with_secret.contains(id) {
                        report.needs_credentials.push(v.name.clone());
                    }
                }
                report.activated = activated;
                tracing::info!(
                    added = report.added.len(),
                    skipped = report.skipped.len(),
                    "servers imported"
                );
                if !report.added.is_empty() {
                    self.changed.notify_one();
                }
                Ok(report)
            }
            Err(e) => {
                for id in &with_secret {
                    let _ = self.secrets.delete(&server_account(id)).await;
                }
                Err(e)
            }
        }
    }
}

fn unique_name(base: &str, taken: &[String]) -> String {
    (2..)
        .map(|n| format!("{base} ({n})"))
        .find(|candidate| {
            !taken
                .iter()
                .any(|t| model::name_key(t) == model::name_key(candidate))
        })
        .unwrap_or_else(|| base.to_string())
}
