//! The RunPod serverless client against testkit's fake RunPod (worker-comfyui behaviour, real HTTP on loopback):
//! each job state path, each output format, validation text, cancel, 429 back-off, oversize input refused before
//! sending, a refused key.

use std::time::Duration;

use comfyfleet_core::runpod::client::{JobEnd, JobEvent, RunpodError, ServerlessClient};
use comfyfleet_core::runpod::serverless::{run_body, InputImage, OutputFile};
use comfyfleet_core::runpod::RunpodUrls;
use comfyfleet_core::secrets::Secret;
use comfyfleet_testkit::runpod::{Fault, Target, DEFAULT_API_KEY};
use comfyfleet_testkit::{EndpointConfig, FakeRunpod, FakeRunpodConfig, OutputFlavour};
use serde_json::{json, Value};
use tokio::sync::watch;

use comfyfleet_core::dispatcher::Dispatcher;
use comfyfleet_core::health::Status;
use comfyfleet_core::jobs::{JobState, NewJob};
use comfyfleet_core::router::{Policy, RouterConfig};
use comfyfleet_core::servers::{Flavour, RunpodEndpoint, ServerInput, ServerKind};
use comfyfleet_testkit::{FakeComfy, FakeComfyConfig};

use crate::support::{all_file_bytes, contains, TestFleet};

fn endpoint(id: &str, output: OutputFlavour, exec_ms: u64) -> EndpointConfig {
    EndpointConfig {
        workers: 1,
        cold_start: Duration::from_millis(1500),
        exec_time: Duration::from_millis(exec_ms),
        output,
        ..EndpointConfig::new(id)
    }
}

async fn fake() -> FakeRunpod {
    FakeRunpod::start(FakeRunpodConfig {
        endpoints: vec![
            endpoint("ep-b64", OutputFlavour::Base64, 1200),
            endpoint("ep-s3", OutputFlavour::S3Url, 1200),
            endpoint("ep-legacy", OutputFlavour::Legacy, 1200),
            endpoint("ep-slow", OutputFlavour::Base64, 60_000),
        ],
        ..FakeRunpodConfig::default()
    })
    .await
}

fn urls(fake: &FakeRunpod) -> RunpodUrls {
    RunpodUrls {
        serverless: format!("{}/v2", fake.url()),
        rest: format!("{}/v2", fake.url()),
        proxy: fake.proxy_url_template(),
    }
}

fn client(fake: &FakeRunpod, ep: &str) -> ServerlessClient {
    ServerlessClient::new(
        comfyfleet_core::downloads::http_client(),
        &urls(fake),
        ep,
        Secret::new(DEFAULT_API_KEY),
    )
}

fn workflow() -> Value {
    json!({
        "3": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 48, "batch_size": 1, "color": 0x00ff00}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "ComfyUI"}}
    })
}

fn running() -> watch::Receiver<bool> {
    watch::channel(false).1
}

