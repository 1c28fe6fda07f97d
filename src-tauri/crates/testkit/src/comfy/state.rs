//! The one mutable state of a fake ComfyUI (config, queue, history, sockets, files, the node cache, recorded
//! requests) and every answer that depends on it. Routes lock it, call one method, and turn the result into a
//! response; the worker (`worker.rs`) takes prompts from it and reports through it, one step at a time.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Notify};

use super::bodies::{self, Choices};
use super::config::FakeComfyConfig;
use super::execution::{self, ImageSpec};
use super::files::{self, Files, Folder, UploadAnswer, ViewAnswer};
use super::multipart;
use super::queue::{PendingHeap, QueueItem, QueueNumber};
use super::validation::{self, Checks};
use super::worker::Job;
use crate::pyjson::{self, OrderedJson};

/// ComfyUI keeps at most this many history entries (`MAXIMUM_HISTORY_SIZE`).
const MAX_HISTORY: usize = 10_000;
/// The letters of a `PreviewImage` file prefix (ComfyUI's own list, with its typo).
const TEMP_PREFIX_LETTERS: &[u8] = b"abcdefghijklmnopqrstupvxyz";

/// How many requests a fake keeps for [`super::FakeComfy::requests`]; older ones are dropped first.
pub const MAX_RECORDED_REQUESTS: usize = 10_000;
/// How much of each request body is kept.
pub const MAX_RECORDED_BODY: usize = 1 << 20;

/// One request as the fake received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET`, `POST`…
    pub method: String,
    /// Path and query, as sent: `/api/history?max_items=2`.
    pub path: String,
    /// Every header, names lowercased, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body (its first MiB). Empty for requests that a hanging fake never read past the headers.
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path without its query.
    pub fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or("")
    }
}

/// Python raised while handling the request: aiohttp answers 500 "Server got itself in trouble".
#[derive(Debug, PartialEq, Eq)]
pub struct PyError;

/// What `POST /prompt` answers.
#[derive(Debug, PartialEq, Eq)]
pub enum PromptAnswer {
    /// 200 with this body.
    Queued(String),
    /// 400 with this body.
    Invalid(String),
}

/// A frame for a WebSocket client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outgoing {
    Text(String),
    Binary(Vec<u8>),
}

struct SocketEntry {
    serial: u64,
    tx: mpsc::UnboundedSender<Outgoing>,
    /// The client sent `feature_flags` with `supports_preview_metadata: true`: previews go as type 4.
    previews_with_metadata: bool,
}

/// A WebSocket client the state sends messages to.
pub struct SocketRegistration {
    pub serial: u64,
    pub first_message: String,
    pub rx: mpsc::UnboundedReceiver<Outgoing>,
}

/// The prompt the worker runs.
struct Current {
    client_id: Option<String>,
    /// `PromptServer.last_node_id`: sent again to the prompt's client when it reconnects.
    last_node: Option<String>,
}

/// Why a prompt ended, for [`ComfyState::finish_job`].
pub struct Finished {
    pub prompt_id: String,
    pub history_entry: OrderedJson,
    /// `executing {node: null}` for the prompt's client, sent after the `status`.
    pub terminal: Option<(String, String)>,
}

pub struct ComfyState {
    config: FakeComfyConfig,
    port: u16,
    requests: VecDeque<RecordedRequest>,
    /// `PromptServer.number`: the next queue number.
    number: i64,
    running: Vec<QueueItem>,
    pending: PendingHeap,
    history: Vec<(String, OrderedJson)>,
    sockets: HashMap<String, SocketEntry>,
    next_socket_serial: u64,
    /// The `client_id` of the background jobs that stand for other users.
    background_client_id: String,
    /// Input, output and temp files. Kept across `kill()` (they are on disk), except temp.
    files: Files,
    /// The classic cache: signature -> UI output (for output nodes).
    cache: HashMap<u64, Option<OrderedJson>>,
    current: Option<Current>,
    /// `nodes.interrupt_processing()`: checked by the worker at node boundaries and sampling steps.
    interrupt: bool,
    /// Changes on every `kill()`: a worker of an older boot stops.
    boot: u64,
    /// Counts runs, so that nodes that always re-execute get a new signature.
    runs: u64,
    /// Prompt ids in the order the worker started them (kept across `kill()`).
    executed: Vec<String>,
    /// Woken on every change the worker or a waiting test cares about.
    changed: Arc<Notify>,
}

