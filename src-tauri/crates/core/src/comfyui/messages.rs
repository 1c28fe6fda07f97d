//! ComfyUI's WebSocket messages (text JSON and binary frames) and its 400 validation bodies, parsed. Pure.

use serde_json::Value;

/// One thing a ComfyUI server told us over its WebSocket.
#[derive(Debug, Clone, PartialEq)]
pub enum ComfyEvent {
    Status {
        queue_remaining: u32,
    },
    ExecutionStart {
        prompt_id: String,
    },
    Cached {
        prompt_id: String,
        nodes: Vec<String>,
    },
    /// A node starts; `node: None` is the terminal marker of the prompt.
    Executing {
        prompt_id: Option<String>,
        node: Option<String>,
    },
    Progress {
        prompt_id: Option<String>,
        node: Option<String>,
        value: f64,
        max: f64,
    },
    /// Per-node progress: (finished or running nodes, total nodes) summarised.
    ProgressState {
        prompt_id: String,
        finished: u32,
        total: u32,
        running_fraction: f64,
    },
    Executed {
        prompt_id: String,
        node: String,
        images: Vec<OutputImage>,
    },
    Success {
        prompt_id: String,
    },
    Error {
        prompt_id: String,
        node_id: String,
        node_type: String,
        message: String,
        exception_type: String,
    },
    Interrupted {
        prompt_id: String,
        node_id: Option<String>,
        node_type: Option<String>,
    },
    /// A preview image (binary frame type 1 or 4).
    Preview {
        prompt_id: Option<String>,
        node: Option<String>,
        mime: &'static str,
        bytes: Vec<u8>,
    },
    /// A binary text frame (type 3).
    Text {
        node: String,
        text: String,
    },
    Other {
        kind: String,
    },
}

/// An output file reference as ComfyUI reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct OutputImage {
    pub filename: String,
    #[serde(default)]
    pub subfolder: String,
    #[serde(rename = "type", default = "default_type")]
    pub kind: String,
}

fn default_type() -> String {
    "output".into()
}

fn s(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_string)
}

/// Output images of one node's `output` object (`{"images": [...]}`; other kinds are ignored).
pub fn images_of(output: &Value) -> Vec<OutputImage> {
    let mut out = Vec::new();
    for key in ["images", "gifs", "animated"] {
        if let Some(Value::Array(items)) = output.get(key) {
            out.extend(
                items
                    .iter()
                    .filter_map(|i| serde_json::from_value::<OutputImage>(i.clone()).ok()),
            );
        }
    }
    out
}

/// Parse a text frame.
pub fn parse_text(text: &str) -> Option<ComfyEvent> {
    let v: Value = serde_json::from_str(text).ok()?;
    let kind = v.get("type")?.as_str()?.to_string();
    let d = v.get("data").cloned().unwrap_or(Value::Null);
    let pid = || s(&d, "prompt_id").unwrap_or_default();
    Some(match kind.as_str() {
        "status" => ComfyEvent::Status {
            queue_remaining: d
                .pointer("/status/exec_info/queue_remaining")
                .and_then(Value::as_u64)
                .unwrap_or(0) as u32,
        },
        "execution_start" => ComfyEvent::ExecutionStart { prompt_id: pid() },
        "execution_cached" => ComfyEvent::Cached {
            prompt_id: pid(),
            nodes: d
                .get("nodes")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|n| n.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
        },
        "executing" => ComfyEvent::Executing {
            prompt_id: s(&d, "prompt_id"),
            node: s(&d, "node"),
        },
        "progress" => ComfyEvent::Progress {
            prompt_id: s(&d, "prompt_id"),
            node: s(&d, "node"),
            value: d.get("value").and_then(Value::as_f64).unwrap_or(0.0),
            max: d.get("max").and_then(Value::as_f64).unwrap_or(1.0),
        },
        "progress_state" => {
            let nodes = d.get("nodes").and_then(Value::as_object);
            let total = nodes.map_or(0, |n| n.len()) as u32;
            let mut finished = 0u32;
            let mut running = 0.0;
            for n in nodes.into_iter().flat_map(|m| m.values()) {
                match n.get("state").and_then(Value::as_str) {
                    Some("finished") => finished += 1,
                    Some("running") => {
                        let (v, m) = (
                            n.get("value").and_then(Value::as_f64).unwrap_or(0.0),
                            n.get("max").and_then(Value::as_f64).unwrap_or(1.0),
                        );
                        if m > 0.0 {
                            running += (v / m).clamp(0.0, 1.0);
                        }
                    }
                    _ => {}
                }
            }
            ComfyEvent::ProgressState {
                prompt_id: pid(),
                finished,
                total,
                running_fraction: running,
            }
        }
        "executed" => ComfyEvent::Executed {
            prompt_id: pid(),
            node: s(&d, "node").unwrap_or_default(),
            images: d.get("output").map(images_of).unwrap_or_default(),
        },
        "execution_success" => ComfyEvent::Success { prompt_id: pid() },
        "execution_error" => ComfyEvent::Error {
            prompt_id: pid(),
            node_id: s(&d, "node_id").unwrap_or_default(),
            node_type: s(&d, "node_type").unwrap_or_default(),
            message: s(&d, "exception_message")
                .unwrap_or_default()
                .trim()
                .to_string(),
            exception_type: s(&d, "exception_type").unwrap_or_default(),
        },
        "execution_interrupted" => ComfyEvent::Interrupted {
            prompt_id: pid(),
            node_id: s(&d, "node_id"),
            node_type: s(&d, "node_type"),
        },
        _ => ComfyEvent::Other { kind },
    })
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .map(|x| u32::from_be_bytes([x[0], x[1], x[2], x[3]]))
}

