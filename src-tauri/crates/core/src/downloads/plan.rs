//! Pure decisions of the download engine: how a file is cut into segments, what a server's answer to a range
//! request means, when and how long to wait before retrying, which hash to expect, what may be shown of a URL, and
//! how often progress is reported. No I/O here; time comes in as a parameter.

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A byte span `[start, end)` of the file and how much of it is on disk (`done` bytes from `start`).
/// `end` is `None` while the size is unknown (one stream to the end).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub start: u64,
    pub end: Option<u64>,
    pub done: u64,
}

impl Segment {
    /// The next byte to fetch.
    pub fn next(&self) -> u64 {
        self.start + self.done
    }

    pub fn is_done(&self) -> bool {
        self.end.is_some_and(|e| self.next() >= e)
    }

    pub fn remaining(&self) -> Option<u64> {
        self.end.map(|e| e.saturating_sub(self.next()))
    }
}

/// Cuts a file into at most `connections` segments of at least `min_segment` bytes each, when the server serves
/// ranges and the size is known; otherwise one segment. The last segment takes the remainder.
pub fn plan_segments(
    total: Option<u64>,
    ranges: bool,
    connections: u32,
    min_segment: u64,
) -> Vec<Segment> {
    let Some(total) = total else {
        return vec![Segment {
            start: 0,
            end: None,
            done: 0,
        }];
    };
    let by_size = total.checked_div(min_segment).unwrap_or(u64::MAX);
    let n = if ranges {
        u64::from(connections.max(1)).min(by_size).max(1)
    } else {
        1
    };
    let size = total / n;
    (0..n)
        .map(|i| Segment {
            start: i * size,
            end: Some(if i + 1 == n { total } else { (i + 1) * size }),
            done: 0,
        })
        .collect()
}

/// How many new bytes may go unsaved before a checkpoint: the configured amount, but at most a quarter of the
/// smallest segment, so a killed download fetches again only a fraction of one segment's worth (at least 1 MiB, so
/// tiny segments do not fsync at every chunk).
pub fn checkpoint_bytes(segments: &[Segment], configured: u64) -> u64 {
    segments
        .iter()
        .filter_map(|s| s.end.map(|e| e - s.start))
        .min()
        .map_or(configured, |smallest| configured.min(smallest / 4))
        .max(1 << 20)
}

/// The end of the part's leading run of written bytes: everything before it is on disk.
pub fn contiguous_end(segments: &[Segment]) -> u64 {
    let mut sorted: Vec<&Segment> = segments.iter().collect();
    sorted.sort_by_key(|s| s.start);
    let mut end = 0;
    for s in sorted {
        if s.start > end {
            break;
        }
        end = end.max(s.next());
        if !s.is_done() {
            break;
        }
    }
    end
}

/// Bytes on disk over all segments.
pub fn done_bytes(segments: &[Segment]) -> u64 {
    segments.iter().map(|s| s.done).sum()
}

/// A `Content-Range` header: `bytes a-b/total`, `bytes a-b/*`, or `bytes */total` (unsatisfied).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentRange {
    Bytes {
        start: u64,
        end: u64,
        total: Option<u64>,
    },
    Unsatisfied {
        total: u64,
    },
}

pub fn parse_content_range(value: &str) -> Option<ContentRange> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (span, total) = rest.split_once('/')?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    if span.trim() == "*" {
        return total.map(|total| ContentRange::Unsatisfied { total });
    }
    let (a, b) = span.trim().split_once('-')?;
    let (start, end): (u64, u64) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    if end < start || total.is_some_and(|t| end >= t) {
        return None;
    }
    Some(ContentRange::Bytes { start, end, total })
}

/// What the server's answer to `Range: bytes=<asked>-` means for the download.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RangeVerdict {
    /// 206 from the byte asked for; `total` from Content-Range.
    Partial { total: Option<u64> },
    /// 200: the whole file from byte 0 (the server ignores ranges, or the `If-Range` validator no longer matched).
    Whole { total: Option<u64> },
    /// 416 and the part already holds every byte.
    AlreadyComplete,
    /// The answer does not fit what was asked (wrong start, unexpected size): start over.
    Mismatch(String),
}