impl ComfyState {
    pub fn new(config: FakeComfyConfig, port: u16) -> Self {
        let mut files = Files::default();
        // The recorded server's input folder has ComfyUI's example image (it is `LoadImage`'s recorded choice).
        files.put(
            Folder::Input,
            "example.png".to_string(),
            ImageSpec::default().png(),
        );
        let mut state = ComfyState {
            config,
            port,
            requests: VecDeque::new(),
            number: 0,
            running: Vec::new(),
            pending: PendingHeap::default(),
            history: Vec::new(),
            sockets: HashMap::new(),
            next_socket_serial: 0,
            background_client_id: uuid::Uuid::new_v4().to_string(),
            files,
            cache: HashMap::new(),
            current: None,
            interrupt: false,
            boot: 0,
            runs: 0,
            executed: Vec::new(),
            changed: Arc::new(Notify::new()),
        };
        state.sync_background_jobs();
        state
    }

    /// Notified on every change of the queue, of a running prompt, and of the config.
    pub fn changed(&self) -> Arc<Notify> {
        self.changed.clone()
    }

    fn notify(&self) {
        self.changed.notify_waiters();
    }

    pub fn config(&self) -> &FakeComfyConfig {
        &self.config
    }

    /// Applies a test's change; the queue follows the new counts and sockets hear about a changed queue.
    pub fn change_config(&mut self, f: impl FnOnce(&mut FakeComfyConfig)) {
        let before = self.queue_remaining();
        f(&mut self.config);
        self.sync_background_jobs();
        if self.queue_remaining() != before {
            self.broadcast_status();
        }
        self.notify();
    }

    // ---- recorded requests ----

    pub fn record(&mut self, request: RecordedRequest) {
        if self.requests.len() == MAX_RECORDED_REQUESTS {
            self.requests.pop_front();
        }
        self.requests.push_back(request);
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.iter().cloned().collect()
    }

    pub fn clear_requests(&mut self) {
        self.requests.clear();
    }

    // ---- read-only answers ----

    pub fn system_stats(&self) -> String {
        bodies::system_stats(&self.config, self.port)
    }

    /// `len(queue) + len(currently_running)`.
    pub fn queue_remaining(&self) -> usize {
        self.running.len() + self.pending.len()
    }

    pub fn queue_info(&self) -> String {
        bodies::queue_info(self.queue_remaining())
    }

