//! ComfyUI workflows in API format: parsing with clear refusals, `--set` edits, the models a workflow
//! names, its editable text inputs, and the built-in text-to-image templates. Pure.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

/// Workflows larger than this are refused before parsing: real ones are kilobytes, rarely a few MB.
pub const MAX_WORKFLOW_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkflowError {
    #[error("The workflow is {size_mb} MB; ComfyFleet accepts workflows up to {} MB. Is this really a workflow file?", MAX_WORKFLOW_BYTES / 1024 / 1024)]
    TooLarge { size_mb: usize },
    #[error("The workflow is empty.")]
    Empty,
    #[error("The workflow is not valid JSON ({reason}).")]
    NotJson { reason: String },
    #[error("This is a workflow in ComfyUI's UI format (it has \"nodes\" and \"links\"), which cannot be queued directly. In ComfyUI, enable Settings > Comfy > Dev mode, then use Workflow > Export (API) and load that file instead.")]
    UiFormat,
    #[error("The workflow must be a JSON object of nodes keyed by id, like {{\"3\": {{\"class_type\": \"KSampler\", \"inputs\": {{…}}}}}}.")]
    NotAnObject,
    #[error("The workflow has no nodes.")]
    NoNodes,
    #[error("Node '{node}' has no \"class_type\"; the file is not an API-format workflow.")]
    MissingClassType { node: String },
    #[error("Node '{node}' has no \"inputs\" object; the file is not an API-format workflow.")]
    MissingInputs { node: String },
    #[error("'{spec}' is not of the form NODE.inputs.FIELD=VALUE (e.g. 6.inputs.text=\"a cat\").")]
    BadSet { spec: String },
    #[error("The workflow has no node '{node}' (it has: {known}).")]
    UnknownNode { node: String, known: String },
}

impl crate::HasErrorInfo for WorkflowError {
    fn code(&self) -> &'static str {
        match self {
            WorkflowError::UiFormat => "workflow.ui_format",
            WorkflowError::TooLarge { .. } => "workflow.too_large",
            WorkflowError::UnknownNode { .. } | WorkflowError::BadSet { .. } => "workflow.bad_set",
            _ => "workflow.invalid",
        }
    }
}

/// An API-format workflow: `{node_id: {class_type, inputs, …}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Workflow {
    nodes: Map<String, Value>,
}

/// A model file a workflow needs, and the ComfyUI models folder it lives in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct ModelRef {
    pub folder: String,
    pub name: String,
}

/// A text input of a node that a user may want to edit (a prompt, a filename prefix).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct TextInput {
    pub node_id: String,
    pub class_type: String,
    pub field: String,
    pub value: String,
}

/// Loader inputs that name model files: (class_type, input name, models folder).
const MODEL_INPUTS: &[(&str, &str, &str)] = &[
    ("CheckpointLoaderSimple", "ckpt_name", "checkpoints"),
    ("CheckpointLoader", "ckpt_name", "checkpoints"),
    ("ImageOnlyCheckpointLoader", "ckpt_name", "checkpoints"),
    ("unCLIPCheckpointLoader", "ckpt_name", "checkpoints"),
    ("LoraLoader", "lora_name", "loras"),
    ("LoraLoaderModelOnly", "lora_name", "loras"),
    ("VAELoader", "vae_name", "vae"),
    ("UNETLoader", "unet_name", "diffusion_models"),
    ("CLIPLoader", "clip_name", "text_encoders"),
    ("DualCLIPLoader", "clip_name1", "text_encoders"),
    ("DualCLIPLoader", "clip_name2", "text_encoders"),
    ("TripleCLIPLoader", "clip_name1", "text_encoders"),
    ("TripleCLIPLoader", "clip_name2", "text_encoders"),
    ("TripleCLIPLoader", "clip_name3", "text_encoders"),
    ("QuadrupleCLIPLoader", "clip_name1", "text_encoders"),
    ("QuadrupleCLIPLoader", "clip_name2", "text_encoders"),
    ("QuadrupleCLIPLoader", "clip_name3", "text_encoders"),
    ("QuadrupleCLIPLoader", "clip_name4", "text_encoders"),
    ("ControlNetLoader", "control_net_name", "controlnet"),
    ("DiffControlNetLoader", "control_net_name", "controlnet"),
    ("UpscaleModelLoader", "model_name", "upscale_models"),
    ("CLIPVisionLoader", "clip_name", "clip_vision"),
    ("StyleModelLoader", "style_model_name", "style_models"),
];

impl Workflow {
    /// Parse a workflow file's text, refusing what ComfyUI would refuse with a message that says what to do.
    pub fn parse(text: &str) -> Result<Self, WorkflowError> {
        if text.len() > MAX_WORKFLOW_BYTES {
            return Err(WorkflowError::TooLarge {
                size_mb: text.len().div_ceil(1024 * 1024),
            });
        }
        if text.trim().is_empty() {
            return Err(WorkflowError::Empty);
        }
        let value: Value = serde_json::from_str(text).map_err(|e| WorkflowError::NotJson {
            reason: e.to_string(),
        })?;
        Self::from_value(value)
    }

