//! Outputs through `/view`, inputs through `/upload/image` and `LoadImage`, model names, and evil output names.

use comfyfleet_testkit::{FakeComfy, FakeComfyConfig};
use serde_json::{json, Value};

use super::{
    decode_png, encode_png, get, history, http, post_prompt, split, submit, WsClient, JSON,
};

async fn view(fake: &FakeComfy, query: &str) -> reqwest::Response {
    http()
        .get(format!("{}/view?{query}", fake.url()))
        .send()
        .await
        .expect("answered")
}

#[tokio::test]
async fn files_view_serves_outputs_and_temp_images_as_decodable_pngs() {
    let fake = FakeComfy::start(FakeComfyConfig::default()).await;
    let mut ws = WsClient::connect(&fake, "v").await;
    let id = submit(
        &fake,
        &json!({"prompt": {"1": {"class_type": "EmptyImage", "inputs": {"width": 96, "height": 40, "batch_size": 2, "color": 0x336699}},
                            "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "runs/probe"}},
                            "3": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}},
                "client_id": "v"}),
    )
    .await;
    ws.until_done(&id).await;
    let outputs = history(&fake, &id).await[&id]["outputs"].clone();
    assert_eq!(
        outputs["2"],
        json!({"images": [{"filename": "probe_00001_.png", "subfolder": "runs", "type": "output"},
                          {"filename": "probe_00002_.png", "subfolder": "runs", "type": "output"}]})
    );

    let response = view(
        &fake,
        "filename=probe_00002_.png&subfolder=runs&type=output",
    )
    .await;
    assert_eq!(response.status().as_u16(), 200);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    assert_eq!(header("content-type").as_deref(), Some("image/png"));
    assert_eq!(
        header("content-disposition").as_deref(),
        Some(r#"filename="probe_00002_.png""#)
    );
    let (width, height, pixels) = decode_png(&response.bytes().await.expect("body"));
    assert_eq!((width, height), (96, 40));
    assert!(pixels.chunks(3).all(|p| p == [0x33, 0x66, 0x99]));

    let temp = outputs["3"]["images"][0].clone();
    let name = temp["filename"].as_str().expect("filename");
    assert!(
        name.starts_with("ComfyUI_temp_") && name.ends_with("_00001_.png"),
        "{name}"
    );
    assert_eq!(name.len(), "ComfyUI_temp_abcde_00001_.png".len());
    assert_eq!(temp["type"], "temp");
    let response = view(&fake, &format!("filename={name}&type=temp")).await;
    assert_eq!(response.status().as_u16(), 200);
    decode_png(&response.bytes().await.expect("body"));

    // `type` defaults to output; the recorded errors have empty bodies.
    let cases = [
        ("filename=probe_00001_.png&subfolder=runs", 200),
        ("filename=probe_00001_.png", 404),
        ("filename=nosuch.png&type=output", 404),
        ("type=output", 404),
        ("filename=../comfyui.log&type=output", 400),
        ("filename=probe_00001_.png&type=bogus", 400),
        ("filename=probe_00001_.png&subfolder=../..", 403),
    ];
    for (query, status) in cases {
        let (got, _, body) = split(view(&fake, query).await).await;
        assert_eq!(got, status, "{query}");
        if status != 200 {
            assert_eq!(body, "", "{query}");
        }
    }
}

async fn upload(fake: &FakeComfy, form: reqwest::multipart::Form) -> (u16, Option<String>, String) {
    let response = http()
        .post(format!("{}/upload/image", fake.url()))
        .multipart(form)
        .send()
        .await
        .expect("answered");
    split(response).await
}

fn image_part(name: &str, bytes: Vec<u8>) -> reqwest::multipart::Part {
    reqwest::multipart::Part::bytes(bytes)
        .file_name(name.to_string())
        .mime_str("image/png")
        .expect("mime")
}

