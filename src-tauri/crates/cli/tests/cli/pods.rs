//! `comfyfleet pods`: create a pod on the fake RunPod (progress on stderr, the pod as JSON), see it in the server
//! list as a cloud server, list, stop and terminate it; foreign pods are refused; the key is needed, read from the
//! keychain, and written nowhere.

use comfyfleet_testkit::runpod::{SeededPod, DEFAULT_API_KEY};
use comfyfleet_testkit::{FakeRunpod, FakeRunpodConfig};
use serde_json::Value;

use crate::{stderr, Cli};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_pods_create_list_stop_terminate_json() {
    let _key = crate::RUNPOD_KEY.lock().await;
    let fake = FakeRunpod::start(FakeRunpodConfig {
        seeded_pods: vec![SeededPod::foreign("foreign01", "someone's notebook")],
        ..FakeRunpodConfig::default()
    })
    .await;
    let cli = Cli::new();
    let rest = format!("{}/v2", fake.url());
    let proxy = fake.proxy_url_template();
    let env = [
        ("RUNPOD_REST_API_URL", rest.as_str()),
        ("COMFYFLEET_RUNPOD_PROXY_URL", proxy.as_str()),
    ];
    let run = |args: &[&str], stdin: Option<&str>| cli.run_with(args, stdin, &env);
    let json = |args: &[&str]| -> Value {
        let out = run(args, None);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    };

    // No key: says how to set one.
    run(&["runpod", "key", "remove"], None);
    let out = run(&["pods", "list"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("comfyfleet runpod key set"),
        "{}",
        stderr(&out)
    );
    let out = run(&["runpod", "key", "set"], Some(DEFAULT_API_KEY));
    assert!(out.status.success(), "{}", stderr(&out));

    // GPU types and their prices come from RunPod's catalog.
    let gpus = json(&["pods", "gpus", "--json"]);
    let rtx = gpus
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == "NVIDIA GeForce RTX 4090")
        .expect("the catalog lists the 4090");
    assert_eq!(rtx["memory_gb"], 24);
    assert!(rtx["secure_per_hr_micros"].as_u64().unwrap() > 0, "{rtx}");
    assert!(fake
        .requests()
        .iter()
        .any(|r| r.path_only() == "/v2/catalog/gpus"));

    // Nothing of ours yet: the foreign pod is not listed.
    assert_eq!(json(&["pods", "list", "--json"]), serde_json::json!([]));
    let out = run(&["pods", "list"], None);
    assert!(String::from_utf8_lossy(&out.stdout).contains("No pods created by ComfyFleet"));

    // Create: the first GPU type is not offered, the second is; progress on stderr, the pod on stdout.
    let out = run(
        &[
            "pods",
            "create",
            "--gpu",
            "NVIDIA NoSuch GPU",
            "--gpu",
            "NVIDIA RTX A6000",
            "--cloud",
            "community",
            "--disk",
            "20",
            "--name",
            "cli pod",
            "--json",
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let progress = stderr(&out);
    assert!(
        progress.contains("created") && progress.contains("ready"),
        "{progress}"
    );
    let pod: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = pod["pod_id"].as_str().unwrap().to_string();
    assert_eq!(pod["state"], "running", "{pod}");
    assert_eq!(pod["status"], "RUNNING", "{pod}");
    assert_eq!(pod["cost_per_hr_micros"], 330_000, "{pod}");
    let made = fake.pods().into_iter().find(|p| p.id == id).unwrap();
    assert_eq!(
        (
            made.name.as_str(),
            made.cloud_type.as_str(),
            made.container_disk_in_gb
        ),
        ("cli pod", "COMMUNITY", 20)
    );

    // In the server list as a cloud server on the pod's proxy address.
    let servers = json(&["servers", "list", "--json"]);
    let servers = servers.as_array().unwrap();
    assert_eq!(servers.len(), 1, "{servers:?}");
    assert_eq!(servers[0]["name"], "cli pod");
    assert_eq!(servers[0]["url"], fake.pod_comfy_url(&id).unwrap().as_str());
    let tags: Vec<&str> = servers[0]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        tags.contains(&"cloud") && tags.contains(&"runpod"),
        "{tags:?}"
    );

    let listed = json(&["pods", "list", "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["pod_id"], id.as_str());
    let out = run(&["pods", "list"], None);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.contains(&id) && text.contains("RUNNING") && text.contains("$0.33/h"),
        "{text}"
    );

    // A pod ComfyFleet did not create is refused.
    for action in ["stop", "terminate"] {
        let out = run(&["pods", action, "foreign01"], None);
        assert_eq!(out.status.code(), Some(2));
        assert!(
            stderr(&out).contains("not created by ComfyFleet"),
            "{}",
            stderr(&out)
        );
    }

    let stopped = json(&["pods", "stop", &id, "--json"]);
    assert_eq!(stopped["state"], "stopped", "{stopped}");
    assert_eq!(stopped["status"], "EXITED", "{stopped}");
    let terminated = json(&["pods", "terminate", &id, "--json"]);
    assert_eq!(terminated["state"], "terminated", "{terminated}");
    assert_eq!(json(&["pods", "list", "--json"]), serde_json::json!([]));
    assert_eq!(json(&["servers", "list", "--json"]), serde_json::json!([]));

    assert!(fake
        .requests()
        .iter()
        .all(|r| r.pod_id() != Some("foreign01")));
    run(&["runpod", "key", "remove"], None);
    for path in crate::files_under(cli.home.path()) {
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        assert!(!text.contains(DEFAULT_API_KEY), "{}", path.display());
    }
}

#[test]
fn cli_pods_idle_settings_are_shown_changed_and_checked() {
    let cli = Cli::new();
    let shown = cli.ok(&["pods", "idle"], None);
    assert!(
        shown.contains("after 5 min") && shown.contains("after 2 min") && shown.contains("$1.00/h"),
        "{shown}"
    );
    let cfg = cli.json(&[
        "pods",
        "idle",
        "--minutes",
        "10",
        "--expensive-minutes",
        "3",
        "--expensive-at",
        "2.50",
        "--json",
    ]);
    assert_eq!(
        (
            &cfg["enabled"],
            &cfg["idle_ms"],
            &cfg["expensive_idle_ms"],
            &cfg["expensive_threshold_micros_per_hr"]
        ),
        (
            &Value::from(true),
            &Value::from(600_000),
            &Value::from(180_000),
            &Value::from(2_500_000)
        )
    );
    // Kept: a later look shows the same.
    assert_eq!(cli.json(&["pods", "idle", "--json"]), cfg);
    let off = cli.ok(&["pods", "idle", "--off"], None);
    assert!(off.contains("not stopped automatically"), "{off}");
    let out = cli.run(&["pods", "idle", "--expensive-at", "lots"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("like 1.50"), "{}", stderr(&out));
    // Idle times are checked where they are kept: none at all, or more than a week, is refused and changes nothing.
    for (minutes, says) in [
        ("0", "more than 0 minutes"),
        ("10081", "at most a week"),
        ("soon", "like 5 or 1.5"),
    ] {
        let out = cli.run(&["pods", "idle", "--minutes", minutes], None);
        assert_eq!(out.status.code(), Some(2), "{minutes}");
        assert!(stderr(&out).contains(says), "{minutes}: {}", stderr(&out));
    }
    assert_eq!(
        cli.json(&["pods", "idle", "--json"])["idle_ms"],
        cfg["idle_ms"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_pods_watch_stops_idle_pods_until_interrupted() {
    let _key = crate::RUNPOD_KEY.lock().await;
    let fake = FakeRunpod::start(FakeRunpodConfig {
        seeded_pods: vec![SeededPod::foreign("foreign01", "someone's notebook")],
        ..FakeRunpodConfig::default()
    })
    .await;
    let cli = Cli::new();
    let rest = format!("{}/v2", fake.url());
    let proxy = fake.proxy_url_template();
    let env = [
        ("RUNPOD_REST_API_URL", rest.as_str()),
        ("COMFYFLEET_RUNPOD_PROXY_URL", proxy.as_str()),
    ];
    let out = cli.run_with(&["runpod", "key", "set"], Some(DEFAULT_API_KEY), &env);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = cli.run_with(&["pods", "create", "--json"], None, &env);
    assert!(out.status.success(), "{}", stderr(&out));
    let pod: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = pod["pod_id"].as_str().unwrap().to_string();
    cli.ok(&["pods", "idle", "--minutes", "0.01"], None);

    let child = cli
        .command(&["pods", "watch", "--interval", "1"])
        .envs(env)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    let status = |id: &str| {
        fake.pods()
            .into_iter()
            .find(|p| p.id == id)
            .map(|p| p.status)
    };
    while status(&id) != Some(comfyfleet_testkit::runpod::PodStatus::Exited) {
        assert!(
            start.elapsed().as_secs() < 15,
            "the idle pod was not stopped"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // The watcher is up (it stopped the pod); give its Ctrl-C handler a moment on a loaded machine.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // SAFETY: sending SIGINT to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.contains("Watching")
            && text.contains("Stopped pod")
            && text.contains("Stopped watching"),
        "{text}"
    );
    assert_eq!(
        status("foreign01"),
        Some(comfyfleet_testkit::runpod::PodStatus::Running)
    );
    assert!(fake
        .requests()
        .iter()
        .all(|r| r.pod_id() != Some("foreign01")));
    cli.run_with(&["pods", "terminate", &id], None, &env);
    cli.run(&["runpod", "key", "remove"], None);
}
