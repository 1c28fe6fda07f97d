//! Downloads against the testkit file host on loopback: segments, resume, validators, faults, redirects with
//! credentials, gated files, verification, and the queue (duplicates, already present, pause/resume/cancel).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use comfyfleet_core::downloads::{
    fetch, http_client, no_progress, Control, Credentials, DownloadError, DownloadRequest,
    Downloads, Options, Phase, Progress, ProgressSink,
};
use comfyfleet_core::secrets::Secret;
use comfyfleet_core::store::Store;
use comfyfleet_testkit::{FileHost, HostedFile};
use tokio::sync::watch;

const MIB: u64 = 1 << 20;

fn small_segments() -> Options {
    Options {
        min_segment: MIB,
        checkpoint_bytes: 256 * 1024,
        ..Options::default()
    }
}

fn running() -> watch::Receiver<Control> {
    // The sender is leaked on purpose: a control that never changes.
    let (tx, rx) = watch::channel(Control::Run);
    std::mem::forget(tx);
    rx
}

fn recorder() -> (ProgressSink, Arc<Mutex<Vec<Progress>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    (Arc::new(move |p| s.lock().unwrap().push(p)), seen)
}

fn leftovers(dest: &Path) -> Vec<PathBuf> {
    let dir = dest.parent().unwrap();
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains(".part"))
        .collect()
}

async fn host(path: &str, file: HostedFile) -> (FileHost, String) {
    let host = FileHost::start().await;
    host.add(path, file);
    let url = format!("{}{path}", host.url());
    (host, url)
}

