//! Tauri commands: each takes the state, makes one core call, and maps the error. No logic here.

use comfyfleet_core::health::ServerStatus;
use comfyfleet_core::servers::{DeleteOutcome, ExportReport, ImportReport, Server, ServerInput};
use comfyfleet_core::settings::Settings;
use comfyfleet_core::HasErrorInfo;
use serde::Serialize;
use specta::Type;
use tauri::{AppHandle, State};
use tauri_specta::Event;

use crate::events::{ActiveServerChanged, ServersChanged};
use crate::{tray, AppState};

/// An error as the UI sees it: a stable code, a message that says what to do, optional details.
#[derive(Debug, Clone, Serialize, Type)]
pub struct UiError {
    pub code: String,
    pub message: String,
    pub details: Option<String>,
}

impl<E: HasErrorInfo> From<E> for UiError {
    fn from(e: E) -> Self {
        let info = e.to_info();
        tracing::warn!(code = %info.code, "command failed: {}", info.message);
        UiError {
            code: info.code,
            message: info.message,
            details: info.details,
        }
    }
}

type Res<T> = Result<T, UiError>;

/// Refresh the tray and tell every window the list changed.
async fn list_changed(app: &AppHandle, reason: &str) {
    tray::refresh(app).await;
    let _ = ServersChanged {
        reason: reason.into(),
    }
    .emit(app);
}

#[tauri::command]
#[specta::specta]
pub async fn servers_list(state: State<'_, AppState>) -> Res<Vec<Server>> {
    Ok(state.fleet.servers.list().await?)
}

#[tauri::command]
#[specta::specta]
pub async fn servers_add(
    app: AppHandle,
    state: State<'_, AppState>,
    input: ServerInput,
) -> Res<Server> {
    let server = state.fleet.servers.add(input).await?;
    list_changed(&app, "added").await;
    Ok(server)
}

#[tauri::command]
#[specta::specta]
pub async fn servers_update(
    app: AppHandle,
    state: State<'_, AppState>,
    id: String,
    input: ServerInput,
) -> Res<Server> {
    let server = state.fleet.servers.update(&id, input).await?;
    list_changed(&app, "edited").await;
    Ok(server)
}

#[tauri::command]
#[specta::specta]
pub async fn servers_delete(
    app: AppHandle,
    state: State<'_, AppState>,
    id: String,
) -> Res<DeleteOutcome> {
    let outcome = state.fleet.servers.delete(&id).await?;
    list_changed(&app, "deleted").await;
    if outcome.was_active {
        let _ = ActiveServerChanged {
            server_id: None,
            name: None,
            message: outcome.message.clone(),
        }
        .emit(&app);
    }
    Ok(outcome)
}

#[tauri::command]
#[specta::specta]
pub async fn servers_activate(
    app: AppHandle,
    state: State<'_, AppState>,
    id: Option<String>,
) -> Res<()> {
    let server = state.fleet.servers.activate(id.as_deref()).await?;
    tray::refresh(&app).await;
    let _ = crate::events::ActiveServerChanged::from(tray::activation_message(server.as_ref()))
        .emit(&app);
    Ok(())
}

#[tauri::command]
#[specta::specta]
pub async fn servers_test(
    state: State<'_, AppState>,
    id: String,
    fresh: bool,
) -> Res<ServerStatus> {
    Ok(state.fleet.health.test(&id, fresh).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn servers_test_input(
    state: State<'_, AppState>,
    input: ServerInput,
    id: Option<String>,
) -> Res<ServerStatus> {
    Ok(state.fleet.health.test_input(&input, id.as_deref()).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn servers_test_all(state: State<'_, AppState>, fresh: bool) -> Res<Vec<ServerStatus>> {
    Ok(state.fleet.health.test_all(fresh).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn servers_statuses(state: State<'_, AppState>) -> Res<Vec<ServerStatus>> {
    Ok(state.fleet.health.statuses().await?)
}

#[tauri::command]
#[specta::specta]
pub async fn servers_export(state: State<'_, AppState>, path: String) -> Res<ExportReport> {
    Ok(state
        .fleet
        .servers
        .export_to(std::path::Path::new(&path))
        .await?)
}

#[tauri::command]
#[specta::specta]
pub async fn servers_import(
    app: AppHandle,
    state: State<'_, AppState>,
    path: String,
) -> Res<ImportReport> {
    let report = state
        .fleet
        .servers
        .import_from(std::path::Path::new(&path))
        .await?;
    list_changed(&app, "imported").await;
    Ok(report)
}

#[tauri::command]
#[specta::specta]
pub async fn settings_get(state: State<'_, AppState>) -> Res<Settings> {
    Ok(state.fleet.settings.get().await?)
}

#[tauri::command]
#[specta::specta]
pub async fn settings_set(state: State<'_, AppState>, settings: Settings) -> Res<Settings> {
    Ok(state.fleet.settings.set(settings).await?)
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct AppInfo {
    pub version: String,
    pub home: String,
}

#[tauri::command]
#[specta::specta]
pub async fn app_info(state: State<'_, AppState>) -> Res<AppInfo> {
    Ok(AppInfo {
        version: env!("CARGO_PKG_VERSION").into(),
        home: state.fleet.home.root().display().to_string(),
    })
}
