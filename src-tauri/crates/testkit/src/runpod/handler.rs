//! The worker-comfyui image's handler (v5.8.x `handler.py`) as a pure function of a job's `input`: the checks it
//! makes before running, the images it returns, and how it words its failures.

use base64::Engine;
use serde_json::{json, Map, Value};

use super::config::OutputFlavour;
use crate::comfy::png;

/// Node classes the fake's ComfyUI knows; any other class fails validation.
pub const KNOWN_NODE_CLASSES: [&str; 9] = [
    "EmptyImage",
    "SaveImage",
    "PreviewImage",
    "CheckpointLoaderSimple",
    "KSampler",
    "CLIPTextEncode",
    "EmptyLatentImage",
    "VAEDecode",
    "LoadImage",
];

/// Output sides are clamped to this, so a huge `width` costs nothing.
const MAX_SIDE: u32 = 2048;

/// One image a successful job produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputImage {
    pub filename: String,
    pub png: Vec<u8>,
}

/// Checks `input` as worker-comfyui does and "runs" the workflow: the images its `SaveImage` nodes would write
/// (numbered from `counter` + 1), or the job's `error` text.
pub fn run(input: &Value, counter: &mut u32) -> Result<Vec<OutputImage>, String> {
    let Some(input) = input.as_object() else {
        return Err("Please provide input".to_string());
    };
    let Some(workflow) = input.get("workflow") else {
        return Err("Missing 'workflow' parameter".to_string());
    };
    let workflow = match workflow {
        // worker-comfyui also accepts the workflow as a JSON string.
        Value::String(text) => serde_json::from_str::<Value>(text)
            .map_err(|_| "Invalid JSON format in input".to_string())?,
        other => other.clone(),
    };
    let Some(nodes) = workflow.as_object() else {
        return Err("'workflow' must be a JSON object".to_string());
    };
    if let Some(images) = input.get("images") {
        check_images(images)?;
    }
    validate(nodes)?;
    Ok(save_images(nodes, counter))
}

/// `images` must be a list of `{name, image}` whose `image` is base64 (a `data:...;base64,` prefix is allowed).
fn check_images(images: &Value) -> Result<(), String> {
    let Some(list) = images.as_array() else {
        return Err("'images' must be a list of objects with 'name' and 'image' keys".to_string());
    };
    for item in list {
        let (Some(name), Some(data)) = (
            item.get("name").and_then(Value::as_str),
            item.get("image").and_then(Value::as_str),
        ) else {
            return Err(
                "'images' must be a list of objects with 'name' and 'image' keys".to_string(),
            );
        };
        let data = match data.split_once(',') {
            Some((prefix, rest)) if prefix.starts_with("data:") => rest,
            _ => data,
        };
        if base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .is_err()
        {
            return Err(format!(
                "Error uploading image {name}: Error decoding base64 for {name}: Incorrect padding"
            ));
        }
    }
    Ok(())
}

/// ComfyUI's validation of the prompt, worded as worker-comfyui reports a `/prompt` 400.
fn validate(nodes: &Map<String, Value>) -> Result<(), String> {
    let mut details = Vec::new();
    for (id, node) in nodes {
        match node.get("class_type").and_then(Value::as_str) {
            None => details.push(format!(
                "Node {id} (errors): Cannot execute because a node is missing the class_type property."
            )),
            Some(class) if !KNOWN_NODE_CLASSES.contains(&class) => details.push(format!(
                "Node {id} (errors): Cannot execute because node {class} does not exist."
            )),
            Some(_) => {}
        }
    }
    let has_output = nodes
        .values()
        .any(|n| matches!(class_of(n), "SaveImage" | "PreviewImage"));
    if details.is_empty() && !has_output {
        details.push("Prompt has no outputs".to_string());
    }
    if details.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = details.iter().map(|d| format!("• {d}")).collect();
    Err(format!("Workflow validation failed:\n{}", lines.join("\n")))
}

fn class_of(node: &Value) -> &str {
    node.get("class_type").and_then(Value::as_str).unwrap_or("")
}

fn input_u32(node: &Value, name: &str) -> Option<u32> {
    node.get("inputs")?
        .get(name)?
        .as_u64()
        .map(|v| v.min(u64::from(u32::MAX)) as u32)
}

