//! `comfyfleet run …` and `comfyfleet jobs list|show|cancel`: queue workflows and follow them.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::Subcommand;
use comfyfleet_core::dispatcher::Dispatcher;
use comfyfleet_core::jobs::{Job, JobState, JobsError, NewJob};
use comfyfleet_core::workflow::{Workflow, MAX_WORKFLOW_BYTES};
use comfyfleet_core::Fleet;

use crate::{CliError, Outcome};

#[derive(clap::Args)]
pub struct RunArgs {
    /// An API-format workflow (in ComfyUI: Workflow > Export (API)).
    workflow: PathBuf,
    /// Run on this server (name or id) instead of letting the router choose.
    #[arg(long)]
    server: Option<String>,
    /// Change an input before queueing: NODE.inputs.FIELD=VALUE (VALUE is JSON, or a string). Repeatable.
    #[arg(long = "set", value_name = "NODE.inputs.FIELD=VALUE")]
    sets: Vec<String>,
    /// 1 (lowest) to 10 (highest).
    #[arg(long, default_value_t = 5)]
    priority: u8,
    /// Wait for the job to finish, with a progress bar, and print the output files.
    #[arg(long)]
    wait: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
pub enum JobsCmd {
    /// Jobs, newest first.
    List {
        /// Only jobs in this state (queued, dispatched, running, succeeded, failed, cancelled). Repeatable.
        #[arg(long = "state")]
        states: Vec<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// One job in full.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Cancel a job: a queued one at once, a running one is interrupted on its server.
    Cancel {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Run a failed or cancelled job again, as a new job (same workflow, priority and server choice).
    Retry {
        id: String,
        /// Follow the new job to its end.
        #[arg(long)]
        wait: bool,
        #[arg(long)]
        json: bool,
    },
}

fn read_workflow(path: &PathBuf) -> Result<Workflow, CliError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| CliError(format!("could not read {}: {e}", path.display())))?;
    if meta.len() as usize > MAX_WORKFLOW_BYTES {
        return Err(CliError(format!(
            "{} is {} MB; workflows are at most {} MB",
            path.display(),
            meta.len().div_ceil(1024 * 1024),
            MAX_WORKFLOW_BYTES / 1024 / 1024
        )));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError(format!("could not read {}: {e}", path.display())))?;
    Workflow::parse(&text).map_err(|e| CliError(format!("{}: {e}", path.display())))
}

pub async fn run(fleet: &Fleet, a: RunArgs) -> Result<Outcome, CliError> {
    let mut workflow = read_workflow(&a.workflow)?;
    for s in &a.sets {
        workflow.set(s)?;
    }
    let target = match &a.server {
        Some(q) => Some(fleet.servers.find(q).await?.id),
        None => None,
    };
    let name = a
        .workflow
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "workflow".into());
    let dispatcher = fleet.start_dispatcher().await;
    let job = dispatcher
        .submit(NewJob {
            priority: a.priority,
            target,
            ..NewJob::new(name, workflow.to_value())
        })
        .await;
    see_through(fleet, dispatcher, job, a.wait, a.json).await
}

