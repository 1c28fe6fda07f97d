//! The install host as an installer sees it: the manifest's checksums match what is served, the archive unpacks to the
//! fake ComfyUI, pip installs the fake torch from the package index, the model download can be throttled.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use comfyfleet_testkit::installhost::{self, ARCHIVE_PATH, MODEL_PATH};
use comfyfleet_testkit::{InstallHost, InstallHostConfig};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::process::Command;

use super::http;

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub async fn fetch(url: &str) -> Vec<u8> {
    let response = http().get(url).send().await.expect("answered");
    assert_eq!(response.status(), 200, "{url}");
    response.bytes().await.expect("body").to_vec()
}

/// Unpacks a `.tar.gz` into `dir` with the `tar` crate; returns each entry's path and mode.
pub fn unpack(archive: &[u8], dir: &Path) -> Vec<(String, u32)> {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    let mut entries = Vec::new();
    for entry in tar.entries().expect("a tar") {
        let mut entry = entry.expect("an entry");
        let path = entry.path().expect("a path").to_string_lossy().into_owned();
        entries.push((path, entry.header().mode().expect("a mode")));
        entry.unpack_in(dir).expect("unpacked");
    }
    entries
}

/// The commands below must not find anything but the host: no proxies, no pip configuration of this machine.
pub fn isolated(command: &mut Command) -> &mut Command {
    for (name, _) in std::env::vars() {
        if name.starts_with("PIP_")
            || name.starts_with("PYTHON")
            || name.to_lowercase().ends_with("_proxy")
        {
            command.env_remove(name);
        }
    }
    command
        .env("PIP_CONFIG_FILE", "/dev/null")
        .env("NO_PROXY", "127.0.0.1")
        .stdin(Stdio::null())
        .kill_on_drop(true)
}

#[tokio::test]
async fn installhost_manifest_checksums_and_sizes_match_the_served_files() {
    let host = InstallHost::start(InstallHostConfig {
        model_size: 100_000,
        model_rate: None,
    })
    .await;
    let served = fetch(&host.manifest_url()).await;
    assert_eq!(
        String::from_utf8(served.clone()).unwrap(),
        host.manifest_json()
    );
    let manifest: Value = serde_json::from_slice(&served).expect("JSON");
    assert_eq!(manifest["version"], 1);
    assert_eq!(manifest["uv"]["archives"], serde_json::json!({}));
    let index = format!("{}/simple", host.url());
    assert_eq!(manifest["package_index"], index.as_str());
    for variant in ["cpu", "cuda128"] {
        assert_eq!(
            manifest["torch"]["variants"][variant]["index_url"],
            index.as_str()
        );
    }

    let comfyui = &manifest["comfyui"];
    assert_eq!(comfyui["strip_prefix"], "ComfyUI-test/");
    let archive = fetch(comfyui["url"].as_str().unwrap()).await;
    assert_eq!(comfyui["sha256"], sha256_hex(&archive).as_str());
    assert_eq!(comfyui["sha256"], host.archive_sha256());
    assert_eq!(comfyui["size"], archive.len() as u64);

    let file = &manifest["packs"][0]["files"][0];
    assert_eq!(file["folder"], "checkpoints");
    let model = fetch(file["url"].as_str().unwrap()).await;
    assert_eq!(model.len(), 100_000);
    assert_eq!(file["size"], 100_000);
    assert_eq!(file["sha256"], sha256_hex(&model).as_str());
    assert_eq!(file["sha256"], host.model_sha256());

    assert_eq!(host.fetches(ARCHIVE_PATH), 1);
    assert_eq!(host.fetches(MODEL_PATH), 1);
    fetch(&format!("{}{MODEL_PATH}", host.url())).await;
    assert_eq!(host.fetches(MODEL_PATH), 2);
}

