//! Each fault does what it says, over real connections.

use std::time::{Duration, Instant};

use comfyfleet_testkit::{FakeComfy, FakeComfyConfig, Fault};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{client, get, http, read_prefix, split, JSON};

fn with_fault(fault: Fault) -> FakeComfyConfig {
    FakeComfyConfig {
        fault,
        ..FakeComfyConfig::default()
    }
}

#[tokio::test]
async fn fault_refuse_refuses_connections() {
    let fake = FakeComfy::start(with_fault(Fault::Refuse)).await;
    let error = TcpStream::connect(fake.addr()).await.expect_err("refused");
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionRefused);
    let error = http()
        .get(format!("{}/system_stats", fake.url()))
        .send()
        .await
        .expect_err("refused");
    assert!(error.is_connect(), "{error}");
}

#[tokio::test]
async fn fault_hang_reads_the_request_and_never_answers() {
    let fake = FakeComfy::start(with_fault(Fault::Hang)).await;
    let started = Instant::now();
    let error = client(Duration::from_millis(300))
        .get(format!("{}/system_stats", fake.url()))
        .send()
        .await
        .expect_err("no answer");
    assert!(error.is_timeout(), "{error}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        (requests[0].method.as_str(), requests[0].path.as_str()),
        ("GET", "/system_stats")
    );
}

#[tokio::test]
async fn fault_hang_connections_end_on_shutdown() {
    let fake = FakeComfy::start(with_fault(Fault::Hang)).await;
    let mut stream = TcpStream::connect(fake.addr()).await.expect("accepted");
    stream
        .write_all(b"GET /queue HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .expect("sent");
    let mut buf = [0u8; 64];
    let waited = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await;
    assert!(waited.is_err(), "a hanging fake answered: {waited:?}");
    fake.shutdown().await;
    let read = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf))
        .await
        .expect("closed promptly");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

#[tokio::test]
async fn fault_hang_also_stalls_a_kept_alive_connection() {
    let fake = FakeComfy::start(FakeComfyConfig::default()).await;
    let client = client(Duration::from_millis(300));
    let url = format!("{}/queue", fake.url());
    assert_eq!(
        client
            .get(&url)
            .send()
            .await
            .expect("answered")
            .status()
            .as_u16(),
        200
    );
    fake.set_config(|c| c.fault = Fault::Hang);
    let error = client.get(&url).send().await.expect_err("no answer");
    assert!(error.is_timeout(), "{error}");
}

#[tokio::test]
async fn fault_http500_answers_like_an_aiohttp_exception() {
    let fake = FakeComfy::start(with_fault(Fault::Http500)).await;
    assert_eq!(
        get(&format!("{}/system_stats", fake.url())).await,
        (
            500,
            Some("text/plain; charset=utf-8".to_string()),
            "500 Internal Server Error\n\nServer got itself in trouble".to_string()
        )
    );
}

#[tokio::test]
async fn fault_not_json_answers_html() {
    let fake = FakeComfy::start(with_fault(Fault::NotJson)).await;
    let (status, content_type, body) = get(&format!("{}/system_stats", fake.url())).await;
    assert_eq!(status, 200);
    assert!(content_type.is_some_and(|t| t.starts_with("text/html")));
    assert!(
        body.starts_with("<html>") && body.contains("not comfy"),
        "{body}"
    );
    assert!(serde_json::from_str::<serde_json::Value>(&body).is_err());
}

#[tokio::test]
async fn fault_endless_body_never_ends() {
    let fake = FakeComfy::start(with_fault(Fault::EndlessBody)).await;
    let response = http()
        .get(format!("{}/system_stats", fake.url()))
        .send()
        .await
        .expect("headers");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some(JSON)
    );
    assert!(response.content_length().is_none());
    let body = read_prefix(response, 4 * 1024 * 1024).await;
    assert!(
        body.len() >= 4 * 1024 * 1024,
        "the body ended after {} bytes",
        body.len()
    );
    assert!(body.starts_with(br#"{"system": {"os": ""#));
}

#[tokio::test]
async fn fault_wrong_shape_is_json_but_not_comfyui() {
    let fake = FakeComfy::start(with_fault(Fault::WrongShape)).await;
    let (status, content_type, body) = get(&format!("{}/system_stats", fake.url())).await;
    assert_eq!((status, content_type.as_deref()), (200, Some(JSON)));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).expect("JSON"),
        serde_json::json!({"hello": "world"})
    );
}

#[tokio::test]
async fn fault_latency_delays_every_answer() {
    let fake = FakeComfy::start(FakeComfyConfig {
        latency: Duration::from_millis(150),
        ..FakeComfyConfig::default()
    })
    .await;
    let started = Instant::now();
    let response = http()
        .get(format!("{}/queue", fake.url()))
        .send()
        .await
        .expect("answered");
    assert_eq!(split(response).await.0, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "{:?}",
        started.elapsed()
    );
}
