//! The fake RunPod as a RunPod client sees it: keys, the serverless job lifecycle of worker-comfyui endpoints,
//! faults, pods REST v2 with the pods' proxy, and the GPU catalog.

use std::time::{Duration, Instant};

use base64::Engine;
use comfyfleet_testkit::runpod::{
    AuthCheck, Fault, PodComfy, RuntimeNames, SeededPod, Target, DEFAULT_API_KEY,
};
use comfyfleet_testkit::{
    EndpointConfig, FakeComfy, FakeComfyConfig, FakeRunpod, FakeRunpodConfig, OutputFlavour,
};
use serde_json::{json, Value};

use super::{client, decode_png, http};

const KEY: &str = DEFAULT_API_KEY;

fn endpoint(id: &str, output: OutputFlavour) -> EndpointConfig {
    EndpointConfig {
        workers: 1,
        cold_start: Duration::from_millis(300),
        exec_time: Duration::from_millis(150),
        output,
        ..EndpointConfig::new(id)
    }
}

async fn fake() -> FakeRunpod {
    FakeRunpod::start(FakeRunpodConfig {
        endpoints: vec![
            endpoint("ep-b64", OutputFlavour::Base64),
            endpoint("ep-s3", OutputFlavour::S3Url),
            endpoint("ep-legacy", OutputFlavour::Legacy),
        ],
        seeded_pods: vec![SeededPod::foreign("foreign01", "someone's notebook")],
        ..FakeRunpodConfig::default()
    })
    .await
}

fn workflow() -> Value {
    json!({
        "3": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 48, "batch_size": 1, "color": 0x00ff00}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "ComfyUI"}}
    })
}

async fn call(method: &str, url: &str, body: Option<Value>) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = http().request(method, url).bearer_auth(KEY);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("answered");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn run(fake: &FakeRunpod, ep: &str, input: Value) -> String {
    let (status, body) = call(
        "POST",
        &format!("{}/run", fake.endpoint_url(ep)),
        Some(json!({"input": input})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "IN_QUEUE");
    body["id"].as_str().expect("id").to_string()
}

/// Polls `/status` until a final state; answers the statuses seen (deduplicated) and the last body.
async fn poll(fake: &FakeRunpod, ep: &str, id: &str) -> (Vec<String>, Value) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen: Vec<String> = Vec::new();
    loop {
        let (code, body) = call(
            "GET",
            &format!("{}/status/{id}", fake.endpoint_url(ep)),
            None,
        )
        .await;
        assert_eq!(code, 200, "{body}");
        let status = body["status"].as_str().unwrap().to_string();
        if seen.last() != Some(&status) {
            seen.push(status.clone());
        }
        if ["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"].contains(&status.as_str()) {
            return (seen, body);
        }
        assert!(Instant::now() < deadline, "still {status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn runpod_refuses_missing_and_wrong_keys_and_records_them() {
    let fake = FakeRunpod::start(FakeRunpodConfig {
        forbidden_key: Some("read-only".into()),
        ..FakeRunpodConfig::default()
    })
    .await;
    let url = format!("{}/health", fake.endpoint_url("ep-comfy"));
    let none = http().get(&url).send().await.unwrap();
    assert_eq!(none.status(), 401);
    assert!(none.text().await.unwrap().contains("error"));
    let wrong = http().get(&url).bearer_auth("nope").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let forbidden = http()
        .get(format!("{}/v2/pods", fake.url()))
        .bearer_auth("read-only")
        .send()
        .await
        .unwrap();
    assert_eq!(forbidden.status(), 403);
    assert_eq!(call("GET", &url, None).await.0, 200);
    let auths: Vec<(AuthCheck, Option<u16>)> =
        fake.requests().iter().map(|r| (r.auth, r.status)).collect();
    assert_eq!(
        auths,
        [
            (AuthCheck::Missing, Some(401)),
            (AuthCheck::Wrong, Some(401)),
            (AuthCheck::Forbidden, Some(403)),
            (AuthCheck::Valid, Some(200)),
        ]
    );
}

#[tokio::test]
async fn runpod_job_goes_through_a_cold_start_to_a_png() {
    let fake = fake().await;
    let id = run(&fake, "ep-b64", json!({"workflow": workflow()})).await;
    // Cold: the job waits, its delayTime growing.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (_, early) = call(
        "GET",
        &format!("{}/status/{id}", fake.endpoint_url("ep-b64")),
        None,
    )
    .await;
    assert_eq!(early["status"], "IN_QUEUE");
    assert!(early["delayTime"].as_u64().unwrap() >= 100, "{early}");
    let (seen, done) = poll(&fake, "ep-b64", &id).await;
    assert_eq!(seen, ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]);
    let delay = done["delayTime"].as_u64().unwrap();
    let exec = done["executionTime"].as_u64().unwrap();
    assert!((300..400).contains(&delay), "delayTime {delay}");
    assert!((150..250).contains(&exec), "executionTime {exec}");
    assert!(done["workerId"].as_str().is_some_and(|w| !w.is_empty()));
    let image = &done["output"]["images"][0];
    assert_eq!(image["filename"], "ComfyUI_00001_.png");
    assert_eq!(image["type"], "base64");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(image["data"].as_str().unwrap())
        .unwrap();
    let (w, h, pixels) = decode_png(&bytes);
    assert_eq!((w, h, &pixels[..3]), (64, 48, &[0, 255, 0][..]));
    // Stream shape, and the test handle agrees.
    let (_, stream) = call(
        "GET",
        &format!("{}/stream/{id}", fake.endpoint_url("ep-b64")),
        None,
    )
    .await;
    assert_eq!(stream["status"], "COMPLETED");
    assert_eq!(stream["stream"][0]["output"], done["output"]);
    assert_eq!(fake.job(&id).unwrap().delay_ms, delay);
    // Warm now: the next job does not wait for a cold start.
    let second = run(&fake, "ep-b64", json!({"workflow": workflow()})).await;
    let (_, done) = poll(&fake, "ep-b64", &second).await;
    assert!(done["delayTime"].as_u64().unwrap() < 100, "{done}");
    assert_eq!(
        done["output"]["images"][0]["filename"],
        "ComfyUI_00002_.png"
    );
}

