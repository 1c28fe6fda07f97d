//! The fake's one worker (ComfyUI's `prompt_worker`): takes the next prompt from the queue and plays its plan out
//! over time, sending the recorded WebSocket sequence, writing the outputs, and finally the history entry. It owns
//! the running prompt's progress; the state is locked for each step, never across a wait, and a worker whose boot
//! is over (`kill()`) stops at its next step.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::bodies;
use super::execution::{Failure, ImageSpec, Plan, Step, Work};
use super::files::Folder;
use super::png;
use super::queue::QueueItem;
use super::server::Shared;
use super::state::{ComfyState, Finished, Outgoing};
use crate::pyjson::{self, object, OrderedJson};

/// `extra_data` keys ComfyUI leaves out of history (`SENSITIVE_EXTRA_DATA_KEYS`).
const SENSITIVE_EXTRA_DATA_KEYS: [&str; 2] = ["auth_token_comfy_org", "api_key_comfy_org"];
/// Side of a sampling preview (a 512² image's latent).
const PREVIEW_SIDE: u32 = 64;

/// A prompt taken from the queue, with everything decided about its run.
pub(crate) struct Job {
    pub item: QueueItem,
    pub client_id: Option<String>,
    pub plan: Plan,
    /// The whole run's time, shared by the nodes that actually run.
    pub exec_time: Duration,
}

/// Runs prompts until the fake's boot `boot` ends.
pub(crate) async fn run(shared: Arc<Shared>, boot: u64) {
    let changed = shared.lock().changed();
    loop {
        let notified = changed.notified();
        let job = {
            let mut state = shared.lock();
            if state.boot() != boot {
                return;
            }
            state.start_next()
        };
        match job {
            Some(job) => {
                let (mut run, plan) = Run::new(&shared, boot, job);
                if run.play(plan).await.is_err() {
                    return;
                }
            }
            None => notified.await,
        }
    }
}

/// The fake was killed: this run is over.
struct Gone;

/// How a run ended.
enum End {
    Success,
    Error(OrderedJson),
    Interrupted(OrderedJson),
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One running prompt.
struct Run<'a> {
    shared: &'a Shared,
    boot: u64,
    item: QueueItem,
    client_id: Option<String>,
    exec_time: Duration,
    /// `progress_state` nodes: id -> (value, max, state), in the order they started.
    progress: Vec<(String, OrderedJson, OrderedJson, &'static str)>,
    executed: Vec<String>,
    /// UI outputs of output nodes, for history.
    outputs: Vec<(String, OrderedJson)>,
    /// `status.messages` of the history entry.
    messages: Vec<(String, OrderedJson)>,
}

impl<'a> Run<'a> {
    fn new(shared: &'a Shared, boot: u64, job: Job) -> (Run<'a>, Plan) {
        let run = Run {
            shared,
            boot,
            item: job.item,
            client_id: job.client_id,
            exec_time: job.exec_time,
            progress: Vec::new(),
            executed: Vec::new(),
            outputs: Vec::new(),
            messages: Vec::new(),
        };
        (run, job.plan)
    }
}

impl Run<'_> {
    fn with<R>(&self, f: impl FnOnce(&mut ComfyState) -> R) -> Result<R, Gone> {
        let mut state = self.shared.lock();
        if state.boot() != self.boot {
            return Err(Gone);
        }
        Ok(f(&mut state))
    }

    fn prompt_id(&self) -> &str {
        &self.item.prompt_id
    }

    /// `send_sync(kind, data, client_id)`: to the prompt's client, or to everyone when it has none.
    fn send(&self, kind: &str, data: OrderedJson) -> Result<(), Gone> {
        let message = Outgoing::Text(bodies::ws_message(kind, data));
        self.with(|state| state.send(self.client_id.as_deref(), message))
    }

    /// Only to the prompt's client; nothing when it has none (`executing`, `executed`, `execution_*`).
    fn send_to_client(&self, kind: &str, data: OrderedJson) -> Result<(), Gone> {
        match &self.client_id {
            Some(_) => self.send(kind, data),
            None => Ok(()),
        }
    }

