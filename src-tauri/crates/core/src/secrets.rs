//! Credentials in the OS keychain (Secret Service, macOS Keychain, Windows Credential Manager) — never anywhere else.

use serde::Deserialize;

/// The keychain service every ComfyFleet credential is filed under.
pub const SERVICE: &str = "ComfyFleet";

/// A secret value (password, token, API key). Its `Debug` and `Display` never show the value, and it
/// cannot be serialized, so it cannot slip into logs, the database, exports or IPC payloads.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The value, for the one place that needs it: building a request header.
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(••••)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("The system keychain is not available: {reason}. On Linux, ComfyFleet stores credentials with the Secret Service: make sure a desktop session is running with GNOME Keyring or KeePassXC (Secret Service enabled) and that it is unlocked.")]
    Unavailable { reason: String },
    #[error("The system keychain refused access: {reason}. Unlock your keychain and try again.")]
    Locked { reason: String },
    #[error("The system keychain failed: {reason}")]
    Failed { reason: String },
}

impl crate::HasErrorInfo for SecretsError {
    fn code(&self) -> &'static str {
        match self {
            SecretsError::Unavailable { .. } => "secrets.unavailable",
            SecretsError::Locked { .. } => "secrets.locked",
            SecretsError::Failed { .. } => "secrets.failed",
        }
    }
}

fn map_err(e: keyring::Error) -> SecretsError {
    // Keyring errors describe the platform problem; they never contain the secret itself.
    let reason = e.to_string();
    match e {
        keyring::Error::PlatformFailure(_) => {
            let lower = reason.to_lowercase();
            if lower.contains("locked") || lower.contains("prompt") || lower.contains("dismissed") {
                SecretsError::Locked { reason }
            } else {
                SecretsError::Unavailable { reason }
            }
        }
        keyring::Error::NoStorageAccess(_) => SecretsError::Locked { reason },
        _ => SecretsError::Failed { reason },
    }
}

/// The keychain. Every call is blocking on the platform side, so it runs on the blocking pool.
#[derive(Clone, Debug)]
pub struct Secrets {
    service: String,
}

impl Default for Secrets {
    fn default() -> Self {
        Self::new(SERVICE)
    }
}

impl Secrets {
    pub fn new(service: impl Into<String>) -> Self {
        Self {
            service: service.into(),
        }
    }

    fn entry(service: &str, account: &str) -> Result<keyring::Entry, SecretsError> {
        keyring::Entry::new(service, account).map_err(map_err)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        account: &str,
        f: impl FnOnce(keyring::Entry) -> Result<T, SecretsError> + Send + 'static,
    ) -> Result<T, SecretsError> {
        let (service, account) = (self.service.clone(), account.to_string());
        tokio::task::spawn_blocking(move || f(Self::entry(&service, &account)?))
            .await
            .map_err(|_| SecretsError::Failed {
                reason: "the keychain task stopped".into(),
            })?
    }

    /// Store (or replace) the secret for `account`.
    pub async fn set(&self, account: &str, secret: &Secret) -> Result<(), SecretsError> {
        let value = secret.clone();
        self.blocking(account, move |e| {
            e.set_password(value.expose()).map_err(map_err)
        })
        .await
    }

    /// Read the secret for `account`, `None` when there is none.
    pub async fn get(&self, account: &str) -> Result<Option<Secret>, SecretsError> {
        self.blocking(account, |e| match e.get_password() {
            Ok(v) => Ok(Some(Secret::new(v))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(err) => Err(map_err(err)),
        })
        .await
    }

    /// Remove the secret for `account`; removing a missing one is not an error.
    pub async fn delete(&self, account: &str) -> Result<(), SecretsError> {
        self.blocking(account, |e| match e.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(err) => Err(map_err(err)),
        })
        .await
    }
}

/// The keychain account that holds a server's credential.
pub fn server_account(server_id: &str) -> String {
    format!("server:{server_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_never_shows_the_value() {
        let s = Secret::new("hunter2-very-secret");
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    /// Runs against the real Secret Service (CI starts gnome-keyring inside dbus-run-session).
    #[tokio::test]
    async fn secrets_round_trip_through_the_real_keychain() {
        let secrets = Secrets::new("ComfyFleet-test");
        let account = format!("test:{}", uuid::Uuid::new_v4());
        assert_eq!(secrets.get(&account).await.unwrap(), None);
        secrets.set(&account, &Secret::new("s3cret")).await.unwrap();
        assert_eq!(
            secrets.get(&account).await.unwrap().unwrap().expose(),
            "s3cret"
        );
        secrets
            .set(&account, &Secret::new("changed"))
            .await
            .unwrap();
        assert_eq!(
            secrets.get(&account).await.unwrap().unwrap().expose(),
            "changed"
        );
        secrets.delete(&account).await.unwrap();
        assert_eq!(secrets.get(&account).await.unwrap(), None);
        secrets.delete(&account).await.unwrap();
    }
}