    /// `GET /queue`.
    pub fn queue(&self) -> String {
        #[derive(serde::Serialize)]
        struct Queue<'a> {
            queue_running: &'a [QueueItem],
            queue_pending: &'a [QueueItem],
        }
        pyjson::to_string(&Queue {
            queue_running: &self.running,
            queue_pending: self.pending.items(),
        })
    }

    /// `GET /history[?max_items=N&offset=M]`, with `PromptQueue.get_history`'s window arithmetic.
    pub fn history(
        &self,
        max_items: Option<&str>,
        offset: Option<&str>,
    ) -> Result<String, PyError> {
        let max_items = max_items.map(py_int).transpose()?;
        let mut offset = offset.map(py_int).transpose()?.unwrap_or(-1);
        if offset < 0 {
            if let Some(max) = max_items {
                offset = self.history.len() as i64 - max;
            }
        }
        let mut out = Vec::new();
        for (i, (id, entry)) in self.history.iter().enumerate() {
            if i as i64 >= offset {
                out.push((id.clone(), entry.clone()));
                if max_items.is_some_and(|max| out.len() as i64 >= max) {
                    break;
                }
            }
        }
        Ok(pyjson::to_string(&OrderedJson::Object(out)))
    }

    /// `GET /history/{prompt_id}`: `{}` when unknown (or still pending).
    pub fn history_item(&self, prompt_id: &str) -> String {
        let found = self
            .history
            .iter()
            .filter(|(id, _)| id == prompt_id)
            .cloned()
            .collect();
        pyjson::to_string(&OrderedJson::Object(found))
    }

    /// The file lists `/object_info` shows: checkpoints, and `LoadImage`'s images (top-level input files).
    fn choices(&self) -> Choices {
        let input_images = self
            .files
            .list(Folder::Input)
            .into_iter()
            .filter(|name| !name.contains('/'))
            .collect();
        Choices {
            checkpoints: self.models_sorted("checkpoints").unwrap_or_default(),
            input_images,
        }
    }

    pub fn object_info(&self) -> String {
        bodies::object_info_all(&self.choices())
    }

    pub fn object_info_class(&self, class: &str) -> String {
        bodies::object_info_class(class, &self.choices())
    }

    /// `GET /models`: the recorded folders first, in recorded order, then any other folder a test added.
    pub fn model_folders(&self) -> String {
        let recorded = super::config::RECORDED_MODEL_FOLDERS;
        let mut folders: Vec<&str> = recorded
            .iter()
            .copied()
            .filter(|f| self.config.models.contains_key(*f))
            .collect();
        folders.extend(
            self.config
                .models
                .keys()
                .map(String::as_str)
                .filter(|f| !recorded.contains(f)),
        );
        pyjson::to_string(&folders)
    }

    /// `folder_paths.get_filename_list`: sorted names, or `None` for an unknown folder.
    fn models_sorted(&self, folder: &str) -> Option<Vec<String>> {
        let mut files = self.config.models.get(folder)?.clone();
        files.sort();
        files.dedup();
        Some(files)
    }

    /// `GET /models/{folder}`; `None` means 404 with an empty body.
    pub fn models(&self, folder: &str) -> Option<String> {
        self.models_sorted(folder)
            .map(|files| pyjson::to_string(&files))
    }

    /// `GET /embeddings`: the embeddings folder without file extensions.
    pub fn embeddings(&self) -> String {
        let names: Vec<&str> = self
            .config
            .models
            .get("embeddings")
            .map(|files| files.iter().map(|f| strip_extension(f)).collect())
            .unwrap_or_default();
        let mut names = names;
        names.sort();
        pyjson::to_string(&names)
    }

    // ---- commands ----

    /// `POST /prompt`, following `server.py` step by step: the counter advances for every parsed body, even an
    /// invalid one. See `validation.rs` for what is checked.
    pub fn post_prompt(&mut self, body: &[u8]) -> Result<PromptAnswer, PyError> {
        let json = OrderedJson::parse(body).map_err(|_| PyError)?;
        let number = if json.py_contains("number").ok_or(PyError)? {
            QueueNumber::Client(py_float(index(&json, "number")?)?)
        } else {
            let mut n = self.number;
            if json.py_contains("front").ok_or(PyError)? && index(&json, "front")?.truthy() {
                n = -n;
            }
            self.number += 1;
            QueueNumber::Counter(n)
        };
        if !json.py_contains("prompt").ok_or(PyError)? {
            return Ok(PromptAnswer::Invalid(bodies::prompt_error(
                "no_prompt",
                "No prompt provided",
                "No prompt provided",
            )));
        }
        let prompt = index(&json, "prompt")?.clone();
        let prompt_id = match json.get("prompt_id") {
            Some(id) => id.py_str(),
            None => uuid::Uuid::new_v4().to_string(),
        };
        let targets = json
            .get("partial_execution_targets")
            .filter(|t| **t != OrderedJson::Null);
        let models = |folder: &str| self.models_sorted(folder).unwrap_or_default();
        let input_exists = |name: &str| self.files.annotated_file(name).is_some();
        let checks = Checks {
            models: &models,
            input_exists: &input_exists,
        };
        let accepted = match validation::validate_prompt(&prompt, targets, &checks)? {
            Ok(accepted) => accepted,
            Err(error_body) => return Ok(PromptAnswer::Invalid(error_body)),
        };
        let outputs = accepted.outputs;
        let mut extra_data = json
            .get("extra_data")
            .cloned()
            .unwrap_or(OrderedJson::Object(Vec::new()));
        if let Some(client_id) = json.get("client_id") {
            match &mut extra_data {
                OrderedJson::Object(entries) => {
                    OrderedJson::insert(entries, "client_id", client_id.clone())
                }
                _ => return Err(PyError),
            }
        }
        self.pending.push(QueueItem {
            number,
            prompt_id: prompt_id.clone(),
            prompt,
            extra_data,
            outputs_to_execute: outputs,
            background: false,
        });
        self.broadcast_status();
        self.notify();
        let errors = accepted.node_errors;
        let answer = match number {
            QueueNumber::Counter(n) => bodies::prompt_accepted_with_errors(&prompt_id, n, errors),
            QueueNumber::Client(f) => bodies::prompt_accepted_with_errors(&prompt_id, f, errors),
        };
        Ok(PromptAnswer::Queued(answer))
    }

    /// `POST /queue`: `{"clear": true}` empties the pending queue, `{"delete": [ids]}` removes pending items. Each
    /// change broadcasts a `status`.
    pub fn post_queue(&mut self, body: &[u8]) -> Result<(), PyError> {
        let json = OrderedJson::parse(body).map_err(|_| PyError)?;
        if json.py_contains("clear").ok_or(PyError)? && index(&json, "clear")?.truthy() {
            self.pending.clear();
            self.config.queue_pending = 0;
            self.broadcast_status();
        }
        if json.py_contains("delete").ok_or(PyError)? {
            for id in py_iter(index(&json, "delete")?)? {
                if let Some(removed) = self
                    .pending
                    .delete_first(|item| Some(item.prompt_id.as_str()) == id.as_str())
                {
                    if removed.background {
                        self.config.queue_pending = self.config.queue_pending.saturating_sub(1);
                    }
                    self.broadcast_status();
                }
            }
        }
        self.notify();
        Ok(())
    }

    /// `POST /history`: `{"clear": true}` or `{"delete": [ids]}`.
    pub fn post_history(&mut self, body: &[u8]) -> Result<(), PyError> {
        let json = OrderedJson::parse(body).map_err(|_| PyError)?;
        if json.py_contains("clear").ok_or(PyError)? && index(&json, "clear")?.truthy() {
            self.history.clear();
        }
        if json.py_contains("delete").ok_or(PyError)? {
            for id in py_iter(index(&json, "delete")?)? {
                self.history
                    .retain(|(h, _)| Some(h.as_str()) != id.as_str());
            }
        }
        Ok(())
    }

    /// `POST /interrupt`: no body (or not JSON) or `{}` interrupts whatever runs; `{"prompt_id": X}` only when X is
    /// running. A JSON body that is not an object raises. The flag is cleared when the next prompt starts.
    pub fn post_interrupt(&mut self, body: &[u8]) -> Result<(), PyError> {
        let target = match OrderedJson::parse(body) {
            Err(_) => None,
            Ok(json @ OrderedJson::Object(_)) => json.get("prompt_id").cloned(),
            Ok(_) => return Err(PyError),
        };
        let interrupt = match target {
            None => true,
            Some(id) => self
                .running
                .iter()
                .any(|item| Some(item.prompt_id.as_str()) == id.as_str()),
        };
        if interrupt {
            self.interrupt = true;
        }
        Ok(())
    }

    /// `POST /free`: the body must be a JSON object.
    pub fn post_free(&mut self, body: &[u8]) -> Result<(), PyError> {
        match OrderedJson::parse(body) {
            Ok(OrderedJson::Object(_)) => Ok(()),
            _ => Err(PyError),
        }
    }

    // ---- sockets ----

    /// Adds a WebSocket client (replacing an earlier one with the same id, which then hears nothing more) and
    /// returns its first message, `status` with its `sid`. A client whose prompt is running also hears
    /// `executing` with the current node, as ComfyUI tells a reconnecting client.
    pub fn register_socket(&mut self, sid: &str) -> SocketRegistration {
        let (tx, rx) = mpsc::unbounded_channel();
        self.next_socket_serial += 1;
        let serial = self.next_socket_serial;
        if let Some(current) = &self.current {
            if let (Some(client), Some(node)) = (&current.client_id, &current.last_node) {
                if client == sid {
                    let data = pyjson::object(vec![("node", node.as_str().into())]);
                    let _ = tx.send(Outgoing::Text(bodies::ws_message("executing", data)));
                }
            }
        }
        self.sockets.insert(
            sid.to_string(),
            SocketEntry {
                serial,
                tx,
                previews_with_metadata: false,
            },
        );
        SocketRegistration {
            serial,
            first_message: bodies::status_message(self.queue_remaining(), Some(sid)),
            rx,
        }
    }

    pub fn unregister_socket(&mut self, sid: &str, serial: u64) {
        if self.sockets.get(sid).is_some_and(|s| s.serial == serial) {
            self.sockets.remove(sid);
        }
    }

    /// The client's first message was `feature_flags`: remember whether it wants previews with metadata.
    pub fn set_feature_flags(&mut self, sid: &str, serial: u64, flags: &OrderedJson) {
        if let Some(socket) = self.sockets.get_mut(sid).filter(|s| s.serial == serial) {
            socket.previews_with_metadata =
                flags.get("supports_preview_metadata") == Some(&OrderedJson::Bool(true));
        }
    }

    fn broadcast_status(&mut self) {
        let message = bodies::status_message(self.queue_remaining(), None);
        self.send(None, Outgoing::Text(message));
    }

    /// `PromptServer.send_sync(event, data, sid)`: to that client, or to every client when `sid` is `None`.
    pub fn send(&mut self, sid: Option<&str>, message: Outgoing) {
        match sid {
            None => self
                .sockets
                .retain(|_, socket| socket.tx.send(message.clone()).is_ok()),
            Some(sid) => {
                let gone = self
                    .sockets
                    .get(sid)
                    .is_some_and(|socket| socket.tx.send(message).is_err());
                if gone {
                    self.sockets.remove(sid);
                }
            }
        }
    }

    /// A sampling preview, in one of its two moments: type 4 (`with_metadata`) goes before `progress` to clients
    /// that asked for it, type 1 after `progress` to the others. A prompt without client broadcasts type 1.
    pub fn send_preview(&mut self, sid: Option<&str>, with_metadata: bool, frame: Vec<u8>) {
        let wanted = match sid {
            None => !with_metadata,
            Some(sid) => self
                .sockets
                .get(sid)
                .is_some_and(|s| s.previews_with_metadata == with_metadata),
        };
        if wanted {
            self.send(sid, Outgoing::Binary(frame));
        }
    }

    // ---- execution ----

    pub fn boot(&self) -> u64 {
        self.boot
    }

    /// Takes the next prompt the worker can run, moves it to `queue_running` and broadcasts `status`. Nothing runs
    /// while a job of another client (`config.queue_running`) is running; their pending jobs are skipped.
    pub fn start_next(&mut self) -> Option<Job> {
        if self.current.is_some() || self.running.iter().any(|item| item.background) {
            return None;
        }
        let item = self.pending.pop_next(|item| !item.background)?;
        self.running.push(item.clone());
        self.interrupt = false;
        self.runs += 1;
        self.executed.push(item.prompt_id.clone());
        let client_id = match item.extra_data.get("client_id") {
            None | Some(OrderedJson::Null) => None,
            Some(id) => Some(id.py_str()),
        };
        let files = &self.files;
        let input_file = |name: &str| files.annotated_file(name).map(<[u8]>::to_vec);
        let context = execution::Context {
            cache: &self.cache,
            runtime_error_class: self.config.runtime_error_class.as_deref(),
            input_file: &input_file,
            run_token: self.runs,
        };
        let plan = execution::plan(&item.prompt, &item.outputs_to_execute, &context);
        self.cache
            .retain(|signature, _| plan.signatures.contains(signature));
        let exec_time = match item.extra_data.get("fake_exec_ms") {
            Some(OrderedJson::Number(ms)) => ms
                .as_f64()
                .filter(|ms| ms.is_finite() && *ms >= 0.0)
                .map(|ms| Duration::from_secs_f64(ms / 1000.0)),
            _ => None,
        }
        .unwrap_or(self.config.exec_time);
        self.current = Some(Current {
            client_id: client_id.clone(),
            last_node: None,
        });
        self.broadcast_status();
        Some(Job {
            item,
            client_id,
            plan,
            exec_time,
        })
    }

    /// Whether an interrupt arrived since the running prompt started.
    pub fn interrupted(&self) -> bool {
        self.interrupt
    }

    /// The node the running prompt is executing (`None` once it is done).
    pub fn set_last_node(&mut self, node: Option<&str>) {
        if let Some(current) = &mut self.current {
            current.last_node = node.map(str::to_string);
        }
    }

    /// A node finished: its result is cached under `signature` (with its UI output, for output nodes).
    pub fn cache_result(&mut self, signature: u64, ui: Option<OrderedJson>) {
        self.cache.insert(signature, ui);
    }

    /// `SaveImage` (folder output, the given prefix) or `PreviewImage` (temp, `ComfyUI_temp_xxxxx`): writes one PNG
    /// per image of the batch and returns the `images` entries, or the exception message of a prefix that leaves the
    /// folder. With `evil_output_name` set, the entries name that file instead.
    pub fn save_images(
        &mut self,
        folder: Folder,
        prefix: Option<&str>,
        image: &ImageSpec,
    ) -> Result<Vec<OrderedJson>, String> {
        let prefix = match prefix {
            Some(prefix) => prefix.to_string(),
            None => {
                let random = uuid::Uuid::new_v4();
                let letters: String = random.as_bytes()[..5]
                    .iter()
                    .map(|b| {
                        TEMP_PREFIX_LETTERS[usize::from(*b) % TEMP_PREFIX_LETTERS.len()] as char
                    })
                    .collect();
                format!("ComfyUI_temp_{letters}")
            }
        };
        let path = Files::save_path(folder, &prefix, image.width, image.height)?;
        let first = self
            .files
            .next_counter(folder, &path.subfolder, &path.filename);
        let png = image.png();
        let mut entries = Vec::new();
        for (batch_number, counter) in (0..image.batch).zip(first..) {
            let name = path
                .filename
                .replace("%batch_num%", &batch_number.to_string());
            let file = format!("{name}_{counter:05}_.png");
            self.files
                .put(folder, files::join(&path.subfolder, &file), png.clone());
            let reported = self.config.evil_output_name.clone().unwrap_or(file);
            entries.push(pyjson::object(vec![
                ("filename", reported.into()),
                ("subfolder", path.subfolder.as_str().into()),
                ("type", folder.type_name().into()),
            ]));
        }
        Ok(entries)
    }

    /// `PromptQueue.task_done` and what follows: the prompt leaves `queue_running`, its history entry is written,
    /// `status` is broadcast, then its client hears the terminal `executing`.
    pub fn finish_job(&mut self, finished: Finished) {
        if let Some(pos) = self
            .running
            .iter()
            .position(|item| !item.background && item.prompt_id == finished.prompt_id)
        {
            self.running.remove(pos);
        }
        match self
            .history
            .iter_mut()
            .find(|(id, _)| *id == finished.prompt_id)
        {
            Some((_, entry)) => *entry = finished.history_entry,
            None => {
                if self.history.len() >= MAX_HISTORY {
                    self.history.remove(0);
                }
                self.history
                    .push((finished.prompt_id.clone(), finished.history_entry));
            }
        }
        self.current = None;
        self.broadcast_status();
        if let Some((client, message)) = finished.terminal {
            self.send(Some(&client), Outgoing::Text(message));
        }
        self.notify();
    }

    /// No prompt posted to the fake is pending or running (jobs of other clients do not count).
    pub fn is_idle(&self) -> bool {
        self.current.is_none()
            && !self.running.iter().any(|item| !item.background)
            && !self.pending.items().iter().any(|item| !item.background)
    }

    /// Prompt ids in the order they started running.
    pub fn executed_prompts(&self) -> Vec<String> {
        self.executed.clone()
    }

    /// A crash and a restart: the queue, history, sockets, cache and temp files are gone, the counter starts again.
    /// The config, recorded requests, the input and output files and the list of executed prompts stay.
    pub fn reboot(&mut self) {
        self.boot += 1;
        self.number = 0;
        self.running.clear();
        self.pending.clear();
        self.history.clear();
        self.sockets.clear();
        self.cache.clear();
        self.current = None;
        self.interrupt = false;
        self.files.clear(Folder::Temp);
        self.background_client_id = uuid::Uuid::new_v4().to_string();
        self.sync_background_jobs();
        self.notify();
    }

    // ---- files ----

    /// `GET /view`.
    pub fn view(
        &self,
        filename: Option<&str>,
        kind: Option<&str>,
        subfolder: Option<&str>,
    ) -> ViewAnswer {
        self.files.view(filename, kind, subfolder)
    }

    /// `POST /upload/image` with a body of this content type.
    pub fn upload_image(&mut self, content_type: Option<&str>, body: &[u8]) -> UploadAnswer {
        match multipart::fields(content_type, body) {
            Some(fields) => self.files.upload(&fields),
            None => UploadAnswer::ServerError,
        }
    }

    // ---- background jobs ----

    /// Makes the background jobs in the queue match `config.queue_running` / `queue_pending`.
    fn sync_background_jobs(&mut self) {
        let want_running = self.config.queue_running as usize;
        while self.running.iter().filter(|i| i.background).count() < want_running {
            let item = self.background_job();
            self.running.push(item);
        }
        while self.running.iter().filter(|i| i.background).count() > want_running {
            if let Some(pos) = self.running.iter().rposition(|i| i.background) {
                self.running.remove(pos);
            }
        }
        let want_pending = self.config.queue_pending as usize;
        let pending_background =
            |heap: &PendingHeap| heap.items().iter().filter(|i| i.background).count();
        while pending_background(&self.pending) < want_pending {
            let item = self.background_job();
            self.pending.push(item);
        }
        while pending_background(&self.pending) > want_pending {
            let newest = self
                .pending
                .items()
                .iter()
                .filter(|i| i.background)
                .max_by(|a, b| queue_number(a).total_cmp(&queue_number(b)))
                .map(|i| i.prompt_id.clone());
            match newest {
                Some(id) => {
                    self.pending.delete_first(|i| i.prompt_id == id);
                }
                None => break,
            }
        }
    }

    /// A job of another client: the recorded EmptyImage -> SaveImage prompt.
    fn background_job(&mut self) -> QueueItem {
        let number = self.number;
        self.number += 1;
        let prompt = OrderedJson::parse(
            br#"{"1": {"class_type": "EmptyImage", "inputs": {"width": 512, "height": 512, "batch_size": 1, "color": 0}}, "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "probe"}}}"#,
        )
        .unwrap_or(OrderedJson::Null);
        QueueItem {
            number: QueueNumber::Counter(number),
            prompt_id: uuid::Uuid::new_v4().to_string(),
            prompt,
            extra_data: OrderedJson::Object(vec![(
                "client_id".to_string(),
                OrderedJson::from(self.background_client_id.as_str()),
            )]),
            outputs_to_execute: vec!["2".to_string()],
            background: true,
        }
    }
}

