//! Built-in text-to-image workflows (SD 1.5, SDXL, FLUX.1-schnell) and how a job is built from a
//! template's fields or from an imported workflow with edited text inputs. Pure.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::workflow::{ModelRef, TextInput, Workflow, WorkflowError};

/// What a user fills in for a template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct TemplateFields {
    pub prompt: String,
    pub negative: String,
    /// `None` = a random seed.
    pub seed: Option<u32>,
    pub steps: u32,
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Template {
    pub id: String,
    pub name: String,
    pub description: String,
    pub defaults: TemplateFields,
    pub models: Vec<ModelRef>,
}

/// An edit of one text input of an imported workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct TextEdit {
    pub node_id: String,
    pub field: String,
    pub value: String,
}

/// Where a job's workflow comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobSource {
    Template {
        template_id: String,
        fields: TemplateFields,
    },
    Workflow {
        workflow_json: String,
        edits: Vec<TextEdit>,
    },
}

/// A job as the Generate page or the CLI asks for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct SubmitRequest {
    pub name: String,
    pub source: JobSource,
    /// A server id, or `None` for Auto (the router decides).
    pub target: Option<String>,
    pub priority: u8,
}

impl SubmitRequest {
    /// The job to queue. `random_seed` fills a template's empty seed.
    pub fn to_new_job(&self, random_seed: u32) -> Result<crate::jobs::NewJob, TemplateError> {
        let workflow = resolve(&self.source, random_seed)?;
        let name = if self.name.trim().is_empty() {
            "Untitled".to_string()
        } else {
            self.name.trim().chars().take(120).collect()
        };
        Ok(crate::jobs::NewJob {
            priority: self.priority,
            target: self.target.clone(),
            ..crate::jobs::NewJob::new(name, workflow)
        })
    }
}

/// What the UI shows about an imported workflow before it runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct WorkflowInfo {
    pub text_inputs: Vec<TextInput>,
    pub models: Vec<ModelRef>,
    pub node_count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("There is no built-in template '{0}'.")]
    Unknown(String),
    #[error("{field} must be between {min} and {max}.")]
    OutOfRange {
        field: &'static str,
        min: u32,
        max: u32,
    },
    #[error("Width and height must be multiples of 8 (got {width}×{height}).")]
    NotMultipleOf8 { width: u32, height: u32 },
    #[error("{0}")]
    Workflow(#[from] WorkflowError),
}

impl crate::HasErrorInfo for TemplateError {
    fn code(&self) -> &'static str {
        match self {
            TemplateError::Workflow(e) => e.code(),
            _ => "templates.invalid",
        }
    }
}

struct Spec {
    id: &'static str,
    name: &'static str,
    description: &'static str,
    checkpoint: &'static str,
    latent: &'static str,
    size: u32,
    steps: u32,
    cfg: f64,
    sampler: &'static str,
    scheduler: &'static str,
    negative: &'static str,
}

const SPECS: &[Spec] = &[
    Spec { id: "sd15", name: "SD 1.5 — text to image", description: "Stable Diffusion 1.5, 512×512. Runs on 4 GB of VRAM.", checkpoint: "v1-5-pruned-emaonly-fp16.safetensors", latent: "EmptyLatentImage", size: 512, steps: 20, cfg: 7.0, sampler: "euler", scheduler: "normal", negative: "blurry, low quality, watermark" },
    Spec { id: "sdxl", name: "SDXL — text to image", description: "Stable Diffusion XL base 1.0, 1024×1024. Needs about 8 GB of VRAM.", checkpoint: "sd_xl_base_1.0.safetensors", latent: "EmptyLatentImage", size: 1024, steps: 25, cfg: 7.0, sampler: "dpmpp_2m", scheduler: "karras", negative: "blurry, low quality, watermark" },
    Spec { id: "flux-schnell", name: "FLUX.1-schnell — text to image", description: "FLUX.1 [schnell] fp8 all-in-one checkpoint, 4 steps, 1024×1024. Needs 12–24 GB of VRAM.", checkpoint: "flux1-schnell-fp8.safetensors", latent: "EmptySD3LatentImage", size: 1024, steps: 4, cfg: 1.0, sampler: "euler", scheduler: "simple", negative: "" },
];

/// The built-in templates.
pub fn all() -> Vec<Template> {
    SPECS
        .iter()
        .map(|s| Template {
            id: s.id.into(),
            name: s.name.into(),
            description: s.description.into(),
            defaults: TemplateFields {
                prompt: "a lighthouse on a cliff at sunset, dramatic sky, highly detailed".into(),
                negative: s.negative.into(),
                seed: None,
                steps: s.steps,
                width: s.size,
                height: s.size,
            },
            models: vec![ModelRef {
                folder: "checkpoints".into(),
                name: s.checkpoint.into(),
            }],
        })
        .collect()
}

fn check(field: &'static str, v: u32, min: u32, max: u32) -> Result<(), TemplateError> {
    if (min..=max).contains(&v) {
        Ok(())
    } else {
        Err(TemplateError::OutOfRange { field, min, max })
    }
}

