//! Backends: where a job runs. The dispatcher only speaks to this interface. A backend is a ComfyUI
//! server (its HTTP API and one shared WebSocket; RunPod pods are ComfyUI servers too) or a RunPod
//! serverless endpoint (a poll-based job API with no live progress, billed per second, with cold starts).

use std::path::Path;
use std::time::Duration;

use tokio::sync::watch;

use crate::comfyui::feed::Feed;
use crate::comfyui::follow::{attach, run_prompt, RunEvent, RunOutcome};
use crate::comfyui::messages::OutputImage;
use crate::comfyui::Prompt;
use crate::comfyui::{ComfyClient, ComfyError, SubmitError};
use crate::jobs::JobOutput;
use crate::runpod::client::{JobEnd, JobEvent, RunpodError, ServerlessClient};
use crate::runpod::serverless::{run_body, InputImage, OutputFile};
use crate::servers::RunpodEndpoint;
use crate::workflow::Workflow;

/// Outputs larger than this are not downloaded.
const MAX_OUTPUT_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// One place jobs can run. Cheap to clone.
#[derive(Clone)]
pub enum Backend {
    ComfyUi(ComfyUiBackend),
    RunpodServerless(ServerlessBackend),
}

/// A RunPod serverless endpoint running worker-comfyui: jobs go through `/run` and are followed with `/status`.
#[derive(Clone)]
pub struct ServerlessBackend {
    /// `Err` says why it cannot be called (no API key).
    client: Result<ServerlessClient, String>,
    endpoint: RunpodEndpoint,
}

/// A ComfyUI server: prompts go through `POST /prompt`, progress through one shared WebSocket.
#[derive(Clone)]
pub struct ComfyUiBackend {
    feed: Feed,
}

/// One output of a finished job, still on its backend.
#[derive(Debug, Clone, PartialEq)]
pub enum RemoteFile {
    /// A file in ComfyUI's output folder, fetched with `/view`.
    Comfy(OutputImage),
    /// Sent back by a RunPod worker (inline, or in its bucket).
    Runpod(OutputFile),
}

/// What a job produced, still on its backend, per output node.
pub type RemoteOutputs = Vec<(String, RemoteFile)>;

/// How a job ended on a backend.
pub type Outcome = RunOutcome<RemoteFile>;

impl Backend {
    pub fn comfyui(client: ComfyClient) -> Self {
        Backend::ComfyUi(ComfyUiBackend {
            feed: Feed::new(client),
        })
    }

    /// A RunPod serverless endpoint; `client` is `Err` with the reason when it cannot be called.
    pub fn runpod_serverless(
        client: Result<ServerlessClient, String>,
        endpoint: RunpodEndpoint,
    ) -> Self {
        Backend::RunpodServerless(ServerlessBackend { client, endpoint })
    }

    /// Send a job and follow it to the end. A ComfyUI server takes it under `remote_id` (chosen by us, so a
    /// crash mid-send can be reconciled); a RunPod endpoint names it itself and says so with
    /// [`RunEvent::Assigned`]. Local input images are uploaded (ComfyUI) or sent inline (RunPod).
    pub async fn run(
        &self,
        workflow: serde_json::Value,
        extra_data: Option<serde_json::Value>,
        remote_id: &str,
        timeout: Duration,
        cancel: watch::Receiver<bool>,
        on_event: impl FnMut(RunEvent) + Send,
    ) -> Result<Outcome, SubmitError> {
        match self {
            Backend::ComfyUi(b) => {
                let workflow = match upload_local_images(b.feed.client(), workflow).await {
                    Ok(w) => w,
                    Err(Upload::Unreadable(message)) => return Ok(RunOutcome::Failed { message }),
                    Err(Upload::Call(e)) => return Err(SubmitError::Call(e)),
                };
                let prompt = Prompt {
                    workflow: &workflow,
                    extra_data: extra_data.as_ref(),
                };
                run_prompt(&b.feed, prompt, remote_id, timeout, cancel, on_event)
                    .await
                    .map(|o| o.map_outputs(RemoteFile::Comfy))
            }
            Backend::RunpodServerless(b) => b.run(workflow, timeout, cancel, on_event).await,
        }
    }

