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
