//! LZNT1, the compression of NTFS-compressed files ([MS-XCA] section 2.5), decompression only.
//!
//! NTFS compresses a file in *compression units* (16 clusters: 64 KiB with 4 KiB clusters).
//! A compressed unit holds a sequence of chunks, each decompressing to at most 4 KiB of the
//! unit:
//!
//! - a 16-bit little-endian header: bits 0–11 = chunk data length − 1, bits 12–14 = signature
//!   (always `0b011`), bit 15 = compressed; a zero header ends the unit;
//! - the chunk data: stored bytes for an uncompressed chunk, or groups of one flag byte and
//!   eight tokens for a compressed chunk. A clear flag bit is a literal byte; a set bit is a
//!   16-bit back reference whose split between displacement and length depends on how far into
//!   the chunk the output is (12 length bits at its start, 4 at its end).
//!
//! A chunk that decompresses to less than 4 KiB is padded with zeros (what ntfs-3g and Windows
//! do), so every chunk starts on a 4 KiB boundary of the unit.
//!
//! The input is untrusted (it comes from the disk being migrated): nothing here panics, nothing
//! is written outside the output slice, and a malformed chunk is an error rather than garbage.

use std::fmt;

/// Bytes one chunk decompresses to, at most.
pub const CHUNK: usize = 4096;

/// Why a compression unit cannot be decompressed. `at` is the byte offset in the compressed
/// input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lznt1Error {
    /// A chunk header without the `0b011` signature.
    BadHeader { at: usize, header: u16 },
    /// A chunk (or a token in it) runs past the end of the input.
    Truncated { at: usize },
    /// A back reference reaches before the start of its chunk.
    BadDisplacement { at: usize },
    /// A chunk produces more than 4 KiB, or more than the unit holds.
    Overflow { at: usize },
}

impl fmt::Display for Lznt1Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lznt1Error::BadHeader { at, header } => {
                write!(f, "LZNT1 chunk header {header:#06x} at byte {at} has no valid signature")
            }
            Lznt1Error::Truncated { at } => write!(f, "LZNT1 chunk at byte {at} runs past the compressed data"),
            Lznt1Error::BadDisplacement { at } => {
                write!(f, "LZNT1 back reference at byte {at} points before the start of its chunk")
            }
            Lznt1Error::Overflow { at } => {
                write!(f, "LZNT1 data at byte {at} decompresses past the end of its chunk or unit")
            }
        }
    }
}

impl std::error::Error for Lznt1Error {}

/// Decompresses the chunks in `src` into `out`, which is one whole compression unit (or the
/// part of it the caller wants: decompression stops once `out` is full). Bytes no chunk
/// produced are zero. Returns how many bytes the chunks produced, not counting the zero padding
/// after the last one.
pub fn decompress_unit(src: &[u8], out: &mut [u8]) -> Result<usize, Lznt1Error> {
    let mut i = 0usize; // input position
    let mut o = 0usize; // output position: always a multiple of CHUNK
    let mut produced = 0usize;
    while o < out.len() && i + 2 <= src.len() {
        let header = u16::from_le_bytes([src[i], src[i + 1]]);
        if header == 0 {
            break;
        }
        if header & 0x7000 != 0x3000 {
            return Err(Lznt1Error::BadHeader { at: i, header });
        }
        let len = usize::from(header & 0x0FFF) + 1;
        let start = i + 2;
        let end = start + len;
        if end > src.len() {
            return Err(Lznt1Error::Truncated { at: i });
        }
        let chunk_end = (o + CHUNK).min(out.len());
        let dst = &mut out[o..chunk_end];
        let n = if header & 0x8000 == 0 {
            // Stored: the data is the output. A stored chunk is 4 KiB except maybe at the very
            // end of the data; the output slice may also be shorter than the chunk.
            if len > CHUNK {
                return Err(Lznt1Error::Overflow { at: i });
            }
            let n = len.min(dst.len());
            dst[..n].copy_from_slice(&src[start..start + n]);
            n
        } else {
            decompress_chunk(&src[start..end], dst, start)?
        };
        dst[n..].fill(0);
        produced = o + n;
        o = chunk_end;
        i = end;
    }
    out[o..].fill(0);
    Ok(produced)
}

