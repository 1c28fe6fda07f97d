//! ComfyUI's API shapes for the gateway: `POST /prompt` bodies and their refusals, history and queue entries, the
//! WebSocket messages a job's changes become, and uploads named in `LoadImage` nodes. Pure.

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Map, Value};

use crate::jobs::{Job, JobState};
use crate::workflow::{Workflow, WorkflowError};

/// What a `POST /prompt` asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptRequest {
    pub workflow: Workflow,
    /// The WebSocket client that should hear about it (`None`: every client).
    pub client_id: Option<String>,
    /// An id the client chose for it (ComfyUI accepts one); the job's own id otherwise.
    pub prompt_id: Option<String>,
    pub extra_data: Value,
}

/// A refusal in ComfyUI's shape: `{"error": {type, message, details, extra_info}, "node_errors": {}}` with 400.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub kind: &'static str,
    pub message: String,
    pub details: String,
}

impl ApiError {
    fn new(kind: &'static str, message: impl Into<String>, details: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
            details: details.into(),
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "error": {"type": self.kind, "message": self.message, "details": self.details, "extra_info": {}},
            "node_errors": {}
        })
    }
}

/// Read a `POST /prompt` body as ComfyUI does: `{"prompt": {...}, "client_id"?, "prompt_id"?, "extra_data"?}`.
pub fn parse_prompt(body: &[u8]) -> Result<PromptRequest, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            "invalid_prompt",
            "The request is not JSON",
            format!("{e}; send {{\"prompt\": {{...}}, \"client_id\": \"...\"}}"),
        )
    })?;
    let Some(prompt) = value.get("prompt").cloned() else {
        return Err(ApiError::new("no_prompt", "No prompt provided", ""));
    };
    let workflow = Workflow::from_value(prompt).map_err(|e| {
        let kind = match e {
            WorkflowError::NoNodes => "prompt_no_outputs",
            _ => "invalid_prompt",
        };
        ApiError::new(kind, "Invalid prompt", e.to_string())
    })?;
    let text = |key: &str| {
        value
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let prompt_id = text("prompt_id");
    if let Some(id) = &prompt_id {
        if id.len() > 200 || id.chars().any(char::is_control) {
            return Err(ApiError::new(
                "invalid_prompt",
                "Invalid prompt_id",
                "a prompt_id is at most 200 printable characters",
            ));
        }
    }
    Ok(PromptRequest {
        workflow,
        client_id: text("client_id"),
        prompt_id,
        extra_data: value.get("extra_data").cloned().unwrap_or(json!({})),
    })
}

/// Refuse, as ComfyUI does at `POST /prompt`, a prompt naming a node that no connected server of the fleet has, or
/// one with no output node. `known`: node class → whether it is an output node, over the connected servers. Pure.
pub fn check_nodes(workflow: &Workflow, known: &HashMap<String, bool>) -> Result<(), ApiError> {
    let nodes = workflow.to_value();
    let mut has_output = false;
    for id in workflow.node_ids() {
        let class = nodes[&id]["class_type"].as_str().unwrap_or("");
        match known.get(class) {
            None => {
                return Err(ApiError::new(
                    "invalid_prompt",
                    format!("Cannot execute because node {class} does not exist."),
                    format!("Node ID '#{id}' (none of the fleet's connected servers has it: install the custom node there)"),
                ))
            }
            Some(output) => has_output |= output,
        }
    }
    if !has_output {
        return Err(ApiError::new(
            "prompt_no_outputs",
            "Prompt has no outputs",
            "",
        ));
    }
    Ok(())
}

