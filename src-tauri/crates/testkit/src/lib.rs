//! Test servers that speak real protocols on loopback, for the other crates' tests and for end-to-end scripts.
//! Today: [`FakeComfy`], a fake ComfyUI 0.3.64 built from recordings of a real one.

pub mod comfy;
mod pyjson;

pub use comfy::{FakeAuth, FakeComfy, FakeComfyConfig, FakeDevice, Fault, RecordedRequest};
