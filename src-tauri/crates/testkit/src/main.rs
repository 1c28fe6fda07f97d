//! `comfyfleet-testkit`: runs the fake servers from shell scripts (end-to-end tests, benchmarks).
//!
//! `comfyui` runs one fake ComfyUI and prints `LISTENING http://127.0.0.1:PORT`; `fleet` runs many, prints one JSON
//! line per server and then `READY`; `files` runs a file host (see `comfyfleet_testkit::filehost`) and prints
//! `LISTENING http://127.0.0.1:PORT`; `install-host` serves what the installer downloads and prints
//! `MANIFEST URL` then `LISTENING http://127.0.0.1:PORT`; `runpod` runs a fake RunPod (serverless endpoints and
//! pods, see `comfyfleet_testkit::runpod`) and prints `LISTENING http://127.0.0.1:PORT`.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, ValueEnum};
use comfyfleet_testkit::{
    EndpointConfig, FakeAuth, FakeComfy, FakeComfyConfig, FakeDevice, FakeRunpod, FakeRunpodConfig,
    Fault, FileHost, HostedFile, InstallHost, InstallHostConfig,
};

#[derive(Parser)]
#[command(
    name = "comfyfleet-testkit",
    about = "Fake servers on 127.0.0.1 for tests and benchmarks"
)]
enum Command {
    /// Run one fake ComfyUI until killed. Prints `LISTENING http://127.0.0.1:PORT` once it accepts connections.
    Comfyui(ComfyArgs),
    /// Run many fake ComfyUIs. Prints one JSON line per server, then `READY`; runs until killed or until stdin (a
    /// pipe) closes.
    Fleet(FleetArgs),
    /// Run a file host (ranges, ETags, throughput cap, faults) until killed. Prints `SHA256 PATH HEX` per generated
    /// file with --print-sha256, then `LISTENING http://127.0.0.1:PORT`.
    Files(FilesArgs),
    /// Serve what the installer downloads (manifest, fake ComfyUI archive, package index with a fake torch, a
    /// model) until killed. Prints `MANIFEST URL`, then `LISTENING http://127.0.0.1:PORT`.
    InstallHost(InstallHostArgs),
    /// Run a fake RunPod (serverless API of worker-comfyui endpoints and pods REST v2 on one port; both base URLs
    /// are `URL/v2`) until killed. Prints `LISTENING http://127.0.0.1:PORT`.
    Runpod(RunpodArgs),
}

#[derive(Args)]
struct RunpodArgs {
    /// Port on 127.0.0.1; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// The API key that works (`Authorization: Bearer K`).
    #[arg(long, default_value = comfyfleet_testkit::runpod::DEFAULT_API_KEY)]
    key: String,
    /// A serverless endpoint id (repeatable; default `ep-comfy`). `pods` and `catalog` are refused.
    #[arg(long = "endpoint", value_name = "ID")]
    endpoints: Vec<String>,
    /// How long a cold worker takes to start, in milliseconds.
    #[arg(long, default_value_t = 300)]
    cold_start_ms: u64,
    /// How long each job runs, in milliseconds.
    #[arg(long, default_value_t = 200)]
    exec_ms: u64,
    /// Max workers per endpoint.
    #[arg(long, default_value_t = 2)]
    workers: u32,
}

impl RunpodArgs {
    fn config(&self) -> FakeRunpodConfig {
        let ids = if self.endpoints.is_empty() {
            vec!["ep-comfy".to_string()]
        } else {
            self.endpoints.clone()
        };
        FakeRunpodConfig {
            api_key: self.key.clone(),
            endpoints: ids
                .iter()
                .map(|id| EndpointConfig {
                    workers: self.workers,
                    cold_start: Duration::from_millis(self.cold_start_ms),
                    exec_time: Duration::from_millis(self.exec_ms),
                    ..EndpointConfig::new(id)
                })
                .collect(),
            ..FakeRunpodConfig::default()
        }
    }
}

#[derive(Args)]
struct InstallHostArgs {
    /// Port on 127.0.0.1; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Size of /models/tiny.safetensors (SIZE syntax: 3MiB, 20M, 1000).
    #[arg(long, default_value = "3MiB")]
    model_size: String,
    /// Cap each connection fetching the model at this many bytes per second (SIZE syntax).
    #[arg(long)]
    model_rate: Option<String>,
}

#[derive(Args)]
struct FilesArgs {
    /// Port on 127.0.0.1; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Serve the files of this folder under /files/.
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    /// A generated file, as /PATH=SIZE (SIZE in bytes or with K, M, G, KiB, MiB, GiB). Repeatable.
    #[arg(long = "generate", value_name = "/PATH=SIZE")]
    generated: Vec<String>,
    /// Seed of the generated content.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Cap each connection at this many bytes per second (SIZE syntax: 20M = 20,000,000).
    #[arg(long)]
    rate: Option<String>,
    /// Ignore Range headers and always answer 200 with the whole file.
    #[arg(long)]
    no_range: bool,
    /// Print the SHA-256 of every generated file (computes it once, before listening).
    #[arg(long)]
    print_sha256: bool,
}

