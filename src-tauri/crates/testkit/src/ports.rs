//! Ports for servers a test starts, stops and starts again on the same number.
//!
//! A port taken with `bind(":0")` and released comes from the kernel's ephemeral range, so while the test's server is
//! stopped any other socket of the machine (a parallel test's server or outgoing connection) may be given it, and
//! the restart fails with "address in use". These ports come from below that range, where the kernel never hands
//! out ports by itself; a per-process counter from a random start keeps two tests of one run apart.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, Ordering};

/// The lowest port the kernel gives out by itself (Linux's `ip_local_port_range`; 32768 when unknown).
fn ephemeral_start() -> u32 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768)
}

/// A loopback port that is free now and that no other socket will be given while the caller's server is down.
pub fn stable_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let top = ephemeral_start().clamp(12_000, 65_535);
    let low = 10_000;
    let span = top - low;
    // Start somewhere different in each process so parallel test binaries rarely meet.
    let _ = NEXT.compare_exchange(
        0,
        1 + (std::process::id().wrapping_mul(7919) % span),
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    for _ in 0..span {
        let port = low + NEXT.fetch_add(1, Ordering::Relaxed) % span;
        if TcpListener::bind(("127.0.0.1", port as u16)).is_ok() {
            return port as u16;
        }
    }
    panic!("no free loopback port below {top}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_ports_are_free_distinct_and_outside_the_ephemeral_range() {
        let a = stable_port();
        let b = stable_port();
        assert_ne!(a, b);
        assert!(u32::from(a.max(b)) < ephemeral_start().max(12_000));
        let _held = TcpListener::bind(("127.0.0.1", a)).unwrap();
    }
}
