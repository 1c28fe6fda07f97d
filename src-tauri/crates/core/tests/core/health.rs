//! Testing servers against testkit fakes: every status, auth kinds on the wire, parallel timing, cache, monitor.

use std::time::{Duration, Instant};

use comfyfleet_core::health::{HealthEvent, Status};
use comfyfleet_core::servers::AuthKind;
use comfyfleet_core::settings::Settings;
use comfyfleet_testkit::{FakeAuth, FakeComfy, FakeComfyConfig, FakeDevice, Fault};

use crate::support::*;

fn gpu_config() -> FakeComfyConfig {
    FakeComfyConfig {
        devices: vec![FakeDevice::cuda(
            "NVIDIA GeForce RTX 4090",
            25_757_220_864,
            24_000_000_000,
        )],
        queue_running: 1,
        queue_pending: 2,
        ..Default::default()
    }
}

#[tokio::test]
async fn health_reports_version_devices_queue_and_latency_when_connected() {
    let t = fleet();
    let fake = FakeComfy::start(gpu_config()).await;
    let s = t
        .fleet
        .servers
        .add(input("GPU", &fake.url()))
        .await
        .unwrap();
    let st = t.fleet.health.test(&s.id, true).await.unwrap();
    assert_eq!(st.status, Status::Connected, "{:?}", st.error);
    assert_eq!(st.comfyui_version.as_deref(), Some("0.3.64"));
    assert!(st.python_version.unwrap().starts_with("3.11.7"));
    assert_eq!(st.pytorch_version.as_deref(), Some("2.8.0+cu128"));
    assert_eq!(st.devices.len(), 1);
    assert_eq!(st.devices[0].kind, "cuda");
    assert_eq!(
        (st.devices[0].vram_total, st.devices[0].vram_free),
        (25_757_220_864, 24_000_000_000)
    );
    assert_eq!(st.queue.map(|q| (q.running, q.pending)), Some((1, 2)));
    assert!(st.latency_ms.is_some());
    assert!(st.error.is_none());
    // The last connection time is stored with the server (it survives restarts).
    let again = t.fleet.servers.find(&s.id).await.unwrap();
    assert_eq!(again.last_connected_ms, st.last_connected_ms);
    // Calls go from Rust with no Origin header (a real ComfyUI answers 403 to a webview's Origin).
    assert!(fake.requests().iter().all(|r| r.header("origin").is_none()));
}

#[tokio::test]
async fn health_ends_every_fault_in_the_right_status_within_the_timeout() {
    let t = fleet();
    let cases = [
        (Fault::Refuse, Status::Unreachable, "Could not connect"),
        (Fault::Hang, Status::Timeout, "did not answer within 3 s"),
        (Fault::Http500, Status::Error, "HTTP 500"),
        (Fault::NotJson, Status::NotComfyui, "not like ComfyUI"),
        (Fault::EndlessBody, Status::NotComfyui, "ComfyUI never does"),
        (Fault::WrongShape, Status::NotComfyui, "not like ComfyUI"),
    ];
    let mut fakes = Vec::new();
    for (i, (fault, _, _)) in cases.iter().enumerate() {
        let fake = FakeComfy::start(FakeComfyConfig {
            fault: fault.clone(),
            ..Default::default()
        })
        .await;
        let mut inp = input(&format!("f{i}"), &fake.url());
        // Roomy enough that a loaded CI machine answers the non-hanging faults in time.
        inp.timeout_ms = Some(3000);
        t.fleet.servers.add(inp).await.unwrap();
        fakes.push(fake);
    }
    for (i, (fault, status, hint)) in cases.iter().enumerate() {
        let start = Instant::now();
        let st = t.fleet.health.test(&format!("f{i}"), true).await.unwrap();
        let took = start.elapsed();
        assert_eq!(st.status, *status, "{fault:?}: {:?}", st.error);
        let msg = st.error.unwrap();
        assert!(msg.contains(hint), "{fault:?}: {msg}");
        assert!(
            took < Duration::from_millis(4500),
            "{fault:?} took {took:?}"
        );
    }
}

