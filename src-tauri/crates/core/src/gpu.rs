//! GPU detection: NVIDIA through NVML (loaded lazily, never required), AMD and Intel from Linux
//! sysfs, Apple Silicon on macOS, else CPU only — always an answer, never a panic.

use std::path::Path;
use std::sync::OnceLock;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum Vendor {
    Nvidia,
    Amd,
    Intel,
    Apple,
}

/// A CUDA version as `major.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct CudaVersion {
    pub major: u32,
    pub minor: u32,
}

impl CudaVersion {
    /// From NVML's integer form (`12040` → 12.4).
    pub fn from_nvml(raw: i32) -> Option<Self> {
        (raw > 0).then_some(CudaVersion {
            major: (raw / 1000) as u32,
            minor: ((raw % 1000) / 10) as u32,
        })
    }
}

impl std::fmt::Display for CudaVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// One GPU and what is known about it. Unknown facts are `None`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Gpu {
    pub vendor: Vendor,
    pub name: String,
    pub vram_total: Option<u64>,
    pub vram_free: Option<u64>,
    pub driver_version: Option<String>,
    /// The newest CUDA the driver supports (NVIDIA only).
    pub cuda_driver_version: Option<CudaVersion>,
    /// `major.minor`, e.g. "8.9" (NVIDIA only).
    pub compute_capability: Option<String>,
    /// Current power draw in milliwatts (NVIDIA only).
    pub power_draw_mw: Option<u32>,
}

/// The machine's GPUs and how they were found.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct GpuReport {
    pub gpus: Vec<Gpu>,
    /// Why NVML could not be used, when it could not (no NVIDIA driver, …).
    pub nvml_unavailable: Option<String>,
}

impl GpuReport {
    /// The GPU a local ComfyUI would use: the one with the most VRAM, NVIDIA first.
    pub fn best(&self) -> Option<&Gpu> {
        self.gpus.iter().max_by_key(|g| {
            (
                g.vendor == Vendor::Nvidia,
                g.vendor != Vendor::Intel,
                g.vram_total.unwrap_or(0),
            )
        })
    }

    /// One line for people: "NVIDIA GeForce RTX 4090, 24 GB" or "No GPU found: …".
    pub fn summary(&self) -> String {
        match self.best() {
            Some(g) => match g.vram_total {
                Some(v) => format!("{}, {:.0} GB VRAM", g.name, v as f64 / 1e9),
                None => g.name.clone(),
            },
            None => "No GPU found: ComfyUI would run on the CPU (very slow); a cloud GPU is recommended.".into(),
        }
    }
}

/// Raw facts of one NVIDIA device as NVML reports them.
#[derive(Debug, Clone, PartialEq)]
pub struct NvmlDevice {
    pub name: Option<String>,
    /// (total, free) bytes.
    pub memory: Option<(u64, u64)>,
    /// (major, minor).
    pub compute_capability: Option<(i32, i32)>,
    pub power_mw: Option<u32>,
}

/// Turn NVML's answers into GPUs. Pure, so it is tested on recorded values.
pub fn from_nvml(driver: Option<&str>, cuda_raw: Option<i32>, devices: &[NvmlDevice]) -> Vec<Gpu> {
    devices
        .iter()
        .enumerate()
        .map(|(i, d)| Gpu {
            vendor: Vendor::Nvidia,
            name: d
                .name
                .clone()
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| format!("NVIDIA GPU {i}")),
            vram_total: d.memory.map(|m| m.0),
            vram_free: d.memory.map(|m| m.1),
            driver_version: driver.map(str::to_string),
            cuda_driver_version: cuda_raw.and_then(CudaVersion::from_nvml),
            compute_capability: d
                .compute_capability
                .filter(|(major, _)| *major > 0)
                .map(|(major, minor)| format!("{major}.{minor}")),
            power_draw_mw: d.power_mw,
        })
        .collect()
}

/// NVML, loaded once on first use; the error text when it cannot be.
fn nvml() -> Result<&'static nvml_wrapper::Nvml, String> {
    static NVML: OnceLock<Result<nvml_wrapper::Nvml, String>> = OnceLock::new();
    NVML.get_or_init(|| {
        nvml_wrapper::Nvml::init().map_err(|e| match e {
            nvml_wrapper::error::NvmlError::LibloadingError(_) => {
                "the NVIDIA driver's NVML library is not installed".to_string()
            }
            other => format!("NVML did not start ({other})"),
        })
    })
    .as_ref()
    .map_err(Clone::clone)
}