async fn run_to_end(c: &ServerlessClient, wf: &Value) -> (JobEnd, Vec<JobEvent>) {
    let queued = c.run(run_body(wf, &[]).unwrap()).await.unwrap();
    let mut events = Vec::new();
    let end = c
        .follow(&queued.id, 0, running(), |e| events.push(e))
        .await
        .unwrap();
    (end, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runpod_jobs_wake_a_worker_run_and_return_images_in_every_output_format() {
    let fake = fake().await;
    for ep in ["ep-b64", "ep-s3", "ep-legacy"] {
        let c = client(&fake, ep);
        let (end, events) = run_to_end(&c, &workflow()).await;
        // A cold endpoint: queued while a worker wakes, then running.
        assert!(
            matches!(events.first(), Some(JobEvent::Queued { .. })),
            "{ep}: {events:?}"
        );
        assert!(events.contains(&JobEvent::Running), "{ep}: {events:?}");
        let JobEnd::Completed {
            outputs,
            delay_ms,
            execution_ms,
        } = end
        else {
            panic!("{ep}: {end:?}");
        };
        assert!(
            delay_ms.unwrap() >= 500,
            "{ep}: the cold start is in the delay ({delay_ms:?})"
        );
        assert!(execution_ms.unwrap() >= 250, "{ep}: {execution_ms:?}");
        assert_eq!(outputs.len(), 1, "{ep}");
        if ep == "ep-s3" {
            assert!(matches!(outputs[0], OutputFile::Url { .. }));
        }
        let png = c.fetch_output(&outputs[0], 1 << 20).await.unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{ep}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runpod_failures_reach_the_user_readably() {
    let fake = fake().await;
    let c = client(&fake, "ep-b64");
    // worker-comfyui's validation text, as the worker wrote it.
    let bad = json!({"4": {"class_type": "NoSuchNode", "inputs": {}}, "9": {"class_type": "SaveImage", "inputs": {"images": ["4", 0]}}});
    let (end, _) = run_to_end(&c, &bad).await;
    let JobEnd::Failed { message, .. } = end else {
        panic!("{end:?}")
    };
    assert!(
        message.contains("Workflow validation failed") && message.contains("Node 4"),
        "{message}"
    );
    // An uncaught exception in the handler: its type and message, not the JSON.
    fake.set_fault(Fault::JobRuntimeError {
        endpoint: "ep-b64".into(),
        times: 1,
    });
    let (end, _) = run_to_end(&c, &workflow()).await;
    let JobEnd::Failed { message, .. } = end else {
        panic!("{end:?}")
    };
    assert!(
        !message.starts_with('{') && message.contains(':'),
        "{message}"
    );
    // A job that never ends is stopped by RunPod at its execution timeout.
    fake.set_config(|cfg| {
        for e in &mut cfg.endpoints {
            e.execution_timeout = Duration::from_millis(1500);
        }
    });
    fake.set_fault(Fault::JobHangs {
        endpoint: "ep-b64".into(),
        times: 1,
    });
    let (end, _) = run_to_end(&c, &workflow()).await;
    assert!(matches!(end, JobEnd::TimedOut { .. }), "{end:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runpod_cancel_stops_the_job_on_runpod() {
    let fake = fake().await;
    let c = client(&fake, "ep-slow");
    let queued = c.run(run_body(&workflow(), &[]).unwrap()).await.unwrap();
    let (tx, rx) = watch::channel(false);
    let follower = {
        let c = c.clone();
        let id = queued.id.clone();
        tokio::spawn(async move { c.follow(&id, 0, rx, |_| {}).await })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    tx.send(true).unwrap();
    let end = tokio::time::timeout(Duration::from_secs(5), follower)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(end, JobEnd::Cancelled);
    assert_eq!(fake.job(&queued.id).unwrap().status.as_str(), "CANCELLED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runpod_backs_off_on_429_and_refuses_oversize_input_before_sending() {
    let fake = fake().await;
    let c = client(&fake, "ep-b64");
    fake.set_fault(Fault::RateLimited {
        target: Target::endpoint("ep-b64"),
        times: 2,
    });
    let started = std::time::Instant::now();
    let (end, _) = run_to_end(&c, &workflow()).await;
    assert!(matches!(end, JobEnd::Completed { .. }), "{end:?}");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "waited as Retry-After said"
    );
    let limited = fake
        .requests()
        .iter()
        .filter(|r| r.status == Some(429))
        .count();
    assert_eq!(limited, 2);

    // 11 MB of image: refused here, with what to do; RunPod never sees it.
    fake.clear_requests();
    let big = InputImage {
        name: "big.png".into(),
        bytes: vec![7; 8_500_000],
    };
    let e = run_body(&workflow(), &[big]).unwrap_err().to_string();
    assert!(e.contains("at most 10 MB") && e.contains("smaller"), "{e}");
    assert!(fake.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runpod_refused_keys_and_unknown_endpoints_say_what_to_do_without_the_key() {
    let fake = fake().await;
    let wrong = ServerlessClient::new(
        comfyfleet_core::downloads::http_client(),
        &urls(&fake),
        "ep-b64",
        Secret::new("rpa_WRONG_KEY_abcdef"),
    );
    let e = wrong
        .run(run_body(&workflow(), &[]).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(e, RunpodError::Refused(_)), "{e}");
    assert!(
        e.to_string().contains("401") && !e.to_string().contains("rpa_WRONG"),
        "{e}"
    );
    let e = client(&fake, "ep-missing").health().await.unwrap_err();
    assert!(e.to_string().contains("ep-missing"), "{e}");
    let h = client(&fake, "ep-b64").health().await.unwrap();
    assert!(!h.warm(), "no worker is up before the first job: {h:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runpod_pods_are_created_reach_comfyui_through_the_proxy_stop_and_terminate() {
    use comfyfleet_core::runpod::pods::{PodPreset, PodsClient};
    use comfyfleet_testkit::runpod::SeededPod;
    let fake = FakeRunpod::start(FakeRunpodConfig {
        seeded_pods: vec![SeededPod::foreign("foreign01", "someone's notebook")],
        ..FakeRunpodConfig::default()
    })
    .await;
    let pods = PodsClient::new(
        comfyfleet_core::downloads::http_client(),
        urls(&fake),
        Secret::new(DEFAULT_API_KEY),
    );
    let pod = pods.create(&PodPreset::default()).await.unwrap();
    assert!(pod.cost_per_hr_micros > 0);
    let url = pods
        .wait_ready(&pod.id, Duration::from_secs(20))
        .await
        .unwrap();
    let stats: Value = reqwest::get(format!("{url}/system_stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(stats["system"]["comfyui_version"].is_string(), "{stats}");
    let running = pods.get(&pod.id).await.unwrap();
    assert_eq!(
        (running.status.as_str(), running.http_ports.clone()),
        ("RUNNING", vec![8188])
    );
    // The list has the app's pod and the foreign one; only ours is acted on.
    let ids: Vec<String> = pods
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert!(
        ids.contains(&pod.id) && ids.contains(&"foreign01".to_string()),
        "{ids:?}"
    );
    pods.action(&pod.id, "stop").await.unwrap();
    assert_eq!(pods.get(&pod.id).await.unwrap().status, "EXITED");
    pods.action(&pod.id, "terminate").await.unwrap();
    let e = pods.action(&pod.id, "stop").await.unwrap_err();
    assert!(
        e.to_string().contains("cannot do that") || e.to_string().contains("no pod"),
        "{e}"
    );
    assert!(fake
        .requests()
        .iter()
        .all(|r| r.pod_id() != Some("foreign01") || r.method == "GET"));
}

// ---- RunPod endpoints as servers of the router ----

/// A fleet with its own keychain service, so the RunPod key set here is this test's alone.
fn cloud_fleet(fake: &FakeRunpod) -> TestFleet {
    let dir = tempfile::tempdir().unwrap();
    let fleet = comfyfleet_core::Fleet::open_with(
        comfyfleet_core::home::AppHome::at(dir.path()).unwrap(),
        comfyfleet_core::secrets::Secrets::new(format!("comfyfleet-test-{}", uuid::Uuid::new_v4())),
    )
    .unwrap();
    fleet.servers.set_runpod_urls(urls(fake));
    TestFleet { fleet, dir }
}

fn endpoint_input(name: &str, id: &str, flavour: Flavour) -> ServerInput {
    ServerInput {
        name: name.into(),
        kind: ServerKind::RunpodServerless,
        runpod: Some(RunpodEndpoint {
            endpoint_id: id.into(),
            gpu_class: "ADA_24".into(),
            flavour,
            extra_models: vec![],
        }),
        ..Default::default()
    }
}

/// A fake RunPod with this one endpoint, a fleet with the RunPod key set, and the endpoint in its server list
/// (named after its id).
async fn with_endpoint(
    ep: EndpointConfig,
    flavour: Flavour,
) -> (FakeRunpod, TestFleet, comfyfleet_core::servers::Server) {
    let id = ep.id.clone();
    let fake = FakeRunpod::start(FakeRunpodConfig {
        endpoints: vec![ep],
        ..FakeRunpodConfig::default()
    })
    .await;
    let t = cloud_fleet(&fake);
    t.fleet
        .runpod_account()
        .set(&Secret::new(DEFAULT_API_KEY))
        .await
        .unwrap();
    let server = t
        .fleet
        .servers
        .add(endpoint_input(&id, &id, flavour))
        .await
        .unwrap();
    (fake, t, server)
}

/// A fake ComfyUI in the list as "Local", tagged local; answers it and its server id.
async fn local_server(t: &TestFleet, cfg: FakeComfyConfig) -> (FakeComfy, String) {
    let local = FakeComfy::start(cfg).await;
    let mut input = ServerInput {
        name: "Local".into(),
        url: local.url(),
        ..Default::default()
    };
    input.tags = vec!["local".into()];
    let id = t.fleet.servers.add(input).await.unwrap().id;
    (local, id)
}

fn start(t: &TestFleet, policy: Policy) -> Dispatcher {
    Dispatcher::start(
        t.fleet.store.clone(),
        t.fleet.servers.clone(),
        t.fleet.health.clone(),
        t.fleet.home.gallery_dir(),
        RouterConfig {
            policy,
            local_queue_threshold: 5,
            ..Default::default()
        },
    )
}

async fn finish(d: &Dispatcher, id: &str) -> comfyfleet_core::jobs::Job {
    tokio::time::timeout(Duration::from_secs(60), d.wait(id))
        .await
        .expect("the job finished in time")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runpod_endpoints_in_the_server_list_run_jobs_with_outputs_billed_timings_and_a_waking_note(
) {
    let fake = FakeRunpod::start(FakeRunpodConfig {
        endpoints: vec![EndpointConfig {
            workers: 1,
            cold_start: Duration::from_millis(1500),
            exec_time: Duration::from_millis(700),
            output: OutputFlavour::S3Url,
            ..EndpointConfig::new("ep-sdxl")
        }],
        ..FakeRunpodConfig::default()
    })
    .await;
    let t = cloud_fleet(&fake);
    let server = t
        .fleet
        .servers
        .add(endpoint_input("Cloud SDXL", "ep-sdxl", Flavour::Sdxl))
        .await
        .unwrap();
    assert_eq!(server.url, "https://api.runpod.ai/v2/ep-sdxl");
    assert!(server.is_cloud());
    t.fleet.servers.activate(Some(&server.id)).await.unwrap();

    // Without a key the endpoint says how to fix it, and no job is sent there.
    let st = t.fleet.health.test(&server.id, true).await.unwrap();
    assert_eq!(st.status, Status::AuthFailed, "{st:?}");
    assert!(
        st.error.as_deref().unwrap().contains("runpod key set"),
        "{st:?}"
    );

    t.fleet
        .runpod_account()
        .set(&Secret::new(DEFAULT_API_KEY))
        .await
        .unwrap();
    let st = t.fleet.health.test(&server.id, true).await.unwrap();
    assert_eq!(st.status, Status::Connected, "{st:?}");
    let workers = st.workers.expect("an endpoint reports its workers");
    assert!(!workers.warm(), "no worker is up before the first job");
    assert_eq!(st.queue.map(|q| (q.running, q.pending)), Some((0, 0)));

    let d = start(&t, Policy::Manual);
    let job = d.submit(NewJob::new("cloud", workflow())).await.unwrap();
    // During the 1.5 s cold start the job says a worker is waking (what the UI shows instead of a still 0 %).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let j = t.fleet.jobs.get(&job.id).await.unwrap();
        if j.waking {
            assert_eq!(j.state, JobState::Dispatched);
            break;
        }
        assert!(
            j.state != JobState::Succeeded && std::time::Instant::now() < deadline,
            "never seen waking: {j:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let done = finish(&d, &job.id).await;
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
    assert!(!done.waking);
    assert_eq!(done.server_id.as_deref(), Some(server.id.as_str()));
    // The job is known on RunPod under the id RunPod gave it.
    let remote = done.remote_id.clone().unwrap();
    assert!(fake.job(&remote).is_some(), "{remote} is a RunPod job id");
    // What RunPod bills: the cold start is in the wait, the run in the execution time.
    assert!(done.delay_ms.unwrap() >= 1000, "{:?}", done.delay_ms);
    assert!(done.execution_ms.unwrap() >= 500, "{:?}", done.execution_ms);
    assert!(
        done.notes.iter().any(|n| n.contains("waking a worker")),
        "{:?}",
        done.notes
    );
    assert_eq!(done.outputs.len(), 1);
    let png = std::fs::read(&done.outputs[0].path).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert!(std::path::Path::new(&done.outputs[0].path).starts_with(t.fleet.home.gallery_dir()));

    // A workflow needing a model the flavour lacks is refused with the model named, before anything is sent.
    let runs_before = fake
        .requests()
        .iter()
        .filter(|r| r.path_only().ends_with("/run"))
        .count();
    let sd15 = json!({
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "x"}}
    });
    let refused = finish(&d, &d.submit(NewJob::new("sd15", sd15)).await.unwrap().id).await;
    assert_eq!(refused.state, JobState::Failed);
    assert!(
        refused
            .error
            .as_deref()
            .unwrap()
            .contains("v1-5-pruned-emaonly"),
        "{:?}",
        refused.error
    );
    // Validation text from the worker reaches the job's error.
    let bad = json!({"4": {"class_type": "NoSuchNode", "inputs": {}}, "9": {"class_type": "SaveImage", "inputs": {"images": ["4", 0]}}});
    let failed = finish(&d, &d.submit(NewJob::new("bad", bad)).await.unwrap().id).await;
    assert_eq!(failed.state, JobState::Failed);
    assert!(
        failed
            .error
            .as_deref()
            .unwrap()
            .contains("Workflow validation failed"),
        "{:?}",
        failed.error
    );
    let runs_after = fake
        .requests()
        .iter()
        .filter(|r| r.path_only().ends_with("/run"))
        .count();
    assert_eq!(
        runs_after - runs_before,
        1,
        "only the runnable workflow was sent"
    );
    d.shutdown().await;

    // The key is in the keychain only: no file under the app home holds it.
    for (path, bytes) in all_file_bytes(t.dir.path()) {
        assert!(
            !contains(&bytes, DEFAULT_API_KEY),
            "{} holds the key",
            path.display()
        );
    }
    t.fleet.runpod_account().remove().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runpod_local_first_overflows_to_the_endpoint_only_past_the_local_queue_threshold_or_when_local_is_down(
) {
    let (_fake, t, cloud) = with_endpoint(
        EndpointConfig {
            cold_start: Duration::from_millis(200),
            exec_time: Duration::from_millis(100),
            ..EndpointConfig::new("ep-over")
        },
        Flavour::Base,
    )
    .await;
    let cloud_id = cloud.id;
    let (local, local_id) = local_server(
        &t,
        FakeComfyConfig {
            exec_time: Duration::from_millis(50),
            ..Default::default()
        },
    )
    .await;
    let d = start(&t, Policy::LocalFirst);
    let run = async |name: &str| {
        t.fleet.health.test_all(true).await.unwrap();
        let job = d.submit(NewJob::new(name, workflow())).await.unwrap();
        let done = finish(&d, &job.id).await;
        assert_eq!(done.state, JobState::Succeeded, "{name}: {:?}", done.error);
        done.server_id.unwrap()
    };

    assert_eq!(run("room locally").await, local_id);
    // Others' jobs fill the local queue up to the threshold (5): the next job overflows to the cloud.
    local.set_config(|c| c.queue_pending = 4);
    assert_eq!(run("still room").await, local_id);
    local.set_config(|c| c.queue_pending = 5);
    assert_eq!(run("local full").await, cloud_id);
    local.set_config(|c| c.queue_pending = 0);
    assert_eq!(run("room again").await, local_id);
    // Local down: the cloud takes the job.
    local.kill();
    assert_eq!(run("local down").await, cloud_id);
    d.shutdown().await;
    t.fleet.runpod_account().remove().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runpod_endpoint_jobs_cancelled_in_the_app_are_cancelled_on_runpod_and_stop_costing() {
    let (fake, t, server) = with_endpoint(
        EndpointConfig {
            cold_start: Duration::from_millis(100),
            exec_time: Duration::from_secs(60),
            ..EndpointConfig::new("ep-long")
        },
        Flavour::Base,
    )
    .await;
    t.fleet.servers.activate(Some(&server.id)).await.unwrap();
    let d = start(&t, Policy::Manual);
    let job = d.submit(NewJob::new("long", workflow())).await.unwrap();
    // Running on RunPod, under RunPod's job id.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let remote = loop {
        let j = t.fleet.jobs.get(&job.id).await.unwrap();
        if j.state == JobState::Running {
            break j.remote_id.unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the job never started: {j:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    d.cancel(&job.id).await.unwrap();
    let done = finish(&d, &job.id).await;
    assert_eq!(done.state, JobState::Cancelled);
    assert_eq!(
        fake.job(&remote).map(|j| j.status),
        Some(comfyfleet_testkit::runpod::JobStatus::Cancelled),
        "RunPod was told to cancel it"
    );
    d.shutdown().await;
    t.fleet.runpod_account().remove().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runpod_spending_cap_lets_at_most_its_budget_of_100_jobs_reach_the_cloud_and_sends_the_rest_local(
) {
    use comfyfleet_core::costs::{Caps, Costs};
    let (_fake, t, cloud) = with_endpoint(
        EndpointConfig {
            workers: 100,
            cold_start: Duration::ZERO,
            exec_time: Duration::from_secs(1),
            ..EndpointConfig::new("ep-capped")
        },
        Flavour::Base,
    )
    .await;
    let cloud_id = cloud.id;
    // The local GPU is busy with others' work (queue at the threshold): local first overflows to the cloud.
    let (_local, local_id) = local_server(
        &t,
        FakeComfyConfig {
            exec_time: Duration::from_millis(5),
            queue_pending: 5,
            ..Default::default()
        },
    )
    .await;
    // Today's budget: exactly ten estimates of a job on this endpoint, cold and not measured yet.
    let estimate = comfyfleet_core::dispatcher::cloud_estimate_micros("ADA_24", None, true);
    let costs = Costs::new(t.fleet.store.clone());
    costs
        .set_caps(Caps {
            daily_micros: 10 * estimate,
            monthly_micros: 1_000 * estimate,
        })
        .await
        .unwrap();
    t.fleet.health.test_all(true).await.unwrap();
    // 100 jobs at once, all in the queue before the first dispatch round.
    let mut ids = Vec::new();
    for i in 0..100 {
        let job = t
            .fleet
            .jobs
            .submit(
                NewJob::new(format!("burst {i}"), workflow()),
                comfyfleet_core::now_ms(),
            )
            .await
            .unwrap();
        ids.push(job.id);
    }
    let d = Dispatcher::start(
        t.fleet.store.clone(),
        t.fleet.servers.clone(),
        t.fleet.health.clone(),
        t.fleet.home.gallery_dir(),
        RouterConfig {
            policy: Policy::LocalFirst,
            local_queue_threshold: 5,
            max_in_flight: 100,
            ..Default::default()
        },
    );
    // What the user is told at once (the app shows these as notifications).
    let notices = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    {
        let mut rx = d.subscribe();
        let notices = notices.clone();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(comfyfleet_core::dispatcher::JobUpdate::Notice { message, .. }) => {
                        notices.lock().unwrap().push(message)
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => break,
                }
            }
        });
    }
    let (mut on_cloud, mut warned) = (0, false);
    for id in &ids {
        let done = finish(&d, id).await;
        assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
        match done.server_id.as_deref() {
            Some(s) if s == cloud_id => {
                on_cloud += 1;
                warned |= done
                    .notes
                    .iter()
                    .any(|n| n.contains("of today's cloud spending limit is used"));
            }
            Some(s) => {
                assert_eq!(s, local_id);
                assert!(
                    done.notes
                        .iter()
                        .any(|n| n.starts_with("Daily cloud spending limit reached")),
                    "a job kept local says why: {:?}",
                    done.notes
                );
            }
            None => panic!("{done:?}"),
        }
    }
    d.shutdown().await;
    // Reservations are atomic: the budget held exactly ten, so exactly ten went; the other 90 ran locally.
    assert_eq!(on_cloud, 10, "{on_cloud} jobs went to the cloud");
    assert!(warned, "the job that took today's spend past 80% says so");
    let told = notices.lock().unwrap().clone();
    assert!(
        told.iter()
            .any(|m| m.contains("of today's cloud spending limit is used")),
        "the user is told at 80%: {told:?}"
    );
    // What was spent (RunPod's billed seconds) is within the cap, and every reservation was settled.
    let status = costs.cap_status(comfyfleet_core::now_ms()).await.unwrap();
    assert!(status.spent_today_micros > 0, "{status:?}");
    assert!(status.spent_today_micros <= 10 * estimate, "{status:?}");
    assert_eq!(status.reserved_today_micros, 0, "{status:?}");
    assert!(costs.reservations().await.unwrap().is_empty());
    t.fleet.runpod_account().remove().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runpod_reserved_spend_survives_a_crash_and_is_settled_once_by_the_next_dispatcher() {
    use comfyfleet_core::costs::Costs;
    let (_fake, t, server) = with_endpoint(
        EndpointConfig {
            cold_start: Duration::from_millis(100),
            exec_time: Duration::from_secs(4),
            ..EndpointConfig::new("ep-crash")
        },
        Flavour::Base,
    )
    .await;
    t.fleet.servers.activate(Some(&server.id)).await.unwrap();
    let costs = Costs::new(t.fleet.store.clone());
    // A reservation left by a job that no longer runs (the app died before sending it).
    costs
        .reserve("gone-job#1", &server.id, 1_000, comfyfleet_core::now_ms())
        .await
        .unwrap();
    let first = start(&t, Policy::Manual);
    let job = first
        .submit(NewJob::new("crash", workflow()))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while t.fleet.jobs.get(&job.id).await.unwrap().state != JobState::Running {
        assert!(std::time::Instant::now() < deadline, "never started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The app dies with the job on RunPod: its money stays reserved, the stale one is gone.
    first.stop();
    let held = costs.reservations().await.unwrap();
    assert_eq!(held.len(), 1, "{held:?}");
    assert!(held[0].job_id.starts_with(&job.id), "{held:?}");
    // The next dispatcher follows the job to its end and settles it once.
    let second = start(&t, Policy::Manual);
    let done = finish(&second, &job.id).await;
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
    second.shutdown().await;
    assert!(costs.reservations().await.unwrap().is_empty());
    let status = costs.cap_status(comfyfleet_core::now_ms()).await.unwrap();
    let entry = costs
        .ledger()
        .entry(&held[0].job_id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        entry.cost_micros > 0 && entry.billed_ms >= 4_000,
        "{entry:?}"
    );
    assert_eq!(status.spent_today_micros, entry.cost_micros, "counted once");
    t.fleet.runpod_account().remove().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runpod_estimates_before_run_give_each_servers_time_and_cost_and_where_auto_goes() {
    let (_fake, t, cloud) = with_endpoint(
        EndpointConfig {
            cold_start: Duration::from_millis(200),
            exec_time: Duration::from_millis(600),
            ..EndpointConfig::new("ep-est")
        },
        Flavour::Base,
    )
    .await;
    let cloud_id = cloud.id;
    let (_local, local_id) = local_server(&t, FakeComfyConfig::default()).await;
    t.fleet.servers.activate(Some(&local_id)).await.unwrap();
    t.fleet.health.test_all(true).await.unwrap();
    let d = start(&t, Policy::Manual);
    let est = d.estimates(&workflow()).await;
    let of = |id: &str| est.iter().find(|e| e.server_id == id).unwrap().clone();
    // Nothing measured yet: no time; the local GPU is free, the cold endpoint costs a wake-up and an assumed run.
    let (l, c) = (of(&local_id), of(&cloud_id));
    assert!(l.auto && !c.auto, "the active server: {est:?}");
    assert_eq!((l.time_secs, l.cost_micros), (None, Some(0)));
    assert!(c.cold, "{c:?}");
    assert_eq!(
        c.cost_micros,
        Some(comfyfleet_core::dispatcher::cloud_estimate_micros(
            "ADA_24", None, true
        ))
    );
    // One job on the endpoint teaches its speed: the next estimate is measured, and cheaper than the guess.
    let job = d
        .submit(NewJob {
            target: Some(cloud_id.clone()),
            ..NewJob::new("teach", workflow())
        })
        .await
        .unwrap();
    assert_eq!(finish(&d, &job.id).await.state, JobState::Succeeded);
    let after = d.estimates(&workflow()).await;
    let c2 = after.iter().find(|e| e.server_id == cloud_id).unwrap();
    assert!(c2.time_secs.is_some_and(|s| s > 0.0), "{c2:?}");
    assert!(
        c2.cost_micros.unwrap() < c.cost_micros.unwrap(),
        "{c2:?} vs {c:?}"
    );
    d.shutdown().await;
    t.fleet.runpod_account().remove().await.unwrap();
}
