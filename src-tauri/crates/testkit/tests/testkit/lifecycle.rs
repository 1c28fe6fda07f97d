//! Starting, changing, refusing and stopping fakes; recording what clients sent.

use std::time::{Duration, Instant};

use comfyfleet_testkit::{FakeComfy, FakeComfyConfig, Fault};

use super::{get, http};

#[tokio::test]
async fn lifecycle_set_config_changes_answers_live() {
    let fake = FakeComfy::start(FakeComfyConfig::default()).await;
    let url = format!("{}/system_stats", fake.url());
    assert!(get(&url).await.2.contains(r#""comfyui_version": "0.3.64""#));
    fake.set_config(|c| c.version = "0.3.99".into());
    assert!(get(&url).await.2.contains(r#""comfyui_version": "0.3.99""#));
    assert_eq!(fake.config().version, "0.3.99");
    fake.set_config(|c| c.fault = Fault::Http500);
    assert_eq!(get(&url).await.0, 500);
    fake.set_config(|c| c.fault = Fault::None);
    assert_eq!(get(&url).await.0, 200);
}

#[tokio::test]
async fn lifecycle_refuse_then_back_listens_on_the_same_port() {
    let fake = FakeComfy::start(FakeComfyConfig::default()).await;
    let url = format!("{}/queue", fake.url());
    let client = http();
    assert_eq!(
        client
            .get(&url)
            .send()
            .await
            .expect("answered")
            .status()
            .as_u16(),
        200
    );
    fake.set_config(|c| c.fault = Fault::Refuse);
    let error = client.get(&url).send().await.expect_err("refused");
    assert!(error.is_connect() || error.is_request(), "{error}");
    assert_eq!(
        tokio::net::TcpStream::connect(fake.addr())
            .await
            .expect_err("refused")
            .kind(),
        std::io::ErrorKind::ConnectionRefused
    );
    fake.set_config(|c| c.fault = Fault::None);
    assert_eq!(
        client
            .get(&url)
            .send()
            .await
            .expect("answered again")
            .status()
            .as_u16(),
        200
    );
    assert_eq!(fake.url(), url.trim_end_matches("/queue"));
}

#[tokio::test]
async fn lifecycle_requests_records_method_path_headers_and_body() {
    let fake = FakeComfy::start(FakeComfyConfig::default()).await;
    http()
        .post(format!("{}/api/history?max_items=2", fake.url()))
        .header("X-Probe", "yes")
        .body(r#"{"clear": true}"#)
        .send()
        .await
        .expect("answered");
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/api/history?max_items=2");
    assert_eq!(request.header("x-probe"), Some("yes"));
    assert!(request
        .headers
        .iter()
        .all(|(name, _)| *name == name.to_lowercase()));
    assert_eq!(request.body, br#"{"clear": true}"#);
    fake.clear_requests();
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn lifecycle_shutdown_frees_the_port() {
    let fake = FakeComfy::start(FakeComfyConfig::default()).await;
    let port = fake.port();
    fake.shutdown().await;
    let again = FakeComfy::start_on(port, FakeComfyConfig::default())
        .await
        .expect("port free again");
    assert_eq!(get(&format!("{}/prompt", again.url())).await.0, 200);
}

#[tokio::test]
async fn lifecycle_start_on_a_taken_port_is_an_error() {
    let fake = FakeComfy::start(FakeComfyConfig::default()).await;
    let error = FakeComfy::start_on(fake.port(), FakeComfyConfig::default())
        .await
        .expect_err("taken");
    assert_eq!(error.kind(), std::io::ErrorKind::AddrInUse);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_fifty_fakes_start_quickly() {
    let started = Instant::now();
    let mut fakes = Vec::new();
    for i in 0..50 {
        let fault = if i < 10 { Fault::Hang } else { Fault::None };
        fakes.push(
            FakeComfy::start(FakeComfyConfig {
                fault,
                ..FakeComfyConfig::default()
            })
            .await,
        );
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(500),
        "50 fakes took {elapsed:?}"
    );
    let answers = futures::future::join_all(
        fakes[10..]
            .iter()
            .map(|f| get_status(format!("{}/system_stats", f.url()))),
    )
    .await;
    assert!(answers.iter().all(|s| *s == 200), "{answers:?}");
    for fake in fakes {
        fake.shutdown().await;
    }
}

async fn get_status(url: String) -> u16 {
    get(&url).await.0
}
