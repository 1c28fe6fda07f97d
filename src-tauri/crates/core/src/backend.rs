//! Backends: where a job runs. The dispatcher only speaks to this interface. Today a backend is a
//! ComfyUI server (its HTTP API and one shared WebSocket); RunPod serverless endpoints (a poll-based
//! job API with no live progress, billed per second, with cold starts) and RunPod pods (ComfyUI
//! servers that appear, cost money while idle and disappear) join as further variants.

use std::path::Path;
use std::time::Duration;

use tokio::sync::watch;

use crate::comfyui::feed::Feed;
use crate::comfyui::follow::{attach, run_prompt, RunEvent, RunOutcome};
use crate::comfyui::messages::OutputImage;
use crate::comfyui::{ComfyClient, ComfyError, SubmitError};
use crate::jobs::JobOutput;
use crate::workflow::Workflow;

/// Outputs larger than this are not downloaded.
const MAX_OUTPUT_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// One place jobs can run. Cheap to clone.
#[derive(Clone)]
pub enum Backend {
    ComfyUi(ComfyUiBackend),
}

/// A ComfyUI server: prompts go through `POST /prompt`, progress through one shared WebSocket.
#[derive(Clone)]
pub struct ComfyUiBackend {
    feed: Feed,
}

/// What a job produced, still on its backend.
pub type RemoteOutputs = Vec<(String, OutputImage)>;

impl Backend {
    pub fn comfyui(client: ComfyClient) -> Self {
        Backend::ComfyUi(ComfyUiBackend {
            feed: Feed::new(client),
        })
    }

    /// Send a job under `remote_id` (chosen by us, so a crash mid-send can be reconciled) and
    /// follow it to the end. Local input images are uploaded first.
    pub async fn run(
        &self,
        workflow: serde_json::Value,
        remote_id: &str,
        timeout: Duration,
        cancel: watch::Receiver<bool>,
        on_event: impl FnMut(RunEvent) + Send,
    ) -> Result<RunOutcome, SubmitError> {
        match self {
            Backend::ComfyUi(b) => {
                let workflow = match upload_local_images(b.feed.client(), workflow).await {
                    Ok(w) => w,
                    Err(Upload::Unreadable(message)) => return Ok(RunOutcome::Failed { message }),
                    Err(Upload::Call(e)) => return Err(SubmitError::Call(e)),
                };
                run_prompt(&b.feed, &workflow, remote_id, timeout, cancel, on_event).await
            }
        }
    }

    /// Follow a job sent earlier (by a previous run of the app) without sending it again.
    pub async fn attach(
        &self,
        remote_id: &str,
        timeout: Duration,
        cancel: watch::Receiver<bool>,
        on_event: impl FnMut(RunEvent) + Send,
    ) -> Result<RunOutcome, SubmitError> {
        match self {
            Backend::ComfyUi(b) => {
                attach(b.feed.client(), remote_id, timeout, cancel, on_event).await
            }
        }
    }

    /// Stop a job this process is not following: interrupt it if running, drop it if pending.
    pub async fn stop(&self, remote_id: &str) {
        match self {
            Backend::ComfyUi(b) => b.feed.client().stop(remote_id).await,
        }
    }

    /// The model files in one folder (`checkpoints`, `loras`…); `None` when the folder is unknown.
    pub async fn models(&self, folder: &str) -> Result<Option<Vec<String>>, ComfyError> {
        match self {
            Backend::ComfyUi(b) => b.feed.client().models(folder).await,
        }
    }

    /// Bring a job's outputs into the gallery. Unsafe names are refused; nothing is written outside.
    pub async fn save_outputs(
        &self,
        gallery: &Path,
        job_id: &str,
        outputs: RemoteOutputs,
    ) -> Result<Vec<JobOutput>, String> {
        let Backend::ComfyUi(b) = self;
        let mut saved = Vec::new();
        for (node_id, image) in outputs {
            let path = crate::gallery::output_path(gallery, job_id, &image.filename)
                .map_err(|e| e.to_string())?;
            b.feed
                .client()
                .download(&image, &path, MAX_OUTPUT_BYTES)
                .await
                .map_err(|e| format!("Could not download the output {}: {e}", image.filename))?;
            saved.push(JobOutput {
                node_id,
                filename: image.filename,
                path: path.display().to_string(),
            });
        }
        Ok(saved)
    }
}

enum Upload {
    /// The local file cannot be read: the job cannot run anywhere.
    Unreadable(String),
    /// The server could not take it: worth another attempt.
    Call(ComfyError),
}

/// Upload the local files that `LoadImage` nodes name by absolute path, and point the nodes at the
/// uploaded names. Names that are not local files are left alone (they are already on the server).
async fn upload_local_images(
    client: &ComfyClient,
    workflow: serde_json::Value,
) -> Result<serde_json::Value, Upload> {
    let Ok(mut w) = Workflow::from_value(workflow.clone()) else {
        return Ok(workflow);
    };
    for (node, image) in w.image_inputs() {
        let path = Path::new(&image);
        if !path.is_absolute() || !path.is_file() {
            continue;
        }
        let bytes = tokio::fs::read(path).await.map_err(|e| {
            Upload::Unreadable(format!("Could not read the input image {image}: {e}"))
        })?;
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "input.png".into());
        let stored = client
            .upload_image(&file_name, bytes)
            .await
            .map_err(Upload::Call)?;
        w.set_input(&node, "image", serde_json::Value::String(stored))
            .map_err(|e| Upload::Unreadable(e.to_string()))?;
    }
    Ok(w.to_value())
}
