//! Test servers that speak real protocols on loopback, for the other crates' tests and for end-to-end scripts:
//! [`FakeComfy`], a fake ComfyUI 0.3.64 built from recordings of a real one, and [`FileHost`], a file host that
//! answers as model hosts and CDNs do (ranges, validators, throttling, faults, redirects, gated files), and
//! [`InstallHost`], everything the installer downloads (manifest, a runnable fake ComfyUI archive, a package index with
//! a fake torch wheel, a model), and [`FakeRunpod`], RunPod's serverless API (worker-comfyui endpoints) and pods
//! REST v2 API with the pods' proxy.

pub mod comfy;
pub mod filehost;
pub mod installhost;
pub mod ports;
mod pyjson;
pub mod runpod;

pub use comfy::{FakeAuth, FakeComfy, FakeComfyConfig, FakeDevice, Fault, RecordedRequest};
pub use filehost::{FileHost, HostConfig, HostRequest, HostedFile};
pub use installhost::{InstallHost, InstallHostConfig};
pub use ports::stable_port;
pub use runpod::{
    EndpointConfig, FakeRunpod, FakeRunpodConfig, OutputFlavour, RunpodJob, RunpodPod,
    RunpodRequest,
};
