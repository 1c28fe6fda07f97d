//! Authentication and the origin check answer as recorded (ComfyUI-Login, section 8; origin check, section 6).

use comfyfleet_testkit::{FakeAuth, FakeComfy, FakeComfyConfig};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Error as WsError;

use super::{http, split, JSON};

const TOKEN: &str = "$2b$12$.YXx1fIWDcEoK06oup9Rfeg5lKdCKVpRCKV2hVW6HV82Sb5o3cpsS";

async fn login_fake() -> FakeComfy {
    FakeComfy::start(FakeComfyConfig {
        auth: Some(FakeAuth::ComfyuiLogin {
            token: TOKEN.to_string(),
        }),
        ..FakeComfyConfig::default()
    })
    .await
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

#[tokio::test]
async fn auth_comfyui_login_refuses_as_recorded() {
    let fake = login_fake().await;
    let url = format!("{}/system_stats", fake.url());
    let recorded: serde_json::Value =
        serde_json::from_str(include_str!("../../fixtures/auth_comfyui_login.json")).expect("JSON");
    let body_401 = recorded["no_auth"]["body"]
        .as_str()
        .expect("body")
        .to_string();

    let no_auth = http().get(&url).send().await.expect("answered");
    assert_eq!(
        split(no_auth).await,
        (401, Some(JSON.to_string()), body_401.clone())
    );

    let wrong = http()
        .get(&url)
        .header("Authorization", "Bearer nope")
        .send()
        .await
        .expect("answered");
    assert_eq!(split(wrong).await.0, 401);
    let lowercase = http()
        .get(&url)
        .header("Authorization", format!("bearer {TOKEN}"))
        .send()
        .await
        .expect("answered");
    assert_eq!(split(lowercase).await.0, 401);

    let one_word = http()
        .get(&url)
        .header("Authorization", TOKEN)
        .send()
        .await
        .expect("answered");
    assert_eq!(
        split(one_word).await,
        (
            500,
            Some("text/plain; charset=utf-8".to_string()),
            recorded["authorization_one_word"]["body"]
                .as_str()
                .expect("body")
                .to_string()
        )
    );

    let browser = no_redirects()
        .get(&url)
        .header("Accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .expect("answered");
    assert_eq!(browser.status().as_u16(), 302);
    assert_eq!(
        browser
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok()),
        Some("/login")
    );

    let post = http()
        .post(format!("{}/prompt", fake.url()))
        .body("{}")
        .send()
        .await
        .expect("answered");
    assert_eq!(split(post).await, (401, Some(JSON.to_string()), body_401));
}

#[tokio::test]
async fn auth_comfyui_login_accepts_bearer_and_query_token() {
    let fake = login_fake().await;
    let bearer = http()
        .get(format!("{}/api/queue", fake.url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answered");
    assert_eq!(
        split(bearer).await,
        (
            200,
            Some(JSON.to_string()),
            r#"{"queue_running": [], "queue_pending": []}"#.to_string()
        )
    );
    let encoded = "%242b%2412%24.YXx1fIWDcEoK06oup9Rfeg5lKdCKVpRCKV2hVW6HV82Sb5o3cpsS";
    for query in [encoded, TOKEN] {
        let response = http()
            .get(format!("{}/system_stats?token={query}", fake.url()))
            .send()
            .await
            .expect("answered");
        assert_eq!(response.status().as_u16(), 200, "{query}");
    }
    // Static files are exempt: no 401 (the fake has no such file, so the router's 404).
    let js = http()
        .get(format!("{}/extensions/core/groupNode.js", fake.url()))
        .send()
        .await
        .expect("answered");
    assert_eq!(js.status().as_u16(), 404);
}

#[tokio::test]
async fn auth_comfyui_login_guards_the_websocket_handshake() {
    let fake = login_fake().await;
    let refused = tokio_tungstenite::connect_async(fake.ws_url("a1"))
        .await
        .expect_err("refused");
    match refused {
        WsError::Http(response) => assert_eq!(response.status().as_u16(), 401),
        other => panic!("expected a 401 handshake, got {other}"),
    }
    let with_query = format!(
        "{}&token={}",
        fake.ws_url("a2"),
        "%242b%2412%24.YXx1fIWDcEoK06oup9Rfeg5lKdCKVpRCKV2hVW6HV82Sb5o3cpsS"
    );
    assert!(tokio_tungstenite::connect_async(with_query).await.is_ok());
    let mut request = fake.ws_url("a3").into_client_request().expect("request");
    request.headers_mut().insert(
        "Authorization",
        format!("Bearer {TOKEN}").parse().expect("header"),
    );
    assert!(tokio_tungstenite::connect_async(request).await.is_ok());
}

#[tokio::test]
async fn auth_proxy_kinds_challenge_and_accept() {
    let fake = FakeComfy::start(FakeComfyConfig {
        auth: Some(FakeAuth::Basic {
            user: "peer".into(),
            password: "secret".into(),
        }),
        ..FakeComfyConfig::default()
    })
    .await;
    let url = format!("{}/system_stats", fake.url());
    let missing = http().get(&url).send().await.expect("answered");
    assert_eq!(missing.status().as_u16(), 401);
    assert_eq!(
        missing
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Basic realm=\"comfy\"")
    );
    let wrong = http()
        .get(&url)
        .basic_auth("peer", Some("nope"))
        .send()
        .await
        .expect("answered");
    assert_eq!(wrong.status().as_u16(), 401);
    let right = http()
        .get(&url)
        .basic_auth("peer", Some("secret"))
        .send()
        .await
        .expect("answered");
    assert_eq!(right.status().as_u16(), 200);

    fake.set_config(|c| {
        c.auth = Some(FakeAuth::Bearer {
            token: "tok".into(),
        })
    });
    assert_eq!(
        http()
            .get(&url)
            .send()
            .await
            .expect("answered")
            .status()
            .as_u16(),
        401
    );
    assert_eq!(
        http()
            .get(&url)
            .bearer_auth("tok")
            .send()
            .await
            .expect("answered")
            .status()
            .as_u16(),
        200
    );

    fake.set_config(|c| {
        c.auth = Some(FakeAuth::ApiKey {
            header: "X-Api-Key".into(),
            value: "k1".into(),
        })
    });
    assert_eq!(
        http()
            .get(&url)
            .header("x-api-key", "k2")
            .send()
            .await
            .expect("answered")
            .status()
            .as_u16(),
        401
    );
    assert_eq!(
        http()
            .get(&url)
            .header("X-Api-Key", "k1")
            .send()
            .await
            .expect("answered")
            .status()
            .as_u16(),
        200
    );
}

#[tokio::test]
async fn origin_check_refuses_a_foreign_origin_with_403() {
    let fake = FakeComfy::start(FakeComfyConfig::default()).await;
    for origin in [
        "http://localhost:1420",
        "tauri://localhost",
        "http://evil.example",
    ] {
        let get = http()
            .get(format!("{}/queue", fake.url()))
            .header("Origin", origin)
            .send()
            .await
            .expect("answered");
        assert_eq!(split(get).await, (403, None, String::new()), "{origin}");
        let post = http()
            .post(format!("{}/prompt", fake.url()))
            .header("Origin", origin)
            .body("{}")
            .send()
            .await
            .expect("answered");
        assert_eq!(post.status().as_u16(), 403, "{origin}");
    }
    for origin in ["null", "file://", &fake.url()] {
        let response = http()
            .get(format!("{}/queue", fake.url()))
            .header("Origin", origin)
            .send()
            .await
            .expect("answered");
        assert_eq!(response.status().as_u16(), 200, "{origin}");
    }
    let mut request = fake.ws_url("o1").into_client_request().expect("request");
    request
        .headers_mut()
        .insert("Origin", "http://localhost:1420".parse().expect("header"));
    match tokio_tungstenite::connect_async(request).await {
        Err(WsError::Http(response)) => assert_eq!(response.status().as_u16(), 403),
        other => panic!("expected a 403 handshake, got {:?}", other.map(|_| ())),
    }
}
