//! The `store` fuzz target's entry: the parsers a first-boot restore runs over a store
//! partition anyone could have written — segment header, record header and payload, manifest.
//! The checksums are fixed up first so the bytes reach the parsers behind them. Any bytes give
//! a value or an error, never a panic; what decodes re-encodes to the same header.

use sha2::{Digest, Sha256};

use super::format::{self, RecordHeader, RecordKind, SegmentHeader, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN};
use super::manifest::{hex, Manifest};
use super::record::Scratch;

/// Bytes → segment header, record header (+ the payload after it) and manifest.
pub fn store(data: &[u8]) {
    let mut seg = [0u8; SEGMENT_HEADER_LEN];
    let n = data.len().min(SEGMENT_HEADER_LEN);
    seg[..n].copy_from_slice(&data[..n]);
    let _ = SegmentHeader::decode(&seg);
    let crc = crc32fast::hash(&seg[..28]);
    seg[28..32].copy_from_slice(&crc.to_le_bytes());
    if let Ok(h) = SegmentHeader::decode(&seg) {
        assert_eq!(SegmentHeader::decode(&h.encode()), Ok(h));
    }

    let mut rec = [0u8; RECORD_HEADER_LEN];
    let n = data.len().min(RECORD_HEADER_LEN);
    rec[..n].copy_from_slice(&data[..n]);
    let crc = crc32fast::hash(&rec[..36]);
    rec[36..40].copy_from_slice(&crc.to_le_bytes());
    // A small chunk bound keeps a hostile raw length from asking for a large buffer.
    if let Ok(h) = RecordHeader::decode(&rec, 1 << 16) {
        assert_eq!(RecordHeader::decode(&h.encode(), 1 << 16), Ok(h));
        if h.kind == RecordKind::Zstd {
            let payload = &data[n..];
            if let Ok(mut s) = Scratch::new() {
                let _ = s.unpack_from(&payload[..payload.len().min(h.stored_len as usize)], &h);
            }
        }
    }

    let line = format!("{}  {}\n", hex(&Sha256::digest(data)), format::MANIFEST);
    if let Ok(m) = Manifest::decode(data, &line) {
        let (json, line) = m.encode().expect("a decoded manifest encodes");
        assert!(Manifest::decode(&json, &line).is_ok(), "a re-encoded manifest decodes");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::fuzzing::tests::XorShift;

    /// The fuzz target's body over random and mutated inputs (stable Rust, no libFuzzer).
    #[test]
    fn the_store_target_never_panics() {
        let mut rng = XorShift(0x5eed_5704);
        let h = RecordHeader { kind: RecordKind::Zstd, entry: 3, raw_crc: crc32fast::hash(b"hello"), offset: 0, raw_len: 5, stored_len: 0, running_crc: 0 };
        let frame = zstd::bulk::compress(b"hello", 1).unwrap();
        let mut record = RecordHeader { stored_len: frame.len() as u32, ..h }.encode().to_vec();
        record.extend_from_slice(&frame);
        let seeds: Vec<Vec<u8>> = vec![
            SegmentHeader { number: 1, capture_id: [7; 12] }.encode().to_vec(),
            record,
            br#"{"version":1,"entries":[],"segments":[],"users":[]}"#.to_vec(),
            br#"{"version":1,"entries":[{"id":0,"path":"a","kind":"file"}]}"#.to_vec(),
        ];
        for seed in &seeds {
            store(seed);
            for _ in 0..300 {
                let mut m = seed.clone();
                for _ in 0..1 + rng.next() % 4 {
                    let i = (rng.next() as usize) % m.len().max(1);
                    m[i] = rng.next() as u8;
                }
                store(&m);
            }
        }
        for _ in 0..500 {
            let len = (rng.next() % 200) as usize;
            let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            store(&data);
        }
    }
}