    /// `PromptExecutor.add_message`: kept for history, sent to the client (or to every socket when `broadcast`).
    fn add_message(&mut self, kind: &str, data: OrderedJson, broadcast: bool) -> Result<(), Gone> {
        self.messages.push((kind.to_string(), data.clone()));
        if broadcast {
            let message = Outgoing::Text(bodies::ws_message(kind, data));
            self.with(|state| state.send(None, message))
        } else {
            self.send_to_client(kind, data)
        }
    }

    fn id_and_time(&self) -> Vec<(&'static str, OrderedJson)> {
        vec![
            ("prompt_id", self.prompt_id().into()),
            ("timestamp", now_ms().into()),
        ]
    }

    fn interrupted(&self) -> Result<bool, Gone> {
        self.with(|state| state.interrupted())
    }

    async fn play(&mut self, plan: Plan) -> Result<(), Gone> {
        self.add_message("execution_start", object(self.id_and_time()), false)?;
        let cached = plan
            .cached
            .iter()
            .map(|id| id.as_str().into())
            .collect::<Vec<OrderedJson>>();
        let mut data = vec![("nodes", OrderedJson::Array(cached))];
        data.extend(self.id_and_time());
        self.add_message("execution_cached", object(data), false)?;
        let node_time = self.exec_time / (plan.running_nodes().max(1) as u32);
        let mut end = End::Success;
        for step in &plan.steps {
            if let Some(ended) = self.node(step, node_time, &plan).await? {
                end = ended;
                break;
            }
        }
        let success = matches!(end, End::Success);
        match end {
            End::Success => {
                self.add_message("execution_success", object(self.id_and_time()), false)?
            }
            End::Error(data) => self.add_message("execution_error", data, false)?,
            End::Interrupted(data) => self.add_message("execution_interrupted", data, true)?,
        }
        self.finish(success)
    }

    /// Runs one node; `Some(end)` when the run stops there.
    async fn node(
        &mut self,
        step: &Step,
        node_time: Duration,
        plan: &Plan,
    ) -> Result<Option<End>, Gone> {
        let id = step.id.as_str();
        if let Work::Cached(ui) = &step.work {
            self.executed_message(id, ui.clone().unwrap_or(OrderedJson::Null))?;
            if let Some(ui) = ui {
                self.outputs.push((id.to_string(), ui.clone()));
            }
            self.set_progress(id, 1u64.into(), 1u64.into(), "finished")?;
            self.executed.push(id.to_string());
            return Ok(None);
        }
        self.set_progress(id, 0.0.into(), 1.0.into(), "running")?;
        if self.client_id.is_some() {
            self.with(|state| state.set_last_node(Some(id)))?;
        }
        self.send_to_client(
            "executing",
            object(vec![
                ("node", id.into()),
                ("display_node", id.into()),
                ("prompt_id", self.prompt_id().into()),
            ]),
        )?;
        if self.interrupted()? {
            return Ok(Some(self.interrupted_end(step)));
        }
        let mut ui = None;
        match &step.work {
            Work::Cached(_) | Work::Plain => tokio::time::sleep(node_time).await,
            Work::Steps(steps) => {
                for value in 1..=*steps {
                    tokio::time::sleep(node_time / *steps).await;
                    // ComfyUI's progress hook checks for an interrupt at every step.
                    if self.interrupted()? {
                        return Ok(Some(self.interrupted_end(step)));
                    }
                    // A preview that lightens as sampling goes on.
                    let shade = (255 * u64::from(value) / u64::from(*steps)) as u8;
                    let preview = png::solid_rgb(PREVIEW_SIDE, PREVIEW_SIDE, [shade; 3]);
                    self.progress_step(id, value, *steps, preview)?;
                }
            }
            Work::SaveImageWebsocket { image } => {
                let png = image.png();
                for value in 0..image.batch {
                    tokio::time::sleep(node_time / image.batch).await;
                    if self.interrupted()? {
                        return Ok(Some(self.interrupted_end(step)));
                    }
                    self.progress_step(id, value, image.batch, png.clone())?;
                }
            }
            Work::SaveImage { prefix, image } => {
                tokio::time::sleep(node_time).await;
                match self.save(Folder::Output, Some(prefix), image)? {
                    Ok(images) => ui = Some(images),
                    Err(message) => {
                        let failure = Failure {
                            exception_type: "Exception".to_string(),
                            exception_message: message,
                            traceback: Vec::new(),
                            current_inputs: OrderedJson::Object(Vec::new()),
                        };
                        return Ok(Some(self.error_end(step, &failure, plan)));
                    }
                }
            }
            Work::PreviewImage { image } => {
                tokio::time::sleep(node_time).await;
                if let Ok(images) = self.save(Folder::Temp, None, image)? {
                    ui = Some(images);
                }
            }
            Work::Fail(failure) => {
                tokio::time::sleep(node_time).await;
                return Ok(Some(self.error_end(step, failure, plan)));
            }
        }
        if let Some(ui) = &ui {
            self.executed_message(id, ui.clone())?;
            self.outputs.push((id.to_string(), ui.clone()));
        }
        // Finished at its maximum: 1.0 of 1.0, or the last step count of a progress bar.
        let max = self
            .progress
            .iter()
            .find(|(node, ..)| node == id)
            .map_or(OrderedJson::from(1.0), |(_, _, max, _)| max.clone());
        self.set_progress(id, max.clone(), max, "finished")?;
        self.executed.push(id.to_string());
        let signature = step.signature;
        self.with(|state| state.cache_result(signature, ui))?;
        Ok(None)
    }

