//! How the file host answers one request: the pure decision (range, validators, gate, redirect) and the streamed
//! body (throughput cap, dropped connections, a corrupted byte), counted as it goes.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::content::Content;
use super::Shared;

/// Largest chunk the body writes at once.
const MAX_CHUNK: u64 = 256 * 1024;

/// A `Range` header, as far as the host honours it: one range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeSpec {
    /// `bytes=a-b` (b inclusive) or `bytes=a-` (b = None).
    From { start: u64, end: Option<u64> },
    /// `bytes=-n`: the last n bytes.
    Suffix(u64),
}

/// Parses `bytes=a-b`, `bytes=a-`, `bytes=-n`; anything else (several ranges, other units) is ignored, as servers may.
pub fn parse_range(value: &str) -> Option<RangeSpec> {
    let spec = value.trim().strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        return b.parse().ok().map(RangeSpec::Suffix);
    }
    let start = a.parse().ok()?;
    let end = if b.is_empty() {
        None
    } else {
        Some(b.parse().ok()?)
    };
    if end.is_some_and(|e| e < start) {
        return None;
    }
    Some(RangeSpec::From { start, end })
}

/// The byte span `[start, end)` a range selects in a file of `size`, or `None` when unsatisfiable (416).
pub fn resolve_range(spec: RangeSpec, size: u64) -> Option<(u64, u64)> {
    match spec {
        RangeSpec::From { start, end } => {
            if start >= size {
                return None;
            }
            let end = end.map_or(size, |e| (e + 1).min(size));
            Some((start, end))
        }
        RangeSpec::Suffix(0) => None,
        RangeSpec::Suffix(n) => Some((size.saturating_sub(n), size)),
    }
}

/// Whether an `If-Range` value still matches the file: a strong ETag compared exactly, or the Last-Modified date.
pub fn if_range_matches(if_range: &str, etag: &str, last_modified: &str) -> bool {
    let v = if_range.trim();
    if v.starts_with('"') || v.starts_with("W/") {
        // Weak validators never match If-Range (RFC 9110 13.1.5).
        !v.starts_with("W/") && v == etag
    } else {
        v == last_modified
    }
}

/// The body of an answer.
pub enum HostBody {
    Fixed(Option<Bytes>),
    Stream(FileStream),
}

impl Body for HostBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.get_mut() {
            HostBody::Fixed(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            HostBody::Stream(s) => s.poll_next(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            HostBody::Fixed(b) => b.is_none(),
            HostBody::Stream(s) => s.pos >= s.end && s.drop_after.is_none_or(|d| s.sent < d),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            HostBody::Fixed(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            HostBody::Stream(s) => SizeHint::with_exact(s.end - s.pos),
        }
    }
}

/// `[pos, end)` of a file, streamed in chunks.
pub struct FileStream {
    pub content: Content,
    pub pos: u64,
    pub end: u64,
    /// Bytes per second on this connection.
    pub rate: Option<u64>,
    /// End the connection abruptly after this many body bytes.
    pub drop_after: Option<u64>,
    /// Serve the byte at this file offset wrong.
    pub corrupt_at: Option<u64>,
    pub shared: Arc<Shared>,
    /// Index of the request's record.
    pub record: Option<usize>,
    sent: u64,
    started: Option<Instant>,
    sleep: Option<Pin<Box<Sleep>>>,
    flush_wait: Option<Pin<Box<Sleep>>>,
    stall_after: Option<u64>,
}

impl FileStream {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        content: Content,
        start: u64,
        end: u64,
        rate: Option<u64>,
        drop_after: Option<u64>,
        corrupt_at: Option<u64>,
        shared: Arc<Shared>,
        record: Option<usize>,
    ) -> Self {
        FileStream {
            content,
            pos: start,
            end,
            rate: rate.filter(|r| *r > 0),
            drop_after,
            corrupt_at,
            shared,
            record,
            sent: 0,
            started: None,
            sleep: None,
            flush_wait: None,
            stall_after: None,
        }
    }

