//! What running a prompt will do, decided before it runs (a pure function of the prompt, the cache and the config):
//! which nodes are cached, the order the others run in, and what each does (pass time, report sampling progress,
//! save images, fail). The worker plays the plan out over time.
//!
//! The cache is ComfyUI's default ("classic") one: a node's signature is its class and inputs, with links replaced
//! by the linked node's signature; only the signatures of the last prompt are kept.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

use super::files::{Files, Folder};
use super::png;
use super::validation::{inputs, link};
use crate::pyjson::{self, OrderedJson};

/// Sides of the image an output node saves when nothing upstream says what size it is.
pub(crate) const DEFAULT_SIDE: u32 = 64;
/// Batches larger than this save this many files.
const MAX_BATCH: u32 = 64;
/// Sampling steps beyond this are not reported one by one.
const MAX_STEPS: u32 = 10_000;
/// The grey of images whose colour nothing upstream sets.
const GREY: [u8; 3] = [128, 128, 128];

/// The recorded traceback of `ImageToMask(channel="alpha")` on an RGB image.
const IMAGE_TO_MASK_TRACEBACK: [&str; 5] = [
    "  File \"/opt/ComfyUI/execution.py\", line 496, in execute\n    output_data, output_ui, has_subgraph, has_pending_tasks = await get_output_data(prompt_id, unique_id, obj, input_data_all, execution_block_cb=execution_block_cb, pre_execute_cb=pre_execute_cb, hidden_inputs=hidden_inputs)\n                                                              ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n",
    "  File \"/opt/ComfyUI/execution.py\", line 315, in get_output_data\n    return_values = await _async_map_node_over_list(prompt_id, unique_id, obj, input_data_all, obj.FUNCTION, allow_interrupt=True, execution_block_cb=execution_block_cb, pre_execute_cb=pre_execute_cb, hidden_inputs=hidden_inputs)\n                    ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n",
    "  File \"/opt/ComfyUI/execution.py\", line 289, in _async_map_node_over_list\n    await process_inputs(input_dict, i)\n",
    "  File \"/opt/ComfyUI/execution.py\", line 277, in process_inputs\n    result = f(**inputs)\n             ^^^^^^^^^^^\n",
    "  File \"/opt/ComfyUI/comfy_extras/nodes_mask.py\", line 137, in image_to_mask\n    mask = image[:, :, :, channels.index(channel)]\n           ~~~~~^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n",
];

/// A solid-colour image batch flowing between nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ImageSpec {
    pub width: u32,
    pub height: u32,
    pub batch: u32,
    pub rgb: [u8; 3],
}

impl ImageSpec {
    pub fn png(&self) -> Vec<u8> {
        png::solid_rgb(self.width, self.height, self.rgb)
    }
}

impl Default for ImageSpec {
    fn default() -> Self {
        ImageSpec {
            width: DEFAULT_SIDE,
            height: DEFAULT_SIDE,
            batch: 1,
            rgb: GREY,
        }
    }
}

/// A node that raises when it runs: the fields of `execution_error`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Failure {
    pub exception_type: String,
    pub exception_message: String,
    pub traceback: Vec<String>,
    pub current_inputs: OrderedJson,
}

/// What one node does when its turn comes.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Work {
    /// An output node whose result is cached: its cached UI output (if any) is sent again.
    Cached(Option<OrderedJson>),
    /// Passes its share of the time.
    Plain,
    /// A sampler: `progress` and a preview per step.
    Steps(u32),
    SaveImage {
        prefix: String,
        image: ImageSpec,
    },
    PreviewImage {
        image: ImageSpec,
    },
    /// Sends each image of the batch as a preview, with `progress` (`websocket_image_save.py`).
    SaveImageWebsocket {
        image: ImageSpec,
    },
    Fail(Failure),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Step {
    pub id: String,
    pub class_type: String,
    /// The cache key of the node's result.
    pub signature: u64,
    pub work: Work,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Plan {
    /// The signature of every node in the prompt: the cache keeps these and forgets the rest.
    pub signatures: HashSet<u64>,
    /// Nodes whose results are cached, in prompt order (`execution_cached`).
    pub cached: Vec<String>,
    /// The nodes to run (or to re-send from the cache), in execution order.
    pub steps: Vec<Step>,
    /// `current_outputs` of `execution_error`: every node id, as the recorded run listed them.
    pub current_outputs: Vec<String>,
}

impl Plan {
    /// How many nodes actually run (and share the prompt's time).
    pub fn running_nodes(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| !matches!(s.work, Work::Cached(_)))
            .count()
    }
}

