//! What a test can set on a fake ComfyUI: versions, devices, queue depth, latency, faults, authentication, models.

use std::collections::BTreeMap;
use std::time::Duration;

/// RAM of the recording machine, as its `/system_stats` reported it.
pub const RECORDED_RAM_TOTAL: u64 = 25_325_273_088;
/// Free RAM in the recorded `/system_stats`.
pub const RECORDED_RAM_FREE: u64 = 23_772_950_528;
/// `python_version` in the recorded `/system_stats`.
pub const RECORDED_PYTHON_VERSION: &str = "3.11.7 (main, May  9 2026, 07:35:25) [GCC 12.2.0]";
/// `pytorch_version` in the recorded `/system_stats`.
pub const RECORDED_PYTORCH_VERSION: &str = "2.8.0+cu128";
/// The recorded median time from `POST /prompt` to `execution_success` for EmptyImage -> SaveImage.
pub const RECORDED_EXEC_TIME: Duration = Duration::from_millis(20);
/// The model folders of the recorded `GET /models`, in its order.
pub const RECORDED_MODEL_FOLDERS: [&str; 20] = [
    "checkpoints",
    "configs",
    "loras",
    "vae",
    "text_encoders",
    "diffusion_models",
    "clip_vision",
    "style_models",
    "embeddings",
    "diffusers",
    "vae_approx",
    "controlnet",
    "gligen",
    "upscale_models",
    "custom_nodes",
    "hypernetworks",
    "photomaker",
    "classifiers",
    "model_patches",
    "audio_encoders",
];

/// Everything a fake ComfyUI answers from. Change it live with `FakeComfy::set_config`.
#[derive(Clone, Debug, PartialEq)]
pub struct FakeComfyConfig {
    /// `comfyui_version` in `/system_stats`.
    pub version: String,
    pub python_version: String,
    pub pytorch_version: String,
    /// `devices` in `/system_stats`. ComfyUI reports the one torch device it uses.
    pub devices: Vec<FakeDevice>,
    /// Jobs of other clients shown as running in `/queue`. They never end on their own: while one is there, the
    /// worker runs nothing, so prompts posted to the fake stay pending until a test sets this back to 0.
    pub queue_running: u32,
    /// Jobs of other clients shown as pending in `/queue`. They are never run and never delay the fake's own
    /// prompts. `POST /queue {"clear":true}` and deletes lower it.
    pub queue_pending: u32,
    /// Waited before every answer (and before the WebSocket handshake is answered).
    pub latency: Duration,
    pub fault: Fault,
    pub auth: Option<FakeAuth>,
    /// Model folder -> file names, for `/models`, `/models/{folder}`, `/embeddings` and the checkpoint list in
    /// `/object_info`. A folder missing from the map answers 404, as an unknown folder does.
    pub models: BTreeMap<String, Vec<String>>,
    /// `ram_total` in `/system_stats`.
    pub ram_total: u64,
    /// `ram_free` in `/system_stats`.
    pub ram_free: u64,
    /// How long one prompt runs, spread evenly over the nodes it executes (cached nodes take no time). A prompt
    /// whose `extra_data` has `"fake_exec_ms": N` takes N ms instead. Default 20 ms, the recorded median.
    pub exec_time: Duration,
    /// Nodes of this class fail when they run (`execution_error`), as `ImageToMask` with `channel: "alpha"` does.
    pub runtime_error_class: Option<String>,
    /// Output nodes report this filename (in `executed` and `/history`) instead of the real one, e.g. `../../x.png`
    /// or `/etc/x.png`, to test a client's path sanitising. The file itself is stored under its real name.
    pub evil_output_name: Option<String>,
}

impl Default for FakeComfyConfig {
    /// The recorded ComfyUI 0.3.64: CPU only, empty queue, every recorded model folder empty, no auth, no fault,
    /// prompts taking the recorded 20 ms.
    fn default() -> Self {
        FakeComfyConfig {
            version: "0.3.64".to_string(),
            python_version: RECORDED_PYTHON_VERSION.to_string(),
            pytorch_version: RECORDED_PYTORCH_VERSION.to_string(),
            devices: vec![FakeDevice::cpu(RECORDED_RAM_TOTAL, RECORDED_RAM_FREE)],
            queue_running: 0,
            queue_pending: 0,
            latency: Duration::ZERO,
            fault: Fault::None,
            auth: None,
            models: RECORDED_MODEL_FOLDERS
                .iter()
                .map(|f| (f.to_string(), Vec::new()))
                .collect(),
            ram_total: RECORDED_RAM_TOTAL,
            ram_free: RECORDED_RAM_FREE,
            exec_time: RECORDED_EXEC_TIME,
            runtime_error_class: None,
            evil_output_name: None,
        }
    }
}

/// One entry of `devices` in `/system_stats`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeDevice {
    pub name: String,
    /// Serialized as `"type"`: `"cpu"`, `"cuda"`, `"mps"`…
    pub kind: String,
    pub vram_total: u64,
    pub vram_free: u64,
}

impl FakeDevice {
    /// A CUDA GPU as ComfyUI names it. `name` is the card ("NVIDIA GeForce RTX 4090"), which becomes
    /// `"cuda:0 NVIDIA GeForce RTX 4090 : cudaMallocAsync"`; a name that already starts with `cuda:` is kept.
    pub fn cuda(name: &str, vram_total: u64, vram_free: u64) -> Self {
        let name = if name.starts_with("cuda:") {
            name.to_string()
        } else {
            format!("cuda:0 {name} : cudaMallocAsync")
        };
        FakeDevice {
            name,
            kind: "cuda".to_string(),
            vram_total,
            vram_free,
        }
    }