    /// Sends nothing more after `bytes` (the connection stays open).
    pub fn stalling_after(mut self, bytes: Option<u64>) -> Self {
        self.stall_after = bytes;
        self
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if self.drop_after.is_some_and(|d| self.sent >= d) && self.pos < self.end {
            // Let the connection flush what was sent before ending it, so the client gets exactly `d` bytes.
            let flushed = self
                .flush_wait
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(Duration::from_millis(30))));
            if flushed.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.drop_after = None;
            self.end = self.pos;
            return Poll::Ready(Some(Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "file host: dropping the connection as configured",
            ))));
        }
        if self.pos >= self.end {
            return Poll::Ready(None);
        }
        if self.stall_after.is_some_and(|s| self.sent >= s) {
            // Never woken: the connection just goes quiet until the client gives up.
            return Poll::Pending;
        }
        let started = *self.started.get_or_insert_with(Instant::now);
        let mut chunk = (self.end - self.pos).min(MAX_CHUNK);
        if let Some(d) = self.drop_after {
            chunk = chunk.min(d - self.sent);
        }
        if let Some(s) = self.stall_after {
            chunk = chunk.min(s - self.sent);
        }
        if let Some(rate) = self.rate {
            // Small chunks keep the pace smooth: about 100 per second, at least 4 KiB.
            chunk = chunk.min((rate / 100).max(4096));
            let due = started + Duration::from_secs_f64(self.sent as f64 / rate as f64);
            if Instant::now() < due {
                let sleep = self
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
                sleep.as_mut().reset(due);
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
            }
        }
        let mut buf = vec![0u8; chunk as usize];
        if let Err(e) = self.content.read_at(self.pos, &mut buf) {
            return Poll::Ready(Some(Err(e)));
        }
        if let Some(at) = self.corrupt_at {
            if (self.pos..self.pos + chunk).contains(&at) {
                buf[(at - self.pos) as usize] ^= 0x5A;
            }
        }
        self.pos += chunk;
        self.sent += chunk;
        self.shared.count_sent(self.record, chunk);
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(buf)))))
    }
}

use std::future::Future;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_parses_single_byte_ranges_and_ignores_others() {
        assert_eq!(
            parse_range("bytes=0-99"),
            Some(RangeSpec::From {
                start: 0,
                end: Some(99)
            })
        );
        assert_eq!(
            parse_range("bytes=100-"),
            Some(RangeSpec::From {
                start: 100,
                end: None
            })
        );
        assert_eq!(parse_range("bytes=-5"), Some(RangeSpec::Suffix(5)));
        assert_eq!(parse_range("bytes=0-1,5-6"), None);
        assert_eq!(parse_range("items=0-1"), None);
        assert_eq!(parse_range("bytes=9-3"), None);
    }

    #[test]
    fn serve_resolves_ranges_against_the_size() {
        let r = |s| resolve_range(parse_range(s).unwrap(), 100);
        assert_eq!(r("bytes=0-9"), Some((0, 10)));
        assert_eq!(r("bytes=90-200"), Some((90, 100)));
        assert_eq!(r("bytes=100-"), None);
        assert_eq!(r("bytes=-10"), Some((90, 100)));
        assert_eq!(r("bytes=-1000"), Some((0, 100)));
    }

    #[test]
    fn serve_if_range_needs_the_same_strong_etag_or_date() {
        let (etag, date) = ("\"abc\"", "Wed, 01 Oct 2025 00:00:00 GMT");
        assert!(if_range_matches("\"abc\"", etag, date));
        assert!(!if_range_matches("\"abd\"", etag, date));
        assert!(!if_range_matches("W/\"abc\"", etag, date));
        assert!(if_range_matches(date, etag, date));
        assert!(!if_range_matches(
            "Thu, 02 Oct 2025 00:00:00 GMT",
            etag,
            date
        ));
    }
}
