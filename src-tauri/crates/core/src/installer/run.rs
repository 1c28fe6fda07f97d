//! Runs an install: each step idempotent and recorded (with a hash of its inputs) in the install folder, so a
//! rerun skips what is done and a killed, paused or failed install continues where it stopped. Downloads go
//! through the download engine (resumable, verified); Python work through `uv` or the system's `python3`; every
//! command's output goes to the install log. Watchers see the whole `InstallStatus` on every change.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::AsyncBufReadExt;
use tokio::sync::watch;

use super::extract::{extract, ExtractError};
use super::manifest::{Archive, Manifest, ManifestError, Variant};
use super::plan::{plan, Choices, Machine, Plan, PlanError};
use super::status::{
    Check, CheckLevel, InstallCheck, InstallRequest, InstallState, InstallStatus, PackInfo,
    StepState, StepStatus,
};
use crate::downloads::{self, DownloadError, DownloadRequest, Downloads, Progress};
use crate::home::AppHome;
use crate::local::{venv_python, LocalConfig, LocalError, LocalServer, DEFAULT_PORT};
use crate::secrets::Secrets;
use crate::servers::{ServerInput, ServerList, ServersError};
use crate::HasErrorInfo;

/// The folder inside an install where ComfyFleet keeps its records, log, tools and partial downloads.
pub const META_DIR: &str = ".comfyfleet";
const RECORD_FORMAT: u32 = 1;
const MANIFEST_LIMIT: usize = 4 << 20;
/// The model-free workflow that proves an install works.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(180);

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("An install is already running in {0} (in this window, another one or the CLI). Wait for it, or cancel it first.")]
    Busy(String),
    #[error("Nothing to resume: start an install first.")]
    NothingToResume,
    #[error("{0} is not a ComfyUI installed by ComfyFleet (it has no .comfyfleet/install.json); nothing was removed.")]
    NotAnInstall(String),
    #[error("{0}")]
    Manifest(#[from] ManifestError),
    #[error("Could not read the install manifest {source_name}: {message}")]
    ManifestSource {
        source_name: String,
        message: String,
    },
    #[error("{0}")]
    Plan(#[from] PlanError),
    #[error("{0}")]
    Download(#[from] DownloadError),
    #[error("{0}")]
    Extract(#[from] ExtractError),
    #[error("{0}")]
    Python(String),
    #[error(
        "{what} failed (exit code {code}). The last lines are below; the whole output is in {log}."
    )]
    Command {
        what: String,
        code: String,
        tail: String,
        log: String,
    },
    #[error("{0}")]
    Local(#[from] LocalError),
    #[error("ComfyUI started but could not make a test image: {0}. See the server log (Servers → Local → Logs).")]
    Verify(String),
    #[error("{0}")]
    Servers(#[from] ServersError),
    #[error("Could not write {path}: {message}")]
    Io { path: String, message: String },
    /// Paused or cancelled by the user (not shown as an error).
    #[error("stopped")]
    Stopped,
}

impl HasErrorInfo for InstallError {
    fn code(&self) -> &'static str {
        match self {
            InstallError::Busy(_) => "install.busy",
            InstallError::NothingToResume => "install.nothing_to_resume",
            InstallError::NotAnInstall(_) => "install.not_an_install",
            InstallError::Manifest(e) => e.code(),
            InstallError::ManifestSource { .. } => "install.manifest_source",
            InstallError::Plan(e) => e.code(),
            InstallError::Download(e) => e.code(),
            InstallError::Extract(e) => e.code(),
            InstallError::Python(_) => "install.python",
            InstallError::Command { .. } => "install.command",
            InstallError::Local(e) => e.code(),
            InstallError::Verify(_) => "install.verify",
            InstallError::Servers(e) => e.code(),
            InstallError::Io { .. } => "install.io",
            InstallError::Stopped => "install.stopped",
        }
    }
    fn details(&self) -> Option<String> {
        match self {
            InstallError::Command { tail, .. } => Some(tail.clone()),
            InstallError::Local(e) => e.details(),
            _ => None,
        }
    }
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> InstallError {
    InstallError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// What the installer works with. Each is a cheap handle.
#[derive(Clone)]
pub struct InstallEnv {
    pub home: AppHome,
    /// Tests the "Local" server once registered, so its status shows at once.
    pub health: crate::health::Health,
    pub servers: ServerList,
    pub secrets: Secrets,
    pub local: LocalServer,
    pub downloads: Downloads,
}

impl InstallEnv {
    /// The installer's handles from an open fleet and the app's download engine.
    pub fn new(fleet: &crate::Fleet, local: LocalServer, downloads: Downloads) -> InstallEnv {
        InstallEnv {
            home: fleet.home.clone(),
            health: fleet.health.clone(),
            servers: fleet.servers.clone(),
            secrets: fleet.servers.secrets().clone(),
            local,
            downloads,
        }
    }
}

/// What an uninstall did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Uninstalled {
    pub removed: String,
    /// Shared model files left in place.
    pub kept_models: Vec<String>,
    pub removed_models: u32,
    /// The "Local" server was taken off the list.
    pub server_removed: bool,
}

/// What steps record as done, in `<install>/.comfyfleet/install.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub format: u32,
    /// Step id → the hash of the inputs it was done with.
    pub steps: BTreeMap<String, String>,
    /// How packages are installed: "pip", or the path of `uv`.
    #[serde(default)]
    pub tool: Option<String>,
    /// Model files the installer downloaded (absolute paths), so an uninstall can remove them when asked.
    #[serde(default)]
    pub model_files: Vec<String>,
    /// The request of the last run, so a repair can be started from the folder alone.
    #[serde(default)]
    pub request: Option<InstallRequest>,
}

impl Record {
    pub fn path(install: &Path) -> PathBuf {
        install.join(META_DIR).join("install.json")
    }

    pub fn load(install: &Path) -> Record {
        std::fs::read_to_string(Self::path(install))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    fn save(&self, install: &Path) -> Result<(), InstallError> {
        let path = Self::path(install);
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        std::fs::write(&tmp, text).map_err(|e| io_err(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| io_err(&path, e))
    }
}

/// A stable hash of a step's inputs.
fn inputs_hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    let out = h.finalize();
    out.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

/// A manifest file or URL used instead of the shipped one when a request names none (mirrors, tests).
pub const MANIFEST_ENV: &str = "COMFYFLEET_MANIFEST";

/// The manifest named by the request: a file, an http(s) URL, or the one shipped with the app.
pub async fn load_manifest(source: Option<&str>) -> Result<Manifest, InstallError> {
    let from_env = std::env::var(MANIFEST_ENV).ok();
    let Some(source) = source
        .or(from_env.as_deref())
        .map(str::trim)
        .filter(|s| !s.is_empty())
    else {
        return Ok(Manifest::bundled());
    };
    let fail = |message: String| InstallError::ManifestSource {
        source_name: source.to_string(),
        message,
    };
    let text = if source.starts_with("http://") || source.starts_with("https://") {
        let http = downloads::http_client();
        let resp = http
            .get(source)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| fail(crate::downloads::redact_text(&e.to_string())))?;
        if !resp.status().is_success() {
            return Err(fail(format!("the server answered {}", resp.status())));
        }
        let bytes = resp.bytes().await.map_err(|e| fail(e.to_string()))?;
        if bytes.len() > MANIFEST_LIMIT {
            return Err(fail("it is larger than 4 MB".into()));
        }
        String::from_utf8(bytes.to_vec()).map_err(|_| fail("it is not UTF-8 text".into()))?
    } else {
        let meta = std::fs::metadata(source).map_err(|e| fail(e.to_string()))?;
        if meta.len() > MANIFEST_LIMIT as u64 {
            return Err(fail("it is larger than 4 MB".into()));
        }
        std::fs::read_to_string(source).map_err(|e| fail(e.to_string()))?
    };
    Ok(Manifest::parse(&text)?)
}

fn choices(req: &InstallRequest) -> Choices {
    Choices {
        install_path: req.install_path.clone(),
        variant: req.variant.clone(),
        packs: req.packs.clone(),
        models_dir: req.models_dir.clone().filter(|d| !d.trim().is_empty()),
    }
}

/// The machine as the plan sees it, measured at the request's paths.
pub fn machine_for(facts: &crate::system::SystemFacts, req: &InstallRequest) -> Machine {
    let disk = |p: &str| crate::system::disk_space(Path::new(p));
    let here = disk(&req.install_path);
    let models = req
        .models_dir
        .as_deref()
        .filter(|d| !d.trim().is_empty())
        .and_then(disk);
    let other_volume = match (&here, &models) {
        (Some(h), Some(m)) if h.mount_point != m.mount_point => Some(m.available),
        _ => None,
    };
    Machine::from_facts(
        facts,
        here.map(|d| d.available).unwrap_or(u64::MAX),
        other_volume,
    )
}

/// The Python interpreters tried when the manifest has no uv for this platform.
fn system_pythons() -> &'static [&'static str] {
    if cfg!(windows) {
        &["python", "python3", "py"]
    } else {
        &["python3", "python"]
    }
}

/// `(command, "3.11")` for the first system Python that runs.
async fn find_system_python() -> Option<(String, String)> {
    for cmd in system_pythons() {
        let out = tokio::process::Command::new(cmd)
            .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
            .output()
            .await;
        if let Ok(out) = out {
            if out.status.success() {
                let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
                return Some((cmd.to_string(), v));
            }
        }
    }
    None
}

/// "3.10" or newer. Pure.
pub fn python_ok(version: &str) -> bool {
    let mut it = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    (major, minor) >= (3, 10)
}

/// The checks of the system panel. Pure, from what was measured.
pub fn checks(
    facts: &crate::system::SystemFacts,
    plan: Option<&Plan>,
    plan_error: Option<&crate::ErrorInfo>,
    python: Option<&(String, String)>,
    has_uv: bool,
    folder: Result<(), String>,
    port: (u16, bool),
) -> Vec<Check> {
    let check = |id: &str, label: &str, level, detail: String| Check {
        id: id.into(),
        label: label.into(),
        level,
        detail,
    };
    let mut out = Vec::new();
    let gpu = facts.gpu.best();
    out.push(check(
        "gpu",
        "GPU",
        if gpu.is_some() {
            CheckLevel::Pass
        } else {
            CheckLevel::Warn
        },
        match (plan, gpu) {
            (Some(p), Some(_)) => format!("{}. {}", facts.gpu.summary(), p.variant_reason),
            _ => facts.gpu.summary(),
        },
    ));
    out.push(match (plan, plan_error) {
        (_, Some(e)) if e.code == "install.disk_short" => {
            check("disk", "Disk space", CheckLevel::Fail, e.message.clone())
        }
        (Some(p), _) => check(
            "disk",
            "Disk space",
            CheckLevel::Pass,
            format!(
                "{:.1} GB needed, {:.1} GB free.",
                p.disk_needed as f64 / 1e9,
                p.disk_available as f64 / 1e9
            ),
        ),
        _ => check(
            "disk",
            "Disk space",
            CheckLevel::Warn,
            "Choose an install folder to check the space.".into(),
        ),
    });
    let ram_gb = facts.ram_total as f64 / 1e9;
    out.push(check(
        "ram",
        "Memory",
        if ram_gb >= 15.5 {
            CheckLevel::Pass
        } else {
            CheckLevel::Warn
        },
        format!("{ram_gb:.0} GB of RAM (16 GB or more recommended)."),
    ));
    out.push(match (has_uv, python) {
        (true, _) => check(
            "python",
            "Python",
            CheckLevel::Pass,
            "uv sets up its own Python; nothing needed from this system.".into(),
        ),
        (false, Some((cmd, v))) if python_ok(v) => check(
            "python",
            "Python",
            CheckLevel::Pass,
            format!("{cmd} {v} with venv."),
        ),
        (false, Some((cmd, v))) => check(
            "python",
            "Python",
            CheckLevel::Fail,
            format!("{cmd} is {v}; ComfyUI needs Python 3.10 or newer. Install a newer Python and check again."),
        ),
        (false, None) => check(
            "python",
            "Python",
            CheckLevel::Fail,
            "No python3 found. Install Python 3.10 or newer (on Debian/Ubuntu: sudo apt install python3 python3-venv) and check again.".into(),
        ),
    });
    out.push(match folder {
        Ok(()) => check(
            "folder",
            "Install folder",
            CheckLevel::Pass,
            "Writable.".into(),
        ),
        Err(why) => check("folder", "Install folder", CheckLevel::Fail, why),
    });
    out.push(if port.1 {
        check(
            "port",
            "Port",
            CheckLevel::Pass,
            format!("Port {} is free.", port.0),
        )
    } else {
        check(
            "port",
            "Port",
            CheckLevel::Warn,
            format!(
                "Port {} is in use (perhaps by an earlier install that is running). Choose another port if it is not ComfyFleet's local server.",
                port.0
            ),
        )
    });
    out
}

/// Whether ComfyUI could be installed into `path`: an absolute path whose nearest existing parent is a
/// writable folder.
fn folder_check(path: &str) -> Result<(), String> {
    let p = Path::new(path.trim());
    if path.trim().is_empty() {
        return Err("Choose a folder to install ComfyUI into.".into());
    }
    if !p.is_absolute() {
        return Err(format!(
            "'{path}' is not a full path; choose a folder like /home/you/ComfyUI."
        ));
    }
    if p.exists() && !p.is_dir() {
        return Err(format!("{path} is a file, not a folder."));
    }
    let Some(existing) = crate::system::existing_ancestor(p) else {
        return Err(format!("No part of {path} exists."));
    };
    let probe = existing.join(format!(".comfyfleet-write-test-{}", std::process::id()));
    match std::fs::write(&probe, b"") {
        Ok(()) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(format!(
            "Cannot write in {}: {e}. Choose another folder.",
            existing.display()
        )),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Run,
    Pause,
    Cancel,
}

struct Current {
    request: InstallRequest,
    repair: bool,
    control: watch::Sender<Stop>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// The install runner of this process. Cheap to clone.
#[derive(Clone)]
pub struct Installer {
    env: InstallEnv,
    tx: Arc<watch::Sender<InstallStatus>>,
    current: Arc<Mutex<Option<Current>>>,
    /// The system Python, looked up once per process (starting an interpreter can take a few hundred ms).
    python: Arc<tokio::sync::OnceCell<Option<(String, String)>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Installer {
    pub fn new(env: InstallEnv) -> Installer {
        Installer {
            env,
            tx: Arc::new(watch::channel(InstallStatus::idle()).0),
            current: Arc::new(Mutex::new(None)),
            python: Arc::default(),
        }
    }

    /// Looks for the system Python in the background now, so the wizard's first check need not wait for it.
    pub fn warm_up(&self) {
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let me = self.clone();
            rt.spawn(async move { me.system_python().await });
        }
    }

    async fn system_python(&self) -> Option<(String, String)> {
        self.python.get_or_init(find_system_python).await.clone()
    }

    pub fn status(&self) -> InstallStatus {
        self.tx.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<InstallStatus> {
        self.tx.subscribe()
    }

    /// The system check and the plan for this request. Never fails: problems are checks or `plan_error`.
    pub async fn check(&self, req: &InstallRequest) -> InstallCheck {
        // The slow parts side by side: the machine's facts, the manifest, the system Python.
        let (facts, manifest, system_python) = tokio::join!(
            tokio::task::spawn_blocking(crate::system::facts),
            load_manifest(req.manifest.as_deref()),
            self.system_python()
        );
        let facts = facts.unwrap_or_else(|_| crate::system::facts());
        let disk = crate::system::disk_space(Path::new(&req.install_path));
        let (plan, plan_error, manifest) = match manifest {
            Ok(m) => match plan(&m, &machine_for(&facts, req), &choices(req)) {
                Ok(p) => (Some(p), None, Some(m)),
                Err(e) => (None, Some(e.to_info()), Some(m)),
            },
            Err(e) => (None, Some(e.to_info()), None),
        };
        let platform = format!("{}-{}", facts.arch, facts.os);
        let has_uv = manifest
            .as_ref()
            .is_some_and(|m| m.uv.archives.contains_key(&platform));
        let python = if has_uv { None } else { system_python };
        let port = req.port.unwrap_or(DEFAULT_PORT);
        let port_free = std::net::TcpListener::bind(("127.0.0.1", port)).is_ok();
        let checks = checks(
            &facts,
            plan.as_ref(),
            plan_error.as_ref(),
            python.as_ref(),
            has_uv,
            folder_check(&req.install_path),
            (port, port_free),
        );
        let done_steps = if req.install_path.trim().is_empty() {
            Vec::new()
        } else {
            Record::load(Path::new(req.install_path.trim()))
                .steps
                .into_keys()
                .collect()
        };
        InstallCheck {
            disk,
            checks,
            comfyui_version: manifest
                .as_ref()
                .map(|m| m.comfyui.version.clone())
                .unwrap_or_default(),
            packs: manifest
                .as_ref()
                .map(|m| {
                    m.packs
                        .iter()
                        .map(|p| PackInfo {
                            id: p.id.clone(),
                            name: p.name.clone(),
                            description: p.description.clone(),
                            size: p.files.iter().map(|f| f.size).sum(),
                            min_vram_gb: p.min_vram_gb,
                            gated: p.files.iter().any(|f| f.gated),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            facts,
            plan,
            plan_error,
            done_steps,
        }
    }

    /// Starts installing in the background. Fails at once when one is already running.
    pub fn start(&self, req: InstallRequest) -> Result<InstallStatus, InstallError> {
        self.start_mode(req, false)
    }

    /// Like `start`, but first re-verifies what earlier runs made (model checksums, the Python environment)
    /// and redoes the steps whose results are missing or damaged.
    pub fn repair(&self, req: InstallRequest) -> Result<InstallStatus, InstallError> {
        self.start_mode(req, true)
    }

    /// Repairs the install in `install_path` with the choices it was made with.
    pub fn repair_at(&self, install_path: &str) -> Result<InstallStatus, InstallError> {
        let install = Path::new(install_path.trim());
        let req = Record::load(install)
            .request
            .ok_or_else(|| InstallError::NotAnInstall(install.display().to_string()))?;
        self.repair(req)
    }

    fn start_mode(&self, req: InstallRequest, repair: bool) -> Result<InstallStatus, InstallError> {
        let mut current = lock(&self.current);
        if let Some(c) = current.as_ref() {
            if c.task.as_ref().is_some_and(|t| !t.is_finished()) {
                return Err(InstallError::Busy(c.request.install_path.clone()));
            }
        }
        let (control, control_rx) = watch::channel(Stop::Run);
        let mut req = req;
        req.install_path = req.install_path.trim().to_string();
        let path = req.install_path.clone();
        self.tx.send_replace(InstallStatus {
            state: InstallState::Running,
            install_path: path.clone(),
            steps: Vec::new(),
            error: None,
            log_path: Path::new(&path)
                .join(META_DIR)
                .join("install.log")
                .display()
                .to_string(),
            server_id: None,
            url: None,
            elapsed_ms: 0,
        });
        let me = self.clone();
        let run_req = req.clone();
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let result = me.run(&run_req, repair, control_rx.clone()).await;
            let stop = *control_rx.borrow();
            me.tx.send_modify(|s| {
                s.elapsed_ms = started.elapsed().as_millis() as u64;
                match (&result, stop) {
                    (Ok(()), _) => s.state = InstallState::Done,
                    (Err(_), Stop::Pause) => s.state = InstallState::Paused,
                    (Err(_), Stop::Cancel) => s.state = InstallState::Cancelled,
                    (Err(e), Stop::Run) => {
                        s.state = InstallState::Failed;
                        s.error = Some(e.to_info());
                    }
                }
                for step in &mut s.steps {
                    if step.state == StepState::Running {
                        step.state = if stop == Stop::Run {
                            StepState::Failed
                        } else {
                            StepState::Pending
                        };
                        step.bytes_per_sec = 0;
                        step.eta_secs = None;
                    }
                }
            });
        });
        *current = Some(Current {
            request: req,
            repair,
            control,
            task: Some(task),
        });
        Ok(self.status())
    }

    /// Runs the install in this task to the end (the CLI's way); the status is also published to watchers.
    pub async fn install(&self, req: InstallRequest) -> Result<InstallStatus, InstallError> {
        self.start(req)?;
        self.wait().await;
        Ok(self.status())
    }

    /// Waits for the running install (if any) to stop.
    pub async fn wait(&self) {
        let task = lock(&self.current).as_mut().and_then(|c| c.task.take());
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    fn signal(&self, stop: Stop) -> bool {
        match lock(&self.current).as_ref() {
            Some(c) if c.task.as_ref().is_some_and(|t| !t.is_finished()) => {
                let _ = c.control.send(stop);
                true
            }
            _ => false,
        }
    }

    /// Stops the running step; what is done stays done and downloads keep their bytes.
    pub async fn pause(&self) -> InstallStatus {
        if self.signal(Stop::Pause) {
            self.wait().await;
        }
        self.status()
    }

    pub async fn cancel(&self) -> InstallStatus {
        if self.signal(Stop::Cancel) {
            self.wait().await;
        }
        self.status()
    }

    /// Removes an install: stops its server, takes it off the server list and deletes the folder. Models in a
    /// shared folder outside it are kept unless `remove_models`.
    pub async fn uninstall(
        &self,
        install_path: &str,
        remove_models: bool,
    ) -> Result<Uninstalled, InstallError> {
        let install = PathBuf::from(install_path.trim());
        if !Record::path(&install).is_file() {
            return Err(InstallError::NotAnInstall(install.display().to_string()));
        }
        let busy = lock(&self.current).as_ref().is_some_and(|c| {
            c.request.install_path == install_path.trim()
                && c.task.as_ref().is_some_and(|t| !t.is_finished())
        });
        let meta = install.join(META_DIR);
        let folder_lock = FolderLock::take(&meta);
        if busy || folder_lock.is_none() {
            return Err(InstallError::Busy(install.display().to_string()));
        }
        let record = Record::load(&install);
        let mut server_removed = false;
        if let Some(cfg) = self.env.local.config().await? {
            if cfg.install_path == install {
                self.env.local.stop().await?;
                self.env.local.clear_config().await?;
                for s in self.env.servers.list().await? {
                    if s.url == cfg.url() && s.has_tag("local") {
                        self.env.servers.delete(&s.id).await?;
                        server_removed = true;
                    }
                }
            }
        }
        let mut removed_models = 0;
        let mut kept = Vec::new();
        for f in &record.model_files {
            let p = Path::new(f);
            if p.starts_with(&install) {
                continue; // goes with the folder
            }
            if remove_models {
                if std::fs::remove_file(p).is_ok() {
                    removed_models += 1;
                }
            } else if p.exists() {
                kept.push(f.clone());
            }
        }
        drop(folder_lock);
        std::fs::remove_dir_all(&install).map_err(|e| io_err(&install, e))?;
        Ok(Uninstalled {
            removed: install.display().to_string(),
            kept_models: kept,
            removed_models,
            server_removed,
        })
    }

    /// Runs the last request again: finished steps are skipped.
    pub fn resume(&self) -> Result<InstallStatus, InstallError> {
        let (req, repair) = lock(&self.current)
            .as_ref()
            .map(|c| (c.request.clone(), c.repair))
            .ok_or(InstallError::NothingToResume)?;
        self.start_mode(req, repair)
    }

    async fn run(
        &self,
        req: &InstallRequest,
        repair: bool,
        stop: watch::Receiver<Stop>,
    ) -> Result<(), InstallError> {
        let manifest = load_manifest(req.manifest.as_deref()).await?;
        let facts = tokio::task::spawn_blocking(crate::system::facts)
            .await
            .unwrap_or_else(|_| crate::system::facts());
        let plan = plan(&manifest, &machine_for(&facts, req), &choices(req))?;
        let install = PathBuf::from(&req.install_path);
        let meta = install.join(META_DIR);
        std::fs::create_dir_all(&meta).map_err(|e| io_err(&meta, e))?;
        let _lock =
            FolderLock::take(&meta).ok_or_else(|| InstallError::Busy(req.install_path.clone()))?;
        let mut record = Record::load(&install);
        record.format = RECORD_FORMAT;
        record.request = Some(req.clone());
        record.save(&install)?;
        self.tx.send_modify(|s| {
            s.steps = plan
                .steps
                .iter()
                .map(|p| StepStatus {
                    id: p.id.clone(),
                    title: p.title.clone(),
                    state: StepState::Pending,
                    detail: None,
                    done_bytes: 0,
                    // Pip's own downloads are not counted: those steps show its output instead.
                    total_bytes: (p.download > 0
                        && (p.id == "comfyui" || p.id.starts_with("models:")))
                    .then_some(p.download),
                    bytes_per_sec: 0,
                    eta_secs: None,
                })
                .collect();
        });
        let log = meta.join("install.log");
        let mut ctx = Ctx {
            env: self.env.clone(),
            tx: self.tx.clone(),
            manifest,
            platform: format!("{}-{}", facts.arch, facts.os),
            variant: plan.variant,
            torch_index: plan.torch_index.clone(),
            port: req.port.unwrap_or(DEFAULT_PORT),
            models_dir: choices(req).models_dir.map(PathBuf::from),
            install,
            meta,
            log: Log::open(&log).map_err(|e| io_err(&log, e))?,
            record,
            stop,
            active_downloads: Arc::new(Mutex::new(Vec::new())),
            unchanged: false,
            repair,
            started: Instant::now(),
        };
        ctx.log.line(&format!(
            "=== install into {} ({} steps) ===",
            req.install_path,
            plan.steps.len()
        ));
        for step in &plan.steps {
            ctx.check_stop()?;
            ctx.run_step(&step.id).await?;
        }
        ctx.log.line("=== install finished ===");
        Ok(())
    }
}

/// One install folder at a time, across processes.
struct FolderLock {
    #[allow(dead_code)]
    file: std::fs::File,
}

impl FolderLock {
    fn take(meta: &Path) -> Option<FolderLock> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(meta.join("lock"))
            .ok()?;
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
                return None;
            }
        }
        Some(FolderLock { file })
    }
}

/// The install log: every command line and its output, shared by the steps.
#[derive(Clone)]
struct Log {
    file: Arc<Mutex<std::fs::File>>,
    path: PathBuf,
}

impl Log {
    fn open(path: &Path) -> std::io::Result<Log> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Log {
            file: Arc::new(Mutex::new(file)),
            path: path.to_path_buf(),
        })
    }

    fn line(&self, text: &str) {
        use std::io::Write;
        let _ = writeln!(lock(&self.file), "{}", crate::downloads::redact_text(text));
    }
}

/// What the steps share while one install runs.
struct Ctx {
    env: InstallEnv,
    tx: Arc<watch::Sender<InstallStatus>>,
    manifest: Manifest,
    platform: String,
    variant: Variant,
    torch_index: Option<String>,
    port: u16,
    models_dir: Option<PathBuf>,
    install: PathBuf,
    meta: PathBuf,
    log: Log,
    record: Record,
    stop: watch::Receiver<Stop>,
    /// Files the engine is downloading for the running step (paused when the install stops).
    active_downloads: Arc<Mutex<Vec<PathBuf>>>,
    /// Set by a step that found everything already as it should be (shown as skipped).
    unchanged: bool,
    /// Re-verify what earlier runs made before trusting their records.
    repair: bool,
    started: Instant,
}

/// How packages get installed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tool {
    Pip,
    Uv(PathBuf),
}

impl Ctx {
    fn check_stop(&self) -> Result<(), InstallError> {
        if *self.stop.borrow() == Stop::Run {
            Ok(())
        } else {
            Err(InstallError::Stopped)
        }
    }

    fn set_step(&self, id: &str, f: impl FnOnce(&mut StepStatus)) {
        let elapsed = self.started.elapsed().as_millis() as u64;
        self.tx.send_modify(|s| {
            s.elapsed_ms = elapsed;
            if let Some(step) = s.steps.iter_mut().find(|st| st.id == id) {
                f(step);
            }
        });
    }

    fn detail(&self, id: &str, text: impl Into<String>) {
        let text = text.into();
        self.set_step(id, |s| s.detail = Some(text));
    }

    /// The inputs a step depends on; `None` for steps that always look again (start, register).
    fn inputs(&self, id: &str) -> Option<String> {
        let m = &self.manifest;
        let archive = |a: &Archive| format!("{}|{}|{}", a.url, a.sha256, a.strip_prefix);
        let comfy = inputs_hash(&["comfyui", &archive(&m.comfyui)]);
        let python = match m.uv.archives.get(&self.platform) {
            Some(uv) => inputs_hash(&["python", "uv", &archive(uv), &m.python, &comfy]),
            None => inputs_hash(&["python", "system", &comfy]),
        };
        let torch = inputs_hash(&[
            "torch",
            self.variant.as_str(),
            self.torch_index.as_deref().unwrap_or(""),
            &m.torch.packages.join(","),
            &python,
        ]);
        let requirements = std::fs::read(self.install.join("requirements.txt"))
            .map(|b| format!("{:x}", Sha256::digest(&b)))
            .unwrap_or_default();
        let reqs = inputs_hash(&[
            "requirements",
            &requirements,
            m.package_index.as_deref().unwrap_or(""),
            &torch,
        ]);
        Some(match id {
            "comfyui" => comfy,
            "python" => python,
            "torch" => torch,
            "requirements" => reqs,
            "extra_model_paths" => inputs_hash(&[
                "extra",
                &self
                    .models_dir
                    .as_ref()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default(),
            ]),
            "verify" => inputs_hash(&["verify", &reqs, &self.port.to_string()]),
            _ => match id.strip_prefix("models:") {
                Some(pack) => {
                    let files = m
                        .pack(pack)
                        .map(|p| {
                            p.files
                                .iter()
                                .map(|f| {
                                    format!("{}|{}|{}|{}", f.url, f.folder, f.file_name, f.sha256)
                                })
                                .collect::<Vec<_>>()
                                .join(";")
                        })
                        .unwrap_or_default();
                    inputs_hash(&["models", &self.models_root().display().to_string(), &files])
                }
                None => return None,
            },
        })
    }

    fn models_root(&self) -> PathBuf {
        self.models_dir
            .clone()
            .unwrap_or_else(|| self.install.join("models"))
    }

    /// Whether the step's recorded result still stands (the record matches and what it made is there).
    fn is_done(&self, id: &str, inputs: &str) -> bool {
        if self.record.steps.get(id).map(String::as_str) != Some(inputs) {
            return false;
        }
        match id {
            "comfyui" => self.install.join("main.py").is_file(),
            "python" | "torch" | "requirements" => venv_python(&self.install).exists(),
            _ => match id.strip_prefix("models:") {
                Some(pack) => self.model_files(pack).iter().all(|(p, _)| p.is_file()),
                None => true,
            },
        }
    }

    /// Repair: whether what the step made is still intact (model checksums, a Python that imports torch).
    async fn still_good(&self, id: &str) -> bool {
        match id {
            "python" | "torch" | "requirements" => {
                let python = venv_python(&self.install);
                self.detail(id, "Checking the Python environment…");
                tokio::process::Command::new(&python)
                    .args(["-c", "import torch"])
                    .current_dir(&self.install)
                    .output()
                    .await
                    .is_ok_and(|o| o.status.success())
            }
            _ => match id.strip_prefix("models:") {
                Some(pack) => {
                    let mut good = true;
                    for (path, f) in self.model_files(pack) {
                        self.detail(id, format!("Verifying {}…", f.file_name));
                        let want = if f.sha256.is_empty() {
                            self.env
                                .downloads
                                .record(&path)
                                .await
                                .ok()
                                .flatten()
                                .and_then(|r| r.sha256)
                        } else {
                            Some(f.sha256.to_ascii_lowercase())
                        };
                        let p = path.clone();
                        let have = tokio::task::spawn_blocking(move || {
                            crate::downloads::hash::sha256_file(&p).ok()
                        })
                        .await
                        .ok()
                        .flatten();
                        let intact = match (&have, &want) {
                            (Some(h), Some(w)) => h == w,
                            (Some(_), None) => true,
                            (None, _) => false,
                        };
                        if !intact {
                            self.log.line(&format!(
                                "{}: checksum {} expected {} — fetched again",
                                path.display(),
                                have.as_deref().unwrap_or("(missing)"),
                                want.as_deref().unwrap_or("(any)")
                            ));
                            let _ = std::fs::remove_file(&path);
                            good = false;
                        }
                    }
                    good
                }
                None => true,
            },
        }
    }

    fn model_files(&self, pack: &str) -> Vec<(PathBuf, &super::manifest::ModelFile)> {
        let root = self.models_root();
        self.manifest
            .pack(pack)
            .map(|p| {
                p.files
                    .iter()
                    .map(|f| (root.join(&f.folder).join(&f.file_name), f))
                    .collect()
            })
            .unwrap_or_default()
    }

    async fn run_step(&mut self, id: &str) -> Result<(), InstallError> {
        if self.repair && self.record.steps.contains_key(id) && !self.still_good(id).await {
            self.log
                .line(&format!("--- {id}: damaged or missing, redone (repair)"));
            self.record.steps.remove(id);
        }
        let inputs = self.inputs(id);
        if let Some(inputs) = &inputs {
            if self.is_done(id, inputs) {
                self.log.line(&format!("--- {id}: already done, skipped"));
                self.set_step(id, |s| {
                    s.state = StepState::Skipped;
                    s.detail = Some("Already done.".into());
                    if let Some(t) = s.total_bytes {
                        s.done_bytes = t;
                    }
                });
                return Ok(());
            }
        }
        self.log.line(&format!("--- {id}"));
        self.unchanged = false;
        self.set_step(id, |s| s.state = StepState::Running);
        let result = match id {
            "comfyui" => self.step_comfyui().await,
            "python" => self.step_python().await,
            "torch" => self.step_torch().await,
            "requirements" => self.step_requirements().await,
            "extra_model_paths" => self.step_extra_model_paths(),
            "start" => self.step_start().await,
            "verify" => self.step_verify().await,
            "register" => self.step_register().await,
            other => match other.strip_prefix("models:") {
                Some(pack) => self.step_models(pack).await,
                None => Ok(None),
            },
        };
        let detail = match result {
            Ok(detail) => detail,
            Err(e) => {
                if !matches!(e, InstallError::Stopped) {
                    self.log.line(&format!("!!! {id} failed: {e}"));
                    self.set_step(id, |s| {
                        s.state = StepState::Failed;
                        s.detail = Some(e.to_string());
                    });
                }
                return Err(e);
            }
        };
        if let Some(inputs) = inputs {
            // Recomputed after the step when it depends on what the step made (requirements.txt).
            let inputs = if id == "comfyui" {
                self.inputs(id).unwrap_or(inputs)
            } else {
                inputs
            };
            self.record.steps.insert(id.to_string(), inputs);
            self.record.format = RECORD_FORMAT;
            self.record.save(&self.install)?;
        }
        let unchanged = self.unchanged;
        self.set_step(id, |s| {
            s.state = if unchanged {
                StepState::Skipped
            } else {
                StepState::Done
            };
            s.bytes_per_sec = 0;
            s.eta_secs = Some(0);
            if let Some(t) = s.total_bytes {
                s.done_bytes = s.done_bytes.max(t);
            }
            if detail.is_some() {
                s.detail = detail;
            }
        });
        Ok(())
    }

    /// Downloads one file through the engine, reporting progress to step `id` (combined with `others`).
    async fn fetch(
        &self,
        id: &str,
        url: &str,
        dest: &Path,
        sha256: &str,
    ) -> Result<downloads::Outcome, InstallError> {
        let mut request = DownloadRequest::new(url, dest);
        request.sha256 = (!sha256.is_empty()).then(|| sha256.to_string());
        request.credentials = downloads::credentials_for(&self.env.secrets, url)
            .await
            .ok()
            .flatten();
        let tx = self.tx.clone();
        let step = id.to_string();
        let sink: downloads::ProgressSink = Arc::new(move |p: Progress| {
            tx.send_modify(|s| {
                if let Some(st) = s.steps.iter_mut().find(|st| st.id == step) {
                    st.done_bytes = p.downloaded;
                    st.total_bytes = p.total.or(st.total_bytes);
                    st.bytes_per_sec = p.bytes_per_sec;
                    st.eta_secs = p.eta_secs;
                    if let Some(n) = p.note {
                        st.detail = Some(n);
                    }
                }
            });
        });
        self.download_with(request, sink).await
    }

    /// Runs a download until it ends or the install is stopped (then the download is paused: its part stays).
    async fn download_with(
        &self,
        request: DownloadRequest,
        sink: downloads::ProgressSink,
    ) -> Result<downloads::Outcome, InstallError> {
        let dest = std::path::absolute(&request.dest).unwrap_or(request.dest.clone());
        lock(&self.active_downloads).push(dest.clone());
        let mut stop = self.stop.clone();
        let result = tokio::select! {
            r = self.env.downloads.download(request, sink) => r.map_err(InstallError::from),
            _ = stopped(&mut stop) => {
                self.env.downloads.pause(&dest);
                Err(InstallError::Stopped)
            }
        };
        lock(&self.active_downloads).retain(|d| d != &dest);
        result
    }

    async fn step_comfyui(&mut self) -> Result<Option<String>, InstallError> {
        let a = self.manifest.comfyui.clone();
        let ext = if a.url.to_ascii_lowercase().ends_with(".zip") {
            "zip"
        } else {
            "tar.gz"
        };
        let dest = self
            .meta
            .join("downloads")
            .join(format!("comfyui-{}.{ext}", sanitize(&a.version)));
        self.fetch("comfyui", &a.url, &dest, &a.sha256).await?;
        self.detail("comfyui", "Unpacking…");
        let install = self.install.clone();
        let archive = dest.clone();
        let unpacked =
            tokio::task::spawn_blocking(move || extract(&archive, &install, &a.strip_prefix))
                .await
                .map_err(|e| io_err(&dest, e))??;
        if !self.install.join("main.py").is_file() {
            return Err(InstallError::Verify(format!(
                "the archive has no main.py at its top (strip_prefix '{}' may be wrong)",
                self.manifest.comfyui.strip_prefix
            )));
        }
        let _ = std::fs::remove_file(&dest);
        Ok(Some(format!(
            "ComfyUI {}: {} files unpacked.",
            self.manifest.comfyui.version, unpacked.files
        )))
    }

    fn tool(&self) -> Tool {
        match self.record.tool.as_deref() {
            Some(p) if p != "pip" && Path::new(p).exists() => Tool::Uv(PathBuf::from(p)),
            _ => Tool::Pip,
        }
    }

    async fn step_python(&mut self) -> Result<Option<String>, InstallError> {
        let venv = self.install.join("venv");
        if let Some(uv) = self.manifest.uv.archives.get(&self.platform).cloned() {
            match self.uv_venv(&uv, &venv).await {
                Ok(uv_path) => {
                    self.record.tool = Some(uv_path.display().to_string());
                    return Ok(Some(format!(
                        "Python {} set up with uv.",
                        self.manifest.python
                    )));
                }
                Err(InstallError::Stopped) => return Err(InstallError::Stopped),
                Err(e) => {
                    self.log.line(&format!(
                        "uv could not set up Python ({e}); trying the system's python3"
                    ));
                    self.detail("python", "uv failed; using this system's python3…");
                }
            }
        }
        let (cmd, version) = find_system_python().await.ok_or_else(|| {
            InstallError::Python("No python3 found. Install Python 3.10 or newer (on Debian/Ubuntu: sudo apt install python3 python3-venv), then Retry.".into())
        })?;
        if !python_ok(&version) {
            return Err(InstallError::Python(format!(
                "{cmd} is Python {version}; ComfyUI needs 3.10 or newer. Install a newer Python, then Retry."
            )));
        }
        self.detail(
            "python",
            format!("Creating a virtual environment with {cmd} {version}…"),
        );
        let args = ["-m".to_string(), "venv".into(), venv.display().to_string()];
        if let Err(e) = self
            .command(
                "python",
                "Creating the Python environment",
                Path::new(&cmd),
                &args,
                &[],
            )
            .await
        {
            if let InstallError::Command { tail, .. } = &e {
                if tail.contains("ensurepip") || tail.contains("venv") {
                    return Err(InstallError::Python(format!(
                        "Python's venv module is missing or incomplete ({cmd} {version}). On Debian/Ubuntu: sudo apt install python3-venv, then Retry."
                    )));
                }
            }
            return Err(e);
        }
        self.record.tool = Some("pip".into());
        Ok(Some(format!("Python {version} (from {cmd}) in venv/.")))
    }

    /// Fetches uv, and makes the venv with the manifest's Python. Returns the path of uv.
    async fn uv_venv(&self, uv: &Archive, venv: &Path) -> Result<PathBuf, InstallError> {
        let ext = if uv.url.to_ascii_lowercase().ends_with(".zip") {
            "zip"
        } else {
            "tar.gz"
        };
        let dest = self.meta.join("downloads").join(format!("uv.{ext}"));
        self.fetch("python", &uv.url, &dest, &uv.sha256).await?;
        let tools = self.meta.join("uv");
        let (archive, to, prefix) = (dest.clone(), tools.clone(), uv.strip_prefix.clone());
        tokio::task::spawn_blocking(move || extract(&archive, &to, &prefix))
            .await
            .map_err(|e| io_err(&dest, e))??;
        let name = if cfg!(windows) { "uv.exe" } else { "uv" };
        let uv_path = find_file(&tools, name)
            .ok_or_else(|| InstallError::Python(format!("the uv archive has no {name}")))?;
        let args = [
            "venv".to_string(),
            "--python".into(),
            self.manifest.python.clone(),
            "--seed".into(),
            "--allow-existing".into(),
            venv.display().to_string(),
        ];
        let envs = self.uv_env();
        self.command("python", "uv venv", &uv_path, &args, &envs)
            .await?;
        Ok(uv_path)
    }

    fn uv_env(&self) -> Vec<(String, String)> {
        vec![
            (
                "UV_PYTHON_INSTALL_DIR".into(),
                self.meta.join("python").display().to_string(),
            ),
            (
                "UV_CACHE_DIR".into(),
                self.meta.join("uv-cache").display().to_string(),
            ),
        ]
    }

    /// `pip install` (or `uv pip install`) into the venv.
    async fn pip_install(
        &self,
        id: &str,
        what: &str,
        index: Option<&str>,
        pre: bool,
        packages: &[String],
    ) -> Result<(), InstallError> {
        let python = venv_python(&self.install);
        let mut args: Vec<String> = Vec::new();
        let (program, envs) = match self.tool() {
            Tool::Uv(uv) => {
                args.extend([
                    "pip".into(),
                    "install".into(),
                    "--python".into(),
                    python.display().to_string(),
                ]);
                if pre {
                    args.push("--prerelease=allow".into());
                }
                (uv, self.uv_env())
            }
            Tool::Pip => {
                args.extend([
                    "-m".into(),
                    "pip".into(),
                    "install".into(),
                    "--disable-pip-version-check".into(),
                    "--no-input".into(),
                ]);
                if pre {
                    args.push("--pre".into());
                }
                (python, Vec::new())
            }
        };
        if let Some(index) = index {
            args.extend(["--index-url".into(), index.to_string()]);
        }
        args.extend(packages.iter().cloned());
        self.command(id, what, &program, &args, &envs).await
    }

    async fn step_torch(&mut self) -> Result<Option<String>, InstallError> {
        let pre = self
            .manifest
            .torch
            .variants
            .get(&self.variant)
            .is_some_and(|t| t.pre);
        self.detail(
            "torch",
            format!("Installing PyTorch for {}…", self.variant.as_str()),
        );
        let index = self.torch_index.clone();
        let packages = self.manifest.torch.packages.clone();
        self.pip_install(
            "torch",
            "Installing PyTorch",
            index.as_deref(),
            pre,
            &packages,
        )
        .await?;
        Ok(Some(format!(
            "PyTorch for {} installed.",
            self.variant.as_str()
        )))
    }

    async fn step_requirements(&mut self) -> Result<Option<String>, InstallError> {
        let file = self.install.join("requirements.txt");
        if !file.is_file() {
            return Ok(Some("ComfyUI lists no requirements.".into()));
        }
        let index = self.manifest.package_index.clone();
        let args = vec!["-r".to_string(), file.display().to_string()];
        self.pip_install(
            "requirements",
            "Installing ComfyUI's requirements",
            index.as_deref(),
            false,
            &args,
        )
        .await?;
        Ok(Some("ComfyUI's requirements installed.".into()))
    }

    async fn step_models(&mut self, pack: &str) -> Result<Option<String>, InstallError> {
        let id = format!("models:{pack}");
        let files: Vec<(PathBuf, super::manifest::ModelFile)> = self
            .model_files(pack)
            .into_iter()
            .map(|(p, f)| (p, f.clone()))
            .collect();
        // One progress line for the pack: the sum of its files.
        let sizes: Arc<Mutex<FileProgress>> = Arc::default();
        let this = &*self;
        let futures = files.iter().map(|(dest, f)| {
            let mut request = DownloadRequest::new(&f.url, dest);
            request.sha256 = (!f.sha256.is_empty()).then(|| f.sha256.clone());
            let tx = this.tx.clone();
            let step = id.clone();
            let sizes = sizes.clone();
            let planned = f.size;
            let secrets = this.env.secrets.clone();
            async move {
                request.credentials = downloads::credentials_for(&secrets, &request.url)
                    .await
                    .ok()
                    .flatten();
                let sink: downloads::ProgressSink = Arc::new(move |p: Progress| {
                    let (done, total, speed) = {
                        let mut all = lock(&sizes);
                        all.insert(
                            p.dest.clone(),
                            (p.downloaded, p.total.unwrap_or(planned), p.bytes_per_sec),
                        );
                        all.values()
                            .fold((0, 0, 0), |a, v| (a.0 + v.0, a.1 + v.1, a.2 + v.2))
                    };
                    tx.send_modify(|s| {
                        if let Some(st) = s.steps.iter_mut().find(|st| st.id == step) {
                            st.done_bytes = done;
                            st.total_bytes = Some(total.max(st.total_bytes.unwrap_or(0)));
                            st.bytes_per_sec = speed;
                            st.eta_secs = (speed > 0)
                                .then(|| st.total_bytes.unwrap_or(0).saturating_sub(done) / speed);
                            if let Some(n) = &p.note {
                                st.detail = Some(n.clone());
                            }
                        }
                    });
                });
                this.download_with(request, sink).await
            }
        });
        let results = futures::future::join_all(futures).await;
        let mut first_err = None;
        for r in results {
            match r {
                Ok(_) => {}
                Err(e)
                    if first_err.is_none() || matches!(first_err, Some(InstallError::Stopped)) =>
                {
                    first_err = Some(e)
                }
                Err(_) => {}
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        for (p, _) in &files {
            let p = p.display().to_string();
            if !self.record.model_files.contains(&p) {
                self.record.model_files.push(p);
            }
        }
        Ok(Some(format!(
            "{} file(s) in {}.",
            files.len(),
            self.models_root().display()
        )))
    }

    fn step_extra_model_paths(&mut self) -> Result<Option<String>, InstallError> {
        let Some(dir) = &self.models_dir else {
            return Ok(None);
        };
        let path = self.install.join("extra_model_paths.yaml");
        std::fs::write(&path, extra_model_paths_yaml(dir)).map_err(|e| io_err(&path, e))?;
        Ok(Some(format!(
            "ComfyUI also reads models from {}.",
            dir.display()
        )))
    }

    async fn step_start(&mut self) -> Result<Option<String>, InstallError> {
        let keep_running = self
            .env
            .local
            .config()
            .await?
            .is_some_and(|c| c.keep_running);
        let cfg = LocalConfig {
            install_path: self.install.clone(),
            port: self.port,
            cpu: self.variant == Variant::Cpu,
            keep_running,
        };
        self.env.local.set_config(&cfg).await?;
        self.detail("start", format!("Starting ComfyUI on port {}…", self.port));
        let before = self.env.local.refresh().await;
        if before.state == crate::installer::status::LocalState::Running {
            self.unchanged = true;
            let url = cfg.url();
            self.tx.send_modify(|s| s.url = Some(url.clone()));
            return Ok(Some(format!("Already running at {url}.")));
        }
        let mut stop = self.stop.clone();
        let st = tokio::select! {
            r = self.env.local.start() => r?,
            _ = stopped(&mut stop) => {
                let _ = self.env.local.stop().await;
                return Err(InstallError::Stopped);
            }
        };
        let url = cfg.url();
        self.tx.send_modify(|s| s.url = Some(url.clone()));
        Ok(Some(format!(
            "Running at {url} (pid {}).",
            st.pid.unwrap_or(0)
        )))
    }

    async fn step_verify(&mut self) -> Result<Option<String>, InstallError> {
        use crate::comfyui::follow::{run_prompt, RunOutcome};
        let url = format!("http://127.0.0.1:{}", self.port);
        let client = crate::comfyui::ComfyClient::new(crate::comfyui::http_client(), &url, None);
        let feed = crate::comfyui::feed::Feed::new(client.clone());
        let workflow = serde_json::json!({
            "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0x3366cc}},
            "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "comfyfleet_check"}}
        });
        self.detail("verify", "Making a test image (EmptyImage → SaveImage)…");
        let (_cancel_tx, cancel) = watch::channel(false);
        let prompt_id = uuid::Uuid::new_v4().to_string();
        let mut stop = self.stop.clone();
        let outcome = tokio::select! {
            r = run_prompt(&feed, crate::comfyui::Prompt::of(&workflow), &prompt_id, VERIFY_TIMEOUT, cancel, |_| {}) => r,
            _ = stopped(&mut stop) => return Err(InstallError::Stopped),
        }
        .map_err(|e| InstallError::Verify(e.to_string()))?;
        let outputs = match outcome {
            RunOutcome::Succeeded { outputs } => outputs,
            other => return Err(InstallError::Verify(format!("{other:?}"))),
        };
        let Some((_, image)) = outputs.first() else {
            return Err(InstallError::Verify(
                "the workflow finished without an image".into(),
            ));
        };
        let dest = self.meta.join("check.png");
        client
            .download(image, &dest, 64 << 20)
            .await
            .map_err(|e| InstallError::Verify(e.to_string()))?;
        let head = std::fs::read(&dest).unwrap_or_default();
        if !head.starts_with(b"\x89PNG\r\n\x1a\n") {
            return Err(InstallError::Verify("the test image is not a PNG".into()));
        }
        Ok(Some("ComfyUI made a test image.".into()))
    }

    async fn step_register(&mut self) -> Result<Option<String>, InstallError> {
        let url = format!("http://127.0.0.1:{}", self.port);
        let servers = &self.env.servers;
        let list = servers.list().await?;
        if let Some(s) = list.iter().find(|s| s.url == url) {
            let id = s.id.clone();
            self.tx.send_modify(|st| st.server_id = Some(id));
            if !list.iter().any(|s| s.active) {
                servers.activate(Some(&s.id)).await?;
            } else {
                self.unchanged = true;
            }
            return Ok(Some(format!(
                "\"{}\" is already in the server list.",
                s.name
            )));
        }
        let taken = |n: &str| list.iter().any(|s| s.name.eq_ignore_ascii_case(n));
        let name = (1..)
            .map(|i| {
                if i == 1 {
                    "Local".to_string()
                } else {
                    format!("Local {i}")
                }
            })
            .find(|n| !taken(n))
            .unwrap_or_else(|| "Local".into());
        let server = servers
            .add(ServerInput {
                name: name.clone(),
                url,
                tags: vec!["local".into()],
                notes: format!("Installed by ComfyFleet in {}", self.install.display()),
                ..Default::default()
            })
            .await?;
        servers.activate(Some(&server.id)).await?;
        let _ = self.env.health.test(&server.id, true).await;
        let id = server.id.clone();
        self.tx.send_modify(|st| st.server_id = Some(id));
        Ok(Some(format!(
            "Added \"{name}\" and made it the active server."
        )))
    }

    /// Runs a command in the install folder, its output to the log and its last line to the step's detail.
    async fn command(
        &self,
        id: &str,
        what: &str,
        program: &Path,
        args: &[String],
        envs: &[(String, String)],
    ) -> Result<(), InstallError> {
        self.log
            .line(&format!("$ {} {}", program.display(), args.join(" ")));
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args)
            .current_dir(&self.install)
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .env("PYTHONUNBUFFERED", "1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().map_err(|e| {
            InstallError::Python(format!("{what}: could not run {}: {e}", program.display()))
        })?;
        let tail: Arc<Mutex<Vec<String>>> = Arc::default();
        let pump = |stream: Option<Box<dyn tokio::io::AsyncRead + Unpin + Send>>| {
            let tail = tail.clone();
            let log = self.log.clone();
            let tx = self.tx.clone();
            let step = id.to_string();
            async move {
                let Some(stream) = stream else { return };
                let mut lines = tokio::io::BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    log.line(&line);
                    let shown: String = line.trim().chars().take(160).collect();
                    if !shown.is_empty() {
                        tx.send_modify(|s| {
                            if let Some(st) = s.steps.iter_mut().find(|st| st.id == step) {
                                st.detail = Some(crate::downloads::redact_text(&shown));
                            }
                        });
                    }
                    let mut t = lock(&tail);
                    t.push(line);
                    if t.len() > 30 {
                        t.remove(0);
                    }
                }
            }
        };
        let out = pump(child.stdout.take().map(|s| Box::new(s) as _));
        let err = pump(child.stderr.take().map(|s| Box::new(s) as _));
        let mut stop = self.stop.clone();
        let status = tokio::select! {
            (status, _, _) = async { tokio::join!(child.wait(), out, err) } => status,
            _ = stopped(&mut stop) => {
                self.log.line("(stopped by the user)");
                return Err(InstallError::Stopped);
            }
        };
        let status = status.map_err(|e| InstallError::Python(format!("{what}: {e}")))?;
        if status.success() {
            return Ok(());
        }
        let tail = lock(&tail).join("\n");
        Err(InstallError::Command {
            what: what.to_string(),
            code: status
                .code()
                .map(|c| c.to_string())
                .unwrap_or_else(|| "killed".into()),
            tail: crate::downloads::redact_text(&tail),
            log: self.log.path.display().to_string(),
        })
    }
}

/// Per file of a pack: (bytes on disk, total, bytes per second).
type FileProgress = BTreeMap<PathBuf, (u64, u64, u64)>;

/// Resolves once the user pauses or cancels.
async fn stopped(rx: &mut watch::Receiver<Stop>) {
    let _ = rx.wait_for(|s| *s != Stop::Run).await;
}

/// A version string safe in a file name.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).ok()?.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == name) {
                return Some(p);
            }
        }
    }
    None
}