    fn save(
        &self,
        folder: Folder,
        prefix: Option<&str>,
        image: &ImageSpec,
    ) -> Result<Result<OrderedJson, String>, Gone> {
        let saved = self.with(|state| state.save_images(folder, prefix, image))?;
        Ok(saved.map(|images| object(vec![("images", OrderedJson::Array(images))])))
    }

    fn executed_message(&self, id: &str, output: OrderedJson) -> Result<(), Gone> {
        self.send_to_client(
            "executed",
            object(vec![
                ("node", id.into()),
                ("display_node", id.into()),
                ("output", output),
                ("prompt_id", self.prompt_id().into()),
            ]),
        )
    }

    /// Sets a node's progress and sends `progress_state` with every node of the run so far.
    fn set_progress(
        &mut self,
        id: &str,
        value: OrderedJson,
        max: OrderedJson,
        state: &'static str,
    ) -> Result<(), Gone> {
        match self.progress.iter_mut().find(|(node, ..)| node == id) {
            Some(entry) => *entry = (id.to_string(), value, max, state),
            None => self.progress.push((id.to_string(), value, max, state)),
        }
        let prompt_id = self.prompt_id();
        let nodes = self
            .progress
            .iter()
            .map(|(node, value, max, state)| {
                let entry = object(vec![
                    ("value", value.clone()),
                    ("max", max.clone()),
                    ("state", (*state).into()),
                    ("node_id", node.as_str().into()),
                    ("prompt_id", prompt_id.into()),
                    ("display_node_id", node.as_str().into()),
                    ("parent_node_id", OrderedJson::Null),
                    ("real_node_id", node.as_str().into()),
                ]);
                (node.clone(), entry)
            })
            .collect();
        self.send(
            "progress_state",
            object(vec![
                ("prompt_id", prompt_id.into()),
                ("nodes", OrderedJson::Object(nodes)),
            ]),
        )
    }