/// Judges a 200/206/416 answer. `expected_total` is the size recorded when the download began.
pub fn judge_range_answer(
    status: u16,
    content_range: Option<&str>,
    content_length: Option<u64>,
    asked_from: u64,
    expected_total: Option<u64>,
) -> RangeVerdict {
    match status {
        206 => match content_range.and_then(parse_content_range) {
            Some(ContentRange::Bytes { start, total, .. }) if start == asked_from => {
                match (total, expected_total) {
                    (Some(t), Some(e)) if t != e => RangeVerdict::Mismatch(format!(
                        "the file's size changed on the server ({e} → {t} bytes)"
                    )),
                    _ => RangeVerdict::Partial {
                        total: total.or(expected_total),
                    },
                }
            }
            Some(ContentRange::Bytes { start, .. }) => RangeVerdict::Mismatch(format!(
                "the server sent bytes from {start} when asked from {asked_from}"
            )),
            _ => RangeVerdict::Mismatch(
                "the server's partial answer had no usable Content-Range".into(),
            ),
        },
        416 => match content_range.and_then(parse_content_range) {
            Some(ContentRange::Unsatisfied { total })
                if asked_from == total && expected_total.is_none_or(|e| e == total) =>
            {
                RangeVerdict::AlreadyComplete
            }
            _ => RangeVerdict::Mismatch("the server refused the range (416)".into()),
        },
        _ => RangeVerdict::Whole {
            total: content_length,
        },
    }
}

/// The validators a resume is checked against (`If-Range`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

impl Validators {
    /// The `If-Range` value: a strong ETag, else the Last-Modified date (weak ETags cannot be used there).
    pub fn if_range(&self) -> Option<&str> {
        self.etag
            .as_deref()
            .filter(|e| !e.starts_with("W/"))
            .or(self.last_modified.as_deref())
    }
}

/// How a failed attempt is handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Worth retrying after a pause (timeouts, resets, 408, 429, 5xx).
    Transient,
    /// Retrying will not help.
    Permanent,
}

pub fn classify_status(status: u16) -> Failure {
    match status {
        408 | 425 | 429 | 500..=599 => Failure::Transient,
        _ => Failure::Permanent,
    }
}

/// How long to wait before retry number `attempt` (0-based): 0.5 s doubling to at most 30 s, or what the server
/// asked for in `Retry-After` (at most 5 minutes).
pub fn backoff(attempt: u32, retry_after: Option<Duration>) -> Duration {
    if let Some(wait) = retry_after {
        return wait.min(Duration::from_secs(300));
    }
    let ms = 500u64.saturating_mul(1u64 << attempt.min(16));
    Duration::from_millis(ms.min(30_000))
}

/// `Retry-After` as seconds or an HTTP date (relative to `now`, seconds since the Unix epoch).
pub fn parse_retry_after(value: &str, now_secs: u64) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    let at = at.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(at.saturating_sub(now_secs)))
}

/// Query parameters whose values are secrets (tokens, signatures, credentials).
const SECRET_PARAMS: &[&str] = &[
    "token",
    "access_token",
    "api_key",
    "apikey",
    "key",
    "auth",
    "sig",
    "signature",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "policy",
    "x-goog-signature",
    "x-goog-credential",
];

/// A URL safe to log or show: secret query values replaced by `***`, a password in it removed.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return redact_text(url);
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("***"));
    }
    if parsed.query().is_some() {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let secret = SECRET_PARAMS.iter().any(|s| s.eq_ignore_ascii_case(&k));
                (
                    k.into_owned(),
                    if secret { "***".into() } else { v.into_owned() },
                )
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

/// Any text (an error from a library, a log line) with `token=…` values and `Bearer …` credentials removed.
pub fn redact_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    'outer: while !rest.is_empty() {
        let lower = rest.to_ascii_lowercase();
        let mut best: Option<(usize, usize)> = None;
        for marker in ["token=", "bearer ", "authorization: "] {
            if let Some(i) = lower.find(marker) {
                if best.is_none_or(|(b, _)| i < b) {
                    best = Some((i, marker.len()));
                }
            }
        }
        match best {
            None => {
                out.push_str(rest);
                break 'outer;
            }
            Some((i, len)) => {
                out.push_str(&rest[..i + len]);
                out.push_str("***");
                let after = &rest[i + len..];
                let end = if lower[i..].starts_with("authorization: ") {
                    // The whole header value ("Bearer x", "Basic y").
                    after.find(['\r', '\n']).unwrap_or(after.len())
                } else {
                    after
                        .find(|c: char| {
                            c.is_whitespace() || matches!(c, '&' | '"' | '\'' | ')' | ',' | ';')
                        })
                        .unwrap_or(after.len())
                };
                rest = &after[end..];
            }
        }
    }
    out
}

