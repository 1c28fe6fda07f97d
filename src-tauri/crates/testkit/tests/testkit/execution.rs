//! Running prompts: the recorded WebSocket sequences, the cache, runtime errors, interrupts, sampling progress
//! with previews, history entries, and a burst.

use std::time::Duration;

use comfyfleet_testkit::{FakeComfy, FakeComfyConfig};
use serde_json::{json, Value};

use super::{
    be_u32, comparable_history, decode_png, get, history, http, post_prompt, post_prompt_text,
    recorded_messages, submit, Frame, WsClient,
};

/// The recorded EmptyImage -> SaveImage prompt, with the recorded client and prompt ids.
const RECORDED_CLIENT: &str = "db1dea0e-34b2-4592-9ca1-392e4cda5a08";
const RECORDED_PROMPT: &str = r#"{"1": {"class_type": "EmptyImage", "inputs": {"width": 512, "height": 512, "batch_size": 1, "color": 0}}, "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "probe"}}}"#;

fn recorded_body(prompt_id: &str) -> String {
    format!(
        r#"{{"prompt": {RECORDED_PROMPT}, "client_id": "{RECORDED_CLIENT}", "prompt_id": "{prompt_id}"}}"#
    )
}

fn comparable(frames: &[Frame]) -> Vec<Value> {
    frames.iter().map(Frame::comparable).collect()
}

fn kinds(frames: &[Frame]) -> Vec<String> {
    frames.iter().map(Frame::kind).collect()
}

fn recorded_history(text: &str) -> Value {
    comparable_history(serde_json::from_str(text).expect("recorded history"))
}

#[tokio::test]
async fn execution_sends_the_recorded_sequence_then_the_cached_one() {
    let fake = FakeComfy::start(FakeComfyConfig::default()).await;
    let mut ws = WsClient::connect(&fake, RECORDED_CLIENT).await;

    let first = "7bc6a940-4c67-44ab-917f-45a767b4201c";
    let (status, answer) = post_prompt_text(&fake, &recorded_body(first)).await;
    assert_eq!(
        (status, answer["number"].as_i64()),
        (200, Some(0)),
        "{answer}"
    );
    let frames = ws.until_done(first).await;
    assert_eq!(
        comparable(&frames),
        recorded_messages(include_str!("../../fixtures/ws_emptyimage_saveimage.json"))
    );
    assert_eq!(
        comparable_history(history(&fake, first).await),
        recorded_history(include_str!("../../fixtures/history_prompt_id.json"))
    );

    // The identical prompt again: everything is cached and the old file is reported.
    let cached = "db11665e-539e-48b8-b209-74b878def7fa";
    submit(
        &fake,
        &serde_json::from_str(&recorded_body(cached)).expect("JSON"),
    )
    .await;
    let frames = ws.until_done(cached).await;
    assert_eq!(
        comparable(&frames),
        recorded_messages(include_str!(
            "../../fixtures/ws_emptyimage_saveimage_cached.json"
        ))
    );
    assert_eq!(
        comparable_history(history(&fake, cached).await),
        recorded_history(include_str!("../../fixtures/history_prompt_id_cached.json"))
    );
    assert_eq!(fake.executed_prompts(), [first, cached]);
    // No second file was written.
    let (status, _, _) = get(&format!("{}/view?filename=probe_00002_.png", fake.url())).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn execution_runtime_error_is_reported_as_recorded() {
    let fake = FakeComfy::start(FakeComfyConfig::default()).await;
    let client = "38a6346a-0594-4642-812b-b64a31b8e99e";
    let prompt_id = "9a0502b9-aa0d-4877-9174-21eb25a4c4fd";
    let mut ws = WsClient::connect(&fake, client).await;
    let body = format!(
        r#"{{"prompt": {{"1": {{"class_type": "EmptyImage", "inputs": {{"width": 64, "height": 64, "batch_size": 1, "color": 255}}}}, "3": {{"class_type": "ImageToMask", "inputs": {{"image": ["1", 0], "channel": "alpha"}}}}, "4": {{"class_type": "MaskToImage", "inputs": {{"mask": ["3", 0]}}}}, "2": {{"class_type": "PreviewImage", "inputs": {{"images": ["4", 0]}}}}}}, "client_id": "{client}", "prompt_id": "{prompt_id}"}}"#
    );
    assert_eq!(post_prompt_text(&fake, &body).await.0, 200);
    let frames = ws.until_done(prompt_id).await;
    assert_eq!(
        comparable(&frames),
        recorded_messages(include_str!("../../fixtures/ws_runtime_error.json"))
    );
    assert_eq!(
        comparable_history(history(&fake, prompt_id).await),
        recorded_history(include_str!("../../fixtures/history_runtime_error.json"))
    );
}

#[tokio::test]
async fn execution_runtime_error_class_fails_any_node_of_that_class() {
    let fake = FakeComfy::start(FakeComfyConfig {
        runtime_error_class: Some("FlakyUpscale".into()),
        ..FakeComfyConfig::default()
    })
    .await;
    let mut ws = WsClient::connect(&fake, "c").await;
    let id = submit(
        &fake,
        &json!({"prompt": {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 1}},
                            "5": {"class_type": "FlakyUpscale", "inputs": {"image": ["1", 0], "scale": 2}},
                            "9": {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "up"}}},
                "client_id": "c"}),
    )
    .await;
    let frames = ws.until_done(&id).await;
    let error = frames
        .iter()
        .find(|f| f.kind() == "execution_error")
        .expect("execution_error");
    assert_eq!(error.data()["node_id"], "5");
    assert_eq!(error.data()["node_type"], "FlakyUpscale");
    assert_eq!(error.data()["executed"], json!(["1"]));
    assert_eq!(error.data()["current_inputs"]["scale"], json!([2]));
    assert!(!kinds(&frames).contains(&"execution_success".to_string()));
    let entry = &history(&fake, &id).await[&id];
    assert_eq!(entry["status"]["status_str"], "error");
    assert_eq!(entry["status"]["completed"], false);
    assert_eq!(entry["outputs"], json!({}));
}

