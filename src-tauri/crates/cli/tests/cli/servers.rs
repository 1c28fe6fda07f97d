//! `comfyfleet servers …` as a user runs it.

use std::time::{Duration, Instant};

use comfyfleet_testkit::{FakeAuth, FakeComfy, FakeComfyConfig, FakeDevice, Fault};

use crate::{stderr, Cli};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_servers_add_and_list_json_has_the_documented_shape() {
    let cli = Cli::new();
    cli.ok(
        &[
            "servers",
            "add",
            "--name",
            "Local",
            "--url",
            "http://127.0.0.1:8188",
            "--tag",
            "local",
            "--tag",
            "fast",
        ],
        None,
    );
    cli.ok(
        &[
            "servers",
            "add",
            "--name",
            "Proxy",
            "--url",
            "https://gpu.example.com",
            "--auth",
            "basic",
            "--user",
            "bob",
        ],
        Some("pw\n"),
    );
    cli.ok(&["servers", "activate", "Local"], None);
    let list = cli.json(&["servers", "list", "--json"]);
    let items = list.as_array().unwrap();
    assert_eq!(items.len(), 2);
    let local = &items[0];
    let mut keys: Vec<_> = local.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        ["active", "auth", "has_secret", "id", "name", "tags", "url"]
    );
    assert_eq!(local["name"], "Local");
    assert_eq!(local["active"], true);
    assert_eq!(local["auth"], "none");
    assert_eq!(local["tags"], serde_json::json!(["local", "fast"]));
    assert_eq!(items[1]["auth"], "basic");
    assert_eq!(items[1]["has_secret"], true);
    assert_eq!(items[1]["active"], false);
    let human = cli.ok(&["servers", "list"], None);
    assert!(human.contains("* Local"), "{human}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_secret_written_by_one_process_is_used_by_another() {
    let token = format!("$2b$12${}", uuid::Uuid::new_v4().simple());
    let fake = FakeComfy::start(FakeComfyConfig {
        auth: Some(FakeAuth::ComfyuiLogin {
            token: token.clone(),
        }),
        ..Default::default()
    })
    .await;
    let cli = Cli::new();
    let out = cli.ok(
        &[
            "servers",
            "add",
            "--name",
            "Login",
            "--url",
            &fake.url(),
            "--auth",
            "comfyui-login",
        ],
        Some(&token),
    );
    assert!(!out.contains(&token));
    // A different process reads the token from the keychain and the server accepts it.
    let res = cli.json(&["servers", "test", "Login", "--json"]);
    assert_eq!(res[0]["status"], "connected", "{res}");
    assert!(fake
        .requests()
        .iter()
        .any(|r| r.header("authorization") == Some(format!("Bearer {token}").as_str())));
    // And the secret is in no file under the home.
    for entry in crate::files_under(cli.home.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
            "token in {}",
            entry.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_servers_test_json_reports_status_devices_and_queue() {
    let good = FakeComfy::start(FakeComfyConfig {
        devices: vec![FakeDevice::cuda(
            "NVIDIA GeForce RTX 4090",
            25_757_220_864,
            20_000_000_000,
        )],
        queue_running: 1,
        queue_pending: 4,
        ..Default::default()
    })
    .await;
    let hung = FakeComfy::start(FakeComfyConfig {
        fault: Fault::Hang,
        ..Default::default()
    })
    .await;
    let cli = Cli::new();
    cli.ok(
        &["servers", "add", "--name", "Good", "--url", &good.url()],
        None,
    );
    cli.ok(
        &[
            "servers",
            "add",
            "--name",
            "Hung",
            "--url",
            &hung.url(),
            "--timeout",
            "1",
        ],
        None,
    );
    let start = Instant::now();
    let out = cli.run(&["servers", "test", "--all", "--json"], None);
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "hung server bounded by its 1 s timeout"
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "a server is down, so the exit code says so"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let g = &v[0];
    let mut keys: Vec<_> = g.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "comfyui_version",
            "devices",
            "error",
            "id",
            "latency_ms",
            "name",
            "queue",
            "status",
            "url"
        ]
    );
    assert_eq!(g["status"], "connected");
    assert_eq!(g["comfyui_version"], "0.3.64");
    assert_eq!(g["devices"][0]["type"], "cuda");
    assert_eq!(g["devices"][0]["vram_total"], 25_757_220_864u64);
    assert_eq!(g["devices"][0]["vram_free"], 20_000_000_000u64);
    assert_eq!(g["queue"], serde_json::json!({"running": 1, "pending": 4}));
    assert!(g["latency_ms"].is_u64());
    assert_eq!(v[1]["status"], "timeout");
    assert!(v[1]["error"].as_str().unwrap().contains("did not answer"));
    let ok = cli.run(&["servers", "test", "Good"], None);
    assert!(ok.status.success());
    assert!(String::from_utf8_lossy(&ok.stdout).contains("ComfyUI 0.3.64"));
}

