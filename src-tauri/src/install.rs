//! Tauri commands for the install wizard and the local server card: one call into core's `installer::run` and
//! `local` each; progress arrives whole through a Channel.

use comfyfleet_core::installer::run::Uninstalled;
use comfyfleet_core::installer::status::{
    InstallCheck, InstallRequest, InstallStatus, LocalStatus, LogTail,
};
use tauri::ipc::Channel;
use tauri::State;

use crate::commands::UiError;
use crate::AppState;

type Res<T> = Result<T, UiError>;

/// The system check, the packs on offer and the plan for these choices (or why there is none).
#[tauri::command]
#[specta::specta]
pub async fn install_check(
    state: State<'_, AppState>,
    request: InstallRequest,
) -> Res<InstallCheck> {
    Ok(state.installer.check(&request).await)
}

/// Starts installing in the background; follow it with `install_subscribe`.
#[tauri::command]
#[specta::specta]
pub async fn install_start(
    state: State<'_, AppState>,
    request: InstallRequest,
) -> Res<InstallStatus> {
    Ok(state.installer.start(request)?)
}

/// Stops the running step; finished steps and downloaded bytes are kept for `install_resume`.
#[tauri::command]
#[specta::specta]
pub async fn install_pause(state: State<'_, AppState>) -> Res<InstallStatus> {
    Ok(state.installer.pause().await)
}

/// Goes on from where a paused or failed install stopped (finished steps are skipped).
#[tauri::command]
#[specta::specta]
pub async fn install_resume(state: State<'_, AppState>) -> Res<InstallStatus> {
    Ok(state.installer.resume()?)
}

/// Re-verifies the install in `install_path` (model checksums, the Python environment) with the choices it was
/// made with, and redoes what is damaged. Follow it with `install_subscribe`.
#[tauri::command]
#[specta::specta]
pub async fn install_repair(
    state: State<'_, AppState>,
    install_path: String,
) -> Res<InstallStatus> {
    Ok(state.installer.repair_at(&install_path)?)
}

/// Removes an install (its server stops and leaves the list); shared models are kept unless `remove_models`.
#[tauri::command]
#[specta::specta]
pub async fn install_uninstall(
    state: State<'_, AppState>,
    install_path: String,
    remove_models: bool,
) -> Res<Uninstalled> {
    Ok(state
        .installer
        .uninstall(&install_path, remove_models)
        .await?)
}

#[tauri::command]
#[specta::specta]
pub async fn install_cancel(state: State<'_, AppState>) -> Res<InstallStatus> {
    Ok(state.installer.cancel().await)
}

#[tauri::command]
#[specta::specta]
pub async fn install_status(state: State<'_, AppState>) -> Res<InstallStatus> {
    Ok(state.installer.status())
}

/// Streams the install's status (whole, on every change) to this channel until the window goes away.
#[tauri::command]
#[specta::specta]
pub async fn install_subscribe(
    state: State<'_, AppState>,
    on_update: Channel<InstallStatus>,
) -> Res<()> {
    let mut rx = state.installer.subscribe();
    tauri::async_runtime::spawn(async move {
        loop {
            let status = rx.borrow_and_update().clone();
            if on_update.send(status).is_err() || rx.changed().await.is_err() {
                break;
            }
        }
    });
    Ok(())
}

#[tauri::command]
#[specta::specta]
pub async fn local_status(state: State<'_, AppState>) -> Res<LocalStatus> {
    Ok(state.local.refresh().await)
}

#[tauri::command]
#[specta::specta]
pub async fn local_start(state: State<'_, AppState>) -> Res<LocalStatus> {
    Ok(state.local.start().await?)
}

#[tauri::command]
#[specta::specta]
pub async fn local_stop(state: State<'_, AppState>) -> Res<LocalStatus> {
    Ok(state.local.stop().await?)
}

#[tauri::command]
#[specta::specta]
pub async fn local_restart(state: State<'_, AppState>) -> Res<LocalStatus> {
    Ok(state.local.restart().await?)
}

/// The last `lines` lines of the local server's log.
#[tauri::command]
#[specta::specta]
pub async fn local_logs(state: State<'_, AppState>, lines: u32) -> Res<LogTail> {
    Ok(state.local.logs(lines)?)
}

/// Whether ComfyUI keeps running when the app quits.
#[tauri::command]
#[specta::specta]
pub async fn local_set_keep_running(state: State<'_, AppState>, keep: bool) -> Res<LocalStatus> {
    Ok(state.local.set_keep_running(keep).await?)
}
