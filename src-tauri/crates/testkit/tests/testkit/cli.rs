//! The `comfyfleet-testkit` binary, as shell scripts use it.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::get;

const BIN: &str = env!("CARGO_BIN_EXE_comfyfleet-testkit");

async fn lines_until(child: &mut Child, last: impl Fn(&str) -> bool) -> Vec<String> {
    let stdout = child.stdout.as_mut().expect("piped stdout");
    let mut reader = BufReader::new(stdout).lines();
    let mut lines = Vec::new();
    let read = async {
        while let Some(line) = reader.next_line().await.expect("readable stdout") {
            let done = last(&line);
            lines.push(line);
            if done {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .expect("the binary reported in time");
    lines
}

#[tokio::test]
async fn cli_comfyui_prints_listening_and_serves() {
    let mut child = Command::new(BIN)
        .args([
            "comfyui",
            "--port",
            "0",
            "--gpu-name",
            "NVIDIA GeForce RTX 4090",
            "--vram-total",
            "25757220864",
        ])
        .args(["--queue-pending", "3", "--version", "0.3.65"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("started");
    let lines = lines_until(&mut child, |l| l.starts_with("LISTENING ")).await;
    let url = lines
        .last()
        .and_then(|l| l.strip_prefix("LISTENING "))
        .expect("LISTENING line")
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let stats = get(&format!("{url}/system_stats")).await.2;
    assert!(
        stats.contains(r#""comfyui_version": "0.3.65""#) && stats.contains("RTX 4090"),
        "{stats}"
    );
    assert_eq!(
        get(&format!("{url}/prompt")).await.2,
        r#"{"exec_info": {"queue_remaining": 3}}"#
    );
    child.kill().await.expect("killed");
}

#[tokio::test]
async fn cli_fleet_prints_one_line_per_server_then_ready_and_exits_when_stdin_closes() {
    let mut child = Command::new(BIN)
        .args(["fleet", "--count", "3", "--hang", "1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("started");
    let lines = lines_until(&mut child, |l| l == "READY").await;
    assert_eq!(lines.len(), 4, "{lines:?}");
    let servers: Vec<serde_json::Value> = lines[..3]
        .iter()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(servers[0]["name"], "bench-01");
    assert_eq!(servers[0]["fault"], "hang");
    assert_eq!(servers[2]["name"], "bench-03");
    assert_eq!(servers[2]["fault"], "none");
    assert!(
        lines[0].starts_with(r#"{"name":"bench-01","url":"http://127.0.0.1:"#),
        "{}",
        lines[0]
    );
    let url = servers[2]["url"].as_str().expect("url");
    assert_eq!(get(&format!("{url}/queue")).await.0, 200);

    drop(child.stdin.take());
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .expect("exited")
        .expect("status");
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn cli_install_host_prints_the_manifest_url_then_listening_and_serves_it() {
    let mut child = Command::new(BIN)
        .args([
            "install-host",
            "--port",
            "0",
            "--model-size",
            "64KiB",
            "--model-rate",
            "10M",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("started");
    let lines = lines_until(&mut child, |l| l.starts_with("LISTENING ")).await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    let url = lines[1].strip_prefix("LISTENING ").expect("LISTENING line");
    assert_eq!(lines[0], format!("MANIFEST {url}/manifest.json"));
    let (status, _, body) = get(&format!("{url}/manifest.json")).await;
    assert_eq!(status, 200);
    let manifest: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(manifest["packs"][0]["files"][0]["size"], 65_536);
    assert_eq!(
        manifest["comfyui"]["url"],
        format!("{url}/comfyui.tar.gz").as_str()
    );
    assert_eq!(get(&format!("{url}/simple/torch/")).await.0, 200);
    child.kill().await.expect("killed");
}

#[tokio::test]
async fn cli_runpod_prints_listening_and_serves_its_endpoints() {
    let mut child = Command::new(BIN)
        .args([
            "runpod",
            "--key",
            "k1",
            "--endpoint",
            "ep-a",
            "--endpoint",
            "ep-b",
        ])
        .args(["--cold-start-ms", "10", "--exec-ms", "10"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("started");
    let lines = lines_until(&mut child, |l| l.starts_with("LISTENING ")).await;
    let url = lines
        .last()
        .and_then(|l| l.strip_prefix("LISTENING "))
        .expect("LISTENING line")
        .to_string();
    let health = |ep: &'static str, key: &'static str| {
        let url = url.clone();
        async move {
            super::http()
                .get(format!("{url}/v2/{ep}/health"))
                .bearer_auth(key)
                .send()
                .await
                .expect("answered")
                .status()
                .as_u16()
        }
    };
    assert_eq!(health("ep-a", "k1").await, 200);
    assert_eq!(health("ep-b", "k1").await, 200);
    assert_eq!(health("ep-c", "k1").await, 404);
    assert_eq!(health("ep-a", "k2").await, 401);
    child.kill().await.expect("killed");
}
