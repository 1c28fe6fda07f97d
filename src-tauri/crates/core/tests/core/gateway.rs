//! The ComfyUI-compatible gateway in front of a real fleet (a testkit ComfyUI behind it): spoken to by raw HTTP and
//! WebSocket as ComfyUI clients do, and by another ComfyFleet that takes the gateway for a ComfyUI server.

use std::time::Duration;

use comfyfleet_core::gateway::{Gateway, GatewayHost, GatewayParts, GatewaySettings};
use comfyfleet_core::jobs::JobState;
use comfyfleet_core::jobs::NewJob;
use comfyfleet_core::router::Policy;
use futures::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::jobs::{
    active_server, dispatcher, empty_image, last_prompt_body, last_prompt_sent, uploads_to, wait,
};
use crate::support::*;

fn parts(t: &TestFleet, d: &comfyfleet_core::dispatcher::Dispatcher) -> GatewayParts {
    GatewayParts {
        dispatcher: d.clone(),
        jobs: t.fleet.jobs.clone(),
        servers: t.fleet.servers.clone(),
        health: t.fleet.health.clone(),
        uploads: t.dir.path().join("gateway-uploads"),
    }
}

/// A fleet whose one server (active) takes `exec_ms` per prompt, dispatching, behind a gateway.
struct Studio {
    t: TestFleet,
    server: comfyfleet_testkit::FakeComfy,
    d: comfyfleet_core::dispatcher::Dispatcher,
    g: Gateway,
}

async fn studio(exec_ms: u64) -> Studio {
    let t = fleet();
    let server = active_server(&t, exec_ms).await;
    let d = dispatcher(&t, Policy::Manual);
    let g = gateway(&t, &d).await;
    Studio { t, server, d, g }
}

