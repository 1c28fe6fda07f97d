//! A fake ComfyUI 0.3.64 on loopback that answers as the recorded real one does (see `fixtures/README.md`).
//!
//! Prompts are queued but not executed yet: the state keeps the queue, history and WebSocket clients in one place so
//! that execution (progress messages, outputs, history entries) can be added as one more state method.

mod bodies;
mod config;
mod fixtures;
mod gate;
mod queue;
mod routes;
mod server;
mod state;

pub use config::{
    FakeAuth, FakeComfyConfig, FakeDevice, Fault, RECORDED_MODEL_FOLDERS, RECORDED_PYTHON_VERSION,
    RECORDED_PYTORCH_VERSION, RECORDED_RAM_FREE, RECORDED_RAM_TOTAL,
};
pub use server::FakeComfy;
pub use state::{RecordedRequest, MAX_RECORDED_REQUESTS};
