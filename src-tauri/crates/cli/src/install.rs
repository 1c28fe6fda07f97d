//! `comfyfleet install` and `comfyfleet local start|stop|status|logs`: the installer and the local server
//! supervisor of core, with a step list on the terminal or JSON for scripts.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use comfyfleet_core::downloads::{human_bytes, Downloads};
use comfyfleet_core::installer::run::{InstallEnv, Installer};
use comfyfleet_core::installer::status::{
    CheckLevel, InstallRequest, InstallState, InstallStatus, LocalStatus, StepState,
};
use comfyfleet_core::local::LocalServer;
use comfyfleet_core::Fleet;

use crate::{CliError, Outcome};

#[derive(clap::Args)]
pub struct InstallArgs {
    /// The folder to install ComfyUI into (created when missing). Run the same command again to continue an
    /// interrupted install: finished steps are skipped.
    #[arg(long)]
    path: String,
    /// Model packs to download, comma-separated: sd15, sdxl, flux-schnell, animatediff (from the manifest).
    #[arg(long, value_delimiter = ',')]
    packs: Vec<String>,
    /// PyTorch build: cuda (newest the driver supports), cuda130, cuda129, cuda128, cuda126, rocm, xpu, cpu, mps.
    /// Default: decided from the GPU.
    #[arg(long)]
    variant: Option<String>,
    /// An existing models folder to use (through extra_model_paths.yaml; nothing is copied).
    #[arg(long)]
    models_dir: Option<String>,
    /// A manifest file or URL instead of the one shipped with ComfyFleet.
    #[arg(long)]
    manifest: Option<String>,
    /// The port ComfyUI listens on (default 8188).
    #[arg(long)]
    port: Option<u16>,
    /// Re-verify what an earlier run made (model checksums, the Python environment) and redo what is damaged.
    #[arg(long)]
    repair: bool,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    yes: bool,
    /// Print the plan and each step change as JSON lines, then the final status.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct UninstallArgs {
    /// The install folder (as given to `comfyfleet install --path`).
    #[arg(long)]
    path: String,
    /// Also delete the model files it downloaded into a shared models folder (kept by default).
    #[arg(long)]
    remove_models: bool,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    yes: bool,
    #[arg(long)]
    json: bool,
}

#[derive(clap::Subcommand)]
pub enum LocalCmd {
    /// Start the installed ComfyUI (it keeps running after this command; stop it with `local stop`).
    Start {
        #[arg(long)]
        json: bool,
    },
    /// Stop it (started by this CLI or by the app).
    Stop {
        #[arg(long)]
        json: bool,
    },
    /// Whether it runs, where, and its pid.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// The end of its log.
    Logs {
        /// How many lines.
        #[arg(long, default_value_t = 100)]
        lines: u32,
    },
}

fn json_line<T: serde::Serialize>(v: &T) -> Result<(), CliError> {
    println!(
        "{}",
        serde_json::to_string(v).map_err(|e| CliError(e.to_string()))?
    );
    Ok(())
}

fn supervisor(fleet: &Fleet) -> LocalServer {
    LocalServer::new(fleet.store.clone(), fleet.home.clone())
}

fn step_mark(state: StepState) -> &'static str {
    match state {
        StepState::Pending => " ",
        StepState::Running => ">",
        StepState::Done => "✓",
        StepState::Skipped => "=",
        StepState::Failed => "✗",
    }
}

/// One line per step change: `✓ Download and unpack ComfyUI 0.3.64 — 412 files unpacked.`
fn step_line(s: &comfyfleet_core::installer::status::StepStatus) -> String {
    let mut line = format!("{} {}", step_mark(s.state), s.title);
    if s.state == StepState::Running {
        if let Some(t) = s.total_bytes.filter(|t| *t > 0 && s.done_bytes > 0) {
            line.push_str(&format!(
                "  {} / {}",
                human_bytes(s.done_bytes),
                human_bytes(t)
            ));
            if s.bytes_per_sec > 0 {
                line.push_str(&format!("  {}/s", human_bytes(s.bytes_per_sec)));
            }
        }
    }
    if let Some(d) = &s.detail {
        line.push_str(&format!(" — {d}"));
    }
    line
}