    /// Follow a job sent earlier (by a previous run of the app) without sending it again.
    pub async fn attach(
        &self,
        remote_id: &str,
        timeout: Duration,
        cancel: watch::Receiver<bool>,
        on_event: impl FnMut(RunEvent) + Send,
    ) -> Result<Outcome, SubmitError> {
        match self {
            Backend::ComfyUi(b) => attach(b.feed.client(), remote_id, timeout, cancel, on_event)
                .await
                .map(|o| o.map_outputs(RemoteFile::Comfy)),
            Backend::RunpodServerless(b) => {
                let client = b.client()?;
                b.follow(client, remote_id, timeout, cancel, on_event).await
            }
        }
    }

    /// Stop a job this process is not following: interrupt it if running, drop it if pending.
    pub async fn stop(&self, remote_id: &str) {
        match self {
            Backend::ComfyUi(b) => b.feed.client().stop(remote_id).await,
            Backend::RunpodServerless(b) => {
                if let Ok(c) = &b.client {
                    if let Err(e) = c.cancel(remote_id).await {
                        tracing::warn!(error = %e, "could not cancel a RunPod job");
                    }
                }
            }
        }
    }

    /// The model files in one folder (`checkpoints`, `loras`…); `None` when the folder is unknown.
    pub async fn models(&self, folder: &str) -> Result<Option<Vec<String>>, ComfyError> {
        match self {
            Backend::ComfyUi(b) => b.feed.client().models(folder).await,
            // What the endpoint's image ships, plus what the user listed.
            Backend::RunpodServerless(b) => Ok(Some(
                b.endpoint.inventory().remove(folder).unwrap_or_default(),
            )),
        }
    }

    /// Bring a job's outputs into the gallery. Unsafe names are refused; nothing is written outside.
    pub async fn save_outputs(
        &self,
        gallery: &Path,
        job_id: &str,
        outputs: RemoteOutputs,
    ) -> Result<Vec<JobOutput>, String> {
        let mut saved = Vec::new();
        for (node_id, file) in outputs {
            let filename = match &file {
                RemoteFile::Comfy(image) => image.filename.clone(),
                RemoteFile::Runpod(OutputFile::Inline { file_name, .. })
                | RemoteFile::Runpod(OutputFile::Url { file_name, .. }) => file_name.clone(),
            };
            let path = crate::gallery::output_path(gallery, job_id, &filename)
                .map_err(|e| e.to_string())?;
            let failed = |e: &dyn std::fmt::Display| {
                format!("Could not download the output {filename}: {e}")
            };
            match (self, &file) {
                (Backend::ComfyUi(b), RemoteFile::Comfy(image)) => b
                    .feed
                    .client()
                    .download(image, &path, MAX_OUTPUT_BYTES)
                    .await
                    .map(|_| ())
                    .map_err(|e| failed(&e))?,
                (Backend::RunpodServerless(b), RemoteFile::Runpod(out)) => {
                    let bytes = b
                        .client()
                        .map_err(|e| failed(&e))?
                        .fetch_output(out, MAX_OUTPUT_BYTES)
                        .await
                        .map_err(|e| failed(&e))?;
                    write_output(&path, &bytes).await.map_err(|e| failed(&e))?;
                }
                _ => return Err(failed(&"it came from another kind of server")),
            }
            saved.push(JobOutput {
                node_id,
                filename,
                path: path.display().to_string(),
            });
        }
        Ok(saved)
    }
}

/// Write an output beside its final name first, so a half-written file never shows in the gallery.
async fn write_output(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    let part = path.with_extension("part");
    tokio::fs::write(&part, bytes).await?;
    tokio::fs::rename(&part, path).await
}

/// How long to assume a job runs when nothing better is known (sets the first polls' pace).
const EXPECTED_RUN_MS: u64 = 10_000;

impl ServerlessBackend {
    fn client(&self) -> Result<&ServerlessClient, SubmitError> {
        self.client
            .as_ref()
            .map_err(|message| SubmitError::Backend {
                message: message.clone(),
                retryable: false,
            })
    }

    async fn run(
        &self,
        workflow: serde_json::Value,
        timeout: Duration,
        cancel: watch::Receiver<bool>,
        mut on_event: impl FnMut(RunEvent) + Send,
    ) -> Result<Outcome, SubmitError> {
        let client = self.client()?;
        let (workflow, images) = match inline_local_images(workflow).await {
            Ok(x) => x,
            Err(message) => return Ok(RunOutcome::Failed { message }),
        };
        // Refused here, before anything is sent, when over RunPod's limit.
        let body = match run_body(&workflow, &images) {
            Ok(b) => b,
            Err(e) => {
                return Ok(RunOutcome::Failed {
                    message: e.to_string(),
                })
            }
        };
        // Whether a worker is up decides what the user sees while the job waits.
        let warm = match client.health().await {
            Ok(h) => h.warm(),
            Err(e) => return Err(submit_error(e)),
        };
        let accepted = client.run(body).await.map_err(submit_error)?;
        on_event(RunEvent::Assigned {
            remote_id: accepted.id.clone(),
        });
        on_event(RunEvent::Accepted { number: 0 });
        if !warm {
            on_event(RunEvent::Waking);
        }
        self.follow(client, &accepted.id, timeout, cancel, on_event)
            .await
    }

