//! The install plan, decided from the machine's facts, the user's choices and the manifest: the
//! torch variant and why, the ordered steps with their sizes, the disk needed against the disk
//! free, a time estimate, and whether local or cloud is the better home for this machine. Pure.

use serde::Serialize;

use super::manifest::{parse_cuda, Manifest, TorchIndex, Variant};
use crate::gpu::{CudaVersion, Vendor};

/// What the plan needs to know about the machine.
#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    /// "linux", "macos", "windows".
    pub os: String,
    /// "x86_64", "aarch64".
    pub arch: String,
    pub ram_total: u64,
    pub gpu: Option<GpuFacts>,
    /// Free bytes where ComfyUI goes.
    pub disk_available: u64,
    /// Free bytes where the models go, when that is another volume.
    pub models_disk_available: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GpuFacts {
    pub vendor: Vendor,
    pub name: String,
    pub vram_total: Option<u64>,
    pub cuda: Option<CudaVersion>,
}

impl Machine {
    /// From the system check: the best GPU and the free space measured at the chosen paths.
    pub fn from_facts(
        facts: &crate::system::SystemFacts,
        disk_available: u64,
        models_disk_available: Option<u64>,
    ) -> Machine {
        Machine {
            os: facts.os.clone(),
            arch: facts.arch.clone(),
            ram_total: facts.ram_total,
            gpu: facts.gpu.best().map(|g| GpuFacts {
                vendor: g.vendor,
                name: g.name.clone(),
                vram_total: g.vram_total,
                cuda: g.cuda_driver_version,
            }),
            disk_available,
            models_disk_available,
        }
    }
}

