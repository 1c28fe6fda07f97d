//! What a hosted file holds: bytes in memory, a file on disk, or deterministic generated content of any size that is
//! computed at each offset (never held in memory), and its SHA-256.

use std::path::PathBuf;
use std::sync::Arc;

use sha2::{Digest, Sha256};

/// The bytes of a hosted file.
#[derive(Clone, Debug)]
pub enum Content {
    /// Held in memory.
    Bytes(Arc<Vec<u8>>),
    /// Read from this file at each request (its size is taken when the file is added).
    Path { path: PathBuf, size: u64 },
    /// `size` pseudo-random bytes from `seed`, computed at each offset: a 2 GiB file costs no memory.
    Generated { size: u64, seed: u64 },
}

impl Content {
    pub fn len(&self) -> u64 {
        match self {
            Content::Bytes(b) => b.len() as u64,
            Content::Path { size, .. } => *size,
            Content::Generated { size, .. } => *size,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The same file after `version` changes (generated content changes its seed; other content gets its first
    /// byte flipped per version), so a changed remote file has other bytes.
    pub(crate) fn at_version(&self, version: u64) -> Content {
        match (self, version) {
            (_, 0) => self.clone(),
            (Content::Generated { size, seed }, v) => Content::Generated {
                size: *size,
                seed: seed.wrapping_add(v.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            },
            (Content::Bytes(b), v) => {
                let mut b = b.as_ref().clone();
                if let Some(first) = b.first_mut() {
                    *first ^= (v as u8).max(1);
                }
                Content::Bytes(Arc::new(b))
            }
            // A file on disk is what it is; a version bump still changes the validators.
            (Content::Path { .. }, _) => self.clone(),
        }
    }

    /// Fills `buf` with the bytes at `offset` (the caller keeps `offset + buf.len()` within the size).
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        match self {
            Content::Bytes(b) => {
                let start = offset as usize;
                buf.copy_from_slice(&b[start..start + buf.len()]);
                Ok(())
            }
            Content::Path { path, .. } => {
                use std::os::unix::fs::FileExt;
                std::fs::File::open(path)?.read_exact_at(buf, offset)
            }
            Content::Generated { seed, .. } => {
                generate(*seed, offset, buf);
                Ok(())
            }
        }
    }

    /// The SHA-256 of the whole content, as 64 lowercase hex digits (reads or generates it all once).
    pub fn sha256(&self) -> String {
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut offset = 0;
        while offset < self.len() {
            let n = (self.len() - offset).min(buf.len() as u64) as usize;
            self.read_at(offset, &mut buf[..n])
                .expect("hosted file readable");
            hasher.update(&buf[..n]);
            offset += n as u64;
        }
        hex(&hasher.finalize())
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Generated content: the 8 bytes at `8k` are `splitmix64(seed + k)`, little-endian.
pub fn generate(seed: u64, offset: u64, buf: &mut [u8]) {
    let mut pos = 0usize;
    let mut word = offset / 8;
    let skip = (offset % 8) as usize;
    if skip != 0 {
        let bytes = splitmix64(seed.wrapping_add(word)).to_le_bytes();
        let n = (8 - skip).min(buf.len());
        buf[..n].copy_from_slice(&bytes[skip..skip + n]);
        pos = n;
        word += 1;
    }
    let mut chunks = buf[pos..].chunks_exact_mut(8);
    for chunk in &mut chunks {
        chunk.copy_from_slice(&splitmix64(seed.wrapping_add(word)).to_le_bytes());
        word += 1;
    }
    let tail = chunks.into_remainder();
    if !tail.is_empty() {
        let bytes = splitmix64(seed.wrapping_add(word)).to_le_bytes();
        let n = tail.len();
        tail.copy_from_slice(&bytes[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_generated_bytes_are_the_same_at_any_offset() {
        let mut whole = vec![0u8; 1000];
        generate(7, 0, &mut whole);
        for (offset, len) in [(0usize, 3usize), (3, 17), (8, 8), (13, 500), (999, 1)] {
            let mut part = vec![0u8; len];
            generate(7, offset as u64, &mut part);
            assert_eq!(part, whole[offset..offset + len], "at {offset}+{len}");
        }
        let mut other = vec![0u8; 1000];
        generate(8, 0, &mut other);
        assert_ne!(other, whole);
    }

    #[test]
    fn content_versions_differ() {
        let c = Content::Generated { size: 64, seed: 1 };
        assert_ne!(c.sha256(), c.at_version(1).sha256());
        assert_eq!(c.sha256(), c.at_version(0).sha256());
    }
}