/// What a plan depends on besides the prompt.
pub(crate) struct Context<'a> {
    /// Cached results by signature: the UI output of output nodes, `None` for the others.
    pub cache: &'a HashMap<u64, Option<OrderedJson>>,
    pub runtime_error_class: Option<&'a str>,
    /// An input file a `LoadImage` names.
    pub input_file: &'a dyn Fn(&str) -> Option<Vec<u8>>,
    /// Differs for every run: nodes that are always re-executed mix it into their signature.
    pub run_token: u64,
}

pub(crate) fn plan(prompt: &OrderedJson, outputs: &[String], ctx: &Context<'_>) -> Plan {
    let mut graph = Graph {
        prompt,
        ctx,
        signatures: HashMap::new(),
        images: HashMap::new(),
    };
    let ids: Vec<&str> = match prompt {
        OrderedJson::Object(entries) => entries.iter().map(|(k, _)| k.as_str()).collect(),
        _ => Vec::new(),
    };
    let mut signatures = HashSet::new();
    let mut cached = Vec::new();
    for id in &ids {
        let signature = graph.signature(id, &mut HashSet::new());
        signatures.insert(signature);
        if ctx.cache.contains_key(&signature) {
            cached.push(id.to_string());
        }
    }
    let mut steps = Vec::new();
    let mut visited = HashSet::new();
    for output in outputs {
        graph.order(output, true, &mut visited, &mut steps);
    }
    Plan {
        signatures,
        cached,
        steps,
        current_outputs: ids.iter().rev().map(|id| id.to_string()).collect(),
    }
}

struct Graph<'a> {
    prompt: &'a OrderedJson,
    ctx: &'a Context<'a>,
    signatures: HashMap<String, u64>,
    images: HashMap<String, Option<ImageSpec>>,
}

fn class_of(node: &OrderedJson) -> &str {
    node.get("class_type")
        .and_then(OrderedJson::as_str)
        .unwrap_or("")
}

fn int_input(node: &OrderedJson, name: &str) -> Option<i64> {
    match node.get("inputs")?.get(name)? {
        OrderedJson::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        _ => None,
    }
}

fn side(value: Option<i64>, default: u32) -> u32 {
    value.map_or(default, |v| v.clamp(1, 16384) as u32)
}

fn rgb(color: i64) -> [u8; 3] {
    [(color >> 16) as u8, (color >> 8) as u8, color as u8]
}