/// The API-format workflow of a template with the user's fields. `random_seed` is used when `seed` is `None`.
pub fn build(
    template_id: &str,
    f: &TemplateFields,
    random_seed: u32,
) -> Result<Value, TemplateError> {
    let s = SPECS
        .iter()
        .find(|s| s.id == template_id)
        .ok_or_else(|| TemplateError::Unknown(template_id.into()))?;
    check("Steps", f.steps, 1, 150)?;
    check("Width", f.width, 64, 4096)?;
    check("Height", f.height, 64, 4096)?;
    if !f.width.is_multiple_of(8) || !f.height.is_multiple_of(8) {
        return Err(TemplateError::NotMultipleOf8 {
            width: f.width,
            height: f.height,
        });
    }
    Ok(json!({
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": s.checkpoint}},
        "5": {"class_type": s.latent, "inputs": {"width": f.width, "height": f.height, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": f.prompt, "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": f.negative, "clip": ["4", 1]}},
        "3": {"class_type": "KSampler", "inputs": {
            "seed": f.seed.unwrap_or(random_seed), "steps": f.steps, "cfg": s.cfg, "sampler_name": s.sampler,
            "scheduler": s.scheduler, "denoise": 1.0, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": format!("ComfyFleet_{}", s.id), "images": ["8", 0]}}
    }))
}

/// The workflow a job source describes, ready to queue.
pub fn resolve(source: &JobSource, random_seed: u32) -> Result<Value, TemplateError> {
    match source {
        JobSource::Template {
            template_id,
            fields,
        } => build(template_id, fields, random_seed),
        JobSource::Workflow {
            workflow_json,
            edits,
        } => {
            let mut w = Workflow::parse(workflow_json)?;
            for e in edits {
                w.set_input(&e.node_id, &e.field, Value::String(e.value.clone()))?;
            }
            Ok(w.to_value())
        }
    }
}

/// What an imported workflow needs and what of it can be edited.
pub fn inspect(workflow_json: &str) -> Result<WorkflowInfo, TemplateError> {
    let w = Workflow::parse(workflow_json)?;
    Ok(WorkflowInfo {
        text_inputs: w.text_inputs(),
        models: w.models(),
        node_count: w.node_ids().len() as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_build_valid_workflows_with_the_users_fields() {
        for t in all() {
            let mut f = t.defaults.clone();
            f.prompt = "a red fox".into();
            f.seed = Some(42);
            let v = build(&t.id, &f, 7).unwrap();
            let w = Workflow::from_value(v.clone()).unwrap();
            assert_eq!(w.models(), t.models);
            assert_eq!(v["6"]["inputs"]["text"], "a red fox");
            assert_eq!(v["3"]["inputs"]["seed"], 42);
            assert_eq!(v["5"]["inputs"]["width"], t.defaults.width);
        }
        let f = all()[0].defaults.clone();
        assert_eq!(
            build("sd15", &f, 1234).unwrap()["3"]["inputs"]["seed"],
            1234,
            "no seed → the random one"
        );
    }

    #[test]
    fn templates_refuse_out_of_range_fields_and_unknown_ids() {
        let mut f = all()[0].defaults.clone();
        f.steps = 0;
        assert!(matches!(
            build("sd15", &f, 1),
            Err(TemplateError::OutOfRange { field: "Steps", .. })
        ));
        f.steps = 20;
        f.width = 500;
        assert!(matches!(
            build("sd15", &f, 1),
            Err(TemplateError::NotMultipleOf8 { .. })
        ));
        assert!(matches!(
            build("nope", &f, 1),
            Err(TemplateError::Unknown(_))
        ));
    }

    #[test]
    fn templates_resolve_an_imported_workflow_with_text_edits() {
        let json = r#"{"6": {"class_type": "CLIPTextEncode", "inputs": {"text": "old", "clip": ["4", 1]}}, "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "x"}}}"#;
        let info = inspect(json).unwrap();
        assert_eq!(info.node_count, 2);
        assert_eq!(info.text_inputs.len(), 2);
        let v = resolve(
            &JobSource::Workflow {
                workflow_json: json.into(),
                edits: vec![TextEdit {
                    node_id: "6".into(),
                    field: "text".into(),
                    value: "new".into(),
                }],
            },
            0,
        )
        .unwrap();
        assert_eq!(v["6"]["inputs"]["text"], "new");
        let bad = resolve(
            &JobSource::Workflow {
                workflow_json: json.into(),
                edits: vec![TextEdit {
                    node_id: "99".into(),
                    field: "text".into(),
                    value: "x".into(),
                }],
            },
            0,
        );
        assert!(matches!(
            bad,
            Err(TemplateError::Workflow(WorkflowError::UnknownNode { .. }))
        ));
        assert!(matches!(
            inspect(r#"{"nodes": [], "links": []}"#),
            Err(TemplateError::Workflow(WorkflowError::UiFormat))
        ));
    }
}
