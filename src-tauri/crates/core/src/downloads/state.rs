//! The small JSON file beside a part (`<dest>.part.json`): where the download came from, the validators a resume is
//! checked against, the size, each segment's progress and the hash's midstate. Written atomically (temp file,
//! fsync, rename) after the part's bytes it describes are on disk, so after a crash it never claims more than the
//! part holds.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::hash::Midstate;
use super::plan::{Segment, Validators};

const FORMAT: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartState {
    pub format: u32,
    /// The URL asked for, with secrets redacted (a resume of another URL starts over).
    pub url: String,
    pub validators: Validators,
    pub total: Option<u64>,
    /// Whether the server answered a range request with 206.
    pub ranges: bool,
    pub expected_sha256: Option<String>,
    pub segments: Vec<Segment>,
    /// The SHA-256 of the part's first `hash.pos` bytes, so far.
    pub hash: Midstate,
}

impl PartState {
    pub fn new(
        url: String,
        validators: Validators,
        total: Option<u64>,
        ranges: bool,
        segments: Vec<Segment>,
    ) -> Self {
        PartState {
            format: FORMAT,
            url,
            validators,
            total,
            ranges,
            expected_sha256: None,
            segments,
            hash: Midstate::default(),
        }
    }
}

fn with_suffix(dest: &Path, suffix: &str) -> PathBuf {
    let mut name = dest.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// `<dest>.part`: the bytes so far.
pub fn part_path(dest: &Path) -> PathBuf {
    with_suffix(dest, ".part")
}

/// `<dest>.part.json`: the state of the part.
pub fn state_path(dest: &Path) -> PathBuf {
    with_suffix(dest, ".part.json")
}

/// `<dest>.part.lock`: held (flock) by the process downloading `dest`.
pub fn lock_path(dest: &Path) -> PathBuf {
    with_suffix(dest, ".part.lock")
}

/// The saved state, or `None` when there is none or it cannot be read (the download then starts over).
pub fn load(path: &Path) -> Option<PartState> {
    let text = std::fs::read(path).ok()?;
    serde_json::from_slice::<PartState>(&text)
        .ok()
        .filter(|s| s.format == FORMAT)
}

/// Replaces the state file atomically and durably.
pub fn save(path: &Path, state: &PartState) -> std::io::Result<()> {
    let tmp = with_suffix(path, ".tmp");
    let json = serde_json::to_vec(state).map_err(std::io::Error::other)?;
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&json)?;
        f.sync_data()?;
    }
    std::fs::rename(&tmp, path)
}

/// Removes the part, its state and a leftover temp state; missing files are fine.
pub fn discard(dest: &Path) {
    for p in [
        part_path(dest),
        state_path(dest),
        with_suffix(&state_path(dest), ".tmp"),
    ] {
        let _ = std::fs::remove_file(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_ignores_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("model.safetensors");
        assert_eq!(part_path(&dest), dir.path().join("model.safetensors.part"));
        let p = state_path(&dest);
        assert_eq!(load(&p), None);
        let s = PartState::new(
            "http://h/x".into(),
            Validators {
                etag: Some("\"e\"".into()),
                last_modified: None,
            },
            Some(10),
            true,
            vec![Segment {
                start: 0,
                end: Some(10),
                done: 4,
            }],
        );
        save(&p, &s).unwrap();
        assert_eq!(load(&p), Some(s));
        std::fs::write(&p, b"{not json").unwrap();
        assert_eq!(load(&p), None);
        discard(&dest);
        assert!(!p.exists());
    }
}