    /// The CPU device of a `--cpu` ComfyUI, whose "VRAM" is the machine's RAM.
    pub fn cpu(ram_total: u64, ram_free: u64) -> Self {
        FakeDevice {
            name: "cpu".to_string(),
            kind: "cpu".to_string(),
            vram_total: ram_total,
            vram_free: ram_free,
        }
    }

    /// `index` in `/system_stats`: null for cpu and mps, else the number after `cuda:` (0 when absent).
    pub fn index(&self) -> Option<u32> {
        if self.kind == "cpu" || self.kind == "mps" {
            return None;
        }
        let rest = self
            .name
            .strip_prefix(&self.kind)
            .and_then(|r| r.strip_prefix(':'))
            .unwrap_or("");
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        Some(digits.parse().unwrap_or(0))
    }

    /// `torch_vram_total` / `torch_vram_free`: a CPU device reports its RAM again; an idle GPU has nothing
    /// reserved by torch.
    pub fn torch_vram(&self) -> (u64, u64) {
        if self.kind == "cpu" || self.kind == "mps" {
            (self.vram_total, self.vram_free)
        } else {
            (0, 0)
        }
    }
}

/// How a fake misbehaves. Every fault applies to every request, after `latency`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Fault {
    /// Answers as the recorded server.
    #[default]
    None,
    /// The port refuses connections: the listener is closed (and open connections dropped) but the port number
    /// stays the fake's, so switching back listens on it again.
    Refuse,
    /// Accepts the TCP connection and reads the request, but never answers, until the client gives up or the fake
    /// shuts down.
    Hang,
    /// `500 text/plain` "500 Internal Server Error\n\nServer got itself in trouble", as aiohttp answers an
    /// exception.
    Http500,
    /// `200 text/html`: some other web server is on this port.
    NotJson,
    /// `200 application/json` whose body never ends.
    EndlessBody,
    /// `200 application/json` that is valid JSON but not ComfyUI: `{"hello": "world"}`.
    WrongShape,
}

impl Fault {
    /// The kebab-case name the CLI and the fleet listing use (`none`, `refuse`, `hang`, `http500`, `not-json`,
    /// `endless-body`, `wrong-shape`).
    pub fn name(&self) -> &'static str {
        match self {
            Fault::None => "none",
            Fault::Refuse => "refuse",
            Fault::Hang => "hang",
            Fault::Http500 => "http500",
            Fault::NotJson => "not-json",
            Fault::EndlessBody => "endless-body",
            Fault::WrongShape => "wrong-shape",
        }
    }

    /// The fault with that [`Fault::name`].
    pub fn from_name(name: &str) -> Option<Fault> {
        [
            Fault::None,
            Fault::Refuse,
            Fault::Hang,
            Fault::Http500,
            Fault::NotJson,
            Fault::EndlessBody,
            Fault::WrongShape,
        ]
        .into_iter()
        .find(|f| f.name() == name)
    }
}

/// Authentication in front of the fake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FakeAuth {
    /// The ComfyUI-Login plugin (liusida, commit 69109257), as recorded: `Authorization: Bearer <token>` (scheme
    /// case-sensitive; an `Authorization` header that is not exactly two words gives 500) or `?token=<token>`;
    /// otherwise 401 `{"error": "Authentication required."}`, or `302 Location: /login` when `Accept` contains
    /// `text/html`. `/login` and paths ending `.js`, `.css`, `.css.map`, `.ico` are exempt. Runs after the origin
    /// check, as the plugin's middleware does.
    ComfyuiLogin { token: String },
    /// A reverse proxy with HTTP Basic auth: 401 with `WWW-Authenticate: Basic realm="comfy"` when missing or
    /// wrong.
    Basic { user: String, password: String },
    /// A reverse proxy that wants `Authorization: Bearer <token>`: 401 with `WWW-Authenticate: Bearer` otherwise.
    Bearer { token: String },
    /// A reverse proxy that wants the header `header: value`: 401 when missing or wrong.
    ApiKey { header: String, value: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_cuda_device_is_named_as_comfyui_names_it() {
        let gpu = FakeDevice::cuda("NVIDIA GeForce RTX 4090", 25_756_696_576, 24_000_000_000);
        assert_eq!(gpu.name, "cuda:0 NVIDIA GeForce RTX 4090 : cudaMallocAsync");
        assert_eq!(gpu.kind, "cuda");
        assert_eq!(gpu.index(), Some(0));
        assert_eq!(gpu.torch_vram(), (0, 0));
        let second = FakeDevice::cuda("cuda:1 NVIDIA A100 : native", 1, 1);
        assert_eq!(second.index(), Some(1));
        assert_eq!(FakeDevice::cpu(1, 1).index(), None);
    }

    #[test]
    fn config_fault_names_round_trip() {
        for name in [
            "none",
            "refuse",
            "hang",
            "http500",
            "not-json",
            "endless-body",
            "wrong-shape",
        ] {
            assert_eq!(Fault::from_name(name).map(|f| f.name()), Some(name));
        }
        assert_eq!(Fault::from_name("nope"), None);
    }
}
