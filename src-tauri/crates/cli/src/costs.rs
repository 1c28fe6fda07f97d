//! `comfyfleet costs [--month YYYY-MM] [--json] [--csv FILE]` (the month's jobs, spend, savings, projection and
//! per-server totals) and `comfyfleet costs caps [--daily USD] [--monthly USD] [--json]` (show or set the cloud
//! spending caps).

use std::collections::HashMap;
use std::path::PathBuf;

use comfyfleet_core::costs::calendar::{parse_month, year_month};
use comfyfleet_core::costs::prices::usd_exact as usd;
use comfyfleet_core::costs::report::{csv, Totals};
use comfyfleet_core::costs::{CapStatus, Caps};
use comfyfleet_core::runpod::fleet::parse_usd;
use comfyfleet_core::Fleet;

use crate::{CliError, Outcome};

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct CostsArgs {
    #[command(subcommand)]
    cmd: Option<CostsCmd>,
    /// The month to report, in your local time (default: this month).
    #[arg(long, value_name = "YYYY-MM")]
    month: Option<String>,
    #[arg(long)]
    json: bool,
    /// Also write every job of the month to FILE as CSV (exact amounts).
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
}

#[derive(clap::Subcommand)]
pub enum CostsCmd {
    /// Show the daily and monthly cloud spending caps, or set them (in dollars: 5, 2.50, $50).
    Caps {
        #[arg(long, value_name = "USD")]
        daily: Option<String>,
        #[arg(long, value_name = "USD")]
        monthly: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

fn json_line<T: serde::Serialize>(v: &T) -> Result<(), CliError> {
    println!(
        "{}",
        serde_json::to_string(v).map_err(|e| CliError(e.to_string()))?
    );
    Ok(())
}

fn dollars(flag: &str, text: &str) -> Result<u64, CliError> {
    parse_usd(text).ok_or_else(|| {
        CliError(format!(
            "--{flag} '{text}' is not an amount in dollars. Give it like 5, 2.50 or $50 (at most six decimals)."
        ))
    })
}

pub async fn run(fleet: &Fleet, args: CostsArgs) -> Result<Outcome, CliError> {
    match args.cmd {
        Some(CostsCmd::Caps {
            daily,
            monthly,
            json,
        }) => caps(fleet, daily, monthly, json).await,
        None => month(fleet, args.month, args.json, args.csv).await,
    }
}

async fn caps(
    fleet: &Fleet,
    daily: Option<String>,
    monthly: Option<String>,
    json: bool,
) -> Result<Outcome, CliError> {
    let costs = fleet.costs();
    if daily.is_some() || monthly.is_some() {
        let cur = costs.caps().await?;
        let caps = Caps {
            daily_micros: match &daily {
                Some(t) => dollars("daily", t)?,
                None => cur.daily_micros,
            },
            monthly_micros: match &monthly {
                Some(t) => dollars("monthly", t)?,
                None => cur.monthly_micros,
            },
        };
        costs.set_caps(caps).await?;
    }
    let status = costs.cap_status(comfyfleet_core::now_ms()).await?;
    if json {
        json_line(&status)?;
    } else {
        print_caps(&status);
    }
    Ok(Outcome::Ok)
}

fn print_caps(s: &CapStatus) {
    println!(
        "Daily cap    {:>9}  today: {} spent + {} reserved ({}%)",
        usd(s.caps.daily_micros),
        usd(s.spent_today_micros),
        usd(s.reserved_today_micros),
        s.daily_percent
    );
    println!(
        "Monthly cap  {:>9}  this month: {} spent + {} reserved ({}%)",
        usd(s.caps.monthly_micros),
        usd(s.spent_month_micros),
        usd(s.reserved_month_micros),
        s.monthly_percent
    );
}

async fn month(
    fleet: &Fleet,
    month: Option<String>,
    json: bool,
    csv_path: Option<PathBuf>,
) -> Result<Outcome, CliError> {
    let costs = fleet.costs();
    let now = comfyfleet_core::now_ms();
    let offset = costs.utc_offset_secs(now);
    let (year, mon) = match &month {
        Some(text) => parse_month(text).ok_or_else(|| {
            CliError(format!(
                "--month '{text}' is not a month. Give it as YYYY-MM, e.g. 2026-12."
            ))
        })?,
        None => year_month(now, offset),
    };
    let key = format!("{year:04}-{mon:02}");
    let Some(report) = costs.month_report(year, mon, now).await? else {
        return Err(CliError(format!("--month '{key}' is not a month.")));
    };
    if let Some(path) = &csv_path {
        let entries = costs
            .ledger()
            .entries_between(report.span.from_ms, report.span.to_ms)
            .await?;
        std::fs::write(path, csv(&entries, offset)).map_err(|e| {
            CliError(format!(
                "Could not write {}: {e}. Check that the folder exists and is writable.",
                path.display()
            ))
        })?;
    }
    if json {
        let mut v = serde_json::to_value(&report).map_err(|e| CliError(e.to_string()))?;
        v["month"] = key.into();
        return json_line(&v).map(|_| Outcome::Ok);
    }
    let names: HashMap<String, String> = fleet
        .servers
        .list()
        .await?
        .into_iter()
        .map(|s| (s.id, s.name))
        .collect();
    let t = &report.totals;
    println!("Costs for {key} (local time)");
    println!(
        "  Jobs        {} ({} succeeded, {}%)",
        t.jobs, t.succeeded, t.success_percent
    );
    println!(
        "  Spent       {} (cloud {})",
        usd(t.spent_micros),
        usd(t.cloud_spent_micros)
    );
    println!(
        "  Saved       {} thanks to the local GPU",
        usd(t.saved_micros)
    );
    println!(
        "  Projection  {} by the end of the month",
        usd(report.projection_micros)
    );
    if t.idle_ms > 0 {
        println!(
            "  Idle pods   {} ({} min with no job)",
            usd(t.idle_micros),
            t.idle_ms / 60_000
        );
    }
    if report.by_server.is_empty() {
        println!("No jobs with a recorded cost this month. Costs are recorded as jobs finish.");
    } else {
        println!("By server:");
        for g in &report.by_server {
            let name = names.get(&g.key).cloned().unwrap_or_else(|| g.key.clone());
            print_row(&name, &g.totals);
        }
    }
    if let Some(path) = &csv_path {
        println!("Wrote every job of {key} to {}", path.display());
    }
    Ok(Outcome::Ok)
}

fn print_row(name: &str, t: &Totals) {
    println!(
        "  {name:<24} {:>5} jobs  spent {:>9}  saved {:>9}",
        t.jobs,
        usd(t.spent_micros),
        usd(t.saved_micros)
    );
}
