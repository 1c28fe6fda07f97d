//! The JSON bodies ComfyUI 0.3.64 sends, rendered from plain values (pure functions, byte-exact to the recordings).

use serde::Serialize;

use super::config::FakeComfyConfig;
use super::fixtures;
use crate::pyjson::{self, OrderedJson};

#[derive(Serialize)]
struct SystemStats<'a> {
    system: SystemInfo<'a>,
    devices: Vec<DeviceInfo<'a>>,
}

#[derive(Serialize)]
struct SystemInfo<'a> {
    os: &'a str,
    ram_total: u64,
    ram_free: u64,
    comfyui_version: &'a str,
    required_frontend_version: &'a str,
    installed_templates_version: &'a str,
    required_templates_version: &'a str,
    python_version: &'a str,
    pytorch_version: &'a str,
    embedded_python: bool,
    argv: Vec<String>,
}

#[derive(Serialize)]
struct DeviceInfo<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    index: Option<u32>,
    vram_total: u64,
    vram_free: u64,
    torch_vram_total: u64,
    torch_vram_free: u64,
}

/// `GET /system_stats`. `argv` is what the fake would have been started with (`--cpu` when every device is a CPU).
pub fn system_stats(config: &FakeComfyConfig, port: u16) -> String {
    let mut argv = vec!["main.py".to_string()];
    if config.devices.iter().all(|d| d.kind == "cpu") {
        argv.push("--cpu".to_string());
    }
    argv.extend(["--listen", "127.0.0.1", "--port"].map(String::from));
    argv.push(port.to_string());
    let body = SystemStats {
        system: SystemInfo {
            os: "posix",
            ram_total: config.ram_total,
            ram_free: config.ram_free,
            comfyui_version: &config.version,
            required_frontend_version: "1.27.10",
            installed_templates_version: "0.1.95",
            required_templates_version: "0.1.95",
            python_version: &config.python_version,
            pytorch_version: &config.pytorch_version,
            embedded_python: false,
            argv,
        },
        devices: config
            .devices
            .iter()
            .map(|d| {
                let (torch_vram_total, torch_vram_free) = d.torch_vram();
                DeviceInfo {
                    name: &d.name,
                    kind: &d.kind,
                    index: d.index(),
                    vram_total: d.vram_total,
                    vram_free: d.vram_free,
                    torch_vram_total,
                    torch_vram_free,
                }
            })
            .collect(),
    };
    pyjson::to_string(&body)
}

#[derive(Serialize)]
struct ExecInfo {
    queue_remaining: usize,
}

#[derive(Serialize)]
struct QueueInfo {
    exec_info: ExecInfo,
}

/// `GET /prompt`: `{"exec_info": {"queue_remaining": N}}`.
pub fn queue_info(queue_remaining: usize) -> String {
    pyjson::to_string(&QueueInfo {
        exec_info: ExecInfo { queue_remaining },
    })
}

#[derive(Serialize)]
struct StatusData<'a> {
    status: QueueInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<&'a str>,
}

#[derive(Serialize)]
struct WsMessage<'a, T> {
    #[serde(rename = "type")]
    kind: &'a str,
    data: T,
}

/// The WebSocket `status` message: with `sid` when sent to a socket that just connected, without when broadcast.
pub fn status_message(queue_remaining: usize, sid: Option<&str>) -> String {
    pyjson::to_string(&WsMessage {
        kind: "status",
        data: StatusData {
            status: QueueInfo {
                exec_info: ExecInfo { queue_remaining },
            },
            sid,
        },
    })
}

/// The answer to a client's `feature_flags` message: the server's flags (= `GET /features`).
pub fn feature_flags_message() -> String {
    let features = OrderedJson::parse(fixtures::FEATURES.as_bytes()).unwrap_or(OrderedJson::Null);
    pyjson::to_string(&WsMessage {
        kind: "feature_flags",
        data: features,
    })
}

#[derive(Serialize)]
struct PromptError<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    message: &'a str,
    details: &'a str,
    extra_info: OrderedJson,
}