async fn gateway(t: &TestFleet, d: &comfyfleet_core::dispatcher::Dispatcher) -> Gateway {
    Gateway::start(parts(t, d), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// GET `url`, as JSON.
async fn get_json(url: String) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

/// POST `body` as JSON to `url`.
async fn post_json(url: String, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(url)
        .json(body)
        .send()
        .await
        .unwrap()
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next JSON message on the socket (binary frames are skipped), within 20 s.
async fn next_json(ws: &mut Socket) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("a message in time")
            .expect("the socket is open")
            .unwrap();
        if let Message::Text(t) = m {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_speaks_comfyuis_http_and_websocket_api_over_the_fleet() {
    let Studio {
        t,
        server,
        d: _d,
        g,
    } = studio(300).await;
    let base = format!("http://{}", g.local_addr());
    let http = reqwest::Client::new();

    // A client connects first, as ComfyUI clients do, and is greeted with the queue and its id.
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/ws?clientId=c1", g.local_addr()))
            .await
            .unwrap();
    let hello = next_json(&mut ws).await;
    assert_eq!(hello["type"], "status");
    assert_eq!(hello["data"]["sid"], "c1");

    // Queued under the id the client chose, with what the web page sends beside it (its workflow, which ComfyUI
    // embeds in the images it saves); the router sends it to the fleet's server.
    let extra = json!({"extra_pnginfo": {"workflow": {"nodes": [{"id": 2, "type": "SaveImage"}]}}});
    let answer: Value = post_json(
        format!("{base}/prompt"),
        &json!({"prompt": empty_image(7), "client_id": "c1", "prompt_id": "mine-1", "extra_data": extra}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(answer["prompt_id"], "mine-1");
    assert!(answer["number"].is_number() && answer["node_errors"].is_object());
    // The client hears the prompt through to its end, in ComfyUI's order.
    let mut kinds = Vec::new();
    let mut executed = Value::Null;
    loop {
        let m = next_json(&mut ws).await;
        let kind = m["type"].as_str().unwrap().to_string();
        if kind != "status" {
            assert_eq!(m["data"]["prompt_id"], "mine-1", "{m}");
        }
        if kind == "executed" {
            executed = m["data"].clone();
        }
        kinds.push(kind.clone());
        if kind == "execution_success" || kind == "execution_error" {
            break;
        }
    }
    let story: Vec<&str> = kinds
        .iter()
        .map(String::as_str)
        .filter(|k| *k != "status" && *k != "progress")
        .collect();
    assert_eq!(
        story,
        [
            "execution_start",
            "executed",
            "executing",
            "execution_success"
        ],
        "{kinds:?}"
    );
    assert_eq!(executed["node"], "2");
    let image = executed["output"]["images"][0].clone();
    assert_eq!(image["type"], "output");

    // History and /view give the same image the fleet saved, under /api too.
    let history: Value = get_json(format!("{base}/api/history/mine-1")).await;
    let entry = &history["mine-1"];
    assert_eq!(entry["status"]["status_str"], "success", "{history}");
    assert_eq!(entry["outputs"]["2"]["images"][0], image);
    assert_eq!(entry["prompt"][2]["2"]["class_type"], "SaveImage");
    assert_eq!(entry["prompt"][3], extra);
    assert_eq!(last_prompt_body(&server)["extra_data"], extra);
    let view = http
        .get(format!("{base}/view"))
        .query(&[
            ("filename", image["filename"].as_str().unwrap()),
            ("subfolder", image["subfolder"].as_str().unwrap()),
            ("type", "output"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(view.status(), 200);
    assert_eq!(view.headers()["content-type"], "image/png");
    let bytes = view.bytes().await.unwrap();
    let job = t
        .fleet
        .jobs
        .list(&[JobState::Succeeded], 1)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(bytes.as_ref(), std::fs::read(&job.outputs[0].path).unwrap());
    let all: Value = get_json(format!("{base}/history")).await;
    assert!(all.get("mine-1").is_some(), "{all}");
    assert_eq!(get_json(format!("{base}/history/nope")).await, json!({}));
    let queue: Value = get_json(format!("{base}/queue")).await;
    assert_eq!(queue, json!({"queue_running": [], "queue_pending": []}));
    let remaining: Value = get_json(format!("{base}/prompt")).await;
    assert_eq!(remaining["exec_info"]["queue_remaining"], 0);

    // Node information comes from the fleet's ComfyUI.
    let ours: Value = get_json(format!("{base}/object_info")).await;
    let theirs: Value = get_json(format!("{}/object_info", server.url())).await;
    assert_eq!(ours, theirs);
    assert!(ours.get("SaveImage").is_some());
    let stats: Value = get_json(format!("{base}/system_stats")).await;
    assert!(stats["system"]["comfyui_version"].is_string(), "{stats}");
    // The devices are the fleet's, named by server.
    let theirs: Value = get_json(format!("{}/system_stats", server.url())).await;
    let first = &stats["devices"][0];
    assert_eq!(
        first["name"],
        format!("A: {}", theirs["devices"][0]["name"].as_str().unwrap())
    );
    assert_eq!(first["vram_total"], theirs["devices"][0]["vram_total"]);
    // So do ComfyUI's web page and the rest of what it serves, its refusals included.
    let page = reqwest::get(format!("{base}/")).await.unwrap();
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(page
        .text()
        .await
        .unwrap()
        .contains(comfyfleet_testkit::comfy::INDEX_TITLE));
    assert_eq!(
        get_json(format!("{base}/api/users")).await,
        get_json(format!("{}/api/users", server.url())).await
    );
    let missing = reqwest::get(format!("{base}/api/no-such-route"))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    // What would change a server (its settings, its files, a node manager's installs) is not done with the fleet's
    // credentials.
    let change = post_json(
        format!("{base}/api/settings/Comfy.ColorPalette"),
        &json!("dark"),
    )
    .await;
    assert_eq!(change.status(), 405);
    assert!(change
        .text()
        .await
        .unwrap()
        .contains("send it to that server directly"));
    assert!(!server
        .requests()
        .iter()
        .any(|r| r.path_only().contains("settings/Comfy")));

    // Refusals in ComfyUI's shape, and nothing queued for them.
    let before = t.fleet.jobs.list(&[], 100).await.unwrap().len();
    let unknown_node = json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
        "2": {"class_type": "NoSuchNode", "inputs": {"images": ["1", 0]}}
    });
    let no_output = json!({"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}}});
    for (body, kind) in [
        (json!({}), "no_prompt"),
        (json!({"prompt": {"1": {"inputs": {}}}}), "invalid_prompt"),
        (
            json!({"prompt": empty_image(1), "prompt_id": "mine-1"}),
            "invalid_prompt",
        ),
        // Checked against the nodes of the fleet's servers, as ComfyUI checks its own.
        (json!({"prompt": unknown_node}), "invalid_prompt"),
        (json!({"prompt": no_output}), "prompt_no_outputs"),
    ] {
        let r = post_json(format!("{base}/prompt"), &body).await;
        assert_eq!(r.status(), 400, "{body}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["type"], kind, "{e}");
        assert!(e["error"]["message"].is_string(), "{e}");
    }
    let e: Value = post_json(format!("{base}/prompt"), &json!({"prompt": unknown_node}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        e["error"]["message"],
        "Cannot execute because node NoSuchNode does not exist."
    );
    assert_eq!(t.fleet.jobs.list(&[], 100).await.unwrap().len(), before);
    // A web page from another site cannot use it; the gateway's own origin can.
    let r = http
        .post(format!("{base}/prompt"))
        .header("Origin", "http://evil.example")
        .json(&json!({"prompt": empty_image(2)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = http
        .get(format!("{base}/queue"))
        .header("Origin", base.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(t.fleet.jobs.list(&[], 100).await.unwrap().len(), before);
    g.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_carries_an_uploaded_image_to_the_server_that_runs_the_prompt() {
    let Studio { t, server, d, g } = studio(20).await;
    let base = format!("http://{}", g.local_addr());
    let http = reqwest::Client::new();
    let made = d.submit(NewJob::new("make", empty_image(3))).await.unwrap();
    let png = std::fs::read(&wait(&d, &made.id).await.outputs[0].path).unwrap();

    let upload = |name: &'static str| {
        let form = reqwest::multipart::Form::new()
            .text("subfolder", "pets")
            .part(
                "image",
                reqwest::multipart::Part::bytes(png.clone()).file_name(name),
            );
        http.post(format!("{base}/upload/image"))
            .multipart(form)
            .send()
    };
    let first: Value = upload("cat.png").await.unwrap().json().await.unwrap();
    assert_eq!(
        first,
        json!({"name": "cat.png", "subfolder": "pets", "type": "input"})
    );
    // The same name again is kept beside it, as ComfyUI does without overwrite.
    let second: Value = upload("cat.png").await.unwrap().json().await.unwrap();
    assert_eq!(second["name"], "cat (1).png");
    // A name trying to leave the folder keeps only its last part.
    let sneaky: Value = upload("../../escape.png")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sneaky["name"], "escape.png");
    assert!(t
        .dir
        .path()
        .join("gateway-uploads/pets/escape.png")
        .is_file());
    let view = http
        .get(format!(
            "{base}/view?filename=cat.png&subfolder=pets&type=input"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(view.bytes().await.unwrap().as_ref(), png.as_slice());
    let traversal = http
        .get(format!(
            "{base}/view?filename=passwd&subfolder=../../etc&type=input"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(traversal.status(), 403);

    // A prompt naming it as ComfyUI clients do: the fleet uploads it to the server it runs on.
    server.clear_requests();
    let prompt = json!({
        "1": {"class_type": "LoadImage", "inputs": {"image": "pets/cat.png [input]"}},
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}
    });
    let answer: Value = post_json(format!("{base}/prompt"), &json!({"prompt": prompt}))
        .await
        .json()
        .await
        .unwrap();
    let id = answer["prompt_id"].as_str().unwrap().to_string();
    let done = wait(&d, &id).await;
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
    assert_eq!(uploads_to(&server), 1);
    assert_eq!(last_prompt_sent(&server)["1"]["inputs"]["image"], "cat.png");
    g.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_is_a_comfyui_server_to_another_comfyfleet() {
    // The studio: a fleet with a ComfyUI, behind a gateway.
    let studio = fleet();
    let _render = active_server(&studio, 50).await;
    let studio_d = dispatcher(&studio, Policy::Manual);
    let g = gateway(&studio, &studio_d).await;
    // An artist's ComfyFleet adds the gateway as its server, and runs a job on it with its own ComfyUI client.
    let artist = fleet();
    artist
        .fleet
        .servers
        .add(input("Studio", &format!("http://{}", g.local_addr())))
        .await
        .unwrap();
    artist.fleet.servers.activate(Some("Studio")).await.unwrap();
    let status = artist.fleet.health.test("Studio", true).await.unwrap();
    assert!(status.status.is_online(), "{status:?}");
    let artist_d = dispatcher(&artist, Policy::Manual);
    let job = artist_d
        .submit(NewJob::new("via the studio", empty_image(9)))
        .await
        .unwrap();
    let done = wait(&artist_d, &job.id).await;
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
    // The image the artist got is the one the studio's fleet made.
    let made = studio
        .fleet
        .jobs
        .list(&[JobState::Succeeded], 1)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        std::fs::read(&done.outputs[0].path).unwrap(),
        std::fs::read(&made.outputs[0].path).unwrap()
    );
    g.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_without_a_connected_server_says_so_and_still_queues() {
    let t = fleet();
    // The fleet's one server is down (nothing listens there).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    t.fleet
        .servers
        .add(input("Down", &format!("http://127.0.0.1:{port}")))
        .await
        .unwrap();
    t.fleet.servers.activate(Some("Down")).await.unwrap();
    let d = dispatcher(&t, Policy::Manual);
    let g = gateway(&t, &d).await;
    let base = format!("http://{}", g.local_addr());
    let http = reqwest::Client::new();
    let r = http
        .get(format!("{base}/object_info"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let e: Value = r.json().await.unwrap();
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("No ComfyUI server of the fleet is connected"),
        "{e}"
    );
    // A prompt still waits in the fleet's queue for a server, as it would in the app.
    let answer: Value = post_json(format!("{base}/prompt"), &json!({"prompt": empty_image(4)}))
        .await
        .json()
        .await
        .unwrap();
    let queue: Value = get_json(format!("{base}/queue")).await;
    assert_eq!(queue["queue_pending"][0][1], answer["prompt_id"], "{queue}");
    // And is dropped from it on request.
    post_json(
        format!("{base}/queue"),
        &json!({"delete": [answer["prompt_id"]]}),
    )
    .await;
    let job = t
        .fleet
        .jobs
        .get(answer["prompt_id"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(job.state, JobState::Cancelled);
    g.stop().await;
}

/// Messages of one prompt on the socket, by type, until its end (status and progress left out).
async fn story_of(ws: &mut Socket, prompt_id: &str) -> Vec<String> {
    let mut story = Vec::new();
    loop {
        let m = next_json(ws).await;
        let kind = m["type"].as_str().unwrap().to_string();
        if kind == "status" || kind == "progress" {
            continue;
        }
        assert_eq!(m["data"]["prompt_id"], prompt_id, "{m}");
        let end = kind == "executing" && m["data"]["node"].is_null();
        story.push(kind);
        if end {
            // execution_success follows the final executing.
            if story.len() > 1 && story[story.len() - 2] == "executed" {
                story.push(next_json(ws).await["type"].as_str().unwrap().to_string());
            }
            return story;
        }
    }
}

async fn connect(g: &Gateway, client_id: &str) -> Socket {
    let url = format!("ws://{}/ws?clientId={client_id}", g.local_addr());
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "status");
    ws
}

async fn post_prompt(g: &Gateway, body: Value) -> String {
    let answer: Value = post_json(format!("http://{}/prompt", g.local_addr()), &body)
        .await
        .json()
        .await
        .unwrap();
    answer["prompt_id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_tells_its_clients_about_prompts_another_process_dispatches() {
    let t = fleet();
    let _server = active_server(&t, 200).await;
    // The desktop app dispatches (it holds the lease); the gateway's own dispatcher only queues.
    let app = dispatcher(&t, Policy::Manual);
    let start = std::time::Instant::now();
    while !app.is_leader().await {
        assert!(start.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let d = dispatcher(&t, Policy::Manual);
    assert!(!d.is_leader().await);
    let g = gateway(&t, &d).await;
    let mut ws = connect(&g, "c2").await;
    let id = post_prompt(&g, json!({"prompt": empty_image(21), "client_id": "c2"})).await;
    assert_eq!(
        story_of(&mut ws, &id).await,
        [
            "execution_start",
            "executed",
            "executing",
            "execution_success"
        ]
    );
    assert_eq!(
        t.fleet.jobs.get(&id).await.unwrap().state,
        JobState::Succeeded
    );
    g.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_interrupt_stops_the_running_prompt_and_says_so() {
    let Studio {
        t,
        server: _server,
        d,
        g,
    } = studio(10_000).await;
    let mut ws = connect(&g, "c3").await;
    let mut other = connect(&g, "c4").await;
    let id = post_prompt(
        &g,
        json!({"prompt": empty_image(31), "client_id": "c3", "extra_data": {"from": "krita"}}),
    )
    .await;
    loop {
        let m = next_json(&mut ws).await;
        if m["type"] == "execution_start" {
            break;
        }
    }
    let r = post_json(
        format!("http://{}/interrupt", g.local_addr()),
        &json!({"prompt_id": id}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        story_of(&mut ws, &id).await,
        ["execution_interrupted", "executing"]
    );
    let job = wait(&d, &id).await;
    assert_eq!(job.state, JobState::Cancelled);
    // Run again from the Jobs page, it still carries what the client sent beside the prompt.
    let again = d.retry(&id).await.unwrap();
    assert_eq!(
        t.fleet.jobs.extra_data(&again.id).await.unwrap(),
        Some(json!({"from": "krita"}))
    );
    d.cancel(&again.id).await.unwrap();
    let history: Value = get_json(format!("http://{}/history/{id}", g.local_addr())).await;
    assert_eq!(history[&id]["status"]["status_str"], "error");
    assert_eq!(
        history[&id]["status"]["messages"][1][0],
        "execution_interrupted"
    );
    // Another client hears how the queue stands, not the prompts of others.
    let mut heard = Vec::new();
    while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_millis(300), other.next()).await
    {
        heard.push(m.into_text().unwrap().to_string());
    }
    assert!(!heard.is_empty());
    assert!(
        heard.iter().all(|m| m.contains("\"type\":\"status\"")),
        "{heard:?}"
    );
    g.stop().await;
}

/// Whether something answers `GET /prompt` at `address` as the gateway does.
async fn answers(address: &str) -> bool {
    match reqwest::get(format!("{address}/prompt")).await {
        Ok(r) => r
            .json::<Value>()
            .await
            .is_ok_and(|v| v["exec_info"].is_object()),
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_host_serves_as_its_settings_say_and_keeps_serving_when_an_address_is_refused() {
    let t = fleet();
    let d = dispatcher(&t, Policy::Manual);
    let host = GatewayHost::new(parts(&t, &d), t.fleet.settings.clone());
    let off = host.start_saved().await;
    assert_eq!(
        (off.settings.enabled, off.address.as_deref()),
        (false, None)
    );
    assert_eq!(off.settings.listen, "127.0.0.1:8189");

    let on = host
        .set(GatewaySettings {
            enabled: true,
            listen: "127.0.0.1:0".into(),
        })
        .await
        .unwrap();
    let address = on.address.clone().unwrap();
    assert!(answers(&address).await);
    assert!(!on.exposed);

    // A port another program holds: refused with why, and the gateway goes on where it was.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let e = host
        .set(GatewaySettings {
            enabled: true,
            listen: format!("127.0.0.1:{port}"),
        })
        .await
        .unwrap_err();
    assert!(e.to_string().contains("could not listen"), "{e}");
    let still = host.status().await;
    assert_eq!(still.settings.listen, "127.0.0.1:0");
    assert!(still.address.is_some() && answers(still.address.as_deref().unwrap()).await);
    let e = host
        .set(GatewaySettings {
            enabled: true,
            listen: "my computer".into(),
        })
        .await
        .unwrap_err();
    assert!(e.to_string().contains("like 127.0.0.1:8189"), "{e}");

    // Off: nothing answers there any more.
    let stopped = host
        .set(GatewaySettings {
            enabled: false,
            listen: "127.0.0.1:0".into(),
        })
        .await
        .unwrap();
    assert_eq!(stopped.address, None);
    let now_address = still.address.unwrap();
    assert!(!answers(&now_address).await);

    // Saved: the next start of the app serves again, or says why it cannot.
    host.set(GatewaySettings {
        enabled: true,
        listen: format!("127.0.0.1:{port}"),
    })
    .await
    .unwrap_err();
    drop(taken);
    host.set(GatewaySettings {
        enabled: true,
        listen: format!("127.0.0.1:{port}"),
    })
    .await
    .unwrap();
    host.shutdown().await;
    let restarted = GatewayHost::new(parts(&t, &d), t.fleet.settings.clone());
    let up = restarted.start_saved().await;
    assert_eq!(
        up.address.as_deref(),
        Some(format!("http://127.0.0.1:{port}").as_str())
    );
    assert!(answers(up.address.as_deref().unwrap()).await);
    restarted.shutdown().await;
    let _held = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let blocked = GatewayHost::new(parts(&t, &d), t.fleet.settings.clone())
        .start_saved()
        .await;
    assert_eq!(blocked.address, None);
    assert!(blocked.error.unwrap().contains("could not listen"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_queues_prompts_unchecked_when_a_server_hangs_instead_of_hanging_too() {
    let t = fleet();
    let server = active_server(&t, 20).await;
    t.fleet.health.test_all(true).await.unwrap();
    let d = dispatcher(&t, Policy::Manual);
    let g = gateway(&t, &d).await;
    // Known as connected a moment ago, it now takes requests and never answers.
    server.set_config(|c| c.fault = comfyfleet_testkit::Fault::Hang);
    let start = std::time::Instant::now();
    let first = post_prompt(&g, json!({"prompt": empty_image(41)})).await;
    let waited = start.elapsed();
    assert!(
        waited < Duration::from_secs(15),
        "POST /prompt took {waited:?}"
    );
    // The next prompt does not wait for that server's node list again.
    let start = std::time::Instant::now();
    let second = post_prompt(&g, json!({"prompt": empty_image(42)})).await;
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    for id in [first, second] {
        let job = t.fleet.jobs.get(&id).await.unwrap();
        assert!(!job.state.is_final(), "{job:?}");
        d.cancel(&id).await.unwrap();
    }
    g.stop().await;
}
