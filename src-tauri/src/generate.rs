//! Tauri commands for generating: templates, workflow inspection, the job queue, its live updates
//! (one Channel per subscriber), the gallery and the router settings. Each is a thin call into core.

use std::path::{Path, PathBuf};

use comfyfleet_core::dispatcher::JobUpdate;
use comfyfleet_core::jobs::{Job, JobState};
use comfyfleet_core::router::RouterConfig;
use comfyfleet_core::templates::{self, SubmitRequest, Template, WorkflowInfo};
use tauri::ipc::Channel;
use tauri::{AppHandle, State};

use crate::commands::UiError;
use crate::AppState;

type Res<T> = Result<T, UiError>;

#[tauri::command]
#[specta::specta]
pub async fn templates_list() -> Res<Vec<Template>> {
    Ok(templates::all())
}

#[tauri::command]
#[specta::specta]
pub async fn workflow_inspect(workflow_json: String) -> Res<WorkflowInfo> {
    Ok(templates::inspect(&workflow_json)?)
}

#[tauri::command]
#[specta::specta]
pub async fn jobs_submit(state: State<'_, AppState>, request: SubmitRequest) -> Res<Job> {
    let seed = uuid::Uuid::new_v4().as_u128() as u32;
    let job = request.to_new_job(seed)?;
    Ok(state.dispatcher.submit(job).await?)
}

/// Before Run: each server's estimated time and cost for this request, and where Auto would send it.
#[tauri::command]
#[specta::specta]
pub async fn jobs_estimate(
    state: State<'_, AppState>,
    request: SubmitRequest,
) -> Res<Vec<comfyfleet_core::dispatcher::Estimate>> {
    let job = request.to_new_job(0)?;
    Ok(state.dispatcher.estimates(&job.workflow).await)
}

#[tauri::command]
#[specta::specta]
pub async fn jobs_list(
    state: State<'_, AppState>,
    states: Vec<JobState>,
    limit: u32,
) -> Res<Vec<Job>> {
    Ok(state.fleet.jobs.list(&states, limit.min(10_000)).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn jobs_cancel(state: State<'_, AppState>, id: String) -> Res<Job> {
    Ok(state.dispatcher.cancel(&id).await?)
}

/// Deletes one of a job's saved images (its file and its entry); returns the job as it is now.
#[tauri::command]
#[specta::specta]
pub async fn gallery_delete(state: State<'_, AppState>, job_id: String, path: String) -> Res<Job> {
    Ok(state.dispatcher.delete_output(&job_id, &path).await?)
}

/// Runs a failed or cancelled job again as a new job; returns the new job.
#[tauri::command]
#[specta::specta]
pub async fn jobs_retry(state: State<'_, AppState>, id: String) -> Res<Job> {
    Ok(state.dispatcher.retry(&id).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn jobs_set_priority(state: State<'_, AppState>, id: String, priority: u8) -> Res<Job> {
    Ok(state.fleet.jobs.set_priority(&id, priority).await?)
}

/// Stream every job update to this channel until the window goes away.
#[tauri::command]
#[specta::specta]
pub async fn jobs_subscribe(state: State<'_, AppState>, on_update: Channel<JobUpdate>) -> Res<()> {
    let mut rx = state.dispatcher.subscribe();
    tauri::async_runtime::spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        let mut last_progress = std::collections::HashMap::<String, std::time::Instant>::new();
        loop {
            let update = match rx.recv().await {
                Ok(u) => u,
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => break,
            };
            // Progress is throttled per job (the first and the last always go through).
            if let JobUpdate::Progress { job_id, progress } = &update {
                let now = std::time::Instant::now();
                let recent = last_progress
                    .get(job_id)
                    .is_some_and(|t| now.duration_since(*t).as_millis() < 100);
                if recent && *progress < 1.0 {
                    continue;
                }
                last_progress.insert(job_id.clone(), now);
            }
            if on_update.send(update).is_err() {
                break;
            }
        }
    });
    Ok(())
}

/// A gallery file, checked to be inside the gallery folder.
fn gallery_file(gallery: &Path, path: &str) -> Res<PathBuf> {
    let root = gallery
        .canonicalize()
        .map_err(|_| UiError::new("gallery.empty", "The gallery is empty.".into()))?;
    let file = Path::new(path).canonicalize().map_err(|_| {
        UiError::new(
            "gallery.missing",
            format!("{path} no longer exists. It may have been moved or deleted."),
        )
    })?;
    if !file.starts_with(&root) {
        return Err(UiError::new(
            "gallery.outside",
            "Only files in the gallery or finished downloads can be opened here.".into(),
        ));
    }
    Ok(file)
}

/// An output image as a data: URL for the webview.
#[tauri::command]
#[specta::specta]
pub async fn gallery_image(state: State<'_, AppState>, path: String) -> Res<String> {
    use base64::Engine;
    let file = gallery_file(&state.fleet.home.gallery_dir(), &path)?;
    let meta = tokio::fs::metadata(&file).await.map_err(|e| {
        UiError::new(
            "gallery.read",
            format!("Could not read {}: {e}", file.display()),
        )
    })?;
    if meta.len() > 64 * 1024 * 1024 {
        return Err(UiError::new(
            "gallery.too_large",
            format!(
                "{} is too large to preview; open it instead.",
                file.display()
            ),
        ));
    }
    let bytes = tokio::fs::read(&file).await.map_err(|e| {
        UiError::new(
            "gallery.read",
            format!("Could not read {}: {e}", file.display()),
        )
    })?;
    // Previews are images; anything else is shown as the PNG ComfyUI saves by default.
    let mime = file
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(comfyfleet_core::gallery::media_type)
        .filter(|m| m.starts_with("image/"))
        .unwrap_or("image/png");
    Ok(format!(
        "data:{mime};base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

/// Open a gallery file or a finished download, or show it in its folder.
#[tauri::command]
#[specta::specta]
pub async fn open_path(
    app: AppHandle,
    state: State<'_, AppState>,
    path: String,
    reveal: bool,
) -> Res<()> {
    use tauri_plugin_opener::OpenerExt;
    let file = match state.downloads.finished_file(&path).await {
        Some(file) => file,
        None => gallery_file(&state.fleet.home.gallery_dir(), &path)?,
    };
    let result = if reveal {
        app.opener().reveal_item_in_dir(&file)
    } else {
        app.opener()
            .open_path(file.display().to_string(), None::<&str>)
    };
    result.map_err(|e| {
        UiError::new(
            "gallery.open",
            format!("Could not open {}: {e}", file.display()),
        )
    })
}

#[tauri::command]
#[specta::specta]
pub async fn router_get(state: State<'_, AppState>) -> Res<RouterConfig> {
    Ok(state.fleet.settings.router().await?)
}

#[tauri::command]
#[specta::specta]
pub async fn router_set(state: State<'_, AppState>, config: RouterConfig) -> Res<RouterConfig> {
    let saved = state.fleet.settings.set_router(config).await?;
    state.dispatcher.set_config(saved);
    Ok(saved)
}
