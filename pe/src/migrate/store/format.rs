//! Byte layout of capture segments: the segment header and the record header, both fixed-size
//! and little-endian. The full description is in `docs/store-format.md` ("Capture store").

/// Directory of the FAT volume that holds everything of the store's first capture; a store
/// with several captures has `capture.2`, `capture.3`, … besides ([`CaptureName`]).
pub const CAPTURE_DIR: &str = "capture";
/// Most captures one store holds.
pub const MAX_CAPTURES: u32 = 99;
/// The manifest, its SHA-256 (in `sha256sum` format), and the resume state.
pub const MANIFEST: &str = "manifest.json";
pub const MANIFEST_SHA: &str = "manifest.sha256";
pub const PROGRESS: &str = "progress.json";
pub const PROGRESS_NEW: &str = "progress.new";

/// Format version of segments, records and manifest.
pub const VERSION: u16 = 1;
/// Raw bytes per data record: files are cut at multiples of this from their start.
pub const CHUNK: u32 = 1 << 20;
/// Most raw bytes one hole record may stand for.
pub const HOLE_MAX: u32 = 1 << 30;
/// Default and bounds of the segment size limit.
pub const DEFAULT_SEGMENT_LIMIT: u64 = 1 << 30;
pub const MIN_SEGMENT_LIMIT: u64 = 64 * 1024;
/// Below FAT32's 4 GiB − 1 file limit, leaving room for the record that crosses the limit.
pub const MAX_SEGMENT_LIMIT: u64 = 3 << 30;

pub const SEGMENT_MAGIC: &[u8; 8] = b"INPLSEGM";
pub const SEGMENT_HEADER_LEN: usize = 32;
pub const RECORD_MAGIC: &[u8; 4] = b"INPR";
pub const RECORD_HEADER_LEN: usize = 40;

/// One capture of a store, numbered from 1 in the order the job took its sources: the first
/// lives in `capture/` (as in a store that holds one), capture `n` in `capture.n/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CaptureName(u32);

impl CaptureName {
    /// The first capture, `capture/`.
    pub const FIRST: CaptureName = CaptureName(1);

    /// Capture `n` (from 1), if a store can hold that many.
    pub fn nth(n: u32) -> Option<CaptureName> {
        (1..=MAX_CAPTURES).contains(&n).then_some(CaptureName(n))
    }

    /// Its number, from 1.
    pub fn number(self) -> u32 {
        self.0
    }

    /// Its directory in the store volume: `capture`, `capture.2`, ….
    pub fn dir(self) -> String {
        match self.0 {
            1 => CAPTURE_DIR.to_string(),
            n => format!("{CAPTURE_DIR}.{n}"),
        }
    }

    /// The capture a directory name of the volume's root is (case-insensitive, as FAT
    /// matches names), if it is one.
    pub fn parse(dir: &str) -> Option<CaptureName> {
        let lower = dir.to_ascii_lowercase();
        if lower == CAPTURE_DIR {
            return Some(CaptureName::FIRST);
        }
        let n = lower.strip_prefix(CAPTURE_DIR)?.strip_prefix('.')?;
        // `capture.2`, not `capture.02` or `capture.1`: one name for each capture.
        if n.starts_with('0') || !n.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        n.parse().ok().filter(|n| *n >= 2).and_then(CaptureName::nth)
    }
}

impl std::fmt::Display for CaptureName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.dir())
    }
}

impl serde::Serialize for CaptureName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.dir())
    }
}

impl<'de> serde::Deserialize<'de> for CaptureName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        CaptureName::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("{s:?} is not a capture's name")))
    }
}

/// The name of segment `n` (numbered from 1): `seg-00001.ipa`.
pub fn segment_name(n: u32) -> String {
    format!("seg-{n:05}.ipa")
}

/// The first bytes of a segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Segment number, from 1, as in its name.
    pub number: u32,
    /// The first 12 bytes of the plan fingerprint: binds the segment to its capture.
    pub capture_id: [u8; 12],
}

