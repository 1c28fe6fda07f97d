//! The Python fake ComfyUI (`assets/fake-comfyui`) run from the unpacked install archive, as the installer starts it:
//! `python3 main.py --listen 127.0.0.1 --port P --cpu`, with a fake `torch` importable.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use comfyfleet_testkit::installhost::{self, ARCHIVE_TOP};
use comfyfleet_testkit::stable_port;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;

use super::installhost::{isolated, unpack};
use super::{decode_png, get, http};

/// An unpacked archive and a folder holding a fake `torch` package.
struct Install {
    _dir: tempfile::TempDir,
    comfyui: PathBuf,
    torch: PathBuf,
}

fn install() -> Install {
    let dir = tempfile::tempdir().unwrap();
    unpack(&installhost::comfyui_archive(), dir.path());
    let torch = dir.path().join("site");
    std::fs::create_dir_all(torch.join("torch")).unwrap();
    std::fs::write(
        torch.join("torch/__init__.py"),
        "__version__ = \"2.9.0+cpu\"\n",
    )
    .unwrap();
    Install {
        comfyui: dir.path().join(ARCHIVE_TOP),
        torch,
        _dir: dir,
    }
}

fn command(comfyui: &Path, torch: Option<&Path>, port: u16, extra: &[&str]) -> Command {
    let mut command = Command::new("python3");
    isolated(&mut command)
        .arg("main.py")
        .args([
            "--listen",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--cpu",
        ])
        .args(extra)
        .current_dir(comfyui)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(torch) = torch {
        command.env("PYTHONPATH", torch);
    }
    command
}