pub async fn install(fleet: &Fleet, args: InstallArgs) -> Result<Outcome, CliError> {
    let local = supervisor(fleet);
    let installer = Installer::new(InstallEnv::new(
        fleet,
        local,
        Downloads::new(fleet.store.clone(), Default::default()),
    ));
    let path = std::path::absolute(args.path.trim())
        .map(|p| p.display().to_string())
        .unwrap_or(args.path.clone());
    let req = InstallRequest {
        install_path: path,
        variant: args.variant,
        packs: args
            .packs
            .into_iter()
            .filter(|p| !p.trim().is_empty())
            .collect(),
        models_dir: args.models_dir,
        manifest: args.manifest,
        port: args.port,
    };
    let check = installer.check(&req).await;
    if args.json {
        json_line(&serde_json::json!({"check": &check}))?;
    } else {
        for c in &check.checks {
            let mark = match c.level {
                CheckLevel::Pass => "ok  ",
                CheckLevel::Warn => "warn",
                CheckLevel::Fail => "FAIL",
            };
            println!("[{mark}] {}: {}", c.label, c.detail);
        }
    }
    if let Some(e) = &check.plan_error {
        return Err(CliError(e.message.clone()));
    }
    if let Some(c) = check.checks.iter().find(|c| c.level == CheckLevel::Fail) {
        return Err(CliError(format!("{}: {}", c.label, c.detail)));
    }
    let Some(plan) = &check.plan else {
        return Err(CliError("no install plan".into()));
    };
    if !args.json {
        println!(
            "\nComfyUI {} into {} — PyTorch {} ({})",
            check.comfyui_version,
            req.install_path,
            plan.variant.as_str(),
            plan.variant_reason
        );
        for s in &plan.steps {
            let done = if check.done_steps.contains(&s.id) {
                "  (done before)"
            } else {
                ""
            };
            let size = if s.download > 0 {
                format!("  download {}", human_bytes(s.download))
            } else {
                String::new()
            };
            println!("  - {}{size}{done}", s.title);
        }
        println!(
            "Download {}, disk {} of {} free, about {} min. {}",
            human_bytes(plan.download_bytes),
            human_bytes(plan.disk_needed),
            human_bytes(plan.disk_available),
            plan.estimated_secs.div_ceil(60),
            plan.recommendation_reason
        );
        for w in &plan.warnings {
            println!("Note: {w}");
        }
    }
    if !confirm("Install?", args.yes)? {
        println!("Nothing installed.");
        return Ok(Outcome::Ok);
    }

    if args.repair {
        installer.repair(req).map_err(CliError::from)?;
    } else {
        installer.start(req).map_err(CliError::from)?;
    }
    let mut rx = installer.subscribe();
    let mut shown: Vec<(StepState, Option<String>)> = Vec::new();
    let mut last_progress = std::time::Instant::now();
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    let final_status: InstallStatus = loop {
        let status = rx.borrow_and_update().clone();
        // Each step change once; progress of a running step at most every 2 s.
        for (i, s) in status.steps.iter().enumerate() {
            if shown.len() <= i {
                shown.push((StepState::Pending, None));
            }
            let changed = shown[i].0 != s.state;
            let progress = s.state == StepState::Running
                && shown[i].1 != s.detail.clone()
                && last_progress.elapsed() > Duration::from_secs(2);
            if changed || progress {
                if args.json {
                    json_line(&serde_json::json!({"step": s}))?;
                } else if s.state != StepState::Pending {
                    println!("{}", step_line(s));
                }
                if progress {
                    last_progress = std::time::Instant::now();
                }
                shown[i] = (s.state, s.detail.clone());
            }
        }
        if !matches!(status.state, InstallState::Running) {
            break status;
        }
        tokio::select! {
            r = rx.changed() => if r.is_err() { break installer.status() },
            _ = &mut interrupted => {
                if !args.json {
                    println!("Pausing… (finished steps and downloaded bytes are kept)");
                }
                let st = installer.pause().await;
                break st;
            }
        }
    };
    installer.wait().await;
    let final_status = if final_status.state == InstallState::Running {
        installer.status()
    } else {
        final_status
    };
    if args.json {
        json_line(&serde_json::json!({"status": &final_status}))?;
    }
    match final_status.state {
        InstallState::Done => {
            if !args.json {
                println!(
                    "\nComfyUI is installed and running at {} as the active \"Local\" server. Stop it with `comfyfleet local stop`.",
                    final_status.url.clone().unwrap_or_default()
                );
            }
            Ok(Outcome::Ok)
        }
        InstallState::Paused | InstallState::Cancelled => {
            if !args.json {
                println!("Paused. Run the same command again to continue.");
            }
            Ok(Outcome::Failed)
        }
        _ => {
            let e = final_status.error.clone();
            if !args.json {
                if let Some(e) = &e {
                    eprintln!("\nerror: {}", e.message);
                    if let Some(d) = &e.details {
                        eprintln!("{d}");
                    }
                }
                eprintln!(
                    "The install log is {}. Run the same command again to retry: finished steps are skipped.",
                    final_status.log_path
                );
            }
            Ok(Outcome::Failed)
        }
    }
}

