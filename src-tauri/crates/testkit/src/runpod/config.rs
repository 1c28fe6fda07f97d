//! What a test can set on a fake RunPod: keys, serverless endpoints and their simulated workers, the output flavour of
//! the worker-comfyui image, pod start-up delays, pods that exist before the test, and faults.

use std::time::Duration;

use crate::FakeComfyConfig;

/// The key `FakeRunpodConfig::default()` accepts.
pub const DEFAULT_API_KEY: &str = "rpa_FAKEKEY0000000000000000000000000000000000000000";

/// Everything a fake RunPod answers from. Change it live with [`crate::FakeRunpod::set_config`].
#[derive(Clone, Debug)]
pub struct FakeRunpodConfig {
    /// The key that works: `Authorization: Bearer <api_key>`. Anything else (or nothing) answers 401.
    pub api_key: String,
    /// A key that RunPod knows but that may not do this (a read-only or restricted key): 403.
    pub forbidden_key: Option<String>,
    /// Serverless endpoints, each running the worker-comfyui image. An id of `pods` or `catalog` is refused by
    /// `FakeRunpod::start` (those paths belong to the pods API on the same server).
    pub endpoints: Vec<EndpointConfig>,
    /// How long a new pod stays PROVISIONING (image pull, GPU assignment).
    pub pod_provisioning: Duration,
    /// How long a pod stays STARTING after provisioning, a `start` or a `restart` (container boot, ComfyUI start).
    pub pod_starting: Duration,
    /// How long a terminated pod is still listed (as TERMINATED) and found by `GET /v2/pods/{id}`; then 404.
    pub terminated_visible: Duration,
    /// Pods that exist before the test, "not created by the app": listed like any other.
    pub seeded_pods: Vec<SeededPod>,
    /// What a pod's proxied port 8188 reaches once RUNNING.
    pub pod_comfy: PodComfy,
    /// The proxy answers 524 when the pod's ComfyUI takes longer than this (Cloudflare's limit is 100 s).
    pub proxy_timeout: Duration,
    /// Field names of a pod's `runtime`: REST v2's (`uptime`, `private`, `public`) or the legacy GraphQL ones
    /// (`uptimeInSeconds`, `privatePort`, `publicPort`). Clients must accept both.
    pub runtime_names: RuntimeNames,
}

impl Default for FakeRunpodConfig {
    /// Key [`DEFAULT_API_KEY`], one endpoint `ep-comfy` (see [`EndpointConfig::new`]), pods provisioning 50 ms and
    /// starting 100 ms, terminated pods listed for 200 ms, no seeded pods, a default fake ComfyUI behind each pod.
    fn default() -> Self {
        FakeRunpodConfig {
            api_key: DEFAULT_API_KEY.to_string(),
            forbidden_key: None,
            endpoints: vec![EndpointConfig::new("ep-comfy")],
            pod_provisioning: Duration::from_millis(50),
            pod_starting: Duration::from_millis(100),
            terminated_visible: Duration::from_millis(200),
            seeded_pods: Vec::new(),
            pod_comfy: PodComfy::Start(Box::default()),
            proxy_timeout: Duration::from_secs(100),
            runtime_names: RuntimeNames::V2,
        }
    }
}

/// One serverless endpoint and its simulated worker pool.
#[derive(Clone, Debug, PartialEq)]
pub struct EndpointConfig {
    pub id: String,
    /// Max workers: at most this many jobs run at once, the others wait IN_QUEUE.
    pub workers: u32,
    /// A cold worker takes this long to start before it takes a job (the job waits IN_QUEUE meanwhile).
    pub cold_start: Duration,
    /// How long one job runs on a warm worker.
    pub exec_time: Duration,
    /// A worker with nothing to do goes cold after this long (RunPod's default is 5 s).
    pub idle_timeout: Duration,
    /// The endpoint's execution timeout, used when a request has no `policy.executionTimeout` (RunPod: 600 s).
    pub execution_timeout: Duration,
    /// How long a finished `/run` job can be read (RunPod: 30 min); then `/status` answers 404.
    pub run_result_ttl: Duration,
    /// How long a finished `/runsync` job can be read (RunPod: 1 min).
    pub runsync_result_ttl: Duration,
    /// How `/runsync` waits without `?wait=` (RunPod: 90 s).
    pub runsync_wait: Duration,
    pub output: OutputFlavour,
}

impl EndpointConfig {
    /// An endpoint with 2 workers, cold start 300 ms, 200 ms per job, idle timeout 5 s, worker-comfyui 5.x base64
    /// output; RunPod's own defaults for timeouts and result lifetimes.
    pub fn new(id: &str) -> Self {
        EndpointConfig {
            id: id.to_string(),
            workers: 2,
            cold_start: Duration::from_millis(300),
            exec_time: Duration::from_millis(200),
            idle_timeout: Duration::from_secs(5),
            execution_timeout: Duration::from_secs(600),
            run_result_ttl: Duration::from_secs(30 * 60),
            runsync_result_ttl: Duration::from_secs(60),
            runsync_wait: Duration::from_secs(90),
            output: OutputFlavour::Base64,
        }
    }
}