    pub fn from_value(value: Value) -> Result<Self, WorkflowError> {
        let Value::Object(mut obj) = value else {
            return Err(WorkflowError::NotAnObject);
        };
        if obj.contains_key("nodes") && obj.contains_key("links") {
            return Err(WorkflowError::UiFormat);
        }
        // Accept the body of a POST /prompt too: {"prompt": {...}}.
        if let Some(Value::Object(inner)) = obj.get("prompt") {
            if !obj.contains_key("class_type") {
                obj = inner.clone();
            }
        }
        if obj.is_empty() {
            return Err(WorkflowError::NoNodes);
        }
        for (id, node) in &obj {
            let Value::Object(n) = node else {
                return Err(WorkflowError::MissingClassType { node: id.clone() });
            };
            if !n.get("class_type").is_some_and(Value::is_string) {
                return Err(WorkflowError::MissingClassType { node: id.clone() });
            }
            if !n.get("inputs").is_some_and(Value::is_object) {
                return Err(WorkflowError::MissingInputs { node: id.clone() });
            }
        }
        Ok(Self { nodes: obj })
    }

    /// The workflow as sent in `POST /prompt`'s `prompt` field.
    pub fn to_value(&self) -> Value {
        Value::Object(self.nodes.clone())
    }

    pub fn node_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.nodes.keys().cloned().collect();
        ids.sort_by_key(|a| natural(a));
        ids
    }

    fn class_type(node: &Value) -> &str {
        node.get("class_type").and_then(Value::as_str).unwrap_or("")
    }

    /// Apply `NODE.inputs.FIELD=VALUE`. VALUE is JSON when it parses as JSON, else a string.
    pub fn set(&mut self, spec: &str) -> Result<(), WorkflowError> {
        let bad = || WorkflowError::BadSet {
            spec: spec.to_string(),
        };
        let (path, raw) = spec.split_once('=').ok_or_else(bad)?;
        let mut parts = path.splitn(3, '.');
        let (node, inputs, field) = (
            parts.next().ok_or_else(bad)?,
            parts.next().ok_or_else(bad)?,
            parts.next().ok_or_else(bad)?,
        );
        if inputs != "inputs" || node.is_empty() || field.is_empty() {
            return Err(bad());
        }
        let value =
            serde_json::from_str::<Value>(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
        self.set_input(node, field, value)
    }

    /// Set one input of one node.
    pub fn set_input(
        &mut self,
        node: &str,
        field: &str,
        value: Value,
    ) -> Result<(), WorkflowError> {
        let known = self.node_ids().join(", ");
        let n = self
            .nodes
            .get_mut(node)
            .ok_or_else(|| WorkflowError::UnknownNode {
                node: node.into(),
                known,
            })?;
        if let Some(Value::Object(inputs)) = n.get_mut("inputs") {
            inputs.insert(field.to_string(), value);
        }
        Ok(())
    }

    /// The model files the workflow names, sorted and without duplicates.
    pub fn models(&self) -> Vec<ModelRef> {
        let mut out: Vec<ModelRef> = Vec::new();
        for node in self.nodes.values() {
            let class = Self::class_type(node);
            for (c, input, folder) in MODEL_INPUTS {
                if *c != class {
                    continue;
                }
                if let Some(name) = node
                    .get("inputs")
                    .and_then(|i| i.get(*input))
                    .and_then(Value::as_str)
                {
                    let r = ModelRef {
                        folder: (*folder).into(),
                        name: name.into(),
                    };
                    if !out.contains(&r) {
                        out.push(r);
                    }
                }
            }
        }
        out.sort();
        out
    }

    /// Local files a `LoadImage` node names (to upload before queueing).
    pub fn image_inputs(&self) -> Vec<(String, String)> {
        self.nodes
            .iter()
            .filter(|(_, n)| Self::class_type(n) == "LoadImage")
            .filter_map(|(id, n)| {
                n.get("inputs")?
                    .get("image")?
                    .as_str()
                    .map(|s| (id.clone(), s.to_string()))
            })
            .collect()
    }

    /// String inputs a user may edit (literal strings, not links), in node order.
    pub fn text_inputs(&self) -> Vec<TextInput> {
        let mut out = Vec::new();
        for id in self.node_ids() {
            let node = &self.nodes[&id];
            if let Some(Value::Object(inputs)) = node.get("inputs") {
                let fields: BTreeMap<_, _> = inputs.iter().collect();
                for (field, v) in fields {
                    if let Value::String(s) = v {
                        out.push(TextInput {
                            node_id: id.clone(),
                            class_type: Self::class_type(node).into(),
                            field: field.clone(),
                            value: s.clone(),
                        });
                    }
                }
            }
        }
        out
    }
}