fn queue_number(item: &QueueItem) -> f64 {
    match item.number {
        QueueNumber::Counter(n) => n as f64,
        QueueNumber::Client(f) => f,
    }
}

/// `value[key]` where Python would raise unless `value` is a dict holding `key`.
fn index<'a>(value: &'a OrderedJson, key: &str) -> Result<&'a OrderedJson, PyError> {
    value.get(key).ok_or(PyError)
}

/// `for x in value`.
fn py_iter(value: &OrderedJson) -> Result<Vec<OrderedJson>, PyError> {
    match value {
        OrderedJson::Array(items) => Ok(items.clone()),
        OrderedJson::Object(entries) => Ok(entries
            .iter()
            .map(|(k, _)| OrderedJson::from(k.as_str()))
            .collect()),
        OrderedJson::String(s) => Ok(s
            .chars()
            .map(|c| OrderedJson::String(c.to_string()))
            .collect()),
        _ => Err(PyError),
    }
}

/// `float(value)`.
fn py_float(value: &OrderedJson) -> Result<f64, PyError> {
    match value {
        OrderedJson::Number(n) => n.as_f64().ok_or(PyError),
        OrderedJson::Bool(b) => Ok(if *b { 1.0 } else { 0.0 }),
        OrderedJson::String(s) => s.trim().replace('_', "").parse().map_err(|_| PyError),
        _ => Err(PyError),
    }
}

