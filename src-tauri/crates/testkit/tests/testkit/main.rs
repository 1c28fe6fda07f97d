//! Integration tests of the testkit's fake servers, as their users see them: over real loopback connections.

mod auth;
mod cli;
mod faults;
mod lifecycle;
mod routes;
mod websocket;

use std::time::Duration;

use futures::StreamExt;

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
