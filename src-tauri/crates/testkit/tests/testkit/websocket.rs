//! The `/ws` socket: the first `status`, feature flags, and `status` broadcasts.

use std::time::Duration;

use comfyfleet_testkit::{FakeComfy, FakeComfyConfig};
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use super::http;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_text(socket: &mut Socket) -> String {
    let message = tokio::time::timeout(Duration::from_secs(2), socket.next())
        .await
        .expect("a message in time")
        .expect("socket open")
        .expect("no error");
    message.into_text().expect("text frame").to_string()
}

#[tokio::test]
async fn websocket_first_message_is_status_with_the_client_id() {
    let fake = FakeComfy::start(FakeComfyConfig {
        queue_pending: 2,
        ..FakeComfyConfig::default()
    })
    .await;
    let (mut socket, _) = tokio_tungstenite::connect_async(fake.ws_url("a2"))
        .await
        .expect("connected");
    assert_eq!(
        next_text(&mut socket).await,
        r#"{"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 2}}, "sid": "a2"}}"#
    );
    let (mut api_socket, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/api/ws?clientId=b", fake.addr()))
            .await
            .expect("connected");
    assert!(next_text(&mut api_socket)
        .await
        .ends_with(r#""sid": "b"}}"#));
}

#[tokio::test]
async fn websocket_without_client_id_gets_a_uuid_hex_sid() {
    let fake = FakeComfy::start(FakeComfyConfig::default()).await;
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", fake.addr()))
        .await
        .expect("connected");
    let first: serde_json::Value =
        serde_json::from_str(&next_text(&mut socket).await).expect("JSON");
    let sid = first["data"]["sid"].as_str().expect("sid");
    assert_eq!(sid.len(), 32);
    assert!(
        sid.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
        "{sid}"
    );
}

#[tokio::test]
async fn websocket_answers_feature_flags_and_hears_status_broadcasts() {
    // Another client's job runs, so the posted prompt stays pending and only `status` is heard.
    let fake = FakeComfy::start(FakeComfyConfig {
        queue_running: 1,
        ..FakeComfyConfig::default()
    })
    .await;
    let (mut socket, _) = tokio_tungstenite::connect_async(fake.ws_url("c1"))
        .await
        .expect("connected");
    next_text(&mut socket).await;
    socket
        .send(Message::Text(
            r#"{"type":"feature_flags","data":{"supports_preview_metadata":true}}"#.into(),
        ))
        .await
        .expect("sent");
    assert_eq!(
        next_text(&mut socket).await,
        r#"{"type": "feature_flags", "data": {"supports_preview_metadata": true, "max_upload_size": 104857600}}"#
    );
    let prompt =
        r#"{"prompt": {"2": {"class_type": "SaveImage", "inputs": {}}}, "client_id": "c1"}"#;
    let response = http()
        .post(format!("{}/prompt", fake.url()))
        .body(prompt)
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        next_text(&mut socket).await,
        r#"{"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 2}}}}"#
    );
    fake.set_config(|c| c.queue_running = 2);
    assert_eq!(
        next_text(&mut socket).await,
        r#"{"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 3}}}}"#
    );
}

#[tokio::test]
async fn websocket_is_closed_when_the_fake_shuts_down() {
    let fake = FakeComfy::start(FakeComfyConfig::default()).await;
    let (mut socket, _) = tokio_tungstenite::connect_async(fake.ws_url("d1"))
        .await
        .expect("connected");
    next_text(&mut socket).await;
    fake.shutdown().await;
    let end = tokio::time::timeout(Duration::from_secs(2), socket.next())
        .await
        .expect("ended in time");
    assert!(
        matches!(end, None | Some(Err(_)) | Some(Ok(Message::Close(_)))),
        "{end:?}"
    );
}