/// The recorded slow prompt: EmptyImage, four ImageBlur, PreviewImage.
const BLUR_CLIENT: &str = "7fe41013-85d8-4e8b-843c-8605efb642f6";

fn blur_prompt(prompt_id: &str, color: u32) -> Value {
    json!({
        "prompt": {
            "1": {"class_type": "EmptyImage", "inputs": {"width": 1024, "height": 1024, "batch_size": 1, "color": color}},
            "10": {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": 31, "sigma": 10.0}},
            "11": {"class_type": "ImageBlur", "inputs": {"image": ["10", 0], "blur_radius": 31, "sigma": 10.0}},
            "12": {"class_type": "ImageBlur", "inputs": {"image": ["11", 0], "blur_radius": 31, "sigma": 10.0}},
            "13": {"class_type": "ImageBlur", "inputs": {"image": ["12", 0], "blur_radius": 31, "sigma": 10.0}},
            "2": {"class_type": "PreviewImage", "inputs": {"images": ["13", 0]}}
        },
        "client_id": BLUR_CLIENT,
        "prompt_id": prompt_id
    })
}

async fn post_interrupt(fake: &FakeComfy, body: &str) {
    let response = http()
        .post(format!("{}/interrupt", fake.url()))
        .body(body.to_string())
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status().as_u16(), 200);
}