#[tokio::test]
async fn health_sends_each_auth_kind_as_the_server_expects() {
    let t = fleet();
    let token = "$2b$12$.YXx1fIWDcEoK06oup9Rfeg5lKdCKVpRCKV2hVW6HV82Sb5o3cpsS";
    let login = FakeComfy::start(FakeComfyConfig {
        auth: Some(FakeAuth::ComfyuiLogin {
            token: token.into(),
        }),
        ..Default::default()
    })
    .await;
    let basic = FakeComfy::start(FakeComfyConfig {
        auth: Some(FakeAuth::Basic {
            user: "bob".into(),
            password: "pw".into(),
        }),
        ..Default::default()
    })
    .await;
    let key = FakeComfy::start(FakeComfyConfig {
        auth: Some(FakeAuth::ApiKey {
            header: "X-API-Key".into(),
            value: "k1".into(),
        }),
        ..Default::default()
    })
    .await;
    let bearer = FakeComfy::start(FakeComfyConfig {
        auth: Some(FakeAuth::Bearer { token: "b1".into() }),
        ..Default::default()
    })
    .await;

    let cases = [
        (
            with_auth(
                input("login ok", &login.url()),
                AuthKind::ComfyuiLogin,
                None,
                None,
                Some(token),
            ),
            Status::Connected,
            None,
        ),
        (
            with_auth(
                input("login wrong", &login.url()),
                AuthKind::ComfyuiLogin,
                None,
                None,
                Some("nope"),
            ),
            Status::AuthFailed,
            Some("refused the credentials"),
        ),
        (
            input("login none", &login.url()),
            Status::AuthFailed,
            Some("requires authentication"),
        ),
        (
            with_auth(
                input("basic ok", &basic.url()),
                AuthKind::Basic,
                Some("bob"),
                None,
                Some("pw"),
            ),
            Status::Connected,
            None,
        ),
        (
            with_auth(
                input("basic wrong", &basic.url()),
                AuthKind::Basic,
                Some("bob"),
                None,
                Some("bad"),
            ),
            Status::AuthFailed,
            Some("Servers > Edit"),
        ),
        (
            with_auth(
                input("key ok", &key.url()),
                AuthKind::ApiKey,
                None,
                Some("X-API-Key"),
                Some("k1"),
            ),
            Status::Connected,
            None,
        ),
        (
            with_auth(
                input("bearer ok", &bearer.url()),
                AuthKind::Bearer,
                None,
                None,
                Some("b1"),
            ),
            Status::Connected,
            None,
        ),
    ];
    for (inp, status, hint) in cases {
        let name = inp.name.clone();
        let s = t.fleet.servers.add(inp).await.unwrap();
        let st = t.fleet.health.test(&s.id, true).await.unwrap();
        assert_eq!(st.status, status, "{name}: {:?}", st.error);
        if let Some(h) = hint {
            assert!(
                st.error.as_deref().unwrap_or("").contains(h),
                "{name}: {:?}",
                st.error
            );
        }
    }
    let sent: Vec<_> = login
        .requests()
        .into_iter()
        .filter_map(|r| r.header("authorization").map(str::to_string))
        .collect();
    assert!(
        sent.contains(&format!("Bearer {token}")),
        "ComfyUI-Login token goes as 'Bearer <token>'"
    );
    assert!(key
        .requests()
        .iter()
        .any(|r| r.header("x-api-key") == Some("k1")));
}

#[tokio::test]
async fn health_test_all_runs_in_parallel_bounded_by_the_slowest_timeout() {
    let t = fleet();
    let mut fakes = Vec::new();
    for i in 0..12 {
        let fault = if i < 6 { Fault::Hang } else { Fault::None };
        let fake = FakeComfy::start(FakeComfyConfig {
            fault,
            ..Default::default()
        })
        .await;
        let mut inp = input(&format!("s{i:02}"), &fake.url());
        inp.timeout_ms = Some(1000);
        t.fleet.servers.add(inp).await.unwrap();
        fakes.push(fake);
    }
    let start = Instant::now();
    let results = t.fleet.health.test_all(true).await.unwrap();
    let took = start.elapsed();
    assert_eq!(results.len(), 12);
    assert_eq!(
        results
            .iter()
            .filter(|r| r.status == Status::Timeout)
            .count(),
        6
    );
    assert_eq!(
        results
            .iter()
            .filter(|r| r.status == Status::Connected)
            .count(),
        6
    );
    assert!(
        took < Duration::from_millis(3000),
        "6 hung servers at 1 s each took {took:?} (serial would be 6 s)"
    );
}

