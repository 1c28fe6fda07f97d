//! Tauri commands for the RunPod account: whether the API key is set, set (straight into the keychain), test with
//! one cheap authenticated call, remove. The key never comes back to the webview.

use comfyfleet_core::runpod::account::{KeyStatus, KeyTest, RunpodAccount};
use comfyfleet_core::runpod::RunpodUrls;
use comfyfleet_core::secrets::{Secret, Secrets};

use crate::commands::UiError;

type Res<T> = Result<T, UiError>;

fn account() -> RunpodAccount {
    RunpodAccount::new(Secrets::default(), RunpodUrls::from_env())
}

#[tauri::command]
#[specta::specta]
pub async fn runpod_key_status() -> Res<KeyStatus> {
    Ok(account().status().await?)
}

/// Stores the RunPod API key in the OS keychain.
#[tauri::command]
#[specta::specta]
pub async fn runpod_key_set(key: Secret) -> Res<KeyStatus> {
    Ok(account().set(&key).await?)
}

/// One cheap authenticated call to RunPod; a refusal is a result with what to do, not an error.
#[tauri::command]
#[specta::specta]
pub async fn runpod_key_test() -> Res<KeyTest> {
    Ok(account().test().await?)
}

#[tauri::command]
#[specta::specta]
pub async fn runpod_key_remove() -> Res<KeyStatus> {
    Ok(account().remove().await?)
}