impl Graph<'_> {
    fn signature(&mut self, id: &str, stack: &mut HashSet<String>) -> u64 {
        if let Some(signature) = self.signatures.get(id) {
            return *signature;
        }
        let mut hasher = std::hash::DefaultHasher::new();
        let Some(node) = self.prompt.get(id) else {
            ("missing", id).hash(&mut hasher);
            return hasher.finish();
        };
        if !stack.insert(id.to_string()) {
            ("cycle", id).hash(&mut hasher);
            return hasher.finish();
        }
        let class = class_of(node);
        class.hash(&mut hasher);
        match class {
            // `IS_CHANGED` returns the time: never cached.
            "SaveImageWebsocket" => self.ctx.run_token.hash(&mut hasher),
            // `IS_CHANGED` hashes the file.
            "LoadImage" => {
                let file = node
                    .get("inputs")
                    .and_then(|i| i.get("image"))
                    .and_then(OrderedJson::as_str)
                    .and_then(|name| (self.ctx.input_file)(name));
                file.as_deref()
                    .map(super::files::content_hash)
                    .hash(&mut hasher);
            }
            _ => {}
        }
        let mut sorted: Vec<(&str, &OrderedJson)> = inputs(node).collect();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        for (name, value) in sorted {
            name.hash(&mut hasher);
            match link(value) {
                Some((target, slot)) => {
                    ("link", self.signature(target, stack), slot).hash(&mut hasher);
                }
                None => pyjson::to_string(value).hash(&mut hasher),
            }
        }
        stack.remove(id);
        let signature = hasher.finish();
        self.signatures.insert(id.to_string(), signature);
        signature
    }

    /// The image a node outputs, if it is an image node.
    fn image(&mut self, id: &str, stack: &mut HashSet<String>) -> Option<ImageSpec> {
        if let Some(image) = self.images.get(id) {
            return *image;
        }
        let node = self.prompt.get(id)?;
        if !stack.insert(id.to_string()) {
            return None;
        }
        let width = int_input(node, "width");
        let height = int_input(node, "height");
        let batch =
            int_input(node, "batch_size").map_or(1, |b| b.clamp(1, i64::from(MAX_BATCH)) as u32);
        let image = match class_of(node) {
            "EmptyImage" => Some(ImageSpec {
                width: side(width, 512),
                height: side(height, 512),
                batch,
                rgb: rgb(int_input(node, "color").unwrap_or(0)),
            }),
            "LoadImage" => {
                let file = node
                    .get("inputs")
                    .and_then(|i| i.get("image"))
                    .and_then(OrderedJson::as_str)
                    .and_then(|name| (self.ctx.input_file)(name));
                let (width, height) = file
                    .as_deref()
                    .and_then(png::dimensions)
                    .unwrap_or((DEFAULT_SIDE, DEFAULT_SIDE));
                Some(ImageSpec {
                    width,
                    height,
                    batch: 1,
                    rgb: GREY,
                })
            }
            "ImageInvert" => self.upstream_image(node, stack).map(|image| ImageSpec {
                rgb: image.rgb.map(|c| 255 - c),
                ..image
            }),
            _ if width.is_some() && height.is_some() => Some(ImageSpec {
                width: side(width, DEFAULT_SIDE),
                height: side(height, DEFAULT_SIDE),
                batch,
                rgb: int_input(node, "color").map_or(GREY, rgb),
            }),
            _ => self.upstream_image(node, stack),
        };
        stack.remove(id);
        self.images.insert(id.to_string(), image);
        image
    }

    /// The image of the first linked input that carries one.
    fn upstream_image(
        &mut self,
        node: &OrderedJson,
        stack: &mut HashSet<String>,
    ) -> Option<ImageSpec> {
        let targets: Vec<String> = inputs(node)
            .filter_map(|(_, value)| link(value).map(|(target, _)| target.to_string()))
            .collect();
        targets.iter().find_map(|target| self.image(target, stack))
    }

    /// Depth first from an output: inputs before the node; cached nodes are not run (an output that is cached
    /// still re-sends its result).
    fn order(
        &mut self,
        id: &str,
        root: bool,
        visited: &mut HashSet<String>,
        steps: &mut Vec<Step>,
    ) {
        if !visited.insert(id.to_string()) {
            return;
        }
        let Some(node) = self.prompt.get(id) else {
            return;
        };
        let signature = self.signature(id, &mut HashSet::new());
        let class_type = class_of(node).to_string();
        if let Some(ui) = self.ctx.cache.get(&signature) {
            if root {
                steps.push(Step {
                    id: id.to_string(),
                    class_type,
                    signature,
                    work: Work::Cached(ui.clone()),
                });
            }
            return;
        }
        let targets: Vec<String> = inputs(node)
            .filter_map(|(_, value)| link(value).map(|(target, _)| target.to_string()))
            .collect();
        for target in &targets {
            self.order(target, false, visited, steps);
        }
        let work = self.work(node, &class_type);
        steps.push(Step {
            id: id.to_string(),
            class_type,
            signature,
            work,
        });
    }

    fn work(&mut self, node: &OrderedJson, class: &str) -> Work {
        let string_input = |name: &str| {
            node.get("inputs")
                .and_then(|i| i.get(name))
                .and_then(OrderedJson::as_str)
        };
        if self.ctx.runtime_error_class == Some(class) {
            return Work::Fail(Failure {
                exception_type: "RuntimeError".to_string(),
                exception_message: format!(
                    "{class} failed: the fake ComfyUI's runtime_error_class makes every {class} node raise\n"
                ),
                traceback: IMAGE_TO_MASK_TRACEBACK[..4]
                    .iter()
                    .map(|t| t.to_string())
                    .chain([format!(
                        "  File \"/opt/ComfyUI/custom_nodes/fake.py\", line 1, in run\n    raise RuntimeError(\"{class} failed\")\n"
                    )])
                    .collect(),
                current_inputs: self.current_inputs(node),
            });
        }
        if class == "ImageToMask" && string_input("channel") == Some("alpha") {
            return Work::Fail(Failure {
                exception_type: "IndexError".to_string(),
                exception_message: "index 3 is out of bounds for dimension 3 with size 3\n"
                    .to_string(),
                traceback: IMAGE_TO_MASK_TRACEBACK
                    .iter()
                    .map(|t| t.to_string())
                    .collect(),
                current_inputs: self.current_inputs(node),
            });
        }
        let image = self
            .upstream_image(node, &mut HashSet::new())
            .unwrap_or_default();
        match class {
            "SaveImage" => {
                let prefix = string_input("filename_prefix")
                    .unwrap_or("ComfyUI")
                    .to_string();
                match Files::save_path(Folder::Output, &prefix, image.width, image.height) {
                    Ok(_) => Work::SaveImage { prefix, image },
                    Err(message) => Work::Fail(Failure {
                        exception_type: "Exception".to_string(),
                        exception_message: message,
                        traceback: IMAGE_TO_MASK_TRACEBACK[..4]
                            .iter()
                            .map(|t| t.to_string())
                            .chain([
                                "  File \"/opt/ComfyUI/folder_paths.py\", line 465, in get_save_image_path\n    raise Exception(err)\n".to_string(),
                            ])
                            .collect(),
                        current_inputs: self.current_inputs(node),
                    }),
                }
            }
            "PreviewImage" => Work::PreviewImage { image },
            "SaveImageWebsocket" => Work::SaveImageWebsocket { image },
            _ => match int_input(node, "steps") {
                Some(steps) if steps >= 1 => Work::Steps(steps.min(i64::from(MAX_STEPS)) as u32),
                _ => Work::Plain,
            },
        }
    }

    /// `current_inputs` of `execution_error`: each input as a one-item list, a linked image as torch prints it.
    fn current_inputs(&mut self, node: &OrderedJson) -> OrderedJson {
        let entries: Vec<(String, OrderedJson)> = inputs(node)
            .map(|(name, value)| (name.to_string(), value.clone()))
            .collect();
        let formatted = entries
            .into_iter()
            .map(|(name, value)| {
                let shown = match link(&value) {
                    Some((target, slot)) => {
                        let text = match self.image(target, &mut HashSet::new()) {
                            Some(image) if slot == 0 => torch_image_repr(&image),
                            _ => {
                                let class = self.prompt.get(target).map(class_of).unwrap_or("");
                                format!("<{class} output {slot}>")
                            }
                        };
                        OrderedJson::String(text)
                    }
                    None => value,
                };
                (name, OrderedJson::Array(vec![shown]))
            })
            .collect();
        OrderedJson::Object(formatted)
    }
}

