//! The local ComfyUI supervisor: starts ComfyUI from an install with the right arguments, logs to a file,
//! waits until it answers, notices a crash and restarts it with back-off, explains a port already in use, and
//! stops it (the whole process group). A pid file lets the CLI and the app find a server the other started.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::error_info::ErrorInfo;
use crate::home::AppHome;
use crate::installer::status::{LocalState, LocalStatus, LogTail};
use crate::store::{Store, StoreError};
use crate::HasErrorInfo;

/// How to run the local server; saved by the installer, kept in the settings table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalConfig {
    pub install_path: PathBuf,
    pub port: u16,
    /// No usable GPU: `--cpu`.
    pub cpu: bool,
    #[serde(default)]
    pub keep_running: bool,
}

impl LocalConfig {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// The default port, as ComfyUI's.
pub const DEFAULT_PORT: u16 = 8188;
const CONFIG_KEY: &str = "local_server";
/// A real ComfyUI loads torch and scans custom nodes before it answers; a first start can take minutes.
pub const START_TIMEOUT: Duration = Duration::from_secs(300);
const STOP_GRACE: Duration = Duration::from_secs(10);
/// Restarts after crashes before giving up; counted again once it has run this long.
const MAX_RESTARTS: u32 = 5;
const STABLE_AFTER: Duration = Duration::from_secs(120);
/// Log files past this size are rotated to `comfyui.log.1` at the next start.
const LOG_ROTATE_BYTES: u64 = 10 << 20;

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error(
        "ComfyUI is not installed yet. Install it from the Install page (or `comfyfleet install`)."
    )]
    NotInstalled,
    #[error("ComfyUI's Python environment is missing at {0}. Run the install again (or Repair) to set it up.")]
    NoPython(String),
    #[error("Port {port} is already used by {by}. Stop that program, or install with another port (`--port`).")]
    PortBusy { port: u16, by: String },
    #[error("ComfyUI exited while starting (exit code {code}). See the log for why: {log}")]
    ExitedAtStart {
        code: String,
        log: String,
        tail: String,
    },
    #[error("ComfyUI did not answer on port {port} within {secs} s. See the log: {log}")]
    StartTimeout { port: u16, secs: u64, log: String },
    #[error("Could not start ComfyUI: {0}")]
    Spawn(String),
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl HasErrorInfo for LocalError {
    fn code(&self) -> &'static str {
        match self {
            LocalError::NotInstalled => "local.not_installed",
            LocalError::NoPython(_) => "local.no_python",
            LocalError::PortBusy { .. } => "local.port_busy",
            LocalError::ExitedAtStart { .. } => "local.exited",
            LocalError::StartTimeout { .. } => "local.start_timeout",
            LocalError::Spawn(_) => "local.spawn",
            LocalError::Store(e) => e.code(),
        }
    }
    fn details(&self) -> Option<String> {
        match self {
            LocalError::ExitedAtStart { tail, .. } => Some(tail.clone()),
            _ => None,
        }
    }
}

/// The Python of an install's environment.
pub fn venv_python(install: &Path) -> PathBuf {
    if cfg!(windows) {
        install.join("venv").join("Scripts").join("python.exe")
    } else {
        install.join("venv").join("bin").join("python")
    }
}

/// ComfyUI's command line for this config. Pure.
pub fn launch_args(cfg: &LocalConfig) -> Vec<String> {
    let mut args = vec![
        "main.py".to_string(),
        "--listen".into(),
        "127.0.0.1".into(),
        "--port".into(),
        cfg.port.to_string(),
    ];
    if cfg.cpu {
        args.push("--cpu".into());
    }
    args
}

/// How long to wait before restart number `restarts + 1`, or `None` to give up. Pure.
pub fn restart_delay(restarts: u32) -> Option<Duration> {
    (restarts < MAX_RESTARTS).then(|| Duration::from_secs(1 << restarts.min(5)))
}

/// What the pid file says: which process serves which port, started by whom.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PidRecord {
    pid: u32,
    port: u16,
    install_path: PathBuf,
}

struct Inner {
    settings: crate::settings::SettingsStore,
    home: AppHome,
    http: reqwest::Client,
    start_timeout: Duration,
    tx: watch::Sender<LocalStatus>,
    /// Flipped to true to tell the watcher of the current process that its exit is expected.
    run: Mutex<Option<Running>>,
}

struct Running {
    pid: u32,
    stopping: watch::Sender<bool>,
}