#[tokio::test]
async fn health_serves_recent_results_from_the_cache_unless_fresh() {
    let t = fleet();
    let fake = FakeComfy::start(FakeComfyConfig::default()).await;
    let s = t
        .fleet
        .servers
        .add(input("cached", &fake.url()))
        .await
        .unwrap();
    let count = || {
        fake.requests()
            .iter()
            .filter(|r| r.path_only() == "/system_stats")
            .count()
    };
    t.fleet.health.test(&s.id, false).await.unwrap();
    assert_eq!(count(), 1);
    t.fleet.health.test(&s.id, false).await.unwrap();
    t.fleet.health.test_all(false).await.unwrap();
    assert_eq!(count(), 1, "served from the cache");
    t.fleet.health.test(&s.id, true).await.unwrap();
    assert_eq!(count(), 2, "fresh probes again");
    // An expired entry is probed again.
    let short = comfyfleet_core::health::Health::new(t.fleet.servers.clone())
        .with_ttl(Duration::from_millis(50));
    short.test(&s.id, false).await.unwrap();
    tokio::time::sleep(Duration::from_millis(80)).await;
    short.test(&s.id, false).await.unwrap();
    assert_eq!(count(), 4);
}

#[tokio::test]
async fn health_tests_an_unsaved_form_with_the_stored_secret_when_editing() {
    let t = fleet();
    let fake = FakeComfy::start(FakeComfyConfig {
        auth: Some(FakeAuth::Bearer {
            token: "tok".into(),
        }),
        ..Default::default()
    })
    .await;
    let unsaved = with_auth(
        input("new", &fake.url()),
        AuthKind::Bearer,
        None,
        None,
        Some("tok"),
    );
    assert_eq!(
        t.fleet
            .health
            .test_input(&unsaved, None)
            .await
            .unwrap()
            .status,
        Status::Connected
    );
    assert!(
        t.fleet.servers.list().await.unwrap().is_empty(),
        "testing does not save"
    );
    let saved = t.fleet.servers.add(unsaved).await.unwrap();
    let edited = with_auth(
        input("new", &fake.url()),
        AuthKind::Bearer,
        None,
        None,
        None,
    );
    assert_eq!(
        t.fleet
            .health
            .test_input(&edited, Some(&saved.id))
            .await
            .unwrap()
            .status,
        Status::Connected
    );
    assert_eq!(
        t.fleet
            .health
            .test_input(&edited, None)
            .await
            .unwrap()
            .status,
        Status::AuthFailed
    );
    let bad = input("x", "localhost:8188");
    assert!(t.fleet.health.test_input(&bad, None).await.is_err());
}