/// `str(tensor)` of an image batch `[batch, height, width, 3]` of one colour, with torch's default print options
/// (4 decimals, or `0.` / `1.` when every value is whole; summarised with `...` past 1000 elements).
pub(crate) fn torch_image_repr(image: &ImageSpec) -> String {
    let values = image.rgb.map(|c| f64::from(c) / 255.0);
    let whole = values.iter().all(|v| v.fract() == 0.0);
    let channels: Vec<String> = values
        .iter()
        .map(|v| {
            if whole {
                format!("{v:.0}.")
            } else {
                format!("{v:.4}")
            }
        })
        .collect();
    let vector = format!("[{}]", channels.join(", "));
    let shape = [
        image.batch as usize,
        image.height as usize,
        image.width as usize,
    ];
    let summarize = shape.iter().product::<usize>() * 3 > 1000;
    format!("tensor({})", dims(&shape, 7, summarize, &vector))
}

/// One level of torch's `_tensor_str`: slices separated by `,` plus a newline per remaining dimension.
fn dims(shape: &[usize], indent: usize, summarize: bool, vector: &str) -> String {
    let Some((&size, rest)) = shape.split_first() else {
        return vector.to_string();
    };
    let inner = dims(rest, indent + 1, summarize, vector);
    let items: Vec<&str> = if summarize && size > 6 {
        [inner.as_str(); 3]
            .into_iter()
            .chain(["..."])
            .chain([inner.as_str(); 3])
            .collect()
    } else {
        vec![inner.as_str(); size]
    };
    let separator = format!(",{}{}", "\n".repeat(rest.len() + 1), " ".repeat(indent + 1));
    format!("[{}]", items.join(&separator))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> OrderedJson {
        OrderedJson::parse(text.as_bytes()).expect("JSON")
    }

    fn plan_of(prompt: &str, outputs: &[&str], cache: &HashMap<u64, Option<OrderedJson>>) -> Plan {
        let no_file = |_: &str| None;
        let ctx = Context {
            cache,
            runtime_error_class: None,
            input_file: &no_file,
            run_token: 1,
        };
        let outputs: Vec<String> = outputs.iter().map(|o| o.to_string()).collect();
        plan(&parse(prompt), &outputs, &ctx)
    }

    const RECORDED: &str = r#"{"1": {"class_type": "EmptyImage", "inputs": {"width": 512, "height": 512, "batch_size": 1, "color": 0}}, "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "probe"}}}"#;

    #[test]
    fn execution_runs_inputs_first_and_an_identical_prompt_is_cached() {
        let empty = HashMap::new();
        let first = plan_of(RECORDED, &["2"], &empty);
        assert!(first.cached.is_empty());
        let ids: Vec<&str> = first.steps.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["1", "2"]);
        let image = ImageSpec {
            width: 512,
            height: 512,
            batch: 1,
            rgb: [0, 0, 0],
        };
        assert_eq!(
            first.steps[1].work,
            Work::SaveImage {
                prefix: "probe".into(),
                image
            }
        );
        assert_eq!(first.current_outputs, ["2", "1"]);

        let ui = parse(r#"{"images": []}"#);
        let cache: HashMap<u64, Option<OrderedJson>> = [
            (first.steps[0].signature, None),
            (first.steps[1].signature, Some(ui.clone())),
        ]
        .into_iter()
        .collect();
        // Key order and spacing do not change a signature.
        let again = plan_of(
            r#"{"2": {"inputs": {"filename_prefix": "probe", "images": ["1", 0]}, "class_type": "SaveImage"}, "1": {"class_type": "EmptyImage", "inputs": {"width": 512, "height": 512, "batch_size": 1, "color": 0}}}"#,
            &["2"],
            &cache,
        );
        assert_eq!(again.cached, ["2", "1"]);
        assert_eq!(again.steps.len(), 1);
        assert_eq!(again.steps[0].work, Work::Cached(Some(ui)));
        assert_eq!(again.running_nodes(), 0);

        let other_colour = plan_of(
            &RECORDED.replace(r#""color": 0"#, r#""color": 7"#),
            &["2"],
            &cache,
        );
        assert!(other_colour.cached.is_empty());
        assert_eq!(other_colour.running_nodes(), 2);
    }

    #[test]
    fn execution_partially_cached_prompt_runs_only_the_changed_nodes() {
        let empty = HashMap::new();
        let first = plan_of(RECORDED, &["2"], &empty);
        let cache: HashMap<u64, Option<OrderedJson>> =
            first.steps.iter().map(|s| (s.signature, None)).collect();
        let renamed = plan_of(&RECORDED.replace("probe", "other"), &["2"], &cache);
        assert_eq!(renamed.cached, ["1"]);
        let ids: Vec<&str> = renamed.steps.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["2"]);
    }

    #[test]
    fn execution_failures_samplers_and_escaping_prefixes() {
        let empty = HashMap::new();
        let error = plan_of(
            r#"{"1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 255}}, "3": {"class_type": "ImageToMask", "inputs": {"image": ["1", 0], "channel": "alpha"}}, "4": {"class_type": "MaskToImage", "inputs": {"mask": ["3", 0]}}, "2": {"class_type": "PreviewImage", "inputs": {"images": ["4", 0]}}}"#,
            &["2"],
            &empty,
        );
        let ids: Vec<&str> = error.steps.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["1", "3", "4", "2"]);
        assert_eq!(error.current_outputs, ["2", "4", "3", "1"]);
        let Work::Fail(failure) = &error.steps[1].work else {
            panic!("{:?}", error.steps[1].work);
        };
        let recorded = include_str!("../../fixtures/history_runtime_error.json");
        let inputs = pyjson::to_string(&failure.current_inputs);
        assert!(recorded.contains(&inputs), "{inputs}");

        let sampler = plan_of(
            r#"{"5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 256, "batch_size": 1}}, "3": {"class_type": "KSampler", "inputs": {"steps": 4, "latent_image": ["5", 0]}}, "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0]}}, "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0]}}}"#,
            &["9"],
            &empty,
        );
        assert_eq!(sampler.steps[1].work, Work::Steps(4));
        let Work::SaveImage { prefix, image } = &sampler.steps[3].work else {
            panic!("{:?}", sampler.steps[3].work);
        };
        assert_eq!(
            (prefix.as_str(), image.width, image.height),
            ("ComfyUI", 512, 256)
        );

        let escaping = plan_of(
            r#"{"9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "../../etc/x"}}}"#,
            &["9"],
            &empty,
        );
        assert!(
            matches!(&escaping.steps[0].work, Work::Fail(f) if f.exception_type == "Exception")
        );
    }

    #[test]
    fn execution_torch_repr_is_summarised_like_torch() {
        let small = ImageSpec {
            width: 2,
            height: 1,
            batch: 1,
            rgb: [255, 0, 128],
        };
        assert_eq!(
            torch_image_repr(&small),
            "tensor([[[[1.0000, 0.0000, 0.5020],\n          [1.0000, 0.0000, 0.5020]]]])"
        );
    }
}
