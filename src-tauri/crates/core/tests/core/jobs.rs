//! The job pipeline end to end against testkit ComfyUIs that execute prompts as the recorded one does.

use std::time::Duration;

use comfyfleet_core::dispatcher::{Dispatcher, JobUpdate};
use comfyfleet_core::jobs::{JobState, Jobs, NewJob};
use comfyfleet_core::router::{Policy, RouterConfig};
use comfyfleet_testkit::{FakeComfy, FakeComfyConfig};
use serde_json::json;

use crate::support::*;

pub fn empty_image(color: u32) -> serde_json::Value {
    json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": color}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "probe"}}
    })
}

pub fn dispatcher(t: &TestFleet, policy: Policy) -> Dispatcher {
    Dispatcher::start(
        t.fleet.store.clone(),
        t.fleet.servers.clone(),
        t.fleet.health.clone(),
        t.fleet.home.gallery_dir(),
        RouterConfig {
            policy,
            auto_switch: true,
            ..Default::default()
        },
    )
}

async fn fake(exec_ms: u64) -> FakeComfy {
    FakeComfy::start(FakeComfyConfig {
        exec_time: Duration::from_millis(exec_ms),
        ..Default::default()
    })
    .await
}

/// One fake ComfyUI taking `exec_ms` per prompt, added as "A" and made active.
pub async fn active_server(t: &TestFleet, exec_ms: u64) -> FakeComfy {
    let server = fake(exec_ms).await;
    t.fleet
        .servers
        .add(input("A", &server.url()))
        .await
        .unwrap();
    t.fleet.servers.activate(Some("A")).await.unwrap();
    server
}

pub async fn wait(d: &Dispatcher, id: &str) -> comfyfleet_core::jobs::Job {
    tokio::time::timeout(Duration::from_secs(30), d.wait(id))
        .await
        .expect("job finished in time")
        .unwrap()
}

/// How many images were uploaded to `server`.
pub fn uploads_to(server: &FakeComfy) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| r.path_only() == "/upload/image")
        .count()
}

/// The body of the last `POST /prompt` to `server`.
pub fn last_prompt_body(server: &FakeComfy) -> serde_json::Value {
    let sent = server
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.path_only() == "/prompt" && r.method == "POST")
        .expect("a prompt was sent");
    serde_json::from_slice(&sent.body).unwrap()
}

