//! SHA-256 that can stop and go on: its midstate (eight words and a block-aligned length) is saved in the part's
//! state file, so a resumed download hashes only what it has not hashed yet. Uses `sha2`'s compression function,
//! which picks the CPU's SHA instructions (SHA-NI, ARMv8 SHA2) at run time when present.

use serde::{Deserialize, Serialize};
use sha2::digest::generic_array::{typenum::U64, GenericArray};

const H0: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// Where a hash stopped: the state after the first `pos` bytes (a multiple of 64).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Midstate {
    pub pos: u64,
    pub state: [u32; 8],
}

impl Default for Midstate {
    fn default() -> Self {
        Midstate { pos: 0, state: H0 }
    }
}

/// A running SHA-256.
#[derive(Clone)]
pub struct Sha256Stream {
    state: [u32; 8],
    /// Bytes compressed so far (a multiple of 64).
    compressed: u64,
    buf: [u8; 64],
    buffered: usize,
}

impl Default for Sha256Stream {
    fn default() -> Self {
        Self::resume(Midstate::default())
    }
}

fn compress(state: &mut [u32; 8], blocks: &[u8]) {
    debug_assert_eq!(blocks.len() % 64, 0);
    // SAFETY: `GenericArray<u8, U64>` has the layout of `[u8; 64]` (size 64, alignment 1), and `blocks` holds
    // exactly `blocks.len() / 64` of them; sha2 does the same cast internally.
    let blocks: &[GenericArray<u8, U64>] =
        unsafe { std::slice::from_raw_parts(blocks.as_ptr().cast(), blocks.len() / 64) };
    sha2::compress256(state, blocks);
}

impl Sha256Stream {
    pub fn new() -> Self {
        Self::default()
    }

    /// Goes on from a saved midstate.
    pub fn resume(mid: Midstate) -> Self {
        Sha256Stream {
            state: mid.state,
            compressed: mid.pos - mid.pos % 64,
            buf: [0; 64],
            buffered: 0,
        }
    }

    /// How many bytes have been fed.
    pub fn position(&self) -> u64 {
        self.compressed + self.buffered as u64
    }

    /// The state to save: covers the first `pos` bytes (block-aligned; the few buffered bytes after it are not in
    /// it and are hashed again on resume).
    pub fn midstate(&self) -> Midstate {
        Midstate {
            pos: self.compressed,
            state: self.state,
        }
    }

    pub fn update(&mut self, mut data: &[u8]) {
        if self.buffered > 0 {
            let take = (64 - self.buffered).min(data.len());
            self.buf[self.buffered..self.buffered + take].copy_from_slice(&data[..take]);
            self.buffered += take;
            data = &data[take..];
            if self.buffered < 64 {
                return;
            }
            let block = self.buf;
            compress(&mut self.state, &block);
            self.compressed += 64;
            self.buffered = 0;
        }
        let whole = data.len() - data.len() % 64;
        if whole > 0 {
            compress(&mut self.state, &data[..whole]);
            self.compressed += whole as u64;
        }
        let rest = &data[whole..];
        self.buf[..rest.len()].copy_from_slice(rest);
        self.buffered = rest.len();
    }

    /// The digest, as 64 lowercase hex digits.
    pub fn finish_hex(self) -> String {
        hex(&self.finish())
    }

    pub fn finish(mut self) -> [u8; 32] {
        let bit_len = self.position().wrapping_mul(8);
        let mut tail = [0u8; 128];
        tail[..self.buffered].copy_from_slice(&self.buf[..self.buffered]);
        tail[self.buffered] = 0x80;
        let len = if self.buffered < 56 { 64 } else { 128 };
        tail[len - 8..len].copy_from_slice(&bit_len.to_be_bytes());
        compress(&mut self.state, &tail[..len]);
        let mut out = [0u8; 32];
        for (chunk, word) in out.chunks_exact_mut(4).zip(self.state) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        out
    }
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Hashes a whole file (used only when a file already on disk has to be checked).
pub fn sha256_file(path: &std::path::Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256Stream::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(h.finish_hex());
        }
        h.update(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn reference(data: &[u8]) -> String {
        hex(&Sha256::digest(data))
    }

    #[test]
    fn hash_matches_sha2_for_every_tail_length() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for n in 0..data.len() {
            let mut h = Sha256Stream::new();
            h.update(&data[..n]);
            assert_eq!(h.finish_hex(), reference(&data[..n]), "length {n}");
        }
        assert_eq!(
            Sha256Stream::new().finish_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn hash_resumes_from_a_saved_midstate_in_odd_pieces() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i ^ (i >> 3)) as u8).collect();
        let mut h = Sha256Stream::new();
        for piece in data[..5_001].chunks(37) {
            h.update(piece);
        }
        let mid = h.midstate();
        assert_eq!(mid.pos % 64, 0);
        assert!(mid.pos <= 5_001 && mid.pos > 5_001 - 64);
        let json = serde_json::to_string(&mid).unwrap();
        let mut resumed = Sha256Stream::resume(serde_json::from_str(&json).unwrap());
        resumed.update(&data[mid.pos as usize..]);
        assert_eq!(resumed.finish_hex(), reference(&data));
    }
}
