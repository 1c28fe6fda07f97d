//! Running one prompt on one ComfyUI server: subscribe to the server's shared WebSocket, submit,
//! follow progress and previews, and when the socket drops keep following through `/history` and
//! `/queue`.

use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::feed::{Feed, FeedItem};
use super::messages::{ComfyEvent, OutputImage};
use super::{ComfyClient, ComfyError, Prompt, SubmitError};

/// How often `/history` is polled once the WebSocket is gone (and, slowly, as a safety net while it is up).
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);
const SAFETY_POLL: Duration = Duration::from_secs(5);
/// How long `POST /prompt` may take to answer (it only validates and queues; RunPod's proxy gives up at 100 s).
const SUBMIT_TIMEOUT: Duration = Duration::from_secs(60);
/// Consecutive failed polls after which the server is considered dead for this job.
const MAX_POLL_FAILURES: u32 = 4;

/// What happened while a prompt ran, for progress bars and previews.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEvent {
    /// Accepted by the server (its queue position is `number`).
    Accepted {
        number: i64,
    },
    Started,
    /// 0.0 – 1.0 over the whole workflow.
    Progress(f64),
    Preview {
        mime: &'static str,
        bytes: Vec<u8>,
    },
    /// The WebSocket dropped; following continues by polling.
    SocketLost,
    /// The backend named the job itself (RunPod's job id): record it to find the job again after a restart.
    Assigned {
        remote_id: String,
    },
    /// No worker was up: one is being started (a cold start) before the job can run.
    Waking,
    /// What the cloud billed the job for: time waiting for a worker and time executing, in ms.
    CloudTimings {
        delay_ms: Option<u64>,
        execution_ms: Option<u64>,
    },
}

/// How a prompt ended. `O` is how an output is reached on the backend (a ComfyUI output file by default).
#[derive(Debug, Clone, PartialEq)]
pub enum RunOutcome<O = OutputImage> {
    Succeeded {
        outputs: Vec<(String, O)>,
    },
    /// A runtime error on the server (not retried).
    Failed {
        message: String,
    },
    Interrupted,
    Cancelled,
    TimedOut,
    /// The server went away (or forgot the prompt, e.g. after a restart): run it again elsewhere.
    Lost {
        reason: String,
    },
}

impl<O> RunOutcome<O> {
    /// The same outcome with each output turned into another form.
    pub fn map_outputs<P>(self, f: impl FnMut(O) -> P) -> RunOutcome<P> {
        let mut f = f;
        match self {
            RunOutcome::Succeeded { outputs } => RunOutcome::Succeeded {
                outputs: outputs.into_iter().map(|(n, o)| (n, f(o))).collect(),
            },
            RunOutcome::Failed { message } => RunOutcome::Failed { message },
            RunOutcome::Interrupted => RunOutcome::Interrupted,
            RunOutcome::Cancelled => RunOutcome::Cancelled,
            RunOutcome::TimedOut => RunOutcome::TimedOut,
            RunOutcome::Lost { reason } => RunOutcome::Lost { reason },
        }
    }
}