/// The supervisor. Cheap to clone; one per process.
#[derive(Clone)]
pub struct LocalServer {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl LocalServer {
    pub fn new(store: Store, home: AppHome) -> LocalServer {
        Self::with_start_timeout(store, home, START_TIMEOUT)
    }

    pub fn with_start_timeout(store: Store, home: AppHome, start_timeout: Duration) -> LocalServer {
        let (tx, _) = watch::channel(blank_status(None, &home));
        LocalServer {
            inner: Arc::new(Inner {
                settings: crate::settings::SettingsStore::new(store),
                http: reqwest::Client::builder()
                    .no_proxy()
                    .timeout(Duration::from_secs(3))
                    .build()
                    .unwrap_or_default(),
                home,
                start_timeout,
                tx,
                run: Mutex::new(None),
            }),
        }
    }

    pub fn log_path(&self) -> PathBuf {
        self.inner.home.logs_dir().join("comfyui.log")
    }

    fn pid_path(&self) -> PathBuf {
        self.inner.home.root().join("local-server.json")
    }

    pub async fn config(&self) -> Result<Option<LocalConfig>, LocalError> {
        Ok(self.inner.settings.json(CONFIG_KEY).await?)
    }

    /// Saved by the installer once ComfyUI is in place.
    pub async fn set_config(&self, cfg: &LocalConfig) -> Result<(), LocalError> {
        self.inner.settings.put_json(CONFIG_KEY, cfg).await?;
        self.refresh().await;
        Ok(())
    }

    /// Forgets the install (after an uninstall).
    pub async fn clear_config(&self) -> Result<(), LocalError> {
        self.inner.settings.put(CONFIG_KEY, "null".into()).await?;
        self.refresh().await;
        Ok(())
    }

    pub fn subscribe(&self) -> watch::Receiver<LocalStatus> {
        self.inner.tx.subscribe()
    }

    /// The last known status (see [`LocalServer::refresh`] for a fresh look).
    pub fn status(&self) -> LocalStatus {
        self.inner.tx.borrow().clone()
    }

    /// Looks again: the config, the pid file, whether the process lives and answers.
    pub async fn refresh(&self) -> LocalStatus {
        let cfg = self.config().await.ok().flatten();
        let mut st = self.status();
        let base = blank_status(cfg.as_ref(), &self.inner.home);
        st.install_path = base.install_path;
        st.url = base.url;
        st.port = base.port;
        st.keep_running = base.keep_running;
        st.log_path = base.log_path;
        match &cfg {
            None => st.state = LocalState::NotInstalled,
            Some(cfg) => {
                let pid = self.live_pid(cfg);
                let owned = lock(&self.inner.run).is_some();
                if !owned {
                    st.pid = pid;
                    st.state = match pid {
                        Some(_) if self.answers(cfg.port).await => LocalState::Running,
                        Some(_) => LocalState::Starting,
                        None if st.state == LocalState::Crashed => LocalState::Crashed,
                        None => LocalState::Stopped,
                    };
                } else if st.state == LocalState::NotInstalled {
                    st.state = LocalState::Stopped;
                }
            }
        }
        self.publish(st.clone());
        st
    }

    fn publish(&self, st: LocalStatus) {
        self.inner.tx.send_replace(st);
    }

    fn update(&self, f: impl FnOnce(&mut LocalStatus)) -> LocalStatus {
        let mut st = self.status();
        f(&mut st);
        self.publish(st.clone());
        st
    }

    /// The pid from the pid file when that process still lives and serves this install.
    fn live_pid(&self, cfg: &LocalConfig) -> Option<u32> {
        let text = std::fs::read_to_string(self.pid_path()).ok()?;
        let rec: PidRecord = serde_json::from_str(&text).ok()?;
        (rec.port == cfg.port && rec.install_path == cfg.install_path && process_alive(rec.pid))
            .then_some(rec.pid)
    }

    async fn answers(&self, port: u16) -> bool {
        self.probe(port).await.is_some()
    }

    /// The ComfyUI version of whatever answers `/system_stats` on `port`.
    async fn probe(&self, port: u16) -> Option<String> {
        let r = self
            .inner
            .http
            .get(format!("http://127.0.0.1:{port}/system_stats"))
            .send()
            .await
            .ok()?;
        if !r.status().is_success() {
            return None;
        }
        let v: serde_json::Value = r.json().await.ok()?;
        Some(
            v["system"]["comfyui_version"]
                .as_str()
                .unwrap_or("unknown")
                .to_string(),
        )
    }