impl SegmentHeader {
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut b = [0u8; SEGMENT_HEADER_LEN];
        b[0..8].copy_from_slice(SEGMENT_MAGIC);
        b[8..10].copy_from_slice(&VERSION.to_le_bytes());
        b[10..12].copy_from_slice(&(SEGMENT_HEADER_LEN as u16).to_le_bytes());
        b[12..16].copy_from_slice(&self.number.to_le_bytes());
        b[16..28].copy_from_slice(&self.capture_id);
        let crc = crc32fast::hash(&b[..28]);
        b[28..32].copy_from_slice(&crc.to_le_bytes());
        b
    }

    pub(crate) fn decode(b: &[u8; SEGMENT_HEADER_LEN]) -> Result<SegmentHeader, String> {
        if &b[0..8] != SEGMENT_MAGIC {
            return Err("no segment magic (INPLSEGM)".into());
        }
        let crc = u32::from_le_bytes(b[28..32].try_into().unwrap_or_default());
        if crc != crc32fast::hash(&b[..28]) {
            return Err("the segment header CRC-32 does not match".into());
        }
        let version = u16::from_le_bytes([b[8], b[9]]);
        if version != VERSION {
            return Err(format!("segment version {version} is not supported (this inplace reads 1)"));
        }
        if u16::from_le_bytes([b[10], b[11]]) as usize != SEGMENT_HEADER_LEN {
            return Err("the segment header length is not 32".into());
        }
        let mut capture_id = [0u8; 12];
        capture_id.copy_from_slice(&b[16..28]);
        Ok(SegmentHeader { number: u32::from_le_bytes(b[12..16].try_into().unwrap_or_default()), capture_id })
    }
}

/// What follows a record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// A zstd frame of `stored_len` bytes that decompresses to `raw_len` bytes.
    Zstd,
    /// Nothing: `raw_len` zero bytes (a sparse region); `stored_len` is 0.
    Hole,
}

/// The fixed header in front of every record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    pub kind: RecordKind,
    /// The entry's id (its position in the capture plan).
    pub entry: u32,
    /// CRC-32 of the raw bytes of this record (zeros for a hole).
    pub raw_crc: u32,
    /// Offset of this record's bytes within the entry's data.
    pub offset: u64,
    pub raw_len: u32,
    pub stored_len: u32,
    /// CRC-32 of the entry's data from byte 0 through the end of this record.
    pub running_crc: u32,
}

