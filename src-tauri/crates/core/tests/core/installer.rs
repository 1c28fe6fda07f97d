//! The installer end to end against testkit's install host: a manifest on loopback, a ComfyUI-compatible server
//! program as the "ComfyUI archive", a package index with a tiny torch wheel, a model file with its checksum. Real
//! venv, real pip, a real server process under the supervisor.

use std::path::Path;
use std::time::Duration;

use comfyfleet_core::downloads::Downloads;
use comfyfleet_core::installer::extract::{extract, ExtractError};
use comfyfleet_core::installer::run::{InstallEnv, Installer, Record};
use comfyfleet_core::installer::status::{InstallRequest, InstallState, LocalState, StepState};
use comfyfleet_core::local::LocalServer;
use comfyfleet_testkit::installhost::{ARCHIVE_PATH, MODEL_PATH};
use comfyfleet_testkit::{stable_port, InstallHost, InstallHostConfig};

use crate::support::{fleet, TestFleet};

fn installer(t: &TestFleet) -> (Installer, LocalServer) {
    let local = LocalServer::with_start_timeout(
        t.fleet.store.clone(),
        t.fleet.home.clone(),
        Duration::from_secs(60),
    );
    let downloads = Downloads::new(t.fleet.store.clone(), Default::default());
    (
        Installer::new(InstallEnv::new(&t.fleet, local.clone(), downloads)),
        local,
    )
}

/// Stops the local server even when an assertion fails first.
struct StopOnDrop(LocalServer);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = self.0.status().pid {
            unsafe {
                libc::kill(-(pid as i32), libc::SIGKILL);
            }
        }
    }
}

fn states(status: &comfyfleet_core::installer::status::InstallStatus) -> Vec<(String, StepState)> {
    status
        .steps
        .iter()
        .map(|s| (s.id.clone(), s.state))
        .collect()
}