/// What the user chose.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Choices {
    pub install_path: String,
    /// "cuda" (the newest the driver allows), an exact variant ("cuda128", "rocm", "cpu", "mps"),
    /// or `None` to decide from the GPU.
    pub variant: Option<String>,
    pub packs: Vec<String>,
    /// An existing models folder to reuse (never copied).
    pub models_dir: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct PlannedStep {
    /// Stable across runs: what a step records as done.
    pub id: String,
    pub title: String,
    /// Bytes to download (0 when none).
    pub download: u64,
    /// Bytes it leaves on disk.
    pub disk: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum Home {
    Local,
    Cloud,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Plan {
    pub variant: Variant,
    pub variant_reason: String,
    pub torch_index: Option<String>,
    pub steps: Vec<PlannedStep>,
    pub download_bytes: u64,
    pub disk_needed: u64,
    pub disk_available: u64,
    pub estimated_secs: u64,
    pub recommendation: Home,
    pub recommendation_reason: String,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error("Not enough disk space at {path}: the install needs {needed_gb:.1} GB and {available_gb:.1} GB are free. Free some space or choose another folder.")]
    DiskShort {
        path: String,
        needed_gb: f64,
        available_gb: f64,
    },
    #[error("There is no model pack '{id}'. Packs: {known}.")]
    UnknownPack { id: String, known: String },
    #[error("'{0}' is not a GPU variant. Use cuda, cuda130, cuda129, cuda128, cuda126, rocm, xpu, cpu or mps.")]
    UnknownVariant(String),
    #[error("The manifest has no {0} variant of PyTorch.")]
    VariantMissing(&'static str),
    #[error("Choose a folder to install ComfyUI into.")]
    NoInstallPath,
}

impl crate::HasErrorInfo for PlanError {
    fn code(&self) -> &'static str {
        match self {
            PlanError::DiskShort { .. } => "install.disk_short",
            PlanError::UnknownPack { .. } => "install.unknown_pack",
            PlanError::UnknownVariant(_) | PlanError::VariantMissing(_) => "install.variant",
            PlanError::NoInstallPath => "install.no_path",
        }
    }
}

/// Below this much VRAM, the cloud is suggested.
const LOCAL_MIN_VRAM: u64 = 8_000_000_000;
/// Assumed when nothing better is known: what ComfyUI's requirements add to the environment.
const REQUIREMENTS_SIZE: u64 = 1_000_000_000;
/// A Python the installer fetches through uv, installed.
const PYTHON_SIZE: u64 = 120_000_000;
/// When the manifest does not say: the ComfyUI source archive.
const COMFYUI_ARCHIVE_SIZE: u64 = 40_000_000;
/// A venv made from the system's Python (pip included).
const VENV_SIZE: u64 = 25_000_000;
/// Bytes per second assumed for the time estimate.
const ASSUMED_BANDWIDTH: u64 = 25_000_000;
/// Fixed costs: resolving packages, unpacking wheels, first start.
const FIXED_SECS: u64 = 180;

/// The uv archive key for this machine ("x86_64-linux").
pub fn platform(m: &Machine) -> String {
    format!("{}-{}", m.arch, m.os)
}

/// The variant to install and why, from the GPU and the driver. Pure.
pub fn choose_variant(m: &Machine, manifest: &Manifest) -> (Variant, String) {
    if m.os == "macos" {
        return if m.arch == "aarch64" {
            (
                Variant::Mps,
                "Apple Silicon: PyTorch with Metal (MPS).".into(),
            )
        } else {
            (
                Variant::Cpu,
                "Intel Macs have no supported GPU backend: CPU only.".into(),
            )
        };
    }
    let Some(gpu) = &m.gpu else {
        return (
            Variant::Cpu,
            "No GPU found: ComfyUI runs on the CPU.".into(),
        );
    };
    match gpu.vendor {
        Vendor::Nvidia => match gpu.cuda {
            Some(driver) => match newest_cuda(manifest, Some(driver)) {
                Some(v) => (
                    v,
                    format!(
                        "{}: the driver supports CUDA {driver}, so PyTorch for {} is used.",
                        gpu.name,
                        v.as_str()
                    ),
                ),
                None => (
                    Variant::Cpu,
                    format!(
                        "{}: the driver supports only CUDA {driver}, older than any PyTorch build offered. Update the NVIDIA driver, then run the install again; until then CPU only.",
                        gpu.name
                    ),
                ),
            },
            None => (
                Variant::Cpu,
                format!(
                    "{}: no working NVIDIA driver was found. Install the NVIDIA driver, then run the install again; until then CPU only.",
                    gpu.name
                ),
            ),
        },
        Vendor::Amd if m.os == "linux" => (
            Variant::Rocm,
            format!("{}: PyTorch for ROCm.", gpu.name),
        ),
        Vendor::Amd => (
            Variant::Cpu,
            format!(
                "{}: PyTorch supports AMD GPUs on Linux only; CPU only here.",
                gpu.name
            ),
        ),
        Vendor::Intel => (Variant::Xpu, format!("{}: PyTorch for Intel XPU.", gpu.name)),
        Vendor::Apple => (Variant::Mps, "Apple GPU: PyTorch with Metal (MPS).".into()),
    }
}

/// The newest CUDA variant in the manifest the driver can run (any, when the driver is unknown).
fn newest_cuda(manifest: &Manifest, driver: Option<CudaVersion>) -> Option<Variant> {
    let mut cuda: Vec<(CudaVersion, Variant)> = manifest
        .torch
        .variants
        .iter()
        .filter(|(v, _)| v.is_cuda())
        .filter_map(|(v, t)| Some((parse_cuda(t.min_cuda.as_deref()?)?, *v)))
        .filter(|(min, _)| driver.is_none_or(|d| *min <= d))
        .collect();
    cuda.sort();
    cuda.last().map(|(_, v)| *v)
}

fn gb(bytes: u64) -> f64 {
    bytes as f64 / 1e9
}

/// The plan, or why there can be none.
pub fn plan(manifest: &Manifest, m: &Machine, choices: &Choices) -> Result<Plan, PlanError> {
    if choices.install_path.trim().is_empty() {
        return Err(PlanError::NoInstallPath);
    }
    let (variant, variant_reason) = match choices.variant.as_deref().map(str::trim) {
        None | Some("") | Some("auto") => choose_variant(m, manifest),
        Some("cuda") => {
            let driver = m.gpu.as_ref().and_then(|g| g.cuda);
            let v = newest_cuda(manifest, driver)
                .or_else(|| newest_cuda(manifest, None))
                .ok_or(PlanError::VariantMissing("CUDA"))?;
            (v, format!("Chosen by you: PyTorch for {}.", v.as_str()))
        }
        Some(other) => {
            let v = Variant::parse(other)
                .ok_or_else(|| PlanError::UnknownVariant(other.to_string()))?;
            (v, format!("Chosen by you: PyTorch for {}.", v.as_str()))
        }
    };
    let torch: &TorchIndex = manifest
        .torch
        .variants
        .get(&variant)
        .ok_or(PlanError::VariantMissing(variant.as_str()))?;
    let uv = manifest.uv.archives.get(&platform(m));

    let mut packs = Vec::new();
    for id in &choices.packs {
        let pack = manifest.pack(id).ok_or_else(|| PlanError::UnknownPack {
            id: id.clone(),
            known: manifest
                .packs
                .iter()
                .map(|p| p.id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })?;
        if !packs.contains(&pack) {
            packs.push(pack);
        }
    }

    let archive = if manifest.comfyui.size > 0 {
        manifest.comfyui.size
    } else {
        COMFYUI_ARCHIVE_SIZE
    };
    let step = |id: &str, title: String, download: u64, disk: u64| PlannedStep {
        id: id.into(),
        title,
        download,
        disk,
    };
    let mut steps = vec![
        step(
            "comfyui",
            format!("Download and unpack ComfyUI {}", manifest.comfyui.version),
            archive,
            archive * 3,
        ),
        match uv {
            Some(uv) => step(
                "python",
                format!(
                    "Set up Python {} with uv {}",
                    manifest.python, manifest.uv.version
                ),
                uv.size + PYTHON_SIZE,
                uv.size + PYTHON_SIZE,
            ),
            None => step(
                "python",
                "Set up Python with this system's python3 (3.10 or newer)".into(),
                0,
                VENV_SIZE,
            ),
        },
        step(
            "torch",
            format!("Install PyTorch ({})", variant.as_str()),
            torch.install_size / 2,
            torch.install_size,
        ),
        step(
            "requirements",
            "Install ComfyUI's requirements".into(),
            REQUIREMENTS_SIZE / 2,
            REQUIREMENTS_SIZE,
        ),
    ];
    let mut model_bytes = 0;
    for pack in &packs {
        let size: u64 = pack.files.iter().map(|f| f.size).sum();
        model_bytes += size;
        steps.push(step(
            &format!("models:{}", pack.id),
            format!("Download {}", pack.name),
            size,
            size,
        ));
    }
    if choices.models_dir.is_some() {
        steps.push(step(
            "extra_model_paths",
            "Use your existing models folder (extra_model_paths.yaml)".into(),
            0,
            0,
        ));
    }
    steps.push(step("start", "Start ComfyUI".into(), 0, 0));
    steps.push(step(
        "verify",
        "Check it works with a test image".into(),
        0,
        0,
    ));
    steps.push(step(
        "register",
        "Add it as the active \"Local\" server".into(),
        0,
        0,
    ));

    // Models go to the models folder's volume when that is another one.
    let models_elsewhere = match m.models_disk_available {
        Some(_) if choices.models_dir.is_some() => model_bytes,
        _ => 0,
    };
    let disk_needed: u64 = steps.iter().map(|s| s.disk).sum::<u64>() - models_elsewhere;
    if disk_needed > m.disk_available {
        return Err(PlanError::DiskShort {
            path: choices.install_path.clone(),
            needed_gb: gb(disk_needed),
            available_gb: gb(m.disk_available),
        });
    }
    if let (Some(free), Some(dir)) = (m.models_disk_available, &choices.models_dir) {
        if models_elsewhere > free {
            return Err(PlanError::DiskShort {
                path: dir.clone(),
                needed_gb: gb(models_elsewhere),
                available_gb: gb(free),
            });
        }
    }
    let download_bytes: u64 = steps.iter().map(|s| s.download).sum();

    let mut warnings = Vec::new();
    let vram = m.gpu.as_ref().and_then(|g| g.vram_total);
    for pack in &packs {
        if let (Some(min), Some(v)) = (pack.min_vram_gb, vram) {
            if gb(v) + 0.5 < min as f64 {
                warnings.push(format!(
                    "{} wants about {min} GB of VRAM and this GPU has {:.0} GB: expect it to be slow or to fail.",
                    pack.name,
                    gb(v)
                ));
            }
        }
        if pack.files.iter().any(|f| f.gated) {
            warnings.push(format!(
                "{} is gated: accept its licence on Hugging Face and add a Hugging Face token first.",
                pack.name
            ));
        }
    }
    if m.ram_total < 16_000_000_000 {
        warnings.push(format!(
            "{:.0} GB of RAM: large models (SDXL, FLUX) may not load; 16 GB or more is recommended.",
            gb(m.ram_total)
        ));
    }
    let (recommendation, recommendation_reason) = match (variant, vram) {
        (Variant::Cpu, _) => (
            Home::Cloud,
            "Without a usable GPU an image takes minutes; a cloud GPU is recommended (you can still install locally).".to_string(),
        ),
        (_, Some(v)) if v < LOCAL_MIN_VRAM => (
            Home::Cloud,
            format!(
                "{:.0} GB of VRAM runs SD 1.5 but not SDXL or FLUX well; a cloud GPU is suggested for those.",
                gb(v)
            ),
        ),
        _ => (
            Home::Local,
            match &m.gpu {
                Some(g) => format!("{} is a good home for ComfyUI.", g.name),
                None => "This machine can run ComfyUI.".into(),
            },
        ),
    };
    Ok(Plan {
        variant,
        variant_reason,
        torch_index: torch
            .index_url
            .clone()
            .or_else(|| manifest.package_index.clone()),
        estimated_secs: download_bytes / ASSUMED_BANDWIDTH + FIXED_SECS,
        steps,
        download_bytes,
        disk_needed,
        disk_available: m.disk_available,
        recommendation,
        recommendation_reason,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(gpu: Option<GpuFacts>) -> Machine {
        Machine {
            os: "linux".into(),
            arch: "x86_64".into(),
            ram_total: 32_000_000_000,
            gpu,
            disk_available: 500_000_000_000,
            models_disk_available: None,
        }
    }

    fn nvidia(vram_gb: u64, cuda: Option<(u32, u32)>) -> Option<GpuFacts> {
        Some(GpuFacts {
            vendor: Vendor::Nvidia,
            name: "NVIDIA GeForce RTX 4090".into(),
            vram_total: Some(vram_gb * 1_000_000_000),
            cuda: cuda.map(|(major, minor)| CudaVersion { major, minor }),
        })
    }

    fn choices(packs: &[&str]) -> Choices {
        Choices {
            install_path: "/home/ann/ComfyUI".into(),
            packs: packs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn plan_picks_the_newest_cuda_build_the_driver_supports() {
        let m = Manifest::bundled();
        let v = |cuda| choose_variant(&machine(nvidia(24, cuda)), &m).0;
        assert_eq!(v(Some((13, 0))), Variant::Cuda130);
        assert_eq!(v(Some((12, 9))), Variant::Cuda129);
        assert_eq!(v(Some((12, 8))), Variant::Cuda128);
        assert_eq!(v(Some((12, 7))), Variant::Cuda126);
        let (old, why) = choose_variant(&machine(nvidia(24, Some((11, 8)))), &m);
        assert_eq!(old, Variant::Cpu);
        assert!(why.contains("Update the NVIDIA driver"), "{why}");
        let (none, why) = choose_variant(&machine(nvidia(24, None)), &m);
        assert_eq!(none, Variant::Cpu);
        assert!(why.contains("Install the NVIDIA driver"), "{why}");
    }

    #[test]
    fn plan_picks_rocm_xpu_mps_or_cpu_for_other_machines() {
        let m = Manifest::bundled();
        let gpu = |vendor| {
            Some(GpuFacts {
                vendor,
                name: "GPU".into(),
                vram_total: None,
                cuda: None,
            })
        };
        assert_eq!(
            choose_variant(&machine(gpu(Vendor::Amd)), &m).0,
            Variant::Rocm
        );
        assert_eq!(
            choose_variant(&machine(gpu(Vendor::Intel)), &m).0,
            Variant::Xpu
        );
        assert_eq!(choose_variant(&machine(None), &m).0, Variant::Cpu);
        let mut windows_amd = machine(gpu(Vendor::Amd));
        windows_amd.os = "windows".into();
        assert_eq!(choose_variant(&windows_amd, &m).0, Variant::Cpu);
        let mut mac = machine(None);
        mac.os = "macos".into();
        mac.arch = "aarch64".into();
        assert_eq!(choose_variant(&mac, &m).0, Variant::Mps);
    }

    #[test]
    fn plan_lists_ordered_steps_with_sizes_and_recommends_local_on_a_big_gpu() {
        let m = Manifest::bundled();
        let p = plan(
            &m,
            &machine(nvidia(24, Some((12, 8)))),
            &choices(&["sd15", "sdxl"]),
        )
        .unwrap();
        let ids: Vec<&str> = p.steps.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "comfyui",
                "python",
                "torch",
                "requirements",
                "models:sd15",
                "models:sdxl",
                "start",
                "verify",
                "register"
            ]
        );
        assert_eq!(p.variant, Variant::Cuda128);
        assert_eq!(
            p.torch_index.as_deref(),
            Some("https://download.pytorch.org/whl/cu128")
        );
        let models = 2_130_000_000 + 6_940_000_000;
        assert!(p.download_bytes > models && p.disk_needed > models);
        assert_eq!(p.recommendation, Home::Local);
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        assert!(p.estimated_secs > models / ASSUMED_BANDWIDTH);
    }

    #[test]
    fn plan_suggests_the_cloud_below_8_gb_or_without_a_gpu_and_warns_per_pack() {
        let m = Manifest::bundled();
        let small = plan(
            &m,
            &machine(nvidia(6, Some((12, 8)))),
            &choices(&["flux-schnell"]),
        )
        .unwrap();
        assert_eq!(small.recommendation, Home::Cloud);
        assert!(small
            .warnings
            .iter()
            .any(|w| w.contains("FLUX") && w.contains("12 GB")));
        let cpu = plan(&m, &machine(None), &choices(&[])).unwrap();
        assert_eq!(
            (cpu.variant, cpu.recommendation),
            (Variant::Cpu, Home::Cloud)
        );
        let mut low_ram = machine(nvidia(24, Some((12, 8))));
        low_ram.ram_total = 8_000_000_000;
        let p = plan(&m, &low_ram, &choices(&[])).unwrap();
        assert!(p.warnings.iter().any(|w| w.contains("RAM")));
    }

    #[test]
    fn plan_refuses_with_a_reason_when_disk_is_short_and_counts_a_shared_models_folder_apart() {
        let m = Manifest::bundled();
        let mut tight = machine(nvidia(24, Some((12, 8))));
        tight.disk_available = 12_000_000_000;
        let err = plan(&m, &tight, &choices(&["sdxl"])).unwrap_err();
        assert!(matches!(err, PlanError::DiskShort { .. }));
        assert!(err.to_string().contains("/home/ann/ComfyUI"), "{err}");
        // The same models kept on another, roomy volume: the install disk is enough.
        tight.models_disk_available = Some(100_000_000_000);
        let mut shared = choices(&["sdxl"]);
        shared.models_dir = Some("/mnt/models".into());
        let p = plan(&m, &tight, &shared).unwrap();
        assert!(p.steps.iter().any(|s| s.id == "extra_model_paths"));
        tight.models_disk_available = Some(1_000_000_000);
        let err = plan(&m, &tight, &shared).unwrap_err();
        assert!(err.to_string().contains("/mnt/models"), "{err}");
    }

    #[test]
    fn plan_refuses_unknown_packs_variants_and_platforms_clearly() {
        let m = Manifest::bundled();
        let gpu = machine(nvidia(24, Some((12, 8))));
        let err = plan(&m, &gpu, &choices(&["sd3"])).unwrap_err().to_string();
        assert!(err.contains("'sd3'") && err.contains("sd15"), "{err}");
        let mut c = choices(&[]);
        c.variant = Some("tpu".into());
        assert!(plan(&m, &gpu, &c)
            .unwrap_err()
            .to_string()
            .contains("'tpu'"));
        c.variant = Some("cuda".into());
        assert_eq!(
            plan(&m, &machine(None), &c).unwrap().variant,
            Variant::Cuda130
        );
        // No uv for this platform: the system's python3 sets up the environment.
        let mut riscv = gpu.clone();
        riscv.arch = "riscv64".into();
        let p = plan(&m, &riscv, &choices(&[])).unwrap();
        assert!(
            p.steps[1].title.contains("system's python3"),
            "{:?}",
            p.steps[1]
        );
        assert!(matches!(
            plan(&m, &gpu, &Choices::default()),
            Err(PlanError::NoInstallPath)
        ));
    }
}