fn nvidia_gpus() -> Result<Vec<Gpu>, String> {
    let nvml = nvml()?;
    let count = nvml.device_count().map_err(|e| e.to_string())?;
    let devices: Vec<NvmlDevice> = (0..count)
        .filter_map(|i| nvml.device_by_index(i).ok())
        .map(|d| NvmlDevice {
            name: d.name().ok(),
            memory: d.memory_info().ok().map(|m| (m.total, m.free)),
            compute_capability: d.cuda_compute_capability().ok().map(|c| (c.major, c.minor)),
            power_mw: d.power_usage().ok(),
        })
        .collect();
    Ok(from_nvml(
        nvml.sys_driver_version().ok().as_deref(),
        nvml.sys_cuda_driver_version().ok(),
        &devices,
    ))
}

/// The current power draw of every NVIDIA GPU, in milliwatts (for the cost monitor).
pub fn power_draw_mw() -> Vec<u32> {
    let Ok(nvml) = nvml() else { return Vec::new() };
    let count = nvml.device_count().unwrap_or(0);
    (0..count)
        .filter_map(|i| nvml.device_by_index(i).ok()?.power_usage().ok())
        .collect()
}

/// GPUs that Linux lists under `<root>/class/drm/card*/device` (root is `/sys`). Reads `vendor`,
/// `device` and, for AMD, `mem_info_vram_total`. NVIDIA cards are listed too, for when NVML is missing.
pub fn from_sysfs(root: &Path) -> Vec<Gpu> {
    let Ok(entries) = std::fs::read_dir(root.join("class/drm")) else {
        return Vec::new();
    };
    let mut cards: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        // card0, card1 … but not the connectors (card0-DP-1).
        .filter(|n| n.starts_with("card") && n[4..].chars().all(|c| c.is_ascii_digit()))
        .collect();
    cards.sort();
    let read = |card: &str, file: &str| {
        std::fs::read_to_string(root.join("class/drm").join(card).join("device").join(file))
            .ok()
            .map(|s| s.trim().to_string())
    };
    let mut gpus = Vec::new();
    for card in cards {
        let vendor = match read(&card, "vendor").as_deref() {
            Some("0x1002") => Vendor::Amd,
            Some("0x8086") => Vendor::Intel,
            Some("0x10de") => Vendor::Nvidia,
            _ => continue,
        };
        let device = read(&card, "device").unwrap_or_default();
        let vram = |file| read(&card, file).and_then(|s| s.parse::<u64>().ok());
        let total = vram("mem_info_vram_total");
        let used = vram("mem_info_vram_used");
        let label = match vendor {
            Vendor::Amd => "AMD Radeon GPU",
            Vendor::Nvidia => "NVIDIA GPU without a working driver",
            _ => "Intel GPU",
        };
        gpus.push(Gpu {
            vendor,
            name: format!("{label} ({device})"),
            vram_total: total,
            vram_free: total.zip(used).map(|(t, u)| t.saturating_sub(u)),
            driver_version: None,
            cuda_driver_version: None,
            compute_capability: None,
            power_draw_mw: None,
        });
    }
    gpus
}