#[tokio::test]
async fn installhost_archive_unpacks_to_the_fake_comfyui_under_one_top_folder() {
    let host = InstallHost::start(InstallHostConfig::default()).await;
    let archive = fetch(&format!("{}{ARCHIVE_PATH}", host.url())).await;
    assert_eq!(
        archive,
        installhost::comfyui_archive(),
        "the same bytes every time"
    );
    let dir = tempfile::tempdir().unwrap();
    let entries = unpack(&archive, dir.path());
    assert!(
        entries.iter().all(|(p, _)| p.starts_with("ComfyUI-test/")),
        "{entries:?}"
    );
    for file in ["main.py", "requirements.txt"] {
        let path = format!("ComfyUI-test/{file}");
        let mode = entries.iter().find(|(p, _)| *p == path).map(|e| e.1);
        assert_eq!(mode, Some(0o644), "{path} in {entries:?}");
    }
    let top = dir.path().join("ComfyUI-test");
    assert_eq!(
        std::fs::read(top.join("main.py")).unwrap(),
        include_bytes!("../../assets/fake-comfyui/main.py")
    );
    let requirements = std::fs::read_to_string(top.join("requirements.txt")).unwrap();
    assert!(
        requirements.lines().all(|l| l.starts_with('#')),
        "only comments: {requirements}"
    );
    assert!(top.join("models/checkpoints").is_dir());
}

#[tokio::test]
async fn installhost_caps_the_model_download_rate() {
    let host = InstallHost::start(InstallHostConfig {
        model_size: 60_000,
        model_rate: Some(60_000),
    })
    .await;
    let started = Instant::now();
    let model = fetch(&format!("{}{MODEL_PATH}", host.url())).await;
    let took = started.elapsed();
    assert_eq!(sha256_hex(&model), host.model_sha256());
    assert!(
        took >= Duration::from_millis(800),
        "60 kB at 60 kB/s took {took:?}"
    );
    // Other files are not throttled.
    let started = Instant::now();
    fetch(&host.manifest_url()).await;
    assert!(started.elapsed() < Duration::from_millis(500));
}

#[tokio::test]
async fn installhost_index_lets_pip_install_the_fake_torch_into_a_venv() {
    let host = InstallHost::start(InstallHostConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let venv = dir.path().join("venv");
    let status = isolated(Command::new("python3").arg("-m").arg("venv").arg(&venv))
        .status()
        .await
        .expect("python3 runs");
    assert!(status.success(), "python3 -m venv failed");
    let python = venv.join("bin/python");
    let output = isolated(Command::new(&python).args([
        "-m",
        "pip",
        "install",
        "--no-cache-dir",
        "--disable-pip-version-check",
        "--index-url",
        &host.index_url(),
        "torch",
    ]))
    .output()
    .await
    .expect("pip runs");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "pip failed:\n{log}");
    assert!(
        log.contains("Successfully installed torch-2.9.0+cpu"),
        "{log}"
    );
    assert_eq!(host.fetches("/simple/torch/"), 1);

    let output =
        isolated(Command::new(&python).args(["-c", "import torch; print(torch.__version__)"]))
            .output()
            .await
            .expect("python runs");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "2.9.0+cpu\n");
}

#[test]
fn installhost_wheel_record_lists_every_file_with_its_hash_and_size() {
    use base64::Engine;
    use std::io::Read;
    let mut zip =
        zip::ZipArchive::new(std::io::Cursor::new(installhost::torch_wheel())).expect("a zip");
    let mut files = std::collections::BTreeMap::new();
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).unwrap();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        files.insert(entry.name().expect("a UTF-8 name").to_string(), bytes);
    }
    let record = String::from_utf8(files["torch-2.9.0+cpu.dist-info/RECORD"].clone()).unwrap();
    let mut listed: Vec<&str> = Vec::new();
    for line in record.lines() {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), 3, "{line}");
        listed.push(fields[0]);
        if fields[0].ends_with("/RECORD") {
            assert_eq!(&fields[1..], ["", ""]);
            continue;
        }
        let bytes = &files[fields[0]];
        let digest = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(bytes));
        assert_eq!(fields[1], format!("sha256={digest}"), "{line}");
        assert_eq!(fields[2], bytes.len().to_string(), "{line}");
    }
    let mut names: Vec<&str> = files.keys().map(String::as_str).collect();
    listed.sort();
    names.sort();
    assert_eq!(listed, names);
    let init = String::from_utf8(files["torch/__init__.py"].clone()).unwrap();
    assert!(init.contains(r#"__version__ = "2.9.0+cpu""#), "{init}");
    let wheel = String::from_utf8(files["torch-2.9.0+cpu.dist-info/WHEEL"].clone()).unwrap();
    assert!(wheel.contains("Tag: py3-none-any") && wheel.contains("Root-Is-Purelib: true"));
}