/// Parse a binary frame: 1 = preview (u32 format, image), 3 = text (u32 len, node id, text),
/// 4 = preview with metadata (u32 JSON length, JSON, image).
pub fn parse_binary(b: &[u8]) -> Option<ComfyEvent> {
    match be_u32(b, 0)? {
        1 => {
            let mime = if be_u32(b, 4)? == 1 {
                "image/jpeg"
            } else {
                "image/png"
            };
            Some(ComfyEvent::Preview {
                prompt_id: None,
                node: None,
                mime,
                bytes: b.get(8..)?.to_vec(),
            })
        }
        3 => {
            let len = be_u32(b, 4)? as usize;
            let node = String::from_utf8_lossy(b.get(8..8 + len)?).into_owned();
            let text = String::from_utf8_lossy(b.get(8 + len..)?).into_owned();
            Some(ComfyEvent::Text { node, text })
        }
        4 => {
            let len = be_u32(b, 4)? as usize;
            let meta: Value = serde_json::from_slice(b.get(8..8 + len)?).ok()?;
            let mime = if s(&meta, "image_type").as_deref() == Some("image/jpeg") {
                "image/jpeg"
            } else {
                "image/png"
            };
            Some(ComfyEvent::Preview {
                prompt_id: s(&meta, "prompt_id"),
                node: s(&meta, "node_id"),
                mime,
                bytes: b.get(8 + len..)?.to_vec(),
            })
        }
        other => Some(ComfyEvent::Other {
            kind: format!("binary {other}"),
        }),
    }
}