    /// One step of a progress bar with a preview: `progress_state`, then the preview as type 4 to a client that
    /// asked for metadata, `progress`, and the preview as type 1 to the others (the recorded order of each).
    fn progress_step(
        &mut self,
        id: &str,
        value: u32,
        max: u32,
        image: Vec<u8>,
    ) -> Result<(), Gone> {
        self.set_progress(
            id,
            u64::from(value).into(),
            u64::from(max).into(),
            "running",
        )?;
        let metadata = pyjson::to_string(&object(vec![
            ("node_id", id.into()),
            ("prompt_id", self.prompt_id().into()),
            ("display_node_id", id.into()),
            ("parent_node_id", OrderedJson::Null),
            ("real_node_id", id.into()),
            ("image_type", "image/png".into()),
        ]));
        let with_metadata = bodies::preview_frame_with_metadata(&metadata, &image);
        let client = self.client_id.clone();
        self.with(|state| state.send_preview(client.as_deref(), true, with_metadata))?;
        self.send(
            "progress",
            object(vec![
                ("value", u64::from(value).into()),
                ("max", u64::from(max).into()),
                ("prompt_id", self.prompt_id().into()),
                ("node", id.into()),
            ]),
        )?;
        let plain = bodies::preview_frame(&image);
        self.with(|state| state.send_preview(client.as_deref(), false, plain))
    }

    /// `executed` of `execution_error` and `execution_interrupted`: the nodes done so far, latest first (the order
    /// the recorded runs listed them in).
    fn executed_list(&self) -> OrderedJson {
        OrderedJson::Array(
            self.executed
                .iter()
                .rev()
                .map(|id| id.as_str().into())
                .collect(),
        )
    }

    fn interrupted_end(&self, step: &Step) -> End {
        End::Interrupted(object(vec![
            ("prompt_id", self.prompt_id().into()),
            ("node_id", step.id.as_str().into()),
            ("node_type", step.class_type.as_str().into()),
            ("executed", self.executed_list()),
            ("timestamp", now_ms().into()),
        ]))
    }

    fn error_end(&self, step: &Step, failure: &Failure, plan: &Plan) -> End {
        End::Error(object(vec![
            ("prompt_id", self.prompt_id().into()),
            ("node_id", step.id.as_str().into()),
            ("node_type", step.class_type.as_str().into()),
            ("executed", self.executed_list()),
            (
                "exception_message",
                failure.exception_message.as_str().into(),
            ),
            ("exception_type", failure.exception_type.as_str().into()),
            (
                "traceback",
                OrderedJson::Array(
                    failure
                        .traceback
                        .iter()
                        .map(|t| t.as_str().into())
                        .collect(),
                ),
            ),
            ("current_inputs", failure.current_inputs.clone()),
            (
                "current_outputs",
                OrderedJson::Array(
                    plan.current_outputs
                        .iter()
                        .map(|id| id.as_str().into())
                        .collect(),
                ),
            ),
            ("timestamp", now_ms().into()),
        ]))
    }

    /// History entry, `status`, and `executing {node: null}`.
    fn finish(&mut self, success: bool) -> Result<(), Gone> {
        let mut prompt = self.item.to_json();
        if let OrderedJson::Array(parts) = &mut prompt {
            if let Some(OrderedJson::Object(extra)) = parts.get_mut(3) {
                extra.retain(|(key, _)| !SENSITIVE_EXTRA_DATA_KEYS.contains(&key.as_str()));
            }
        }
        let meta = self
            .outputs
            .iter()
            .map(|(id, _)| {
                let entry = object(vec![
                    ("node_id", id.as_str().into()),
                    ("display_node", id.as_str().into()),
                    ("parent_node", OrderedJson::Null),
                    ("real_node_id", id.as_str().into()),
                ]);
                (id.clone(), entry)
            })
            .collect();
        let history_entry = bodies::history_entry(
            prompt,
            OrderedJson::Object(std::mem::take(&mut self.outputs)),
            success,
            std::mem::take(&mut self.messages),
            OrderedJson::Object(meta),
        );
        let terminal = self.client_id.clone().map(|client| {
            let data = object(vec![
                ("node", OrderedJson::Null),
                ("prompt_id", self.prompt_id().into()),
            ]);
            (client, bodies::ws_message("executing", data))
        });
        let finished = Finished {
            prompt_id: self.prompt_id().to_string(),
            history_entry,
            terminal,
        };
        self.with(|state| {
            state.set_last_node(None);
            state.finish_job(finished);
        })
    }
}
