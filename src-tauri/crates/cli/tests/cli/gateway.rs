//! `comfyfleet gateway`: the fleet served as one ComfyUI to a client speaking ComfyUI's HTTP API, until Ctrl-C.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::jobs::server;
use crate::{stderr, Cli};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_gateway_runs_a_clients_prompt_on_the_fleet_until_interrupted() {
    let cli = Cli::new();
    let _fake = server(&cli, 50).await;
    let mut child = cli
        .command(&["gateway", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let base = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .to_string();
    assert!(first.contains("Ctrl-C to stop"), "{first}");

    let http = reqwest::Client::new();
    let prompt = json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 5}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "gw"}}
    });
    let answer: Value = http
        .post(format!("{base}/prompt"))
        .json(&json!({"prompt": prompt, "client_id": "script"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = answer["prompt_id"].as_str().unwrap().to_string();
    // Polled as scripts do, until the history has it.
    let start = Instant::now();
    let entry = loop {
        let h: Value = http
            .get(format!("{base}/history/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(e) = h.get(&id) {
            break e.clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the prompt did not finish"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(entry["status"]["status_str"], "success", "{entry}");
    let image = &entry["outputs"]["2"]["images"][0];
    let png = http
        .get(format!("{base}/view"))
        .query(&[
            ("filename", image["filename"].as_str().unwrap()),
            ("subfolder", image["subfolder"].as_str().unwrap()),
            ("type", "output"),
        ])
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");

    // SAFETY: sending SIGINT to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert!(rest.contains("Gateway stopped."), "{rest}");
    // The job is the fleet's, in its history like any other.
    let listed = cli.ok(&["jobs", "list"], None);
    assert!(
        listed.contains(&id) || listed.contains("Gateway"),
        "{listed}"
    );
}

#[test]
fn cli_gateway_refuses_a_bad_or_taken_address_clearly() {
    let cli = Cli::new();
    let out = cli.run(&["gateway", "--listen", "localhost"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("like 127.0.0.1:8189"),
        "{}",
        stderr(&out)
    );
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = cli.run(&["gateway", "--listen", &addr], None);
    assert_eq!(out.status.code(), Some(2));
    let e = stderr(&out);
    assert!(
        e.contains("could not listen") && e.contains("--listen"),
        "{e}"
    );
}