    /// Starts ComfyUI and waits until it answers. Already running: says so and changes nothing.
    pub async fn start(&self) -> Result<LocalStatus, LocalError> {
        let cfg = self.config().await?.ok_or(LocalError::NotInstalled)?;
        let st = self.refresh().await;
        if st.state == LocalState::Running {
            return Ok(st);
        }
        if let Some(pid) = st.pid {
            // Ours (from the pid file) but not answering yet: give it the start timeout.
            return self.wait_ready(&cfg, pid, None).await;
        }
        self.update(|s| {
            s.restarts = 0;
            s.last_error = None;
        });
        match self.spawn_and_wait(&cfg).await {
            Ok(st) => Ok(st),
            Err(e) => {
                let info = e.to_info();
                self.update(|s| {
                    s.state = LocalState::Stopped;
                    s.pid = None;
                    s.last_error = Some(info);
                });
                Err(e)
            }
        }
    }

    async fn spawn_and_wait(&self, cfg: &LocalConfig) -> Result<LocalStatus, LocalError> {
        let python = venv_python(&cfg.install_path);
        if !python.exists() {
            return Err(LocalError::NoPython(python.display().to_string()));
        }
        if let Err(by) = self.port_free(cfg.port).await {
            return Err(LocalError::PortBusy { port: cfg.port, by });
        }
        let log = self.log_path();
        let out =
            open_log(&log).map_err(|e| LocalError::Spawn(format!("{}: {e}", log.display())))?;
        let err = out
            .try_clone()
            .map_err(|e| LocalError::Spawn(e.to_string()))?;
        let mut cmd = tokio::process::Command::new(&python);
        cmd.args(launch_args(cfg))
            .current_dir(&cfg.install_path)
            .env("PYTHONUNBUFFERED", "1")
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err);
        #[cfg(unix)]
        cmd.process_group(0);
        let child = cmd
            .spawn()
            .map_err(|e| LocalError::Spawn(format!("{}: {e}", python.display())))?;
        let pid = child.id().unwrap_or(0);
        let rec = PidRecord {
            pid,
            port: cfg.port,
            install_path: cfg.install_path.clone(),
        };
        let _ = std::fs::write(
            self.pid_path(),
            serde_json::to_string(&rec).unwrap_or_default(),
        );
        let (stopping, stopping_rx) = watch::channel(false);
        *lock(&self.inner.run) = Some(Running { pid, stopping });
        self.update(|s| {
            s.state = LocalState::Starting;
            s.pid = Some(pid);
        });
        let (exit_tx, exit_rx) = watch::channel(None);
        self.watch_exit(child, cfg.clone(), stopping_rx, exit_tx);
        self.wait_ready(cfg, pid, Some(exit_rx)).await
    }

