//! `comfyfleet pods list|create|start|stop|terminate`: RunPod pods created by ComfyFleet, each registered as a cloud
//! server. Pods made elsewhere are never listed or acted on.

use comfyfleet_core::runpod::account::AccountError;
use std::time::Duration;

use comfyfleet_core::runpod::fleet::{
    human_ms, load_idle_config, parse_minutes, parse_usd, save_idle_config, usd, FleetPod,
    IdleConfig, PodFleet, PodFleetError, PodProgress, DEFAULT_READY_TIMEOUT,
};
use comfyfleet_core::runpod::pods::PodPreset;
use comfyfleet_core::runpod::RunpodUrls;
use comfyfleet_core::Fleet;

use crate::{CliError, Outcome};

#[derive(clap::Subcommand)]
pub enum PodsCmd {
    /// List the pods ComfyFleet created, with RunPod's status, uptime and price per hour.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Create a pod running ComfyUI, wait until it answers, and add it to the server list (tags cloud, runpod).
    /// The desktop app (or `comfyfleet pods watch`) stops it once idle: 5 min, 2 min when it costs $1/h or more.
    Create(CreateArgs),
    /// Start a stopped pod of ComfyFleet's and wait until ComfyUI answers again.
    Start {
        /// The pod id (see `comfyfleet pods list`).
        pod_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Stop a pod of ComfyFleet's: the GPU is released and billing for it stops; the disk is kept.
    Stop {
        /// The pod id (see `comfyfleet pods list`).
        pod_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Terminate a pod of ComfyFleet's: the pod and its disk are deleted, and its server entry is removed.
    Terminate {
        /// The pod id (see `comfyfleet pods list`).
        pod_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Watch ComfyFleet's pods until Ctrl-C, as the desktop app does in the background: match them with RunPod and
    /// stop idle ones (see `comfyfleet pods idle`).
    Watch {
        /// Seconds between looks.
        #[arg(long, default_value_t = 30, value_name = "SECS")]
        interval: u64,
    },
    /// Show or change when idle pods are stopped.
    Idle(IdleArgs),
    /// The GPU types pods can be created on, with RunPod's prices per hour (Secure / Community cloud).
    Gpus {
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
pub struct IdleArgs {
    /// Stop a pod after this many minutes without a job, e.g. 5 or 1.5.
    #[arg(long)]
    minutes: Option<String>,
    /// Stop an expensive pod after this many minutes without a job.
    #[arg(long, value_name = "MINUTES")]
    expensive_minutes: Option<String>,
    /// A pod is expensive from this many dollars per hour, e.g. 1.50.
    #[arg(long, value_name = "DOLLARS")]
    expensive_at: Option<String>,
    /// Never stop idle pods.
    #[arg(long, conflicts_with = "on")]
    off: bool,
    /// Stop idle pods again.
    #[arg(long)]
    on: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Cloud {
    /// RunPod's data centres.
    Secure,
    /// Community hosts (cheaper, less reliable).
    Community,
}

#[derive(clap::Args)]
pub struct CreateArgs {
    /// A RunPod GPU type id, e.g. "NVIDIA GeForce RTX 4090"; repeat to give alternatives, in order of preference.
    #[arg(long = "gpu", value_name = "TYPE_ID")]
    gpus: Vec<String>,
    /// The container image (default: the worker-comfyui base image).
    #[arg(long)]
    image: Option<String>,
    #[arg(long, value_enum, default_value = "secure")]
    cloud: Cloud,
    /// Container disk in GB (default 30).
    #[arg(long, value_name = "GB")]
    disk: Option<u32>,
    /// The pod's name (also the server entry's name).
    #[arg(long)]
    name: Option<String>,
    /// Print the pod as JSON when it is ready (progress goes to stderr).
    #[arg(long)]
    json: bool,
}

impl CreateArgs {
    fn preset(&self) -> PodPreset {
        let d = PodPreset::default();
        PodPreset {
            name: self.name.clone().unwrap_or(d.name),
            image: self.image.clone().unwrap_or(d.image),
            gpu_types: if self.gpus.is_empty() {
                d.gpu_types
            } else {
                self.gpus.clone()
            },
            cloud_type: match self.cloud {
                Cloud::Secure => "SECURE".into(),
                Cloud::Community => "COMMUNITY".into(),
            },
            container_disk_gb: self.disk.unwrap_or(d.container_disk_gb),
            ..d
        }
    }
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<(), CliError> {
    println!(
        "{}",
        serde_json::to_string_pretty(v).map_err(|e| CliError(e.to_string()))?
    );
    Ok(())
}

fn progress(p: PodProgress) {
    eprintln!("[{:>4}s] {}", p.elapsed_ms / 1000, p.message);
}

fn line(p: &FleetPod) -> String {
    let status = p.status.as_deref().unwrap_or("GONE");
    let mut s = format!(
        "{}  {}  {}  {}  {}/h",
        p.pod_id,
        p.name,
        status,
        if p.gpu.is_empty() { "-" } else { &p.gpu },
        usd(p.cost_per_hr_micros)
    );
    if let Some(up) = p.uptime_secs {
        s += &format!("  up {}", human_ms(up * 1000));
    }
    if let Some(reason) = &p.stopped_reason {
        s += &format!("  ({reason})");
    }
    s
}

async fn connect(fleet: &Fleet) -> Result<PodFleet, CliError> {
    match PodFleet::connect(fleet, RunpodUrls::from_env()).await {
        Ok(p) => Ok(p.with_ready_timeout(DEFAULT_READY_TIMEOUT)),
        Err(PodFleetError::Account(AccountError::NoKey)) => Err(CliError(
            "No RunPod API key is set. Run `comfyfleet runpod key set` (create a key at https://www.runpod.io/console/user/settings, API Keys), then try again.".into(),
        )),
        Err(e) => Err(e.into()),
    }
}

fn describe(cfg: &IdleConfig) -> String {
    if !cfg.enabled {
        return "Idle pods are not stopped automatically (turn it on with `comfyfleet pods idle --on`).".into();
    }
    format!(
        "Idle pods are stopped after {} without a job; after {} when they cost {}/h or more.",
        human_ms(cfg.idle_ms),
        human_ms(cfg.expensive_idle_ms.min(cfg.idle_ms)),
        usd(cfg.expensive_threshold_micros_per_hr)
    )
}

async fn idle(fleet: &Fleet, a: IdleArgs) -> Result<Outcome, CliError> {
    let mut cfg = load_idle_config(&fleet.settings).await?;
    let changed = a.minutes.is_some()
        || a.expensive_minutes.is_some()
        || a.expensive_at.is_some()
        || a.on
        || a.off;
    let minutes = |text: &str| {
        parse_minutes(text).ok_or_else(|| {
            CliError(format!(
                "'{text}' is not a number of minutes; write it like 5 or 1.5"
            ))
        })
    };
    if let Some(text) = &a.minutes {
        cfg.idle_ms = minutes(text)?;
    }
    if let Some(text) = &a.expensive_minutes {
        cfg.expensive_idle_ms = minutes(text)?;
    }
    if let Some(text) = &a.expensive_at {
        cfg.expensive_threshold_micros_per_hr = parse_usd(text).ok_or_else(|| {
            CliError(format!(
                "'{text}' is not an amount of dollars per hour; write it like 1.50"
            ))
        })?;
    }
    if a.on || a.off {
        cfg.enabled = a.on;
    }
    if changed {
        cfg = save_idle_config(&fleet.settings, cfg).await?;
    }
    if a.json {
        print_json(&cfg)?;
    } else {
        println!("{}", describe(&cfg));
    }
    Ok(Outcome::Ok)
}

pub async fn run(fleet: &Fleet, cmd: PodsCmd) -> Result<Outcome, CliError> {
    // Settings only: no RunPod key needed.
    let cmd = match cmd {
        PodsCmd::Idle(args) => return idle(fleet, args).await,
        cmd => cmd,
    };
    let pods = connect(fleet).await?;
    match cmd {
        PodsCmd::Idle(_) => unreachable!("handled above"),
        PodsCmd::Watch { interval } => {
            let cfg = pods.idle_config().await?;
            println!(
                "Watching ComfyFleet's pods every {interval} s. {} Ctrl-C to stop.",
                describe(&cfg)
            );
            let watch = pods.watch(Duration::from_secs(interval.max(1)), |c| {
                println!("{}", c.message)
            });
            tokio::signal::ctrl_c()
                .await
                .map_err(|e| CliError(format!("could not wait for Ctrl-C: {e}")))?;
            watch.stop().await;
            println!("Stopped watching.");
        }
        PodsCmd::Gpus { json } => {
            let gpus = pods.gpu_types().await?;
            if json {
                print_json(&gpus)?;
            } else {
                let price = |m: Option<u64>| {
                    m.map(|m| format!("{}/h", usd(m)))
                        .unwrap_or_else(|| "-".into())
                };
                for g in &gpus {
                    println!(
                        "{:<32} {:>4} GB  secure {:>9}  community {:>9}",
                        g.id,
                        g.memory_gb,
                        price(g.secure_per_hr_micros),
                        price(g.community_per_hr_micros)
                    );
                }
            }
        }
        PodsCmd::List { json } => {
            let list = pods.list().await?;
            if json {
                print_json(&list)?;
            } else if list.is_empty() {
                println!("No pods created by ComfyFleet. Create one: comfyfleet pods create --gpu \"NVIDIA GeForce RTX 4090\"");
            } else {
                for p in &list {
                    println!("{}", line(p));
                }
            }
        }
        PodsCmd::Create(args) => {
            let pod = pods.create(&args.preset(), progress).await?;
            if args.json {
                print_json(&pod)?;
            } else {
                println!("{}", line(&pod));
                println!(
                    "Added to the server list as a cloud server ({}). Stop it with: comfyfleet pods stop {}",
                    pod.url, pod.pod_id
                );
            }
        }
        PodsCmd::Start { pod_id, json } => {
            let pod = pods.start(&pod_id, progress).await?;
            if json {
                print_json(&pod)?;
            } else {
                println!("{}", line(&pod));
            }
        }
        PodsCmd::Stop { pod_id, json } => {
            let pod = pods.stop(&pod_id).await?;
            if json {
                print_json(&pod)?;
            } else {
                println!("Stopped pod '{}' ({}).", pod.name, pod.pod_id);
            }
        }
        PodsCmd::Terminate { pod_id, json } => {
            let record = pods.terminate(&pod_id).await?;
            if json {
                print_json(&record)?;
            } else {
                println!(
                    "Terminated pod '{}' ({}) and removed its server entry.",
                    record.name, record.pod_id
                );
            }
        }
    }
    Ok(Outcome::Ok)
}
