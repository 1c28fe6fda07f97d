//! Router overhead: 1,000 jobs through the dispatcher to testkit ComfyUIs that execute instantly,
//! against posting the same prompts directly (POST /prompt, then wait for the end on one WebSocket
//! kept open, the fastest a client can do).
//! Prints the added latency p50/p99 (sequential jobs; each percentile of the dispatcher's
//! submit-to-finished time, outputs saved in the gallery included, minus the same percentile of the
//! direct path) and jobs per second (1,000 queued at once). JOBS=N changes the count.
//! Run: cargo bench -p comfyfleet-core --bench router_overhead

use std::time::{Duration, Instant};

use comfyfleet_core::comfyui::feed::Feed;
use comfyfleet_core::comfyui::follow::{run_prompt, RunOutcome};
use comfyfleet_core::comfyui::{http_client, ComfyClient, Prompt};
use comfyfleet_core::dispatcher::Dispatcher;
use comfyfleet_core::home::AppHome;
use comfyfleet_core::jobs::{JobState, NewJob};
use comfyfleet_core::router::{Policy, RouterConfig};
use comfyfleet_core::servers::ServerInput;
use comfyfleet_core::Fleet;
use comfyfleet_testkit::{FakeComfy, FakeComfyConfig};

fn workflow(i: u32) -> serde_json::Value {
    serde_json::json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": i}},
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}
    })
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let n: u32 = std::env::var("JOBS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1000);
        let fakes = [
            FakeComfy::start(FakeComfyConfig {
                exec_time: Duration::ZERO,
                ..Default::default()
            })
            .await,
            FakeComfy::start(FakeComfyConfig {
                exec_time: Duration::ZERO,
                ..Default::default()
            })
            .await,
            FakeComfy::start(FakeComfyConfig {
                exec_time: Duration::ZERO,
                ..Default::default()
            })
            .await,
        ];
        let dir = tempfile::tempdir().unwrap();
        let fleet = Fleet::open(AppHome::at(dir.path()).unwrap()).unwrap();
        for (i, f) in fakes.iter().enumerate() {
            fleet
                .servers
                .add(ServerInput {
                    name: format!("S{i}"),
                    url: f.url(),
                    ..Default::default()
                })
                .await
                .unwrap();
        }
        fleet.health.test_all(true).await.unwrap();

        // 1. Direct: one prompt at a time to one server.
        let feed = Feed::new(ComfyClient::new(http_client(), &fakes[0].url(), None));
        let mut direct = Vec::new();
        for i in 0..n {
            let (_tx, rx) = tokio::sync::watch::channel(false);
            let t = Instant::now();
            let out = run_prompt(
                &feed,
                Prompt::of(&workflow(i)),
                &uuid::Uuid::new_v4().to_string(),
                Duration::from_secs(30),
                rx,
                |_| {},
            )
            .await
            .unwrap();
            assert!(matches!(out, RunOutcome::Succeeded { .. }));
            direct.push(t.elapsed().as_secs_f64() * 1000.0);
        }

        // 2. Through the dispatcher, one job at a time (latency).
        let d = Dispatcher::start(
            fleet.store.clone(),
            fleet.servers.clone(),
            fleet.health.clone(),
            fleet.home.gallery_dir(),
            RouterConfig {
                policy: Policy::LeastBusy,
                ..Default::default()
            },
        );
        let mut routed = Vec::new();
        for i in 0..n {
            let t = Instant::now();
            let job = d
                .submit(NewJob::new("bench", workflow(n + i)))
                .await
                .unwrap();
            let done = d.wait(&job.id).await.unwrap();
            assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
            routed.push(t.elapsed().as_secs_f64() * 1000.0);
        }

        // 3. Throughput: all at once.
        let t = Instant::now();
        let mut ids = Vec::new();
        for i in 0..n {
            ids.push(
                d.submit(NewJob::new("burst", workflow(3 * n + i)))
                    .await
                    .unwrap()
                    .id,
            );
        }
        for id in &ids {
            let done = d.wait(id).await.unwrap();
            assert_eq!(done.state, JobState::Succeeded);
        }
        let jobs_per_s = n as f64 / t.elapsed().as_secs_f64();

        let (d50, d99) = (
            pct(&mut direct.clone(), 0.5),
            pct(&mut direct.clone(), 0.99),
        );
        let (r50, r99) = (
            pct(&mut routed.clone(), 0.5),
            pct(&mut routed.clone(), 0.99),
        );
        println!("{n} jobs, 3 testkit servers, zero execution time");
        println!("direct     p50 {d50:.2} ms  p99 {d99:.2} ms");
        println!("dispatcher p50 {r50:.2} ms  p99 {r99:.2} ms");
        println!(
            "added latency p50 {:.2} ms  p99 {:.2} ms (target p99 < 5 ms)",
            r50 - d50,
            r99 - d99
        );
        println!("throughput {jobs_per_s:.0} jobs/s with {n} queued at once (target >= 500)");
    });
}
