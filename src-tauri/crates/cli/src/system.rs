//! `comfyfleet gpu`: what this machine offers a local ComfyUI.

use clap::Args;
use comfyfleet_core::gpu::Gpu;

use crate::{CliError, Outcome};

#[derive(Args)]
pub struct GpuArgs {
    #[arg(long)]
    json: bool,
}

fn gb(bytes: u64) -> String {
    format!("{:.1} GB", bytes as f64 / 1e9)
}

fn describe(g: &Gpu) -> String {
    let mut parts = vec![g.name.clone()];
    match (g.vram_total, g.vram_free) {
        (Some(t), Some(f)) => parts.push(format!("{} VRAM ({} free)", gb(t), gb(f))),
        (Some(t), None) => parts.push(format!("{} VRAM", gb(t))),
        _ => {}
    }
    if let Some(d) = &g.driver_version {
        parts.push(format!("driver {d}"));
    }
    if let Some(c) = g.cuda_driver_version {
        parts.push(format!("CUDA {c}"));
    }
    if let Some(cc) = &g.compute_capability {
        parts.push(format!("compute {cc}"));
    }
    if let Some(mw) = g.power_draw_mw {
        parts.push(format!("{:.1} W", mw as f64 / 1000.0));
    }
    parts.join(", ")
}

pub fn gpu(args: GpuArgs) -> Result<Outcome, CliError> {
    let facts = comfyfleet_core::system::facts();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&facts).map_err(|e| CliError(e.to_string()))?
        );
        return Ok(Outcome::Ok);
    }
    if facts.gpu.gpus.is_empty() {
        println!("GPU: {}", facts.gpu.summary());
    }
    for g in &facts.gpu.gpus {
        println!("GPU: {}", describe(g));
    }
    if let Some(why) = &facts.gpu.nvml_unavailable {
        println!("NVIDIA: not available ({why}).");
    }
    println!("CPU: {} ({} threads)", facts.cpu, facts.cpu_cores);
    println!(
        "RAM: {} ({} available)",
        gb(facts.ram_total),
        gb(facts.ram_available)
    );
    println!("OS: {} ({})", facts.os_version, facts.arch);
    Ok(Outcome::Ok)
}
