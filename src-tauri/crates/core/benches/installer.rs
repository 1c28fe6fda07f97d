//! Installer benchmarks against testkit's install host on loopback:
//! 1. the system check and plan the wizard shows (`Installer::check`: system facts, GPU, disk, the manifest, the
//!    plan, the Python and port checks), median and worst of ROUNDS runs — target under 200 ms;
//! 2. a rerun of a completed install (every step found done, the local server already running), median and worst
//!    of ROUNDS reruns — target under 2 s.
//!
//! Run: cargo bench -p comfyfleet-core --bench installer   (ROUNDS=N changes the count; the first install, with
//! a real venv and pip, takes about 15 s and is not measured).

use std::time::{Duration, Instant};

use comfyfleet_core::downloads::Downloads;
use comfyfleet_core::home::AppHome;
use comfyfleet_core::installer::run::{InstallEnv, Installer};
use comfyfleet_core::installer::status::{InstallRequest, InstallState, StepState};
use comfyfleet_core::local::LocalServer;
use comfyfleet_core::Fleet;
use comfyfleet_testkit::{InstallHost, InstallHostConfig};

fn stats(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (ms(v[v.len() / 2]), ms(*v.last().unwrap()))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let host = InstallHost::start(InstallHostConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let fleet = Fleet::open(AppHome::at(dir.path().join("home")).unwrap()).unwrap();
    let local = LocalServer::new(fleet.store.clone(), fleet.home.clone());
    let installer = Installer::new(InstallEnv::new(
        &fleet,
        local.clone(),
        Downloads::new(fleet.store.clone(), Default::default()),
    ));
    let port = comfyfleet_testkit::stable_port();
    let req = InstallRequest {
        install_path: dir.path().join("ComfyUI").display().to_string(),
        packs: vec!["tiny".into()],
        manifest: Some(host.manifest_url()),
        port: Some(port),
        ..Default::default()
    };
    println!(
        "installer benchmark: manifest {}, {rounds} rounds",
        host.manifest_url()
    );

    // The wizard's first check in a fresh process also looks for the system Python (then remembered).
    let t = Instant::now();
    let python = std::process::Command::new("python3")
        .args(["-c", "pass"])
        .status();
    let python_start = t.elapsed();
    let t = Instant::now();
    let first = installer.check(&req).await;
    let cold = t.elapsed();
    assert!(first.plan.is_some(), "{:?}", first.plan_error);
    println!(
        "system check + plan, first in this process: {:.1} ms (of which starting python3 alone takes {:.1} ms here{})",
        cold.as_secs_f64() * 1000.0,
        python_start.as_secs_f64() * 1000.0,
        if python.is_ok() { "" } else { ", not found" }
    );
    let mut checks = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let check = installer.check(&req).await;
        checks.push(t.elapsed());
        assert!(check.plan.is_some(), "{:?}", check.plan_error);
    }
    let (median, worst) = stats(checks);
    println!("system check + plan: median {median:.1} ms, worst {worst:.1} ms (target < 200 ms)");

    let first = installer.install(req.clone()).await.unwrap();
    assert_eq!(first.state, InstallState::Done, "{:?}", first.error);
    let mut reruns = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let again = installer.install(req.clone()).await.unwrap();
        reruns.push(t.elapsed());
        assert!(again.steps.iter().all(|s| s.state == StepState::Skipped));
    }
    let (median, worst) = stats(reruns);
    println!(
        "rerun of a completed install: median {median:.1} ms, worst {worst:.1} ms (target < 2000 ms)"
    );
    let _ = local.stop().await;
}
