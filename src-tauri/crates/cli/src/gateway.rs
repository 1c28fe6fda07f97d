//! `comfyfleet gateway`: the fleet behind one ComfyUI-compatible address, headless, until Ctrl-C.

use comfyfleet_core::gateway::{parse_listen, Gateway, GatewayParts, DEFAULT_LISTEN};
use comfyfleet_core::health::MONITOR_INTERVAL;
use comfyfleet_core::Fleet;

use crate::{CliError, Outcome};

#[derive(clap::Args)]
pub struct GatewayArgs {
    /// Address and port to listen on. 0.0.0.0:8189 lets ComfyUI clients on the LAN in.
    #[arg(long, default_value = DEFAULT_LISTEN, value_name = "ADDR:PORT")]
    listen: String,
}

pub async fn run(fleet: &Fleet, a: GatewayArgs) -> Result<Outcome, CliError> {
    let addr = parse_listen(&a.listen)?;
    let dispatcher = fleet.start_dispatcher().await;
    let _monitor = fleet
        .health
        .spawn_monitor(fleet.settings.clone(), MONITOR_INTERVAL);
    let parts = GatewayParts {
        dispatcher: dispatcher.clone(),
        jobs: fleet.jobs.clone(),
        servers: fleet.servers.clone(),
        health: fleet.health.clone(),
        uploads: fleet.home.gateway_uploads_dir(),
    };
    let gateway = match Gateway::start(parts, addr).await {
        Ok(g) => g,
        Err(e) => {
            dispatcher.shutdown().await;
            return Err(e.into());
        }
    };
    println!(
        "ComfyUI-compatible gateway at http://{} — point ComfyUI clients at it. Ctrl-C to stop.",
        gateway.local_addr()
    );
    if !addr.ip().is_loopback() {
        eprintln!(
            "Note: it is open beyond this computer: whoever reaches it can queue jobs on your fleet, cloud backends \
             included (within your spending caps)."
        );
    }
    let waited = tokio::signal::ctrl_c().await;
    gateway.stop().await;
    dispatcher.shutdown().await;
    waited.map_err(|e| CliError(format!("could not wait for Ctrl-C: {e}")))?;
    println!("Gateway stopped.");
    Ok(Outcome::Ok)
}