async fn until(what: &str, secs: u64, mut f: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installer_installs_starts_verifies_registers_and_a_rerun_changes_nothing() {
    let host = InstallHost::start(InstallHostConfig::default()).await;
    let t = fleet();
    let (inst, local) = installer(&t);
    let _guard = StopOnDrop(local.clone());
    let path = t.dir.path().join("ComfyUI");
    let port = stable_port();
    let req = InstallRequest {
        install_path: path.display().to_string(),
        packs: vec!["tiny".into()],
        manifest: Some(host.manifest_url()),
        port: Some(port),
        ..Default::default()
    };

    let done = inst.install(req.clone()).await.unwrap();
    assert_eq!(done.state, InstallState::Done, "{:?}", done.error);
    assert_eq!(
        states(&done),
        [
            ("comfyui", StepState::Done),
            ("python", StepState::Done),
            ("torch", StepState::Done),
            ("requirements", StepState::Done),
            ("models:tiny", StepState::Done),
            ("start", StepState::Done),
            ("verify", StepState::Done),
            ("register", StepState::Done),
        ]
        .map(|(a, b)| (a.to_string(), b))
    );
    // What the steps made: ComfyUI unpacked, torch in the venv, the model verified, a test image, the server.
    assert!(path.join("main.py").is_file());
    let model = path.join("models/checkpoints/tiny.safetensors");
    assert_eq!(
        comfyfleet_core::downloads::hash::sha256_file(&model).unwrap(),
        host.model_sha256()
    );
    assert!(path.join(".comfyfleet/check.png").is_file());
    let st = local.refresh().await;
    assert_eq!(st.state, LocalState::Running);
    let stats: serde_json::Value = reqwest::get(format!("http://127.0.0.1:{port}/system_stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["system"]["pytorch_version"], "2.9.0+cpu");
    assert_eq!(
        stats["system"]["argv"]
            .as_array()
            .map(|a| a.iter().any(|v| v == "--cpu")),
        Some(true),
        "no GPU here: ComfyUI runs with --cpu ({stats})"
    );
    let servers = t.fleet.servers.list().await.unwrap();
    assert_eq!(servers.len(), 1);
    let server = &servers[0];
    assert_eq!(
        (server.name.as_str(), server.url.clone(), server.active),
        ("Local", format!("http://127.0.0.1:{port}"), true)
    );
    assert!(server.has_tag("local"));
    assert_eq!(done.server_id.as_deref(), Some(server.id.as_str()));

    // Rerun after success: every step skipped, nothing fetched, the same server process and list.
    let record = std::fs::read(Record::path(&path)).unwrap();
    let (inst2, _) = installer(&t);
    let again = inst2.install(req).await.unwrap();
    assert_eq!(again.state, InstallState::Done, "{:?}", again.error);
    assert!(
        again.steps.iter().all(|s| s.state == StepState::Skipped),
        "{:?}",
        states(&again)
    );
    assert_eq!(
        (host.fetches(ARCHIVE_PATH), host.fetches(MODEL_PATH)),
        (1, 1)
    );
    assert_eq!(std::fs::read(Record::path(&path)).unwrap(), record);
    assert_eq!(local.refresh().await.pid, st.pid);
    assert_eq!(t.fleet.servers.list().await.unwrap(), servers);

    // The supervisor: a crash is noticed and ComfyUI restarted after a back-off.
    let pid = st.pid.unwrap();
    unsafe {
        libc::kill(pid as i32, libc::SIGKILL);
    }
    until("the crash to be noticed", 10, async || {
        local.status().state == LocalState::Crashed
    })
    .await;
    let crashed = local.status();
    assert_eq!(crashed.restarts, 1);
    assert!(
        crashed
            .last_error
            .as_ref()
            .unwrap()
            .message
            .contains("restarting"),
        "{crashed:?}"
    );
    until("the restart", 60, async || {
        local.status().state == LocalState::Running
    })
    .await;
    let restarted = local.status();
    assert_ne!(restarted.pid, Some(pid));
    assert!(local
        .logs(200)
        .unwrap()
        .text
        .contains("To see the GUI go to"));

    // App quit: ComfyUI keeps running when asked to, else it stops with the app.
    let new_pid = restarted.pid.unwrap();
    local.set_keep_running(true).await.unwrap();
    local.shutdown().await;
    assert!(comfyfleet_core::local::process_alive(new_pid));
    local.set_keep_running(false).await.unwrap();
    local.shutdown().await;
    assert!(!comfyfleet_core::local::process_alive(new_pid));
    assert_eq!(local.status().state, LocalState::Stopped);

    // Start and Stop by hand: the process is gone and the port free.
    let started = local.start().await.unwrap();
    assert_eq!(started.state, LocalState::Running);
    let stopped = local.stop().await.unwrap();
    assert_eq!(stopped.state, LocalState::Stopped);
    assert!(!comfyfleet_core::local::process_alive(started.pid.unwrap()));
    assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_server_explains_a_port_already_in_use() {
    let t = fleet();
    let local = LocalServer::new(t.fleet.store.clone(), t.fleet.home.clone());
    let install = t.dir.path().join("ComfyUI");
    // A venv python that exists (the port check comes after it).
    let bin = comfyfleet_core::local::venv_python(&install);
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink("/bin/true", &bin).unwrap();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    local
        .set_config(&comfyfleet_core::local::LocalConfig {
            install_path: install,
            port,
            cpu: true,
            keep_running: false,
        })
        .await
        .unwrap();
    let err = local.start().await.unwrap_err().to_string();
    assert!(
        err.contains(&format!("Port {port} is already used by another program")),
        "{err}"
    );
    assert_eq!(local.status().state, LocalState::Stopped);
    assert!(local.status().last_error.is_some());
}

/// A gzip tar with the given (path, kind) entries written raw (the tar crate refuses to build bad paths).
fn hostile_tar(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("evil.tar.gz");
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&path).unwrap(),
        flate2::Compression::fast(),
    );
    let mut b = tar::Builder::new(gz);
    let mut add = |name: &str, kind: tar::EntryType, link: Option<&str>, body: &[u8]| {
        let mut h = tar::Header::new_gnu();
        {
            let raw = h.as_old_mut();
            raw.name[..name.len()].copy_from_slice(name.as_bytes());
            if let Some(l) = link {
                raw.linkname[..l.len()].copy_from_slice(l.as_bytes());
            }
        }
        h.set_entry_type(kind);
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, body).unwrap();
    };
    add("pkg/", tar::EntryType::Directory, None, b"");
    add(
        "pkg/main.py",
        tar::EntryType::Regular,
        None,
        b"print('ok')\n",
    );
    add("pkg/../evil", tar::EntryType::Regular, None, b"outside\n");
    add(
        "/tmp/comfyfleet-absolute-evil",
        tar::EntryType::Regular,
        None,
        b"abs\n",
    );
    add("pkg/escape", tar::EntryType::Symlink, Some("../../.."), b"");
    add(
        "pkg/escape/through",
        tar::EntryType::Regular,
        None,
        b"via link\n",
    );
    b.into_inner().unwrap().finish().unwrap();
    path
}

#[test]
fn extract_refuses_parent_absolute_and_escaping_link_entries_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let archive = hostile_tar(dir.path());
    let dest = dir.path().join("install/ComfyUI");
    let err = extract(&archive, &dest, "pkg/").unwrap_err();
    assert!(matches!(err, ExtractError::Unsafe { .. }), "{err}");
    assert!(err.to_string().contains("evil"), "{err}");
    // Nothing at all was written: not the good file, not outside, not at the absolute path.
    assert!(!dest.exists());
    assert!(!dir.path().join("install/evil").exists());
    assert!(!Path::new("/tmp/comfyfleet-absolute-evil").exists());

    // Each bad entry alone is refused with its own reason.
    for (name, kind, link, why) in [
        ("pkg/../evil", tar::EntryType::Regular, None, ".."),
        (
            "/tmp/comfyfleet-absolute-evil",
            tar::EntryType::Regular,
            None,
            "absolute",
        ),
        (
            "pkg/escape",
            tar::EntryType::Symlink,
            Some("../../.."),
            "outside",
        ),
        (
            "pkg/abs-link",
            tar::EntryType::Symlink,
            Some("/etc"),
            "absolute",
        ),
    ] {
        let one = dir.path().join("one.tar.gz");
        let gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&one).unwrap(),
            flate2::Compression::fast(),
        );
        let mut b = tar::Builder::new(gz);
        let mut h = tar::Header::new_gnu();
        {
            let raw = h.as_old_mut();
            raw.name[..name.len()].copy_from_slice(name.as_bytes());
            if let Some(l) = link {
                raw.linkname[..l.len()].copy_from_slice(l.as_bytes());
            }
        }
        h.set_entry_type(kind);
        h.set_size(0);
        h.set_cksum();
        b.append(&h, &b""[..]).unwrap();
        b.into_inner().unwrap().finish().unwrap();
        let err = extract(&one, &dest, "pkg/").unwrap_err().to_string();
        assert!(err.contains(why), "{name}: {err}");
        assert!(!dest.exists());
    }

    // A clean archive with a link that stays inside unpacks.
    let good = dir.path().join("good.tar.gz");
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&good).unwrap(),
        flate2::Compression::fast(),
    );
    let mut b = tar::Builder::new(gz);
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o755);
    h.set_cksum();
    b.append_data(&mut h, "pkg/bin/run.sh", &b"hi\n"[..])
        .unwrap();
    let mut l = tar::Header::new_gnu();
    l.set_entry_type(tar::EntryType::Symlink);
    l.set_size(0);
    b.append_link(&mut l, "pkg/run", "bin/run.sh").unwrap();
    b.into_inner().unwrap().finish().unwrap();
    let out = extract(&good, &dest, "pkg/").unwrap();
    assert_eq!(out.files, 1);
    assert_eq!(std::fs::read(dest.join("run")).unwrap(), b"hi\n");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(dest.join("bin/run.sh"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o755
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installer_uses_a_shared_models_folder_repairs_a_damaged_model_and_uninstalls_keeping_it() {
    let host = InstallHost::start(InstallHostConfig::default()).await;
    let t = fleet();
    let (inst, local) = installer(&t);
    let _guard = StopOnDrop(local.clone());
    let path = t.dir.path().join("ComfyUI");
    let shared = t.dir.path().join("shared-models");
    std::fs::create_dir_all(&shared).unwrap();
    let port = stable_port();
    let req = InstallRequest {
        install_path: path.display().to_string(),
        packs: vec!["tiny".into()],
        models_dir: Some(shared.display().to_string()),
        manifest: Some(host.manifest_url()),
        port: Some(port),
        ..Default::default()
    };
    let done = inst.install(req.clone()).await.unwrap();
    assert_eq!(done.state, InstallState::Done, "{:?}", done.error);
    assert!(states(&done).contains(&("extra_model_paths".to_string(), StepState::Done)));
    // The model went to the shared folder (not copied into the install), and ComfyUI sees it there.
    let model = shared.join("checkpoints/tiny.safetensors");
    assert!(model.is_file());
    assert!(!path.join("models/checkpoints/tiny.safetensors").exists());
    let yaml = std::fs::read_to_string(path.join("extra_model_paths.yaml")).unwrap();
    assert!(
        yaml.contains(&format!("base_path: \"{}\"", shared.display())),
        "{yaml}"
    );
    let listed: Vec<String> = reqwest::get(format!("http://127.0.0.1:{port}/models/checkpoints"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed, ["tiny.safetensors"]);

    // Repair: a damaged model is caught by its checksum and fetched again; the rest is verified and kept.
    let mut bytes = std::fs::read(&model).unwrap();
    bytes[1000] ^= 0xff;
    std::fs::write(&model, &bytes).unwrap();
    inst.repair(req.clone()).unwrap();
    inst.wait().await;
    let repaired = inst.status();
    assert_eq!(repaired.state, InstallState::Done, "{:?}", repaired.error);
    let by_id = |id: &str| repaired.steps.iter().find(|s| s.id == id).unwrap().state;
    assert_eq!(by_id("models:tiny"), StepState::Done);
    assert_eq!(
        by_id("torch"),
        StepState::Skipped,
        "a working Python is kept"
    );
    assert_eq!(by_id("comfyui"), StepState::Skipped);
    assert_eq!(
        comfyfleet_core::downloads::hash::sha256_file(&model).unwrap(),
        host.model_sha256()
    );
    assert_eq!(host.fetches(MODEL_PATH), 2);

    // Uninstall: the server stops and leaves the list, the folder goes, the shared model stays.
    let pid = local.status().pid.unwrap();
    let gone = inst
        .uninstall(&path.display().to_string(), false)
        .await
        .unwrap();
    assert!(gone.server_removed);
    assert_eq!(gone.kept_models, [model.display().to_string()]);
    assert!(!path.exists());
    assert!(model.is_file());
    assert!(!comfyfleet_core::local::process_alive(pid));
    assert!(t.fleet.servers.list().await.unwrap().is_empty());
    assert_eq!(local.refresh().await.state, LocalState::NotInstalled);
    // A folder that is not an install is refused, and nothing is removed.
    let err = inst
        .uninstall(&shared.display().to_string(), true)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("not a ComfyUI installed by ComfyFleet"),
        "{err}"
    );
    assert!(model.is_file());
}