/// Waits (generously) until `f` holds.
async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_fetch_large_files_in_segments_and_verify_them() {
    let (host, url) = host("/m.bin", HostedFile::generated(8 * MIB + 123, 1)).await;
    let sha = host.sha256("/m.bin").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("m.bin");
    let mut req = DownloadRequest::new(&url, &dest);
    req.sha256 = Some(sha.to_uppercase());
    let (sink, seen) = recorder();
    let out = fetch(&http_client(), &req, &small_segments(), running(), sink)
        .await
        .unwrap();
    assert_eq!(out.sha256, sha);
    assert_eq!(out.size, 8 * MIB + 123);
    assert_eq!(out.verified_against.as_deref(), Some("caller"));
    assert_eq!(
        comfyfleet_core::downloads::hash::sha256_file(&dest).unwrap(),
        sha
    );
    assert!(leftovers(&dest).is_empty(), "{:?}", leftovers(&dest));
    let ranges: Vec<String> = host
        .requests()
        .iter()
        .filter_map(|r| r.header("range").map(str::to_string))
        .collect();
    assert_eq!(ranges.len(), 8, "{ranges:?}");
    assert!(ranges.contains(&"bytes=0-".to_string()));
    let segment = (8 * MIB + 123) / 8;
    assert!(
        ranges.contains(&format!("bytes={}-{}", 7 * segment, 8 * MIB + 122)),
        "{ranges:?}"
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.first().unwrap().phase, Phase::Connecting);
    let last = seen.last().unwrap();
    assert_eq!((last.phase, last.downloaded), (Phase::Done, 8 * MIB + 123));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_reconnect_after_dropped_connections_and_resume_each_segment() {
    let (host, url) = host("/m.bin", HostedFile::generated(4 * MIB, 2)).await;
    host.set(|c| {
        c.drop_after = Some(300_000);
        c.drop_requests = Some(6);
    });
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("m.bin");
    let out = fetch(
        &http_client(),
        &DownloadRequest::new(&url, &dest),
        &small_segments(),
        running(),
        no_progress(),
    )
    .await
    .unwrap();
    assert_eq!(out.sha256, host.sha256("/m.bin").unwrap());
    assert!(host.requests().len() >= 4 + 6);
    // Resumed requests never re-fetch what was already received (only what hyper had in flight is sent twice).
    assert!(
        host.bytes_sent() < 4 * MIB + 6 * 300_000,
        "{}",
        host.bytes_sent()
    );
}

/// Starts a download, pauses it once `at_least` bytes are on disk, and returns the error it stopped with.
async fn pause_midway(url: &str, dest: &Path, options: &Options, at_least: u64) -> DownloadError {
    let (tx, rx) = watch::channel(Control::Run);
    let (sink, seen) = recorder();
    let req = DownloadRequest::new(url, dest);
    let task = {
        let (options, req) = (options.clone(), req.clone());
        tokio::spawn(async move { fetch(&http_client(), &req, &options, rx, sink).await })
    };
    until("some bytes on disk", || {
        seen.lock()
            .unwrap()
            .iter()
            .any(|p| p.downloaded >= at_least)
    })
    .await;
    tx.send(Control::Pause).unwrap();
    task.await.unwrap().unwrap_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_resume_a_paused_part_with_if_range_and_never_show_the_final_name_early() {
    let (host, url) = host("/m.bin", HostedFile::generated(6 * MIB, 3)).await;
    host.set(|c| c.rate = Some(2_000_000));
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("m.bin");
    let options = Options {
        connections: 2,
        ..small_segments()
    };
    let e = pause_midway(&url, &dest, &options, 512 * 1024).await;
    assert!(matches!(e, DownloadError::Paused { .. }), "{e}");
    assert!(!dest.exists(), "no final name before verification");
    assert!(dest.with_extension("bin.part").exists());
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("m.bin.part.json")).unwrap())
            .unwrap();
    let done: u64 = state["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["done"].as_u64().unwrap())
        .sum();
    assert!(done >= 512 * 1024, "{state}");
    host.set(|c| c.rate = None);
    host.clear_requests();
    let out = fetch(
        &http_client(),
        &DownloadRequest::new(&url, &dest),
        &options,
        running(),
        no_progress(),
    )
    .await
    .unwrap();
    assert_eq!(out.sha256, host.sha256("/m.bin").unwrap());
    assert!(out.resumed_from >= done);
    assert!(
        out.fetched <= 6 * MIB - done,
        "fetched {} after {done}",
        out.fetched
    );
    let etag = host
        .requests()
        .iter()
        .find_map(|r| r.header("if-range").map(str::to_string));
    assert!(
        etag.is_some_and(|e| e.starts_with('"')),
        "resumes carry If-Range with the ETag"
    );
    assert!(leftovers(&dest).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_start_over_cleanly_when_the_remote_file_changed() {
    let (host, url) = host("/m.bin", HostedFile::generated(4 * MIB, 4)).await;
    host.set(|c| c.rate = Some(2_000_000));
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("m.bin");
    let options = Options {
        connections: 2,
        ..small_segments()
    };
    let old = host.sha256("/m.bin").unwrap();
    pause_midway(&url, &dest, &options, 256 * 1024).await;
    host.change("/m.bin");
    host.set(|c| c.rate = None);
    let out = fetch(
        &http_client(),
        &DownloadRequest::new(&url, &dest),
        &options,
        running(),
        no_progress(),
    )
    .await
    .unwrap();
    let new = host.sha256("/m.bin").unwrap();
    assert_ne!(old, new);
    assert_eq!(out.sha256, new);
    assert_eq!(
        comfyfleet_core::downloads::hash::sha256_file(&dest).unwrap(),
        new
    );
    assert!(
        out.notes
            .iter()
            .any(|n| n.contains("changed on the server")),
        "{:?}",
        out.notes
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_from_a_server_without_ranges_use_one_stream_and_start_over_after_a_drop() {
    let (host, url) = host("/m.bin", HostedFile::generated(3 * MIB, 5)).await;
    host.set(|c| {
        c.no_range = true;
        c.drop_after = Some(MIB);
        c.drop_requests = Some(1);
    });
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("m.bin");
    let out = fetch(
        &http_client(),
        &DownloadRequest::new(&url, &dest),
        &small_segments(),
        running(),
        no_progress(),
    )
    .await
    .unwrap();
    assert_eq!(out.sha256, host.sha256("/m.bin").unwrap());
    let statuses: Vec<u16> = host.requests().iter().map(|r| r.status).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert!(
        out.notes.iter().any(|n| n.contains("did not resume")),
        "{:?}",
        out.notes
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_catch_a_corrupted_byte_and_fetch_again_once() {
    let size = 3 * MIB;
    let (host, url) = host(
        "/m.bin",
        HostedFile::generated(size, 6).corrupted(MIB / 2 + 7, Some(1)),
    )
    .await;
    let sha = host.sha256("/m.bin").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("m.bin");
    let mut req = DownloadRequest::new(&url, &dest);
    req.sha256 = Some(sha.clone());
    let out = fetch(
        &http_client(),
        &req,
        &small_segments(),
        running(),
        no_progress(),
    )
    .await
    .unwrap();
    assert_eq!(out.sha256, sha);
    assert!(
        out.notes.iter().any(|n| n.contains("did not match")),
        "{:?}",
        out.notes
    );

    // Always corrupt: fails after one retry, naming both hashes, and leaves nothing behind.
    host.update("/m.bin", |f| f.corruption.as_mut().unwrap().times = None);
    let dest = dir.path().join("again.bin");
    req.dest = dest.clone();
    let e = fetch(
        &http_client(),
        &req,
        &small_segments(),
        running(),
        no_progress(),
    )
    .await
    .unwrap_err();
    match &e {
        DownloadError::ChecksumMismatch {
            expected, actual, ..
        } => {
            assert_eq!(expected, &sha);
            assert_ne!(actual, &sha);
            assert!(e.to_string().contains(expected) && e.to_string().contains(actual));
        }
        other => panic!("expected a checksum mismatch, got {other}"),
    }
    assert!(
        !dest.exists(),
        "an unverified file never gets the final name"
    );
    assert!(leftovers(&dest).is_empty(), "{:?}", leftovers(&dest));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_follow_a_redirect_sending_the_token_only_to_its_host_and_verify_with_x_linked_etag(
) {
    let file = HostedFile::generated(2 * MIB, 7);
    let cdn = FileHost::start().await;
    cdn.add("/blob/xyz", file.clone());
    let hub = FileHost::start().await;
    let path = "/org/model/resolve/main/model.safetensors";
    hub.add(
        path,
        HostedFile::redirect(
            format!("{}/blob/xyz?X-Amz-Signature=sig", cdn.url()),
            file.clone().with_linked("abc123").linked,
        )
        .gated("hf_secret_token"),
    );
    let url = format!("{}{path}", hub.url());
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("model.safetensors");
    let mut req = DownloadRequest::new(&url, &dest);
    req.credentials = Credentials::bearer_for(&url, Secret::new("hf_secret_token"));
    let out = fetch(
        &http_client(),
        &req,
        &small_segments(),
        running(),
        no_progress(),
    )
    .await
    .unwrap();
    assert_eq!(out.sha256, file.content.sha256());
    assert_eq!(out.verified_against.as_deref(), Some("X-Linked-Etag"));
    assert!(!hub.requests().is_empty());
    for r in hub.requests() {
        assert_eq!(r.header("authorization"), Some("Bearer hf_secret_token"));
    }
    assert!(!cdn.requests().is_empty());
    for r in cdn.requests() {
        assert_eq!(
            r.header("authorization"),
            None,
            "the token never reaches the CDN: {r:?}"
        );
    }

    // A CDN that always serves a wrong byte is caught thanks to X-Linked-Etag alone.
    cdn.update("/blob/xyz", |f| {
        f.corruption = Some(comfyfleet_testkit::filehost::Corruption {
            offset: 5,
            times: None,
        })
    });
    let e = fetch(
        &http_client(),
        &DownloadRequest {
            dest: dir.path().join("b"),
            ..req.clone()
        },
        &small_segments(),
        running(),
        no_progress(),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, DownloadError::ChecksumMismatch { .. }), "{e}");
}

#[tokio::test]
async fn downloads_of_a_gated_model_say_to_accept_the_licence_and_add_a_token() {
    let path = "/black-forest-labs/FLUX.1-schnell/resolve/main/flux1-schnell.safetensors";
    let (_host, url) = host(path, HostedFile::generated(1000, 8).gated("hf_right")).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("flux.safetensors");
    let mut req = DownloadRequest::new(&url, &dest);
    req.credentials = Credentials::bearer_for(&url, Secret::new("hf_wrong"));
    let e = fetch(
        &http_client(),
        &req,
        &Options::default(),
        running(),
        no_progress(),
    )
    .await
    .unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, DownloadError::Gated { .. }), "{text}");
    assert!(
        text.contains("/black-forest-labs/FLUX.1-schnell")
            && text.contains("accept its licence")
            && text.contains("token"),
        "{text}"
    );
    assert!(!text.contains("hf_wrong"));
    assert!(!dest.exists() && leftovers(&dest).is_empty());
}

#[tokio::test]
async fn downloads_never_show_tokens_in_errors() {
    let (_host, url) = host("/x", HostedFile::generated(10, 1)).await;
    let dir = tempfile::tempdir().unwrap();
    let e = fetch(
        &http_client(),
        &DownloadRequest::new(
            format!("{url}-missing?token=SECRETTOKEN"),
            dir.path().join("x"),
        ),
        &Options::default(),
        running(),
        no_progress(),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, DownloadError::NotFound { .. }), "{e}");
    assert!(!e.to_string().contains("SECRETTOKEN"), "{e}");
}

fn queue(dir: &Path, concurrent: usize) -> Downloads {
    Downloads::with_limit(
        Store::open(&dir.join("db.sqlite")).unwrap(),
        small_segments(),
        concurrent,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_queued_twice_download_once_and_a_verified_file_is_not_fetched_again() {
    let (host, url) = host("/m.bin", HostedFile::generated(2 * MIB, 9)).await;
    host.set(|c| c.rate = Some(4_000_000));
    let dir = tempfile::tempdir().unwrap();
    let downloads = queue(dir.path(), 3);
    let dest = dir.path().join("m.bin");
    let (a, b) = tokio::join!(
        downloads.download(DownloadRequest::new(&url, &dest), no_progress()),
        downloads.download(DownloadRequest::new(&url, &dest), no_progress()),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a, b, "both callers get the one result");
    assert!(
        host.bytes_sent() <= 2 * MIB + 512 * 1024,
        "downloaded once: {} bytes sent",
        host.bytes_sent()
    );
    let record = downloads.record(&dest).await.unwrap().unwrap();
    assert_eq!(
        (record.state.as_str(), record.sha256.as_deref()),
        ("done", Some(a.sha256.as_str()))
    );

    let requests = host.requests().len();
    let again = downloads
        .download(DownloadRequest::new(&url, &dest), no_progress())
        .await
        .unwrap();
    assert!(again.already_present);
    assert_eq!(again.sha256, a.sha256);
    assert_eq!(
        host.requests().len(),
        requests,
        "no request for a file already verified"
    );

    // A file changed on disk since is downloaded again.
    std::fs::write(&dest, b"tampered").unwrap();
    let fresh = downloads
        .download(DownloadRequest::new(&url, &dest), no_progress())
        .await
        .unwrap();
    assert!(!fresh.already_present);
    assert_eq!(fresh.sha256, a.sha256);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_pause_resume_and_cancel_through_the_queue() {
    let (host, url) = host("/m.bin", HostedFile::generated(4 * MIB, 10)).await;
    host.set(|c| c.rate = Some(1_000_000));
    let dir = tempfile::tempdir().unwrap();
    let downloads = queue(dir.path(), 2);
    let dest = dir.path().join("m.bin");
    let (sink, seen) = recorder();
    let task = {
        let (d, url, dest) = (downloads.clone(), url.clone(), dest.clone());
        tokio::spawn(async move { d.download(DownloadRequest::new(&url, &dest), sink).await })
    };
    until("bytes", || {
        seen.lock().unwrap().iter().any(|p| p.downloaded > 0)
    })
    .await;
    assert!(downloads.pause(&dest));
    until("paused", || {
        seen.lock()
            .unwrap()
            .iter()
            .any(|p| p.phase == Phase::Paused)
    })
    .await;
    let record = downloads.record(&dest).await.unwrap().unwrap();
    assert_eq!(record.state, "paused");
    assert!(dir.path().join("m.bin.part").exists());
    host.set(|c| c.rate = None);
    assert!(downloads.resume(&dest));
    let out = task.await.unwrap().unwrap();
    assert_eq!(out.sha256, host.sha256("/m.bin").unwrap());

    host.set(|c| c.rate = Some(500_000));
    let dest2 = dir.path().join("n.bin");
    let (sink, seen) = recorder();
    let task = {
        let (d, url, dest2) = (downloads.clone(), url.clone(), dest2.clone());
        tokio::spawn(async move { d.download(DownloadRequest::new(&url, &dest2), sink).await })
    };
    until("bytes", || {
        seen.lock().unwrap().iter().any(|p| p.downloaded > 0)
    })
    .await;
    assert!(downloads.cancel(&dest2));
    let e = task.await.unwrap().unwrap_err();
    assert!(matches!(e, DownloadError::Cancelled { .. }), "{e}");
    assert!(
        !dest2.exists() && leftovers(&dest2).is_empty(),
        "{:?}",
        leftovers(&dest2)
    );
    assert_eq!(downloads.record(&dest2).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_respect_the_limit_on_concurrent_transfers() {
    let host = FileHost::start().await;
    for i in 0..3 {
        host.add(&format!("/{i}.bin"), HostedFile::generated(MIB, i));
    }
    host.set(|c| c.rate = Some(4_000_000));
    let dir = tempfile::tempdir().unwrap();
    let downloads = queue(dir.path(), 1);
    let runs = (0..3).map(|i| {
        downloads.download(
            DownloadRequest::new(
                format!("{}/{i}.bin", host.url()),
                dir.path().join(format!("{i}.bin")),
            ),
            no_progress(),
        )
    });
    for r in futures::future::join_all(runs).await {
        r.unwrap();
    }
    // One at a time: every request of a file comes before the first request of the next one to start.
    let order: Vec<String> = host.requests().iter().map(|r| r.path.clone()).collect();
    let mut finished = Vec::new();
    for p in &order {
        if finished.last() != Some(p) {
            assert!(
                !finished.contains(p),
                "{p} ran again after another file started: {order:?}"
            );
            finished.push(p.clone());
        }
    }
    assert_eq!(finished.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_retry_busy_servers_after_retry_after_and_reconnect_stalled_transfers() {
    let (host, url) = host("/m.bin", HostedFile::generated(2 * MIB, 11)).await;
    host.set(|c| {
        c.fail_next = 2;
        c.fail_status = 503;
        c.retry_after = Some(1);
        c.stall_after = Some(100_000);
    });
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("m.bin");
    let options = Options {
        stall_timeout: Duration::from_secs(2),
        ..small_segments()
    };
    let started = std::time::Instant::now();
    let out = fetch(
        &http_client(),
        &DownloadRequest::new(&url, &dest),
        &options,
        running(),
        no_progress(),
    )
    .await
    .unwrap();
    assert_eq!(out.sha256, host.sha256("/m.bin").unwrap());
    let statuses: Vec<u16> = host.requests().iter().map(|r| r.status).collect();
    assert_eq!(&statuses[..2], &[503, 503], "{statuses:?}");
    // Waited as asked (twice 1 s) and for the stall (2 s): never faster than that.
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let stalled = host
        .requests()
        .iter()
        .find(|r| r.status == 206)
        .unwrap()
        .body_bytes;
    assert_eq!(stalled, 100_000, "the first transfer stalled");
    assert!(
        statuses.len() >= 4,
        "reconnected after the stall: {statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_larger_than_the_free_space_are_refused_before_any_byte_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let free = comfyfleet_core::downloads::disk::free_space(dir.path()).unwrap();
    // Announced (Content-Length) as more than the disk holds; its bytes would be generated lazily.
    let (host, url) = host(
        "/huge.safetensors",
        HostedFile::generated(free + (1 << 30), 3),
    )
    .await;
    let dest = dir.path().join("huge.safetensors");
    let e = fetch(
        &http_client(),
        &DownloadRequest::new(&url, &dest),
        &Options::default(),
        running(),
        no_progress(),
    )
    .await
    .unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, DownloadError::NotEnoughSpace { .. }), "{text}");
    assert!(
        text.contains("Not enough free space") && text.contains(&dir.path().display().to_string()),
        "{text}"
    );
    assert!(!dest.exists() && leftovers(&dest).is_empty());
    // One look at the size, no transfer: only the first request was made.
    assert_eq!(host.requests().len(), 1);
}