/// One compressed chunk's data (after its header) into `out` (at most 4 KiB). `base` is the
/// chunk's offset in the unit's input, for error messages. Returns the bytes produced.
fn decompress_chunk(src: &[u8], out: &mut [u8], base: usize) -> Result<usize, Lznt1Error> {
    let mut i = 0usize;
    let mut o = 0usize;
    while i < src.len() {
        let flags = src[i];
        i += 1;
        for bit in 0..8 {
            if i >= src.len() {
                break;
            }
            if flags & (1 << bit) == 0 {
                // A literal byte.
                if o >= out.len() {
                    return Err(Lznt1Error::Overflow { at: base + i });
                }
                out[o] = src[i];
                o += 1;
                i += 1;
                continue;
            }
            if i + 2 > src.len() {
                return Err(Lznt1Error::Truncated { at: base + i });
            }
            let token = usize::from(u16::from_le_bytes([src[i], src[i + 1]]));
            // The further into the chunk, the more bits the displacement takes: 4 bits for the
            // first 16 bytes, one more each time the position doubles, up to 12.
            let mut shift = 12u32;
            let mut p = o.saturating_sub(1);
            while p >= 0x10 && shift > 4 {
                p >>= 1;
                shift -= 1;
            }
            let length = (token & ((1usize << shift) - 1)) + 3;
            let displacement = (token >> shift) + 1;
            if displacement > o {
                return Err(Lznt1Error::BadDisplacement { at: base + i });
            }
            if o + length > out.len() {
                return Err(Lznt1Error::Overflow { at: base + i });
            }
            // The source may overlap the destination (a run of repeated bytes): copy forwards,
            // byte by byte where it does.
            let from = o - displacement;
            if displacement >= length {
                out.copy_within(from..from + length, o);
            } else {
                for k in 0..length {
                    out[o + k] = out[from + k];
                }
            }
            o += length;
            i += 2;
        }
    }
    Ok(o)
}

