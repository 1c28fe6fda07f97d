//! `comfyfleet runpod key`: the key goes into the real keychain from stdin, is tested against the fake RunPod
//! (accepted, then refused with what to do), and never appears in any output.

use comfyfleet_testkit::runpod::DEFAULT_API_KEY;
use comfyfleet_testkit::{FakeRunpod, FakeRunpodConfig};

use crate::{stderr, Cli};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_runpod_key_is_kept_in_the_keychain_tested_and_never_shown() {
    let _key = crate::RUNPOD_KEY.lock().await;
    let fake = FakeRunpod::start(FakeRunpodConfig::default()).await;
    let cli = Cli::new();
    let rest = format!("{}/v2", fake.url());
    let with_fake = |args: &[&str], stdin: Option<&str>| {
        cli.run_with(args, stdin, &[("RUNPOD_REST_API_URL", rest.as_str())])
    };
    let out = with_fake(&["runpod", "key", "test"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("No RunPod API key is set"),
        "{}",
        stderr(&out)
    );

    let out = with_fake(&["runpod", "key", "set"], Some(DEFAULT_API_KEY));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = with_fake(&["runpod", "key", "test", "--json"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let t: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(t["ok"], true, "{t}");
    assert!(fake
        .requests()
        .iter()
        .any(|r| r.path_only() == "/v2/catalog/gpus"));

    // A wrong key: refused, with what to do, exit 1; the key is in no output.
    let wrong = "rpa_WRONGWRONGWRONG0000000000";
    with_fake(&["runpod", "key", "set"], Some(wrong));
    let out = with_fake(&["runpod", "key", "test"], None);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &stderr(&out);
    assert!(text.contains("refused the API key (401)"), "{text}");
    for args in [
        &["runpod", "key", "status"][..],
        &["runpod", "key", "test"][..],
    ] {
        let o = with_fake(args, None);
        let all = String::from_utf8_lossy(&o.stdout).to_string() + &stderr(&o);
        assert!(
            !all.contains(wrong) && !all.contains(DEFAULT_API_KEY),
            "{all}"
        );
    }
    let out = with_fake(&["runpod", "key", "remove"], None);
    assert!(String::from_utf8_lossy(&out.stdout).contains("not set"));
    let status = with_fake(&["runpod", "key", "status", "--json"], None);
    let s: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(s["set"], false);
    // Nothing under the app home holds either key.
    for path in crate::files_under(cli.home.path()) {
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        assert!(
            !text.contains(wrong) && !text.contains(DEFAULT_API_KEY),
            "{}",
            path.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_servers_add_a_runpod_serverless_endpoint_test_it_and_list_it() {
    let _key = crate::RUNPOD_KEY.lock().await;
    let fake = FakeRunpod::start(FakeRunpodConfig::default()).await;
    let cli = Cli::new();
    let base = format!("{}/v2", fake.url());
    let env = [
        ("RUNPOD_ENDPOINT_BASE_URL", base.as_str()),
        ("RUNPOD_REST_API_URL", base.as_str()),
    ];
    let run = |args: &[&str], stdin: Option<&str>| cli.run_with(args, stdin, &env);

    // Settings that only make sense for an endpoint are refused on a ComfyUI server, and a bad id is explained.
    let out = run(
        &[
            "servers",
            "add",
            "--name",
            "X",
            "--url",
            "http://127.0.0.1:8188",
            "--flavour",
            "sdxl",
        ],
        None,
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--kind runpod-serverless"),
        "{}",
        stderr(&out)
    );
    let out = run(
        &[
            "servers",
            "add",
            "--name",
            "X",
            "--kind",
            "runpod-serverless",
            "--endpoint",
            "a b",
            "--gpu",
            "ADA_24",
        ],
        None,
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not a RunPod endpoint id"),
        "{}",
        stderr(&out)
    );

    let out = run(
        &[
            "servers",
            "add",
            "--name",
            "Cloud",
            "--kind",
            "runpod-serverless",
            "--endpoint",
            "ep-comfy",
            "--gpu",
            "ADA_24",
            "--flavour",
            "flux1-schnell",
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("runpod key set"),
        "no key yet: {}",
        stderr(&out)
    );
    let list: serde_json::Value =
        serde_json::from_slice(&run(&["servers", "list", "--json"], None).stdout).unwrap();
    let cloud = &list[0];
    assert_eq!(cloud["kind"], "runpod_serverless");
    assert_eq!(cloud["url"], "https://api.runpod.ai/v2/ep-comfy");
    assert_eq!(cloud["runpod"]["flavour"], "flux1-schnell");
    assert_eq!(cloud["runpod"]["gpu_class"], "ADA_24");

    // Tested through RunPod's /health with the account key.
    let out = run(&["servers", "test", "Cloud", "--json"], None);
    assert_eq!(out.status.code(), Some(1), "no key: not connected");
    let out = run(&["runpod", "key", "set"], Some(DEFAULT_API_KEY));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&["servers", "test", "Cloud", "--json"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let t: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(t[0]["status"], "connected", "{t}");
    assert!(fake
        .requests()
        .iter()
        .any(|r| r.path_only() == "/v2/ep-comfy/health"));
    // Editing keeps the endpoint and changes only what is given.
    let out = run(&["servers", "edit", "Cloud", "--flavour", "sdxl"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let list: serde_json::Value =
        serde_json::from_slice(&run(&["servers", "list", "--json"], None).stdout).unwrap();
    assert_eq!(list[0]["runpod"]["flavour"], "sdxl");
    assert_eq!(list[0]["runpod"]["endpoint_id"], "ep-comfy");
    run(&["runpod", "key", "remove"], None);
    for path in crate::files_under(cli.home.path()) {
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        assert!(!text.contains(DEFAULT_API_KEY), "{}", path.display());
    }
}
