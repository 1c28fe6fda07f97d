//! App settings shared by the desktop app and the CLI (stored in the database): auto-switch and friends.

use serde::{Deserialize, Serialize};

use crate::store::{Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Settings {
    /// When the active server stops answering, make the next healthy server active.
    pub auto_switch: bool,
}

#[derive(Clone)]
pub struct SettingsStore {
    store: Store,
}

const KEY: &str = "app_settings";
const ROUTER_KEY: &str = "router";

impl SettingsStore {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    pub async fn get(&self) -> Result<Settings, StoreError> {
        self.store
            .call(|c| {
                let raw: Option<String> = c
                    .query_row("SELECT value FROM settings WHERE key = ?1", [KEY], |r| {
                        r.get(0)
                    })
                    .map(Some)
                    .or_else(|e| {
                        if e == rusqlite::Error::QueryReturnedNoRows {
                            Ok(None)
                        } else {
                            Err(e)
                        }
                    })?;
                Ok(raw
                    .and_then(|r| serde_json::from_str(&r).ok())
                    .unwrap_or_default())
            })
            .await
    }

    /// The routing settings; `auto_switch` always mirrors the app setting of that name.
    pub async fn router(&self) -> Result<crate::router::RouterConfig, StoreError> {
        let mut cfg: crate::router::RouterConfig = self.json(ROUTER_KEY).await?;
        cfg.auto_switch = self.get().await?.auto_switch;
        Ok(cfg)
    }

    pub async fn set_router(
        &self,
        cfg: crate::router::RouterConfig,
    ) -> Result<crate::router::RouterConfig, StoreError> {
        let mut settings = self.get().await?;
        settings.auto_switch = cfg.auto_switch;
        self.set(settings).await?;
        self.put_json(ROUTER_KEY, &cfg).await?;
        Ok(cfg)
    }

    /// A setting stored as text under `key` (other modules keep their own JSON here).
    pub async fn raw(&self, key: &'static str) -> Result<Option<String>, StoreError> {
        self.store
            .call(move |c| {
                use rusqlite::OptionalExtension;
                Ok(
                    c.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                        r.get(0)
                    })
                    .optional()?,
                )
            })
            .await
    }

    /// A setting another module keeps as JSON under `key`; its default when missing or unreadable.
    pub async fn json<T: serde::de::DeserializeOwned + Default>(
        &self,
        key: &'static str,
    ) -> Result<T, StoreError> {
        Ok(self
            .raw(key)
            .await?
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default())
    }

    /// Keep `value` as JSON under `key`.
    pub async fn put_json<T: Serialize>(
        &self,
        key: &'static str,
        value: &T,
    ) -> Result<(), StoreError> {
        self.put(key, serde_json::to_string(value).unwrap_or_default())
            .await
    }

    pub async fn put(&self, key: &'static str, text: String) -> Result<(), StoreError> {
        self.store
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO settings(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    [key, &text],
                )?;
                Ok::<_, StoreError>(())
            })
            .await
    }

    pub async fn set(&self, settings: Settings) -> Result<Settings, StoreError> {
        let text = serde_json::to_string(&settings).unwrap_or_default();
        self.store
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO settings(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    [KEY, &text],
                )?;
                Ok::<_, StoreError>(())
            })
            .await?;
        Ok(settings)
    }
}
