//! Everything the installer downloads, served on loopback by a [`FileHost`]: an install manifest in ComfyFleet's
//! format, a ComfyUI archive (the fake ComfyUI of `assets/fake-comfyui`, a Python program that really runs), a PEP 503
//! package index with a tiny `torch` wheel that pip installs without the internet, and a model file.

use std::io::Write;

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::filehost::{FileHost, HostedFile};

/// The fake ComfyUI the archive holds, by its path inside the archive's top folder.
const FAKE_COMFYUI: [(&str, &[u8]); 3] = [
    ("main.py", include_bytes!("../assets/fake-comfyui/main.py")),
    (
        "requirements.txt",
        include_bytes!("../assets/fake-comfyui/requirements.txt"),
    ),
    // As in the real archive: the models folder exists before any model is downloaded.
    ("models/checkpoints/put_checkpoints_here", b""),
];

/// The top folder of the archive, and the manifest's `strip_prefix`.
pub const ARCHIVE_TOP: &str = "ComfyUI-test/";
pub const COMFYUI_VERSION: &str = "0.3.64-test";
pub const TORCH_VERSION: &str = "2.9.0+cpu";
pub const WHEEL_NAME: &str = "torch-2.9.0+cpu-py3-none-any.whl";
pub const MODEL_FILE: &str = "tiny.safetensors";

pub const MANIFEST_PATH: &str = "/manifest.json";
pub const ARCHIVE_PATH: &str = "/comfyui.tar.gz";
pub const MODEL_PATH: &str = "/models/tiny.safetensors";
/// The wheel, as the index links it (`+` percent-encoded, as download.pytorch.org does).
pub const WHEEL_PATH: &str = "/packages/torch-2.9.0%2Bcpu-py3-none-any.whl";

/// Seed of the generated model content.
const MODEL_SEED: u64 = 0x7E57;
/// 2025-10-01, the modification time of every archive entry (the archive is the same bytes at every start).
const MTIME: u64 = 1_759_276_800;

#[derive(Clone, Debug)]
pub struct InstallHostConfig {
    /// Size of `/models/tiny.safetensors` in bytes.
    pub model_size: u64,
    /// Caps each connection fetching the model at this many bytes per second (to stop an installer mid-download).
    pub model_rate: Option<u64>,
}

impl Default for InstallHostConfig {
    fn default() -> Self {
        InstallHostConfig {
            model_size: 3 << 20,
            model_rate: None,
        }
    }
}

/// What an installer fetches, on `127.0.0.1`. Dropping it closes the port.
#[derive(Debug)]
pub struct InstallHost {
    host: FileHost,
    manifest: String,
    archive_sha256: String,
    archive_size: u64,
    model_sha256: String,
    model_size: u64,
}

impl InstallHost {
    /// Starts on a free port. Panics only if the OS has no free loopback port.
    pub async fn start(config: InstallHostConfig) -> InstallHost {
        InstallHost::start_on(0, config)
            .await
            .unwrap_or_else(|e| panic!("install host: cannot bind 127.0.0.1:0: {e}"))
    }

    pub async fn start_on(port: u16, config: InstallHostConfig) -> std::io::Result<InstallHost> {
        let host = FileHost::start_on(port).await?;
        let url = host.url();

        let archive = comfyui_archive();
        let archive_sha256 = sha256_hex(&archive);
        let archive_size = archive.len() as u64;
        host.add(ARCHIVE_PATH, HostedFile::bytes(archive));

        let wheel = torch_wheel();
        let wheel_sha256 = sha256_hex(&wheel);
        let html = |body: String| HostedFile::bytes(body).with_content_type("text/html");
        host.add("/simple/", html(simple_root()));
        host.add("/simple/torch/", html(simple_torch(&wheel_sha256)));
        // pip may send the `+` encoded or not.
        host.add(WHEEL_PATH, HostedFile::bytes(wheel.clone()));
        host.add(&WHEEL_PATH.replace("%2B", "+"), HostedFile::bytes(wheel));

        let model =
            HostedFile::generated(config.model_size, MODEL_SEED).with_rate(config.model_rate);
        let model_sha256 = model.content.sha256();
        host.add(MODEL_PATH, model);

        let manifest = manifest_json(
            &url,
            &archive_sha256,
            archive_size,
            &model_sha256,
            config.model_size,
        );
        host.add(
            MANIFEST_PATH,
            HostedFile::bytes(manifest.clone()).with_content_type("application/json"),
        );
        Ok(InstallHost {
            host,
            manifest,
            archive_sha256,
            archive_size,
            model_sha256,
            model_size: config.model_size,
        })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        self.host.url()
    }

    pub fn manifest_url(&self) -> String {
        format!("{}{MANIFEST_PATH}", self.url())
    }

    /// The manifest it serves.
    pub fn manifest_json(&self) -> String {
        self.manifest.clone()
    }

    /// `<url>/simple`, the package index (torch and requirements).
    pub fn index_url(&self) -> String {
        format!("{}/simple", self.url())
    }

    pub fn archive_sha256(&self) -> &str {
        &self.archive_sha256
    }

    pub fn archive_size(&self) -> u64 {
        self.archive_size
    }

    pub fn model_sha256(&self) -> &str {
        &self.model_sha256
    }

    pub fn model_size(&self) -> u64 {
        self.model_size
    }