    /// Follow a RunPod job to its end, reporting when it starts and what it was billed for.
    async fn follow(
        &self,
        client: &ServerlessClient,
        id: &str,
        timeout: Duration,
        cancel: watch::Receiver<bool>,
        mut on_event: impl FnMut(RunEvent) + Send,
    ) -> Result<Outcome, SubmitError> {
        let follow = client.follow(id, EXPECTED_RUN_MS, cancel, |e| {
            if e == JobEvent::Running {
                on_event(RunEvent::Started);
            }
        });
        let end = match tokio::time::timeout(timeout, follow).await {
            Ok(end) => end,
            Err(_) => {
                // Ours, not RunPod's, timeout: stop paying for it.
                let _ = client.cancel(id).await;
                return Ok(RunOutcome::TimedOut);
            }
        };
        let (outcome, delay_ms, execution_ms) = match end {
            Ok(JobEnd::Completed {
                outputs,
                delay_ms,
                execution_ms,
            }) => (
                RunOutcome::Succeeded {
                    outputs: outputs
                        .into_iter()
                        .map(|o| ("runpod".to_string(), RemoteFile::Runpod(o)))
                        .collect(),
                },
                delay_ms,
                execution_ms,
            ),
            Ok(JobEnd::Failed {
                message,
                delay_ms,
                execution_ms,
            }) => (RunOutcome::Failed { message }, delay_ms, execution_ms),
            Ok(JobEnd::TimedOut { execution_ms }) => (
                RunOutcome::Failed {
                    message: "RunPod stopped the job: it ran longer than the endpoint's execution timeout. Raise the timeout in the endpoint's settings on RunPod, or use a faster GPU class.".into(),
                },
                None,
                execution_ms,
            ),
            Ok(JobEnd::Cancelled) => (RunOutcome::Cancelled, None, None),
            // Gone (expired or never received): run it again; an unreachable RunPod moves it elsewhere.
            Err(e @ RunpodError::Expired { .. }) | Err(e @ RunpodError::Network(_)) => {
                return Ok(RunOutcome::Lost {
                    reason: e.to_string(),
                })
            }
            Err(e) => return Err(submit_error(e)),
        };
        if delay_ms.is_some() || execution_ms.is_some() {
            on_event(RunEvent::CloudTimings {
                delay_ms,
                execution_ms,
            });
        }
        Ok(outcome)
    }
}

/// A RunPod refusal as the dispatcher handles it: a refused key or a missing endpoint will not fix itself.
fn submit_error(e: RunpodError) -> SubmitError {
    let retryable = !matches!(e, RunpodError::Refused(_) | RunpodError::NoEndpoint { .. });
    SubmitError::Backend {
        message: e.to_string(),
        retryable,
    }
}

/// The local files `LoadImage` nodes name by absolute path, read to send inline; the nodes then name the images by
/// file name (worker-comfyui uploads them to its ComfyUI under that name).
async fn inline_local_images(
    workflow: serde_json::Value,
) -> Result<(serde_json::Value, Vec<InputImage>), String> {
    let Ok(mut w) = Workflow::from_value(workflow.clone()) else {
        return Ok((workflow, vec![]));
    };
    let mut images: Vec<InputImage> = Vec::new();
    for (node, image) in w.image_inputs() {
        let path = Path::new(&image);
        if !path.is_absolute() || !path.is_file() {
            continue;
        }
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|e| format!("Could not read the input image {image}: {e}"))?;
        let base = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "input.png".into());
        // Two different files with one name must not overwrite each other on the worker.
        let name = if images.iter().any(|i| i.name == base) {
            format!("{node}_{base}")
        } else {
            base
        };
        w.set_input(&node, "image", serde_json::Value::String(name.clone()))
            .map_err(|e| e.to_string())?;
        images.push(InputImage { name, bytes });
    }
    Ok((w.to_value(), images))
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
