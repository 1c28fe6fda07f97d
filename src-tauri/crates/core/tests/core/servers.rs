//! The server list: CRUD, validation, the active server, persistence, import/export, and secrets kept out of files.

use comfyfleet_core::servers::{AuthKind, ServersError};
use comfyfleet_core::HasErrorInfo;

use crate::support::*;

#[tokio::test]
async fn servers_add_edit_delete_round_trip_with_the_secret_in_the_keychain() {
    let t = fleet();
    let s = t
        .fleet
        .servers
        .add(with_auth(
            input("GPU box", "https://gpu.example.com/comfy/"),
            AuthKind::Basic,
            Some("bob"),
            None,
            Some("pw-1"),
        ))
        .await
        .unwrap();
    assert_eq!(s.url, "https://gpu.example.com/comfy");
    assert!(s.has_secret && !s.needs_credentials);
    let creds = t.fleet.servers.credentials(&s).await.unwrap();
    assert_eq!(creds.secret.unwrap().expose(), "pw-1");

    // Edit without a secret keeps it; with one replaces it.
    let mut edit = with_auth(
        input("GPU box 2", "https://gpu.example.com"),
        AuthKind::Basic,
        Some("bob"),
        None,
        None,
    );
    edit.tags = vec!["studio".into()];
    let s2 = t.fleet.servers.update(&s.id, edit.clone()).await.unwrap();
    assert_eq!(
        (s2.name.as_str(), s2.tags.clone()),
        ("GPU box 2", vec!["studio".to_string()])
    );
    assert_eq!(
        t.fleet
            .servers
            .credentials(&s2)
            .await
            .unwrap()
            .secret
            .unwrap()
            .expose(),
        "pw-1"
    );
    let s3 = t
        .fleet
        .servers
        .update(
            &s.id,
            with_auth(
                input("GPU box 2", "https://gpu.example.com"),
                AuthKind::Basic,
                Some("bob"),
                None,
                Some("pw-2"),
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        t.fleet
            .servers
            .credentials(&s3)
            .await
            .unwrap()
            .secret
            .unwrap()
            .expose(),
        "pw-2"
    );

    // Switching to no auth removes the secret from the keychain.
    let s4 = t
        .fleet
        .servers
        .update(&s.id, input("GPU box 2", "https://gpu.example.com"))
        .await
        .unwrap();
    assert!(!s4.has_secret);
    let again = t
        .fleet
        .servers
        .update(
            &s.id,
            with_auth(
                input("GPU box 2", "https://gpu.example.com"),
                AuthKind::Bearer,
                None,
                None,
                None,
            ),
        )
        .await;
    assert!(
        matches!(again, Err(ServersError::Input(_))),
        "a bearer server needs its token again"
    );

    let out = t.fleet.servers.delete("gpu BOX 2").await.unwrap();
    assert!(!out.was_active);
    assert!(t.fleet.servers.list().await.unwrap().is_empty());
    assert_eq!(
        t.fleet.servers.delete(&s.id).await.unwrap_err().code(),
        "servers.not_found"
    );
}

#[tokio::test]
async fn servers_refuse_bad_input_with_a_clear_message_and_change_nothing() {
    let t = fleet();
    t.fleet
        .servers
        .add(input("Local", "http://127.0.0.1:8188"))
        .await
        .unwrap();
    let before = t.fleet.servers.list().await.unwrap();
    for (url, hint) in [
        ("localhost:8188", "http://localhost:8188"),
        ("ftp://x", "'ftp:'"),
        ("http://", "no host"),
        ("javascript:alert(1)", "'javascript:'"),
    ] {
        let e = t.fleet.servers.add(input("New", url)).await.unwrap_err();
        assert_eq!(e.code(), "servers.invalid_url", "{url}");
        assert!(e.to_string().contains(hint), "{url}: {e}");
    }
    let e = t
        .fleet
        .servers
        .add(input("LOCAL", "http://127.0.0.1:8189"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "servers.duplicate_name");
    let e = t
        .fleet
        .servers
        .add(input(&"n".repeat(65), "http://127.0.0.1:8189"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("64"));
    let e = t
        .fleet
        .servers
        .add(with_auth(
            input("Tok", "http://h"),
            AuthKind::Bearer,
            None,
            None,
            None,
        ))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("token"), "{e}");
    // Renaming onto another server's name is refused too.
    let other = t
        .fleet
        .servers
        .add(input("Other", "http://127.0.0.1:8190"))
        .await
        .unwrap();
    let e = t
        .fleet
        .servers
        .update(&other.id, input("local", "http://127.0.0.1:8190"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "servers.duplicate_name");
    t.fleet.servers.delete(&other.id).await.unwrap();
    assert_eq!(t.fleet.servers.list().await.unwrap(), before);
}

#[tokio::test]
async fn servers_keep_zero_or_one_active_and_deleting_the_active_one_says_so() {
    let t = fleet();
    let a = t
        .fleet
        .servers
        .add(input("A", "http://127.0.0.1:1"))
        .await
        .unwrap();
    let b = t
        .fleet
        .servers
        .add(input("B", "http://127.0.0.1:2"))
        .await
        .unwrap();
    assert!(t.fleet.servers.active().await.unwrap().is_none());
    t.fleet.servers.activate(Some("a")).await.unwrap();
    t.fleet.servers.activate(Some(&b.id)).await.unwrap();
    let list = t.fleet.servers.list().await.unwrap();
    assert_eq!(list.iter().filter(|s| s.active).count(), 1);
    assert_eq!(t.fleet.servers.active().await.unwrap().unwrap().id, b.id);
    let out = t.fleet.servers.delete(&b.id).await.unwrap();
    assert!(out.was_active);
    assert!(
        out.message.contains("no server is active"),
        "{}",
        out.message
    );
    assert!(t.fleet.servers.active().await.unwrap().is_none());
    let out = t.fleet.servers.delete(&a.id).await.unwrap();
    assert!(!out.was_active);
}

#[tokio::test]
async fn servers_survive_reopening_the_database() {
    let dir = tempfile::tempdir().unwrap();
    {
        let f =
            comfyfleet_core::Fleet::open(comfyfleet_core::home::AppHome::at(dir.path()).unwrap())
                .unwrap();
        let mut i = input("Keep me", "http://127.0.0.1:8188");
        i.tags = vec!["local".into()];
        i.timeout_ms = Some(3000);
        i.max_queue = Some(7);
        i.notes = "under the desk".into();
        f.servers.add(i).await.unwrap();
        f.servers.activate(Some("Keep me")).await.unwrap();
        f.settings
            .set(comfyfleet_core::settings::Settings { auto_switch: true })
            .await
            .unwrap();
    }
    let f = comfyfleet_core::Fleet::open(comfyfleet_core::home::AppHome::at(dir.path()).unwrap())
        .unwrap();
    let s = f.servers.active().await.unwrap().unwrap();
    assert_eq!(
        (s.name.as_str(), s.timeout_ms, s.max_queue, s.notes.as_str()),
        ("Keep me", 3000, Some(7), "under the desk")
    );
    assert_eq!(s.tags, vec!["local".to_string()]);
    assert!(f.settings.get().await.unwrap().auto_switch);
}

#[tokio::test]
async fn servers_export_holds_no_secret_and_import_marks_servers_needing_credentials() {
    let src = fleet();
    let secret = format!("tok-{}", uuid::Uuid::new_v4());
    src.fleet
        .servers
        .add(with_auth(
            input("Login", "http://127.0.0.1:8189"),
            AuthKind::ComfyuiLogin,
            None,
            None,
            Some(&secret),
        ))
        .await
        .unwrap();
    src.fleet
        .servers
        .add(with_auth(
            input("Keyed", "https://k.example.com"),
            AuthKind::ApiKey,
            None,
            Some("X-API-Key"),
            Some(&secret),
        ))
        .await
        .unwrap();
    src.fleet
        .servers
        .add(input("Open", "http://127.0.0.1:8188"))
        .await
        .unwrap();
    src.fleet.servers.activate(Some("Open")).await.unwrap();
    let file = src.dir.path().join("export.json");
    let report = src.fleet.servers.export_to(&file).await.unwrap();
    assert_eq!(report.count, 3);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains(&secret));
    assert!(text.contains("\"version\": 1"));

    let dst = fleet();
    dst.fleet
        .servers
        .add(input("open", "http://10.0.0.1:8188"))
        .await
        .unwrap();
    let r = dst.fleet.servers.import_from(&file).await.unwrap();
    assert_eq!(r.added, vec!["Login".to_string(), "Keyed".to_string()]);
    assert_eq!(r.skipped.len(), 1);
    assert_eq!(
        r.needs_credentials,
        vec!["Login".to_string(), "Keyed".to_string()]
    );
    let list = dst.fleet.servers.list().await.unwrap();
    let login = list.iter().find(|s| s.name == "Login").unwrap();
    assert!(login.needs_credentials && !login.has_secret);
    assert_eq!(login.auth.kind, AuthKind::ComfyuiLogin);
    let keyed = list.iter().find(|s| s.name == "Keyed").unwrap();
    assert_eq!(keyed.auth.header.as_deref(), Some("X-API-Key"));
    // The file's active server was skipped (name taken), so nothing became active.
    assert_eq!(r.activated, None);
}

#[tokio::test]
async fn servers_import_the_legacy_format_as_the_active_default_server() {
    let t = fleet();
    let file = t.dir.path().join("legacy.json");
    std::fs::write(&file, r#"{"comfyui-settings": {"serverUrl": "http://127.0.0.1:8188/", "authentication": {"type": "none"}}}"#).unwrap();
    let r = t.fleet.servers.import_from(&file).await.unwrap();
    assert_eq!(r.added, vec!["Default Server".to_string()]);
    assert_eq!(r.activated.as_deref(), Some("Default Server"));
    let s = t.fleet.servers.active().await.unwrap().unwrap();
    assert_eq!(
        (s.name.as_str(), s.url.as_str()),
        ("Default Server", "http://127.0.0.1:8188")
    );
}

#[tokio::test]
async fn servers_import_of_a_bad_file_fails_and_changes_nothing() {
    let t = fleet();
    t.fleet
        .servers
        .add(input("Existing", "http://127.0.0.1:8188"))
        .await
        .unwrap();
    let before = t.fleet.servers.list().await.unwrap();
    let good = r#"{"format":"comfyfleet-servers","version":1,"servers":[{"name":"A","url":"http://127.0.0.1:1"},{"name":"B","url":"http://127.0.0.1:2"}]}"#;
    let big = {
        let mut s = String::from(
            r#"{"format":"comfyfleet-servers","version":1,"servers":[{"name":"A","url":"http://h","notes":""#,
        );
        s.push_str(&"x".repeat(50 * 1024 * 1024));
        s.push_str(r#""}]}"#);
        s
    };
    let cases: Vec<(&str, String, &str)> = vec![
        ("malformed", "{not json".into(), "not valid JSON"),
        ("truncated", good[..good.len() - 20].into(), "truncated"),
        (
            "unknown version",
            good.replace("\"version\":1", "\"version\":9"),
            "version 9",
        ),
        (
            "other json",
            r#"{"hello":"world"}"#.into(),
            "not a ComfyFleet server list",
        ),
        (
            "second server invalid",
            good.replace("http://127.0.0.1:2", "ftp://x"),
            "Server #2",
        ),
        ("50 MB", big, "MB"),
        ("empty", String::new(), "empty"),
    ];
    for (what, text, hint) in cases {
        let file = t.dir.path().join("bad.json");
        std::fs::write(&file, &text).unwrap();
        let e = t.fleet.servers.import_from(&file).await.unwrap_err();
        assert!(e.to_string().contains(hint), "{what}: {e}");
        assert_eq!(
            t.fleet.servers.list().await.unwrap(),
            before,
            "{what} changed the list"
        );
    }
    let e = t
        .fleet
        .servers
        .import_from(&t.dir.path().join("missing.json"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "servers.read_failed");
}

#[tokio::test]
async fn servers_secrets_never_reach_a_file_under_the_home() {
    let t = fleet();
    let secret = format!("S3CRET-{}", uuid::Uuid::new_v4().simple());
    let fake = comfyfleet_testkit::FakeComfy::start(comfyfleet_testkit::FakeComfyConfig {
        auth: Some(comfyfleet_testkit::FakeAuth::ComfyuiLogin {
            token: secret.clone(),
        }),
        ..Default::default()
    })
    .await;
    let _log = comfyfleet_core::logging::init_file(&t.fleet.home, "leak-test");
    for (name, kind, user, header) in [
        ("basic", AuthKind::Basic, Some("bob"), None),
        ("bearer", AuthKind::Bearer, None, None),
        ("key", AuthKind::ApiKey, None, Some("X-Key")),
        ("login", AuthKind::ComfyuiLogin, None, None),
    ] {
        let s = t
            .fleet
            .servers
            .add(with_auth(
                input(name, &fake.url()),
                kind,
                user,
                header,
                Some(&secret),
            ))
            .await
            .unwrap();
        let st = t.fleet.health.test(&s.id, true).await.unwrap();
        assert!(!format!("{st:?}").contains(&secret));
        assert!(!serde_json::to_string(&st).unwrap().contains(&secret));
        assert!(!serde_json::to_string(&s).unwrap().contains(&secret));
    }
    // A wrong secret produces an error text: it must not echo the secret either.
    let wrong = format!("WRONG-{}", uuid::Uuid::new_v4().simple());
    let s = t
        .fleet
        .servers
        .add(with_auth(
            input("wrong", &fake.url()),
            AuthKind::Bearer,
            None,
            None,
            Some(&wrong),
        ))
        .await
        .unwrap();
    let st = t.fleet.health.test(&s.id, true).await.unwrap();
    assert!(!st.error.clone().unwrap_or_default().contains(&wrong));
    let e = t
        .fleet
        .servers
        .add(with_auth(
            input("dup", &fake.url()),
            AuthKind::Bearer,
            None,
            None,
            Some(&wrong),
        ))
        .await;
    assert!(e.is_ok());
    let bad = t
        .fleet
        .servers
        .add(with_auth(
            input("dup", "ftp://x"),
            AuthKind::Bearer,
            None,
            None,
            Some(&secret),
        ))
        .await
        .unwrap_err();
    assert!(!bad.to_string().contains(&secret));
    t.fleet
        .servers
        .export_to(&t.dir.path().join("export.json"))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await; // let the log writer flush
    for (path, bytes) in all_file_bytes(t.dir.path()) {
        assert!(
            !contains(&bytes, &secret),
            "secret found in {}",
            path.display()
        );
        assert!(
            !contains(&bytes, &wrong),
            "secret found in {}",
            path.display()
        );
    }
    // …but the fake really received it, so the test would notice if nothing was sent at all.
    assert!(fake
        .requests()
        .iter()
        .any(|r| r.header("authorization") == Some(format!("Bearer {secret}").as_str())));
}

#[tokio::test]
async fn servers_two_handles_on_one_database_lose_nothing() {
    // The desktop app and the CLI open the same file; concurrent writers must not lose or corrupt rows.
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        comfyfleet_core::Fleet::open(comfyfleet_core::home::AppHome::at(dir.path()).unwrap())
            .unwrap()
    };
    let (a, b) = (open(), open());
    let add = |f: comfyfleet_core::Fleet, prefix: &'static str| async move {
        for i in 0..25 {
            f.servers
                .add(input(
                    &format!("{prefix}-{i}"),
                    &format!("http://127.0.0.1:{}", 1000 + i),
                ))
                .await
                .unwrap();
        }
    };
    tokio::join!(add(a.clone(), "a"), add(b.clone(), "b"));
    let list = open().servers.list().await.unwrap();
    assert_eq!(list.len(), 50);
    // The same name from both at once: exactly one wins.
    let (r1, r2) = tokio::join!(
        a.servers.add(input("Race", "http://127.0.0.1:1")),
        b.servers.add(input("race", "http://127.0.0.1:2"))
    );
    assert!(r1.is_ok() ^ r2.is_ok());
}