/// A readable, per-node message from a `POST /prompt` 400 body.
pub fn validation_message(body: &Value) -> String {
    let mut lines = Vec::new();
    if let Some(Value::Object(nodes)) = body.get("node_errors") {
        let mut ids: Vec<_> = nodes.keys().collect();
        ids.sort_by_key(|k| (k.parse::<u64>().unwrap_or(u64::MAX), (*k).clone()));
        for id in ids {
            let n = &nodes[id];
            let class = s(n, "class_type").unwrap_or_default();
            for e in n
                .get("errors")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let msg = s(e, "message").unwrap_or_default();
                let details = s(e, "details").filter(|d| !d.is_empty());
                lines.push(match details {
                    Some(d) => format!("Node {id} ({class}): {msg} — {d}"),
                    None => format!("Node {id} ({class}): {msg}"),
                });
            }
        }
    }
    if lines.is_empty() {
        let e = body.get("error").cloned().unwrap_or(Value::Null);
        let msg = s(&e, "message").unwrap_or_else(|| "the server refused the workflow".into());
        match s(&e, "details").filter(|d| !d.is_empty() && *d != msg) {
            Some(d) => format!("{msg} ({d})"),
            None => msg,
        }
    } else {
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_parse_the_recorded_text_frames() {
        let p = "7bc6";
        assert_eq!(
            parse_text(
                r#"{"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 2}}, "sid": "x"}}"#
            ),
            Some(ComfyEvent::Status { queue_remaining: 2 })
        );
        assert_eq!(
            parse_text(&format!(
                r#"{{"type": "executing", "data": {{"node": null, "prompt_id": "{p}"}}}}"#
            )),
            Some(ComfyEvent::Executing {
                prompt_id: Some(p.into()),
                node: None
            })
        );
        let executed = format!(
            r#"{{"type": "executed", "data": {{"node": "2", "display_node": "2", "output": {{"images": [{{"filename": "probe_00001_.png", "subfolder": "", "type": "output"}}]}}, "prompt_id": "{p}"}}}}"#
        );
        match parse_text(&executed) {
            Some(ComfyEvent::Executed { node, images, .. }) => {
                assert_eq!(node, "2");
                assert_eq!(
                    images,
                    vec![OutputImage {
                        filename: "probe_00001_.png".into(),
                        subfolder: String::new(),
                        kind: "output".into()
                    }]
                );
            }
            other => panic!("{other:?}"),
        }
        let state = format!(
            r#"{{"type": "progress_state", "data": {{"prompt_id": "{p}", "nodes": {{"1": {{"value": 1.0, "max": 1.0, "state": "finished"}}, "2": {{"value": 1.0, "max": 4.0, "state": "running"}}}}}}}}"#
        );
        assert_eq!(
            parse_text(&state),
            Some(ComfyEvent::ProgressState {
                prompt_id: p.into(),
                finished: 1,
                total: 2,
                running_fraction: 0.25
            })
        );
        let err = r#"{"type": "execution_error", "data": {"prompt_id": "x", "node_id": "3", "node_type": "ImageToMask", "executed": ["1"], "exception_message": "index 3 is out of bounds\n", "exception_type": "IndexError"}}"#;
        assert!(
            matches!(parse_text(err), Some(ComfyEvent::Error { node_type, message, .. }) if node_type == "ImageToMask" && message == "index 3 is out of bounds")
        );
        assert_eq!(parse_text("garbage"), None);
    }

    #[test]
    fn messages_parse_binary_previews_and_text() {
        let mut f1 = vec![0, 0, 0, 1, 0, 0, 0, 2];
        f1.extend_from_slice(b"\x89PNG");
        assert!(
            matches!(parse_binary(&f1), Some(ComfyEvent::Preview { mime: "image/png", bytes, .. }) if bytes == b"\x89PNG")
        );
        let meta = br#"{"node_id":"3","prompt_id":"p","image_type":"image/jpeg"}"#;
        let mut f4 = vec![0, 0, 0, 4];
        f4.extend_from_slice(&(meta.len() as u32).to_be_bytes());
        f4.extend_from_slice(meta);
        f4.extend_from_slice(b"JPEG");
        assert!(
            matches!(parse_binary(&f4), Some(ComfyEvent::Preview { mime: "image/jpeg", prompt_id: Some(p), .. }) if p == "p")
        );
        let mut f3 = vec![0, 0, 0, 3, 0, 0, 0, 1];
        f3.extend_from_slice(b"5width: 64");
        assert_eq!(
            parse_binary(&f3),
            Some(ComfyEvent::Text {
                node: "5".into(),
                text: "width: 64".into()
            })
        );
        assert_eq!(parse_binary(&[0, 0]), None);
    }

    #[test]
    fn messages_turn_a_validation_body_into_per_node_lines() {
        let body: Value = serde_json::from_str(r#"{"error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation", "details": "", "extra_info": {}}, "node_errors": {"1": {"errors": [{"type": "custom_validation_failed", "message": "Custom validation failed for node", "details": "image - Invalid image file: does_not_exist.png", "extra_info": {"input_name": "image"}}], "dependent_outputs": ["2"], "class_type": "LoadImage"}}}"#).unwrap();
        assert_eq!(validation_message(&body), "Node 1 (LoadImage): Custom validation failed for node — image - Invalid image file: does_not_exist.png");
        let body: Value = serde_json::from_str(r#"{"error": {"type": "invalid_prompt", "message": "Cannot execute because node NoSuchNode does not exist.", "details": "Node ID '#1'", "extra_info": {}}, "node_errors": {}}"#).unwrap();
        assert_eq!(
            validation_message(&body),
            "Cannot execute because node NoSuchNode does not exist. (Node ID '#1')"
        );
    }
}
