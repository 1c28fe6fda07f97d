//! RunPod serverless endpoints running worker-comfyui: what a job's input looks like, what its status and output
//! mean, how long to wait between status requests. Pure decisions here; the HTTP client is beside them.

use base64::Engine;
use serde::Deserialize;
use serde_json::Value;

/// `/run` refuses bodies over 10 MB; we refuse before sending (with room for the JSON around the input).
pub const RUN_LIMIT: usize = 10 * 1000 * 1000;

/// A job's state as RunPod reports it. Unknown strings are kept (the docs also list RUNNING).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    InQueue,
    InProgress,
    Completed,
    Failed,
    Cancelled,
    TimedOut,
    Other(String),
}

impl JobState {
    pub fn parse(s: &str) -> JobState {
        match s {
            "IN_QUEUE" => JobState::InQueue,
            "IN_PROGRESS" | "RUNNING" => JobState::InProgress,
            "COMPLETED" => JobState::Completed,
            "FAILED" => JobState::Failed,
            "CANCELLED" => JobState::Cancelled,
            "TIMED_OUT" => JobState::TimedOut,
            other => JobState::Other(other.to_string()),
        }
    }

    pub fn is_final(&self) -> bool {
        matches!(
            self,
            JobState::Completed | JobState::Failed | JobState::Cancelled | JobState::TimedOut
        )
    }
}

/// `/status/{id}` (and `/run`'s answer).
#[derive(Debug, Clone, Deserialize)]
pub struct StatusBody {
    pub id: String,
    pub status: String,
    /// Queue wait, ms.
    #[serde(default, rename = "delayTime")]
    pub delay_time: Option<u64>,
    /// Run time, ms.
    #[serde(default, rename = "executionTime")]
    pub execution_time: Option<u64>,
    #[serde(default)]
    pub output: Option<Value>,
    #[serde(default)]
    pub error: Option<Value>,
    #[serde(default, rename = "workerId")]
    pub worker_id: Option<String>,
}

impl StatusBody {
    pub fn state(&self) -> JobState {
        JobState::parse(&self.status)
    }
}

/// An input image for the worker (uploaded to its ComfyUI before the workflow runs).
#[derive(Debug, Clone, PartialEq)]
pub struct InputImage {
    pub name: String,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InputError {
    #[error("This job is {size_mb:.1} MB once its images are encoded; RunPod's /run takes at most 10 MB. Use smaller or fewer input images, or run it on a ComfyUI server or pod.")]
    TooLarge { size_mb: f64 },
}

/// The body of `/run`: `{"input": {"workflow": …, "images": [{"name", "image": base64}]}}`. Refused before sending
/// when over the limit.
pub fn run_body(workflow: &Value, images: &[InputImage]) -> Result<Vec<u8>, InputError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut input = serde_json::json!({ "workflow": workflow });
    if !images.is_empty() {
        input["images"] = images
            .iter()
            .map(|i| serde_json::json!({"name": i.name, "image": b64.encode(&i.bytes)}))
            .collect();
    }
    let body = serde_json::to_vec(&serde_json::json!({ "input": input })).unwrap_or_default();
    if body.len() > RUN_LIMIT {
        return Err(InputError::TooLarge {
            size_mb: body.len() as f64 / 1e6,
        });
    }
    Ok(body)
}

/// One output of a finished job.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputFile {
    /// Sent inline.
    Inline { file_name: String, bytes: Vec<u8> },
    /// Stored by the worker in a bucket; fetched from there.
    Url { file_name: String, url: String },
}