/// `123`, `20M` (10^6), `2G`, `64KiB`, `1GiB`.
fn parse_size(text: &str) -> anyhow::Result<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .with_context(|| format!("'{text}' is not a size"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        other => {
            anyhow::bail!("unknown size unit '{other}' in '{text}': use K, M, G, KiB, MiB or GiB")
        }
    };
    n.checked_mul(factor)
        .with_context(|| format!("'{text}' is too large"))
}

#[derive(Args)]
struct ComfyArgs {
    /// Port on 127.0.0.1; 0 picks a free one.
    #[arg(long, default_value_t = 8188)]
    port: u16,
    /// `comfyui_version` in /system_stats.
    #[arg(long)]
    version: Option<String>,
    /// Report this CUDA GPU instead of the CPU, e.g. "NVIDIA GeForce RTX 4090".
    #[arg(long, requires = "vram_total")]
    gpu_name: Option<String>,
    /// Total VRAM of the GPU in bytes.
    #[arg(long, requires = "gpu_name")]
    vram_total: Option<u64>,
    /// Free VRAM of the GPU in bytes (default: all of it).
    #[arg(long, requires = "gpu_name")]
    vram_free: Option<u64>,
    /// Jobs of other clients shown running.
    #[arg(long, default_value_t = 0)]
    queue_running: u32,
    /// Jobs of other clients shown pending.
    #[arg(long, default_value_t = 0)]
    queue_pending: u32,
    /// Wait this long before every answer.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    #[arg(long, value_enum, default_value_t = CliFault::None)]
    fault: CliFault,
    /// Require this ComfyUI-Login token (`Authorization: Bearer T` or `?token=T`).
    #[arg(long)]
    login_token: Option<String>,
    /// How long each prompt runs, in milliseconds (a prompt's `extra_data.fake_exec_ms` overrides it).
    #[arg(long, default_value_t = 20)]
    exec_ms: u64,
    /// Nodes of this class fail when they run (`execution_error`).
    #[arg(long)]
    runtime_error_class: Option<String>,
    /// Output nodes report this filename instead of the real one (to test path sanitising).
    #[arg(long)]
    evil_output_name: Option<String>,
    /// A model file the server has, as FOLDER/NAME (e.g. checkpoints/sd_xl_base_1.0.safetensors). Repeatable.
    #[arg(long = "model", value_name = "FOLDER/NAME")]
    models: Vec<String>,
}

#[derive(Args)]
struct FleetArgs {
    /// How many fakes to run.
    #[arg(long, default_value_t = 50)]
    count: u16,
    /// How many of them (the first ones) hang.
    #[arg(long, default_value_t = 0)]
    hang: u16,
    /// Ports base-port, base-port+1, …; free ports when absent.
    #[arg(long)]
    base_port: Option<u16>,
}

#[derive(Clone, Copy, ValueEnum)]
enum CliFault {
    None,
    Refuse,
    Hang,
    Http500,
    NotJson,
    EndlessBody,
    WrongShape,
}

impl From<CliFault> for Fault {
    fn from(fault: CliFault) -> Fault {
        match fault {
            CliFault::None => Fault::None,
            CliFault::Refuse => Fault::Refuse,
            CliFault::Hang => Fault::Hang,
            CliFault::Http500 => Fault::Http500,
            CliFault::NotJson => Fault::NotJson,
            CliFault::EndlessBody => Fault::EndlessBody,
            CliFault::WrongShape => Fault::WrongShape,
        }
    }
}

impl ComfyArgs {
    fn config(&self) -> FakeComfyConfig {
        let mut config = FakeComfyConfig::default();
        if let Some(version) = &self.version {
            config.version = version.clone();
        }
        if let (Some(name), Some(total)) = (&self.gpu_name, self.vram_total) {
            config.devices = vec![FakeDevice::cuda(
                name,
                total,
                self.vram_free.unwrap_or(total),
            )];
        }
        config.queue_running = self.queue_running;
        config.queue_pending = self.queue_pending;
        config.latency = Duration::from_millis(self.latency_ms);
        config.fault = self.fault.into();
        config.auth = self
            .login_token
            .clone()
            .map(|token| FakeAuth::ComfyuiLogin { token });
        config.exec_time = Duration::from_millis(self.exec_ms);
        config.runtime_error_class = self.runtime_error_class.clone();
        config.evil_output_name = self.evil_output_name.clone();
        for m in &self.models {
            let (folder, name) = m.split_once('/').unwrap_or(("checkpoints", m.as_str()));
            config
                .models
                .entry(folder.to_string())
                .or_default()
                .push(name.to_string());
        }
        config
    }
}

