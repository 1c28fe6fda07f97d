//! `execution.validate_prompt` as far as the fake follows it: every node has a `class_type`, there is an output,
//! model loaders name installed models, and `LoadImage` names an existing file. Node classes the fake does not know
//! are accepted (one that no other node uses counts as an output), and so are links to nodes that do not exist
//! (the run skips them).

use std::collections::HashSet;

use super::bodies;
use super::state::PyError;
use crate::pyjson::{object, OrderedJson};

/// Model loader inputs whose choices are a model folder (`folder_paths.get_filename_list`).
const MODEL_INPUTS: [(&str, &str, &str); 10] = [
    ("CheckpointLoaderSimple", "ckpt_name", "checkpoints"),
    ("LoraLoader", "lora_name", "loras"),
    ("LoraLoaderModelOnly", "lora_name", "loras"),
    ("VAELoader", "vae_name", "vae"),
    ("UNETLoader", "unet_name", "diffusion_models"),
    ("CLIPLoader", "clip_name", "text_encoders"),
    ("DualCLIPLoader", "clip_name1", "text_encoders"),
    ("DualCLIPLoader", "clip_name2", "text_encoders"),
    ("ControlNetLoader", "control_net_name", "controlnet"),
    ("UpscaleModelLoader", "model_name", "upscale_models"),
];

/// What validation reads from the server: model lists and input files.
pub(crate) struct Checks<'a> {
    /// The sorted file names of a model folder (empty for a folder that does not exist).
    pub models: &'a dyn Fn(&str) -> Vec<String>,
    /// Whether `LoadImage` finds this (possibly annotated) file.
    pub input_exists: &'a dyn Fn(&str) -> bool,
}

/// A prompt the server accepts: the outputs it will execute and the errors of the outputs it dropped.
#[derive(Debug, PartialEq)]
pub(crate) struct Accepted {
    pub outputs: Vec<String>,
    /// `node_errors` of the 200 answer (`{}` unless some outputs failed and others did not).
    pub node_errors: OrderedJson,
}