    /// How many GET requests asked for `path` (e.g. [`ARCHIVE_PATH`], [`MODEL_PATH`]), whatever the answer; a
    /// resumed download counts once per request.
    pub fn fetches(&self, path: &str) -> usize {
        self.host
            .requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path_only() == path)
            .count()
    }

    /// The file host underneath, for faults (failures, dropped connections, throttling) and the request log.
    pub fn files(&self) -> &FileHost {
        &self.host
    }

    pub async fn shutdown(self) {
        self.host.shutdown().await;
    }
}

/// The manifest in ComfyFleet's format (format 1) for a host at `url`.
fn manifest_json(
    url: &str,
    archive_sha256: &str,
    archive_size: u64,
    model_sha256: &str,
    model_size: u64,
) -> String {
    let index = format!("{url}/simple");
    let manifest = serde_json::json!({
        "version": 1,
        "notes": "Served by comfyfleet-testkit's install host: a fake ComfyUI, a fake torch wheel and a generated model, all on loopback.",
        "comfyui": {
            "version": COMFYUI_VERSION,
            "url": format!("{url}{ARCHIVE_PATH}"),
            "sha256": archive_sha256,
            "size": archive_size,
            "strip_prefix": ARCHIVE_TOP,
        },
        "python": "3.11",
        "package_index": index,
        "uv": {"version": "0.8.0", "archives": {}},
        "torch": {
            "packages": ["torch"],
            "variants": {
                "cpu": {"index_url": index, "install_size": 1_000_000},
                "cuda128": {"index_url": index, "min_cuda": "12.8", "install_size": 1_000_000},
            },
        },
        "packs": [{
            "id": "tiny",
            "name": "Tiny test model",
            "description": "A few MiB of generated bytes named like a checkpoint.",
            "files": [{
                "url": format!("{url}{MODEL_PATH}"),
                "file_name": MODEL_FILE,
                "folder": "checkpoints",
                "size": model_size,
                "sha256": model_sha256,
                "gated": false,
            }],
        }],
    });
    serde_json::to_string_pretty(&manifest).expect("a JSON value serialises")
}

/// The fake ComfyUI as a `.tar.gz` under [`ARCHIVE_TOP`], as GitHub's source archives are laid out: the top folder
/// and its subfolders as entries (0755), files 0644. The same bytes every time.
pub fn comfyui_archive() -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let mut dirs: Vec<String> = vec![ARCHIVE_TOP.to_string()];
    for (path, _) in FAKE_COMFYUI {
        for (slash, _) in path.match_indices('/') {
            let dir = format!("{ARCHIVE_TOP}{}", &path[..=slash]);
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
    }
    for dir in &dirs {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o755);
        header.set_mtime(MTIME);
        header.set_size(0);
        tar.append_data(&mut header, dir, std::io::empty())
            .expect("a tar entry in memory");
    }
    for (path, bytes) in FAKE_COMFYUI {
        let mut header = tar::Header::new_ustar();
        header.set_mode(0o644);
        header.set_mtime(MTIME);
        header.set_size(bytes.len() as u64);
        tar.append_data(&mut header, format!("{ARCHIVE_TOP}{path}"), bytes)
            .expect("a tar entry in memory");
    }
    tar.into_inner()
        .and_then(|gz| gz.finish())
        .expect("gzip in memory")
}

/// A valid wheel of a `torch` package that only has a version: `torch/__init__.py` and its `.dist-info` (METADATA,
/// WHEEL, RECORD with each file's urlsafe-base64 SHA-256 and size).
pub fn torch_wheel() -> Vec<u8> {
    let dist_info = format!("torch-{TORCH_VERSION}.dist-info");
    let files: Vec<(String, String)> = vec![
        (
            "torch/__init__.py".into(),
            format!("\"\"\"A stand-in for PyTorch from ComfyFleet's testkit: it only has a version.\"\"\"\n\n__version__ = \"{TORCH_VERSION}\"\n"),
        ),
        (
            format!("{dist_info}/METADATA"),
            format!("Metadata-Version: 2.1\nName: torch\nVersion: {TORCH_VERSION}\nSummary: A stand-in for PyTorch for installer tests\n"),
        ),
        (
            format!("{dist_info}/WHEEL"),
            "Wheel-Version: 1.0\nGenerator: comfyfleet-testkit\nRoot-Is-Purelib: true\nTag: py3-none-any\n".into(),
        ),
    ];
    let mut record = String::new();
    for (path, text) in &files {
        let digest = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(text));
        record.push_str(&format!("{path},sha256={digest},{}\n", text.len()));
    }
    record.push_str(&format!("{dist_info}/RECORD,,\n"));

    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o644);
    let record_path = format!("{dist_info}/RECORD");
    for (path, text) in files.iter().chain([&(record_path, record)]) {
        zip.start_file(path.as_str(), options)
            .and_then(|()| zip.write_all(text.as_bytes()).map_err(Into::into))
            .expect("a zip entry in memory");
    }
    zip.finish().expect("a zip in memory").into_inner()
}

fn simple_root() -> String {
    "<!DOCTYPE html>\n<html><body>\n<a href=\"/simple/torch/\">torch</a>\n</body></html>\n".into()
}

fn simple_torch(wheel_sha256: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html><body>\n<h1>Links for torch</h1>\n<a href=\"{WHEEL_PATH}#sha256={wheel_sha256}\">{WHEEL_NAME}</a><br/>\n</body></html>\n"
    )
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