#[tokio::test]
async fn runpod_s3_and_legacy_flavours_and_no_images() {
    let fake = fake().await;
    let id = run(&fake, "ep-s3", json!({"workflow": workflow()})).await;
    let (_, done) = poll(&fake, "ep-s3", &id).await;
    let image = &done["output"]["images"][0];
    assert_eq!(image["type"], "s3_url");
    let url = image["data"].as_str().unwrap();
    assert!(url.starts_with(&fake.url()), "{url}");
    let png = http().get(url).send().await.unwrap();
    assert_eq!(png.status(), 200);
    assert_eq!(decode_png(&png.bytes().await.unwrap()).0, 64);

    let id = run(&fake, "ep-legacy", json!({"workflow": workflow()})).await;
    let (_, done) = poll(&fake, "ep-legacy", &id).await;
    assert_eq!(done["output"]["status"], "success");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(done["output"]["message"].as_str().unwrap())
        .unwrap();
    assert_eq!(decode_png(&bytes).1, 48);

    let preview = json!({"workflow": {"1": {"class_type": "EmptyImage", "inputs": {}}, "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}});
    let id = run(&fake, "ep-b64", preview).await;
    let (_, done) = poll(&fake, "ep-b64", &id).await;
    assert_eq!(
        done["output"],
        json!({"status": "success_no_images", "images": []})
    );
}

#[tokio::test]
async fn runpod_worker_comfyui_failures_have_its_texts() {
    let fake = fake().await;
    let mut bad = workflow();
    bad["4"] = json!({"class_type": "FluxGuidanceX", "inputs": {}});
    let id = run(&fake, "ep-b64", json!({"workflow": bad})).await;
    let (seen, done) = poll(&fake, "ep-b64", &id).await;
    assert_eq!(seen.last().unwrap(), "FAILED");
    assert_eq!(
        done["error"],
        "Workflow validation failed:\n• Node 4 (errors): Cannot execute because node FluxGuidanceX does not exist."
    );
    let id = run(&fake, "ep-b64", json!({"prompt": workflow()})).await;
    assert_eq!(
        poll(&fake, "ep-b64", &id).await.1["error"],
        "Missing 'workflow' parameter"
    );
    let images = json!({"workflow": workflow(), "images": [{"name": "in.png", "image": "data:image/png;base64,%%%"}]});
    let id = run(&fake, "ep-b64", images).await;
    let (_, done) = poll(&fake, "ep-b64", &id).await;
    assert_eq!(done["status"], "FAILED");
    assert!(done["error"].as_str().unwrap().contains("in.png"), "{done}");

    fake.set_fault(Fault::JobRuntimeError {
        endpoint: "ep-b64".into(),
        times: 1,
    });
    let id = run(&fake, "ep-b64", json!({"workflow": workflow()})).await;
    let (_, done) = poll(&fake, "ep-b64", &id).await;
    let error: Value = serde_json::from_str(done["error"].as_str().unwrap()).expect("JSON string");
    assert!(error["error_traceback"]
        .as_str()
        .unwrap()
        .contains("RuntimeError"));
}

#[tokio::test]
async fn runpod_refuses_oversized_payloads() {
    let fake = fake().await;
    let big = "A".repeat(11 * 1024 * 1024);
    let body =
        json!({"input": {"workflow": workflow(), "images": [{"name": "a.png", "image": big}]}});
    let (status, answer) = call(
        "POST",
        &format!("{}/run", fake.endpoint_url("ep-b64")),
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    // /runsync takes up to 20 MB (bad base64 of "A"s is still valid base64: the job completes).
    let (status, answer) = call(
        "POST",
        &format!("{}/runsync", fake.endpoint_url("ep-b64")),
        Some(body),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer["id"].as_str().unwrap().starts_with("sync-"));
    assert_eq!(answer["status"], "COMPLETED");
}

#[tokio::test]
async fn runpod_cancel_timeout_retry_and_unknown_ids() {
    let fake = fake().await;
    let base = fake.endpoint_url("ep-b64");
    let id = run(&fake, "ep-b64", json!({"workflow": workflow()})).await;
    let (status, body) = call("POST", &format!("{base}/cancel/{id}"), None).await;
    assert_eq!(
        (status, body),
        (200, json!({"id": id, "status": "CANCELLED"}))
    );
    assert_eq!(poll(&fake, "ep-b64", &id).await.0, ["CANCELLED"]);

    fake.set_fault(Fault::JobHangs {
        endpoint: "ep-b64".into(),
        times: 1,
    });
    let body = json!({"input": {"workflow": workflow()}, "policy": {"executionTimeout": 400}});
    let (_, created) = call("POST", &format!("{base}/run"), Some(body)).await;
    let id = created["id"].as_str().unwrap().to_string();
    let (seen, done) = poll(&fake, "ep-b64", &id).await;
    assert_eq!(seen.last().unwrap(), "TIMED_OUT");
    assert_eq!(done["executionTime"], 400);
    let (status, _) = call("POST", &format!("{base}/retry/{id}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(poll(&fake, "ep-b64", &id).await.1["status"], "COMPLETED");

    assert_eq!(
        call("GET", &format!("{base}/status/nope-u1"), None).await.0,
        404
    );
    assert_eq!(
        call(
            "GET",
            &format!("{}/status/x", fake.endpoint_url("no-such-endpoint")),
            None
        )
        .await
        .0,
        404
    );
}

#[tokio::test]
async fn runpod_health_counts_jobs_and_workers_during_a_run() {
    let fake = FakeRunpod::start(FakeRunpodConfig {
        endpoints: vec![EndpointConfig {
            workers: 2,
            cold_start: Duration::from_millis(200),
            exec_time: Duration::from_millis(400),
            ..EndpointConfig::new("ep")
        }],
        ..FakeRunpodConfig::default()
    })
    .await;
    let url = format!("{}/health", fake.endpoint_url("ep"));
    for _ in 0..3 {
        run(&fake, "ep", json!({"workflow": workflow()})).await;
    }
    let (_, cold) = call("GET", &url, None).await;
    assert_eq!(cold["jobs"]["inQueue"], 3, "{cold}");
    assert_eq!(cold["workers"]["running"], 0);
    tokio::time::sleep(Duration::from_millis(350)).await;
    let (_, busy) = call("GET", &url, None).await;
    assert_eq!(
        (
            busy["jobs"]["inProgress"].as_u64(),
            busy["jobs"]["inQueue"].as_u64()
        ),
        (Some(2), Some(1)),
        "{busy}"
    );
    assert_eq!(busy["workers"]["running"], 2);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (_, done) = call("GET", &url, None).await;
    assert_eq!(done["jobs"]["completed"], 3, "{done}");
    assert_eq!(
        (
            done["workers"]["idle"].as_u64(),
            done["workers"]["running"].as_u64()
        ),
        (Some(2), Some(0))
    );
}

#[tokio::test]
async fn runpod_request_faults_rate_limit_hang_and_drop() {
    let fake = fake().await;
    let url = format!("{}/health", fake.endpoint_url("ep-b64"));
    fake.set_fault(Fault::RateLimited {
        target: Target::endpoint("ep-b64"),
        times: 2,
    });
    assert_eq!(call("GET", &url, None).await.0, 429);
    // Another endpoint and the pods API are not limited.
    assert_eq!(
        call(
            "GET",
            &format!("{}/health", fake.endpoint_url("ep-s3")),
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(
        call("GET", &format!("{}/v2/pods", fake.url()), None)
            .await
            .0,
        200
    );
    assert_eq!(call("GET", &url, None).await.0, 429);
    assert_eq!(call("GET", &url, None).await.0, 200);

    fake.set_fault(Fault::Hang {
        target: Target::Pods,
        times: 1,
    });
    let error = client(Duration::from_millis(300))
        .get(format!("{}/v2/pods", fake.url()))
        .bearer_auth(KEY)
        .send()
        .await
        .expect_err("no answer");
    assert!(error.is_timeout(), "{error}");
    fake.set_fault(Fault::Drop {
        target: Target::Any,
        times: 1,
    });
    let error = http()
        .get(&url)
        .bearer_auth(KEY)
        .send()
        .await
        .expect_err("dropped");
    assert!(!error.is_timeout(), "{error}");
    assert_eq!(call("GET", &url, None).await.0, 200);
}

#[tokio::test]
async fn runpod_pod_boots_serves_comfyui_through_the_proxy_stops_and_terminates() {
    let fake = FakeRunpod::start(FakeRunpodConfig {
        pod_provisioning: Duration::from_millis(100),
        pod_starting: Duration::from_millis(200),
        terminated_visible: Duration::from_millis(300),
        ..FakeRunpodConfig::default()
    })
    .await;
    let pods = format!("{}/v2/pods", fake.url());
    let body = json!({
        "name": "comfyfleet-1", "imageName": "runpod/worker-comfyui:5.8.0-base",
        "gpuTypeIds": ["NVIDIA GeForce RTX 4090"], "gpuCount": 1, "cloudType": "SECURE",
        "containerDiskInGb": 30, "volumeInGb": 0, "ports": ["8188/http"], "env": {"COMFY_ARGS": "--listen"}
    });
    let (status, pod) = call("POST", &pods, Some(body)).await;
    assert_eq!(status, 201, "{pod}");
    assert_eq!(pod["status"], "PROVISIONING");
    assert_eq!(pod["runtime"], Value::Null);
    assert_eq!(pod["costPerHr"], 0.69);
    assert_eq!(pod["gpu"]["id"], "NVIDIA GeForce RTX 4090");
    let id = pod["id"].as_str().unwrap().to_string();
    let comfy = fake.pod_comfy_url(&id).expect("proxy URL");
    assert_eq!(
        comfy,
        fake.proxy_url_template()
            .replace("{podId}", &id)
            .replace("{port}", "8188")
    );
    let early = http()
        .get(format!("{comfy}/system_stats"))
        .send()
        .await
        .unwrap();
    assert_eq!(early.status(), 502);
    assert_eq!(early.headers()["server"], "cloudflare");

    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        call("GET", &format!("{pods}/{id}"), None).await.1["status"],
        "STARTING"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, pod) = call("GET", &format!("{pods}/{id}"), None).await;
    assert_eq!(pod["status"], "RUNNING");
    assert_eq!(pod["runtime"]["ports"][0]["private"], 8188);
    assert_eq!(pod["runtime"]["ports"][0]["type"], "http");
    let stats = http()
        .get(format!("{comfy}/system_stats"))
        .send()
        .await
        .unwrap();
    assert_eq!(stats.status(), 200);
    assert!(stats.text().await.unwrap().contains("comfyui_version"));

    let action = format!("{pods}/{id}/action");
    assert_eq!(
        call("POST", &action, Some(json!({"action": "start"})))
            .await
            .0,
        409
    );
    let (status, pod) = call("POST", &action, Some(json!({"action": "stop"}))).await;
    assert_eq!((status, pod["status"].as_str()), (200, Some("EXITED")));
    assert_eq!(
        http()
            .get(format!("{comfy}/system_stats"))
            .send()
            .await
            .unwrap()
            .status(),
        502
    );
    assert_eq!(
        call("POST", &action, Some(json!({"action": "stop"})))
            .await
            .0,
        409
    );
    assert_eq!(
        call("POST", &action, Some(json!({"action": "fly"})))
            .await
            .0,
        422
    );
    assert_eq!(call("POST", &action, Some(json!({}))).await.0, 422);
    let (status, pod) = call("POST", &action, Some(json!({"action": "terminate"}))).await;
    assert_eq!((status, pod["status"].as_str()), (200, Some("TERMINATED")));
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(call("GET", &format!("{pods}/{id}"), None).await.0, 404);
    assert_eq!(
        call("POST", &action, Some(json!({"action": "start"})))
            .await
            .0,
        404
    );
    assert!(fake.pods().is_empty());
}

#[tokio::test]
async fn runpod_pod_create_refuses_bad_bodies_with_422() {
    let fake = fake().await;
    let pods = format!("{}/v2/pods", fake.url());
    for bad in [
        json!({"gpuTypeIds": ["NVIDIA L4"]}),
        json!({"imageName": "x", "gpuTypeIds": ["NVIDIA GeForce GTX 480"]}),
        json!({"imageName": "x", "gpuTypeIds": "NVIDIA L4"}),
        json!({"imageName": "x", "gpuTypeId": "NVIDIA L4", "ports": ["http"]}),
    ] {
        assert_eq!(call("POST", &pods, Some(bad.clone())).await.0, 422, "{bad}");
    }
    let raw = http()
        .post(&pods)
        .bearer_auth(KEY)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 422);
    assert_eq!(call("GET", &format!("{pods}/nope"), None).await.0, 404);
    assert_eq!(call("DELETE", &format!("{pods}/nope"), None).await.0, 404);
}

#[tokio::test]
async fn runpod_lists_the_seeded_foreign_pod_and_records_that_it_was_left_alone() {
    let fake = fake().await;
    let (_, list) = call("GET", &format!("{}/v2/pods", fake.url()), None).await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], "foreign01");
    assert_eq!(list[0]["status"], "RUNNING");
    assert!(fake.pods()[0].seeded);
    let acted = fake
        .requests()
        .iter()
        .any(|r| r.pod_id() == Some("foreign01") && r.method != "GET");
    assert!(!acted);
    call(
        "POST",
        &format!("{}/v2/pods/foreign01/action", fake.url()),
        Some(json!({"action": "stop"})),
    )
    .await;
    assert!(fake
        .requests()
        .iter()
        .any(|r| r.pod_id() == Some("foreign01") && r.method == "POST"));
}

#[tokio::test]
async fn runpod_catalog_lists_gpus_with_prices() {
    let fake = fake().await;
    let (status, catalog) = call("GET", &format!("{}/v2/catalog/gpus", fake.url()), None).await;
    assert_eq!(status, 200);
    let gpus = catalog.as_array().unwrap();
    let rtx4090 = gpus
        .iter()
        .find(|g| g["id"] == "NVIDIA GeForce RTX 4090")
        .expect("4090 listed");
    assert_eq!(rtx4090["memory"], 24);
    assert_eq!(rtx4090["price"]["serverlessPerSecond"], 0.00031);
    assert!(gpus
        .iter()
        .all(|g| g["name"].is_string() && g["pool"].is_string()));
}

#[tokio::test]
async fn runpod_pods_can_forward_to_a_given_comfyui_with_legacy_runtime_names() {
    let comfy = FakeComfy::start(FakeComfyConfig::default()).await;
    let fake = FakeRunpod::start(FakeRunpodConfig {
        pod_provisioning: Duration::ZERO,
        pod_starting: Duration::ZERO,
        pod_comfy: PodComfy::At(comfy.url()),
        runtime_names: RuntimeNames::Legacy,
        ..FakeRunpodConfig::default()
    })
    .await;
    let body = json!({"imageName": "x", "gpuTypeId": "NVIDIA L4", "ports": ["8188/http"]});
    let (_, pod) = call("POST", &format!("{}/v2/pods", fake.url()), Some(body)).await;
    let id = pod["id"].as_str().unwrap();
    let (_, pod) = call("GET", &format!("{}/v2/pods/{id}", fake.url()), None).await;
    assert_eq!(pod["runtime"]["ports"][0]["privatePort"], 8188);
    assert!(pod["runtime"]["uptimeInSeconds"].is_u64());
    let url = fake.pod_comfy_url(id).unwrap();
    let queue = http().get(format!("{url}/queue")).send().await.unwrap();
    assert_eq!(queue.status(), 200);
    assert_eq!(
        comfy.requests().last().map(|r| r.path.clone()).as_deref(),
        Some("/queue")
    );
}

#[tokio::test]
async fn runpod_proxy_carries_websockets_and_answers_524_when_the_pod_is_slow() {
    use futures::StreamExt;
    let comfy = FakeComfy::start(FakeComfyConfig::default()).await;
    let fake = FakeRunpod::start(FakeRunpodConfig {
        pod_provisioning: Duration::ZERO,
        pod_starting: Duration::ZERO,
        pod_comfy: PodComfy::At(comfy.url()),
        proxy_timeout: Duration::from_millis(200),
        ..FakeRunpodConfig::default()
    })
    .await;
    let body = json!({"imageName": "x", "gpuTypeId": "NVIDIA L4", "ports": ["8188/http"]});
    let (_, pod) = call("POST", &format!("{}/v2/pods", fake.url()), Some(body)).await;
    let url = fake.pod_comfy_url(pod["id"].as_str().unwrap()).unwrap();
    let ws = format!("{}/ws?clientId=abc", url.replace("http://", "ws://"));
    let (mut socket, _) = tokio_tungstenite::connect_async(&ws)
        .await
        .expect("upgraded through the proxy");
    let first = tokio::time::timeout(Duration::from_secs(2), socket.next())
        .await
        .expect("a frame")
        .expect("open")
        .expect("frame");
    assert!(first.to_text().unwrap().contains("\"status\""), "{first}");

    comfy.set_config(|c| c.latency = Duration::from_millis(500));
    let slow = http().get(format!("{url}/queue")).send().await.unwrap();
    assert_eq!(slow.status(), 524);
}