#[tokio::test]
async fn health_monitor_reports_offline_and_back_and_auto_switches_the_active_server() {
    let t = fleet();
    let a = FakeComfy::start(FakeComfyConfig::default()).await;
    let b = FakeComfy::start(FakeComfyConfig::default()).await;
    let c = FakeComfy::start(FakeComfyConfig::default()).await;
    for (name, f) in [("A", &a), ("B", &b), ("C", &c)] {
        let mut i = input(name, &f.url());
        i.timeout_ms = Some(1000);
        t.fleet.servers.add(i).await.unwrap();
    }
    t.fleet.servers.activate(Some("B")).await.unwrap();
    t.fleet
        .settings
        .set(Settings { auto_switch: true })
        .await
        .unwrap();
    let mut rx = t.fleet.health.subscribe();
    t.fleet
        .health
        .monitor_round(&t.fleet.settings)
        .await
        .unwrap();
    while rx.try_recv().is_ok() {}

    // B dies (and C too): the next healthy server in list order after B, wrapping, is A.
    b.set_config(|c| c.fault = Fault::Refuse);
    c.set_config(|c| c.fault = Fault::Hang);
    t.fleet
        .health
        .monitor_round(&t.fleet.settings)
        .await
        .unwrap();
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    let went_offline: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            HealthEvent::Status(c) if c.availability_changed => {
                Some((c.name.clone(), c.current.status))
            }
            _ => None,
        })
        .collect();
    assert!(
        went_offline.contains(&("B".to_string(), Status::Unreachable)),
        "{events:?}"
    );
    assert!(
        went_offline.contains(&("C".to_string(), Status::Timeout)),
        "{events:?}"
    );
    let switched = events
        .iter()
        .find_map(|e| match e {
            HealthEvent::Active(a) => Some(a.clone()),
            _ => None,
        })
        .expect("an auto-switch event");
    assert_eq!(switched.name.as_deref(), Some("A"));
    assert!(
        switched.message.contains("'B' stopped answering"),
        "{}",
        switched.message
    );
    assert_eq!(t.fleet.servers.active().await.unwrap().unwrap().name, "A");

    // A steady state emits nothing new.
    t.fleet
        .health
        .monitor_round(&t.fleet.settings)
        .await
        .unwrap();
    assert!(rx.try_recv().is_err());

    // B comes back: a "came back" event; the active server stays A.
    b.set_config(|c| c.fault = Fault::None);
    t.fleet
        .health
        .monitor_round(&t.fleet.settings)
        .await
        .unwrap();
    let back = std::iter::from_fn(|| rx.try_recv().ok())
        .find_map(|e| match e {
            HealthEvent::Status(c) if c.name == "B" => Some(c),
            _ => None,
        })
        .expect("B came back");
    assert!(back.availability_changed && back.current.status == Status::Connected);
    assert_eq!(t.fleet.servers.active().await.unwrap().unwrap().name, "A");
}

#[tokio::test]
async fn health_monitor_leaves_the_active_server_alone_when_auto_switch_is_off() {
    let t = fleet();
    let a = FakeComfy::start(FakeComfyConfig::default()).await;
    let b = FakeComfy::start(FakeComfyConfig::default()).await;
    t.fleet.servers.add(input("A", &a.url())).await.unwrap();
    t.fleet.servers.add(input("B", &b.url())).await.unwrap();
    t.fleet.servers.activate(Some("A")).await.unwrap();
    t.fleet
        .health
        .monitor_round(&t.fleet.settings)
        .await
        .unwrap();
    a.set_config(|c| c.fault = Fault::Refuse);
    t.fleet
        .health
        .monitor_round(&t.fleet.settings)
        .await
        .unwrap();
    assert_eq!(t.fleet.servers.active().await.unwrap().unwrap().name, "A");
}

#[tokio::test]
async fn health_monitor_probes_a_server_as_soon_as_it_is_added_or_edited_not_at_its_next_round() {
    let t = fleet();
    let down = FakeComfy::start(FakeComfyConfig::default()).await;
    down.set_config(|c| c.fault = Fault::Refuse);
    let up = FakeComfy::start(FakeComfyConfig::default()).await;
    let mut rx = t.fleet.health.subscribe();
    // Rounds an hour apart: only the change signal can bring a status in moments.
    let _monitor = t
        .fleet
        .health
        .spawn_monitor(t.fleet.settings.clone(), Duration::from_secs(3600));
    async fn next_status(
        rx: &mut tokio::sync::broadcast::Receiver<HealthEvent>,
        id: &str,
    ) -> Option<Status> {
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if let Ok(HealthEvent::Status(c)) = rx.recv().await {
                    if c.server_id == id {
                        return c.current.status;
                    }
                }
            }
        })
        .await
        .ok()
    }
    tokio::time::sleep(Duration::from_millis(200)).await; // the first round (of an empty list) is over

    let added = t
        .fleet
        .servers
        .add(input("New box", &down.url()))
        .await
        .unwrap();
    assert_eq!(
        next_status(&mut rx, &added.id).await,
        Some(Status::Unreachable),
        "the new server was not probed at once"
    );

    // Moved to an address that answers: probed there at once too.
    t.fleet
        .servers
        .update(&added.id, input("New box", &up.url()))
        .await
        .unwrap();
    assert_eq!(
        next_status(&mut rx, &added.id).await,
        Some(Status::Connected),
        "the edited server was not probed at its new address"
    );
}
