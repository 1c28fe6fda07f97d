//! The install manifest: a versioned JSON document shipped with the app (and replaceable by a file
//! or URL) naming the ComfyUI archive, `uv` per platform, the torch index per GPU variant and the
//! model packs. Parsing refuses anything that could not be installed, with the reason.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::gpu::CudaVersion;

/// The manifest this build of the app ships with.
pub const BUNDLED: &str = include_str!("manifest.json");
/// The manifest format this app reads.
pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Manifest {
    pub version: u32,
    #[serde(default)]
    pub notes: String,
    pub comfyui: Archive,
    /// The Python version `uv` installs.
    pub python: String,
    /// The package index for ComfyUI's requirements, and for PyTorch when its variant names none.
    /// `None`: the default (PyPI).
    #[serde(default)]
    pub package_index: Option<String>,
    /// `uv` per platform; a platform not listed uses the system's `python3` (3.10 or newer) with venv.
    pub uv: Uv,
    pub torch: Torch,
    pub packs: Vec<ModelPack>,
}

/// A file to fetch. `sha256` empty: verified against the host's checksum when it has one.
/// `size` 0: unknown until the host answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Archive {
    #[serde(default)]
    pub version: String,
    pub url: String,
    #[serde(default)]
    pub sha256: String,
    #[serde(default)]
    pub size: u64,
    /// The folder inside the archive that holds its content (e.g. "ComfyUI-0.3.64/").
    #[serde(default)]
    pub strip_prefix: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Uv {
    pub version: String,
    /// "x86_64-linux", "aarch64-macos", "x86_64-windows" … → its archive.
    pub archives: BTreeMap<String, Archive>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum Variant {
    Cuda130,
    Cuda129,
    Cuda128,
    Cuda126,
    Rocm,
    Xpu,
    Cpu,
    Mps,
}

impl Variant {
    pub const ALL: [Variant; 8] = [
        Variant::Cuda130,
        Variant::Cuda129,
        Variant::Cuda128,
        Variant::Cuda126,
        Variant::Rocm,
        Variant::Xpu,
        Variant::Cpu,
        Variant::Mps,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Variant::Cuda130 => "cuda130",
            Variant::Cuda129 => "cuda129",
            Variant::Cuda128 => "cuda128",
            Variant::Cuda126 => "cuda126",
            Variant::Rocm => "rocm",
            Variant::Xpu => "xpu",
            Variant::Cpu => "cpu",
            Variant::Mps => "mps",
        }
    }

    pub fn is_cuda(self) -> bool {
        matches!(
            self,
            Variant::Cuda130 | Variant::Cuda129 | Variant::Cuda128 | Variant::Cuda126
        )
    }

    /// From the CLI: "cuda" (the newest the driver allows is chosen later), "cuda128", "rocm", …
    pub fn parse(s: &str) -> Option<Variant> {
        let s = s.trim().to_ascii_lowercase();
        Variant::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Torch {
    pub packages: Vec<String>,
    pub variants: BTreeMap<Variant, TorchIndex>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct TorchIndex {
    /// `None`: the default Python package index.
    pub index_url: Option<String>,
    /// The oldest CUDA the driver must support ("12.8").
    #[serde(default)]
    pub min_cuda: Option<String>,
    /// Pre-release wheels (macOS nightly).
    #[serde(default)]
    pub pre: bool,
    /// Disk the installed packages take, roughly.
    pub install_size: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct ModelPack {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub min_vram_gb: Option<f32>,
    pub files: Vec<ModelFile>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct ModelFile {
    pub url: String,
    pub file_name: String,
    /// The models folder it belongs in ("checkpoints", "loras", …).
    pub folder: String,
    pub size: u64,
    #[serde(default)]
    pub sha256: String,
    /// Needs the licence accepted on the model page and a Hugging Face token.
    #[serde(default)]
    pub gated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("The install manifest is not valid JSON or misses a field: {0}")]
    Malformed(String),
    #[error("The install manifest has format {found}; this app reads format {FORMAT}. Update ComfyFleet or use a manifest made for it.")]
    Format { found: u32 },
    #[error("The install manifest is wrong at {at}: {problem}")]
    Invalid { at: String, problem: String },
}

impl crate::HasErrorInfo for ManifestError {
    fn code(&self) -> &'static str {
        match self {
            ManifestError::Malformed(_) => "manifest.malformed",
            ManifestError::Format { .. } => "manifest.format",
            ManifestError::Invalid { .. } => "manifest.invalid",
        }
    }
}

/// The CUDA version a `min_cuda` string names ("12.8").
pub fn parse_cuda(s: &str) -> Option<CudaVersion> {
    let (major, minor) = s.trim().split_once('.')?;
    Some(CudaVersion {
        major: major.parse().ok()?,
        minor: minor.parse().ok()?,
    })
}

fn invalid(at: impl Into<String>, problem: impl Into<String>) -> ManifestError {
    ManifestError::Invalid {
        at: at.into(),
        problem: problem.into(),
    }
}

fn check_archive(at: &str, a: &Archive) -> Result<(), ManifestError> {
    let url = url::Url::parse(&a.url).map_err(|e| invalid(at, format!("url: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid(at, "url must be http(s) with a host"));
    }
    let hex64 = a.sha256.len() == 64 && a.sha256.chars().all(|c| c.is_ascii_hexdigit());
    if !a.sha256.is_empty() && !hex64 {
        return Err(invalid(at, "sha256 must be 64 hex digits or empty"));
    }
    Ok(())
}

/// A package index URL, checked as an archive URL is.
fn index_archive(url: &str) -> Archive {
    Archive {
        version: String::new(),
        url: url.to_string(),
        sha256: String::new(),
        size: 0,
        strip_prefix: String::new(),
    }
}

impl Manifest {
    /// The manifest shipped with the app.
    pub fn bundled() -> Manifest {
        Manifest::parse(BUNDLED).expect("the bundled manifest is valid (tested)")
    }

    /// Read and check a manifest.
    pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
        #[derive(Deserialize)]
        struct Head {
            version: u32,
        }
        let head: Head =
            serde_json::from_str(text).map_err(|e| ManifestError::Malformed(e.to_string()))?;
        if head.version != FORMAT {
            return Err(ManifestError::Format {
                found: head.version,
            });
        }
        let m: Manifest =
            serde_json::from_str(text).map_err(|e| ManifestError::Malformed(e.to_string()))?;
        m.check()?;
        Ok(m)
    }

    fn check(&self) -> Result<(), ManifestError> {
        check_archive("comfyui", &self.comfyui)?;
        if let Some(u) = &self.package_index {
            check_archive("package_index", &index_archive(u))?;
        }
        for (platform, a) in &self.uv.archives {
            check_archive(&format!("uv.archives.{platform}"), a)?;
        }
        if !self.torch.variants.contains_key(&Variant::Cpu) {
            return Err(invalid("torch.variants", "the cpu variant is required"));
        }
        for (v, t) in &self.torch.variants {
            if let Some(u) = &t.index_url {
                check_archive(&format!("torch.variants.{}", v.as_str()), &index_archive(u))?;
            }
            if let Some(c) = &t.min_cuda {
                if parse_cuda(c).is_none() {
                    return Err(invalid(
                        format!("torch.variants.{}.min_cuda", v.as_str()),
                        format!("'{c}' is not a version like 12.8"),
                    ));
                }
            }
        }
        let mut ids = std::collections::HashSet::new();
        for p in &self.packs {
            let at = format!("packs.{}", p.id);
            if p.id.is_empty() || !ids.insert(p.id.to_ascii_lowercase()) {
                return Err(invalid(at, "pack ids must be present and unique"));
            }
            if p.files.is_empty() {
                return Err(invalid(at, "a pack lists at least one file"));
            }
            for f in &p.files {
                let at = format!("{at}.{}", f.file_name);
                check_archive(
                    &at,
                    &Archive {
                        version: String::new(),
                        url: f.url.clone(),
                        sha256: f.sha256.clone(),
                        size: f.size,
                        strip_prefix: String::new(),
                    },
                )?;
                crate::gallery::check_file_name(&f.file_name)
                    .map_err(|_| invalid(&at, "file_name must be a plain file name"))?;
                crate::gallery::check_file_name(&f.folder).map_err(|_| {
                    invalid(&at, "folder must be one folder name, like checkpoints")
                })?;
            }
        }
        Ok(())
    }

    pub fn pack(&self, id: &str) -> Option<&ModelPack> {
        self.packs.iter().find(|p| p.id.eq_ignore_ascii_case(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_bundled_is_valid_and_has_the_promised_packs() {
        let m = Manifest::bundled();
        for id in ["sd15", "sdxl", "flux-schnell", "animatediff"] {
            assert!(m.pack(id).is_some(), "{id}");
        }
        assert_eq!(m.comfyui.version, "0.3.64");
        assert!(m.torch.variants.contains_key(&Variant::Cuda128));
        assert!(m.uv.archives.contains_key("x86_64-linux"));
    }

    #[test]
    fn manifest_refuses_what_could_not_be_installed_with_the_place_and_reason() {
        let good: serde_json::Value = serde_json::from_str(BUNDLED).unwrap();
        let broken = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut v = good.clone();
            edit(&mut v);
            Manifest::parse(&v.to_string()).unwrap_err().to_string()
        };
        assert!(broken(&|v| v["version"] = 2.into()).contains("format 2"));
        assert!(broken(&|v| v["comfyui"]["url"] = "ftp://x/y".into()).contains("comfyui"));
        assert!(broken(&|v| v["packs"][0]["files"][0]["sha256"] = "abc".into()).contains("64 hex"));
        assert!(
            broken(&|v| v["packs"][0]["files"][0]["file_name"] = "../x".into())
                .contains("plain file name")
        );
        assert!(
            broken(&|v| v["packs"][0]["files"][0]["folder"] = "a/b".into())
                .contains("one folder name")
        );
        assert!(broken(&|v| v["packs"][1]["id"] = "SD15".into()).contains("unique"));
        assert!(
            broken(&|v| v["torch"]["variants"]["cuda128"]["min_cuda"] = "twelve".into())
                .contains("twelve")
        );
        assert!(broken(&|v| {
            v["torch"]["variants"]
                .as_object_mut()
                .unwrap()
                .remove("cpu");
        })
        .contains("cpu variant"));
        assert!(Manifest::parse("not json")
            .unwrap_err()
            .to_string()
            .contains("not valid JSON"));
        assert!(Manifest::parse("{}")
            .unwrap_err()
            .to_string()
            .contains("version"));
    }
}
