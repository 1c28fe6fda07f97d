//! Tauri commands for the cost monitor: a month's report (spent, saved, projection, per day, backend and server),
//! the spending caps with how much of each is used, the prices the user sets, and CSV export.

use comfyfleet_core::costs::caps::{CapStatus, Caps};
use comfyfleet_core::costs::prices::ServerlessClass;
use comfyfleet_core::costs::report::Report;
use comfyfleet_core::costs::JobCost;
use comfyfleet_core::costs::PriceSettings;
use serde::Serialize;
use tauri::State;

use crate::commands::UiError;
use crate::AppState;

type Res<T> = Result<T, UiError>;

/// A month's report and which month it is (`YYYY-MM`).
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct MonthReport {
    pub month: String,
    pub report: Report,
}

/// The report of `month` (`YYYY-MM`; this month when null).
#[tauri::command]
#[specta::specta]
pub async fn costs_report(state: State<'_, AppState>, month: Option<String>) -> Res<MonthReport> {
    let (month, report) = state
        .fleet
        .costs()
        .report_of(month.as_deref(), comfyfleet_core::now_ms())
        .await?;
    Ok(MonthReport { month, report })
}

/// The caps and how much of each today's and this month's spend and reservations use.
#[tauri::command]
#[specta::specta]
pub async fn costs_caps(state: State<'_, AppState>) -> Res<CapStatus> {
    Ok(state
        .fleet
        .costs()
        .cap_status(comfyfleet_core::now_ms())
        .await?)
}

#[tauri::command]
#[specta::specta]
pub async fn costs_set_caps(state: State<'_, AppState>, caps: Caps) -> Res<CapStatus> {
    let costs = state.fleet.costs();
    costs.set_caps(caps).await?;
    Ok(costs.cap_status(comfyfleet_core::now_ms()).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn costs_prices(state: State<'_, AppState>) -> Res<PriceSettings> {
    Ok(state.fleet.costs().prices().await?)
}

#[tauri::command]
#[specta::specta]
pub async fn costs_set_prices(
    state: State<'_, AppState>,
    prices: PriceSettings,
) -> Res<PriceSettings> {
    Ok(state.fleet.costs().set_prices(prices).await?)
}

/// RunPod's serverless GPU classes at today's prices (refreshed from its catalogue, else shipped): the choices for
/// the reference GPU local jobs are compared with.
#[tauri::command]
#[specta::specta]
pub async fn costs_gpu_classes(state: State<'_, AppState>) -> Res<Vec<ServerlessClass>> {
    Ok(state.fleet.costs().gpu_classes().await?)
}

/// Write `month`'s ledger as CSV to `path` (chosen in a save dialog); answers the path.
#[tauri::command]
#[specta::specta]
pub async fn costs_export_csv(
    state: State<'_, AppState>,
    month: Option<String>,
    path: String,
) -> Res<String> {
    let costs = state.fleet.costs();
    let now = comfyfleet_core::now_ms();
    let (_, report) = costs.report_of(month.as_deref(), now).await?;
    let text = costs.csv_of(&report, now).await?;
    tokio::fs::write(&path, text).await.map_err(|e| {
        UiError::new(
            "costs.export_failed",
            format!("Could not write {path}: {e}. Choose a folder you can write to."),
        )
    })?;
    Ok(path)
}

/// What each of these jobs cost and saved (jobs not in the ledger are left out).
#[tauri::command]
#[specta::specta]
pub async fn costs_of_jobs(state: State<'_, AppState>, job_ids: Vec<String>) -> Res<Vec<JobCost>> {
    let ids: Vec<String> = job_ids.into_iter().take(1_000).collect();
    Ok(state.fleet.costs().ledger().job_costs(ids).await?)
}