/// Every GPU this machine has, however it can be found.
pub fn detect() -> GpuReport {
    let (mut gpus, nvml_unavailable) = match nvidia_gpus() {
        Ok(g) => (g, None),
        Err(reason) => (Vec::new(), Some(reason)),
    };
    if cfg!(target_os = "linux") {
        let nvml_found = !gpus.is_empty();
        gpus.extend(
            from_sysfs(Path::new("/sys"))
                .into_iter()
                .filter(|g| !(nvml_found && g.vendor == Vendor::Nvidia)),
        );
    }
    if cfg!(all(target_os = "macos", target_arch = "aarch64")) {
        gpus.push(Gpu {
            vendor: Vendor::Apple,
            name: "Apple Silicon GPU (unified memory)".into(),
            vram_total: None,
            vram_free: None,
            driver_version: None,
            cuda_driver_version: None,
            compute_capability: None,
            power_draw_mw: None,
        });
    }
    GpuReport {
        gpus,
        nvml_unavailable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_nvml_facts_of_a_recorded_rtx_4090_and_a_headless_a100() {
        // As NVML reported them (driver 550.54.14, CUDA 12.4).
        let devices = [
            NvmlDevice {
                name: Some("NVIDIA GeForce RTX 4090".into()),
                memory: Some((25_757_220_864, 24_996_839_424)),
                compute_capability: Some((8, 9)),
                power_mw: Some(34_712),
            },
            NvmlDevice {
                name: Some("NVIDIA A100-SXM4-80GB".into()),
                memory: Some((85_899_345_920, 85_031_714_816)),
                compute_capability: Some((8, 0)),
                power_mw: None, // not supported on every board
            },
        ];
        let gpus = from_nvml(Some("550.54.14"), Some(12040), &devices);
        assert_eq!(gpus.len(), 2);
        assert_eq!(gpus[0].name, "NVIDIA GeForce RTX 4090");
        assert_eq!(gpus[0].vram_total, Some(25_757_220_864));
        assert_eq!(gpus[0].vram_free, Some(24_996_839_424));
        assert_eq!(
            gpus[0].cuda_driver_version,
            Some(CudaVersion {
                major: 12,
                minor: 4
            })
        );
        assert_eq!(gpus[0].compute_capability.as_deref(), Some("8.9"));
        assert_eq!(gpus[0].power_draw_mw, Some(34_712));
        assert_eq!(gpus[1].driver_version.as_deref(), Some("550.54.14"));
        assert_eq!(gpus[1].power_draw_mw, None);
        let report = GpuReport {
            gpus,
            nvml_unavailable: None,
        };
        assert_eq!(report.best().unwrap().name, "NVIDIA A100-SXM4-80GB");
        assert_eq!(report.summary(), "NVIDIA A100-SXM4-80GB, 86 GB VRAM");
    }

    #[test]
    fn gpu_cuda_versions_read_from_nvml_integers() {
        let v = |raw| CudaVersion::from_nvml(raw).map(|c| c.to_string());
        assert_eq!(v(12040).as_deref(), Some("12.4"));
        assert_eq!(v(13000).as_deref(), Some("13.0"));
        assert_eq!(v(11080).as_deref(), Some("11.8"));
        assert_eq!(v(0), None);
        assert_eq!(v(-1), None);
    }

    #[test]
    fn gpu_missing_nvml_answers_are_unknown_not_errors() {
        let gpus = from_nvml(
            None,
            None,
            &[NvmlDevice {
                name: None,
                memory: None,
                compute_capability: Some((0, 0)),
                power_mw: None,
            }],
        );
        assert_eq!(gpus[0].name, "NVIDIA GPU 0");
        assert_eq!(gpus[0].vram_total, None);
        assert_eq!(gpus[0].compute_capability, None);
        assert_eq!(gpus[0].cuda_driver_version, None);
    }

    #[test]
    fn gpu_sysfs_finds_amd_intel_and_driverless_nvidia_cards_but_not_connectors() {
        let root = tempfile::tempdir().unwrap();
        let card = |name: &str, files: &[(&str, &str)]| {
            let dir = root.path().join("class/drm").join(name).join("device");
            std::fs::create_dir_all(&dir).unwrap();
            for (f, v) in files {
                std::fs::write(dir.join(f), format!("{v}\n")).unwrap();
            }
        };
        card(
            "card0",
            &[
                ("vendor", "0x1002"),
                ("device", "0x744c"),
                ("mem_info_vram_total", "25753026560"),
                ("mem_info_vram_used", "753026560"),
            ],
        );
        card("card0-DP-1", &[("vendor", "0x1002")]);
        card("card1", &[("vendor", "0x8086"), ("device", "0x56a0")]);
        card("card2", &[("vendor", "0x10de"), ("device", "0x2684")]);
        let gpus = from_sysfs(root.path());
        assert_eq!(gpus.len(), 3, "{gpus:?}");
        assert_eq!(gpus[0].vendor, Vendor::Amd);
        assert_eq!(gpus[0].name, "AMD Radeon GPU (0x744c)");
        assert_eq!(gpus[0].vram_total, Some(25_753_026_560));
        assert_eq!(gpus[0].vram_free, Some(25_000_000_000));
        assert_eq!(gpus[1].vendor, Vendor::Intel);
        assert_eq!(gpus[1].vram_total, None);
        assert_eq!(gpus[2].vendor, Vendor::Nvidia);
        assert!(gpus[2].name.contains("without a working driver"));
        let report = GpuReport {
            gpus,
            nvml_unavailable: Some("x".into()),
        };
        assert_eq!(report.best().unwrap().vendor, Vendor::Nvidia);
    }

    #[test]
    fn gpu_detect_on_a_machine_without_nvidia_answers_without_panicking() {
        let report = detect();
        if report.gpus.iter().all(|g| g.vendor != Vendor::Nvidia) {
            assert!(report.nvml_unavailable.is_some());
        }
        assert!(!report.summary().is_empty());
    }
}
