//! Integration tests of the testkit's fake servers, as their users see them: over real loopback connections.

mod auth;
mod cli;
mod crashes;
mod execution;
mod fake_comfyui;
mod faults;
mod filehost;
mod files;
mod installhost;
mod lifecycle;
mod routes;
mod runpod;
mod websocket;

use std::time::Duration;

use comfyfleet_testkit::FakeComfy;
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

/// A client that never uses a proxy (loopback only) and gives up after `timeout`.
pub fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .build()
        .expect("reqwest client")
}

pub fn http() -> reqwest::Client {
    client(Duration::from_secs(5))
}

/// Status, content type and body of a GET.
pub async fn get(url: &str) -> (u16, Option<String>, String) {
    let response = http().get(url).send().await.expect("GET answered");
    split(response).await
}

pub async fn split(response: reqwest::Response) -> (u16, Option<String>, String) {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().expect("ASCII content type").to_string());
    let body = response.text().await.expect("body");
    (status, content_type, body)
}

/// Reads at most `limit` bytes of a streamed body.
pub async fn read_prefix(response: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while body.len() < limit {
        match stream.next().await {
            Some(Ok(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body
}

pub const JSON: &str = "application/json; charset=utf-8";

/// A recorded body with the recorded port (8188) in `argv` replaced by `port`.
pub fn recorded_system_stats(port: u16) -> String {
    include_str!("../../fixtures/system_stats.json")
        .replace(r#""--port", "8188"]"#, &format!(r#""--port", "{port}"]"#))
}

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket frame as the tests compare it: text as JSON, binary as bytes.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    Json(Value),
    Binary(Vec<u8>),
}

impl Frame {
    /// The message `type`, or `binary1` / `binary4` for previews.
    pub fn kind(&self) -> String {
        match self {
            Frame::Json(v) => v["type"].as_str().unwrap_or("?").to_string(),
            Frame::Binary(b) => format!("binary{}", be_u32(b, 0)),
        }
    }

    pub fn data(&self) -> &Value {
        match self {
            Frame::Json(v) => &v["data"],
            Frame::Binary(_) => panic!("a binary frame has no data"),
        }
    }

    /// The frame in the form of the recorded transcripts: `{type, data}` with timestamps zeroed, or
    /// `{binary, event_type[, metadata]}`.
    pub fn comparable(&self) -> Value {
        match self {
            Frame::Json(v) => {
                let mut v = v.clone();
                zero_timestamps(&mut v);
                v
            }
            Frame::Binary(b) => {
                let event_type = be_u32(b, 0);
                let mut out = serde_json::json!({"binary": true, "event_type": event_type});
                if event_type == 4 {
                    let len = be_u32(b, 4) as usize;
                    out["metadata"] =
                        serde_json::from_slice(&b[8..8 + len]).expect("metadata JSON");
                }
                out
            }
        }
    }
}

pub fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(bytes[at..at + 4].try_into().expect("four bytes"))
}

/// Sets every `timestamp` field to 0.
pub fn zero_timestamps(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if key == "timestamp" {
                    *v = Value::from(0);
                } else {
                    zero_timestamps(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(zero_timestamps),
        _ => {}
    }
}

/// The messages of a recorded transcript after the connection's first `status`, comparable with
/// [`Frame::comparable`].
pub fn recorded_messages(transcript: &str) -> Vec<Value> {
    let recorded: Value = serde_json::from_str(transcript).expect("recorded JSON");
    recorded["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["data"].get("sid").is_none())
        .map(|m| {
            let mut m = m.clone();
            let map = m.as_object_mut().expect("object");
            for key in ["t_ms", "total_len", "image_format", "image_magic"] {
                map.remove(key);
            }
            zero_timestamps(&mut m);
            m
        })
        .collect()
}

/// A WebSocket client of a fake.
pub struct WsClient {
    pub socket: Socket,
}

impl WsClient {
    /// Connects as `client_id` and reads the first `status`.
    pub async fn connect(fake: &FakeComfy, client_id: &str) -> WsClient {
        let (socket, _) = tokio_tungstenite::connect_async(fake.ws_url(client_id))
            .await
            .expect("connected");
        let mut client = WsClient { socket };
        let first = client.next().await;
        assert_eq!(first.data()["sid"], client_id, "{first:?}");
        client
    }

    /// Connects and asks for previews with metadata, as the ComfyUI frontend does.
    pub async fn connect_with_preview_metadata(fake: &FakeComfy, client_id: &str) -> WsClient {
        let mut client = WsClient::connect(fake, client_id).await;
        client
            .socket
            .send(Message::Text(
                r#"{"type":"feature_flags","data":{"supports_preview_metadata":true}}"#.into(),
            ))
            .await
            .expect("sent");
        assert_eq!(client.next().await.kind(), "feature_flags");
        client
    }

    /// The next frame (5 s at most).
    pub async fn next(&mut self) -> Frame {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(5), self.socket.next())
                .await
                .expect("a frame in time")
                .expect("socket open")
                .expect("no socket error");
            match message {
                Message::Text(text) => {
                    return Frame::Json(
                        serde_json::from_str(text.as_str()).expect("JSON text frame"),
                    )
                }
                Message::Binary(bytes) => return Frame::Binary(bytes.to_vec()),
                Message::Ping(_) | Message::Pong(_) => {}
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    /// Frames until this prompt's terminal `executing {node: null}` (included).
    pub async fn until_done(&mut self, prompt_id: &str) -> Vec<Frame> {
        let mut frames = Vec::new();
        loop {
            let frame = self.next().await;
            let done = frame.kind() == "executing"
                && frame.data()["node"].is_null()
                && frame.data()["prompt_id"] == prompt_id;
            frames.push(frame);
            if done {
                return frames;
            }
        }
    }

    /// Frames until one of this kind (included).
    pub async fn until_kind(&mut self, kind: &str) -> Vec<Frame> {
        let mut frames = Vec::new();
        loop {
            let frame = self.next().await;
            let done = frame.kind() == kind;
            frames.push(frame);
            if done {
                return frames;
            }
        }
    }
}

/// `POST /prompt`: status and JSON answer (`Null` when not JSON). `serde_json` sorts object keys; use
/// [`post_prompt_text`] where the order of the prompt's nodes matters.
pub async fn post_prompt(fake: &FakeComfy, body: &Value) -> (u16, Value) {
    post_prompt_text(fake, &body.to_string()).await
}

/// `POST /prompt` with this exact body.
pub async fn post_prompt_text(fake: &FakeComfy, body: &str) -> (u16, Value) {
    let response = http()
        .post(format!("{}/prompt", fake.url()))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("answered");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The prompt id of an accepted `POST /prompt`.
pub async fn submit(fake: &FakeComfy, body: &Value) -> String {
    let (status, answer) = post_prompt(fake, body).await;
    assert_eq!(status, 200, "{answer}");
    answer["prompt_id"].as_str().expect("prompt_id").to_string()
}

/// `GET /history/{id}` as JSON.
pub async fn history(fake: &FakeComfy, prompt_id: &str) -> Value {
    let (status, _, body) = get(&format!("{}/history/{prompt_id}", fake.url())).await;
    assert_eq!(status, 200);
    serde_json::from_str(&body).expect("history JSON")
}

/// A history entry with its timestamps zeroed and its queue number set to 0, to compare with a recorded one.
pub fn comparable_history(mut history: Value) -> Value {
    zero_timestamps(&mut history);
    if let Some(entries) = history.as_object_mut() {
        for entry in entries.values_mut() {
            entry["prompt"][0] = Value::from(0);
        }
    }
    history
}

/// Width, height and RGB pixels of a PNG, decoded by the `png` crate (independent of the fake's encoder).
pub fn decode_png(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut pixels).expect("pixels");
    pixels.truncate(info.buffer_size());
    (info.width, info.height, pixels)
}

/// A small RGB PNG made by the `png` crate.
pub fn encode_png(width: u32, height: u32, rgb: [u8; 3]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().expect("header");
    let pixels: Vec<u8> = (0..width * height).flat_map(|_| rgb).collect();
    writer.write_image_data(&pixels).expect("pixels");
    writer.finish().expect("finished");
    out
}