/// The outputs of a COMPLETED job: worker-comfyui ≥ 5 (`images[]`, base64 or `s3_url`), < 5 (`message`, base64 or a
/// URL), or `success_no_images`. Pure.
pub fn outputs(output: &Value) -> Result<Vec<OutputFile>, String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let decode = |data: &str| {
        let data = data
            .split_once(";base64,")
            .map(|(_, d)| d)
            .unwrap_or(data)
            .trim();
        b64.decode(data)
            .map_err(|e| format!("the worker sent an image that is not base64 ({e})"))
    };
    if let Some(images) = output.get("images").and_then(Value::as_array) {
        let mut out = Vec::new();
        for (i, img) in images.iter().enumerate() {
            let file_name = img["filename"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("runpod_{:05}.png", i + 1));
            let data = img["data"].as_str().unwrap_or_default();
            match img["type"].as_str().unwrap_or("base64") {
                "s3_url" => out.push(OutputFile::Url {
                    file_name,
                    url: data.to_string(),
                }),
                _ => out.push(OutputFile::Inline {
                    file_name,
                    bytes: decode(data)?,
                }),
            }
        }
        return Ok(out);
    }
    if let Some(message) = output.get("message").and_then(Value::as_str) {
        let file_name = "runpod_00001.png".to_string();
        if message.starts_with("http://") || message.starts_with("https://") {
            return Ok(vec![OutputFile::Url {
                file_name,
                url: message.to_string(),
            }]);
        }
        return Ok(vec![OutputFile::Inline {
            file_name,
            bytes: decode(message)?,
        }]);
    }
    match output.get("status").and_then(Value::as_str) {
        Some("success_no_images") | Some("success") => Ok(Vec::new()),
        _ => Err(format!(
            "the worker's output has neither images nor a message: {}",
            crate::downloads::redact_text(&truncate(&output.to_string(), 300))
        )),
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

/// What a FAILED job's `error` says, for people: worker-comfyui's validation text as is; an uncaught exception's
/// JSON reduced to its type and message. Pure.
pub fn failure_text(error: Option<&Value>) -> String {
    let raw = match error {
        None | Some(Value::Null) => return "The RunPod job failed without saying why.".into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    if let Ok(v) = serde_json::from_str::<Value>(&raw) {
        if let Some(msg) = v.get("error_message").and_then(Value::as_str) {
            let kind = v
                .get("error_type")
                .and_then(Value::as_str)
                .unwrap_or("error");
            return truncate(&format!("{kind}: {msg}"), 2000);
        }
    }
    truncate(raw.trim(), 2000)
}

/// How long to wait before the next status request of a job that has been followed for `elapsed_ms`, and that
/// is expected to take `expected_ms` in all (learned from earlier jobs; 0 when unknown). About one request per
/// second while it runs (so completion is seen within a second); slower while it can only be waiting. Pure.
pub fn poll_delay_ms(elapsed_ms: u64, expected_ms: u64) -> u64 {
    let far_from_done = expected_ms > 0 && elapsed_ms + 5_000 < expected_ms;
    if far_from_done {
        2_000
    } else {
        1_000
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn serverless_states_parse_with_unknown_ones_kept() {
        assert_eq!(JobState::parse("IN_QUEUE"), JobState::InQueue);
        assert_eq!(JobState::parse("RUNNING"), JobState::InProgress);
        assert!(JobState::parse("TIMED_OUT").is_final());
        assert!(!JobState::parse("THROTTLED").is_final());
        let s: StatusBody = serde_json::from_value(json!({"delayTime":824,"executionTime":3391,"id":"j","output":{},"status":"COMPLETED","workerId":"w"})).unwrap();
        assert_eq!(
            (s.delay_time, s.execution_time, s.state()),
            (Some(824), Some(3391), JobState::Completed)
        );
    }

    #[test]
    fn serverless_run_body_carries_workflow_and_base64_images_and_refuses_over_10_mb() {
        let wf = json!({"1": {"class_type": "LoadImage", "inputs": {"image": "in.png"}}});
        let body = run_body(
            &wf,
            &[InputImage {
                name: "in.png".into(),
                bytes: vec![1, 2, 3],
            }],
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["input"]["workflow"], wf);
        assert_eq!(
            v["input"]["images"][0],
            json!({"name": "in.png", "image": "AQID"})
        );
        let big = InputImage {
            name: "big.png".into(),
            bytes: vec![0; 8_000_000],
        };
        let e = run_body(&wf, &[big]).unwrap_err();
        assert!(e.to_string().contains("10 MB"), "{e}");
    }

    #[test]
    fn serverless_outputs_accept_every_worker_format() {
        let png = base64::engine::general_purpose::STANDARD.encode(b"\x89PNG");
        assert_eq!(
            outputs(&json!({"images": [{"filename": "ComfyUI_00001_.png", "type": "base64", "data": png}]})).unwrap(),
            [OutputFile::Inline { file_name: "ComfyUI_00001_.png".into(), bytes: b"\x89PNG".to_vec() }]
        );
        assert_eq!(
            outputs(&json!({"images": [{"filename": "a.png", "type": "s3_url", "data": "https://b/a.png"}]})).unwrap(),
            [OutputFile::Url { file_name: "a.png".into(), url: "https://b/a.png".into() }]
        );
        let legacy = outputs(
            &json!({"status": "success", "message": format!("data:image/png;base64,{png}")}),
        )
        .unwrap();
        assert!(matches!(&legacy[0], OutputFile::Inline { bytes, .. } if bytes == b"\x89PNG"));
        assert!(matches!(
            &outputs(&json!({"message": "https://x/y.png"})).unwrap()[0],
            OutputFile::Url { .. }
        ));
        assert_eq!(
            outputs(&json!({"status": "success_no_images", "images": []})).unwrap(),
            []
        );
        assert!(
            outputs(&json!({"images": [{"type": "base64", "data": "%%%"}]}))
                .unwrap_err()
                .contains("base64")
        );
        assert!(outputs(&json!({"weird": 1})).is_err());
    }

    #[test]
    fn serverless_failures_keep_the_validation_text_and_shorten_tracebacks() {
        let v = json!("Workflow validation failed:\n• Node 4 (errors): ckpt_name not in list");
        assert!(failure_text(Some(&v)).contains("Node 4 (errors)"));
        let exc = json!(
            r#"{"error_type":"RuntimeError","error_message":"CUDA out of memory","error_traceback":"..."}"#
        );
        assert_eq!(failure_text(Some(&exc)), "RuntimeError: CUDA out of memory");
        assert!(failure_text(None).contains("without saying why"));
    }

    #[test]
    fn serverless_polls_about_once_a_second_and_slower_when_far_from_done() {
        assert_eq!(poll_delay_ms(0, 0), 1_000);
        assert_eq!(poll_delay_ms(3_000, 0), 1_000);
        assert_eq!(poll_delay_ms(1_000, 60_000), 2_000);
        assert_eq!(poll_delay_ms(56_000, 60_000), 1_000);
    }
}
