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

impl UiError {
    /// An error of the shell's own (not from core): its code and a message that says what to do.
    pub fn new(code: &str, message: String) -> Self {
        tracing::warn!(code, "command failed: {message}");
        UiError {
            code: code.into(),
            message,
            details: None,
        }
    }
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

/// A folder of the app's own that the UI may open in the file manager (nothing else can be named).
#[derive(Debug, Clone, Copy, serde::Deserialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum AppFolder {
    /// The data folder (database, settings, everything below).
    Home,
    /// The app's daily log files.
    Logs,
}

/// Opens one of the app's folders in the file manager (created first when it does not exist yet).
#[tauri::command]
#[specta::specta]
pub async fn open_app_folder(
    app: AppHandle,
    state: State<'_, AppState>,
    folder: AppFolder,
) -> Res<String> {
    use tauri_plugin_opener::OpenerExt;
    let dir = match folder {
        AppFolder::Home => state.fleet.home.root().to_path_buf(),
        AppFolder::Logs => state.fleet.home.logs_dir(),
    };
    let shown = dir.display().to_string();
    let failed =
        |e: String| UiError::new("app.open_folder", format!("Could not open {shown}: {e}"));
    std::fs::create_dir_all(&dir).map_err(|e| failed(e.to_string()))?;
    app.opener()
        .open_path(shown.clone(), None::<&str>)
        .map_err(|e| failed(e.to_string()))?;
    Ok(shown)
}
