//! comfyfleet-core: every ComfyFleet capability, shared by the desktop shell and the CLI. No Tauri here.

pub mod backend;
pub mod comfyui;
pub mod costs;
pub mod dispatcher;
pub mod downloads;
pub mod downloads_list;
pub mod error_info;
pub mod fleet;
pub mod gallery;
pub mod gateway;
pub mod gpu;
pub mod health;
pub mod home;
pub mod installer;
pub mod jobs;
pub mod local;
pub mod logging;
pub mod router;
pub mod runpod;
pub mod secrets;
pub mod servers;
pub mod settings;
pub mod store;
pub mod system;
pub mod templates;
pub mod tokens;
pub mod workflow;

pub use error_info::{ErrorInfo, HasErrorInfo};
pub use fleet::Fleet;

/// Milliseconds since the Unix epoch: the one place core reads the wall clock for timestamps.
/// Decisions take `now` as a parameter; effects call this.
pub fn now_ms() -> i64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
