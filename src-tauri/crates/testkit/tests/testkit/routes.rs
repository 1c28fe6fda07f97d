//! The HTTP routes answer byte for byte as the recorded ComfyUI 0.3.64.

use comfyfleet_testkit::{FakeComfy, FakeComfyConfig, FakeDevice};

use super::{get, http, recorded_system_stats, split, JSON};

#[tokio::test]
async fn fake_comfy_answers_system_stats_as_recorded() {
    let fake = FakeComfy::start(FakeComfyConfig::default()).await;
    let (status, content_type, body) = get(&format!("{}/system_stats", fake.url())).await;
    assert_eq!(status, 200);
    assert_eq!(content_type.as_deref(), Some(JSON));
    assert_eq!(body, recorded_system_stats(fake.port()));
}

#[tokio::test]
async fn fake_comfy_answers_read_routes_as_recorded() {
    let fake = FakeComfy::start(FakeComfyConfig::default()).await;
    let cases = [
        ("/queue", include_str!("../../fixtures/queue.json")),
        ("/prompt", include_str!("../../fixtures/prompt_get.json")),
        ("/features", include_str!("../../fixtures/features.json")),
        ("/models", include_str!("../../fixtures/models.json")),
        (
            "/models/checkpoints",
            include_str!("../../fixtures/models_checkpoints.json"),
        ),
        (
            "/embeddings",
            include_str!("../../fixtures/embeddings.json"),
        ),
        ("/history", include_str!("../../fixtures/history.json")),
        (
            "/history/00000000-0000-0000-0000-000000000000",
            include_str!("../../fixtures/history_unknown_id.json"),
        ),
        (
            "/object_info/EmptyImage",
            include_str!("../../fixtures/object_info_EmptyImage.json"),
        ),
        (
            "/api/object_info/SaveImage",
            include_str!("../../fixtures/api_object_info_SaveImage.json"),
        ),
        (
            "/object_info/NoSuchNode",
            include_str!("../../fixtures/object_info_unknown.json"),
        ),
        ("/users", include_str!("../../fixtures/users.json")),
        ("/settings", include_str!("../../fixtures/settings.json")),
    ];
    for (path, recorded) in cases {
        let (status, content_type, body) = get(&format!("{}{path}", fake.url())).await;
        assert_eq!(
            (status, content_type.as_deref()),
            (200, Some(JSON)),
            "{path}"
        );
        assert_eq!(body, recorded, "{path}");
    }
}

#[tokio::test]
async fn fake_comfy_serves_every_route_under_api_too() {
    let fake = FakeComfy::start(FakeComfyConfig::default()).await;
    for path in [
        "/system_stats",
        "/queue",
        "/prompt",
        "/history",
        "/object_info",
        "/models",
        "/models/loras",
        "/features",
        "/embeddings",
    ] {
        let plain = get(&format!("{}{path}", fake.url())).await;
        let api = get(&format!("{}/api{path}", fake.url())).await;
        assert_eq!(plain.0, 200, "{path}");
        assert_eq!(plain, api, "{path}");
    }
    for path in [
        "/interrupt",
        "/api/interrupt",
        "/free",
        "/api/free",
        "/queue",
        "/api/queue",
    ] {
        let response = http()
            .post(format!("{}{path}", fake.url()))
            .body("{}")
            .send()
            .await
            .expect("answered");
        assert_eq!(split(response).await, (200, None, String::new()), "{path}");
    }
}

#[tokio::test]
async fn fake_comfy_object_info_lists_the_recorded_classes_and_the_checkpoints() {
    let fake = FakeComfy::start(FakeComfyConfig::default()).await;
    fake.set_config(|c| {
        c.models.insert(
            "checkpoints".into(),
            vec!["sdxl.safetensors".into(), "sd15.ckpt".into()],
        );
    });
    let (_, _, body) = get(&format!("{}/object_info", fake.url())).await;
    let info: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(info.as_object().map(|o| o.len()), Some(8));
    assert_eq!(
        info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0],
        serde_json::json!(["sd15.ckpt", "sdxl.safetensors"])
    );
    assert_eq!(
        get(&format!("{}/models/checkpoints", fake.url())).await.2,
        r#"["sd15.ckpt", "sdxl.safetensors"]"#
    );
}

