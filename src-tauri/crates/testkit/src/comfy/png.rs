//! Small valid PNG files of one solid colour (the fake's outputs and previews), encoded by hand: scanlines filtered
//! so that nearly every byte is zero, then a zlib stream of one fixed-Huffman deflate block of run-length matches.
//! A 4096² image costs a few hundred kilobytes and no measurable time.

const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];
/// Larger sides are clamped: ComfyUI's own limit (`MAX_RESOLUTION`) is 16384.
const MAX_SIDE: u32 = 16384;

/// An 8-bit RGB PNG of `width` x `height` pixels, all `rgb` (sides clamped to 1..=16384).
pub(crate) fn solid_rgb(width: u32, height: u32, rgb: [u8; 3]) -> Vec<u8> {
    let width = width.clamp(1, MAX_SIDE);
    let height = height.clamp(1, MAX_SIDE);
    let mut out = SIGNATURE.to_vec();
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    // Bit depth 8, colour type 2 (RGB), deflate, adaptive filtering, no interlace.
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &zlib_solid(width, height, rgb));
    chunk(&mut out, b"IEND", &[]);
    out
}

/// Width and height from a PNG's `IHDR`, or `None` when `bytes` is not a PNG.
pub(crate) fn dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.len() < 24 || bytes[..8] != SIGNATURE || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let be =
        |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    Some((be(16), be(20)))
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// The zlib stream of the filtered scanlines: row 0 uses filter Sub (`1, r, g, b, 0, 0, …`), every later row filter
/// Up (`2, 0, 0, …`).
fn zlib_solid(width: u32, height: u32, rgb: [u8; 3]) -> Vec<u8> {
    let row_bytes = 3 * u64::from(width);
    let mut deflate = Deflate::default();
    let mut adler = Adler32::default();
    for row in 0..height {
        if row == 0 {
            for byte in [1, rgb[0], rgb[1], rgb[2]] {
                deflate.literal(byte);
                adler.byte(byte);
            }
            deflate.zeros(row_bytes - 3);
            adler.zeros(row_bytes - 3);
        } else {
            deflate.literal(2);
            adler.byte(2);
            deflate.zeros(row_bytes);
            adler.zeros(row_bytes);
        }
    }
    // CMF 0x78 (deflate, 32 KiB window), FLG 0x01 (no dictionary; 0x7801 is a multiple of 31).
    let mut out = vec![0x78, 0x01];
    out.extend_from_slice(&deflate.finish());
    out.extend_from_slice(&adler.value().to_be_bytes());
    out
}

/// One final deflate block with the fixed Huffman codes (RFC 1951 3.2.6), written LSB first.
struct Deflate {
    out: Vec<u8>,
    bits: u64,
    count: u32,
}

impl Default for Deflate {
    fn default() -> Self {
        let mut deflate = Deflate {
            out: Vec::new(),
            bits: 0,
            count: 0,
        };
        // BFINAL = 1, BTYPE = 01 (fixed Huffman).
        deflate.bits(0b011, 3);
        deflate
    }
}

impl Deflate {
    fn bits(&mut self, value: u32, len: u32) {
        self.bits |= u64::from(value) << self.count;
        self.count += len;
        while self.count >= 8 {
            self.out.push(self.bits as u8);
            self.bits >>= 8;
            self.count -= 8;
        }
    }

    /// A Huffman code goes out most significant bit first.
    fn code(&mut self, code: u32, len: u32) {
        let reversed = code.reverse_bits() >> (32 - len);
        self.bits(reversed, len);
    }

    /// Literal/length symbol `symbol` (0..=287) with its fixed code.
    fn symbol(&mut self, symbol: u32) {
        match symbol {
            0..=143 => self.code(0x30 + symbol, 8),
            144..=255 => self.code(0x190 + symbol - 144, 9),
            256..=279 => self.code(symbol - 256, 7),
            _ => self.code(0xc0 + symbol - 280, 8),
        }
    }

    fn literal(&mut self, byte: u8) {
        self.symbol(u32::from(byte));
    }

    /// A copy of the previous byte, `len` times: lengths 3..=10 (symbols 257..=264) and 258 (symbol 285) need no
    /// extra bits; distance 1 is distance code 0 (five zero bits, no extra bits).
    fn repeat(&mut self, len: u32) {
        let symbol = if len == 258 { 285 } else { 254 + len };
        self.symbol(symbol);
        self.code(0, 5);
    }

    fn zeros(&mut self, count: u64) {
        if count == 0 {
            return;
        }
        self.literal(0);
        let mut left = count - 1;
        while left >= 258 {
            self.repeat(258);
            left -= 258;
        }
        while left >= 10 {
            self.repeat(10);
            left -= 10;
        }
        if left >= 3 {
            self.repeat(left as u32);
            left = 0;
        }
        for _ in 0..left {
            self.literal(0);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        self.symbol(256);
        if self.count > 0 {
            self.out.push(self.bits as u8);
        }
        self.out
    }
}

#[derive(Clone, Copy)]
struct Adler32 {
    a: u64,
    b: u64,
}

impl Default for Adler32 {
    fn default() -> Self {
        Adler32 { a: 1, b: 0 }
    }
}

impl Adler32 {
    const MOD: u64 = 65521;

    fn byte(&mut self, byte: u8) {
        self.a = (self.a + u64::from(byte)) % Self::MOD;
        self.b = (self.b + self.a) % Self::MOD;
    }

    /// `count` zero bytes leave `a` as it is and add `a` to `b` each time.
    fn zeros(&mut self, count: u64) {
        self.b = (self.b + (count % Self::MOD) * self.a) % Self::MOD;
    }

    fn value(self) -> u32 {
        ((self.b << 16) | self.a) as u32
    }
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xedb8_8320 & mask);
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_crc_and_adler_match_the_reference_values() {
        assert_eq!(crc32(b"IEND"), 0xae42_6082);
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        let mut adler = Adler32::default();
        for byte in b"Wikipedia" {
            adler.byte(*byte);
        }
        assert_eq!(adler.value(), 0x11e6_0398);
        let (mut slow, mut fast) = (Adler32::default(), Adler32::default());
        slow.byte(7);
        fast.byte(7);
        for _ in 0..100_000 {
            slow.byte(0);
        }
        fast.zeros(100_000);
        assert_eq!(slow.value(), fast.value());
    }

    #[test]
    fn png_solid_image_has_its_size_and_stays_small() {
        let png = solid_rgb(512, 512, [0, 0, 255]);
        assert_eq!(dimensions(&png), Some((512, 512)));
        assert!(png.ends_with(&[0xae, 0x42, 0x60, 0x82]));
        assert!(png.len() < 40_000, "{} bytes", png.len());
        assert_eq!(dimensions(b"not a png at all, not at all"), None);
    }
}