/// A simple (greedy, small-window) LZNT1 compressor, to build test input that real LZNT1
/// decoders accept. Chunks that do not shrink are stored.
#[cfg(test)]
pub(crate) fn compress_for_tests(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in data.chunks(CHUNK) {
        let mut body = Vec::new();
        let mut o = 0usize;
        while o < chunk.len() {
            let flag_at = body.len();
            body.push(0u8);
            for bit in 0..8 {
                if o >= chunk.len() {
                    break;
                }
                let mut shift = 12u32;
                let mut p = o.saturating_sub(1);
                while p >= 0x10 && shift > 4 {
                    p >>= 1;
                    shift -= 1;
                }
                let max_len = ((1usize << shift) - 1 + 3).min(chunk.len() - o);
                let max_disp = (1usize << (16 - shift)).min(o).min(300);
                let (mut best_len, mut best_disp) = (0, 0);
                for d in 1..=max_disp {
                    let mut l = 0;
                    while l < max_len && chunk[o + l] == chunk[o + l - d] {
                        l += 1;
                    }
                    if l > best_len {
                        (best_len, best_disp) = (l, d);
                    }
                }
                if best_len >= 3 {
                    let token = ((best_disp - 1) << shift) | (best_len - 3);
                    body.extend_from_slice(&(token as u16).to_le_bytes());
                    body[flag_at] |= 1 << bit;
                    o += best_len;
                } else {
                    body.push(chunk[o]);
                    o += 1;
                }
            }
        }
        if body.len() < chunk.len() {
            out.extend_from_slice(&(0xB000u16 | (body.len() - 1) as u16).to_le_bytes());
            out.extend_from_slice(&body);
        } else {
            out.extend_from_slice(&(0x3000u16 | (chunk.len() - 1) as u16).to_le_bytes());
            out.extend_from_slice(chunk);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn unit(src: &[u8], len: usize) -> Result<Vec<u8>, Lznt1Error> {
        let mut out = vec![0xEEu8; len];
        decompress_unit(src, &mut out).map(|_| out)
    }

    #[test]
    fn literals_and_overlapping_back_reference() {
        // "abc" as literals, then a back reference of displacement 3, length 9: "abcabcabc".
        // At output position 3 the split is 4 displacement bits / 12 length bits.
        let token: u16 = (2 << 12) | (9 - 3);
        let mut body = vec![0b0000_1000u8, b'a', b'b', b'c'];
        body.extend_from_slice(&token.to_le_bytes());
        let mut src = (0xB000u16 | (body.len() as u16 - 1)).to_le_bytes().to_vec();
        src.extend_from_slice(&body);
        src.extend_from_slice(&[0, 0]);
        let out = unit(&src, 64).unwrap();
        assert_eq!(&out[..12], b"abcabcabcabc");
        assert!(out[12..].iter().all(|b| *b == 0));
        assert_eq!(decompress_unit(&src, &mut [0u8; 64]), Ok(12));
    }

    #[test]
    fn stored_chunk_then_short_compressed_chunk_is_padded() {
        let stored: Vec<u8> = (0..CHUNK).map(|i| (i * 7 % 251) as u8).collect();
        let mut src = 0x3FFFu16.to_le_bytes().to_vec();
        src.extend_from_slice(&stored);
        // Second chunk: literal "xy" only.
        src.extend_from_slice(&(0xB000u16 | 2).to_le_bytes());
        src.extend_from_slice(&[0, b'x', b'y']);
        let out = unit(&src, 4 * CHUNK).unwrap();
        assert_eq!(&out[..CHUNK], &stored[..]);
        assert_eq!(&out[CHUNK..CHUNK + 2], b"xy");
        assert!(out[CHUNK + 2..].iter().all(|b| *b == 0));
    }

    #[test]
    fn round_trips_the_test_compressor() {
        let mut data = Vec::new();
        for i in 0..20_000u32 {
            data.extend_from_slice(format!("line {} of the text ", i % 37).as_bytes());
        }
        data.truncate(65_536 - 1000);
        // An incompressible stretch, stored.
        let mut x = 0x1234_5678u32;
        for b in data.iter_mut().skip(30_000).take(5_000) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x as u8;
        }
        let packed = compress_for_tests(&data);
        assert!(packed.len() < data.len());
        let out = unit(&packed, 65_536).unwrap();
        assert_eq!(&out[..data.len()], &data[..]);
        assert!(out[data.len()..].iter().all(|b| *b == 0));
    }

    #[test]
    fn late_back_reference_uses_the_narrow_length_field() {
        // 4000 literal bytes then a reference: at position 4000 the split is 12 displacement
        // bits and 4 length bits.
        let data: Vec<u8> = (0..4000u32).map(|i| (i % 200) as u8).chain((0..18).map(|i| i as u8)).collect();
        let packed = compress_for_tests(&data);
        assert_eq!(&unit(&packed, CHUNK).unwrap()[..data.len()], &data[..]);
    }

    #[test]
    fn malformed_input_is_an_error() {
        // Bad signature.
        assert!(matches!(unit(&[0x05, 0x00, 1, 2, 3], 4096), Err(Lznt1Error::BadHeader { at: 0, .. })));
        // Chunk longer than the input.
        assert!(matches!(unit(&[0x10, 0xB0, 0, 1], 4096), Err(Lznt1Error::Truncated { at: 0 })));
        // Back reference at the start of a chunk.
        assert!(matches!(unit(&[0x02, 0xB0, 0x01, 0x00, 0x00], 4096), Err(Lznt1Error::BadDisplacement { .. })));
        // Truncated token.
        assert!(matches!(unit(&[0x02, 0xB0, 0x02, b'a', 0x00], 4096), Err(Lznt1Error::Truncated { .. })));
        // A reference reaching past the end of the unit (unit of 8 bytes).
        let token: u16 = 0x0FFF; // displacement 1, length 4098
        let mut src = vec![0x03, 0xB0, 0b10, b'a'];
        src.extend_from_slice(&token.to_le_bytes());
        assert!(matches!(unit(&src, 8), Err(Lznt1Error::Overflow { .. })));
        // ... and past the end of its 4 KiB chunk in a bigger unit.
        assert!(matches!(unit(&src, 3 * CHUNK), Err(Lznt1Error::Overflow { .. })));
    }

    #[test]
    fn stops_when_the_output_is_full_and_handles_empty_input() {
        assert_eq!(unit(&[], 16).unwrap(), vec![0u8; 16]);
        assert_eq!(unit(&[0, 0, 0xFF], 16).unwrap(), vec![0u8; 16]);
        // A stored chunk bigger than the output slice is cut to it.
        let mut src = 0x3FFFu16.to_le_bytes().to_vec();
        src.extend_from_slice(&[7u8; CHUNK]);
        src.extend_from_slice(&0x3FFFu16.to_le_bytes());
        src.extend_from_slice(&[8u8; CHUNK]);
        assert_eq!(unit(&src, 100).unwrap(), vec![7u8; 100]);
    }

    proptest! {
        #[test]
        fn hostile_input_never_panics(src in proptest::collection::vec(any::<u8>(), 0..9000), len in 0usize..20_000) {
            let mut out = vec![0xEEu8; len];
            if decompress_unit(&src, &mut out).is_ok() {
                prop_assert_eq!(out.len(), len);
            }
        }

        #[test]
        fn hostile_chunks_with_valid_headers_never_panic(
            bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..300), 0..20),
        ) {
            let mut src = Vec::new();
            for b in &bodies {
                src.extend_from_slice(&(0xB000u16 | (b.len() as u16 - 1)).to_le_bytes());
                src.extend_from_slice(b);
            }
            let mut out = vec![0u8; 65_536];
            let _ = decompress_unit(&src, &mut out);
        }

    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        #[test]
        fn round_trip(data in proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), any::<u8>()], 0..6_000)) {
            let packed = compress_for_tests(&data);
            let mut out = vec![0xEEu8; 16 * 1024];
            decompress_unit(&packed, &mut out).unwrap();
            prop_assert_eq!(&out[..data.len()], &data[..]);
        }
    }
}