/// A SHA-256 written as 64 hex digits (any case, optional `sha256:` prefix, as GitHub's asset `digest` has it),
/// normalised to lowercase; `None` when it is not one.
pub fn normalize_sha256(text: &str) -> Option<String> {
    let t = text.trim().trim_matches('"');
    let t = t.strip_prefix("sha256:").unwrap_or(t);
    (t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit())).then(|| t.to_ascii_lowercase())
}

/// Hugging Face's `X-Linked-Etag` (else `ETag`): for LFS files a quoted 64-hex SHA-256 of the content.
pub fn sha256_from_etag(value: &str) -> Option<String> {
    let v = value.trim();
    let v = v.strip_prefix("W/").unwrap_or(v);
    normalize_sha256(v)
}

/// The model page a gated Hugging Face file belongs to: `https://host/{owner}/{repo}` from
/// `https://host/{owner}/{repo}/resolve/{rev}/{file}`.
pub fn model_page(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => {
            let path = u.path();
            let repo = path.split("/resolve/").next().unwrap_or(path);
            let mut base = u.clone();
            base.set_query(None);
            base.set_path(repo);
            base.to_string()
        }
        Err(_) => redact_url(url),
    }
}

/// Whether a credential for `cred_host` may be sent to `url`: same host (and port), and never over plain HTTP when
/// the credential was for HTTPS.
pub fn credential_applies(cred_host: &str, https_only: bool, url: &url::Url) -> bool {
    let host = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => return false,
    };
    host.eq_ignore_ascii_case(cred_host) && (!https_only || url.scheme() == "https")
}

/// Throttled progress with speed and ETA: at most one report per `every`, first and last always.
#[derive(Debug)]
pub struct Meter {
    every: Duration,
    last_emit: Option<Duration>,
    /// (time, bytes) samples of the last few seconds, for the speed.
    samples: VecDeque<(Duration, u64)>,
}

/// Speed and ETA at one moment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    pub bytes_per_sec: u64,
    pub eta: Option<Duration>,
}

const SPEED_WINDOW: Duration = Duration::from_secs(3);

impl Meter {
    pub fn new(every: Duration) -> Self {
        Meter {
            every,
            last_emit: None,
            samples: VecDeque::new(),
        }
    }

    /// Records `bytes` done of `total` at time `now` (from any fixed origin); `Some` when a report is due
    /// (`force` for the last one).
    pub fn observe(
        &mut self,
        now: Duration,
        bytes: u64,
        total: Option<u64>,
        force: bool,
    ) -> Option<Rate> {
        self.samples.push_back((now, bytes));
        while self.samples.len() > 2 && now.saturating_sub(self.samples[0].0) > SPEED_WINDOW {
            self.samples.pop_front();
        }
        let due = force
            || self
                .last_emit
                .is_none_or(|t| now.saturating_sub(t) >= self.every);
        if !due {
            return None;
        }
        self.last_emit = Some(now);
        let (t0, b0) = self.samples[0];
        let span = now.saturating_sub(t0).as_secs_f64();
        let bytes_per_sec = if span > 0.0 {
            (bytes.saturating_sub(b0) as f64 / span) as u64
        } else {
            0
        };
        let eta = match (total, bytes_per_sec) {
            (Some(t), s) if s > 0 => Some(Duration::from_secs(t.saturating_sub(bytes) / s)),
            (Some(t), _) if t <= bytes => Some(Duration::ZERO),
            _ => None,
        };
        Some(Rate { bytes_per_sec, eta })
    }
}