/// `Ok(Err(body))` is a 400 with that body; `Err(PyError)` is where Python raises (a 500).
pub(crate) fn validate_prompt(
    prompt: &OrderedJson,
    targets: Option<&OrderedJson>,
    checks: &Checks<'_>,
) -> Result<Result<Accepted, String>, PyError> {
    let nodes: Vec<(&str, &OrderedJson)> = match prompt {
        OrderedJson::Object(entries) => entries.iter().map(|(k, v)| (k.as_str(), v)).collect(),
        // `for x in prompt: prompt[x]` over an empty list or string never runs.
        OrderedJson::Array(items) if items.is_empty() => Vec::new(),
        OrderedJson::String(s) if s.is_empty() => Vec::new(),
        _ => return Err(PyError),
    };
    let linked: HashSet<&str> = nodes
        .iter()
        .flat_map(|(_, node)| inputs(node))
        .filter_map(|(_, value)| link(value).map(|(target, _)| target))
        .collect();
    let mut outputs = Vec::new();
    let mut unknown_class = false;
    for (id, node) in &nodes {
        if !node.py_contains("class_type").ok_or(PyError)? {
            return Ok(Err(bodies::prompt_error(
                "invalid_prompt",
                "Cannot execute because a node is missing the class_type property.",
                &format!("Node ID '#{id}'"),
            )));
        }
        let class = node.get("class_type").ok_or(PyError)?;
        let is_output = match class.as_str().and_then(bodies::class_is_output) {
            Some(known) => known,
            None => {
                unknown_class = true;
                !linked.contains(id)
            }
        };
        let targeted = match targets {
            None => true,
            Some(t) => t.py_contains(id).ok_or(PyError)?,
        };
        if is_output && targeted {
            outputs.push(id.to_string());
        }
    }
    if outputs.is_empty() && !unknown_class {
        return Ok(Err(bodies::prompt_error(
            "prompt_no_outputs",
            "Prompt has no outputs",
            "",
        )));
    }
    let mut validator = Validator {
        prompt,
        checks,
        validated: Vec::new(),
        visiting: HashSet::new(),
    };
    let mut good = Vec::new();
    let mut output_errors: Vec<OrderedJson> = Vec::new();
    let mut node_errors: Vec<(String, NodeErrors)> = Vec::new();
    for output in &outputs {
        validator.visiting.clear();
        if validator.node(output) {
            good.push(output.clone());
            continue;
        }
        if let Some((_, _, errors)) = validator.validated.iter().find(|(id, _, _)| id == output) {
            output_errors.extend(errors.iter().cloned());
        }
        for (id, valid, errors) in &validator.validated {
            if *valid || errors.is_empty() {
                continue;
            }
            let position = match node_errors.iter().position(|(n, _)| n == id) {
                Some(position) => position,
                None => {
                    let class_type = prompt
                        .get(id)
                        .and_then(|n| n.get("class_type"))
                        .cloned()
                        .unwrap_or(OrderedJson::Null);
                    node_errors.push((
                        id.clone(),
                        NodeErrors {
                            errors: errors.clone(),
                            dependent_outputs: Vec::new(),
                            class_type,
                        },
                    ));
                    node_errors.len() - 1
                }
            };
            node_errors[position]
                .1
                .dependent_outputs
                .push(output.clone());
        }
    }
    let node_errors = OrderedJson::Object(
        node_errors
            .into_iter()
            .map(|(id, errors)| (id, errors.into_json()))
            .collect(),
    );
    if good.is_empty() && !outputs.is_empty() {
        let details: Vec<String> = output_errors
            .iter()
            .map(|e| {
                let text = |k: &str| {
                    e.get(k)
                        .and_then(OrderedJson::as_str)
                        .unwrap_or("")
                        .to_string()
                };
                format!("{}: {}", text("message"), text("details"))
            })
            .collect();
        return Ok(Err(bodies::prompt_error_with_nodes(
            "prompt_outputs_failed_validation",
            "Prompt outputs failed validation",
            &details.join("\n"),
            node_errors,
        )));
    }
    Ok(Ok(Accepted {
        outputs: good,
        node_errors,
    }))
}

/// The inputs of a node, in the order sent (none when `inputs` is missing or not an object).
pub(crate) fn inputs(node: &OrderedJson) -> impl Iterator<Item = (&str, &OrderedJson)> {
    let entries: &[(String, OrderedJson)] = match node.get("inputs") {
        Some(OrderedJson::Object(entries)) => entries,
        _ => &[],
    };
    entries.iter().map(|(k, v)| (k.as_str(), v))
}

/// `[node_id, slot]`: a link to another node's output.
pub(crate) fn link(value: &OrderedJson) -> Option<(&str, i64)> {
    match value {
        OrderedJson::Array(pair) if pair.len() == 2 => {
            let target = pair[0].as_str()?;
            let slot = match &pair[1] {
                OrderedJson::Number(n) => n.as_i64()?,
                _ => return None,
            };
            Some((target, slot))
        }
        _ => None,
    }
}

struct NodeErrors {
    errors: Vec<OrderedJson>,
    dependent_outputs: Vec<String>,
    class_type: OrderedJson,
}

impl NodeErrors {
    fn into_json(self) -> OrderedJson {
        OrderedJson::Object(vec![
            ("errors".to_string(), OrderedJson::Array(self.errors)),
            (
                "dependent_outputs".to_string(),
                OrderedJson::Array(
                    self.dependent_outputs
                        .iter()
                        .map(|o| OrderedJson::from(o.as_str()))
                        .collect(),
                ),
            ),
            ("class_type".to_string(), self.class_type),
        ])
    }
}

/// `validate_inputs` with its `validated` dict (kept in insertion order, as a Python dict is).
struct Validator<'a> {
    prompt: &'a OrderedJson,
    checks: &'a Checks<'a>,
    validated: Vec<(String, bool, Vec<OrderedJson>)>,
    visiting: HashSet<String>,
}

