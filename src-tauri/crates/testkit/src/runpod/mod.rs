//! A fake RunPod on loopback for the RunPod backend's tests: the serverless API of endpoints running the
//! worker-comfyui image (`/run`, `/runsync`, `/status`, `/stream`, `/cancel`, `/retry`, `/purge-queue`, `/health`)
//! with simulated workers (cold starts, max workers, idle timeout), the pods REST v2 API (`/v2/pods`, actions,
//! `/v2/catalog/gpus`) with a start-up lifecycle, the pods' HTTP proxy in front of fake ComfyUIs, API keys and
//! faults. Facts from `shared/reference/external-apis.md` sections A, B and C.
//!
//! Both real hosts (`https://api.runpod.ai/v2` for serverless, `https://api.runpod.io/v2` for pods) map to
//! [`FakeRunpod::url`]` + "/v2"`; endpoint ids `pods` and `catalog` are refused so the paths never collide.
//! Time is real: delays are short durations from the config, and the state is computed from them on each request.

mod catalog;
mod config;
mod handler;
mod pods;
mod proxy;
mod routes;
mod server;
mod serverless;

pub use catalog::{catalog_gpu, CatalogGpu, GPU_CATALOG};
pub use config::{
    EndpointConfig, FakeRunpodConfig, Fault, MicroUsd, OutputFlavour, PodComfy, RuntimeNames,
    SeededPod, Target, DEFAULT_API_KEY,
};
pub use handler::KNOWN_NODE_CLASSES;
pub use pods::{PodStatus, RunpodPod};
pub use routes::{RUNSYNC_MAX_BODY, RUN_MAX_BODY};
pub use server::{AuthCheck, FakeRunpod, RunpodRequest, MAX_RUNPOD_RECORDS, RESERVED_ENDPOINT_IDS};
pub use serverless::{Health, JobStatus, RunpodJob};
