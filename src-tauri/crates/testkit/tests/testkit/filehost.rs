//! The file host as download clients see it: ranges, validators, HEAD, throttling, faults, redirects, gated files.

use std::time::{Duration, Instant};

use comfyfleet_testkit::filehost::{generate, Content};
use comfyfleet_testkit::{FileHost, HostedFile};

use super::http;

fn expected(seed: u64, start: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    generate(seed, start, &mut v);
    v
}

async fn host_with(size: u64) -> FileHost {
    let host = FileHost::start().await;
    host.add("/m.bin", HostedFile::generated(size, 3));
    host
}

#[tokio::test]
async fn filehost_serves_whole_files_and_single_ranges_with_validators() {
    let host = host_with(10_000).await;
    let url = format!("{}/m.bin", host.url());
    let r = http().get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["accept-ranges"], "bytes");
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let date = r.headers()["last-modified"].to_str().unwrap().to_string();
    assert_eq!(r.bytes().await.unwrap().to_vec(), expected(3, 0, 10_000));

    let r = http()
        .get(&url)
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], "bytes 100-199/10000");
    assert_eq!(r.bytes().await.unwrap().to_vec(), expected(3, 100, 100));

    for validator in [&etag, &date] {
        let r = http()
            .get(&url)
            .header("range", "bytes=9000-")
            .header("if-range", validator.as_str())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 206, "If-Range {validator}");
        assert_eq!(r.bytes().await.unwrap().len(), 1000);
    }
    let r = http()
        .get(&url)
        .header("range", "bytes=10000-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    assert_eq!(r.headers()["content-range"], "bytes */10000");

    let r = http().head(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], "10000");
    assert_eq!(r.bytes().await.unwrap().len(), 0);
    assert_eq!(host.requests().len(), 6);
    assert_eq!(host.requests()[1].header("range"), Some("bytes=100-199"));
}

#[tokio::test]
async fn filehost_changed_file_gets_new_validators_and_ignores_stale_if_range() {
    let host = host_with(4096).await;
    let url = format!("{}/m.bin", host.url());
    let first = http().get(&url).send().await.unwrap();
    let etag = first.headers()["etag"].to_str().unwrap().to_string();
    let before = first.bytes().await.unwrap();
    let sha_before = host.sha256("/m.bin").unwrap();
    host.change("/m.bin");
    let r = http()
        .get(&url)
        .header("range", "bytes=1000-")
        .header("if-range", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "a stale If-Range gets the whole new file");
    assert_ne!(r.headers()["etag"].to_str().unwrap(), etag);
    let after = r.bytes().await.unwrap();
    assert_eq!(after.len(), 4096);
    assert_ne!(after, before);
    assert_ne!(host.sha256("/m.bin").unwrap(), sha_before);
}

#[tokio::test]
async fn filehost_no_range_mode_answers_200_without_accept_ranges() {
    let host = host_with(2048).await;
    host.set(|c| c.no_range = true);
    let r = http()
        .get(format!("{}/m.bin", host.url()))
        .header("range", "bytes=1000-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("accept-ranges").is_none());
    assert_eq!(r.bytes().await.unwrap().len(), 2048);
}

#[tokio::test]
async fn filehost_drops_the_next_connections_after_n_bytes() {
    let host = host_with(1 << 20).await;
    host.set(|c| {
        c.drop_after = Some(100_000);
        c.drop_requests = Some(1);
    });
    let url = format!("{}/m.bin", host.url());
    let r = http().get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.is_err(), "the body ends early");
    assert_eq!(host.requests()[0].body_bytes, 100_000);
    let r = http().get(&url).send().await.unwrap();
    assert_eq!(
        r.bytes().await.unwrap().len(),
        1 << 20,
        "only the first one dropped"
    );
    assert_eq!(host.bytes_sent(), 100_000 + (1 << 20));
}

#[tokio::test]
async fn filehost_caps_each_connection_at_the_set_rate() {
    let host = host_with(300_000).await;
    host.set(|c| c.rate = Some(200_000));
    let t = Instant::now();
    let r = http()
        .get(format!("{}/m.bin", host.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().len(), 300_000);
    // Never faster than the cap (a slow machine may be slower, which is fine).
    assert!(
        t.elapsed() >= Duration::from_millis(1_300),
        "{:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn filehost_corrupts_one_byte_the_set_number_of_times() {
    let host = FileHost::start().await;
    host.add(
        "/c.bin",
        HostedFile::generated(5000, 9).corrupted(1234, Some(1)),
    );
    let url = format!("{}/c.bin", host.url());
    let good = expected(9, 0, 5000);
    let bad = http()
        .get(&url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let diff: Vec<usize> = (0..5000).filter(|&i| bad[i] != good[i]).collect();
    assert_eq!(diff, vec![1234]);
    let again = http()
        .get(&url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(again.to_vec(), good);
}

#[tokio::test]
async fn filehost_redirects_like_hugging_face_and_records_what_reached_each_host() {
    let cdn = FileHost::start().await;
    let file = HostedFile::generated(1000, 5);
    cdn.add("/blob/abc", file.clone());
    let hub = FileHost::start().await;
    let linked = file.clone().with_linked("c0ffee").linked;
    hub.add(
        "/org/model/resolve/main/m.safetensors",
        HostedFile::redirect(format!("{}/blob/abc?X-Amz-Signature=s", cdn.url()), linked)
            .gated("hf_tok"),
    );
    let url = format!("{}/org/model/resolve/main/m.safetensors", hub.url());
    let r = http().head(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["x-error-code"], "GatedRepo");
    let r = http().get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("Access to model org/model is restricted"),
        "{body}"
    );

    let no_redirects = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_redirects
        .get(&url)
        .header("authorization", "Bearer hf_tok")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(
        r.headers()["x-linked-etag"].to_str().unwrap(),
        format!("\"{}\"", file.content.sha256())
    );
    assert_eq!(r.headers()["x-linked-size"], "1000");
    assert_eq!(r.headers()["x-repo-commit"], "c0ffee");
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let body = http()
        .get(&location)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(body.to_vec(), expected(5, 0, 1000));
    assert_eq!(hub.requests().len(), 3);
    assert_eq!(cdn.requests()[0].path, "/blob/abc?X-Amz-Signature=s");
    assert_eq!(cdn.requests()[0].path_only(), "/blob/abc");
}

#[tokio::test]
async fn filehost_serves_a_folder_and_refuses_paths_outside_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), b"hello").unwrap();
    let host = FileHost::start().await;
    host.add_dir("/files", dir.path());
    let r = http()
        .get(format!("{}/files/a.txt", host.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "hello");
    let r = http()
        .get(format!("{}/files/../a.txt", host.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(matches!(
        HostedFile::path(dir.path().join("a.txt")).unwrap().content,
        Content::Path { size: 5, .. }
    ));
}
