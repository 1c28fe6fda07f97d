//! Gateway overhead: prompts sent by a ComfyUI client (ComfyFleet's own: POST /prompt, then the end heard on one
//! WebSocket kept open) straight to a testkit ComfyUI that executes instantly, against the same prompts sent to the
//! gateway in front of a fleet holding that ComfyUI. Prints the added latency p50/p99 (one prompt at a time; the
//! gateway's path includes the fleet's queue, routing, saving outputs in the gallery and ComfyUI's messages back) and
//! prompts per second through the gateway with all queued at once. PROMPTS=N changes the count (default 300).
//! Run: cargo bench -p comfyfleet-core --bench gateway

use std::time::{Duration, Instant};

use comfyfleet_core::comfyui::feed::Feed;
use comfyfleet_core::comfyui::follow::{run_prompt, RunOutcome};
use comfyfleet_core::comfyui::{http_client, ComfyClient, Prompt};
use comfyfleet_core::gateway::{Gateway, GatewayParts};
use comfyfleet_core::home::AppHome;
use comfyfleet_core::servers::ServerInput;
use comfyfleet_core::Fleet;
use comfyfleet_testkit::{FakeComfy, FakeComfyConfig};

fn workflow(i: u32) -> serde_json::Value {
    serde_json::json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": i}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "bench"}}
    })
}

fn pct(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// One prompt at a time through `feed`, each followed to its end; milliseconds per prompt.
async fn sequential(feed: &Feed, n: u32, offset: u32) -> Vec<f64> {
    let mut times = Vec::new();
    for i in 0..n {
        let (_tx, rx) = tokio::sync::watch::channel(false);
        let t = Instant::now();
        let out = run_prompt(
            feed,
            Prompt::of(&workflow(offset + i)),
            &uuid::Uuid::new_v4().to_string(),
            Duration::from_secs(30),
            rx,
            |_| {},
        )
        .await
        .unwrap();
        assert!(matches!(out, RunOutcome::Succeeded { .. }), "{out:?}");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let n: u32 = std::env::var("PROMPTS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(300);
        let comfy = FakeComfy::start(FakeComfyConfig {
            exec_time: Duration::ZERO,
            ..Default::default()
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let home = AppHome::at(dir.path()).unwrap();
        let uploads = home.gateway_uploads_dir();
        let fleet = Fleet::open(home).unwrap();
        fleet
            .servers
            .add(ServerInput {
                name: "Render".into(),
                url: comfy.url(),
                ..Default::default()
            })
            .await
            .unwrap();
        fleet.servers.activate(Some("Render")).await.unwrap();
        fleet.health.test_all(true).await.unwrap();
        let dispatcher = fleet.start_dispatcher().await;
        let gateway = Gateway::start(
            GatewayParts {
                dispatcher: dispatcher.clone(),
                jobs: fleet.jobs.clone(),
                servers: fleet.servers.clone(),
                health: fleet.health.clone(),
                uploads,
            },
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .unwrap();
        let gateway_url = format!("http://{}", gateway.local_addr());

        let direct_feed = Feed::new(ComfyClient::new(http_client(), &comfy.url(), None));
        let gateway_feed = Feed::new(ComfyClient::new(http_client(), &gateway_url, None));
        // Warm both paths (connections, the database's first pages).
        sequential(&direct_feed, 10, 1_000_000).await;
        sequential(&gateway_feed, 10, 2_000_000).await;
        let direct = sequential(&direct_feed, n, 0).await;
        let through = sequential(&gateway_feed, n, n).await;

        // Throughput: all queued at once by one client, then each followed to its end.
        let t = Instant::now();
        let mut runs = Vec::new();
        for i in 0..n {
            let feed = gateway_feed.clone();
            runs.push(tokio::spawn(async move {
                let (_tx, rx) = tokio::sync::watch::channel(false);
                run_prompt(
                    &feed,
                    Prompt::of(&workflow(3 * n + i)),
                    &uuid::Uuid::new_v4().to_string(),
                    Duration::from_secs(120),
                    rx,
                    |_| {},
                )
                .await
                .map(|o| matches!(o, RunOutcome::Succeeded { .. }))
            }));
        }
        for r in runs {
            assert!(r.await.unwrap().unwrap());
        }
        let per_s = n as f64 / t.elapsed().as_secs_f64();

        let (d50, d99) = (pct(&direct, 0.5), pct(&direct, 0.99));
        let (g50, g99) = (pct(&through, 0.5), pct(&through, 0.99));
        println!(
            "{n} prompts, one testkit ComfyUI, zero execution time, ComfyFleet's ComfyUI client"
        );
        println!("direct   p50 {d50:.2} ms  p99 {d99:.2} ms");
        println!("gateway  p50 {g50:.2} ms  p99 {g99:.2} ms");
        println!(
            "added by the gateway p50 {:.2} ms  p99 {:.2} ms",
            g50 - d50,
            g99 - d99
        );
        println!("throughput through the gateway: {per_s:.0} prompts/s with {n} queued at once");
        gateway.stop().await;
        dispatcher.shutdown().await;
    });
}