    /// Waits for `/system_stats` to answer; fails early when the process exits.
    async fn wait_ready(
        &self,
        cfg: &LocalConfig,
        pid: u32,
        mut exited: Option<watch::Receiver<Option<String>>>,
    ) -> Result<LocalStatus, LocalError> {
        let deadline = Instant::now() + self.inner.start_timeout;
        loop {
            if self.answers(cfg.port).await {
                return Ok(self.update(|s| {
                    s.state = LocalState::Running;
                    s.pid = Some(pid);
                    s.last_error = None;
                }));
            }
            let code = match &mut exited {
                Some(rx) => rx.borrow().clone(),
                None => (!process_alive(pid)).then(|| "unknown".to_string()),
            };
            if let Some(code) = code {
                return Err(LocalError::ExitedAtStart {
                    code,
                    log: self.log_path().display().to_string(),
                    tail: tail_lines(&self.log_path(), 20).0,
                });
            }
            if Instant::now() > deadline {
                return Err(LocalError::StartTimeout {
                    port: cfg.port,
                    secs: self.inner.start_timeout.as_secs(),
                    log: self.log_path().display().to_string(),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Follows one process to its exit: an exit nobody asked for is a crash, restarted after a back-off.
    fn watch_exit(
        &self,
        mut child: tokio::process::Child,
        cfg: LocalConfig,
        mut stopping: watch::Receiver<bool>,
        exit_tx: watch::Sender<Option<String>>,
    ) {
        let me = self.clone();
        let started = Instant::now();
        tokio::spawn(async move {
            let status = child.wait().await;
            let code = match &status {
                Ok(s) => s
                    .code()
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "killed by a signal".into()),
                Err(e) => e.to_string(),
            };
            let _ = exit_tx.send(Some(code.clone()));
            if *stopping.borrow_and_update() {
                return;
            }
            let was_running = me.status().state == LocalState::Running;
            *lock(&me.inner.run) = None;
            let _ = std::fs::remove_file(me.pid_path());
            if !was_running {
                // Died while starting: `wait_ready` reports it to whoever started it.
                return;
            }
            let mut restarts = me.status().restarts;
            if started.elapsed() > STABLE_AFTER {
                restarts = 0;
            }
            let tail = tail_lines(&me.log_path(), 20).0;
            tracing::warn!(code = %code, "the local ComfyUI exited on its own");
            let Some(delay) = restart_delay(restarts) else {
                me.update(|s| {
                    s.state = LocalState::Crashed;
                    s.pid = None;
                    s.last_error = Some(ErrorInfo {
                        code: "local.crashed".into(),
                        message: format!(
                            "ComfyUI keeps exiting (exit code {code}); it was restarted {restarts} times. See the log and start it again when fixed: {}",
                            me.log_path().display()
                        ),
                        details: Some(tail),
                    });
                });
                return;
            };
            me.update(|s| {
                s.state = LocalState::Crashed;
                s.pid = None;
                s.restarts = restarts + 1;
                s.last_error = Some(ErrorInfo {
                    code: "local.crashed".into(),
                    message: format!(
                        "ComfyUI exited (exit code {code}); restarting in {} s.",
                        delay.as_secs()
                    ),
                    details: Some(tail),
                });
            });
            tokio::time::sleep(delay).await;
            if me.status().state != LocalState::Crashed {
                return; // started or stopped by hand meanwhile
            }
            if let Err(e) = me.spawn_and_wait(&cfg).await {
                let info = e.to_info();
                me.update(|s| {
                    s.state = LocalState::Crashed;
                    s.last_error = Some(info);
                });
            }
        });
    }

    /// `Err(who)` when something already listens on `port`.
    async fn port_free(&self, port: u16) -> Result<(), String> {
        match std::net::TcpListener::bind(("127.0.0.1", port)) {
            Ok(_) => Ok(()),
            Err(_) => Err(match self.probe(port).await {
                Some(v) => format!("another ComfyUI (version {v}) not started by ComfyFleet"),
                None => "another program".to_string(),
            }),
        }
    }

    /// Stops ComfyUI (started by this process or another): SIGTERM to its process group, SIGKILL after a grace.
    pub async fn stop(&self) -> Result<LocalStatus, LocalError> {
        let cfg = self.config().await?.ok_or(LocalError::NotInstalled)?;
        let owned = lock(&self.inner.run).take();
        let pid = match owned {
            Some(r) => {
                let _ = r.stopping.send(true);
                Some(r.pid)
            }
            None => self.live_pid(&cfg),
        };
        if let Some(pid) = pid {
            terminate(pid, STOP_GRACE).await;
            // The port is released a moment after the process is gone; a Start right after a Stop must find it free.
            let deadline = Instant::now() + Duration::from_secs(5);
            while std::net::TcpListener::bind(("127.0.0.1", cfg.port)).is_err()
                && Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let _ = std::fs::remove_file(self.pid_path());
        Ok(self.update(|s| {
            s.state = LocalState::Stopped;
            s.pid = None;
            s.restarts = 0;
        }))
    }

    pub async fn restart(&self) -> Result<LocalStatus, LocalError> {
        self.stop().await?;
        self.start().await
    }

    /// At app quit: stop ComfyUI unless the user asked to keep it running.
    pub async fn shutdown(&self) {
        if let Ok(Some(cfg)) = self.config().await {
            if !cfg.keep_running && lock(&self.inner.run).is_some() {
                let _ = self.stop().await;
            }
        }
    }

    pub async fn set_keep_running(&self, keep: bool) -> Result<LocalStatus, LocalError> {
        let mut cfg = self.config().await?.ok_or(LocalError::NotInstalled)?;
        cfg.keep_running = keep;
        self.set_config(&cfg).await?;
        Ok(self.status())
    }

    /// The last `lines` lines of the log.
    pub fn logs(&self, lines: u32) -> Result<LogTail, LocalError> {
        let path = self.log_path();
        let (text, truncated) = tail_lines(&path, lines.clamp(1, 5000) as usize);
        Ok(LogTail {
            path: path.display().to_string(),
            text,
            truncated,
        })
    }
}

fn blank_status(cfg: Option<&LocalConfig>, home: &AppHome) -> LocalStatus {
    LocalStatus {
        state: if cfg.is_some() {
            LocalState::Stopped
        } else {
            LocalState::NotInstalled
        },
        install_path: cfg.map(|c| c.install_path.display().to_string()),
        url: cfg.map(LocalConfig::url),
        port: cfg.map(|c| c.port).unwrap_or(DEFAULT_PORT),
        pid: None,
        keep_running: cfg.is_some_and(|c| c.keep_running),
        restarts: 0,
        last_error: None,
        log_path: Some(home.logs_dir().join("comfyui.log").display().to_string()),
    }
}

/// Appends to the log (rotating one that grew too big) and marks where this start begins.
fn open_log(path: &Path) -> std::io::Result<std::fs::File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if std::fs::metadata(path).is_ok_and(|m| m.len() > LOG_ROTATE_BYTES) {
        let _ = std::fs::rename(path, path.with_extension("log.1"));
    }
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    writeln!(
        f,
        "\n=== ComfyFleet started ComfyUI at {} ===",
        httpdate::fmt_http_date(std::time::SystemTime::now())
    )?;
    Ok(f)
}

/// The last `n` lines of a text file (reads at most the last 1 MB) and whether lines were left out.
pub fn tail_lines(path: &Path, n: usize) -> (String, bool) {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return (String::new(), false);
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(1 << 20);
    let _ = f.seek(SeekFrom::Start(start));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(n);
    (lines[from..].join("\n"), from > 0 || start > 0)
}

#[cfg(unix)]
pub fn process_alive(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    if unsafe { libc::kill(pid as i32, 0) } != 0 {
        return false;
    }
    // A zombie (exited, not yet reaped) counts as gone, but only once every thread has exited: the main thread of a
    // multi-threaded server shows as a zombie while its other threads still hold its sockets open.
    let zombie = |stat: &str| stat.split(") ").nth(1).is_some_and(|r| r.starts_with('Z'));
    match std::fs::read_dir(format!("/proc/{pid}/task")) {
        Ok(tasks) => tasks
            .flatten()
            .any(|t| std::fs::read_to_string(t.path().join("stat")).is_ok_and(|s| !zombie(&s))),
        Err(_) => match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => !zombie(&stat),
            // Reaped between the signal and the read (its /proc entry is gone: it is dead), or there is no /proc at
            // all (not Linux), where the signal's answer stands.
            Err(_) => !std::path::Path::new("/proc/self").exists(),
        },
    }
}

#[cfg(not(unix))]
pub fn process_alive(pid: u32) -> bool {
    std::process::Command::new("tasklist")
        .args(["/FI", &format!("PID eq {pid}"), "/NH"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(&pid.to_string()))
        .unwrap_or(false)
}

/// Asks the process group to stop, then forces it after `grace`.
#[cfg(unix)]
async fn terminate(pid: u32, grace: Duration) {
    let pgid = pid as i32;
    unsafe {
        libc::kill(-pgid, libc::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while process_alive(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if process_alive(pid) {
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
        while process_alive(pid) && Instant::now() < deadline + Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[cfg(not(unix))]
async fn terminate(pid: u32, _grace: Duration) {
    let _ = tokio::process::Command::new("taskkill")
        .args(["/PID", &pid.to_string(), "/T", "/F"])
        .status()
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_launch_args_listen_on_loopback_and_add_cpu_without_a_gpu() {
        let mut cfg = LocalConfig {
            install_path: "/opt/ComfyUI".into(),
            port: 8190,
            cpu: false,
            keep_running: false,
        };
        assert_eq!(
            launch_args(&cfg),
            ["main.py", "--listen", "127.0.0.1", "--port", "8190"]
        );
        cfg.cpu = true;
        assert_eq!(launch_args(&cfg).last().map(String::as_str), Some("--cpu"));
    }

    #[test]
    fn local_restarts_back_off_and_give_up_after_five() {
        let delays: Vec<_> = (0..7).map(restart_delay).collect();
        assert_eq!(delays[0], Some(Duration::from_secs(1)));
        assert_eq!(delays[1], Some(Duration::from_secs(2)));
        assert_eq!(delays[4], Some(Duration::from_secs(16)));
        assert_eq!(delays[5], None);
        assert_eq!(delays[6], None);
    }

    #[test]
    fn local_log_tail_keeps_the_last_lines_and_says_when_it_cut() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        std::fs::write(&p, "a\nb\nc\nd\n").unwrap();
        assert_eq!(tail_lines(&p, 2), ("c\nd".to_string(), true));
        assert_eq!(tail_lines(&p, 10), ("a\nb\nc\nd".to_string(), false));
        assert_eq!(
            tail_lines(&dir.path().join("none"), 5),
            (String::new(), false)
        );
    }
}
