//! Tauri commands for the Downloads panel: list, add, pause, resume, cancel, retry, clear finished, a Channel of
//! updates, and the model host tokens downloads use.
//! Each is one call into core's `downloads_list`; tokens stay in core and URLs arrive redacted.

use comfyfleet_core::downloads_list::{DownloadInput, DownloadItem, DownloadUpdate};
use comfyfleet_core::secrets::Secret;
use comfyfleet_core::tokens::{TokenHost, TokenStatus, Tokens};
use tauri::ipc::Channel;
use tauri::State;

use crate::commands::UiError;
use crate::AppState;

type Res<T> = Result<T, UiError>;

/// Every download of this session (newest first), then the verified files remembered from before.
#[tauri::command]
#[specta::specta]
pub async fn downloads_list(state: State<'_, AppState>) -> Res<Vec<DownloadItem>> {
    Ok(state.downloads.list().await?)
}

/// Validates the URL, destination and checksum, and starts the download.
#[tauri::command]
#[specta::specta]
pub async fn downloads_add(state: State<'_, AppState>, input: DownloadInput) -> Res<DownloadItem> {
    Ok(state.downloads.add(input).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn downloads_pause(state: State<'_, AppState>, id: String) -> Res<DownloadItem> {
    Ok(state.downloads.pause(&id)?)
}

#[tauri::command]
#[specta::specta]
pub async fn downloads_resume(state: State<'_, AppState>, id: String) -> Res<DownloadItem> {
    Ok(state.downloads.resume(&id)?)
}

#[tauri::command]
#[specta::specta]
pub async fn downloads_cancel(state: State<'_, AppState>, id: String) -> Res<DownloadItem> {
    Ok(state.downloads.cancel(&id)?)
}

#[tauri::command]
#[specta::specta]
pub async fn downloads_retry(state: State<'_, AppState>, id: String) -> Res<DownloadItem> {
    Ok(state.downloads.retry(&id)?)
}

/// Takes the finished and cancelled downloads out of the list (files stay); returns the ids that left.
#[tauri::command]
#[specta::specta]
pub async fn downloads_clear_finished(state: State<'_, AppState>) -> Res<Vec<String>> {
    Ok(state.downloads.clear_finished().await?)
}

/// Stream every download change to this channel (progress throttled in core) until the window goes away.
#[tauri::command]
#[specta::specta]
pub async fn downloads_subscribe(
    state: State<'_, AppState>,
    on_update: Channel<DownloadUpdate>,
) -> Res<()> {
    let list = state.downloads.clone();
    let mut rx = list.subscribe();
    tauri::async_runtime::spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            let updates = match rx.recv().await {
                Ok(u) => vec![u],
                // Fell behind: send where every download is now instead of the missed steps.
                Err(RecvError::Lagged(_)) => list
                    .session()
                    .into_iter()
                    .map(|item| DownloadUpdate::Changed { item })
                    .collect(),
                Err(RecvError::Closed) => break,
            };
            if updates.into_iter().any(|u| on_update.send(u).is_err()) {
                break;
            }
        }
    });
    Ok(())
}

/// Whether the Hugging Face and CivitAI tokens are set (never their values).
#[tauri::command]
#[specta::specta]
pub async fn tokens_list() -> Res<Vec<TokenStatus>> {
    Ok(Tokens::default().list().await?)
}

/// Stores a model host token in the OS keychain.
#[tauri::command]
#[specta::specta]
pub async fn tokens_set(host: TokenHost, token: Secret) -> Res<TokenStatus> {
    Ok(Tokens::default().set(host, &token).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn tokens_remove(host: TokenHost) -> Res<TokenStatus> {
    Ok(Tokens::default().remove(host).await?)
}
