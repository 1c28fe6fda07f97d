//! The app's RunPod pods against testkit's fake RunPod (real HTTP on loopback, a fake ComfyUI behind each pod's
//! proxy): created pods become cloud servers, idle ones are stopped (also after a crash of the app that made them,
//! once reconciled), pods gone from RunPod are forgotten, and pods the app did not create are never touched.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use comfyfleet_core::home::AppHome;
use comfyfleet_core::jobs::{JobEvent, NewJob};
use comfyfleet_core::runpod::fleet::{
    IdleConfig, PodChange, PodFleet, PodFleetError, PodStage, PodState,
};
use comfyfleet_core::runpod::pods::{PodPreset, PodsClient};
use comfyfleet_core::runpod::RunpodUrls;
use comfyfleet_core::secrets::Secret;
use comfyfleet_core::{Fleet, HasErrorInfo};
use comfyfleet_testkit::runpod::{PodStatus, SeededPod, DEFAULT_API_KEY};
use comfyfleet_testkit::{FakeRunpod, FakeRunpodConfig};

use crate::support::{all_file_bytes, contains, fleet};

fn urls(fake: &FakeRunpod) -> RunpodUrls {
    RunpodUrls {
        serverless: format!("{}/v2", fake.url()),
        rest: format!("{}/v2", fake.url()),
        proxy: fake.proxy_url_template(),
    }
}

fn pod_fleet(fleet: &Fleet, fake: &FakeRunpod) -> PodFleet {
    let client = PodsClient::new(
        comfyfleet_core::downloads::http_client(),
        urls(fake),
        Secret::new(DEFAULT_API_KEY),
    );
    PodFleet::new(fleet, client).with_ready_timeout(Duration::from_secs(20))
}

/// Idle limits short enough for a test; the expensive limit is the same so the GPU's price does not matter.
fn idle(ms: u64) -> IdleConfig {
    IdleConfig {
        enabled: true,
        idle_ms: ms,
        expensive_threshold_micros_per_hr: 1_000_000,
        expensive_idle_ms: ms,
    }
}

fn status(fake: &FakeRunpod, id: &str) -> Option<PodStatus> {
    fake.pods()
        .into_iter()
        .find(|p| p.id == id)
        .map(|p| p.status)
}

/// Polls `f` until it holds; the time it took, or a panic after `limit`.
async fn until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    start.elapsed()
}

fn recorder() -> (
    impl FnMut(PodChange) + Send + 'static,
    Arc<Mutex<Vec<PodChange>>>,
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    (move |c| s.lock().unwrap().push(c), seen)
}