/// After queueing a job: stay until it is at least on a server (whoever dispatches next picks up from there), or to
/// its end with `wait`, then say how it stands.
async fn see_through(
    fleet: &Fleet,
    dispatcher: Dispatcher,
    queued: Result<Job, JobsError>,
    wait: bool,
    json: bool,
) -> Result<Outcome, CliError> {
    let job = match queued {
        Ok(job) => job,
        Err(e) => {
            dispatcher.shutdown().await;
            return Err(e.into());
        }
    };
    if !json {
        eprintln!("Queued job {} ({}).", job.id, job.name);
    }
    let job = loop {
        let j = fleet.jobs.get(&job.id).await?;
        if j.state != JobState::Queued || (!dispatcher.is_leader().await && !wait) {
            break j;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let job = if wait {
        follow(fleet, &job.id, !json && std::io::stderr().is_terminal()).await?
    } else {
        job
    };
    dispatcher.shutdown().await;
    if json {
        println!("{}", serde_json::to_string_pretty(&job).unwrap_or_default());
    } else if wait {
        print_result(&job, fleet).await;
    } else {
        println!("{}", job.id);
    }
    Ok(
        if job.state == JobState::Failed || job.state == JobState::Cancelled {
            Outcome::Failed
        } else {
            Outcome::Ok
        },
    )
}

/// Poll the job until it ends, drawing a progress bar on a terminal.
async fn follow(fleet: &Fleet, id: &str, bar: bool) -> Result<Job, CliError> {
    let mut last_line = String::new();
    loop {
        let job = fleet.jobs.get(id).await?;
        if bar {
            let where_ = match &job.server_id {
                Some(s) => fleet
                    .servers
                    .find(s)
                    .await
                    .map(|s| s.name)
                    .unwrap_or_default(),
                None => "waiting for a server".into(),
            };
            let width = 30usize;
            let filled = ((job.progress * width as f64).round() as usize).min(width);
            let line = format!(
                "\r[{}{}] {:>3.0}% {} · {}",
                "#".repeat(filled),
                "-".repeat(width - filled),
                job.progress * 100.0,
                job.state.as_str(),
                where_
            );
            if line != last_line {
                eprint!("{line}\x1b[K");
                let _ = std::io::stderr().flush();
                last_line = line;
            }
        }
        if job.state.is_final() {
            if bar {
                eprintln!();
            }
            return Ok(job);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn print_result(job: &Job, fleet: &Fleet) {
    let server = match &job.server_id {
        Some(s) => fleet
            .servers
            .find(s)
            .await
            .map(|s| s.name)
            .unwrap_or_else(|_| s.clone()),
        None => "-".into(),
    };
    match job.state {
        JobState::Succeeded => {
            let secs = job
                .finished_ms
                .zip(job.started_ms.or(Some(job.queued_ms)))
                .map(|(f, s)| (f - s) as f64 / 1000.0)
                .unwrap_or(0.0);
            println!("Job {} succeeded on '{server}' in {secs:.1} s.", job.id);
            for o in &job.outputs {
                println!("{}", o.path);
            }
        }
        _ => {
            for n in &job.notes {
                eprintln!("note: {n}");
            }
            eprintln!(
                "error: job {} {}: {}",
                job.id,
                job.state.as_str(),
                job.error
                    .as_deref()
                    .unwrap_or("no reason given")
                    .replace('\n', " · ")
            );
        }
    }
}

pub async fn jobs(fleet: &Fleet, cmd: JobsCmd) -> Result<Outcome, CliError> {
    match cmd {
        JobsCmd::List {
            states,
            limit,
            json,
        } => {
            let mut parsed = Vec::new();
            for s in &states {
                parsed.push(JobState::parse(s).ok_or_else(|| CliError(format!("unknown state '{s}': use queued, dispatched, running, succeeded, failed or cancelled")))?);
            }
            let list = fleet.jobs.list(&parsed, limit).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&list).unwrap_or_default()
                );
            } else if list.is_empty() {
                println!("No jobs yet. Queue one: comfyfleet run WORKFLOW.json --wait");
            } else {
                for j in &list {
                    println!(
                        "{}  {:<10} p{:<2} {:>4.0}%  {}",
                        j.id,
                        j.state.as_str(),
                        j.priority,
                        j.progress * 100.0,
                        j.name
                    );
                }
            }
            Ok(Outcome::Ok)
        }
        JobsCmd::Show { id, json } => {
            let job = fleet.jobs.get(&id).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&job).unwrap_or_default());
            } else {
                println!("{} — {} ({})", job.id, job.name, job.state.as_str());
                if let Some(e) = &job.error {
                    println!("error: {e}");
                }
                for n in &job.notes {
                    println!("note: {n}");
                }
                for o in &job.outputs {
                    println!("output: {}", o.path);
                }
            }
            Ok(Outcome::Ok)
        }
        JobsCmd::Cancel { id, json } => {
            let dispatcher = fleet.start_dispatcher().await;
            let job = dispatcher.cancel(&id).await;
            dispatcher.shutdown().await;
            let job = job?;
            if json {
                println!("{}", serde_json::to_string_pretty(&job).unwrap_or_default());
            } else {
                println!("Cancelled job {}.", job.id);
            }
            Ok(Outcome::Ok)
        }
        JobsCmd::Retry { id, wait, json } => {
            let dispatcher = fleet.start_dispatcher().await;
            let job = dispatcher.retry(&id).await;
            see_through(fleet, dispatcher, job, wait, json).await
        }
    }
}
