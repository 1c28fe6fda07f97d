//! Shared setup: a fresh app home per test and helpers to build inputs.

use comfyfleet_core::home::AppHome;
use comfyfleet_core::secrets::Secret;
use comfyfleet_core::servers::{AuthInput, AuthKind, ServerInput};
use comfyfleet_core::Fleet;

pub struct TestFleet {
    pub fleet: Fleet,
    pub dir: tempfile::TempDir,
}

pub fn fleet() -> TestFleet {
    let dir = tempfile::tempdir().unwrap();
    let fleet = Fleet::open(AppHome::at(dir.path()).unwrap()).unwrap();
    TestFleet { fleet, dir }
}

pub fn input(name: &str, url: &str) -> ServerInput {
    ServerInput {
        name: name.into(),
        url: url.into(),
        ..Default::default()
    }
}

pub fn with_auth(
    mut i: ServerInput,
    kind: AuthKind,
    user: Option<&str>,
    header: Option<&str>,
    secret: Option<&str>,
) -> ServerInput {
    i.auth = AuthInput {
        kind,
        user: user.map(Into::into),
        header: header.map(Into::into),
        secret: secret.map(Secret::new),
    };
    i
}

/// Every byte of every file under `dir` (database, WAL, logs, exports), for leak checks.
pub fn all_file_bytes(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(b) = std::fs::read(&p) {
                out.push((p, b));
            }
        }
    }
    out
}

pub fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}