/// `int(text)` for a query parameter.
fn py_int(text: &str) -> Result<i64, PyError> {
    text.trim().replace('_', "").parse().map_err(|_| PyError)
}

/// `os.path.splitext(name)[0]`.
fn strip_extension(name: &str) -> &str {
    match name.rfind('.') {
        Some(dot) if dot > 0 && !name[..dot].ends_with('/') => &name[..dot],
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> ComfyState {
        ComfyState::new(FakeComfyConfig::default(), 8188)
    }

    const PROMPT: &[u8] = br#"{"prompt":{"1":{"class_type":"EmptyImage","inputs":{"width":8}},"2":{"class_type":"SaveImage","inputs":{"images":["1",0]}}},"client_id":"c1"}"#;

    #[test]
    fn state_numbers_prompts_and_counts_invalid_ones_too() {
        let mut s = state();
        assert!(
            matches!(s.post_prompt(PROMPT), Ok(PromptAnswer::Queued(b)) if b.contains(r#""number": 0,"#))
        );
        assert!(matches!(s.post_prompt(b"{}"), Ok(PromptAnswer::Invalid(_))));
        assert!(
            matches!(s.post_prompt(PROMPT), Ok(PromptAnswer::Queued(b)) if b.contains(r#""number": 2,"#))
        );
        assert_eq!(s.post_prompt(b"{not json"), Err(PyError));
        assert_eq!(s.queue_remaining(), 2);
    }

    #[test]
    fn state_front_custom_id_and_extra_data_are_kept_as_sent() {
        let mut s = state();
        s.post_prompt(PROMPT).expect("queued");
        let body = br#"{"extra_data":{"note":"x"},"front":true,"prompt":{"2":{"inputs":{"images":["1",0]},"class_type":"PreviewImage"}},"prompt_id":"my-own-id-123","client_id":"c2"}"#;
        assert_eq!(
            s.post_prompt(body),
            Ok(PromptAnswer::Queued(
                r#"{"prompt_id": "my-own-id-123", "number": -1, "node_errors": {}}"#.to_string()
            ))
        );
        let queue = s.queue();
        assert!(queue.starts_with(r#"{"queue_running": [], "queue_pending": [[-1, "my-own-id-123", {"2": {"inputs": {"images": ["1", 0]}, "class_type": "PreviewImage"}}, {"note": "x", "client_id": "c2"}, ["2"]], [0, "#), "{queue}");
    }

    #[test]
    fn state_validation_follows_the_recorded_errors() {
        let mut s = state();
        let missing =
            br#"{"prompt":{"1":{"inputs":{}},"2":{"class_type":"SaveImage","inputs":{}}}}"#;
        assert_eq!(
            s.post_prompt(missing),
            Ok(PromptAnswer::Invalid(
                r#"{"error": {"type": "invalid_prompt", "message": "Cannot execute because a node is missing the class_type property.", "details": "Node ID '#1'", "extra_info": {}}, "node_errors": {}}"#.to_string()
            ))
        );
        let no_outputs = br#"{"prompt":{"1":{"class_type":"EmptyImage","inputs":{}}}}"#;
        assert_eq!(
            s.post_prompt(no_outputs),
            Ok(PromptAnswer::Invalid(
                r#"{"error": {"type": "prompt_no_outputs", "message": "Prompt has no outputs", "details": "", "extra_info": {}}, "node_errors": {}}"#.to_string()
            ))
        );
        let unknown = br#"{"prompt":{"1":{"class_type":"CLIPTextEncode","inputs":{}}}}"#;
        assert!(matches!(
            s.post_prompt(unknown),
            Ok(PromptAnswer::Queued(_))
        ));
        assert_eq!(s.post_prompt(br#"{"prompt":5}"#), Err(PyError));
    }

    #[test]
    fn state_background_jobs_follow_the_config_and_clear() {
        let mut s = state();
        s.change_config(|c| {
            c.queue_running = 1;
            c.queue_pending = 3;
        });
        assert_eq!(s.queue_remaining(), 4);
        assert_eq!(s.queue_info(), r#"{"exec_info": {"queue_remaining": 4}}"#);
        s.change_config(|c| c.queue_pending = 1);
        assert_eq!(s.queue_remaining(), 2);
        s.post_queue(br#"{"clear":true}"#).expect("cleared");
        assert_eq!(s.queue_remaining(), 1);
        assert_eq!(s.config().queue_pending, 0);
        assert_eq!(s.post_queue(b""), Err(PyError));
    }

    #[test]
    fn state_queue_delete_removes_only_the_named_pending_items() {
        let mut s = state();
        s.post_prompt(PROMPT).expect("queued");
        let body = br#"{"prompt":{"2":{"class_type":"SaveImage","inputs":{}}},"prompt_id":"keep"}"#;
        s.post_prompt(body).expect("queued");
        let first = s
            .pending
            .items()
            .iter()
            .find(|i| i.prompt_id != "keep")
            .map(|i| i.prompt_id.clone());
        let delete = format!(r#"{{"delete":["{}"]}}"#, first.expect("two items"));
        s.post_queue(delete.as_bytes()).expect("deleted");
        assert_eq!(
            s.pending
                .items()
                .iter()
                .map(|i| i.prompt_id.as_str())
                .collect::<Vec<_>>(),
            ["keep"]
        );
    }

    #[test]
    fn state_status_is_broadcast_on_enqueue() {
        let mut s = state();
        let mut socket = s.register_socket("sid1");
        assert_eq!(
            socket.first_message,
            r#"{"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}}, "sid": "sid1"}}"#
        );
        s.post_prompt(PROMPT).expect("queued");
        assert_eq!(
            socket.rx.try_recv().ok(),
            Some(Outgoing::Text(
                r#"{"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 1}}}}"#
                    .to_string()
            ))
        );
    }

    #[test]
    fn state_models_embeddings_and_history_windows() {
        let mut s = state();
        s.change_config(|c| {
            c.models.insert(
                "checkpoints".into(),
                vec!["b.safetensors".into(), "a.ckpt".into()],
            );
            c.models.insert("embeddings".into(), vec!["neg.pt".into()]);
            c.models.insert("my_folder".into(), Vec::new());
        });
        assert_eq!(
            s.models("checkpoints").as_deref(),
            Some(r#"["a.ckpt", "b.safetensors"]"#)
        );
        assert_eq!(s.models("nosuchfolder"), None);
        assert_eq!(s.embeddings(), r#"["neg"]"#);
        assert!(s
            .model_folders()
            .ends_with(r#""audio_encoders", "my_folder"]"#));
        assert_eq!(s.history(None, None).as_deref(), Ok("{}"));
        assert_eq!(s.history(Some("x"), None), Err(PyError));
        s.history
            .push(("a".into(), OrderedJson::Object(Vec::new())));
        s.history
            .push(("b".into(), OrderedJson::Object(Vec::new())));
        assert_eq!(s.history(Some("1"), None).as_deref(), Ok(r#"{"b": {}}"#));
        assert_eq!(s.history_item("a"), r#"{"a": {}}"#);
        assert_eq!(s.history_item("zz"), "{}");
    }
}
