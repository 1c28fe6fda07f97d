//! Download benchmarks against the testkit file host on loopback, measured side by side in one run:
//! 1. one connection, a 2 GiB file: `curl` against ComfyFleet (not verifying), and ComfyFleet verifying against
//!    not verifying (the SHA-256 overlaps the transfer);
//! 2. a per-connection cap of 20 MB/s (as CDNs do): the default parallel download against one connection;
//! 3. hashing speed: ComfyFleet's SHA-256 against `openssl dgst -sha256` on the same file;
//! 4. peak memory of the downloading process (VmHWM; the file host runs in a child process, as a server would).
//!
//! Run: cargo bench -p comfyfleet-core --bench downloads   (needs curl and openssl; SIZE_MIB=2048, ROUNDS=2, and
//! CAPPED_MB=200 change the sizes). Files go to a temp folder (about 2 × SIZE_MIB) and are removed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use comfyfleet_core::downloads::hash::sha256_file;
use comfyfleet_core::downloads::{
    fetch, http_client, no_progress, Control, DownloadRequest, Options,
};
use comfyfleet_testkit::{FileHost, HostedFile};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rate(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e6
}

fn best(times: &[Duration]) -> Duration {
    times.iter().copied().min().unwrap_or_default()
}

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn timed(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

fn curl(url: &str, to: &Path) -> Duration {
    timed(|| {
        let ok = Command::new("curl")
            .args(["-s", "--fail", "--noproxy", "*", "-o"])
            .arg(to)
            .arg(url)
            .status()
            .expect("curl runs")
            .success();
        assert!(ok, "curl failed");
    })
}

fn openssl_sha256(path: &Path) -> (Duration, String) {
    let t = Instant::now();
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-r"])
        .arg(path)
        .output()
        .expect("openssl runs");
    let d = t.elapsed();
    let text = String::from_utf8_lossy(&out.stdout);
    (d, text.split_whitespace().next().unwrap_or("").to_string())
}

/// The file host, in a child process (this same program with `BENCH_SERVE=1`), steered through its stdin.
struct Server {
    child: std::process::Child,
    url: String,
}

impl Server {
    fn start(size: u64, capped: u64) -> Server {
        use std::io::BufRead;
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env("BENCH_SERVE", "1")
            .env("SIZE", size.to_string())
            .env("CAPPED", capped.to_string())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("LISTENING ")
            .expect("the server starts")
            .to_string();
        Server { child, url }
    }

    /// Caps each connection at `bytes_per_sec` (0: no cap), and waits until the server has it.
    fn set_rate(&mut self, bytes_per_sec: u64) {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{bytes_per_sec}").unwrap();
        stdin.flush().unwrap();
        std::thread::sleep(Duration::from_millis(300));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Server mode: host the files, apply rate caps read from stdin, end when stdin closes.
fn serve() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let host = FileHost::start().await;
        host.add(
            "/big.bin",
            HostedFile::generated(env_u64("SIZE", 1 << 30), 7),
        );
        host.add(
            "/capped.bin",
            HostedFile::generated(env_u64("CAPPED", 200_000_000), 8),
        );
        println!("LISTENING {}", host.url());
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in std::io::stdin().lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line.trim().parse::<u64>().unwrap_or(0));
            }
        });
        while let Some(rate) = rx.recv().await {
            host.set(|c| c.rate = Some(rate).filter(|r| *r > 0));
        }
    });
}

