//! What the UI and the CLI see of an install and of the local server: the request, the system check,
//! each step's state with progress, and the supervisor's state. Plain data; the work is in `run` and
//! `crate::local`.

use serde::{Deserialize, Serialize};

use super::plan::Plan;
use crate::error_info::ErrorInfo;
use crate::system::{DiskSpace, SystemFacts};

/// What to install, where. Shared by the wizard, `comfyfleet install` and the benchmarks.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct InstallRequest {
    /// The folder ComfyUI goes into (created when missing).
    pub install_path: String,
    /// `None`/"auto": decided from the GPU; "cuda", "cuda128", "rocm", "xpu", "cpu", "mps".
    pub variant: Option<String>,
    /// Model pack ids from the manifest ("sd15", "sdxl", …).
    pub packs: Vec<String>,
    /// An existing models folder to reuse through `extra_model_paths.yaml` (never copied).
    pub models_dir: Option<String>,
    /// A manifest file or http(s) URL; `None`: the manifest shipped with the app.
    pub manifest: Option<String>,
    /// The port the local server listens on (default 8188).
    pub port: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum CheckLevel {
    Pass,
    Warn,
    Fail,
}

/// One line of the system panel ("GPU", "Disk space", "Python", …).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Check {
    /// Stable: "gpu", "disk", "ram", "python", "folder", "port".
    pub id: String,
    pub label: String,
    pub level: CheckLevel,
    pub detail: String,
}

/// A model pack as the wizard offers it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct PackInfo {
    pub id: String,
    pub name: String,
    pub description: String,
    /// Bytes to download.
    pub size: u64,
    pub min_vram_gb: Option<f32>,
    /// Needs a Hugging Face token and the licence accepted.
    pub gated: bool,
}

/// The wizard's first screen: the machine, the checks, what can be installed, and the plan for the
/// current choices (or why there is none).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct InstallCheck {
    pub facts: SystemFacts,
    /// Free space where ComfyUI would go.
    pub disk: Option<DiskSpace>,
    pub checks: Vec<Check>,
    /// The ComfyUI version the manifest installs.
    pub comfyui_version: String,
    pub packs: Vec<PackInfo>,
    pub plan: Option<Plan>,
    pub plan_error: Option<ErrorInfo>,
    /// Steps already done in this folder by an earlier run (they will be skipped).
    pub done_steps: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Pending,
    Running,
    /// Done in this run.
    Done,
    /// Done by an earlier run with the same inputs.
    Skipped,
    Failed,
}

/// One step of a running install, with its progress.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct StepStatus {
    pub id: String,
    pub title: String,
    pub state: StepState,
    /// What it is doing now ("Installing torch…", "Waiting for ComfyUI to answer…") or what happened.
    pub detail: Option<String>,
    pub done_bytes: u64,
    pub total_bytes: Option<u64>,
    pub bytes_per_sec: u64,
    pub eta_secs: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum InstallState {
    /// Nothing started in this session.
    Idle,
    Running,
    /// Stopped by the user; downloads keep their parts, finished steps stay done.
    Paused,
    Cancelled,
    Failed,
    Done,
}

/// Where an install is. Sent whole on every change (it is small).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct InstallStatus {
    pub state: InstallState,
    pub install_path: String,
    pub steps: Vec<StepStatus>,
    /// Why it failed, with what to do.
    pub error: Option<ErrorInfo>,
    /// The install log (every command's output).
    pub log_path: String,
    /// The "Local" server, once registered.
    pub server_id: Option<String>,
    /// The local server's address, once started.
    pub url: Option<String>,
    pub elapsed_ms: u64,
}

impl InstallStatus {
    pub fn idle() -> InstallStatus {
        InstallStatus {
            state: InstallState::Idle,
            install_path: String::new(),
            steps: Vec::new(),
            error: None,
            log_path: String::new(),
            server_id: None,
            url: None,
            elapsed_ms: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum LocalState {
    /// No local install is known.
    NotInstalled,
    Stopped,
    Starting,
    Running,
    /// Exited on its own; restarting after a back-off (or given up: see `last_error`).
    Crashed,
}

/// The local ComfyUI the supervisor runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct LocalStatus {
    pub state: LocalState,
    pub install_path: Option<String>,
    pub url: Option<String>,
    pub port: u16,
    pub pid: Option<u32>,
    /// Keep ComfyUI running when the app quits.
    pub keep_running: bool,
    /// Restarts after crashes since it was last started by hand.
    pub restarts: u32,
    pub last_error: Option<ErrorInfo>,
    pub log_path: Option<String>,
}

/// The end of the local server's log.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct LogTail {
    pub path: String,
    pub text: String,
    /// Whether older lines were left out.
    pub truncated: bool,
}
