//! RunPod serverless following: how soon a job's completion is seen after it turns COMPLETED, and how many
//! status requests a job costs, for 5 s and 60 s jobs on the fake RunPod (warm worker, real HTTP on loopback).
//! The follower knows the expected run time after the first job (as the router learns it), so long jobs are
//! looked at less often until they are near their end.
//!
//! Run: cargo bench -p comfyfleet-core --bench runpod   (JOBS=N per length, default 3; about 4 minutes)

use std::time::{Duration, Instant};

use comfyfleet_core::runpod::client::{JobEnd, ServerlessClient};
use comfyfleet_core::runpod::serverless::run_body;
use comfyfleet_core::runpod::RunpodUrls;
use comfyfleet_core::secrets::Secret;
use comfyfleet_testkit::runpod::DEFAULT_API_KEY;
use comfyfleet_testkit::{EndpointConfig, FakeRunpod, FakeRunpodConfig, OutputFlavour};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let jobs: usize = std::env::var("JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let endpoint = |id: &str, secs: u64| EndpointConfig {
        workers: 1,
        cold_start: Duration::from_millis(0),
        exec_time: Duration::from_secs(secs),
        idle_timeout: Duration::from_secs(600),
        output: OutputFlavour::Base64,
        ..EndpointConfig::new(id)
    };
    let fake = FakeRunpod::start(FakeRunpodConfig {
        endpoints: vec![endpoint("ep-5s", 5), endpoint("ep-60s", 60)],
        ..FakeRunpodConfig::default()
    })
    .await;
    let urls = RunpodUrls {
        serverless: format!("{}/v2", fake.url()),
        rest: format!("{}/v2", fake.url()),
        proxy: fake.proxy_url_template(),
    };
    let workflow = serde_json::json!({
        "3": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 1}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "b"}}
    });
    println!("runpod benchmark: {jobs} jobs each of 5 s and 60 s");
    for (ep, secs) in [("ep-5s", 5u64), ("ep-60s", 60)] {
        let client = ServerlessClient::new(
            comfyfleet_core::downloads::http_client(),
            &urls,
            ep,
            Secret::new(DEFAULT_API_KEY),
        );
        let (mut lags, mut requests) = (Vec::new(), Vec::new());
        let mut expected_ms = 0;
        for i in 0..jobs {
            // Lengths off the one-second grid (5.0, 5.33, 5.67 s …), as real jobs are.
            let len = Duration::from_millis(secs * 1000 + (i as u64 % 3) * 333);
            fake.set_config(|c| {
                for e in &mut c.endpoints {
                    if e.id == ep {
                        e.exec_time = len;
                    }
                }
            });
            let before = client.polls.load(std::sync::atomic::Ordering::Relaxed);
            let sent = Instant::now();
            let queued = client.run(run_body(&workflow, &[]).unwrap()).await.unwrap();
            let end = client
                .follow(
                    &queued.id,
                    expected_ms,
                    tokio::sync::watch::channel(false).1,
                    |_| {},
                )
                .await
                .unwrap();
            let seen = sent.elapsed();
            let JobEnd::Completed {
                delay_ms,
                execution_ms,
                ..
            } = end
            else {
                panic!("{end:?}");
            };
            // RunPod's own figures say when it turned COMPLETED, counted from the send.
            let done_at = Duration::from_millis(delay_ms.unwrap_or(0) + execution_ms.unwrap_or(0));
            lags.push(seen.saturating_sub(done_at));
            requests.push(client.polls.load(std::sync::atomic::Ordering::Relaxed) - before);
            expected_ms = execution_ms.unwrap_or(0) + delay_ms.unwrap_or(0);
        }
        let worst = lags.iter().max().unwrap();
        let mean_lag = lags.iter().map(Duration::as_secs_f64).sum::<f64>() / lags.len() as f64;
        let mean_req = requests.iter().sum::<u64>() as f64 / requests.len() as f64;
        println!(
            "{secs} s jobs: completion seen {:.0} ms after it happened on average, {:.0} ms at worst (target ≤ 1000 ms); {mean_req:.1} status requests per job = {:.2} per second of job (target ≈ ≤ 1); per job: {requests:?}",
            mean_lag * 1000.0,
            worst.as_secs_f64() * 1000.0,
            mean_req / secs as f64
        );
    }
}