/// Every `SaveImage` writes one PNG per image of the batch, sized and coloured by the workflow's `EmptyImage` (or
/// `EmptyLatentImage` x 8 after decoding; 512² grey otherwise). `PreviewImage` writes temp files, which
/// worker-comfyui does not return.
fn save_images(nodes: &Map<String, Value>, counter: &mut u32) -> Vec<OutputImage> {
    let source = nodes
        .values()
        .find(|n| matches!(class_of(n), "EmptyImage" | "EmptyLatentImage"));
    let (width, height, batch, rgb) = match source {
        Some(n) if class_of(n) == "EmptyImage" => {
            let color = input_u32(n, "color").unwrap_or(0);
            (
                input_u32(n, "width").unwrap_or(512),
                input_u32(n, "height").unwrap_or(512),
                input_u32(n, "batch_size").unwrap_or(1),
                [(color >> 16) as u8, (color >> 8) as u8, color as u8],
            )
        }
        Some(n) => (
            input_u32(n, "width").unwrap_or(512),
            input_u32(n, "height").unwrap_or(512),
            input_u32(n, "batch_size").unwrap_or(1),
            [128, 128, 128],
        ),
        None => (512, 512, 1, [128, 128, 128]),
    };
    let png = png::solid_rgb(width.clamp(1, MAX_SIDE), height.clamp(1, MAX_SIDE), rgb);
    let mut out = Vec::new();
    for node in nodes.values().filter(|n| class_of(n) == "SaveImage") {
        let prefix = node
            .get("inputs")
            .and_then(|i| i.get("filename_prefix"))
            .and_then(Value::as_str)
            .unwrap_or("ComfyUI");
        for _ in 0..batch.clamp(1, 8) {
            *counter += 1;
            out.push(OutputImage {
                filename: format!("{prefix}_{:05}_.png", *counter),
                png: png.clone(),
            });
        }
    }
    out
}

/// The job's `output` for these images. `s3_url(filename)` is the URL an uploaded file gets.
pub fn output(
    images: &[OutputImage],
    flavour: &OutputFlavour,
    s3_url: impl Fn(&str) -> String,
) -> Value {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    if images.is_empty() {
        return json!({"status": "success_no_images", "images": []});
    }
    match flavour {
        OutputFlavour::Base64 => json!({
            "images": images
                .iter()
                .map(|i| json!({"filename": i.filename, "type": "base64", "data": b64(&i.png)}))
                .collect::<Vec<_>>()
        }),
        OutputFlavour::S3Url => json!({
            "images": images
                .iter()
                .map(|i| json!({"filename": i.filename, "type": "s3_url", "data": s3_url(&i.filename)}))
                .collect::<Vec<_>>()
        }),
        OutputFlavour::Legacy => json!({"status": "success", "message": b64(&images[0].png)}),
    }
}

/// The `error` of a job whose handler raised (the [`super::Fault::JobRuntimeError`] fault), as the RunPod SDK
/// reports an uncaught exception: a JSON string.
pub fn uncaught_exception() -> String {
    json!({
        "error_type": "<class 'RuntimeError'>",
        "error_message": "CUDA error: an illegal memory access was encountered",
        "error_traceback": "Traceback (most recent call last):\n  File \"/rp_job.py\", line 164, in run_job\n    handler_return = handler(job)\n  File \"/handler.py\", line 580, in handler\n    raise RuntimeError(\"CUDA error: an illegal memory access was encountered\")\nRuntimeError: CUDA error: an illegal memory access was encountered\n",
        "hostname": "fakeworker",
        "worker_id": "fakeworker",
        "runpod_version": "1.7.9"
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workflow() -> Value {
        json!({
            "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 32, "batch_size": 1, "color": 0xff0000}},
            "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "ComfyUI"}}
        })
    }

    #[test]
    fn handler_saves_one_numbered_png_per_save_image() {
        let mut counter = 0;
        let images = run(&json!({"workflow": workflow()}), &mut counter).unwrap();
        assert_eq!(images.len(), 1);
        assert_eq!(images[0].filename, "ComfyUI_00001_.png");
        assert_eq!(png::dimensions(&images[0].png), Some((64, 32)));
        let again = run(&json!({"workflow": workflow()}), &mut counter).unwrap();
        assert_eq!(again[0].filename, "ComfyUI_00002_.png");
    }

    #[test]
    fn handler_words_its_failures_as_worker_comfyui() {
        let mut c = 0;
        assert_eq!(
            run(&json!({"prompt": {}}), &mut c),
            Err("Missing 'workflow' parameter".to_string())
        );
        let bad = json!({"workflow": {"4": {"class_type": "FluxMagic", "inputs": {}}, "9": {"class_type": "SaveImage", "inputs": {}}}});
        assert_eq!(
            run(&bad, &mut c),
            Err("Workflow validation failed:\n• Node 4 (errors): Cannot execute because node FluxMagic does not exist.".to_string())
        );
        let images = json!({"workflow": workflow(), "images": [{"name": "a.png", "image": "data:image/png;base64,!!!"}]});
        assert!(run(&images, &mut c).unwrap_err().contains("a.png"));
        let images = json!({"workflow": workflow(), "images": [{"name": "a.png", "image": "data:image/png;base64,aGVsbG8="}]});
        assert!(run(&images, &mut c).is_ok());
    }

    #[test]
    fn handler_returns_no_images_without_save_image() {
        let mut c = 0;
        let preview = json!({"workflow": {"1": {"class_type": "EmptyImage", "inputs": {}}, "2": {"class_type": "PreviewImage", "inputs": {}}}});
        let images = run(&preview, &mut c).unwrap();
        assert_eq!(
            output(&images, &OutputFlavour::Base64, |_| String::new()),
            json!({"status": "success_no_images", "images": []})
        );
    }
}
