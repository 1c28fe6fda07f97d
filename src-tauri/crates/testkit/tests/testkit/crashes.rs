//! Crashes, restarts and dropped sockets while a prompt runs.

use std::time::{Duration, Instant};

use comfyfleet_testkit::{FakeComfy, FakeComfyConfig};
use futures::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use super::{get, history, http, submit, WsClient};

fn slow_prompt(client: &str, color: u32, exec_ms: u64) -> Value {
    json!({"prompt": {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": color}},
                      "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "slow"}}},
           "client_id": client, "extra_data": {"fake_exec_ms": exec_ms}})
}

/// How the socket ended: `None` means it ended without a close frame.
async fn socket_end(ws: &mut WsClient) -> Option<Message> {
    loop {
        match tokio::time::timeout(Duration::from_secs(2), ws.socket.next())
            .await
            .expect("the socket ends in time")
        {
            None | Some(Err(_)) => return None,
            Some(Ok(message @ Message::Close(_))) => return Some(message),
            Some(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn crash_kill_mid_job_refuses_connections_and_restart_is_empty() {
    let fake = FakeComfy::start(FakeComfyConfig::default()).await;
    let mut ws = WsClient::connect(&fake, "k").await;
    let killed = submit(&fake, &slow_prompt("k", 1, 5_000)).await;
    let pending = submit(&fake, &slow_prompt("k", 2, 10)).await;
    ws.until_kind("executing").await;
    // A kept-alive HTTP connection is dropped too.
    let client = http();
    assert_eq!(
        client
            .get(format!("{}/queue", fake.url()))
            .send()
            .await
            .expect("answered")
            .status()
            .as_u16(),
        200
    );

    fake.kill();
    assert_eq!(
        socket_end(&mut ws).await,
        None,
        "no close frame from a crashed server"
    );
    let refused = tokio::net::TcpStream::connect(fake.addr())
        .await
        .expect_err("refused");
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    let error = client
        .get(format!("{}/queue", fake.url()))
        .send()
        .await
        .expect_err("refused");
    assert!(error.is_connect() || error.is_request(), "{error}");
    // Changing the config does not bring a killed server back.
    fake.set_config(|c| c.latency = Duration::ZERO);
    assert!(tokio::net::TcpStream::connect(fake.addr()).await.is_err());

    fake.restart();
    assert_eq!(get(&format!("{}/history", fake.url())).await.2, "{}");
    assert_eq!(history(&fake, &killed).await, json!({}));
    assert_eq!(
        get(&format!("{}/queue", fake.url())).await.2,
        r#"{"queue_running": [], "queue_pending": []}"#
    );
    assert_eq!(
        fake.executed_prompts(),
        [killed.as_str()],
        "the pending prompt was lost with the queue"
    );
    let mut ws = WsClient::connect(&fake, "k").await;
    let (status, answer) = super::post_prompt(&fake, &slow_prompt("k", 3, 10)).await;
    assert_eq!(
        (status, answer["number"].as_i64()),
        (200, Some(0)),
        "the counter starts again"
    );
    let again = answer["prompt_id"].as_str().expect("id").to_string();
    ws.until_done(&again).await;
    let entry = &history(&fake, &again).await[&again];
    assert_eq!(entry["status"]["status_str"], "success");
    // Output files survive the crash: the counter goes on.
    assert_eq!(
        entry["outputs"]["2"]["images"][0]["filename"],
        "slow_00001_.png"
    );
    assert_ne!(pending, again);
}

#[tokio::test]
async fn crash_restart_without_kill_starts_empty_on_the_same_port() {
    let fake = FakeComfy::start(FakeComfyConfig::default()).await;
    let mut ws = WsClient::connect(&fake, "r").await;
    let id = submit(&fake, &slow_prompt("r", 1, 10)).await;
    ws.until_done(&id).await;
    assert_ne!(get(&format!("{}/history", fake.url())).await.2, "{}");
    let url = fake.url();
    fake.restart();
    assert_eq!(fake.url(), url);
    assert_eq!(get(&format!("{}/history", fake.url())).await.2, "{}");
    assert_eq!(
        get(&format!("{}/prompt", fake.url())).await.2,
        r#"{"exec_info": {"queue_remaining": 0}}"#
    );
}

#[tokio::test]
async fn crash_dropped_websockets_leave_the_prompt_running_to_history() {
    let fake = FakeComfy::start(FakeComfyConfig::default()).await;
    let mut ws = WsClient::connect(&fake, "d").await;
    let id = submit(&fake, &slow_prompt("d", 1, 1_000)).await;
    loop {
        let frame = ws.next().await;
        if frame.kind() == "executing" && frame.data()["node"] == "1" {
            break;
        }
    }
    fake.drop_websockets();
    assert_eq!(
        socket_end(&mut ws).await,
        None,
        "closed without a close frame"
    );

    // A client that reconnects while its prompt runs hears which node runs.
    let mut again = WsClient::connect(&fake, "d").await;
    let current = again.next().await;
    assert_eq!(
        current.comparable(),
        json!({"type": "executing", "data": {"node": "1"}})
    );
    drop(again);

    // The prompt still completes: a client that lost its socket finds it in /queue, then /history.
    let queue: Value =
        serde_json::from_str(&get(&format!("{}/queue", fake.url())).await.2).expect("JSON");
    assert_eq!(queue["queue_running"][0][1], json!(id));
    let started = Instant::now();
    loop {
        let entry = history(&fake, &id).await;
        if let Some(entry) = entry.get(&id) {
            assert_eq!(entry["status"]["status_str"], "success");
            assert_eq!(
                entry["outputs"]["2"]["images"][0]["filename"],
                "slow_00001_.png"
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the prompt never finished"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(fake.executed_prompts(), [id]);
}
