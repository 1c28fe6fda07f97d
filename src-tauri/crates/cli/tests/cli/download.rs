//! `comfyfleet download` as a user runs it against the testkit file host: killed with SIGKILL and rerun, a full
//! disk (a file-size limit), errors on one line, a second run that finds the file already verified.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use comfyfleet_testkit::{FileHost, HostedFile};

use crate::{stderr, Cli};

const MIB: u64 = 1 << 20;

fn leftovers(dest: &Path) -> Vec<String> {
    std::fs::read_dir(dest.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".part"))
        .collect()
}

/// Waits (generously) until `f` holds.
async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_killed_with_sigkill_at_several_points_resumes_to_the_right_sha256() {
    let size: u64 = 1 << 30;
    let host = FileHost::start().await;
    host.add("/big.bin", HostedFile::generated(size, 42));
    // Capped per connection, as CDNs do, so each kill lands mid-file.
    host.set(|c| c.rate = Some(20_000_000));
    let expected = {
        let content = host.content("/big.bin").unwrap();
        tokio::task::spawn_blocking(move || content.sha256())
    };
    let cli = Cli::new();
    let dest = cli.home.path().join("models").join("big.bin");
    let url = format!("{}/big.bin", host.url());
    let args = [
        "download",
        url.as_str(),
        "--to",
        dest.to_str().unwrap(),
        "--json",
    ];
    let segment = size / 8;
    let mut kills = 0u64;
    for point in [0.15, 0.45, 0.75] {
        let mut child = cli
            .command(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let at = (size as f64 * point) as u64;
        until("the kill point", || host.bytes_sent() >= at).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        assert!(!dest.exists(), "the final name never holds a partial file");
        assert!(
            leftovers(&dest).iter().any(|n| n.ends_with(".part")),
            "{:?}",
            leftovers(&dest)
        );
    }
    host.set(|c| c.rate = Some(60_000_000));
    let out = cli.run(&args, None);
    assert!(out.status.success(), "{}", stderr(&out));
    let outcome: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let expected = expected.await.unwrap();
    assert_eq!(outcome["sha256"], expected.as_str());
    assert_eq!(
        comfyfleet_core::downloads::hash::sha256_file(&dest).unwrap(),
        expected
    );
    assert!(leftovers(&dest).is_empty(), "{:?}", leftovers(&dest));
    let refetched = host.bytes_sent() - size;
    eprintln!(
        "served {} bytes for a {size}-byte file: {refetched} re-fetched over {kills} kills ({:.1} MiB per kill, segment {} MiB)",
        host.bytes_sent(),
        refetched as f64 / kills as f64 / MIB as f64,
        segment / MIB
    );
    assert!(
        refetched <= kills * segment,
        "re-fetched {refetched} bytes over {kills} kills"
    );

    // Run again: already there and verified, nothing fetched.
    let before = host.requests().len();
    let again: serde_json::Value = cli.json(&args);
    assert_eq!(again["already_present"], true);
    assert_eq!(host.requests().len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_on_a_full_disk_pauses_keeps_the_part_and_resumes_later() {
    let size = 40 * MIB;
    let host = FileHost::start().await;
    host.add("/m.bin", HostedFile::generated(size, 5));
    let expected = host.sha256("/m.bin").unwrap();
    let cli = Cli::new();
    let dest = cli.home.path().join("m.bin");
    let url = format!("{}/m.bin", host.url());
    let args = [
        "download",
        url.as_str(),
        "--to",
        dest.to_str().unwrap(),
        "--sha256",
        expected.as_str(),
    ];
    let mut cmd = cli.command(&args);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit {
                rlim_cur: 12 << 20,
                rlim_max: 12 << 20,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("disk is full") && err.contains("part is kept"),
        "{err}"
    );
    assert!(!dest.exists());
    let part = std::fs::metadata(cli.home.path().join("m.bin.part")).unwrap();
    assert!(part.len() > 0);
    assert!(cli.home.path().join("m.bin.part.json").exists());

    let sent_before = host.bytes_sent();
    let out = cli.run(&args, None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        comfyfleet_core::downloads::hash::sha256_file(&dest).unwrap(),
        expected
    );
    assert!(
        host.bytes_sent() - sent_before < size,
        "the rerun resumed from the kept part"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_errors_exit_2_with_one_clear_line() {
    let host = FileHost::start().await;
    host.add(
        "/org/gated/resolve/main/m.bin",
        HostedFile::generated(100, 1).gated("t"),
    );
    let cli = Cli::new();
    let dest = cli.home.path().join("x.bin");
    for (url, says) in [
        (
            format!("{}/org/gated/resolve/main/m.bin", host.url()),
            "accept its licence",
        ),
        (
            format!("{}/missing.bin?token=SECRET", host.url()),
            "does not exist",
        ),
        ("ftp://example.com/x".to_string(), "not a download URL"),
    ] {
        let out = cli.run(&["download", &url, "--to", dest.to_str().unwrap()], None);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.starts_with("error: ") && err.contains(says), "{err}");
        assert!(!err.contains("SECRET"), "{err}");
    }
    let out = cli.run(
        &[
            "download",
            "http://127.0.0.1:1/x",
            "--to",
            dest.to_str().unwrap(),
            "--sha256",
            "abc",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not a SHA-256"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_prints_the_path_size_and_checksum() {
    let host = FileHost::start().await;
    host.add("/a.bin", HostedFile::generated(40 * MIB, 2));
    let sha = host.sha256("/a.bin").unwrap();
    let cli = Cli::new();
    let dest = cli.home.path().join("a.bin");
    let url = format!("{}/a.bin", host.url());
    let out = cli.ok(
        &[
            "download",
            &url,
            "--to",
            dest.to_str().unwrap(),
            "--sha256",
            &sha,
            "--connections",
            "2",
        ],
        None,
    );
    assert!(
        out.contains(dest.to_str().unwrap())
            && out.contains(&sha)
            && out.contains("verified against --sha256"),
        "{out}"
    );
    let ranged = host
        .requests()
        .iter()
        .filter(|r| r.header("range").is_some())
        .count();
    assert_eq!(ranged, 2, "two connections");
}
