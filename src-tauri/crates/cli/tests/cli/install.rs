//! `comfyfleet install` and `comfyfleet local` as a user runs them, against testkit's install host on loopback:
//! killed with SIGKILL in the middle and run again, it goes on without redoing finished steps.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use comfyfleet_testkit::installhost::{ARCHIVE_PATH, MODEL_PATH};
use comfyfleet_testkit::{stable_port, InstallHost, InstallHostConfig};

use crate::{stderr, Cli};

/// Stops the local server the test started, even when an assertion fails first.
struct StopLocal<'a>(&'a Cli);

impl Drop for StopLocal<'_> {
    fn drop(&mut self) {
        let _ = self.0.run(&["local", "stop"], None);
    }
}

fn step_states(lines: &[serde_json::Value]) -> Vec<(String, String)> {
    let mut last: Vec<(String, String)> = Vec::new();
    for l in lines {
        if let Some(s) = l.get("step") {
            let id = s["id"].as_str().unwrap().to_string();
            let state = s["state"].as_str().unwrap().to_string();
            match last.iter_mut().find(|(i, _)| *i == id) {
                Some(e) => e.1 = state,
                None => last.push((id, state)),
            }
        }
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_install_killed_mid_install_continues_without_redoing_finished_steps() {
    let host = InstallHost::start(InstallHostConfig {
        model_size: 4 << 20,
        model_rate: Some(1_000_000),
    })
    .await;
    let cli = Cli::new();
    let _stop = StopLocal(&cli);
    let path = cli.home.path().join("ComfyUI");
    let port = stable_port().to_string();
    let manifest = host.manifest_url();
    let args = [
        "install",
        "--path",
        path.to_str().unwrap(),
        "--packs",
        "tiny",
        "--manifest",
        &manifest,
        "--port",
        &port,
        "--yes",
        "--json",
    ];

    // First run: killed while the model downloads (after ComfyUI, Python, torch and requirements are done).
    let mut child = cli
        .command(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let part = path.join("models/checkpoints/tiny.safetensors.part");
    let deadline = Instant::now() + Duration::from_secs(120);
    for line in stdout.lines() {
        let line = line.unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        if v["step"]["id"] == "models:tiny" && v["step"]["state"] == "running" {
            break;
        }
        assert!(v.get("status").is_none(), "ended early: {line}");
        assert!(
            Instant::now() < deadline,
            "the install never reached the models"
        );
    }
    while std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0) < 1 << 20 {
        assert!(Instant::now() < deadline, "no model bytes arrived");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(!path.join("models/checkpoints/tiny.safetensors").exists());
    assert_eq!(host.fetches(ARCHIVE_PATH), 1);

    // Second run: the finished steps are skipped, the model resumes, the rest runs.
    let out = cli.run(&args, None);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let states = step_states(&lines);
    let expect = [
        ("comfyui", "skipped"),
        ("python", "skipped"),
        ("torch", "skipped"),
        ("requirements", "skipped"),
        ("models:tiny", "done"),
        ("start", "done"),
        ("verify", "done"),
        ("register", "done"),
    ];
    assert_eq!(
        states,
        expect.map(|(a, b)| (a.to_string(), b.to_string())),
        "{lines:#?}"
    );
    let status = &lines.last().unwrap()["status"];
    assert_eq!(status["state"], "done", "{status}");
    assert_eq!(
        host.fetches(ARCHIVE_PATH),
        1,
        "ComfyUI was not fetched again"
    );
    let model_requests: Vec<_> = host
        .files()
        .requests()
        .into_iter()
        .filter(|r| r.path_only() == MODEL_PATH)
        .collect();
    assert!(
        model_requests.last().unwrap().header("range").is_some(),
        "the model resumed with a Range request"
    );
    assert_eq!(
        sha256sum(&path.join("models/checkpoints/tiny.safetensors")),
        host.model_sha256()
    );

    // `local` sees the server the install started and stops it.
    let st = cli.json(&["local", "status", "--json"]);
    assert_eq!(st["state"], "running", "{st}");
    assert_eq!(st["url"], format!("http://127.0.0.1:{port}"));
    let servers = cli.json(&["servers", "list", "--json"]);
    assert_eq!(servers[0]["name"], "Local");
    assert_eq!(servers[0]["active"], true);
    assert!(cli
        .ok(&["local", "logs", "--lines", "50"], None)
        .contains("To see the GUI go to"));
    let stopped = cli.json(&["local", "stop", "--json"]);
    assert_eq!(stopped["state"], "stopped");
    // Gone, or a zombie nobody reaps (its parent, the install run, has exited).
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", st["pid"])).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.split(") ").nth(1).is_some_and(|r| r.starts_with('Z')),
        "the server process is gone: {stat}"
    );
    let started = cli.json(&["local", "start", "--json"]);
    assert_eq!(started["state"], "running");

    // Uninstall: the server stops and leaves the list, the folder is gone.
    let out = cli.run(&["uninstall", "--path", path.to_str().unwrap()], None);
    assert!(
        stderr(&out).contains("--yes"),
        "asks first: {}",
        stderr(&out)
    );
    assert!(path.exists());
    let gone = cli.json(&[
        "uninstall",
        "--path",
        path.to_str().unwrap(),
        "--yes",
        "--json",
    ]);
    assert_eq!(gone["server_removed"], true, "{gone}");
    assert!(!path.exists());
    assert_eq!(
        cli.json(&["local", "status", "--json"])["state"],
        "not_installed"
    );
    assert_eq!(
        cli.json(&["servers", "list", "--json"]),
        serde_json::json!([])
    );
}

fn sha256sum(path: &std::path::Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn cli_install_refuses_bad_choices_with_one_clear_line() {
    let cli = Cli::new();
    let path = cli.home.path().join("C");
    let p = path.to_str().unwrap();
    let out = cli.run(&["install", "--path", p, "--variant", "tpu", "--yes"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("'tpu' is not a GPU variant"),
        "{}",
        stderr(&out)
    );
    let out = cli.run(&["install", "--path", p, "--packs", "sd3", "--yes"], None);
    assert!(
        stderr(&out).contains("no model pack 'sd3'"),
        "{}",
        stderr(&out)
    );
    let out = cli.run(
        &[
            "install",
            "--path",
            p,
            "--manifest",
            "/nonexistent/manifest.json",
            "--yes",
        ],
        None,
    );
    assert!(
        stderr(&out).contains("Could not read the install manifest /nonexistent/manifest.json"),
        "{}",
        stderr(&out)
    );
    // Asked for confirmation without a terminal: says to add --yes, installs nothing.
    let out = cli.run(&["install", "--path", p], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--yes"), "{}", stderr(&out));
    assert!(!path.exists());
    let out = cli.run(&["local", "start"], None);
    assert!(stderr(&out).contains("not installed"), "{}", stderr(&out));
}