/// The prompt last queued on `server`.
pub fn last_prompt_sent(server: &FakeComfy) -> serde_json::Value {
    last_prompt_body(server)["prompt"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_success_saves_real_outputs_in_the_gallery() {
    let t = fleet();
    let _server = active_server(&t, 20).await;
    let d = dispatcher(&t, Policy::Manual);
    let job = d
        .submit(NewJob::new("probe", empty_image(1)))
        .await
        .unwrap();
    let done = wait(&d, &job.id).await;
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
    assert_eq!(done.outputs.len(), 1);
    let path = std::path::Path::new(&done.outputs[0].path);
    assert!(path.starts_with(t.fleet.home.gallery_dir()));
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert!(done.started_ms.is_some() && done.finished_ms.is_some());
    assert_eq!(done.attempts, 0);
    // The identical prompt again is served from ComfyUI's cache and still succeeds with an output.
    let again = d
        .submit(NewJob::new("probe again", empty_image(1)))
        .await
        .unwrap();
    let again = wait(&d, &again.id).await;
    assert_eq!(again.state, JobState::Succeeded, "{:?}", again.error);
    assert_eq!(again.outputs.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_runtime_error_fails_once_with_the_node_and_message() {
    let t = fleet();
    let server = active_server(&t, 20).await;
    let d = dispatcher(&t, Policy::Manual);
    let wf = json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 255}},
        "3": {"class_type": "ImageToMask", "inputs": {"image": ["1", 0], "channel": "alpha"}},
        "4": {"class_type": "MaskToImage", "inputs": {"mask": ["3", 0]}},
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["4", 0]}}
    });
    let job = d.submit(NewJob::new("bad", wf)).await.unwrap();
    let done = wait(&d, &job.id).await;
    assert_eq!(done.state, JobState::Failed);
    let err = done.error.unwrap();
    assert!(err.contains("ImageToMask"), "{err}");
    assert_eq!(done.attempts, 1, "runtime errors are not retried");
    assert_eq!(server.executed_prompts().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_validation_error_fails_at_once_with_a_per_node_message() {
    let t = fleet();
    let _server = active_server(&t, 20).await;
    let d = dispatcher(&t, Policy::Manual);
    let wf = json!({
        "1": {"class_type": "LoadImage", "inputs": {"image": "does_not_exist.png"}},
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}
    });
    let job = d.submit(NewJob::new("invalid", wf)).await.unwrap();
    let done = wait(&d, &job.id).await;
    assert_eq!(done.state, JobState::Failed);
    let err = done.error.unwrap();
    assert!(
        err.contains("Node 1 (LoadImage)") && err.contains("does_not_exist.png"),
        "{err}"
    );
    assert_eq!(done.attempts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_cancel_interrupts_running_removes_pending_and_stops_queued() {
    let t = fleet();
    let server = fake(3000).await;
    t.fleet
        .servers
        .add(input("A", &server.url()))
        .await
        .unwrap();
    let d = dispatcher(&t, Policy::Manual);
    // No active server: the job waits in our queue, and cancelling it is immediate.
    let waiting = d
        .submit(NewJob::new("waiting", empty_image(2)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        d.cancel(&waiting.id).await.unwrap().state,
        JobState::Cancelled
    );

    t.fleet.servers.activate(Some("A")).await.unwrap();
    let jobs = Jobs::new(t.fleet.store.clone());
    let until = |id: String, want: JobState| {
        let jobs = jobs.clone();
        async move {
            for _ in 0..250 {
                if jobs.get(&id).await.unwrap().state == want {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            panic!("job {id} never became {want:?}");
        }
    };
    // One job runs on the server; the next one is sent there and waits in its queue.
    let running = d
        .submit(NewJob::new("running", empty_image(3)))
        .await
        .unwrap();
    until(running.id.clone(), JobState::Running).await;
    let pending = d
        .submit(NewJob::new("pending on the server", empty_image(4)))
        .await
        .unwrap();
    until(pending.id.clone(), JobState::Dispatched).await;
    tokio::time::sleep(Duration::from_millis(200)).await; // its prompt reaches the server's queue
    let pending_prompt = jobs.get(&pending.id).await.unwrap().remote_id.unwrap();
    d.cancel(&pending.id).await.unwrap();
    d.cancel(&running.id).await.unwrap();
    assert_eq!(wait(&d, &pending.id).await.state, JobState::Cancelled);
    assert_eq!(wait(&d, &running.id).await.state, JobState::Cancelled);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !server.executed_prompts().contains(&pending_prompt),
        "a cancelled pending job never runs"
    );
    // A finished job cannot be cancelled, and says why.
    let e = d.cancel(&waiting.id).await.unwrap_err();
    assert!(e.to_string().contains("cancelled"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_sent_to_a_server_that_never_answers_can_still_be_cancelled() {
    let t = fleet();
    let server = active_server(&t, 20).await;
    t.fleet.health.test_all(true).await.unwrap();
    // Known as connected, it now takes the prompt and never answers.
    server.set_config(|c| c.fault = comfyfleet_testkit::Fault::Hang);
    let d = dispatcher(&t, Policy::Manual);
    let job = d
        .submit(NewJob::new("stuck", empty_image(51)))
        .await
        .unwrap();
    let start = std::time::Instant::now();
    while t.fleet.jobs.get(&job.id).await.unwrap().state != JobState::Dispatched {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "never dispatched"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await; // the prompt is on its way, unanswered
    d.cancel(&job.id).await.unwrap();
    let done = tokio::time::timeout(Duration::from_secs(3), d.wait(&job.id))
        .await
        .expect("the cancel took effect although the server never answered")
        .unwrap();
    assert_eq!(done.state, JobState::Cancelled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_complete_when_the_websocket_drops_mid_job() {
    let t = fleet();
    let server = active_server(&t, 1500).await;
    let d = dispatcher(&t, Policy::Manual);
    let job = d
        .submit(NewJob::new("probe", empty_image(4)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.drop_websockets();
    let done = wait(&d, &job.id).await;
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
    assert_eq!(done.outputs.len(), 1);
    assert_eq!(server.executed_prompts().len(), 1);
    // The next job opens a new socket and is followed live again.
    let mut updates = d.subscribe();
    let next = d
        .submit(NewJob::new("after the drop", empty_image(5)))
        .await
        .unwrap();
    let done = wait(&d, &next.id).await;
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
    let mut live_progress = false;
    while let Ok(u) = updates.try_recv() {
        live_progress |= matches!(u, JobUpdate::Progress { job_id, .. } if job_id == next.id);
    }
    assert!(live_progress, "progress came over the new socket");
    assert_eq!(sockets_opened(&server), 2);
}

fn sockets_opened(server: &FakeComfy) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| r.path_only() == "/ws")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_on_one_server_share_one_websocket_and_each_gets_its_own_progress() {
    let t = fleet();
    let server = active_server(&t, 300).await;
    let d = dispatcher(&t, Policy::Manual);
    let mut updates = d.subscribe();
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(
            d.submit(NewJob::new("shared", empty_image(30 + i)))
                .await
                .unwrap()
                .id,
        );
    }
    for id in &ids {
        let done = wait(&d, id).await;
        assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
        assert_eq!(done.outputs.len(), 1);
    }
    let mut progressed = std::collections::HashSet::new();
    while let Ok(u) = updates.try_recv() {
        if let JobUpdate::Progress { job_id, .. } = u {
            progressed.insert(job_id);
        }
    }
    for id in &ids {
        assert!(progressed.contains(id), "job {id} saw its own progress");
    }
    assert_eq!(sockets_opened(&server), 1, "one socket for every job");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_move_to_another_server_when_theirs_is_killed() {
    let t = fleet();
    let a = fake(3000).await;
    let b = fake(20).await;
    t.fleet.servers.add(input("A", &a.url())).await.unwrap();
    t.fleet.servers.add(input("B", &b.url())).await.unwrap();
    t.fleet.servers.activate(Some("A")).await.unwrap();
    let d = dispatcher(&t, Policy::Manual);
    let job = d
        .submit(NewJob::new("probe", empty_image(5)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    a.kill();
    let done = wait(&d, &job.id).await;
    assert_eq!(
        done.state,
        JobState::Succeeded,
        "{:?} {:?}",
        done.error,
        done.notes
    );
    let b_id = t.fleet.servers.find("B").await.unwrap().id;
    assert_eq!(done.server_id.as_deref(), Some(b_id.as_str()));
    assert!(
        done.notes
            .iter()
            .any(|n| n.contains("'A' stopped answering")),
        "{:?}",
        done.notes
    );
    // The cost ledger counts the failover.
    d.shutdown().await;
    let entries = t
        .fleet
        .costs()
        .ledger()
        .entries_between(0, i64::MAX)
        .await
        .unwrap();
    let e = entries
        .iter()
        .find(|e| e.job_id.starts_with(&job.id))
        .unwrap();
    assert_eq!((e.server_id.as_str(), e.failovers), (b_id.as_str(), 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_go_only_where_their_checkpoint_is_and_say_when_none_has_it() {
    let t = fleet();
    let mut with = FakeComfyConfig {
        exec_time: Duration::from_millis(10),
        ..Default::default()
    };
    with.models
        .insert("checkpoints".into(), vec!["sdxl.safetensors".into()]);
    let has = FakeComfy::start(with).await;
    let lacks = fake(10).await;
    t.fleet
        .servers
        .add(input("Lacks", &lacks.url()))
        .await
        .unwrap();
    t.fleet.servers.add(input("Has", &has.url())).await.unwrap();
    let d = dispatcher(&t, Policy::LeastBusy);
    let wf = |ckpt: &str| {
        json!({
            "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
            "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 9}},
            "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "m"}}
        })
    };
    for _ in 0..3 {
        let job = d
            .submit(NewJob::new("sdxl", wf("sdxl.safetensors")))
            .await
            .unwrap();
        let done = wait(&d, &job.id).await;
        assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
        assert_eq!(
            done.server_id,
            Some(t.fleet.servers.find("Has").await.unwrap().id)
        );
    }
    let job = d
        .submit(NewJob::new("flux", wf("flux1-dev.safetensors")))
        .await
        .unwrap();
    let done = wait(&d, &job.id).await;
    assert_eq!(done.state, JobState::Failed);
    let err = done.error.unwrap();
    assert!(
        err.contains("'Lacks' lacks checkpoints/flux1-dev.safetensors")
            && err.contains("'Has' lacks"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_refuse_outputs_whose_names_escape_the_gallery() {
    // Names unique to this run, so a file left by anything else cannot pass or fail the test.
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let (up, abs) = (
        format!("../../comfyfleet-escape-{tag}.png"),
        format!("/tmp/comfyfleet-evil-{tag}.png"),
    );
    for evil in [up.as_str(), abs.as_str()] {
        let t = fleet();
        let server = FakeComfy::start(FakeComfyConfig {
            exec_time: Duration::from_millis(10),
            evil_output_name: Some(evil.into()),
            ..Default::default()
        })
        .await;
        t.fleet
            .servers
            .add(input("A", &server.url()))
            .await
            .unwrap();
        t.fleet.servers.activate(Some("A")).await.unwrap();
        let d = dispatcher(&t, Policy::Manual);
        let job = d.submit(NewJob::new("evil", empty_image(6))).await.unwrap();
        let done = wait(&d, &job.id).await;
        assert_eq!(done.state, JobState::Failed);
        assert!(done.error.unwrap().contains("not a plain file name"));
        let escaped = t
            .dir
            .path()
            .parent()
            .unwrap()
            .join(format!("comfyfleet-escape-{tag}.png"));
        assert!(!escaped.exists());
        assert!(!std::path::Path::new(&abs).exists());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_burst_of_200_over_three_servers_loses_and_repeats_nothing() {
    let t = fleet();
    let servers = [fake(5).await, fake(10).await, fake(20).await];
    for (i, s) in servers.iter().enumerate() {
        t.fleet
            .servers
            .add(input(&format!("S{i}"), &s.url()))
            .await
            .unwrap();
    }
    let d = dispatcher(&t, Policy::Fastest);
    let mut ids = Vec::new();
    for i in 0..200 {
        ids.push(
            d.submit(NewJob::new(format!("burst {i}"), empty_image(1000 + i)))
                .await
                .unwrap()
                .id,
        );
    }
    for id in &ids {
        let done = wait(&d, id).await;
        assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
    }
    let executed: usize = servers.iter().map(|s| s.executed_prompts().len()).sum();
    assert_eq!(executed, 200, "every job ran exactly once");
    assert!(
        servers.iter().all(|s| !s.executed_prompts().is_empty()),
        "all servers took part"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_in_flight_at_a_restart_finish_exactly_once() {
    let t = fleet();
    let server = active_server(&t, 1500).await;
    let first = dispatcher(&t, Policy::Manual);
    let job = first
        .submit(NewJob::new("survivor", empty_image(7)))
        .await
        .unwrap();
    let queued = first
        .submit(NewJob::new("queued", empty_image(8)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    first.stop(); // the app "dies" with one job running and one queued
    let second = dispatcher(&t, Policy::Manual);
    let a = wait(&second, &job.id).await;
    let b = wait(&second, &queued.id).await;
    assert_eq!(
        (a.state, b.state),
        (JobState::Succeeded, JobState::Succeeded),
        "{:?} {:?}",
        a.error,
        b.error
    );
    assert_eq!(server.executed_prompts().len(), 2, "nothing ran twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_upload_local_input_images_before_queueing() {
    let t = fleet();
    let server = active_server(&t, 20).await;
    let d = dispatcher(&t, Policy::Manual);
    // A real PNG on this machine, named by absolute path in a LoadImage node.
    let first = d
        .submit(NewJob::new("make", empty_image(11)))
        .await
        .unwrap();
    let made = wait(&d, &first.id).await;
    let local = t.dir.path().join("my input.png");
    std::fs::copy(&made.outputs[0].path, &local).unwrap();
    let wf = json!({
        "1": {"class_type": "LoadImage", "inputs": {"image": local.to_str().unwrap()}},
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}
    });
    let job = d
        .submit(NewJob::new("uses a local image", wf))
        .await
        .unwrap();
    let done = wait(&d, &job.id).await;
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
    assert_eq!(uploads_to(&server), 1);
    assert_eq!(
        last_prompt_sent(&server)["1"]["inputs"]["image"],
        "my input.png"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_being_sent_at_shutdown_reach_their_server_before_the_handover() {
    let t = fleet();
    let server = active_server(&t, 200).await;
    // Every answer takes 300 ms, so the shutdown below lands while the prompt is being sent.
    server.set_config(|c| c.latency = Duration::from_millis(300));
    let first = dispatcher(&t, Policy::Manual);
    let job = first
        .submit(NewJob::new("in transit", empty_image(21)))
        .await
        .unwrap();
    let jobs = Jobs::new(t.fleet.store.clone());
    while jobs.get(&job.id).await.unwrap().state == JobState::Queued {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.shutdown().await; // what `comfyfleet run` without --wait does before it exits
    first.stop(); // then the process ends
    let posted = server
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path_only() == "/prompt")
        .count();
    assert_eq!(posted, 1, "the send finished before the handover");
    let second = dispatcher(&t, Policy::Manual);
    let done = wait(&second, &job.id).await;
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
    assert!(
        done.notes.is_empty(),
        "followed, not re-sent: {:?}",
        done.notes
    );
    assert_eq!(server.executed_prompts().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_recorded_as_sent_but_never_sent_run_once_on_the_same_server() {
    let t = fleet();
    let server = active_server(&t, 20).await;
    let only = t.fleet.servers.find("A").await.unwrap();
    // The app died between recording the dispatch and sending the prompt.
    let jobs = Jobs::new(t.fleet.store.clone());
    let job = jobs
        .submit(NewJob::new("half sent", empty_image(22)), 0)
        .await
        .unwrap();
    jobs.apply(
        &job.id,
        comfyfleet_core::jobs::JobEvent::Dispatched {
            server_id: only.id.clone(),
            remote_id: uuid::Uuid::new_v4().to_string(),
        },
        0,
    )
    .await
    .unwrap();
    let d = dispatcher(&t, Policy::Manual);
    let done = wait(&d, &job.id).await;
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
    assert_eq!(done.server_id.as_deref(), Some(only.id.as_str()));
    assert!(done.failed_on.is_empty(), "the server is not blamed");
    assert!(
        done.notes.iter().any(|n| n.contains("never received")),
        "{:?}",
        done.notes
    );
    assert_eq!(server.executed_prompts().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_fastest_policy_remembers_server_speeds_across_a_restart() {
    let t = fleet();
    let slow = fake(800).await;
    let quick = fake(50).await;
    // The slow server comes first in the list: knowing nothing, the router would try it first.
    for (name, server) in [("slow", &slow), ("quick", &quick)] {
        t.fleet
            .servers
            .add(input(name, &server.url()))
            .await
            .unwrap();
    }
    let first = dispatcher(&t, Policy::Fastest);
    for (i, name) in ["slow", "quick"].into_iter().enumerate() {
        let id = t.fleet.servers.find(name).await.unwrap().id;
        let job = first
            .submit(NewJob {
                target: Some(id),
                ..NewJob::new("learn", empty_image(40 + i as u32))
            })
            .await
            .unwrap();
        assert_eq!(wait(&first, &job.id).await.state, JobState::Succeeded);
    }
    first.shutdown().await;
    first.stop();
    // After a restart the speeds are known from the job history.
    let second = dispatcher(&t, Policy::Fastest);
    let job = second
        .submit(NewJob::new("after restart", empty_image(50)))
        .await
        .unwrap();
    let done = wait(&second, &job.id).await;
    let quick_id = t.fleet.servers.find("quick").await.unwrap().id;
    assert_eq!(done.server_id.as_deref(), Some(quick_id.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_retry_runs_a_cancelled_job_again_as_a_new_job_and_refuses_a_finished_one() {
    let t = fleet();
    let d = dispatcher(&t, Policy::Manual);
    // No server yet: the job waits, and is cancelled.
    let mut asked = NewJob::new("castle", empty_image(7));
    asked.priority = 8;
    let first = d.submit(asked).await.unwrap();
    let cancelled = d.cancel(&first.id).await.unwrap();
    assert_eq!(cancelled.state, JobState::Cancelled);

    let _server = active_server(&t, 20).await;
    let again = d.retry(&first.id).await.unwrap();
    assert_ne!(again.id, first.id);
    assert_eq!((again.name.as_str(), again.priority), ("castle", 8));
    let done = wait(&d, &again.id).await;
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
    assert_eq!(done.outputs.len(), 1);
    // The old one stays in the history as it ended.
    let jobs = Jobs::new(t.fleet.store.clone());
    assert_eq!(
        jobs.get(&first.id).await.unwrap().state,
        JobState::Cancelled
    );
    // A finished job is not run again.
    let e = d.retry(&again.id).await.unwrap_err();
    assert!(
        e.to_string().contains("only a failed or cancelled job"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_delete_output_removes_the_file_and_the_entry_and_nothing_else() {
    let t = fleet();
    let _server = active_server(&t, 20).await;
    let d = dispatcher(&t, Policy::Manual);
    let job = d
        .submit(NewJob::new("probe", empty_image(3)))
        .await
        .unwrap();
    let done = wait(&d, &job.id).await;
    assert_eq!(done.outputs.len(), 1, "{:?}", done.error);
    let path = done.outputs[0].path.clone();
    assert!(std::path::Path::new(&path).is_file());
    // Something outside the gallery, named as if it were an output, is never touched.
    let outside = t.fleet.home.root().join("keep.png");
    std::fs::write(&outside, b"mine").unwrap();
    let e = d
        .delete_output(&job.id, &outside.display().to_string())
        .await
        .unwrap_err();
    assert_eq!(
        comfyfleet_core::HasErrorInfo::code(&e),
        "jobs.no_such_output"
    );
    assert!(outside.is_file());

    let mut rx = d.subscribe();
    let after = d.delete_output(&job.id, &path).await.unwrap();
    assert!(!std::path::Path::new(&path).exists(), "the file is deleted");
    assert!(after.outputs.is_empty());
    assert_eq!(after.state, JobState::Succeeded);
    assert!(
        after.notes.last().unwrap().starts_with("deleted "),
        "{:?}",
        after.notes
    );
    let told = loop {
        match rx.try_recv() {
            Ok(JobUpdate::Changed { job }) if job.id == after.id => break job,
            Ok(_) => continue,
            Err(e) => panic!("no update for the deleted output: {e:?}"),
        }
    };
    assert!(told.outputs.is_empty());
    // Deleting it again says it is gone.
    let e = d.delete_output(&job.id, &path).await.unwrap_err();
    assert!(e.to_string().contains("not an image of this job"), "{e}");
}
