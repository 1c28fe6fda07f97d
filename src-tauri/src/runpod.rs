//! Tauri commands for RunPod: the account key (set straight into the keychain, tested with one cheap call, never sent
//! back to the webview) and the pods the app creates (list, create and start with progress, stop, terminate, the
//! idle auto-shutdown settings). Pods the app did not create are never listed or touched.

use comfyfleet_core::runpod::account::{KeyStatus, KeyTest, RunpodAccount};
use comfyfleet_core::runpod::fleet::{FleetPod, IdleConfig, PodFleet, PodProgress, PodRecord};
use comfyfleet_core::runpod::pods::{GpuType, PodPreset};
use comfyfleet_core::secrets::Secret;
use tauri::ipc::Channel;
use tauri::State;

use crate::commands::UiError;
use crate::AppState;

type Res<T> = Result<T, UiError>;

fn account(state: &AppState) -> RunpodAccount {
    state.fleet.runpod_account()
}

async fn pods(state: &AppState) -> Res<PodFleet> {
    Ok(PodFleet::connect(&state.fleet, state.fleet.servers.runpod_urls()).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn runpod_key_status(state: State<'_, AppState>) -> Res<KeyStatus> {
    Ok(account(&state).status().await?)
}

/// Stores the RunPod API key in the OS keychain.
#[tauri::command]
#[specta::specta]
pub async fn runpod_key_set(state: State<'_, AppState>, key: Secret) -> Res<KeyStatus> {
    Ok(account(&state).set(&key).await?)
}

/// One cheap authenticated call to RunPod; a refusal is a result with what to do, not an error.
#[tauri::command]
#[specta::specta]
pub async fn runpod_key_test(state: State<'_, AppState>) -> Res<KeyTest> {
    Ok(account(&state).test().await?)
}

#[tauri::command]
#[specta::specta]
pub async fn runpod_key_remove(state: State<'_, AppState>) -> Res<KeyStatus> {
    Ok(account(&state).remove().await?)
}

/// The pods the app created, with RunPod's live state (empty, not an error, without a key).
#[tauri::command]
#[specta::specta]
pub async fn pods_list(state: State<'_, AppState>) -> Res<Vec<FleetPod>> {
    if !account(&state).status().await?.set {
        return Ok(vec![]);
    }
    Ok(pods(&state).await?.list().await?)
}

/// The GPU types pods can be created on, with RunPod's prices (from `/v2/catalog/gpus`).
#[tauri::command]
#[specta::specta]
pub async fn pods_gpus(state: State<'_, AppState>) -> Res<Vec<GpuType>> {
    Ok(pods(&state).await?.gpu_types().await?)
}

/// What a new pod starts from (the user edits it before creating).
#[tauri::command]
#[specta::specta]
pub fn pods_default_preset() -> PodPreset {
    PodPreset::default()
}

/// Create a pod and wait until its ComfyUI answers; it joins the server list tagged `cloud`.
#[tauri::command]
#[specta::specta]
pub async fn pods_create(
    state: State<'_, AppState>,
    preset: PodPreset,
    on_progress: Channel<PodProgress>,
) -> Res<FleetPod> {
    let fleet = pods(&state).await?;
    Ok(fleet
        .create(&preset, move |p| {
            let _ = on_progress.send(p);
        })
        .await?)
}

#[tauri::command]
#[specta::specta]
pub async fn pods_start(
    state: State<'_, AppState>,
    pod_id: String,
    on_progress: Channel<PodProgress>,
) -> Res<FleetPod> {
    let fleet = pods(&state).await?;
    Ok(fleet
        .start(&pod_id, move |p| {
            let _ = on_progress.send(p);
        })
        .await?)
}

#[tauri::command]
#[specta::specta]
pub async fn pods_stop(state: State<'_, AppState>, pod_id: String) -> Res<FleetPod> {
    Ok(pods(&state).await?.stop(&pod_id).await?)
}

/// Terminate a pod for good (its disk is deleted); its server entry is removed.
#[tauri::command]
#[specta::specta]
pub async fn pods_terminate(state: State<'_, AppState>, pod_id: String) -> Res<PodRecord> {
    Ok(pods(&state).await?.terminate(&pod_id).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn pods_idle_get(state: State<'_, AppState>) -> Res<IdleConfig> {
    Ok(comfyfleet_core::runpod::fleet::load_idle_config(&state.fleet.settings).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn pods_idle_set(state: State<'_, AppState>, config: IdleConfig) -> Res<IdleConfig> {
    Ok(comfyfleet_core::runpod::fleet::save_idle_config(&state.fleet.settings, config).await?)
}