/// `1.5 GB`, `20.0 MB`, `512 B` (decimal units, as disks and speeds are sold).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_cuts_large_ranged_files_into_even_segments() {
        let s = plan_segments(Some(1000), true, 4, 100);
        assert_eq!(s.len(), 4);
        assert_eq!((s[0].start, s[0].end), (0, Some(250)));
        assert_eq!((s[3].start, s[3].end), (750, Some(1000)));
        let s = plan_segments(Some(1003), true, 4, 100);
        assert_eq!(s[3].end, Some(1003), "the last takes the remainder");
        assert_eq!(
            plan_segments(Some(250), true, 8, 100).len(),
            2,
            "at least min_segment each"
        );
        assert_eq!(plan_segments(Some(50), true, 8, 100).len(), 1);
        assert_eq!(
            plan_segments(Some(1000), false, 8, 100).len(),
            1,
            "no ranges: one stream"
        );
        assert_eq!(
            plan_segments(None, true, 8, 100),
            vec![Segment {
                start: 0,
                end: None,
                done: 0
            }]
        );
        assert_eq!(plan_segments(Some(0), true, 8, 100)[0].end, Some(0));
    }

    #[test]
    fn plan_checkpoints_come_at_least_every_quarter_of_the_smallest_segment() {
        let mib = 1u64 << 20;
        // 1 GiB over 8 connections: 128 MiB segments, so every 32 MiB rather than the configured 64.
        let eight = plan_segments(Some(1024 * mib), true, 8, 16 * mib);
        assert_eq!(checkpoint_bytes(&eight, 64 * mib), 32 * mib);
        // One large segment, or a size not known: as configured.
        assert_eq!(
            checkpoint_bytes(
                &plan_segments(Some(2048 * mib), true, 1, 16 * mib),
                64 * mib
            ),
            64 * mib
        );
        assert_eq!(
            checkpoint_bytes(&plan_segments(None, false, 8, 16 * mib), 64 * mib),
            64 * mib
        );
        // Never below 1 MiB.
        assert_eq!(
            checkpoint_bytes(&plan_segments(Some(100), true, 8, 1), 64 * mib),
            mib
        );
    }

    #[test]
    fn plan_contiguous_end_stops_at_the_first_unfinished_segment() {
        let mut s = plan_segments(Some(300), true, 3, 1);
        assert_eq!(contiguous_end(&s), 0);
        s[1].done = 100;
        assert_eq!(contiguous_end(&s), 0);
        s[0].done = 60;
        assert_eq!(contiguous_end(&s), 60);
        s[0].done = 100;
        assert_eq!(contiguous_end(&s), 200);
        s[2].done = 100;
        assert_eq!(contiguous_end(&s), 300);
        assert_eq!(done_bytes(&s), 300);
    }

    #[test]
    fn plan_parses_content_range() {
        assert_eq!(
            parse_content_range("bytes 0-99/1000"),
            Some(ContentRange::Bytes {
                start: 0,
                end: 99,
                total: Some(1000)
            })
        );
        assert_eq!(
            parse_content_range("bytes 5-9/*"),
            Some(ContentRange::Bytes {
                start: 5,
                end: 9,
                total: None
            })
        );
        assert_eq!(
            parse_content_range("bytes */1000"),
            Some(ContentRange::Unsatisfied { total: 1000 })
        );
        assert_eq!(parse_content_range("bytes 9-5/1000"), None);
        assert_eq!(parse_content_range("bytes 0-1000/1000"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
    }

    #[test]
    fn plan_judges_answers_to_range_requests() {
        assert_eq!(
            judge_range_answer(206, Some("bytes 100-999/1000"), Some(900), 100, Some(1000)),
            RangeVerdict::Partial { total: Some(1000) }
        );
        assert_eq!(
            judge_range_answer(200, None, Some(1000), 100, Some(1000)),
            RangeVerdict::Whole { total: Some(1000) }
        );
        assert!(matches!(
            judge_range_answer(206, Some("bytes 0-999/1000"), None, 100, Some(1000)),
            RangeVerdict::Mismatch(_)
        ));
        assert!(matches!(
            judge_range_answer(206, Some("bytes 100-1999/2000"), None, 100, Some(1000)),
            RangeVerdict::Mismatch(_)
        ));
        assert_eq!(
            judge_range_answer(416, Some("bytes */1000"), None, 1000, Some(1000)),
            RangeVerdict::AlreadyComplete
        );
        assert!(matches!(
            judge_range_answer(416, Some("bytes */500"), None, 1000, Some(1000)),
            RangeVerdict::Mismatch(_)
        ));
    }

    #[test]
    fn plan_if_range_prefers_a_strong_etag() {
        let v = Validators {
            etag: Some("\"a\"".into()),
            last_modified: Some("date".into()),
        };
        assert_eq!(v.if_range(), Some("\"a\""));
        let v = Validators {
            etag: Some("W/\"a\"".into()),
            last_modified: Some("date".into()),
        };
        assert_eq!(v.if_range(), Some("date"));
        assert_eq!(Validators::default().if_range(), None);
    }

    #[test]
    fn plan_backoff_doubles_up_to_a_cap_and_respects_retry_after() {
        assert_eq!(backoff(0, None), Duration::from_millis(500));
        assert_eq!(backoff(1, None), Duration::from_secs(1));
        assert_eq!(backoff(3, None), Duration::from_secs(4));
        assert_eq!(backoff(30, None), Duration::from_secs(30));
        assert_eq!(
            backoff(0, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        assert_eq!(
            backoff(0, Some(Duration::from_secs(9999))),
            Duration::from_secs(300)
        );
        assert_eq!(parse_retry_after("12", 0), Some(Duration::from_secs(12)));
        assert_eq!(
            parse_retry_after("Wed, 01 Oct 2025 00:01:00 GMT", 1_759_276_800),
            Some(Duration::from_secs(60))
        );
        assert_eq!(parse_retry_after("soon", 0), None);
        assert_eq!(classify_status(429), Failure::Transient);
        assert_eq!(classify_status(503), Failure::Transient);
        assert_eq!(classify_status(408), Failure::Transient);
        assert_eq!(classify_status(404), Failure::Permanent);
        assert_eq!(classify_status(401), Failure::Permanent);
    }

    #[test]
    fn plan_redacts_tokens_from_urls_and_text() {
        let u = redact_url("https://civitai.com/api/download/models/1?type=Model&token=SECRET123");
        assert!(
            !u.contains("SECRET123") && u.contains("type=Model") && u.contains("token=***"),
            "{u}"
        );
        let u = redact_url("https://cdn/x?X-Amz-Signature=abc&X-Amz-Expires=60");
        assert!(!u.contains("abc") && u.contains("X-Amz-Expires=60"), "{u}");
        let u = redact_url("https://user:pw@host/x");
        assert!(!u.contains("pw@"), "{u}");
        let t = redact_text("error sending request for url (https://h/x?a=1&token=SECRET&b=2): Authorization: Bearer hf_abc");
        assert!(!t.contains("SECRET") && !t.contains("hf_abc"), "{t}");
        assert!(t.contains("&b=2"), "{t}");
    }

    #[test]
    fn plan_reads_expected_hashes_from_hf_civitai_and_github() {
        let hex = "a".repeat(64);
        assert_eq!(sha256_from_etag(&format!("\"{hex}\"")), Some(hex.clone()));
        assert_eq!(
            sha256_from_etag("\"5d41402abc4b2a76b9719d911017c592\""),
            None,
            "git sha1/md5 etags"
        );
        assert_eq!(
            normalize_sha256(&format!("sha256:{}", hex.to_uppercase())),
            Some(hex.clone())
        );
        assert_eq!(normalize_sha256(&"A".repeat(64)), Some(hex));
        assert_eq!(normalize_sha256("xyz"), None);
    }

    #[test]
    fn plan_model_page_and_credential_scope() {
        assert_eq!(
            model_page("https://huggingface.co/black-forest-labs/FLUX.1-schnell/resolve/main/flux1-schnell.safetensors?download=true"),
            "https://huggingface.co/black-forest-labs/FLUX.1-schnell"
        );
        let hf = url::Url::parse("https://huggingface.co/a/b").unwrap();
        let cdn = url::Url::parse("https://cdn-lfs.hf.co/a").unwrap();
        let plain = url::Url::parse("http://huggingface.co/a").unwrap();
        assert!(credential_applies("huggingface.co", true, &hf));
        assert!(!credential_applies("huggingface.co", true, &cdn));
        assert!(!credential_applies("huggingface.co", true, &plain));
        let local = url::Url::parse("http://127.0.0.1:8080/x").unwrap();
        assert!(credential_applies("127.0.0.1:8080", false, &local));
        assert!(!credential_applies("127.0.0.1:8081", false, &local));
    }

    #[test]
    fn plan_meter_reports_at_most_every_interval_and_always_the_last() {
        let mut m = Meter::new(Duration::from_millis(100));
        let ms = Duration::from_millis;
        assert!(m.observe(ms(0), 0, Some(1000), false).is_some(), "first");
        assert!(m.observe(ms(50), 100, Some(1000), false).is_none());
        let r = m.observe(ms(1000), 500, Some(1000), false).unwrap();
        assert_eq!(r.bytes_per_sec, 500);
        assert_eq!(r.eta, Some(Duration::from_secs(1)));
        assert!(
            m.observe(ms(1010), 1000, Some(1000), true).is_some(),
            "last"
        );
        assert_eq!(human_bytes(20_000_000), "20.0 MB");
        assert_eq!(human_bytes(512), "512 B");
    }
}