/// Resolves once `cancel` turns true (never, if its sender is gone).
async fn until_cancelled(cancel: &mut watch::Receiver<bool>) {
    if cancel.wait_for(|c| *c).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Submit `prompt` as `prompt_id` and follow it to the end. `cancel` flips to true to cancel.
pub async fn run_prompt(
    feed: &Feed,
    prompt: Prompt<'_>,
    prompt_id: &str,
    timeout: Duration,
    mut cancel: watch::Receiver<bool>,
    mut on_event: impl FnMut(RunEvent) + Send,
) -> Result<RunOutcome, SubmitError> {
    let client = feed.client();
    let deadline = Instant::now() + timeout;
    let mut ws = tokio::select! {
        ws = feed.subscribe(prompt_id, Duration::from_secs(5)) => ws,
        // Nothing was sent yet.
        _ = until_cancelled(&mut cancel) => return Ok(RunOutcome::Cancelled),
    };
    // A server that takes the prompt and never answers must neither hold the job forever nor ignore a cancel.
    let submitted = tokio::select! {
        answer = tokio::time::timeout(SUBMIT_TIMEOUT.min(timeout), client.submit(prompt, feed.client_id(), prompt_id)) => answer,
        _ = until_cancelled(&mut cancel) => {
            // It may have reached the server's queue: take it out, without making the cancel wait on a server
            // that is not answering.
            let (client, prompt_id) = (client.clone(), prompt_id.to_string());
            tokio::spawn(async move { client.stop(&prompt_id).await });
            return Ok(RunOutcome::Cancelled);
        }
    };
    let Ok(accepted) = submitted else {
        return Ok(RunOutcome::Lost {
            reason: format!(
                "it did not answer within {} s when the job was sent",
                SUBMIT_TIMEOUT.min(timeout).as_secs()
            ),
        });
    };
    let accepted = accepted?;
    on_event(RunEvent::Accepted {
        number: accepted.number,
    });

    let mut outputs: Vec<(String, OutputImage)> = Vec::new();
    let mut started = false;
    let mut failed: Option<String> = None;
    let mut interrupted = false;
    let mut succeeded = false;
    let mut poll_failures = 0u32;
    let mut next_poll = Instant::now() + SAFETY_POLL;
    loop {
        let now = Instant::now();
        if now >= deadline {
            client.stop(prompt_id).await;
            return Ok(RunOutcome::TimedOut);
        }
        let wait_poll = next_poll.saturating_duration_since(now).min(deadline - now);
        tokio::select! {
            changed = cancel.changed() => {
                if changed.is_ok() && *cancel.borrow() {
                    client.stop(prompt_id).await;
                    return Ok(RunOutcome::Cancelled);
                }
            }
            item = async { match ws.as_mut() { Some(w) => w.next().await, None => std::future::pending().await } } => {
                let event = match item {
                    FeedItem::Event(e) => e,
                    FeedItem::Lost => {
                        ws = None;
                        on_event(RunEvent::SocketLost);
                        next_poll = Instant::now();
                        continue;
                    }
                };
                let ours = |p: &str| p == prompt_id;
                match event {
                    ComfyEvent::ExecutionStart { prompt_id: p } if ours(&p)
                        && !started => { started = true; on_event(RunEvent::Started); }
                    ComfyEvent::ProgressState { prompt_id: p, finished, total, running_fraction } if ours(&p) && total > 0 => {
                        if !started { started = true; on_event(RunEvent::Started); }
                        on_event(RunEvent::Progress(((finished as f64 + running_fraction) / total as f64).clamp(0.0, 1.0)));
                    }
                    ComfyEvent::Executed { prompt_id: p, node, images } if ours(&p) => {
                        outputs.extend(images.into_iter().map(|i| (node.clone(), i)));
                    }
                    ComfyEvent::Preview { prompt_id: p, mime, bytes, .. } if p.as_deref().map_or(started, ours) => {
                        on_event(RunEvent::Preview { mime, bytes });
                    }
                    ComfyEvent::Success { prompt_id: p } if ours(&p) => succeeded = true,
                    ComfyEvent::Error { prompt_id: p, node_id, node_type, message, exception_type } if ours(&p) => {
                        failed = Some(format!("Node {node_id} ({node_type}) failed: {message} ({exception_type})"));
                    }
                    ComfyEvent::Interrupted { prompt_id: p, .. } if ours(&p) => interrupted = true,
                    ComfyEvent::Executing { prompt_id: Some(p), node: None } if ours(&p) => {
                        // The terminal marker: decide from what we saw.
                        if let Some(message) = failed { return Ok(RunOutcome::Failed { message }); }
                        if interrupted { return Ok(RunOutcome::Interrupted); }
                        if succeeded { return Ok(RunOutcome::Succeeded { outputs }); }
                        // Saw the end without the details (e.g. a reconnect): ask history.
                        next_poll = Instant::now();
                    }
                    _ => {}
                }
            }
            _ = tokio::time::sleep(wait_poll) => {
                next_poll = Instant::now() + if ws.is_some() { SAFETY_POLL } else { POLL_INTERVAL };
                match poll(client, prompt_id).await {
                    Ok(Some(outcome)) => return Ok(outcome),
                    Ok(None) => poll_failures = 0,
                    Err(e) => {
                        poll_failures += 1;
                        if poll_failures >= MAX_POLL_FAILURES {
                            return Ok(RunOutcome::Lost { reason: e.to_string() });
                        }
                    }
                }
            }
        }
    }
}

/// One look at `/history` and `/queue`: `Some` when the prompt has ended (or the server forgot it).
async fn poll(client: &ComfyClient, prompt_id: &str) -> Result<Option<RunOutcome>, ComfyError> {
    if let Some(h) = client.history(prompt_id).await? {
        return Ok(Some(match h.last_message.as_deref() {
            _ if h.success => RunOutcome::Succeeded { outputs: h.outputs },
            Some("execution_interrupted") => RunOutcome::Interrupted,
            _ => RunOutcome::Failed {
                message: h
                    .error
                    .unwrap_or_else(|| "the workflow failed on the server".into()),
            },
        }));
    }
    let q = client.queue_ids().await?;
    if q.running
        .iter()
        .chain(q.pending.iter())
        .any(|id| id == prompt_id)
    {
        return Ok(None);
    }
    // Neither queued nor in history: look once more (it may have finished between the two calls).
    if client.history(prompt_id).await?.is_some() {
        return Box::pin(poll(client, prompt_id)).await;
    }
    Ok(Some(RunOutcome::Lost {
        reason: "the server no longer knows this job (it may have restarted)".into(),
    }))
}

/// Follow a prompt that was submitted before (e.g. by a previous run of the app) without sending it again.
pub async fn attach(
    client: &ComfyClient,
    prompt_id: &str,
    timeout: Duration,
    mut cancel: watch::Receiver<bool>,
    mut on_event: impl FnMut(RunEvent) + Send,
) -> Result<RunOutcome, SubmitError> {
    let deadline = Instant::now() + timeout;
    let mut failures = 0u32;
    loop {
        match poll(client, prompt_id).await {
            Ok(Some(outcome)) => return Ok(outcome),
            Ok(None) => {
                failures = 0;
                on_event(RunEvent::Started);
            }
            Err(e) => {
                failures += 1;
                if failures >= MAX_POLL_FAILURES {
                    return Ok(RunOutcome::Lost {
                        reason: e.to_string(),
                    });
                }
            }
        }
        if Instant::now() >= deadline {
            client.stop(prompt_id).await;
            return Ok(RunOutcome::TimedOut);
        }
        tokio::select! {
            changed = cancel.changed() => {
                if changed.is_ok() && *cancel.borrow() {
                    client.stop(prompt_id).await;
                    return Ok(RunOutcome::Cancelled);
                }
            }
            _ = tokio::time::sleep(POLL_INTERVAL) => {}
        }
    }
}