impl Validator<'_> {
    fn record(&mut self, id: &str, valid: bool, errors: Vec<OrderedJson>) {
        self.validated.retain(|(v, _, _)| v != id);
        self.validated.push((id.to_string(), valid, errors));
    }

    fn node(&mut self, id: &str) -> bool {
        if let Some((_, valid, _)) = self.validated.iter().find(|(v, _, _)| v == id) {
            return *valid;
        }
        // A cycle: Python would recurse until RecursionError; the fake accepts it.
        if !self.visiting.insert(id.to_string()) {
            return true;
        }
        let prompt = self.prompt;
        let node = prompt.get(id).unwrap_or(&OrderedJson::Null);
        let class = node
            .get("class_type")
            .and_then(OrderedJson::as_str)
            .unwrap_or("");
        let mut errors = Vec::new();
        let mut valid = true;
        for (name, value) in inputs(node) {
            if let Some((target, _)) = link(value) {
                if prompt.get(target).is_some() && !self.node(target) {
                    valid = false;
                }
                continue;
            }
            if let Some(error) = self.literal(class, name, value) {
                errors.push(error);
            }
        }
        self.visiting.remove(id);
        let valid = valid && errors.is_empty();
        self.record(id, valid, errors);
        valid
    }

    /// The error of a literal input value, if any.
    fn literal(&self, class: &str, name: &str, value: &OrderedJson) -> Option<OrderedJson> {
        if let Some((_, _, folder)) = MODEL_INPUTS
            .iter()
            .find(|(c, input, _)| *c == class && *input == name)
        {
            let choices = (self.checks.models)(folder);
            if value
                .as_str()
                .is_some_and(|v| choices.iter().any(|c| c == v))
            {
                return None;
            }
            return Some(value_not_in_list(name, value, &choices));
        }
        if class == "LoadImage" && name == "image" {
            let exists = value
                .as_str()
                .is_some_and(|v| (self.checks.input_exists)(v));
            if !exists {
                return Some(object(vec![
                    ("type", "custom_validation_failed".into()),
                    ("message", "Custom validation failed for node".into()),
                    (
                        "details",
                        format!("{name} - Invalid image file: {}", value.py_str())
                            .as_str()
                            .into(),
                    ),
                    ("extra_info", object(vec![("input_name", name.into())])),
                ]));
            }
        }
        None
    }
}

/// The combo check of `validate_inputs`: lists longer than 20 are not sent back.
fn value_not_in_list(name: &str, value: &OrderedJson, choices: &[String]) -> OrderedJson {
    let (list_info, input_config) = if choices.len() > 20 {
        (
            format!("(list of length {})", choices.len()),
            OrderedJson::Null,
        )
    } else {
        let reprs: Vec<String> = choices.iter().map(|c| py_repr(c)).collect();
        (
            format!("[{}]", reprs.join(", ")),
            OrderedJson::Array(
                choices
                    .iter()
                    .map(|c| OrderedJson::from(c.as_str()))
                    .collect(),
            ),
        )
    };
    object(vec![
        ("type", "value_not_in_list".into()),
        ("message", "Value not in list".into()),
        (
            "details",
            format!("{name}: '{}' not in {list_info}", value.py_str())
                .as_str()
                .into(),
        ),
        (
            "extra_info",
            object(vec![
                ("input_name", name.into()),
                ("input_config", input_config),
                ("received_value", value.clone()),
            ]),
        ),
    ])
}

