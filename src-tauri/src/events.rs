//! Events the shell broadcasts to the UI: state changes only (progress goes through Channels).

use comfyfleet_core::health::{ActiveChange, ServerStatus, Status, StatusChange};
use serde::Serialize;
use specta::Type;
use tauri_specta::Event;

/// A server's live status changed (including going offline or coming back).
#[derive(Debug, Clone, Serialize, Type, Event)]
pub struct ServerStatusChanged {
    pub server_id: String,
    pub name: String,
    pub previous: Status,
    pub current: ServerStatus,
    pub availability_changed: bool,
}

impl From<StatusChange> for ServerStatusChanged {
    fn from(c: StatusChange) -> Self {
        Self {
            server_id: c.server_id,
            name: c.name,
            previous: c.previous,
            current: c.current,
            availability_changed: c.availability_changed,
        }
    }
}

/// The active server changed (tray, auto-switch) — `message` says what happened.
#[derive(Debug, Clone, Serialize, Type, Event)]
pub struct ActiveServerChanged {
    pub server_id: Option<String>,
    pub name: Option<String>,
    pub message: String,
}

impl From<ActiveChange> for ActiveServerChanged {
    fn from(c: ActiveChange) -> Self {
        Self {
            server_id: c.server_id,
            name: c.name,
            message: c.message,
        }
    }
}

/// The server list changed outside the window (tray, CLI import).
#[derive(Debug, Clone, Serialize, Type, Event)]
pub struct ServersChanged {
    pub reason: String,
}

/// Reconciling or the idle rule changed one of the app's pods (e.g. stopped it after 5 idle minutes).
#[derive(Debug, Clone, Serialize, Type, Event)]
pub struct PodsChanged {
    pub pod_id: String,
    pub name: String,
    pub message: String,
}

impl From<comfyfleet_core::runpod::fleet::PodChange> for PodsChanged {
    fn from(c: comfyfleet_core::runpod::fleet::PodChange) -> Self {
        Self {
            pod_id: c.pod_id,
            name: c.name,
            message: c.message,
        }
    }
}