fn confirm(question: &str, yes: bool) -> Result<bool, CliError> {
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError(
            "Add --yes to go ahead without being asked (stdin is not a terminal).".into(),
        ));
    }
    print!("{question} [y/N] ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

pub async fn uninstall(fleet: &Fleet, args: UninstallArgs) -> Result<Outcome, CliError> {
    let installer = Installer::new(InstallEnv::new(
        fleet,
        supervisor(fleet),
        Downloads::new(fleet.store.clone(), Default::default()),
    ));
    let path = std::path::absolute(args.path.trim())
        .map(|p| p.display().to_string())
        .unwrap_or(args.path.clone());
    let what = if args.remove_models {
        "and the models it downloaded"
    } else {
        "(models in a shared folder are kept)"
    };
    if !confirm(
        &format!("Remove the ComfyUI install in {path} {what}?"),
        args.yes,
    )? {
        println!("Nothing removed.");
        return Ok(Outcome::Ok);
    }
    let done = installer.uninstall(&path, args.remove_models).await?;
    if args.json {
        return json_line(&done).map(|_| Outcome::Ok);
    }
    println!("Removed {}.", done.removed);
    if done.server_removed {
        println!("The \"Local\" server was taken off the server list.");
    }
    if !done.kept_models.is_empty() {
        println!("Kept {} shared model file(s):", done.kept_models.len());
        for m in &done.kept_models {
            println!("  {m}");
        }
    }
    if done.removed_models > 0 {
        println!("Deleted {} model file(s).", done.removed_models);
    }
    Ok(Outcome::Ok)
}

fn print_local(st: &LocalStatus, json: bool) -> Result<(), CliError> {
    if json {
        return json_line(st);
    }
    let state = serde_json::to_value(st.state)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default();
    println!("state: {state}");
    if let Some(p) = &st.install_path {
        println!("install: {p}");
    }
    if let Some(u) = &st.url {
        println!("url: {u}");
    }
    if let Some(pid) = st.pid {
        println!("pid: {pid}");
    }
    if let Some(e) = &st.last_error {
        println!("last error: {}", e.message);
    }
    if let Some(l) = &st.log_path {
        println!("log: {l}");
    }
    Ok(())
}

pub async fn local(fleet: &Fleet, cmd: LocalCmd) -> Result<Outcome, CliError> {
    let local = supervisor(fleet);
    match cmd {
        LocalCmd::Start { json } => {
            let st = local.start().await?;
            print_local(&st, json)?;
        }
        LocalCmd::Stop { json } => {
            let st = local.stop().await?;
            print_local(&st, json)?;
        }
        LocalCmd::Status { json } => {
            let st = local.refresh().await;
            print_local(&st, json)?;
        }
        LocalCmd::Logs { lines } => {
            let tail = local.logs(lines)?;
            if tail.text.is_empty() {
                println!("(the log {} is empty)", tail.path);
            } else {
                println!("{}", tail.text);
            }
        }
    }
    Ok(Outcome::Ok)
}
