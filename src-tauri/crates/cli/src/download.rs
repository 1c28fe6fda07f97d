//! `comfyfleet download URL --to PATH`: one resumable, verified download with a progress bar on a terminal.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use comfyfleet_core::downloads::{
    credentials_for, human_bytes, DownloadRequest, Downloads, Options, Phase, Progress,
    ProgressSink,
};
use comfyfleet_core::secrets::Secrets;
use comfyfleet_core::Fleet;

use crate::{CliError, Outcome};

#[derive(clap::Args)]
pub struct DownloadArgs {
    /// The file's URL (Hugging Face and CivitAI tokens are taken from the keychain).
    url: String,
    /// Where to save it. The file appears under this name only once complete and verified.
    #[arg(long)]
    to: PathBuf,
    /// The expected SHA-256 (64 hex digits; `sha256:` prefix accepted). Without it, Hugging Face's checksum is
    /// used when the server gives one.
    #[arg(long)]
    sha256: Option<String>,
    /// Parallel connections (default 8 for large files on servers that serve ranges).
    #[arg(long)]
    connections: Option<u32>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

fn clock(secs: u64) -> String {
    if secs >= 3600 {
        format!("{}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
    } else {
        format!("{}:{:02}", secs / 60, secs % 60)
    }
}

/// One bar line: `[#####-----]  45%  1.2 GB / 2.7 GB  85.0 MB/s  ETA 0:18`.
fn bar_line(p: &Progress) -> String {
    let width = 30usize;
    let fraction = match p.total {
        Some(t) if t > 0 => (p.downloaded as f64 / t as f64).min(1.0),
        _ => 0.0,
    };
    let filled = (fraction * width as f64).round() as usize;
    let size = match p.total {
        Some(t) => format!("{} / {}", human_bytes(p.downloaded), human_bytes(t)),
        None => human_bytes(p.downloaded),
    };
    let phase = match p.phase {
        Phase::Queued => "queued".to_string(),
        Phase::Connecting => "connecting".to_string(),
        Phase::Verifying => "verifying".to_string(),
        Phase::Done => "done".to_string(),
        Phase::Paused => "paused".to_string(),
        Phase::Failed => "failed".to_string(),
        Phase::Downloading => format!(
            "{}/s  ETA {}",
            human_bytes(p.bytes_per_sec),
            p.eta_secs.map(clock).unwrap_or_else(|| "-".into())
        ),
    };
    format!(
        "\r[{}{}] {:>3.0}%  {size}  {phase}\x1b[K",
        "#".repeat(filled),
        "-".repeat(width - filled),
        fraction * 100.0
    )
}

fn sink(bar: bool, quiet: bool) -> ProgressSink {
    let notes = Arc::new(Mutex::new(Vec::<String>::new()));
    Arc::new(move |p: Progress| {
        let mut err = std::io::stderr().lock();
        if let Some(note) = &p.note {
            let mut seen = notes.lock().unwrap_or_else(|e| e.into_inner());
            if !quiet
                && !seen.contains(note)
                && p.phase != Phase::Failed
                && p.phase != Phase::Paused
            {
                let _ = writeln!(err, "{}note: {note}", if bar { "\r\x1b[K" } else { "" });
                seen.push(note.clone());
            }
        }
        if bar {
            let _ = write!(err, "{}", bar_line(&p));
            if matches!(p.phase, Phase::Done | Phase::Failed | Phase::Paused) {
                let _ = writeln!(err);
            }
            let _ = err.flush();
        }
    })
}

pub async fn run(fleet: &Fleet, a: DownloadArgs) -> Result<Outcome, CliError> {
    let credentials = match credentials_for(&Secrets::default(), &a.url).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("warning: downloading without a token: {e}");
            None
        }
    };
    let downloads = Downloads::new(fleet.store.clone(), Options::default());
    let request = DownloadRequest {
        sha256: a.sha256.clone(),
        credentials,
        connections: a.connections,
        ..DownloadRequest::new(&a.url, &a.to)
    };
    let bar = !a.json && std::io::stderr().is_terminal();
    let outcome = downloads.download(request, sink(bar, a.json)).await?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&outcome).unwrap_or_default()
        );
    } else {
        let how = match (&outcome.verified_against, outcome.already_present) {
            (_, true) => "already there and verified".to_string(),
            (Some(src), _) if src == "caller" => "verified against --sha256".to_string(),
            (Some(src), _) => format!("verified against the server's {src}"),
            (None, _) => "no checksum to verify against".to_string(),
        };
        println!(
            "{} ({}, sha256 {}, {how})",
            outcome.dest.display(),
            human_bytes(outcome.size),
            outcome.sha256
        );
    }
    Ok(Outcome::Ok)
}