#[test]
fn cli_errors_are_one_line_on_stderr_with_a_nonzero_exit() {
    let cli = Cli::new();
    cli.ok(
        &[
            "servers",
            "add",
            "--name",
            "Local",
            "--url",
            "http://127.0.0.1:8188",
        ],
        None,
    );
    let cases: Vec<(Vec<&str>, Option<&str>, &str)> = vec![
        (
            vec!["servers", "add", "--name", "X", "--url", "localhost:8188"],
            None,
            "http://localhost:8188",
        ),
        (
            vec!["servers", "add", "--name", "X", "--url", "ftp://x"],
            None,
            "'ftp:'",
        ),
        (
            vec!["servers", "add", "--name", "X", "--url", "http://"],
            None,
            "no host",
        ),
        (
            vec![
                "servers",
                "add",
                "--name",
                "X",
                "--url",
                "javascript:alert(1)",
            ],
            None,
            "'javascript:'",
        ),
        (
            vec![
                "servers",
                "add",
                "--name",
                "local",
                "--url",
                "http://127.0.0.1:1",
            ],
            None,
            "already exists",
        ),
        (
            vec![
                "servers",
                "add",
                "--name",
                "T",
                "--url",
                "http://127.0.0.1:1",
                "--auth",
                "bearer",
            ],
            Some(""),
            "empty",
        ),
        (
            vec!["servers", "remove", "nope"],
            None,
            "No server is called",
        ),
        (
            vec!["servers", "activate", "nope"],
            None,
            "No server is called",
        ),
        (
            vec!["servers", "import", "/nonexistent/file.json"],
            None,
            "Could not read",
        ),
    ];
    for (args, stdin, hint) in cases {
        let out = cli.run(&args, stdin);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("error: ") && err.contains(hint),
            "{args:?}: {err}"
        );
    }
    // The list is unchanged by all of that.
    assert_eq!(
        cli.json(&["servers", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Secrets are never taken from arguments: there is no such option.
    let out = cli.run(
        &[
            "servers", "add", "--name", "T", "--url", "http://h", "--auth", "bearer", "--token",
            "abc",
        ],
        None,
    );
    assert!(!out.status.success());
}

#[test]
fn cli_export_import_round_trip_and_legacy_import() {
    let a = Cli::new();
    a.ok(
        &[
            "servers",
            "add",
            "--name",
            "Keyed",
            "--url",
            "https://k.example.com",
            "--auth",
            "api-key",
            "--header",
            "X-API-Key",
        ],
        Some("key-123"),
    );
    a.ok(
        &[
            "servers",
            "add",
            "--name",
            "Local",
            "--url",
            "http://127.0.0.1:8188",
            "--tag",
            "local",
        ],
        None,
    );
    let file = a.home.path().join("out.json");
    let out = a.ok(&["servers", "export", file.to_str().unwrap()], None);
    assert!(out.contains("Exported 2"));
    assert!(!std::fs::read_to_string(&file).unwrap().contains("key-123"));

    let b = Cli::new();
    let out = b.ok(&["servers", "import", file.to_str().unwrap()], None);
    assert!(out.contains("Imported 2"), "{out}");
    assert!(out.contains("'Keyed' needs credentials"), "{out}");
    let list = b.json(&["servers", "list", "--json"]);
    assert_eq!(list[0]["has_secret"], false);
    // Give the imported server its key: edit --secret reads it from stdin.
    b.ok(&["servers", "edit", "Keyed", "--secret"], Some("key-123"));
    assert_eq!(
        b.json(&["servers", "list", "--json"])[0]["has_secret"],
        true
    );

    let c = Cli::new();
    let legacy = c.home.path().join("legacy.json");
    std::fs::write(&legacy, r#"{"comfyui-settings": {"serverUrl": "http://127.0.0.1:8188", "authentication": {"type": "none"}}}"#).unwrap();
    c.ok(&["servers", "import", legacy.to_str().unwrap()], None);
    let list = c.json(&["servers", "list", "--json"]);
    assert_eq!(list[0]["name"], "Default Server");
    assert_eq!(list[0]["active"], true);
}

#[test]
fn cli_edit_changes_only_what_is_given_and_remove_of_the_active_says_so() {
    let cli = Cli::new();
    cli.ok(
        &[
            "servers",
            "add",
            "--name",
            "Box",
            "--url",
            "http://127.0.0.1:8188",
            "--tag",
            "lan",
            "--timeout",
            "5",
        ],
        None,
    );
    cli.ok(
        &["servers", "edit", "Box", "--url", "http://127.0.0.1:8190"],
        None,
    );
    let v = cli.json(&["servers", "list", "--json"]);
    assert_eq!(v[0]["url"], "http://127.0.0.1:8190");
    assert_eq!(v[0]["tags"], serde_json::json!(["lan"]));
    cli.ok(&["servers", "activate", "Box"], None);
    let out = cli.ok(&["servers", "remove", "box"], None);
    assert!(out.contains("no server is active now"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_processes_and_the_app_write_at_once_without_losing_anything() {
    let cli = Cli::new();
    let home = cli.home.path().to_path_buf();
    let fleet =
        comfyfleet_core::Fleet::open(comfyfleet_core::home::AppHome::at(&home).unwrap()).unwrap();
    let mut children = Vec::new();
    for p in 0..3 {
        let script: Vec<String> = (0..8).map(|i| format!("cli-{p}-{i}")).collect();
        let exe = env!("CARGO_BIN_EXE_comfyfleet").to_string();
        let home = home.clone();
        children.push(std::thread::spawn(move || {
            for (i, name) in script.iter().enumerate() {
                let out = std::process::Command::new(&exe)
                    .args([
                        "servers",
                        "add",
                        "--name",
                        name,
                        "--url",
                        &format!("http://127.0.0.1:{}", 2000 + p * 100 + i),
                    ])
                    .env("COMFYFLEET_HOME", &home)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }));
    }
    for i in 0..8 {
        let inp = comfyfleet_core::servers::ServerInput {
            name: format!("app-{i}"),
            url: format!("http://127.0.0.1:{}", 3000 + i),
            ..Default::default()
        };
        fleet.servers.add(inp).await.unwrap();
    }
    for c in children {
        c.join().unwrap();
    }
    assert_eq!(fleet.servers.list().await.unwrap().len(), 32);
    let ok = rusqlite_integrity(&home);
    assert_eq!(ok, "ok");
}

fn rusqlite_integrity(home: &std::path::Path) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_comfyfleet"))
        .args(["servers", "list", "--json"])
        .env("COMFYFLEET_HOME", home)
        .output()
        .unwrap();
    if out.status.success() {
        "ok".into()
    } else {
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

#[test]
fn cli_without_a_keychain_says_so_and_adds_nothing() {
    let cli = Cli::new();
    let out = cli
        .command(&[
            "servers",
            "add",
            "--name",
            "T",
            "--url",
            "http://127.0.0.1:1",
            "--auth",
            "bearer",
        ])
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            "unix:path=/nonexistent/comfyfleet-test-bus",
        )
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"tok")?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("system keychain is not available") && err.contains("GNOME Keyring"),
        "{err}"
    );
    assert_eq!(
        cli.json(&["servers", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        0
    );
}