/// Sort key that puts "2" before "10".
fn natural(id: &str) -> (u64, String) {
    (id.parse::<u64>().unwrap_or(u64::MAX), id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIMPLE: &str = r#"{"1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "probe"}}}"#;

    #[test]
    fn workflow_parses_an_api_format_workflow_and_a_prompt_body() {
        let w = Workflow::parse(SIMPLE).unwrap();
        assert_eq!(w.node_ids(), vec!["1", "2"]);
        let body = format!(r#"{{"prompt": {SIMPLE}, "client_id": "x"}}"#);
        assert_eq!(Workflow::parse(&body).unwrap(), w);
    }

    #[test]
    fn workflow_refuses_ui_format_with_export_instructions() {
        let e = Workflow::parse(r#"{"last_node_id": 9, "nodes": [], "links": [], "version": 0.4}"#)
            .unwrap_err();
        assert_eq!(e, WorkflowError::UiFormat);
        assert!(e.to_string().contains("Export (API)"));
    }

    #[test]
    fn workflow_refuses_bad_input_clearly() {
        assert_eq!(Workflow::parse("  ").unwrap_err(), WorkflowError::Empty);
        assert!(matches!(
            Workflow::parse("{nope"),
            Err(WorkflowError::NotJson { .. })
        ));
        assert_eq!(
            Workflow::parse("[1]").unwrap_err(),
            WorkflowError::NotAnObject
        );
        assert_eq!(Workflow::parse("{}").unwrap_err(), WorkflowError::NoNodes);
        assert_eq!(
            Workflow::parse(r#"{"1": {"inputs": {}}}"#).unwrap_err(),
            WorkflowError::MissingClassType { node: "1".into() }
        );
        assert_eq!(
            Workflow::parse(r#"{"1": {"class_type": "X"}}"#).unwrap_err(),
            WorkflowError::MissingInputs { node: "1".into() }
        );
        let huge = format!(
            "{{\"1\": {{\"class_type\": \"X\", \"inputs\": {{\"t\": \"{}\"}}}}}}",
            "x".repeat(100 * 1024 * 1024)
        );
        assert!(matches!(
            Workflow::parse(&huge),
            Err(WorkflowError::TooLarge { size_mb: 101 })
        ));
    }

    #[test]
    fn workflow_set_edits_inputs_and_names_unknown_nodes() {
        let mut w = Workflow::parse(SIMPLE).unwrap();
        w.set("1.inputs.width=128").unwrap();
        w.set("2.inputs.filename_prefix=cat pics").unwrap();
        w.set(r#"2.inputs.filename_prefix="quoted""#).unwrap();
        let v = w.to_value();
        assert_eq!(v["1"]["inputs"]["width"], 128);
        assert_eq!(v["2"]["inputs"]["filename_prefix"], "quoted");
        let e = w.set("9.inputs.x=1").unwrap_err();
        assert_eq!(
            e,
            WorkflowError::UnknownNode {
                node: "9".into(),
                known: "1, 2".into()
            }
        );
        assert!(matches!(
            w.set("1.width=3"),
            Err(WorkflowError::BadSet { .. })
        ));
        assert!(matches!(
            w.set("1.inputs.width"),
            Err(WorkflowError::BadSet { .. })
        ));
    }

    #[test]
    fn workflow_lists_the_models_it_names() {
        let w = Workflow::parse(r#"{
            "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"}},
            "10": {"class_type": "LoraLoader", "inputs": {"lora_name": "style.safetensors", "model": ["4", 0]}},
            "11": {"class_type": "DualCLIPLoader", "inputs": {"clip_name1": "t5xxl.safetensors", "clip_name2": "clip_l.safetensors"}},
            "12": {"class_type": "UNETLoader", "inputs": {"unet_name": "flux1-dev.safetensors"}},
            "13": {"class_type": "VAELoader", "inputs": {"vae_name": "ae.safetensors"}},
            "14": {"class_type": "ControlNetLoader", "inputs": {"control_net_name": "canny.safetensors"}},
            "15": {"class_type": "UpscaleModelLoader", "inputs": {"model_name": "4x.pth"}},
            "16": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"}}
        }"#).unwrap();
        let names: Vec<_> = w
            .models()
            .into_iter()
            .map(|m| format!("{}/{}", m.folder, m.name))
            .collect();
        assert_eq!(
            names,
            vec![
                "checkpoints/sd_xl_base_1.0.safetensors",
                "controlnet/canny.safetensors",
                "diffusion_models/flux1-dev.safetensors",
                "loras/style.safetensors",
                "text_encoders/clip_l.safetensors",
                "text_encoders/t5xxl.safetensors",
                "upscale_models/4x.pth",
                "vae/ae.safetensors",
            ]
        );
    }

    #[test]
    fn workflow_lists_editable_text_inputs_in_node_order() {
        let w = Workflow::parse(
            r#"{"10": {"class_type": "CLIPTextEncode", "inputs": {"text": "b", "clip": ["4", 1]}},
            "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a", "clip": ["4", 1]}}}"#,
        )
        .unwrap();
        let t = w.text_inputs();
        assert_eq!(
            t.iter()
                .map(|t| (t.node_id.as_str(), t.value.as_str()))
                .collect::<Vec<_>>(),
            vec![("6", "a"), ("10", "b")]
        );
    }
}