#[tokio::test]
async fn execution_interrupt_stops_at_the_next_node_and_deleted_prompts_never_run() {
    // 6 nodes in 1.2 s: 200 ms each, time enough to interrupt during the first blur.
    let fake = FakeComfy::start(FakeComfyConfig {
        exec_time: Duration::from_millis(1200),
        ..FakeComfyConfig::default()
    })
    .await;
    let mut ws = WsClient::connect(&fake, BLUR_CLIENT).await;
    let mut observer = WsClient::connect(&fake, "observer").await;
    let a = "0d8b3b12-9ce2-47e3-a80b-a2e6b7e55f7e";
    submit(&fake, &blur_prompt(a, 5067)).await;
    let b = submit(&fake, &blur_prompt("b", 6000)).await;
    let c = submit(&fake, &blur_prompt("c", 7000)).await;
    let deleted = http()
        .post(format!("{}/queue", fake.url()))
        .body(format!(r#"{{"delete": ["{c}"]}}"#))
        .send()
        .await
        .expect("answered");
    assert_eq!(deleted.status().as_u16(), 200);

    // Wait until the first blur runs, then interrupt another prompt (nothing happens) and this one.
    loop {
        let frame = ws.next().await;
        if frame.kind() == "executing" && frame.data()["node"] == "10" {
            break;
        }
    }
    post_interrupt(&fake, r#"{"prompt_id": "not-running"}"#).await;
    post_interrupt(&fake, &format!(r#"{{"prompt_id": "{a}"}}"#)).await;
    let frames = ws.until_done(a).await;
    assert_eq!(
        kinds(&frames),
        [
            "progress_state",
            "progress_state",
            "executing",
            "execution_interrupted",
            "status",
            "executing"
        ]
    );
    assert_eq!(frames[2].data()["node"], "11");
    assert_eq!(
        frames[3].comparable()["data"],
        json!({"prompt_id": a, "node_id": "11", "node_type": "ImageBlur", "executed": ["10", "1"], "timestamp": 0})
    );
    // Other sockets hear the interrupt too, and otherwise only `status`.
    let seen = observer.until_kind("execution_interrupted").await;
    assert!(
        seen[..seen.len() - 1].iter().all(|f| f.kind() == "status"),
        "{seen:?}"
    );

    let mut recorded = comparable_history(
        serde_json::from_str(include_str!("../../fixtures/history_interrupted.json"))
            .expect("JSON"),
    );
    recorded[a]["prompt"][2]["1"]["inputs"]["color"] = json!(5067);
    assert_eq!(comparable_history(history(&fake, a).await), recorded);

    // The next prompt runs to the end; the deleted one never runs.
    let frames = ws.until_done(&b).await;
    assert!(kinds(&frames).contains(&"execution_success".to_string()));
    tokio::time::timeout(Duration::from_secs(5), fake.wait_idle())
        .await
        .expect("idle");
    assert_eq!(fake.executed_prompts(), [a.to_string(), b.clone()]);
    assert_eq!(history(&fake, &c).await, json!({}));
    let entry = &history(&fake, &b).await[&b];
    assert_eq!(entry["outputs"]["2"]["images"][0]["type"], "temp");
}

#[tokio::test]
async fn execution_global_interrupt_stops_a_sampler_between_steps() {
    let fake = FakeComfy::start(FakeComfyConfig {
        exec_time: Duration::from_secs(20),
        ..FakeComfyConfig::default()
    })
    .await;
    let mut ws = WsClient::connect(&fake, "c").await;
    let id = submit(
        &fake,
        &json!({"prompt": {"3": {"class_type": "KSampler", "inputs": {"steps": 200, "seed": 1}},
                            "9": {"class_type": "SaveImage", "inputs": {"images": ["3", 0]}}},
                "client_id": "c"}),
    )
    .await;
    ws.until_kind("progress").await;
    post_interrupt(&fake, "").await;
    let frames = ws.until_done(&id).await;
    let interrupted = frames
        .iter()
        .find(|f| f.kind() == "execution_interrupted")
        .expect("interrupted");
    assert_eq!(interrupted.data()["node_id"], "3");
    assert_eq!(
        history(&fake, &id).await[&id]["status"]["status_str"],
        "error"
    );
}

fn sampler_prompt(client: &str, seed: u64) -> Value {
    json!({
        "prompt": {
            "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15.safetensors"}},
            "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
            "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["4", 1]}},
            "3": {"class_type": "KSampler", "inputs": {"seed": seed, "steps": 3, "cfg": 7.0, "sampler_name": "euler",
                  "scheduler": "normal", "denoise": 1.0, "model": ["4", 0], "positive": ["6", 0], "negative": ["6", 0],
                  "latent_image": ["5", 0]}},
            "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
            "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "cat"}}
        },
        "client_id": client
    })
}

#[tokio::test]
async fn execution_sampler_sends_progress_and_previews_of_both_kinds() {
    let mut config = FakeComfyConfig::default();
    config
        .models
        .insert("checkpoints".into(), vec!["sd15.safetensors".into()]);
    let fake = FakeComfy::start(config).await;

    // Without feature flags: progress_state, progress, then a type 1 preview, per step.
    let mut plain = WsClient::connect(&fake, "plain").await;
    let id = submit(&fake, &sampler_prompt("plain", 1)).await;
    let frames = plain.until_done(&id).await;
    let start = frames
        .iter()
        .position(|f| f.kind() == "executing" && f.data()["node"] == "3")
        .expect("the sampler runs");
    let steps: Vec<String> = kinds(&frames[start + 1..start + 11]);
    assert_eq!(
        steps,
        [
            "progress_state",
            "progress",
            "binary1",
            "progress_state",
            "progress",
            "binary1",
            "progress_state",
            "progress",
            "binary1",
            "progress_state"
        ]
    );
    for (i, step) in [1, 2, 3].iter().enumerate() {
        let progress = &frames[start + 2 + 3 * i];
        assert_eq!(
            progress.data(),
            &json!({"value": step, "max": 3, "prompt_id": id, "node": "3"})
        );
        let Frame::Binary(preview) = &frames[start + 3 + 3 * i] else {
            panic!("a preview");
        };
        assert_eq!((be_u32(preview, 0), be_u32(preview, 4)), (1, 2));
        let (width, height, _) = decode_png(&preview[8..]);
        assert_eq!((width, height), (64, 64));
    }
    let finished = frames[start + 10].data()["nodes"]["3"].clone();
    assert_eq!(
        (finished["value"].clone(), finished["state"].clone()),
        (json!(3), json!("finished"))
    );
    let saved = frames
        .iter()
        .find(|f| f.kind() == "executed")
        .expect("executed");
    assert_eq!(
        saved.data()["output"]["images"][0]["filename"],
        "cat_00001_.png"
    );

    // With `supports_preview_metadata`: progress_state, a type 4 preview, then progress.
    let mut modern = WsClient::connect_with_preview_metadata(&fake, "modern").await;
    let id = submit(&fake, &sampler_prompt("modern", 2)).await;
    let frames = modern.until_done(&id).await;
    let previews: Vec<&Frame> = frames
        .iter()
        .filter(|f| matches!(f, Frame::Binary(_)))
        .collect();
    assert_eq!(previews.len(), 3);
    assert_eq!(
        previews[0].comparable(),
        json!({"binary": true, "event_type": 4, "metadata": {"node_id": "3", "prompt_id": id, "display_node_id": "3",
               "parent_node_id": null, "real_node_id": "3", "image_type": "image/png"}})
    );
    let at = frames
        .iter()
        .position(|f| matches!(f, Frame::Binary(_)))
        .expect("a preview");
    assert_eq!(
        kinds(&frames[at - 1..at + 2]),
        ["progress_state", "binary4", "progress"]
    );
    let Frame::Binary(frame) = previews[2] else {
        unreachable!()
    };
    let metadata_len = be_u32(frame, 4) as usize;
    let (_, _, pixels) = decode_png(&frame[8 + metadata_len..]);
    assert_eq!(&pixels[..3], [255, 255, 255], "the last preview is white");
    // The first client heard nothing of the second prompt but `status`.
    let other = plain.until_kind("status").await;
    assert_eq!(kinds(&other), ["status"]);
}

#[tokio::test]
async fn execution_save_image_websocket_matches_the_recorded_sequences() {
    let fake = FakeComfy::start(FakeComfyConfig::default()).await;
    let body = |client: &str, prompt_id: &str| {
        format!(
            r#"{{"prompt": {{"1": {{"class_type": "EmptyImage", "inputs": {{"width": 64, "height": 64, "batch_size": 3, "color": 255}}}}, "2": {{"class_type": "SaveImageWebsocket", "inputs": {{"images": ["1", 0]}}}}}}, "client_id": "{client}", "prompt_id": "{prompt_id}"}}"#
        )
    };
    let client = "d238150b-90de-4e2a-bc37-57fea976ea67";
    let prompt_id = "de4fb116-71bd-410b-afdd-460e5a3e90c5";
    let mut ws = WsClient::connect(&fake, client).await;
    assert_eq!(
        post_prompt_text(&fake, &body(client, prompt_id)).await.0,
        200
    );
    assert_eq!(
        comparable(&ws.until_done(prompt_id).await),
        recorded_messages(include_str!(
            "../../fixtures/ws_progress_savewebsocket.json"
        ))
    );

    // Recorded right after it, with feature flags: EmptyImage is cached, SaveImageWebsocket never is.
    let client = "49c37b1e-08fa-49cd-9c94-0163cc354262";
    let prompt_id = "09fe0001-37cd-446d-a281-c8f4160c3fd9";
    let mut ws = WsClient::connect_with_preview_metadata(&fake, client).await;
    assert_eq!(
        post_prompt_text(&fake, &body(client, prompt_id)).await.0,
        200
    );
    let recorded: Vec<Value> = recorded_messages(include_str!(
        "../../fixtures/ws_progress_savewebsocket_ff.json"
    ))
    .into_iter()
    .filter(|m| m["type"] != "feature_flags")
    .collect();
    assert_eq!(comparable(&ws.until_done(prompt_id).await), recorded);
    let entry = &history(&fake, prompt_id).await[prompt_id];
    assert_eq!(
        (entry["outputs"].clone(), entry["meta"].clone()),
        (json!({}), json!({}))
    );
}

#[tokio::test]
async fn execution_prompt_without_client_id_only_broadcasts_status_and_progress_state() {
    let fake = FakeComfy::start(FakeComfyConfig::default()).await;
    let mut observer = WsClient::connect(&fake, "observer").await;
    let id = submit(
        &fake,
        &json!({"prompt": {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 3}},
                            "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}}),
    )
    .await;
    let mut frames = Vec::new();
    loop {
        let frame = observer.next().await;
        let done =
            frame.kind() == "status" && frame.data()["status"]["exec_info"]["queue_remaining"] == 0;
        frames.push(frame);
        if done {
            break;
        }
    }
    assert_eq!(
        kinds(&frames),
        [
            "status",
            "status",
            "progress_state",
            "progress_state",
            "progress_state",
            "progress_state",
            "status"
        ]
    );
    assert_eq!(
        history(&fake, &id).await[&id]["status"]["status_str"],
        "success"
    );
}

#[tokio::test]
async fn execution_burst_of_twenty_prompts_completes_in_order() {
    let fake = FakeComfy::start(FakeComfyConfig::default()).await;
    let mut ws = WsClient::connect(&fake, "burst").await;
    let mut ids = Vec::new();
    for color in 0..20 {
        let body = json!({"prompt": {"1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": color}},
                                     "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "burst"}}},
                          "client_id": "burst"});
        let (status, answer) = post_prompt(&fake, &body).await;
        assert_eq!((status, answer["number"].as_i64()), (200, Some(color)));
        ids.push(answer["prompt_id"].as_str().expect("id").to_string());
    }
    let frames = ws.until_done(&ids[19]).await;
    tokio::time::timeout(Duration::from_secs(5), fake.wait_idle())
        .await
        .expect("idle");
    assert_eq!(fake.executed_prompts(), ids);
    let text = |f: &Frame, pointer: &str| {
        f.data()
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let successes: Vec<String> = frames
        .iter()
        .filter(|f| f.kind() == "execution_success")
        .map(|f| text(f, "/prompt_id"))
        .collect();
    assert_eq!(successes, ids);
    let files: Vec<String> = frames
        .iter()
        .filter(|f| f.kind() == "executed")
        .map(|f| text(f, "/output/images/0/filename"))
        .collect();
    let expected: Vec<String> = (1..=20).map(|n| format!("burst_{n:05}_.png")).collect();
    assert_eq!(files, expected);
    // One `status` per enqueue, two per finished job; the last says the queue is empty.
    let statuses: Vec<i64> = frames
        .iter()
        .filter(|f| f.kind() == "status")
        .map(|f| {
            f.data()["status"]["exec_info"]["queue_remaining"]
                .as_i64()
                .expect("count")
        })
        .collect();
    assert_eq!(statuses.len(), 20 + 2 * 20);
    assert_eq!(statuses.last(), Some(&0));
    let (_, _, all) = get(&format!("{}/history", fake.url())).await;
    let all: Value = serde_json::from_str(&all).expect("JSON");
    let keys: Vec<&String> = all.as_object().expect("object").keys().collect();
    assert_eq!(keys.len(), 20);
    assert_eq!(
        get(&format!("{}/queue", fake.url())).await.2,
        r#"{"queue_running": [], "queue_pending": []}"#
    );
}

#[tokio::test]
async fn execution_queue_shows_the_running_prompt_and_history_waits_for_the_end() {
    let fake = FakeComfy::start(FakeComfyConfig::default()).await;
    let mut ws = WsClient::connect(&fake, "q").await;
    let body = |color: u32| {
        json!({"prompt": {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": color}},
                          "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}},
               "client_id": "q", "extra_data": {"fake_exec_ms": 400}})
    };
    let running = submit(&fake, &body(1)).await;
    let pending = submit(&fake, &body(2)).await;
    ws.until_kind("execution_start").await;
    let queue: Value =
        serde_json::from_str(&get(&format!("{}/queue", fake.url())).await.2).expect("JSON");
    assert_eq!(queue["queue_running"][0][1], json!(running));
    assert_eq!(queue["queue_pending"][0][1], json!(pending));
    assert_eq!(
        queue["queue_running"][0][3],
        json!({"client_id": "q", "fake_exec_ms": 400})
    );
    assert_eq!(history(&fake, &running).await, json!({}));
    assert_eq!(history(&fake, &pending).await, json!({}));
    ws.until_done(&running).await;
    assert_eq!(
        history(&fake, &running).await[&running]["status"]["completed"],
        true
    );
}