fn main() {
    if std::env::var_os("BENCH_SERVE").is_some() {
        return serve();
    }
    let size = env_u64("SIZE_MIB", 2048) << 20;
    let rounds = env_u64("ROUNDS", 2).max(1);
    let capped = env_u64("CAPPED_MB", 400) * 1_000_000;
    let work = tempfile::Builder::new()
        .prefix("comfyfleet-bench-dl")
        .tempdir()
        .unwrap();
    let free = {
        let out = Command::new("df")
            .args(["-k", "--output=avail"])
            .arg(work.path())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    assert!(
        free > 2 * size + (1 << 30),
        "needs {} MiB free in {}",
        (2 * size) >> 20,
        work.path().display()
    );

    let mut server = Server::start(size, capped);
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (_control, control_rx) = tokio::sync::watch::channel(Control::Run);
    let http = http_client();
    let ours = |url: &str, dest: &Path, options: Options| -> (Duration, String) {
        let req = DownloadRequest::new(url, dest);
        let t = Instant::now();
        let out = client_rt
            .block_on(fetch(
                &http,
                &req,
                &options,
                control_rx.clone(),
                no_progress(),
            ))
            .expect("download");
        (t.elapsed(), out.sha256)
    };
    let one = |verify: bool| Options {
        connections: 1,
        verify,
        ..Options::default()
    };
    let big = format!("{}/big.bin", server.url);
    let path = |name: &str| -> PathBuf { work.path().join(name) };

    println!(
        "downloads benchmark: {} MiB file on {}, {} rounds",
        size >> 20,
        server.url,
        rounds
    );
    let (mut t_curl, mut t_plain, mut t_verified) = (vec![], vec![], vec![]);
    let mut sha = String::new();
    for round in 0..rounds {
        t_curl.push(curl(&big, &path("curl.bin")));
        std::fs::remove_file(path("curl.bin")).unwrap();
        let (d, _) = ours(&big, &path("plain.bin"), one(false));
        t_plain.push(d);
        std::fs::remove_file(path("plain.bin")).unwrap();
        let (d, s) = ours(&big, &path("verified.bin"), one(true));
        t_verified.push(d);
        sha = s;
        if round + 1 < rounds {
            std::fs::remove_file(path("verified.bin")).unwrap();
        }
    }
    let (c, p, v) = (best(&t_curl), best(&t_plain), best(&t_verified));
    println!(
        "1 connection: curl {:.0} MB/s · ComfyFleet {:.0} MB/s (ratio {:.2}, target ≥ 0.95)",
        rate(size, c),
        rate(size, p),
        c.as_secs_f64() / p.as_secs_f64()
    );
    println!(
        "  verified {:.0} MB/s: {:+.1}% time against not verifying (target ≤ +10%)",
        rate(size, v),
        (v.as_secs_f64() / p.as_secs_f64() - 1.0) * 100.0
    );

    // Hashing: the same file, from the page cache, best of two each.
    let file = path("verified.bin");
    let mut t_openssl = vec![];
    let mut t_ours = vec![];
    for _ in 0..2 {
        let (d, hex) = openssl_sha256(&file);
        assert_eq!(hex, sha, "openssl and the download agree on the SHA-256");
        t_openssl.push(d);
        let mut ours_hex = String::new();
        t_ours.push(timed(|| ours_hex = sha256_file(&file).unwrap()));
        assert_eq!(ours_hex, sha);
    }
    let (o, h) = (best(&t_openssl), best(&t_ours));
    println!(
        "hashing: openssl {:.0} MB/s · ComfyFleet {:.0} MB/s (ratio {:.2}, target ≥ 0.9)",
        rate(size, o),
        rate(size, h),
        o.as_secs_f64() / h.as_secs_f64()
    );
    std::fs::remove_file(&file).unwrap();

    // A per-connection cap, as CDNs do.
    server.set_rate(20_000_000);
    let capped_url = format!("{}/capped.bin", server.url);
    let (single, _) = ours(
        &capped_url,
        &path("single.bin"),
        Options {
            connections: 1,
            ..Options::default()
        },
    );
    std::fs::remove_file(path("single.bin")).unwrap();
    let (parallel, _) = ours(&capped_url, &path("parallel.bin"), Options::default());
    std::fs::remove_file(path("parallel.bin")).unwrap();
    println!(
        "20 MB/s per connection, {} MB: one connection {:.1} MB/s · default parallel {:.1} MB/s ({:.1}×, target ≥ 6×)",
        capped / 1_000_000,
        rate(capped, single),
        rate(capped, parallel),
        single.as_secs_f64() / parallel.as_secs_f64()
    );
    // Network-bound (the usual case off loopback): does hashing overlap the transfer?
    server.set_rate(150_000_000);
    let (plain, _) = ours(&capped_url, &path("plain.bin"), one(false));
    std::fs::remove_file(path("plain.bin")).unwrap();
    let (verified, _) = ours(&capped_url, &path("verified.bin"), one(true));
    std::fs::remove_file(path("verified.bin")).unwrap();
    println!(
        "150 MB/s link, 1 connection: verified {:+.1}% time against not verifying",
        (verified.as_secs_f64() / plain.as_secs_f64() - 1.0) * 100.0
    );
    println!("peak memory of the downloading process (VmHWM, curl and openssl not included): {:.1} MB (target < 64 MB)", vm_hwm_kib() as f64 * 1024.0 / 1e6);
}