/// Python's `repr(str)`.
pub(crate) fn py_repr(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(text.len() + 2);
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// A 400 body's JSON, or the `node_errors` of an accepted prompt, for tests.
#[cfg(test)]
fn body(result: Result<Result<Accepted, String>, PyError>) -> String {
    match result {
        Ok(Err(body)) => body,
        Ok(Ok(accepted)) => crate::pyjson::to_string(&accepted.node_errors),
        Err(PyError) => "PyError".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(
        prompt: &str,
        checkpoints: &[&str],
        inputs: &[&str],
    ) -> Result<Result<Accepted, String>, PyError> {
        let models = |folder: &str| -> Vec<String> {
            if folder == "checkpoints" {
                checkpoints.iter().map(|c| c.to_string()).collect()
            } else {
                Vec::new()
            }
        };
        let input_exists = |name: &str| inputs.contains(&name);
        let checks = Checks {
            models: &models,
            input_exists: &input_exists,
        };
        validate_prompt(
            &OrderedJson::parse(prompt.as_bytes()).expect("JSON"),
            None,
            &checks,
        )
    }

    #[test]
    fn validation_missing_load_image_file_is_the_recorded_body() {
        let prompt = r#"{"1": {"class_type": "LoadImage", "inputs": {"image": "does_not_exist.png"}}, "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}"#;
        assert_eq!(
            body(check(prompt, &[], &[])),
            include_str!("../../fixtures/invalid_bad_combo.json")
        );
        let accepted = check(prompt, &[], &["does_not_exist.png"]).expect("no exception");
        assert_eq!(
            accepted,
            Ok(Accepted {
                outputs: vec!["2".into()],
                node_errors: OrderedJson::Object(Vec::new())
            })
        );
    }

    #[test]
    fn validation_unknown_checkpoint_is_value_not_in_list() {
        let prompt = r#"{"4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "x.safetensors"}}, "5": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["4", 1], "text": "cat"}}, "9": {"class_type": "SaveImage", "inputs": {"images": ["5", 0]}}}"#;
        assert_eq!(
            body(check(prompt, &["b.ckpt", "a'1.safetensors"], &[])),
            r#"{"error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation", "details": "", "extra_info": {}}, "node_errors": {"4": {"errors": [{"type": "value_not_in_list", "message": "Value not in list", "details": "ckpt_name: 'x.safetensors' not in ['b.ckpt', \"a'1.safetensors\"]", "extra_info": {"input_name": "ckpt_name", "input_config": ["b.ckpt", "a'1.safetensors"], "received_value": "x.safetensors"}}], "dependent_outputs": ["9"], "class_type": "CheckpointLoaderSimple"}}}"#
        );
        assert!(matches!(
            check(prompt, &["x.safetensors"], &[]),
            Ok(Ok(Accepted { ref outputs, .. })) if outputs == &["9".to_string()]
        ));
    }

    #[test]
    fn validation_keeps_the_good_outputs_and_reports_the_others() {
        let prompt = r#"{"1": {"class_type": "LoraLoader", "inputs": {"lora_name": "nope.safetensors"}}, "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}}, "3": {"class_type": "EmptyImage", "inputs": {}}, "4": {"class_type": "PreviewImage", "inputs": {"images": ["3", 0]}}}"#;
        let accepted = check(prompt, &[], &[])
            .expect("no exception")
            .expect("accepted");
        assert_eq!(accepted.outputs, ["4"]);
        assert!(crate::pyjson::to_string(&accepted.node_errors)
            .starts_with(r#"{"1": {"errors": [{"type": "value_not_in_list", "message": "Value not in list", "details": "lora_name: 'nope.safetensors' not in []""#));
    }

    #[test]
    fn validation_unknown_classes_are_accepted_and_unused_ones_are_outputs() {
        let prompt = r#"{"1": {"class_type": "MyLoader", "inputs": {}}, "2": {"class_type": "MySaver", "inputs": {"x": ["1", 0]}}}"#;
        let accepted = check(prompt, &[], &[])
            .expect("no exception")
            .expect("accepted");
        assert_eq!(accepted.outputs, ["2"]);
        assert_eq!(py_repr("it's"), "\"it's\"");
        assert_eq!(py_repr("a\\b"), "'a\\\\b'");
    }
}