/// ComfyUI's `extra_model_paths.yaml` pointing every model folder at `dir`. Pure.
pub fn extra_model_paths_yaml(dir: &Path) -> String {
    // A JSON string is a valid YAML double-quoted scalar: any path is written safely.
    let base = serde_json::to_string(&dir.display().to_string()).unwrap_or_default();
    let mut out = format!(
        "# Written by ComfyFleet: ComfyUI also reads the models in this folder (shared, never copied).\ncomfyfleet:\n    base_path: {base}\n"
    );
    for folder in [
        "checkpoints",
        "clip",
        "clip_vision",
        "configs",
        "controlnet",
        "diffusion_models",
        "embeddings",
        "loras",
        "text_encoders",
        "unet",
        "upscale_models",
        "vae",
        "animatediff_models",
    ] {
        out.push_str(&format!("    {folder}: {folder}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_python_versions_below_3_10_are_refused() {
        assert!(python_ok("3.10") && python_ok("3.12") && python_ok("4.0"));
        assert!(!python_ok("3.9") && !python_ok("2.7") && !python_ok("junk"));
    }

    #[test]
    fn install_extra_model_paths_quote_the_folder_and_list_the_model_folders() {
        let y = extra_model_paths_yaml(Path::new("/mnt/my models/\"x\""));
        assert!(y.contains("base_path: \"/mnt/my models/\\\"x\\\"\""), "{y}");
        assert!(y.contains("    checkpoints: checkpoints\n"));
        assert!(y.contains("    loras: loras\n"));
    }

    #[test]
    fn install_input_hashes_change_with_any_input() {
        assert_eq!(inputs_hash(&["a", "b"]), inputs_hash(&["a", "b"]));
        assert_ne!(inputs_hash(&["a", "b"]), inputs_hash(&["ab", ""]));
        assert_ne!(inputs_hash(&["a"]), inputs_hash(&["b"]));
    }
}