#[tokio::test]
async fn fake_comfy_unknown_model_folder_is_404_with_an_empty_body() {
    let fake = FakeComfy::start(FakeComfyConfig::default()).await;
    assert_eq!(
        get(&format!("{}/models/nosuchfolder", fake.url())).await,
        (404, None, String::new())
    );
    assert_eq!(
        get(&format!("{}/api/models/nosuchfolder", fake.url()))
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn fake_comfy_post_prompt_queues_and_counts() {
    // Another client's job runs (and took number 0): the posted prompt stays pending behind it.
    let fake = FakeComfy::start(FakeComfyConfig {
        queue_running: 1,
        ..FakeComfyConfig::default()
    })
    .await;
    let prompt = serde_json::json!({
        "prompt": {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
                   "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "probe"}}},
        "client_id": "c1"
    });
    let response = http()
        .post(format!("{}/prompt", fake.url()))
        .json(&prompt)
        .send()
        .await
        .expect("answered");
    let (status, content_type, body) = split(response).await;
    assert_eq!((status, content_type.as_deref()), (200, Some(JSON)));
    let answer: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let prompt_id = answer["prompt_id"].as_str().expect("prompt_id").to_string();
    assert!(uuid::Uuid::parse_str(&prompt_id).is_ok(), "{prompt_id}");
    assert_eq!(
        body,
        format!(r#"{{"prompt_id": "{prompt_id}", "number": 1, "node_errors": {{}}}}"#)
    );

    assert_eq!(
        get(&format!("{}/prompt", fake.url())).await.2,
        r#"{"exec_info": {"queue_remaining": 2}}"#
    );
    let queue: serde_json::Value =
        serde_json::from_str(&get(&format!("{}/queue", fake.url())).await.2).expect("JSON");
    assert_eq!(queue["queue_pending"][0][1], serde_json::json!(prompt_id));
    assert_eq!(
        queue["queue_pending"][0][3],
        serde_json::json!({"client_id": "c1"})
    );
    assert_eq!(queue["queue_pending"][0][4], serde_json::json!(["2"]));

    let posted = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .expect("recorded");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&posted.body).expect("JSON body"),
        prompt
    );

    let cleared = http()
        .post(format!("{}/api/queue", fake.url()))
        .body(r#"{"clear": true}"#)
        .send()
        .await
        .expect("answered");
    assert_eq!(cleared.status().as_u16(), 200);
    assert_eq!(
        get(&format!("{}/prompt", fake.url())).await.2,
        r#"{"exec_info": {"queue_remaining": 1}}"#
    );
}

#[tokio::test]
async fn fake_comfy_post_prompt_errors_as_recorded() {
    let fake = FakeComfy::start(FakeComfyConfig::default()).await;
    let no_prompt = http()
        .post(format!("{}/prompt", fake.url()))
        .body(r#"{"client_id": "x"}"#)
        .send()
        .await
        .expect("answered");
    assert_eq!(
        split(no_prompt).await,
        (
            400,
            Some(JSON.to_string()),
            include_str!("../../fixtures/invalid_no_prompt_key.json").to_string()
        )
    );
    let malformed = http()
        .post(format!("{}/api/prompt", fake.url()))
        .body("{nope")
        .send()
        .await
        .expect("answered");
    assert_eq!(
        split(malformed).await,
        (
            500,
            Some("text/plain; charset=utf-8".to_string()),
            "500 Internal Server Error\n\nServer got itself in trouble".to_string()
        )
    );
}

#[tokio::test]
async fn fake_comfy_reports_a_configured_gpu() {
    let fake = FakeComfy::start(FakeComfyConfig {
        devices: vec![FakeDevice::cuda(
            "NVIDIA GeForce RTX 4090",
            25_757_220_864,
            24_000_000_000,
        )],
        version: "0.3.70".into(),
        ..FakeComfyConfig::default()
    })
    .await;
    let stats: serde_json::Value =
        serde_json::from_str(&get(&format!("{}/system_stats", fake.url())).await.2).expect("JSON");
    assert_eq!(stats["system"]["comfyui_version"], "0.3.70");
    assert_eq!(
        stats["devices"],
        serde_json::json!([{"name": "cuda:0 NVIDIA GeForce RTX 4090 : cudaMallocAsync", "type": "cuda", "index": 0,
            "vram_total": 25_757_220_864u64, "vram_free": 24_000_000_000u64, "torch_vram_total": 0, "torch_vram_free": 0}])
    );
    assert!(!stats["system"]["argv"]
        .as_array()
        .expect("argv")
        .contains(&serde_json::json!("--cpu")));
}

#[tokio::test]
async fn fake_comfy_unknown_route_is_aiohttp_404() {
    let fake = FakeComfy::start(FakeComfyConfig::default()).await;
    assert_eq!(
        get(&format!("{}/no/such/route", fake.url())).await,
        (
            404,
            Some("text/plain; charset=utf-8".to_string()),
            "404: Not Found".to_string()
        )
    );
}