#[derive(serde::Serialize)]
struct FleetLine<'a> {
    name: &'a str,
    url: &'a str,
    fault: &'a str,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Command::parse() {
        Command::Comfyui(args) => {
            let fake = FakeComfy::start_on(args.port, args.config())
                .await
                .with_context(|| format!("cannot listen on 127.0.0.1:{}", args.port))?;
            print_flushed(&format!("LISTENING {}", fake.url()))?;
            until_killed(false).await;
            fake.shutdown().await;
        }
        Command::Runpod(args) => {
            let fake = FakeRunpod::start_on(args.port, args.config())
                .await
                .with_context(|| {
                    format!("cannot start a fake RunPod on 127.0.0.1:{}", args.port)
                })?;
            print_flushed(&format!("LISTENING {}", fake.url()))?;
            until_killed(true).await;
            fake.shutdown().await;
        }
        Command::Files(args) => {
            let host = FileHost::start_on(args.port)
                .await
                .with_context(|| format!("cannot listen on 127.0.0.1:{}", args.port))?;
            let rate = args.rate.as_deref().map(parse_size).transpose()?;
            host.set(|c| {
                c.rate = rate;
                c.no_range = args.no_range;
            });
            if let Some(dir) = &args.dir {
                host.add_dir("/files", dir);
            }
            for g in &args.generated {
                let (path, size) = g
                    .split_once('=')
                    .with_context(|| format!("--generate {g}: use /PATH=SIZE"))?;
                let path = format!("/{}", path.trim_start_matches('/'));
                let file = HostedFile::generated(parse_size(size)?, args.seed);
                if args.print_sha256 {
                    print_flushed(&format!("SHA256 {path} {}", file.content.sha256()))?;
                }
                host.add(&path, file);
            }
            print_flushed(&format!("LISTENING {}", host.url()))?;
            until_killed(true).await;
            host.shutdown().await;
        }
        Command::InstallHost(args) => {
            let config = InstallHostConfig {
                model_size: parse_size(&args.model_size)?,
                model_rate: args.model_rate.as_deref().map(parse_size).transpose()?,
            };
            let host = InstallHost::start_on(args.port, config)
                .await
                .with_context(|| format!("cannot listen on 127.0.0.1:{}", args.port))?;
            print_flushed(&format!("MANIFEST {}", host.manifest_url()))?;
            print_flushed(&format!("LISTENING {}", host.url()))?;
            until_killed(true).await;
            host.shutdown().await;
        }
        Command::Fleet(args) => {
            let width = args.count.to_string().len().max(2);
            let mut fakes = Vec::with_capacity(usize::from(args.count));
            let mut lines = String::new();
            for i in 0..args.count {
                let fault = if i < args.hang {
                    Fault::Hang
                } else {
                    Fault::None
                };
                let config = FakeComfyConfig {
                    fault: fault.clone(),
                    ..FakeComfyConfig::default()
                };
                let port = match args.base_port {
                    Some(base) => base
                        .checked_add(i)
                        .context("--base-port + --count goes past port 65535")?,
                    None => 0,
                };
                let fake = FakeComfy::start_on(port, config)
                    .await
                    .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
                let name = format!("bench-{:0width$}", i + 1);
                let line = FleetLine {
                    name: &name,
                    url: &fake.url(),
                    fault: fault.name(),
                };
                lines.push_str(&serde_json::to_string(&line)?);
                lines.push('\n');
                fakes.push(fake);
            }
            lines.push_str("READY");
            print_flushed(&lines)?;
            until_killed(true).await;
            for fake in fakes {
                fake.shutdown().await;
            }
        }
    }
    Ok(())
}

fn print_flushed(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()?;
    Ok(())
}

/// Waits for Ctrl-C or SIGTERM and, with `watch_stdin`, for stdin to close when it is a pipe or socket (a script
/// that started us in the background with stdin from /dev/null keeps us running).
async fn until_killed(watch_stdin: bool) {
    let stdin_closed = async {
        if watch_stdin && stdin_is_pipe() {
            // A plain thread, not the blocking pool: the runtime must not wait for this read when we exit.
            let (closed, on_closed) = tokio::sync::oneshot::channel::<()>();
            std::thread::spawn(move || {
                let mut buf = [0u8; 1024];
                while let Ok(n) = std::io::Read::read(&mut std::io::stdin(), &mut buf) {
                    if n == 0 {
                        break;
                    }
                }
                let _ = closed.send(());
            });
            let _ = on_closed.await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminated() => {}
        _ = stdin_closed => {}
    }
}

#[cfg(unix)]
async fn terminated() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut signal) => {
            signal.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn terminated() {
    std::future::pending().await
}

#[cfg(unix)]
fn stdin_is_pipe() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::FileTypeExt;
    let Ok(fd) = std::io::stdin().as_fd().try_clone_to_owned() else {
        return false;
    };
    std::fs::File::from(fd)
        .metadata()
        .is_ok_and(|m| m.file_type().is_fifo() || m.file_type().is_socket())
}

#[cfg(not(unix))]
fn stdin_is_pipe() -> bool {
    false
}
