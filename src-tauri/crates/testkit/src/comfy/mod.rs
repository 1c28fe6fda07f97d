//! A fake ComfyUI 0.3.64 on loopback that answers as the recorded real one does (see `fixtures/README.md`).
//!
//! Prompts are validated, queued and run by one worker, one at a time in queue order, with the recorded WebSocket
//! messages, real PNG outputs served by `/view`, uploads, the node cache, interrupts and history.

mod bodies;
mod config;
mod execution;
mod files;
mod fixtures;
mod gate;
mod multipart;
pub(crate) mod png;
mod queue;
mod routes;
pub use routes::INDEX_TITLE;
mod server;
mod state;
mod validation;
mod worker;

pub use config::{
    FakeAuth, FakeComfyConfig, FakeDevice, Fault, RECORDED_EXEC_TIME, RECORDED_MODEL_FOLDERS,
    RECORDED_PYTHON_VERSION, RECORDED_PYTORCH_VERSION, RECORDED_RAM_FREE, RECORDED_RAM_TOTAL,
};
pub use server::FakeComfy;
pub use state::{RecordedRequest, MAX_RECORDED_REQUESTS};