#[tokio::test]
async fn files_upload_then_load_image_runs_and_missing_files_fail_validation() {
    let fake = FakeComfy::start(FakeComfyConfig::default()).await;
    let png_bytes = encode_png(40, 30, [10, 20, 30]);
    let ok = |body: &str| (200, Some(JSON.to_string()), body.to_string());
    let form = || {
        reqwest::multipart::Form::new()
            .part("image", image_part("peer_upload.png", png_bytes.clone()))
    };
    assert_eq!(
        upload(&fake, form()).await,
        ok(include_str!("../../fixtures/upload_image.json"))
    );
    assert_eq!(
        upload(&fake, form()).await,
        ok(include_str!("../../fixtures/upload_image.json"))
    );
    let different = reqwest::multipart::Form::new()
        .part("image", image_part("peer_upload.png", b"other".to_vec()));
    assert_eq!(
        upload(&fake, different).await,
        ok(include_str!(
            "../../fixtures/upload_image_diff_same_name.json"
        ))
    );
    let temp = reqwest::multipart::Form::new()
        .part("image", image_part("peer_upload.png", b"x".to_vec()))
        .text("subfolder", "peer")
        .text("type", "temp");
    assert_eq!(
        upload(&fake, temp).await,
        ok(include_str!(
            "../../fixtures/upload_image_subfolder_temp.json"
        ))
    );
    let no_file = reqwest::multipart::Form::new().text("type", "input");
    assert_eq!(upload(&fake, no_file).await.0, 400);
    let escape = reqwest::multipart::Form::new()
        .part("image", image_part("x.png", b"x".to_vec()))
        .text("subfolder", "../..");
    assert_eq!(upload(&fake, escape).await.0, 400);

    let stored = view(&fake, "filename=peer_upload.png&type=input").await;
    assert_eq!(stored.status().as_u16(), 200);
    assert_eq!(stored.bytes().await.expect("body").to_vec(), png_bytes);
    let info: Value = serde_json::from_str(
        &get(&format!("{}/object_info/LoadImage", fake.url()))
            .await
            .2,
    )
    .expect("JSON");
    assert_eq!(
        info["LoadImage"]["input"]["required"]["image"][0],
        json!(["example.png", "peer_upload (1).png", "peer_upload.png"])
    );

    let load = |name: &str| {
        json!({"prompt": {"1": {"class_type": "LoadImage", "inputs": {"image": name}},
                          "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}},
               "client_id": "u"})
    };
    let mut ws = WsClient::connect(&fake, "u").await;
    let id = submit(&fake, &load("peer_upload.png")).await;
    ws.until_done(&id).await;
    let entry = &history(&fake, &id).await[&id];
    assert_eq!(entry["status"]["status_str"], "success");
    // The preview has the uploaded image's size.
    let name = entry["outputs"]["2"]["images"][0]["filename"]
        .as_str()
        .expect("filename");
    let preview = view(&fake, &format!("filename={name}&type=temp")).await;
    let (width, height, _) = decode_png(&preview.bytes().await.expect("body"));
    assert_eq!((width, height), (40, 30));

    let response = http()
        .post(format!("{}/prompt", fake.url()))
        .json(&load("does_not_exist.png"))
        .send()
        .await
        .expect("answered");
    assert_eq!(
        split(response).await,
        (
            400,
            Some(JSON.to_string()),
            include_str!("../../fixtures/invalid_bad_combo.json").to_string()
        )
    );
}

#[tokio::test]
async fn files_missing_models_fail_validation_with_value_not_in_list() {
    let mut config = FakeComfyConfig::default();
    config.models.insert(
        "checkpoints".into(),
        vec!["sd15.safetensors".into(), "sdxl.safetensors".into()],
    );
    let fake = FakeComfy::start(config).await;
    let prompt = |ckpt: &str, lora: &str| {
        json!({"prompt": {
            "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
            "10": {"class_type": "LoraLoader", "inputs": {"lora_name": lora, "model": ["4", 0], "clip": ["4", 1],
                   "strength_model": 1.0, "strength_clip": 1.0}},
            "3": {"class_type": "KSampler", "inputs": {"model": ["10", 0], "steps": 2, "seed": 5}},
            "9": {"class_type": "SaveImage", "inputs": {"images": ["3", 0]}}
        }})
    };
    let response = http()
        .post(format!("{}/prompt", fake.url()))
        .json(&prompt("missing.safetensors", "detail.safetensors"))
        .send()
        .await
        .expect("answered");
    let (status, content_type, body) = split(response).await;
    assert_eq!((status, content_type.as_deref()), (400, Some(JSON)));
    assert_eq!(
        body,
        r#"{"error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation", "details": "", "extra_info": {}}, "node_errors": {"4": {"errors": [{"type": "value_not_in_list", "message": "Value not in list", "details": "ckpt_name: 'missing.safetensors' not in ['sd15.safetensors', 'sdxl.safetensors']", "extra_info": {"input_name": "ckpt_name", "input_config": ["sd15.safetensors", "sdxl.safetensors"], "received_value": "missing.safetensors"}}], "dependent_outputs": ["9"], "class_type": "CheckpointLoaderSimple"}, "10": {"errors": [{"type": "value_not_in_list", "message": "Value not in list", "details": "lora_name: 'detail.safetensors' not in []", "extra_info": {"input_name": "lora_name", "input_config": [], "received_value": "detail.safetensors"}}], "dependent_outputs": ["9"], "class_type": "LoraLoader"}}}"#
    );
    fake.set_config(|c| {
        c.models
            .insert("loras".into(), vec!["detail.safetensors".into()]);
    });
    let (status, answer) =
        post_prompt(&fake, &prompt("sdxl.safetensors", "detail.safetensors")).await;
    assert_eq!((status, answer["node_errors"].clone()), (200, json!({})));
}

#[tokio::test]
async fn files_evil_output_name_is_reported_but_not_served() {
    let fake = FakeComfy::start(FakeComfyConfig {
        evil_output_name: Some("../../x.png".into()),
        ..FakeComfyConfig::default()
    })
    .await;
    let mut ws = WsClient::connect(&fake, "e").await;
    let id = submit(
        &fake,
        &json!({"prompt": {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 9}},
                            "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "evil"}}},
                "client_id": "e"}),
    )
    .await;
    let frames = ws.until_done(&id).await;
    let executed = frames
        .iter()
        .find(|f| f.kind() == "executed")
        .expect("executed");
    assert_eq!(
        executed.data()["output"]["images"][0]["filename"],
        "../../x.png"
    );
    assert_eq!(
        history(&fake, &id).await[&id]["outputs"]["2"]["images"][0]["filename"],
        "../../x.png"
    );
    assert_eq!(
        get(&format!("{}/view?filename=../../x.png", fake.url()))
            .await
            .0,
        400
    );
    // The real file is still there under its own name.
    assert_eq!(
        get(&format!("{}/view?filename=evil_00001_.png", fake.url()))
            .await
            .0,
        200
    );
}