impl RecordHeader {
    pub fn encode(&self) -> [u8; RECORD_HEADER_LEN] {
        let mut b = [0u8; RECORD_HEADER_LEN];
        b[0..4].copy_from_slice(RECORD_MAGIC);
        b[4] = match self.kind {
            RecordKind::Zstd => 0,
            RecordKind::Hole => 1,
        };
        b[6..8].copy_from_slice(&(RECORD_HEADER_LEN as u16).to_le_bytes());
        b[8..12].copy_from_slice(&self.entry.to_le_bytes());
        b[12..16].copy_from_slice(&self.raw_crc.to_le_bytes());
        b[16..24].copy_from_slice(&self.offset.to_le_bytes());
        b[24..28].copy_from_slice(&self.raw_len.to_le_bytes());
        b[28..32].copy_from_slice(&self.stored_len.to_le_bytes());
        b[32..36].copy_from_slice(&self.running_crc.to_le_bytes());
        let crc = crc32fast::hash(&b[..36]);
        b[36..40].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and checks a header: magic, CRC, version fields, and the length rules
    /// (a data record holds at most `chunk` raw bytes, a hole at most [`HOLE_MAX`]).
    pub(crate) fn decode(b: &[u8; RECORD_HEADER_LEN], chunk: u32) -> Result<RecordHeader, String> {
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        if &b[0..4] != RECORD_MAGIC {
            return Err("no record magic (INPR)".into());
        }
        if u32_at(36) != crc32fast::hash(&b[..36]) {
            return Err("the record header CRC-32 does not match".into());
        }
        if b[5] != 0 || u16::from_le_bytes([b[6], b[7]]) as usize != RECORD_HEADER_LEN {
            return Err("the record header has a reserved byte set or a length other than 40".into());
        }
        let kind = match b[4] {
            0 => RecordKind::Zstd,
            1 => RecordKind::Hole,
            k => return Err(format!("unknown record kind {k}")),
        };
        let mut off = [0u8; 8];
        off.copy_from_slice(&b[16..24]);
        let h = RecordHeader {
            kind,
            entry: u32_at(8),
            raw_crc: u32_at(12),
            offset: u64::from_le_bytes(off),
            raw_len: u32_at(24),
            stored_len: u32_at(28),
            running_crc: u32_at(32),
        };
        match h.kind {
            RecordKind::Zstd if h.raw_len == 0 || h.raw_len > chunk => {
                Err(format!("a data record of {} raw bytes (the chunk size is {chunk})", h.raw_len))
            }
            RecordKind::Zstd if h.stored_len == 0 || h.stored_len as usize > zstd_bound(h.raw_len as usize) => {
                Err(format!("a data record of {} stored bytes for {} raw bytes", h.stored_len, h.raw_len))
            }
            RecordKind::Hole if h.stored_len != 0 || h.raw_len == 0 || h.raw_len > HOLE_MAX => {
                Err(format!("a hole record of {} raw and {} stored bytes", h.raw_len, h.stored_len))
            }
            _ if h.offset.checked_add(u64::from(h.raw_len)).is_none() => Err("the record offset overflows".into()),
            _ => Ok(h),
        }
    }

    /// Header plus payload.
    pub fn total_len(&self) -> u64 {
        RECORD_HEADER_LEN as u64 + u64::from(self.stored_len)
    }

    /// Offset just past this record's bytes within the entry.
    pub fn end(&self) -> u64 {
        self.offset + u64::from(self.raw_len)
    }
}

/// The largest zstd frame for `raw` input bytes (`ZSTD_COMPRESSBOUND`).
pub fn zstd_bound(raw: usize) -> usize {
    raw + (raw >> 8) + if raw < (128 << 10) { ((128 << 10) - raw) >> 11 } else { 0 }
}

/// CRC-32 state of `len` zero bytes, without hashing them (memoised for common lengths by
/// callers).
pub fn zeros_crc(len: u64) -> crc32fast::Hasher {
    let mut acc = crc32fast::Hasher::new();
    let mut pow = crc32fast::Hasher::new();
    pow.update(&[0]);
    let mut n = len;
    while n > 0 {
        if n & 1 == 1 {
            acc.combine(&pow);
        }
        n >>= 1;
        if n > 0 {
            let p = pow.clone();
            pow.combine(&p);
        }
    }
    acc
}

/// `a` followed by `len` bytes whose CRC-32 is `b`.
pub fn crc_append(a: u32, a_len: u64, b: u32, b_len: u64) -> u32 {
    let mut h = crc32fast::Hasher::new_with_initial_len(a, a_len);
    h.combine(&crc32fast::Hasher::new_with_initial_len(b, b_len));
    h.finalize()
}

/// Whether every byte is zero (vectorises: no early exit inside a block).
pub fn is_zero(buf: &[u8]) -> bool {
    buf.chunks(4096).all(|c| c.iter().fold(0u8, |a, b| a | b) == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_names() {
        assert_eq!(CaptureName::FIRST.dir(), "capture");
        let second = CaptureName::nth(2).unwrap();
        assert_eq!((second.dir(), second.number()), ("capture.2".to_string(), 2));
        assert_eq!(CaptureName::nth(0), None);
        assert_eq!(CaptureName::nth(MAX_CAPTURES + 1), None);
        for (dir, want) in [("capture", Some(1)), ("CAPTURE", Some(1)), ("capture.2", Some(2)), ("Capture.17", Some(17))] {
            assert_eq!(CaptureName::parse(dir).map(CaptureName::number), want, "{dir}");
        }
        for dir in ["capture.1", "capture.02", "capture.", "capture.x", "capture2", "captures", "capture.100", "journal"] {
            assert_eq!(CaptureName::parse(dir), None, "{dir}");
        }
        assert_eq!(serde_json::to_value(second).unwrap(), "capture.2");
        assert_eq!(serde_json::from_value::<CaptureName>("capture.2".into()).unwrap(), second);
        assert!(serde_json::from_value::<CaptureName>("restore".into()).is_err());
    }

    #[test]
    fn record_header_round_trip_and_checks() {
        let h = RecordHeader {
            kind: RecordKind::Zstd,
            entry: 7,
            raw_crc: 0xdead_beef,
            offset: 3 << 20,
            raw_len: 1000,
            stored_len: 500,
            running_crc: 0x1234_5678,
        };
        let b = h.encode();
        assert_eq!(RecordHeader::decode(&b, CHUNK).unwrap(), h);
        let mut bad = b;
        bad[9] ^= 1;
        assert!(RecordHeader::decode(&bad, CHUNK).unwrap_err().contains("CRC"));
        let big = RecordHeader { raw_len: CHUNK + 1, ..h }.encode();
        assert!(RecordHeader::decode(&big, CHUNK).is_err());
        let hole = RecordHeader { kind: RecordKind::Hole, stored_len: 0, raw_len: HOLE_MAX, ..h };
        assert_eq!(RecordHeader::decode(&hole.encode(), CHUNK).unwrap(), hole);
        let s = SegmentHeader { number: 3, capture_id: [5; 12] };
        assert_eq!(SegmentHeader::decode(&s.encode()).unwrap(), s);
    }

    #[test]
    fn zero_crc_matches_hashing() {
        for len in [0u64, 1, 2, 3, 1000, 4096, 1 << 20, (1 << 20) + 17] {
            let mut h = crc32fast::Hasher::new();
            h.update(&vec![0u8; len as usize]);
            assert_eq!(zeros_crc(len).finalize(), h.finalize(), "{len}");
        }
        let a = crc32fast::hash(b"hello ");
        let b = crc32fast::hash(b"world");
        assert_eq!(crc_append(a, 6, b, 5), crc32fast::hash(b"hello world"));
    }
}