#[derive(Serialize)]
struct PromptErrorBody<'a> {
    error: PromptError<'a>,
    node_errors: OrderedJson,
}

/// A 400 body of `POST /prompt` without node errors.
pub fn prompt_error(kind: &str, message: &str, details: &str) -> String {
    prompt_error_with_nodes(kind, message, details, OrderedJson::Object(Vec::new()))
}

/// A 400 body of `POST /prompt` with `node_errors`.
pub fn prompt_error_with_nodes(
    kind: &str,
    message: &str,
    details: &str,
    node_errors: OrderedJson,
) -> String {
    pyjson::to_string(&PromptErrorBody {
        error: PromptError {
            kind,
            message,
            details,
            extra_info: OrderedJson::Object(Vec::new()),
        },
        node_errors,
    })
}

#[derive(Serialize)]
struct PromptAccepted<'a, N> {
    prompt_id: &'a str,
    number: N,
    node_errors: OrderedJson,
}

/// The 200 body of `POST /prompt`.
#[cfg(test)]
pub fn prompt_accepted<N: Serialize>(prompt_id: &str, number: N) -> String {
    prompt_accepted_with_errors(prompt_id, number, OrderedJson::Object(Vec::new()))
}

/// The 200 body of `POST /prompt`; `node_errors` lists the outputs that failed validation when others passed.
pub fn prompt_accepted_with_errors<N: Serialize>(
    prompt_id: &str,
    number: N,
    node_errors: OrderedJson,
) -> String {
    pyjson::to_string(&PromptAccepted {
        prompt_id,
        number,
        node_errors,
    })
}

/// `{"type": kind, "data": data}`, a WebSocket text message.
pub fn ws_message(kind: &str, data: OrderedJson) -> String {
    pyjson::to_string(&WsMessage { kind, data })
}

/// Binary preview, type 1: `u32 1`, `u32 2` (PNG), the image.
pub fn preview_frame(png: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(8 + png.len());
    frame.extend_from_slice(&1u32.to_be_bytes());
    frame.extend_from_slice(&2u32.to_be_bytes());
    frame.extend_from_slice(png);
    frame
}

/// Binary preview with metadata, type 4: `u32 4`, `u32` length of the JSON metadata, the metadata, the image.
pub fn preview_frame_with_metadata(metadata: &str, png: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(8 + metadata.len() + png.len());
    frame.extend_from_slice(&4u32.to_be_bytes());
    frame.extend_from_slice(&(metadata.len() as u32).to_be_bytes());
    frame.extend_from_slice(metadata.as_bytes());
    frame.extend_from_slice(png);
    frame
}

/// A history entry (`PromptQueue.task_done`): the queue item, outputs, status and meta.
pub fn history_entry(
    prompt: OrderedJson,
    outputs: OrderedJson,
    success: bool,
    messages: Vec<(String, OrderedJson)>,
    meta: OrderedJson,
) -> OrderedJson {
    let messages = messages
        .into_iter()
        .map(|(event, data)| OrderedJson::Array(vec![event.into(), data]))
        .collect();
    pyjson::object(vec![
        ("prompt", prompt),
        ("outputs", outputs),
        (
            "status",
            pyjson::object(vec![
                (
                    "status_str",
                    if success { "success" } else { "error" }.into(),
                ),
                ("completed", success.into()),
                ("messages", OrderedJson::Array(messages)),
            ]),
        ),
        ("meta", meta),
    ])
}

/// The choices of combo inputs that list files: checkpoints (`CheckpointLoaderSimple`) and input images
/// (`LoadImage`).
#[derive(Clone, Debug, Default)]
pub struct Choices {
    pub checkpoints: Vec<String>,
    pub input_images: Vec<String>,
}

/// `{"<class>": {...}}` for `GET /object_info/{class}`, `{}` for a class the fake does not know; the
/// `CheckpointLoaderSimple` and `LoadImage` choices list the fake's files, as the real server lists its folders.
pub fn object_info_class(class: &str, choices: &Choices) -> String {
    let classes = fixtures::object_info()
        .iter()
        .filter(|(name, _)| name == class)
        .map(|(name, info)| (name.clone(), with_choices(name, info, choices)))
        .collect();
    pyjson::to_string(&OrderedJson::Object(classes))
}

