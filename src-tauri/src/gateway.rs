//! Tauri commands for the gateway: whether the app serves the fleet as one ComfyUI, and where.

use comfyfleet_core::gateway::{GatewaySettings, GatewayStatus};
use tauri::State;

use crate::commands::UiError;
use crate::AppState;

#[tauri::command]
#[specta::specta]
pub async fn gateway_status(state: State<'_, AppState>) -> Result<GatewayStatus, UiError> {
    Ok(state.gateway.status().await)
}

/// Saves the settings and starts or stops serving to match; an address that cannot be served changes nothing.
#[tauri::command]
#[specta::specta]
pub async fn gateway_set(
    state: State<'_, AppState>,
    settings: GatewaySettings,
) -> Result<GatewayStatus, UiError> {
    Ok(state.gateway.set(settings).await?)
}