fn assert_no_key_under(dir: &std::path::Path) {
    for (path, bytes) in all_file_bytes(dir) {
        assert!(
            !contains(&bytes, DEFAULT_API_KEY),
            "the RunPod key is in {}",
            path.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_created_by_the_app_are_registered_as_cloud_servers_and_stopped_when_idle() {
    let fake = FakeRunpod::start(FakeRunpodConfig::default()).await;
    let tf = fleet();
    let pods = pod_fleet(&tf.fleet, &fake);
    // Not idle-stopped while this part of the test looks at it.
    pods.set_idle_config(idle(60_000)).await.unwrap();

    let mut stages = Vec::new();
    let pod = pods
        .create(&PodPreset::default(), |p| stages.push(p.stage))
        .await
        .unwrap();
    assert_eq!(stages.first(), Some(&PodStage::Creating), "{stages:?}");
    assert_eq!(stages.last(), Some(&PodStage::Ready), "{stages:?}");
    assert!(stages.contains(&PodStage::Registering), "{stages:?}");
    assert_eq!(pod.state, PodState::Running);
    assert_eq!(pod.status.as_deref(), Some("RUNNING"));
    assert!(pod.cost_per_hr_micros > 0);

    // Registered as a ComfyUI server on the pod's proxy address, tagged cloud and runpod, and it answers.
    let server = tf
        .fleet
        .servers
        .find(pod.server_id.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(server.url, fake.pod_comfy_url(&pod.pod_id).unwrap());
    assert!(
        server.has_tag("cloud") && server.has_tag("runpod"),
        "{:?}",
        server.tags
    );
    let stats = reqwest::get(format!("{}/system_stats", server.url))
        .await
        .unwrap();
    assert!(stats.status().is_success());

    // A second pod from the same preset gets its own server name.
    let second = pods.create(&PodPreset::default(), |_| {}).await.unwrap();
    let names: Vec<String> = tf
        .fleet
        .servers
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert_ne!(names[0].to_lowercase(), names[1].to_lowercase());
    pods.terminate(&second.pod_id).await.unwrap();

    let listed = pods.list().await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].pod_id, pod.pod_id);
    assert!(listed[0].uptime_secs.is_some());

    // Idle past the limit: the watcher stops it, says why, and keeps its server entry (offline) for a restart.
    pods.set_idle_config(idle(1_500)).await.unwrap();
    let (on_change, changes) = recorder();
    let watch = pods.watch(Duration::from_millis(200), on_change);
    until(Duration::from_secs(10), "stopped when idle", || {
        status(&fake, &pod.pod_id) == Some(PodStatus::Exited)
    })
    .await;
    watch.stop().await;
    let record = pods.record(&pod.pod_id).await.unwrap().unwrap();
    assert_eq!(record.state, PodState::Stopped);
    assert!(
        record.stopped_reason.as_deref().unwrap().contains("idle"),
        "{record:?}"
    );
    let seen = changes.lock().unwrap().clone();
    assert!(
        seen.iter()
            .any(|c| c.pod_id == pod.pod_id && c.state == PodState::Stopped),
        "{seen:?}"
    );
    assert!(tf.fleet.servers.find(&server.id).await.is_ok());
    // Its uptime is charged up to the stop, not only up to the status pass's last whole second.
    let charged_until = tf
        .fleet
        .costs()
        .ledger()
        .pod_accrued_until(&pod.pod_id)
        .await
        .unwrap()
        .unwrap();
    let gap = record.updated_ms - charged_until;
    assert!(
        (0..200).contains(&gap),
        "charged until {gap} ms before the stop"
    );

    // Started again: the same server entry answers again.
    let mut restarted = Vec::new();
    let again = pods
        .start(&pod.pod_id, |p| restarted.push(p.stage))
        .await
        .unwrap();
    assert_eq!(
        (again.state, again.server_id.as_deref()),
        (PodState::Running, Some(server.id.as_str()))
    );
    assert_eq!(restarted.last(), Some(&PodStage::Ready));
    assert!(reqwest::get(format!("{}/system_stats", server.url))
        .await
        .unwrap()
        .status()
        .is_success());

    // Terminated: gone from RunPod, the server list and the app's list.
    let gone = pods.terminate(&pod.pod_id).await.unwrap();
    assert_eq!(gone.state, PodState::Terminated);
    assert!(tf.fleet.servers.list().await.unwrap().is_empty());
    assert!(pods.list().await.unwrap().is_empty());
    assert!(matches!(
        status(&fake, &pod.pod_id),
        None | Some(PodStatus::Terminated)
    ));
    let e = pods.stop(&pod.pod_id).await.unwrap_err();
    assert_eq!(e.code(), "pods.terminated", "{e}");
    assert_no_key_under(tf.dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_left_running_by_a_killed_app_are_reconciled_and_stopped_once_idle() {
    const IDLE_MS: u64 = 3_000;
    let fake = FakeRunpod::start(FakeRunpodConfig::default()).await;
    let tf = fleet();
    let (kept, vanished) = {
        // The first app creates two pods and its watcher runs; then it is killed: nothing is cleaned up.
        let pods = pod_fleet(&tf.fleet, &fake);
        pods.set_idle_config(idle(60_000)).await.unwrap();
        let kept = pods.create(&PodPreset::default(), |_| {}).await.unwrap();
        let vanished = pods.create(&PodPreset::default(), |_| {}).await.unwrap();
        let watch = pods.watch(Duration::from_millis(200), |_| {});
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(watch);
        (kept, vanished)
    };
    let home = tf.dir.path().to_path_buf();
    drop(tf.fleet);
    // While the app is down, someone terminates one of its pods in the RunPod console.
    let r = reqwest::Client::new()
        .post(format!("{}/v2/pods/{}/action", fake.url(), vanished.pod_id))
        .bearer_auth(DEFAULT_API_KEY)
        .json(&serde_json::json!({"action": "terminate"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());

    // A fresh app on the same home; a job is running on the surviving pod's server.
    let fleet = Fleet::open(AppHome::at(&home).unwrap()).unwrap();
    let pods = pod_fleet(&fleet, &fake);
    pods.set_idle_config(idle(IDLE_MS)).await.unwrap();
    let server_id = kept.server_id.clone().unwrap();
    let job = fleet
        .jobs
        .submit(
            NewJob::new("on the pod", serde_json::json!({})),
            comfyfleet_core::now_ms(),
        )
        .await
        .unwrap();
    let now = comfyfleet_core::now_ms();
    fleet
        .jobs
        .apply(
            &job.id,
            JobEvent::Dispatched {
                server_id: server_id.clone(),
                remote_id: "r1".into(),
            },
            now,
        )
        .await
        .unwrap();
    fleet
        .jobs
        .apply(&job.id, JobEvent::Started, now)
        .await
        .unwrap();

    let changes = pods.reconcile().await.unwrap();
    let gone = pods.record(&vanished.pod_id).await.unwrap().unwrap();
    assert_eq!(gone.state, PodState::Terminated, "{changes:?}");
    assert!(
        fleet
            .servers
            .find(vanished.server_id.as_deref().unwrap())
            .await
            .is_err(),
        "the terminated pod's server entry is removed"
    );
    assert!(
        changes.iter().any(|c| c.pod_id == vanished.pod_id),
        "{changes:?}"
    );

    let (on_change, seen) = recorder();
    let watch = pods.watch(Duration::from_millis(200), on_change);
    // The job runs longer than the idle limit: the pod stays up.
    tokio::time::sleep(Duration::from_millis(IDLE_MS + 1_000)).await;
    assert_eq!(status(&fake, &kept.pod_id), Some(PodStatus::Running));
    // The job ends: the pod is stopped once idle for the limit after that, not sooner.
    fleet
        .jobs
        .apply(&job.id, JobEvent::Succeeded, comfyfleet_core::now_ms())
        .await
        .unwrap();
    let took = until(
        Duration::from_secs(15),
        "stopped once idle after the job",
        || status(&fake, &kept.pod_id) == Some(PodStatus::Exited),
    )
    .await;
    assert!(
        took >= Duration::from_millis(IDLE_MS - 200),
        "stopped {took:?} after the last job, before the idle limit"
    );
    watch.stop().await;
    let record = pods.record(&kept.pod_id).await.unwrap().unwrap();
    assert_eq!(record.state, PodState::Stopped);
    assert!(record.stopped_reason.unwrap().contains("idle"));
    assert!(seen
        .lock()
        .unwrap()
        .iter()
        .any(|c| c.pod_id == kept.pod_id && c.state == PodState::Stopped));
    assert_no_key_under(&home);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_not_created_by_the_app_are_never_touched() {
    let mut stopped_foreign = SeededPod::foreign("foreign02", "someone's stopped box");
    stopped_foreign.running = false;
    let fake = FakeRunpod::start(FakeRunpodConfig {
        seeded_pods: vec![
            SeededPod::foreign("foreign01", "someone's notebook"),
            stopped_foreign,
        ],
        ..FakeRunpodConfig::default()
    })
    .await;
    let tf = fleet();
    let pods = pod_fleet(&tf.fleet, &fake);
    // With no list of its own, the app has nothing to reconcile.
    assert!(pods.list().await.unwrap().is_empty());
    assert!(pods.reconcile().await.unwrap().is_empty());

    // Everything idle is stopped at once, yet only the app's own pod is.
    pods.set_idle_config(idle(1)).await.unwrap();
    let ours = pods.create(&PodPreset::default(), |_| {}).await.unwrap();
    let ids: Vec<String> = pods
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.pod_id)
        .collect();
    assert_eq!(ids, vec![ours.pod_id.clone()]);
    let watch = pods.watch(Duration::from_millis(100), |_| {});
    until(Duration::from_secs(10), "our idle pod stopped", || {
        status(&fake, &ours.pod_id) == Some(PodStatus::Exited)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    watch.stop().await;
    assert_eq!(status(&fake, "foreign01"), Some(PodStatus::Running));
    assert_eq!(status(&fake, "foreign02"), Some(PodStatus::Exited));

    // Asked to act on a foreign pod: refused, saying why and where to manage it.
    for id in ["foreign01", "foreign02"] {
        let e = pods.stop(id).await.unwrap_err();
        assert!(matches!(e, PodFleetError::NotOurs { .. }), "{e}");
        assert_eq!(e.code(), "pods.not_ours");
        assert!(
            e.to_string().contains("not created by ComfyFleet")
                && e.to_string().contains("RunPod console"),
            "{e}"
        );
        assert_eq!(
            pods.terminate(id).await.unwrap_err().code(),
            "pods.not_ours"
        );
        assert_eq!(
            pods.start(id, |_| {}).await.unwrap_err().code(),
            "pods.not_ours"
        );
        assert!(pods.record(id).await.unwrap().is_none());
    }
    // Not one request about a foreign pod ever reached RunPod (only the account-wide list mentions them).
    let requests = fake.requests();
    let touching: Vec<_> = requests
        .iter()
        .filter(|r| matches!(r.pod_id(), Some("foreign01" | "foreign02")))
        .collect();
    assert!(touching.is_empty(), "{touching:?}");
    assert!(requests
        .iter()
        .any(|r| r.pod_id() == Some(ours.pod_id.as_str()) && r.method == "POST"));
    assert!(tf.fleet.servers.list().await.unwrap().len() == 1);
    assert_no_key_under(tf.dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_left_starting_are_adopted_once_running_or_stopped_when_stuck() {
    // Slow pods, and an app that waits for them only one second.
    let fake = FakeRunpod::start(FakeRunpodConfig {
        pod_starting: Duration::from_millis(2_500),
        ..FakeRunpodConfig::default()
    })
    .await;
    let tf = fleet();
    let pods = pod_fleet(&tf.fleet, &fake).with_ready_timeout(Duration::from_secs(1));
    pods.set_idle_config(idle(60_000)).await.unwrap();
    let e = pods
        .create(&PodPreset::default(), |_| {})
        .await
        .unwrap_err();
    assert_eq!(e.code(), "pods.not_ready", "{e}");
    assert!(e.to_string().contains("stop or terminate"), "{e}");
    fake.set_config(|c| c.pod_provisioning = Duration::from_secs(600));
    let stuck = pods
        .create(&PodPreset::default(), |_| {})
        .await
        .unwrap_err();
    assert_eq!(stuck.code(), "pods.not_ready", "{stuck}");
    let records = pods.records(false).await.unwrap();
    assert_eq!(records.len(), 2);
    assert!(records
        .iter()
        .all(|r| r.state == PodState::Starting && r.server_id.is_none()));
    let (slow, stuck) = (records[0].pod_id.clone(), records[1].pod_id.clone());

    until(Duration::from_secs(10), "the slow pod runs", || {
        status(&fake, &slow) == Some(PodStatus::Running)
    })
    .await;
    let changes = pods.reconcile().await.unwrap();
    // The one that came up is in the server list now; the stuck one is stopped, saying why.
    let adopted = pods.record(&slow).await.unwrap().unwrap();
    assert_eq!(adopted.state, PodState::Running, "{changes:?}");
    let server = tf
        .fleet
        .servers
        .find(adopted.server_id.as_deref().unwrap())
        .await
        .unwrap();
    assert!(server.has_tag("runpod") && server.has_tag("cloud"));
    assert_eq!(server.url, fake.pod_comfy_url(&slow).unwrap());
    assert_eq!(status(&fake, &stuck), Some(PodStatus::Exited));
    let stopped = pods.record(&stuck).await.unwrap().unwrap();
    assert_eq!(stopped.state, PodState::Stopped);
    assert!(
        stopped
            .stopped_reason
            .as_deref()
            .unwrap()
            .contains("did not become ready"),
        "{stopped:?}"
    );
    assert_eq!(changes.len(), 2, "{changes:?}");
    // Nothing more to do on the next pass.
    assert!(pods.reconcile().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_uptime_is_charged_by_the_hour_split_into_busy_and_idle_time() {
    let fake = FakeRunpod::start(FakeRunpodConfig::default()).await;
    let tf = fleet();
    let pods = pod_fleet(&tf.fleet, &fake);
    pods.set_idle_config(idle(60_000)).await.unwrap();
    let pod = pods.create(&PodPreset::default(), |_| {}).await.unwrap();
    let server_id = pod.server_id.clone().unwrap();
    // Idle for a while, then a job runs on its server for about a second.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let job = tf
        .fleet
        .jobs
        .submit(
            NewJob::new("on the pod", serde_json::json!({})),
            comfyfleet_core::now_ms(),
        )
        .await
        .unwrap();
    let now = comfyfleet_core::now_ms();
    for event in [
        JobEvent::Dispatched {
            server_id: server_id.clone(),
            remote_id: "r1".into(),
        },
        JobEvent::Started,
    ] {
        tf.fleet.jobs.apply(&job.id, event, now).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    tf.fleet
        .jobs
        .apply(&job.id, JobEvent::Succeeded, comfyfleet_core::now_ms())
        .await
        .unwrap();
    pods.reconcile().await.unwrap();
    // Stopping by hand charges up to the stop.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    pods.stop(&pod.pod_id).await.unwrap();

    let costs = tf.fleet.costs();
    let usage = costs.ledger().pod_usage_between(0, i64::MAX).await.unwrap();
    assert_eq!(usage.len(), 2, "{usage:?}");
    assert!(usage.iter().all(|u| u.pod_id == pod.pod_id));
    let busy: u64 = usage.iter().map(|u| u.busy_ms).sum();
    let total: u64 = usage.iter().map(|u| u.busy_ms + u.idle_ms).sum();
    assert!((1_000..2_500).contains(&busy), "{usage:?}");
    // RunPod gives uptime in whole seconds, so the first interval may start up to a second late.
    assert!(total >= 2_500 && total > busy + 500, "{usage:?}");
    // Intervals follow each other without a gap or an overlap.
    assert_eq!(
        usage[1].start_ms,
        usage[0].start_ms + (usage[0].busy_ms + usage[0].idle_ms) as i64
    );
    // Charged at the pod's price per hour, rounded up to the micro-dollar, and counted as cloud spend.
    let rate = pod.cost_per_hr_micros;
    for u in &usage {
        let len = u.busy_ms + u.idle_ms;
        assert_eq!(u.cost_micros, (len * rate).div_ceil(3_600_000), "{u:?}");
    }
    let status = costs.cap_status(comfyfleet_core::now_ms()).await.unwrap();
    assert_eq!(
        status.spent_today_micros,
        usage.iter().map(|u| u.cost_micros).sum::<u64>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_stopped_as_soon_as_they_are_ready_are_still_charged_for_their_uptime() {
    let fake = FakeRunpod::start(FakeRunpodConfig::default()).await;
    let tf = fleet();
    let pods = pod_fleet(&tf.fleet, &fake);
    let pod = pods.create(&PodPreset::default(), |_| {}).await.unwrap();
    // Stopped within its first second of uptime (RunPod says 0 s): it ran, so it is not free.
    pods.stop(&pod.pod_id).await.unwrap();
    let usage = tf
        .fleet
        .costs()
        .ledger()
        .pod_usage_between(0, i64::MAX)
        .await
        .unwrap();
    assert_eq!(usage.len(), 1, "{usage:?}");
    // Up to a second back, never before it was created (this fake pod is ready well within the second).
    let length = usage[0].busy_ms + usage[0].idle_ms;
    assert!(length > 0 && usage[0].cost_micros > 0, "{usage:?}");
    assert!(usage[0].start_ms >= pod.created_ms, "{usage:?}");
    assert!(length <= 1_000, "{usage:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_idle_at_a_spending_cap_are_stopped_at_once() {
    use comfyfleet_core::costs::Caps;
    let fake = FakeRunpod::start(FakeRunpodConfig::default()).await;
    let tf = fleet();
    let pods = pod_fleet(&tf.fleet, &fake);
    pods.set_idle_config(idle(600_000)).await.unwrap();
    let pod = pods.create(&PodPreset::default(), |_| {}).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Far from idle for 10 minutes, but today's cap is spent: the next pass stops it.
    tf.fleet
        .costs()
        .set_caps(Caps {
            daily_micros: 1,
            monthly_micros: 50_000_000,
        })
        .await
        .unwrap();
    pods.reconcile().await.unwrap(); // charges its uptime, which passes the cap
    let changes = pods.reconcile().await.unwrap();
    let r = pods.record(&pod.pod_id).await.unwrap().unwrap();
    assert_eq!(r.state, PodState::Stopped, "{changes:?}");
    assert!(
        r.stopped_reason
            .as_deref()
            .unwrap()
            .contains("daily cloud spending limit"),
        "{r:?}"
    );
    assert_eq!(status(&fake, &pod.pod_id), Some(PodStatus::Exited));
}