/// Starts the fake and waits for its "To see the GUI" line; returns the child, its URL and its stdout so far.
async fn start(install: &Install, extra: &[&str]) -> (Child, String, Vec<String>) {
    let port = stable_port();
    let mut child = command(&install.comfyui, Some(&install.torch), port, extra)
        .spawn()
        .expect("python3 starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut seen = Vec::new();
    let read = async {
        while let Some(line) = lines.next_line().await.expect("stdout readable") {
            let done = line.starts_with("To see the GUI go to: ");
            seen.push(line);
            if done {
                return;
            }
        }
        panic!("the fake ComfyUI exited early: {seen:?}");
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("the fake ComfyUI started in time");
    // Keep reading stdout so the process never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, format!("http://127.0.0.1:{port}"), seen)
}

async fn next_json(socket: &mut super::Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("a frame in time")
            .expect("socket open")
            .expect("no socket error");
        match message {
            Message::Text(text) => return serde_json::from_str(text.as_str()).expect("JSON"),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

fn workflow(prefix: &str) -> Value {
    json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 32, "batch_size": 1, "color": 0x3366cc}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": prefix}},
    })
}

#[tokio::test]
async fn fake_comfyui_runs_emptyimage_saveimage_as_the_client_follows_it() {
    let install = install();
    let (mut child, url, stdout) = start(&install, &[]).await;
    assert!(
        stdout.iter().any(|l| l == "pytorch version: 2.9.0+cpu"),
        "{stdout:?}"
    );
    assert!(
        stdout.iter().any(|l| l.starts_with("Total VRAM ")),
        "{stdout:?}"
    );

    let (status, content_type, body) = get(&format!("{url}/system_stats")).await;
    assert_eq!((status, content_type.as_deref()), (200, Some(super::JSON)));
    let stats: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(stats["system"]["comfyui_version"], "0.3.64");
    assert_eq!(stats["system"]["pytorch_version"], "2.9.0+cpu");
    assert_eq!(stats["devices"][0]["name"], "cpu");
    assert_eq!(stats["devices"][0]["type"], "cpu");
    assert!(stats["devices"][0]["index"].is_null());
    assert!(stats["devices"][0]["vram_total"].as_u64().unwrap() > 0);

    let ws_url = format!("{}/ws?clientId=installer-check", url.replace("http", "ws"));
    let (mut socket, _) = tokio_tungstenite::connect_async(ws_url)
        .await
        .expect("WebSocket");
    let first = next_json(&mut socket).await;
    assert_eq!(first["type"], "status");
    assert_eq!(first["data"]["sid"], "installer-check");
    socket
        .send(Message::Ping(b"hi".to_vec().into()))
        .await
        .unwrap();

    let answer: Value = http()
        .post(format!("{url}/prompt"))
        .json(&json!({"prompt": workflow("check"), "client_id": "installer-check", "prompt_id": "p-1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        answer,
        json!({"prompt_id": "p-1", "number": 0, "node_errors": {}})
    );

    let mut kinds = Vec::new();
    let mut image = Value::Null;
    loop {
        let message = next_json(&mut socket).await;
        let kind = message["type"].as_str().unwrap().to_string();
        if kind == "executed" {
            assert_eq!(message["data"]["node"], "2");
            image = message["data"]["output"]["images"][0].clone();
        }
        if kind != "status" && kind != "progress_state" {
            assert_eq!(message["data"]["prompt_id"], "p-1", "{message}");
        }
        let done = kind == "executing" && message["data"]["node"].is_null();
        kinds.push(kind);
        if done {
            break;
        }
    }
    assert_eq!(
        kinds,
        [
            "status",
            "status",
            "execution_start",
            "execution_cached",
            "progress_state",
            "executing",
            "progress_state",
            "progress_state",
            "executing",
            "executed",
            "progress_state",
            "execution_success",
            "status",
            "executing"
        ]
    );
    assert_eq!(
        image,
        json!({"filename": "check_00001_.png", "subfolder": "", "type": "output"})
    );

    let (_, _, body) = get(&format!("{url}/history/p-1")).await;
    let history: Value = serde_json::from_str(&body).unwrap();
    let entry = &history["p-1"];
    assert_eq!(entry["outputs"]["2"]["images"][0], image);
    assert_eq!(entry["status"]["status_str"], "success");
    assert_eq!(entry["status"]["completed"], true);
    assert_eq!(entry["prompt"][4], json!(["2"]));

    let response = http()
        .get(format!("{url}/view"))
        .query(&[
            ("filename", "check_00001_.png"),
            ("subfolder", ""),
            ("type", "output"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    let (width, height, pixels) = decode_png(&response.bytes().await.unwrap());
    assert_eq!((width, height), (64, 32));
    assert!(pixels.chunks(3).all(|p| p == [0x33, 0x66, 0xcc]));
    assert!(install.comfyui.join("output/check_00001_.png").is_file());

    // The counter goes on, as ComfyUI's does.
    http()
        .post(format!("{url}/prompt"))
        .json(&json!({"prompt": workflow("check"), "client_id": "installer-check", "prompt_id": "p-2"}))
        .send()
        .await
        .unwrap();
    let mut executed = Value::Null;
    while executed.is_null() {
        let message = next_json(&mut socket).await;
        if message["type"] == "executed" {
            executed = message["data"]["output"]["images"][0]["filename"].clone();
        }
    }
    assert_eq!(executed, "check_00002_.png");
    // The history entry is written as the prompt finishes, a moment after its last node's output is sent.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let newest = loop {
        let (_, _, body) = get(&format!("{url}/history?max_items=1")).await;
        let last: Value = serde_json::from_str(&body).unwrap();
        let keys: Vec<String> = last.as_object().unwrap().keys().cloned().collect();
        if keys == ["p-2"] || std::time::Instant::now() > deadline {
            break keys;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(newest, ["p-2"]);

    socket.close(None).await.unwrap();
    child.kill().await.unwrap();
}

#[tokio::test]
async fn fake_comfyui_lists_checkpoints_of_its_models_folder_and_extra_model_paths() {
    let install = install();
    let shared = install.comfyui.parent().unwrap().join("shared");
    std::fs::create_dir_all(shared.join("models/checkpoints/sub")).unwrap();
    std::fs::write(shared.join("models/checkpoints/sub/b.safetensors"), b"b").unwrap();
    std::fs::write(shared.join("models/checkpoints/notes.txt"), b"not a model").unwrap();
    std::fs::write(
        install.comfyui.join("models/checkpoints/a.safetensors"),
        b"a",
    )
    .unwrap();
    let yaml = install
        .comfyui
        .parent()
        .unwrap()
        .join("extra_model_paths.yaml");
    std::fs::write(
        &yaml,
        format!(
            "comfyfleet:\n    base_path: {}\n    checkpoints: models/checkpoints\n",
            shared.display()
        ),
    )
    .unwrap();
    let (mut child, url, stdout) = start(
        &install,
        &["--extra-model-paths-config", yaml.to_str().unwrap()],
    )
    .await;
    assert!(
        stdout
            .iter()
            .any(|l| l.starts_with("Adding extra search path checkpoints")),
        "{stdout:?}"
    );

    let (_, _, body) = get(&format!("{url}/object_info/CheckpointLoaderSimple")).await;
    let info: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0],
        json!(["a.safetensors", "sub/b.safetensors"])
    );
    assert_eq!(
        get(&format!("{url}/models/checkpoints")).await.2,
        r#"["a.safetensors", "sub/b.safetensors"]"#
    );
    assert_eq!(get(&format!("{url}/models/nope")).await.0, 404);
    let (_, _, all) = get(&format!("{url}/object_info")).await;
    let all: Value = serde_json::from_str(&all).unwrap();
    for node in ["EmptyImage", "SaveImage", "CheckpointLoaderSimple"] {
        assert_eq!(all[node]["name"], node);
    }
    assert_eq!(get(&format!("{url}/object_info/NoSuchNode")).await.2, "{}");

    let unknown = json!({"prompt": {"1": {"class_type": "NoSuchNode", "inputs": {}}}});
    let response = http()
        .post(format!("{url}/prompt"))
        .json(&unknown)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"error": {"type": "invalid_prompt", "message": "Cannot execute because node NoSuchNode does not exist.", "details": "Node ID '#1'", "extra_info": {}}, "node_errors": {}})
    );
    let missing = json!({"prompt": {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "gone.safetensors"}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "x"}},
        "3": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
    }});
    let response = http()
        .post(format!("{url}/prompt"))
        .json(&missing)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "prompt_outputs_failed_validation");
    assert_eq!(
        body["node_errors"]["1"]["class_type"],
        "CheckpointLoaderSimple"
    );
    child.kill().await.unwrap();
}

#[tokio::test]
async fn fake_comfyui_without_torch_exits_with_the_import_error() {
    let install = install();
    let output = command(&install.comfyui, None, stable_port(), &[])
        .output()
        .await
        .expect("python3 runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("No module named 'torch'"), "{stderr}");
}

#[tokio::test]
async fn fake_comfyui_exits_non_zero_when_its_port_is_taken() {
    let install = install();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let output = tokio::time::timeout(
        Duration::from_secs(10),
        command(&install.comfyui, Some(&install.torch), port, &[]).output(),
    )
    .await
    .expect("exited in time")
    .expect("python3 runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Address already in use"), "{stderr}");
}