/// The node classes a server's `GET /object_info` lists, each with whether it is an output node. Pure.
pub fn node_classes(object_info: &Value) -> HashMap<String, bool> {
    object_info
        .as_object()
        .map(|classes| {
            classes
                .iter()
                .map(|(name, info)| {
                    let output = info
                        .get("output_node")
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                    (name.clone(), output)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The output nodes of a job with their files, as ComfyUI's history and `executed` messages list them. Files are in
/// the subfolder named by the job's id, so `GET /view` finds them among the job's own outputs.
pub fn outputs_by_node(job: &Job) -> BTreeMap<String, Value> {
    let mut by_node: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for o in job.outputs.iter().filter(|o| !o.path.is_empty()) {
        by_node.entry(o.node_id.clone()).or_default().push(json!({
            "filename": o.filename,
            "subfolder": job.id,
            "type": "output",
        }));
    }
    by_node
        .into_iter()
        .map(|(node, images)| (node, json!({ "images": images })))
        .collect()
}

/// `prompt` as the queue and the history list it: `[number, prompt_id, prompt, extra_data, outputs_to_execute]`.
pub fn prompt_tuple(job: &Job, prompt_id: &str, workflow: &Value, extra_data: &Value) -> Value {
    let outputs: Vec<String> = outputs_by_node(job).into_keys().collect();
    json!([job.queued_ms, prompt_id, workflow, extra_data, outputs])
}

/// A finished job as `GET /history/{id}` gives it; `None` while it has not finished (ComfyUI's history holds only
/// finished prompts).
pub fn history_entry(
    job: &Job,
    prompt_id: &str,
    workflow: &Value,
    extra_data: &Value,
) -> Option<Value> {
    if !job.state.is_final() {
        return None;
    }
    let start = json!(["execution_start", {"prompt_id": prompt_id, "timestamp": job.started_ms.unwrap_or(job.queued_ms)}]);
    let end_at = job.finished_ms.unwrap_or(job.queued_ms);
    let (status_str, end) = match job.state {
        JobState::Succeeded => (
            "success",
            json!(["execution_success", {"prompt_id": prompt_id, "timestamp": end_at}]),
        ),
        JobState::Cancelled => (
            "error",
            json!(["execution_interrupted", {"prompt_id": prompt_id, "node_id": null, "node_type": null, "executed": [], "timestamp": end_at}]),
        ),
        _ => (
            "error",
            json!(["execution_error", error_data(job, prompt_id, end_at)]),
        ),
    };
    let outputs: Map<String, Value> = outputs_by_node(job).into_iter().collect();
    Some(json!({
        "prompt": prompt_tuple(job, prompt_id, workflow, extra_data),
        "outputs": outputs,
        "status": {"status_str": status_str, "completed": job.state == JobState::Succeeded, "messages": [start, end]},
        "meta": {},
    }))
}

fn error_data(job: &Job, prompt_id: &str, at: i64) -> Value {
    json!({
        "prompt_id": prompt_id,
        "node_id": null,
        "node_type": null,
        "executed": [],
        "exception_message": job.error.clone().unwrap_or_else(|| "The job failed.".into()),
        "exception_type": "ComfyFleetError",
        "traceback": [],
        "current_inputs": {},
        "current_outputs": {},
        "timestamp": at,
    })
}

/// What a WebSocket client has been told about a job so far.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Told {
    pub started: bool,
    /// The last progress sent, in percent.
    pub percent: Option<u32>,
    pub finished: bool,
}

/// The WebSocket messages (`{"type", "data"}`) that tell a client what changed in `job` since `told`, and what it has
/// been told after them. Messages come in ComfyUI's order: `execution_start`, `progress`…, then `executed` per output
/// node, `executing` with node null (the prompt is done) and `execution_success`; or `execution_error` /
/// `execution_interrupted` before the final `executing`. A job seen only after it finished still gets its start.
pub fn job_messages(job: &Job, prompt_id: &str, told: Told) -> (Vec<Value>, Told) {
    let mut out = Vec::new();
    let mut now = told;
    if told.finished {
        return (out, now);
    }
    let msg = |kind: &str, data: Value| json!({"type": kind, "data": data});
    let started = matches!(
        job.state,
        JobState::Running | JobState::Succeeded | JobState::Failed
    ) || (job.state == JobState::Cancelled && job.started_ms.is_some());
    if started && !told.started {
        let at = job.started_ms.unwrap_or(job.queued_ms);
        out.push(msg(
            "execution_start",
            json!({"prompt_id": prompt_id, "timestamp": at}),
        ));
        now.started = true;
    }
    if job.state == JobState::Running {
        let percent = (job.progress.clamp(0.0, 1.0) * 100.0).round() as u32;
        if told.percent != Some(percent) && percent > 0 {
            out.push(msg(
                "progress",
                json!({"value": percent, "max": 100, "prompt_id": prompt_id, "node": null}),
            ));
            now.percent = Some(percent);
        }
    }
    if !job.state.is_final() {
        return (out, now);
    }
    let at = job.finished_ms.unwrap_or(job.queued_ms);
    match job.state {
        JobState::Succeeded => {
            for (node, output) in outputs_by_node(job) {
                out.push(msg(
                    "executed",
                    json!({"node": node, "display_node": node, "output": output, "prompt_id": prompt_id}),
                ));
            }
        }
        JobState::Cancelled => out.push(msg(
            "execution_interrupted",
            json!({"prompt_id": prompt_id, "node_id": null, "node_type": null, "executed": [], "timestamp": at}),
        )),
        _ => out.push(msg("execution_error", error_data(job, prompt_id, at))),
    }
    out.push(msg(
        "executing",
        json!({"node": null, "display_node": null, "prompt_id": prompt_id}),
    ));
    if job.state == JobState::Succeeded {
        out.push(msg(
            "execution_success",
            json!({"prompt_id": prompt_id, "timestamp": at}),
        ));
    }
    now.finished = true;
    (out, now)
}

/// The devices of the fleet's connected servers as `/system_stats` lists devices, named "<server>: <device>" and
/// numbered in order. Pure.
pub fn fleet_devices(servers: &[(String, Vec<crate::health::Device>)]) -> Vec<Value> {
    servers
        .iter()
        .flat_map(|(server, devices)| devices.iter().map(move |d| (server, d)))
        .enumerate()
        .map(|(index, (server, d))| {
            json!({
                "name": format!("{server}: {}", d.name),
                "type": d.kind,
                "index": index,
                "vram_total": d.vram_total,
                "vram_free": d.vram_free,
                "torch_vram_total": d.vram_total,
                "torch_vram_free": d.vram_free,
            })
        })
        .collect()
}

/// The `status` message: how many prompts are queued or running; `sid` is given on a connection's first message.
pub fn status_message(queue_remaining: usize, sid: Option<&str>) -> Value {
    let mut data = json!({"status": {"exec_info": {"queue_remaining": queue_remaining}}});
    if let Some(sid) = sid {
        data["sid"] = json!(sid);
    }
    json!({"type": "status", "data": data})
}

/// A preview image as ComfyUI's binary WebSocket frame: event 1 (preview image), then the image type (1 JPEG,
/// 2 PNG), both u32 big-endian, then the bytes.
pub fn preview_frame(mime: &str, bytes: &[u8]) -> Vec<u8> {
    let kind: u32 = if mime.contains("png") { 2 } else { 1 };
    let mut frame = Vec::with_capacity(8 + bytes.len());
    frame.extend_from_slice(&1u32.to_be_bytes());
    frame.extend_from_slice(&kind.to_be_bytes());
    frame.extend_from_slice(bytes);
    frame
}

/// A name for an upload that stays inside its folder: the last path component, without control characters; `None`
/// when nothing usable is left ("..", empty).
pub fn upload_name(name: &str) -> Option<String> {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("").trim();
    let clean: String = last.chars().filter(|c| !c.is_control()).collect();
    if clean.is_empty() || clean == "." || clean == ".." || clean.len() > 255 {
        return None;
    }
    Some(clean)
}

/// A subfolder for an upload: relative components only (no "..", no root); `None` when it tries to leave.
pub fn upload_subfolder(subfolder: &str) -> Option<String> {
    let mut parts = Vec::new();
    for part in subfolder
        .split(['/', '\\'])
        .filter(|p| !p.is_empty() && *p != ".")
    {
        if part == ".." || part.contains(':') || part.chars().any(char::is_control) {
            return None;
        }
        parts.push(part);
    }
    Some(parts.join("/"))
}

/// The upload a `LoadImage` value names, as ComfyUI writes it: "name.png", "sub/name.png", optionally followed by
/// " [input]". `None` for other annotations ("[output]", "[temp]") and absolute paths.
pub fn named_upload(value: &str) -> Option<(String, String)> {
    let v = value.trim();
    let v = v.strip_suffix(" [input]").unwrap_or(v);
    if v.ends_with(']') || v.starts_with('/') || v.contains(':') {
        return None;
    }
    let (sub, name) = match v.rsplit_once('/') {
        Some((sub, name)) => (upload_subfolder(sub)?, upload_name(name)?),
        None => (String::new(), upload_name(v)?),
    };
    Some((sub, name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::JobOutput;

    fn job(state: JobState) -> Job {
        Job {
            id: "j1".into(),
            name: "n".into(),
            state,
            priority: 5,
            target: None,
            server_id: Some("s".into()),
            remote_id: None,
            attempts: 0,
            max_attempts: 3,
            queued_ms: 1_000,
            started_ms: Some(2_000),
            finished_ms: Some(3_000),
            not_before_ms: 0,
            timeout_ms: 60_000,
            progress: 0.0,
            outputs: vec![
                JobOutput {
                    node_id: "9".into(),
                    filename: "a.png".into(),
                    path: "/g/a.png".into(),
                },
                JobOutput {
                    node_id: "9".into(),
                    filename: "b.png".into(),
                    path: "/g/b.png".into(),
                },
            ],
            error: None,
            failed_on: vec![],
            notes: vec![],
            delay_ms: None,
            execution_ms: None,
            waking: false,
        }
    }

    fn types(msgs: &[Value]) -> Vec<&str> {
        msgs.iter().map(|m| m["type"].as_str().unwrap()).collect()
    }

    #[test]
    fn gateway_reads_prompt_bodies_as_comfyui_does_and_refuses_in_its_shape() {
        let ok = parse_prompt(
            br#"{"prompt": {"1": {"class_type": "X", "inputs": {}}}, "client_id": "c1"}"#,
        )
        .unwrap();
        assert_eq!(ok.client_id.as_deref(), Some("c1"));
        assert_eq!(ok.prompt_id, None);
        assert_eq!(parse_prompt(b"{}").unwrap_err().kind, "no_prompt");
        let e = parse_prompt(br#"{"prompt": {"1": {"inputs": {}}}}"#).unwrap_err();
        assert_eq!(e.kind, "invalid_prompt");
        assert!(e.details.contains("class_type"), "{e:?}");
        assert_eq!(
            parse_prompt(br#"{"prompt": {}}"#).unwrap_err().kind,
            "prompt_no_outputs"
        );
        assert_eq!(
            parse_prompt(b"not json").unwrap_err().kind,
            "invalid_prompt"
        );
        let json = e.to_json();
        assert_eq!(json["error"]["type"], "invalid_prompt");
        assert!(json["node_errors"].is_object());
        let chosen = parse_prompt(
            br#"{"prompt": {"1": {"class_type": "X", "inputs": {}}}, "prompt_id": "mine"}"#,
        )
        .unwrap();
        assert_eq!(chosen.prompt_id.as_deref(), Some("mine"));
    }

    #[test]
    fn gateway_history_lists_finished_jobs_only_with_their_files_under_the_job() {
        let wf = json!({"9": {"class_type": "SaveImage", "inputs": {}}});
        assert_eq!(
            history_entry(&job(JobState::Running), "p", &wf, &json!({})),
            None
        );
        let h = history_entry(&job(JobState::Succeeded), "p", &wf, &json!({})).unwrap();
        assert_eq!(h["status"]["status_str"], "success");
        assert_eq!(h["status"]["completed"], true);
        assert_eq!(h["prompt"][1], "p");
        assert_eq!(h["prompt"][2], wf);
        assert_eq!(h["prompt"][4], json!(["9"]));
        let images = &h["outputs"]["9"]["images"];
        assert_eq!(
            images[1],
            json!({"filename": "b.png", "subfolder": "j1", "type": "output"})
        );
        let mut failed = job(JobState::Failed);
        failed.error = Some("Node 4: out of memory".into());
        let h = history_entry(&failed, "p", &wf, &json!({})).unwrap();
        assert_eq!(h["status"]["status_str"], "error");
        assert_eq!(h["status"]["messages"][1][0], "execution_error");
        assert_eq!(
            h["status"]["messages"][1][1]["exception_message"],
            "Node 4: out of memory"
        );
    }

    #[test]
    fn gateway_tells_a_job_in_comfyuis_order_once_even_when_first_seen_finished() {
        let mut j = job(JobState::Queued);
        let (msgs, told) = job_messages(&j, "p", Told::default());
        assert!(msgs.is_empty());
        j.state = JobState::Running;
        j.progress = 0.5;
        let (msgs, told) = job_messages(&j, "p", told);
        assert_eq!(types(&msgs), ["execution_start", "progress"]);
        assert_eq!(msgs[1]["data"]["value"], 50);
        // The same progress again says nothing new.
        assert!(job_messages(&j, "p", told).0.is_empty());
        j.state = JobState::Succeeded;
        let (msgs, told) = job_messages(&j, "p", told);
        assert_eq!(types(&msgs), ["executed", "executing", "execution_success"]);
        assert_eq!(msgs[0]["data"]["output"]["images"][0]["filename"], "a.png");
        assert!(msgs[1]["data"]["node"].is_null());
        assert!(job_messages(&j, "p", told).0.is_empty());
        // Seen for the first time already failed: started, failed, done.
        let mut f = job(JobState::Failed);
        f.error = Some("boom".into());
        let (msgs, _) = job_messages(&f, "p", Told::default());
        assert_eq!(
            types(&msgs),
            ["execution_start", "execution_error", "executing"]
        );
        // Cancelled before it started: interrupted, without a start.
        let mut c = job(JobState::Cancelled);
        c.started_ms = None;
        let (msgs, _) = job_messages(&c, "p", Told::default());
        assert_eq!(types(&msgs), ["execution_interrupted", "executing"]);
    }

    #[test]
    fn gateway_frames_previews_and_status_as_comfyui_does() {
        let f = preview_frame("image/png", b"xy");
        assert_eq!(f, [0, 0, 0, 1, 0, 0, 0, 2, b'x', b'y']);
        assert_eq!(preview_frame("image/jpeg", b"")[7], 1);
        assert_eq!(status_message(3, Some("c"))["data"]["sid"], "c");
        assert_eq!(
            status_message(3, None)["data"]["status"]["exec_info"]["queue_remaining"],
            3
        );
        assert!(status_message(0, None)["data"].get("sid").is_none());
    }

    #[test]
    fn gateway_lists_the_devices_of_every_connected_server_named_by_server() {
        let gpu = |name: &str, total: u64| crate::health::Device {
            name: name.into(),
            kind: "cuda".into(),
            vram_total: total,
            vram_free: total / 2,
        };
        let listed = fleet_devices(&[
            (
                "Studio".into(),
                vec![gpu("cuda:0 RTX 4090", 24), gpu("cuda:1 RTX 4090", 24)],
            ),
            ("Laptop".into(), vec![gpu("cuda:0 RTX 3060", 12)]),
        ]);
        let names: Vec<&str> = listed.iter().map(|d| d["name"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "Studio: cuda:0 RTX 4090",
                "Studio: cuda:1 RTX 4090",
                "Laptop: cuda:0 RTX 3060"
            ]
        );
        assert_eq!(listed[2]["index"], 2);
        assert_eq!(listed[2]["vram_free"], 6);
        assert_eq!(listed[2]["torch_vram_total"], 12);
        assert!(fleet_devices(&[]).is_empty());
    }

    #[test]
    fn gateway_refuses_unknown_nodes_and_prompts_without_outputs_as_comfyui_does() {
        let known = node_classes(&json!({
            "EmptyImage": {"output_node": false},
            "SaveImage": {"output_node": true},
            "PreviewImage": {"output_node": true}
        }));
        let wf = |v: Value| Workflow::from_value(v).unwrap();
        let fine = wf(
            json!({"1": {"class_type": "EmptyImage", "inputs": {}}, "2": {"class_type": "SaveImage", "inputs": {}}}),
        );
        assert_eq!(check_nodes(&fine, &known), Ok(()));
        let unknown = wf(
            json!({"1": {"class_type": "EmptyImage", "inputs": {}}, "2": {"class_type": "NoSuchNode", "inputs": {}}}),
        );
        let e = check_nodes(&unknown, &known).unwrap_err();
        assert_eq!(
            (e.kind, e.message.as_str()),
            (
                "invalid_prompt",
                "Cannot execute because node NoSuchNode does not exist."
            )
        );
        assert!(e.details.starts_with("Node ID '#2'"), "{e:?}");
        let no_output = wf(json!({"1": {"class_type": "EmptyImage", "inputs": {}}}));
        assert_eq!(
            check_nodes(&no_output, &known).unwrap_err().kind,
            "prompt_no_outputs"
        );
        assert!(node_classes(&json!("not an object")).is_empty());
    }

    #[test]
    fn gateway_uploads_stay_in_their_folder_and_are_found_by_the_names_clients_write() {
        assert_eq!(upload_name("../../etc/passwd").as_deref(), Some("passwd"));
        assert_eq!(upload_name("a\\b\\c.png").as_deref(), Some("c.png"));
        assert_eq!(upload_name(".."), None);
        assert_eq!(upload_name(""), None);
        assert_eq!(upload_subfolder("a/./b").as_deref(), Some("a/b"));
        assert_eq!(upload_subfolder("a/../../x"), None);
        assert_eq!(upload_subfolder("").as_deref(), Some(""));
        assert_eq!(
            named_upload("cat.png [input]"),
            Some((String::new(), "cat.png".into()))
        );
        assert_eq!(
            named_upload("pets/cat.png"),
            Some(("pets".into(), "cat.png".into()))
        );
        assert_eq!(named_upload("cat.png [output]"), None);
        assert_eq!(named_upload("/abs/cat.png"), None);
        assert_eq!(named_upload("../cat.png"), None);
    }
}
