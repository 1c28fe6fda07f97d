//! The RunPod API key: kept only in the OS keychain, checked with a cheap authenticated call, never shown, logged
//! or put in an error text.

use std::time::Duration;

use serde::Serialize;

use super::RunpodUrls;
use crate::secrets::{Secret, Secrets, SecretsError};

/// The keychain account of the RunPod API key.
pub const ACCOUNT: &str = "runpod:api_key";

/// What the UI and the CLI see of the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct KeyStatus {
    pub set: bool,
}

/// The result of testing the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct KeyTest {
    pub ok: bool,
    pub message: String,
    pub latency_ms: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("No RunPod API key is set. Create one at https://www.runpod.io/console/user/settings (API Keys) and add it.")]
    NoKey,
    #[error("The RunPod API key is empty or contains spaces. Paste the key itself.")]
    BadKey,
    #[error("{0}")]
    Secrets(#[from] SecretsError),
}

impl crate::HasErrorInfo for AccountError {
    fn code(&self) -> &'static str {
        match self {
            AccountError::NoKey => "runpod.no_key",
            AccountError::BadKey => "runpod.bad_key",
            AccountError::Secrets(e) => e.code(),
        }
    }
}

/// What an answer from RunPod's API means for the user. Pure; never includes the key.
pub fn explain_status(status: u16) -> Option<String> {
    Some(match status {
        200..=299 => return None,
        401 => "RunPod refused the API key (401). Check it in the RunPod console (Settings → API Keys) and set it again.".into(),
        403 => "RunPod says this API key may not do that (403). Give the key read/write access to pods and serverless in the RunPod console.".into(),
        429 => "RunPod is rate limiting this account (429). Wait a minute and try again.".into(),
        500..=599 => format!("RunPod's API is failing ({status}). Try again in a few minutes; status: https://uptime.runpod.io"),
        other => format!("RunPod answered {other}."),
    })
}

#[derive(Clone)]
pub struct RunpodAccount {
    secrets: Secrets,
    urls: RunpodUrls,
    http: reqwest::Client,
}

impl RunpodAccount {
    pub fn new(secrets: Secrets, urls: RunpodUrls) -> RunpodAccount {
        RunpodAccount {
            secrets,
            urls,
            http: crate::downloads::http_client(),
        }
    }

    pub async fn status(&self) -> Result<KeyStatus, AccountError> {
        Ok(KeyStatus {
            set: self.secrets.get(ACCOUNT).await?.is_some(),
        })
    }

    /// The key, for the clients that send it.
    pub async fn key(&self) -> Result<Secret, AccountError> {
        self.secrets.get(ACCOUNT).await?.ok_or(AccountError::NoKey)
    }

    pub async fn set(&self, key: &Secret) -> Result<KeyStatus, AccountError> {
        let k = key.expose().trim();
        if k.is_empty() || k.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(AccountError::BadKey);
        }
        self.secrets.set(ACCOUNT, &Secret::new(k)).await?;
        self.status().await
    }

    pub async fn remove(&self) -> Result<KeyStatus, AccountError> {
        self.secrets.delete(ACCOUNT).await?;
        self.status().await
    }

    /// One cheap authenticated call (the GPU catalog). A refusal is a result, not an error.
    pub async fn test(&self) -> Result<KeyTest, AccountError> {
        let key = self.key().await?;
        let started = std::time::Instant::now();
        let answer = self
            .http
            .get(format!("{}/catalog/gpus", self.urls.rest))
            .bearer_auth(key.expose())
            .timeout(Duration::from_secs(15))
            .send()
            .await;
        let latency_ms = started.elapsed().as_millis() as u64;
        Ok(match answer {
            Ok(r) => match explain_status(r.status().as_u16()) {
                None => KeyTest {
                    ok: true,
                    message: "RunPod accepted the key.".into(),
                    latency_ms,
                },
                Some(message) => KeyTest {
                    ok: false,
                    message,
                    latency_ms,
                },
            },
            Err(e) => KeyTest {
                ok: false,
                message: format!(
                    "Could not reach RunPod at {}: {}. Check the network connection.",
                    self.urls.rest,
                    if e.is_timeout() {
                        "no answer within 15 s".to_string()
                    } else {
                        crate::downloads::redact_text(&e.without_url().to_string())
                    }
                ),
                latency_ms,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runpod_refusals_say_what_to_do() {
        assert!(explain_status(200).is_none());
        assert!(explain_status(401).unwrap().contains("set it again"));
        assert!(explain_status(403).unwrap().contains("access"));
        assert!(explain_status(429).unwrap().contains("Wait a minute"));
        assert!(explain_status(503).unwrap().contains("503"));
    }
}