/// What the worker-comfyui image returns for a successful job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutputFlavour {
    /// worker-comfyui >= 5.0.0 without a bucket: `{"images":[{"filename","type":"base64","data"}]}`.
    Base64,
    /// worker-comfyui >= 5.0.0 with a bucket: `type: "s3_url"`, `data` a URL on this fake (`/s3/...`, no auth, as a
    /// presigned URL) serving the PNG.
    S3Url,
    /// worker-comfyui < 5.0.0: `{"status":"success","message":"<base64 of the first image>"}`.
    Legacy,
}

/// What is behind a pod's port 8188.
#[derive(Clone, Debug)]
pub enum PodComfy {
    /// Each pod gets its own fake ComfyUI, started with the pod, killed when it stops, restarted when it starts.
    Start(Box<FakeComfyConfig>),
    /// Every pod forwards to this server (`http://127.0.0.1:PORT`), e.g. a `FakeComfy` the test holds.
    At(String),
}

/// See [`FakeRunpodConfig::runtime_names`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RuntimeNames {
    #[default]
    V2,
    Legacy,
}

/// A pod that exists before the test starts (made by hand or another tool).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeededPod {
    pub id: String,
    pub name: String,
    pub image_name: String,
    pub gpu_type_id: String,
    /// RUNNING or EXITED.
    pub running: bool,
}

impl SeededPod {
    /// A running pod on an RTX 4090 that the app did not create.
    pub fn foreign(id: &str, name: &str) -> Self {
        SeededPod {
            id: id.to_string(),
            name: name.to_string(),
            image_name: "runpod/pytorch:2.4.0-py3.11-cuda12.4.1-devel-ubuntu22.04".to_string(),
            gpu_type_id: "NVIDIA GeForce RTX 4090".to_string(),
            running: true,
        }
    }
}

/// Which requests a fault applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Every request under `/v2/{endpoint_id}/`.
    Endpoint(String),
    /// Every request under `/v2/pods` and `/v2/catalog`.
    Pods,
    /// Every request.
    Any,
}

impl Target {
    pub fn endpoint(id: &str) -> Self {
        Target::Endpoint(id.to_string())
    }

    pub(crate) fn matches(&self, path: &str) -> bool {
        match self {
            Target::Any => true,
            Target::Pods => path.starts_with("/v2/pods") || path.starts_with("/v2/catalog"),
            Target::Endpoint(id) => path
                .strip_prefix("/v2/")
                .and_then(|rest| rest.strip_prefix(id.as_str()))
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/')),
        }
    }
}

/// A fault for the next `times` requests or jobs it applies to. Faults are used up in the order they were set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 429 `{"error":"rate limit exceeded"}` with `Retry-After: 1`.
    RateLimited { target: Target, times: u32 },
    /// 500 `{"error":"internal server error"}`.
    ServerError { target: Target, times: u32 },
    /// The request is read (and recorded) but never answered, until the client gives up or the fake shuts down.
    Hang { target: Target, times: u32 },
    /// The connection is closed without an answer.
    Drop { target: Target, times: u32 },
    /// The next jobs of the endpoint fail as an uncaught exception in the handler does: `error` is a JSON string
    /// with `error_type`, `error_message`, `error_traceback`.
    JobRuntimeError { endpoint: String, times: u32 },
    /// The next jobs of the endpoint never finish on their own and end TIMED_OUT after their execution timeout.
    JobHangs { endpoint: String, times: u32 },
}

impl Fault {
    pub(crate) fn times_mut(&mut self) -> &mut u32 {
        match self {
            Fault::RateLimited { times, .. }
            | Fault::ServerError { times, .. }
            | Fault::Hang { times, .. }
            | Fault::Drop { times, .. }
            | Fault::JobRuntimeError { times, .. }
            | Fault::JobHangs { times, .. } => times,
        }
    }
}

/// Money in the catalog, in micro-dollars (1 USD = 1,000,000).
pub type MicroUsd = u64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_targets_match_their_paths_only() {
        let ep = Target::endpoint("abc");
        assert!(ep.matches("/v2/abc/run"));
        assert!(ep.matches("/v2/abc"));
        assert!(!ep.matches("/v2/abcd/run"));
        assert!(!ep.matches("/v2/pods"));
        assert!(Target::Pods.matches("/v2/pods/x/action"));
        assert!(Target::Pods.matches("/v2/catalog/gpus"));
        assert!(!Target::Pods.matches("/v2/abc/run"));
        assert!(Target::Any.matches("/anything"));
    }
}
