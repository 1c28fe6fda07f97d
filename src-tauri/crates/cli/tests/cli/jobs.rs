//! `comfyfleet run` and `comfyfleet jobs` as a user runs them, against testkit ComfyUIs.

use std::time::Duration;

use comfyfleet_testkit::{FakeComfy, FakeComfyConfig};

use crate::{stderr, Cli};

fn workflow(dir: &std::path::Path, color: u32) -> std::path::PathBuf {
    let p = dir.join(format!("wf-{color}.json"));
    std::fs::write(
        &p,
        format!(r#"{{"1": {{"class_type": "EmptyImage", "inputs": {{"width": 64, "height": 64, "batch_size": 1, "color": {color}}}}},
            "2": {{"class_type": "SaveImage", "inputs": {{"images": ["1", 0], "filename_prefix": "cli"}}}}}}"#),
    )
    .unwrap();
    p
}

/// `bad.json`: a workflow ComfyUI refuses (its input image does not exist).
fn failing_workflow(dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("bad.json");
    std::fs::write(&p, r#"{"1": {"class_type": "LoadImage", "inputs": {"image": "does_not_exist.png"}}, "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}"#).unwrap();
    p
}

pub async fn server(cli: &Cli, exec_ms: u64) -> FakeComfy {
    let fake = FakeComfy::start(FakeComfyConfig {
        exec_time: Duration::from_millis(exec_ms),
        ..Default::default()
    })
    .await;
    cli.ok(
        &["servers", "add", "--name", "Local", "--url", &fake.url()],
        None,
    );
    cli.ok(&["servers", "activate", "Local"], None);
    fake
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_run_wait_prints_the_output_files_and_sets_inputs() {
    let cli = Cli::new();
    let fake = server(&cli, 50).await;
    let wf = workflow(cli.home.path(), 1);
    let out = cli.ok(
        &[
            "run",
            wf.to_str().unwrap(),
            "--wait",
            "--set",
            "1.inputs.color=123",
        ],
        None,
    );
    let path = out
        .lines()
        .find(|l| l.ends_with(".png"))
        .expect("an output path");
    assert!(std::path::Path::new(path).starts_with(cli.home.path().join("gallery")));
    assert_eq!(&std::fs::read(path).unwrap()[..4], b"\x89PNG");
    let sent = fake
        .requests()
        .into_iter()
        .find(|r| r.path_only() == "/prompt" && r.method == "POST")
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(body["prompt"]["1"]["inputs"]["color"], 123);
    let list: serde_json::Value =
        serde_json::from_str(&cli.ok(&["jobs", "list", "--json"], None)).unwrap();
    assert_eq!(list[0]["state"], "succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_run_of_a_failing_job_exits_nonzero_with_the_reason() {
    let cli = Cli::new();
    let _fake = server(&cli, 20).await;
    let p = failing_workflow(cli.home.path());
    let out = cli.run(&["run", p.to_str().unwrap(), "--wait"], None);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("Node 1 (LoadImage)") && err.contains("does_not_exist.png"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_jobs_retry_runs_a_failed_job_again_as_a_new_job_and_refuses_a_succeeded_one() {
    let cli = Cli::new();
    let _fake = server(&cli, 20).await;
    let bad = failing_workflow(cli.home.path());
    assert_eq!(
        cli.run(&["run", bad.to_str().unwrap(), "--wait"], None)
            .status
            .code(),
        Some(1)
    );
    let list = |cli: &Cli| -> serde_json::Value {
        serde_json::from_str(&cli.ok(&["jobs", "list", "--json"], None)).unwrap()
    };
    let failed = list(&cli)[0]["id"].as_str().unwrap().to_string();

    // Run again: a new job, the same workflow, so the same failure and exit code.
    let out = cli.run(&["jobs", "retry", &failed, "--wait"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("does_not_exist.png"),
        "{}",
        stderr(&out)
    );
    let jobs = list(&cli);
    assert_eq!(jobs.as_array().unwrap().len(), 2);
    assert_ne!(jobs[0]["id"], failed.as_str());
    assert_eq!(jobs[0]["name"], "bad");
    assert_eq!(
        (jobs[0]["state"].as_str(), jobs[1]["state"].as_str()),
        (Some("failed"), Some("failed"))
    );

    // A job that succeeded is not run again.
    let good = workflow(cli.home.path(), 2);
    cli.ok(&["run", good.to_str().unwrap(), "--wait"], None);
    let done = list(&cli)[0]["id"].as_str().unwrap().to_string();
    let out = cli.run(&["jobs", "retry", &done], None);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("only a failed or cancelled job can be run again"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn cli_run_refuses_bad_workflows_clearly() {
    let cli = Cli::new();
    let dir = cli.home.path();
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let big = dir.join("big.json");
    {
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(100 * 1024 * 1024).unwrap();
    }
    let good = workflow(dir, 1);
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![write("notjson.json", "not json at all")],
            "not valid JSON",
        ),
        (
            vec![write(
                "ui.json",
                r#"{"last_node_id": 3, "nodes": [], "links": []}"#,
            )],
            "Export (API)",
        ),
        (vec![write("empty.json", "")], "empty"),
        (vec![write("nothing.json", "{}")], "no nodes"),
        (vec![big.to_str().unwrap().into()], "100 MB"),
        (
            vec![
                good.to_str().unwrap().into(),
                "--set".into(),
                "42.inputs.text=x".into(),
            ],
            "no node '42'",
        ),
        (
            vec![
                good.to_str().unwrap().into(),
                "--set".into(),
                "1.width=3".into(),
            ],
            "NODE.inputs.FIELD=VALUE",
        ),
    ];
    for (args, hint) in cases {
        let mut full = vec!["run".to_string()];
        full.extend(args);
        let refs: Vec<&str> = full.iter().map(String::as_str).collect();
        let out = cli.run(&refs, None);
        assert_eq!(out.status.code(), Some(2), "{full:?}");
        let err = stderr(&out);
        assert!(err.contains(hint), "{full:?}: {err}");
    }
    let list: serde_json::Value =
        serde_json::from_str(&cli.ok(&["jobs", "list", "--json"], None)).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 0, "nothing was queued");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_killed_with_jobs_queued_and_running_finishes_each_exactly_once_after_restart() {
    let cli = Cli::new();
    let fake = server(&cli, 600).await;
    let ids: Vec<String> = (0..4)
        .map(|i| {
            let wf = workflow(cli.home.path(), 500 + i);
            cli.ok(&["run", wf.to_str().unwrap()], None)
                .trim()
                .to_string()
        })
        .collect();
    // A CLI that follows a job is killed outright in the middle of it.
    let wf = workflow(cli.home.path(), 999);
    let mut child = cli
        .command(&["run", wf.to_str().unwrap(), "--wait", "--json"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    child.kill().unwrap(); // SIGKILL
    let _ = child.wait();
    // Restart: a new process takes over and every job ends exactly once.
    let out = cli.ok(
        &[
            "run",
            workflow(cli.home.path(), 1234).to_str().unwrap(),
            "--wait",
            "--json",
        ],
        None,
    );
    let last: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(last["state"], "succeeded");
    let mut list: serde_json::Value = serde_json::json!([]);
    for _ in 0..100 {
        list = serde_json::from_str(&cli.ok(&["jobs", "list", "--limit", "1000", "--json"], None))
            .unwrap();
        if list
            .as_array()
            .unwrap()
            .iter()
            .all(|j| j["state"] == "succeeded")
        {
            break;
        }
        // Jobs left in flight are finished by whichever process dispatches next.
        let _ = cli.run(
            &[
                "run",
                workflow(cli.home.path(), 7000).to_str().unwrap(),
                "--wait",
            ],
            None,
        );
    }
    let jobs = list.as_array().unwrap();
    assert!(jobs.iter().all(|j| j["state"] == "succeeded"), "{list:#}");
    for id in &ids {
        assert!(
            jobs.iter().any(|j| j["id"] == id.as_str()),
            "job {id} lost: {list:#}"
        );
    }
    let executed = fake.executed_prompts();
    let mut unique = executed.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), executed.len(), "no prompt ran twice");
    assert_eq!(executed.len(), jobs.len(), "each job ran exactly once");
}
