//! comfyfleet: the ComfyFleet CLI — thin subcommands over comfyfleet-core.

mod costs;
mod download;
mod gateway;
mod install;
mod jobs;
mod pods;
mod runpod;
mod servers;
mod system;
mod tokens;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use comfyfleet_core::home::AppHome;
use comfyfleet_core::Fleet;

#[derive(Parser)]
#[command(
    name = "comfyfleet",
    version,
    about = "Run ComfyUI anywhere: your GPU, a LAN box, or the cloud"
)]
struct Cli {
    /// Data folder (default: the platform data dir).
    #[arg(long, global = true, env = "COMFYFLEET_HOME", hide_env_values = true)]
    home: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Manage the server list.
    #[command(subcommand)]
    Servers(servers::ServersCmd),
    /// Queue a workflow (and with --wait, follow it to the end).
    Run(jobs::RunArgs),
    /// List, show and cancel jobs.
    #[command(subcommand)]
    Jobs(jobs::JobsCmd),
    /// Download a file (resumable: run the same command again to go on), verified by SHA-256.
    Download(download::DownloadArgs),
    /// RunPod: the API key (kept in the OS keychain).
    #[command(subcommand)]
    Runpod(runpod::RunpodCmd),
    /// RunPod pods created by ComfyFleet: list, create (registered as a cloud server), start, stop, terminate.
    #[command(subcommand)]
    Pods(pods::PodsCmd),
    /// Hugging Face and CivitAI tokens for downloads (kept in the OS keychain).
    #[command(subcommand)]
    Tokens(tokens::TokensCmd),
    /// Show this machine's GPUs, CPU, RAM and OS.
    Gpu(system::GpuArgs),
    /// Install ComfyUI on this computer: check, plan, download, set up Python, start, verify, register.
    Install(install::InstallArgs),
    /// Remove a ComfyUI installed by `install` (shared models are kept unless --remove-models).
    Uninstall(install::UninstallArgs),
    /// Start, stop and watch the local ComfyUI.
    #[command(subcommand)]
    Local(install::LocalCmd),
    /// Costs: this month's jobs, spend, savings and projection (or another month's), and the cloud spending caps.
    Costs(costs::CostsArgs),
    /// Serve the fleet as one ComfyUI (its HTTP and WebSocket API) to any ComfyUI client, until Ctrl-C.
    Gateway(gateway::GatewayArgs),
}

/// An error for the user: printed as one line on stderr.
pub struct CliError(pub String);

impl<E: comfyfleet_core::HasErrorInfo> From<E> for CliError {
    fn from(e: E) -> Self {
        CliError(e.to_string())
    }
}

/// A command's outcome: success, or "ran, but the result is a failure" (e.g. a server is down).
pub enum Outcome {
    Ok,
    Failed,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: could not start: {e}");
            return ExitCode::from(1);
        }
    };
    let result = match cli.command {
        // Needs no data folder.
        Command::Gpu(args) => system::gpu(args),
        Command::Tokens(cmd) => runtime.block_on(tokens::run(cmd)),
        Command::Runpod(cmd) => runtime.block_on(runpod::run(cmd)),
        command => runtime.block_on(with_fleet(cli.home, command)),
    };
    finish(result)
}

async fn with_fleet(home: Option<PathBuf>, command: Command) -> Result<Outcome, CliError> {
    let home = match home {
        Some(dir) => AppHome::at(dir)?,
        None => AppHome::resolve()?,
    };
    let _log = comfyfleet_core::logging::init_file(&home, "cli");
    let fleet = Fleet::open(home)?;
    match command {
        Command::Servers(cmd) => servers::run(&fleet, cmd).await,
        Command::Run(args) => jobs::run(&fleet, args).await,
        Command::Jobs(cmd) => jobs::jobs(&fleet, cmd).await,
        Command::Download(args) => download::run(&fleet, args).await,
        Command::Gpu(args) => system::gpu(args),
        Command::Tokens(cmd) => tokens::run(cmd).await,
        Command::Runpod(cmd) => runpod::run(cmd).await,
        Command::Pods(cmd) => pods::run(&fleet, cmd).await,
        Command::Install(args) => install::install(&fleet, args).await,
        Command::Uninstall(args) => install::uninstall(&fleet, args).await,
        Command::Local(cmd) => install::local(&fleet, cmd).await,
        Command::Costs(args) => costs::run(&fleet, args).await,
        Command::Gateway(args) => gateway::run(&fleet, args).await,
    }
}

fn finish(result: Result<Outcome, CliError>) -> ExitCode {
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Failed) => ExitCode::from(1),
        Err(CliError(message)) => {
            eprintln!("error: {}", message.replace('\n', " "));
            ExitCode::from(2)
        }
    }
}