/// `GET /object_info`: every class the fake knows.
pub fn object_info_all(choices: &Choices) -> String {
    let classes = fixtures::object_info()
        .iter()
        .map(|(name, info)| (name.clone(), with_choices(name, info, choices)))
        .collect();
    pyjson::to_string(&OrderedJson::Object(classes))
}

fn with_choices(name: &str, info: &OrderedJson, choices: &Choices) -> OrderedJson {
    let (input, files) = match name {
        "CheckpointLoaderSimple" => ("ckpt_name", &choices.checkpoints),
        "LoadImage" => ("image", &choices.input_images),
        _ => return info.clone(),
    };
    let mut info = info.clone();
    let list = info
        .get_mut("input")
        .and_then(|i| i.get_mut("required"))
        .and_then(|r| r.get_mut(input))
        .and_then(|c| match c {
            OrderedJson::Array(parts) => parts.first_mut(),
            _ => None,
        });
    if let Some(list) = list {
        *list = OrderedJson::Array(
            files
                .iter()
                .map(|f| OrderedJson::from(f.as_str()))
                .collect(),
        );
    }
    info
}

/// Whether the fake knows `class` and it is an output node (`OUTPUT_NODE = True`).
pub fn class_is_output(class: &str) -> Option<bool> {
    fixtures::object_info()
        .iter()
        .find(|(name, _)| name == class)
        .map(|(_, info)| matches!(info.get("output_node"), Some(OrderedJson::Bool(true))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_system_stats_of_the_default_config_is_byte_exact() {
        let recorded = include_str!("../../fixtures/system_stats.json");
        assert_eq!(system_stats(&FakeComfyConfig::default(), 8188), recorded);
    }

    #[test]
    fn bodies_object_info_classes_are_byte_exact() {
        let recorded = Choices::default();
        assert_eq!(
            object_info_class("EmptyImage", &recorded),
            include_str!("../../fixtures/object_info_EmptyImage.json")
        );
        assert_eq!(
            object_info_class("SaveImage", &recorded),
            include_str!("../../fixtures/api_object_info_SaveImage.json")
        );
        assert_eq!(
            object_info_class("NoSuchNode", &recorded),
            include_str!("../../fixtures/object_info_unknown.json")
        );
    }

    #[test]
    fn bodies_checkpoint_choices_follow_the_models() {
        let choices = Choices {
            checkpoints: vec!["sd15.safetensors".to_string()],
            input_images: vec!["a.png".to_string(), "example.png".to_string()],
        };
        let body = object_info_class("CheckpointLoaderSimple", &choices);
        assert!(
            body.contains(r#""ckpt_name": [["sd15.safetensors"], {"tooltip""#),
            "{body}"
        );
        let body = object_info_class("LoadImage", &choices);
        assert!(
            body.contains(r#""image": [["a.png", "example.png"], {"image_upload": true}]"#),
            "{body}"
        );
    }

    #[test]
    fn bodies_prompt_answers_are_byte_exact() {
        assert_eq!(
            prompt_error("no_prompt", "No prompt provided", "No prompt provided"),
            include_str!("../../fixtures/invalid_no_prompt_key.json")
        );
        assert_eq!(
            prompt_accepted("7bc6a940-4c67-44ab-917f-45a767b4201c", 0),
            include_str!("../../fixtures/post_prompt_ok.json")
        );
        assert_eq!(
            queue_info(0),
            include_str!("../../fixtures/prompt_get.json")
        );
    }

    #[test]
    fn bodies_status_message_matches_the_recorded_transcript() {
        assert_eq!(
            status_message(0, Some("a2")),
            r#"{"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}}, "sid": "a2"}}"#
        );
        assert_eq!(
            status_message(1, None),
            r#"{"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 1}}}}"#
        );
        assert_eq!(
            feature_flags_message(),
            r#"{"type": "feature_flags", "data": {"supports_preview_metadata": true, "max_upload_size": 104857600}}"#
        );
    }
}
