//! The image file's binary parts: the header, the chunk index (chunk records and run records)
//! and the signature block. Pure functions over bytes, so they can be fuzzed. The byte layout
//! is specified in `docs/image-format.md`; keep the two in step.
//!
//! ```text
//! 0            header (256 bytes, zero-padded to DATA_OFFSET)
//! DATA_OFFSET  chunk payloads (zstd frames), back to back, in index order
//! manifest     JSON (format 1), manifest_len bytes
//! index        chunk_count × 72-byte chunk records, then run_count × 16-byte run records
//! signature    optional 104-byte block
//! ```

use sha2::{Digest, Sha256};

pub const MAGIC: &[u8; 8] = b"INPLIMG\0";
pub const VERSION: u16 = 1;
pub const HEADER_LEN: usize = 256;
/// Where the first chunk payload starts (the header is padded to this).
pub const DATA_OFFSET: u64 = 4096;
pub const CHUNK_RECORD_LEN: usize = 72;
pub const RUN_RECORD_LEN: usize = 16;
pub const SIG_MAGIC: &[u8; 8] = b"INPLSIG1";
pub const SIG_LEN: usize = 104;
/// The message an ed25519 signature signs: this prefix, then the 32-byte digest.
pub const SIG_CONTEXT: &[u8] = b"inplace image v1 digest:";
/// Bytes of the header covered by the digest (everything before the digest itself).
pub const DIGEST_COVERS: usize = 88;

pub const MIN_CHUNK: u32 = 64 * 1024;
pub const MAX_CHUNK: u32 = 64 * 1024 * 1024;
pub const MAX_MANIFEST: u64 = 4 * 1024 * 1024;
pub const MAX_INDEX: u64 = 512 * 1024 * 1024;
/// A sector: every run starts and ends on a multiple of this.
pub const RUN_ALIGN: u64 = 512;

/// Why bytes are not a valid image part. Every message names the field and the number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("not an inplace image (no INPLIMG magic at byte 0)")]
    Magic,
    #[error("image format version {0} is not supported (this inplace reads version 1)")]
    Version(u16),
    #[error("the image header checksum does not match (stored {stored:#010x}, computed {computed:#010x}): the header is damaged")]
    HeaderCrc { stored: u32, computed: u32 },
    #[error("the image is truncated: it should be {want} bytes but is {have}")]
    Truncated { want: u64, have: u64 },
    #[error("the image header is inconsistent: {0}")]
    Header(String),
    #[error("the chunk index is inconsistent: {0}")]
    Index(String),
    #[error("the signature block is malformed: {0}")]
    Signature(String),
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn le32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}
fn le64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// The fixed header at byte 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Most logical (uncompressed) bytes in one chunk.
    pub chunk_size: u32,
    pub manifest_offset: u64,
    pub manifest_len: u64,
    pub index_offset: u64,
    pub index_len: u64,
    pub chunk_count: u64,
    pub run_count: u64,
    /// Chunk payloads lie in `DATA_OFFSET .. data_end`.
    pub data_end: u64,
    /// The whole image's length.
    pub file_len: u64,
    /// SHA-256 over header bytes 0..88, the manifest and the index.
    pub digest: [u8; 32],
    /// Where the signature block is (0 and 0 when unsigned).
    pub sig_offset: u64,
    pub sig_len: u64,
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(MAGIC);
        b[8..10].copy_from_slice(&VERSION.to_le_bytes());
        b[10..12].copy_from_slice(&(HEADER_LEN as u16).to_le_bytes());
        b[12..16].copy_from_slice(&self.chunk_size.to_le_bytes());
        b[16..24].copy_from_slice(&self.manifest_offset.to_le_bytes());
        b[24..32].copy_from_slice(&self.manifest_len.to_le_bytes());
        b[32..40].copy_from_slice(&self.index_offset.to_le_bytes());
        b[40..48].copy_from_slice(&self.index_len.to_le_bytes());
        b[48..56].copy_from_slice(&self.chunk_count.to_le_bytes());
        b[56..64].copy_from_slice(&self.run_count.to_le_bytes());
        b[64..72].copy_from_slice(&DATA_OFFSET.to_le_bytes());
        b[72..80].copy_from_slice(&self.data_end.to_le_bytes());
        b[80..88].copy_from_slice(&self.file_len.to_le_bytes());
        b[88..120].copy_from_slice(&self.digest);
        b[120..128].copy_from_slice(&self.sig_offset.to_le_bytes());
        b[128..136].copy_from_slice(&self.sig_len.to_le_bytes());
        let crc = crc32fast::hash(&b[..252]);
        b[252..256].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Parses and checks the header: magic, version, CRC, and that every region lies where
    /// the format says, in order, without overflow.
    pub fn decode(b: &[u8]) -> Result<Header, FormatError> {
        if b.len() < HEADER_LEN {
            if b.len() >= 8 && &b[..8] != MAGIC {
                return Err(FormatError::Magic);
            }
            return Err(FormatError::Truncated { want: HEADER_LEN as u64, have: b.len() as u64 });
        }
        if &b[..8] != MAGIC {
            return Err(FormatError::Magic);
        }
        let version = le16(b, 8);
        if version != VERSION {
            return Err(FormatError::Version(version));
        }
        let stored = le32(b, 252);
        let computed = crc32fast::hash(&b[..252]);
        if stored != computed {
            return Err(FormatError::HeaderCrc { stored, computed });
        }
        let bad = |m: String| Err(FormatError::Header(m));
        if usize::from(le16(b, 10)) != HEADER_LEN {
            return bad(format!("header length {} (expected {HEADER_LEN})", le16(b, 10)));
        }
        if le64(b, 64) != DATA_OFFSET {
            return bad(format!("data offset {} (expected {DATA_OFFSET})", le64(b, 64)));
        }
        if b[136..252].iter().any(|x| *x != 0) {
            return bad("reserved bytes 136..252 are not zero".into());
        }
        let mut digest = [0u8; 32];
        digest.copy_from_slice(&b[88..120]);
        let h = Header {
            chunk_size: le32(b, 12),
            manifest_offset: le64(b, 16),
            manifest_len: le64(b, 24),
            index_offset: le64(b, 32),
            index_len: le64(b, 40),
            chunk_count: le64(b, 48),
            run_count: le64(b, 56),
            data_end: le64(b, 72),
            file_len: le64(b, 80),
            digest,
            sig_offset: le64(b, 120),
            sig_len: le64(b, 128),
        };
        if !h.chunk_size.is_power_of_two() || !(MIN_CHUNK..=MAX_CHUNK).contains(&h.chunk_size) {
            return bad(format!("chunk size {} is not a power of two in 64 KiB..64 MiB", h.chunk_size));
        }
        if h.data_end < DATA_OFFSET || h.manifest_offset != h.data_end {
            return bad(format!("the manifest ({}) must start where the chunk data ends ({})", h.manifest_offset, h.data_end));
        }
        if h.manifest_len == 0 || h.manifest_len > MAX_MANIFEST {
            return bad(format!("manifest length {} is outside 1..{MAX_MANIFEST}", h.manifest_len));
        }
        let after_manifest = h.manifest_offset.checked_add(h.manifest_len);
        if after_manifest != Some(h.index_offset) {
            return bad("the index must follow the manifest".into());
        }
        if h.index_len > MAX_INDEX {
            return bad(format!("index length {} is over the {MAX_INDEX}-byte limit", h.index_len));
        }
        let want_index = h
            .chunk_count
            .checked_mul(CHUNK_RECORD_LEN as u64)
            .and_then(|c| h.run_count.checked_mul(RUN_RECORD_LEN as u64).and_then(|r| c.checked_add(r)));
        if want_index != Some(h.index_len) {
            return bad(format!("index length {} does not match {} chunks and {} runs", h.index_len, h.chunk_count, h.run_count));
        }
        let end = h.index_offset.checked_add(h.index_len).ok_or_else(|| FormatError::Header("index end overflows".into()))?;
        match (h.sig_offset, h.sig_len) {
            (0, 0) => {
                if h.file_len != end {
                    return bad(format!("file length {} is not the end of the index ({end})", h.file_len));
                }
            }
            (o, l) if o == end && l == SIG_LEN as u64 => {
                if h.file_len != end + l {
                    return bad(format!("file length {} is not the end of the signature ({})", h.file_len, end + l));
                }
            }
            (o, l) => return bad(format!("signature block at {o} of {l} bytes (expected {SIG_LEN} bytes at {end})")),
        }
        Ok(h)
    }

    /// The digest the header should carry for this manifest and index.
    pub fn compute_digest(&self, manifest: &[u8], index: &[u8]) -> [u8; 32] {
        let enc = self.encode();
        let mut h = Sha256::new();
        h.update(&enc[..DIGEST_COVERS]);
        h.update(manifest);
        h.update(index);
        h.finalize().into()
    }

    pub fn signed(&self) -> bool {
        self.sig_len != 0
    }
}

/// One chunk: where its payload is, how long it is before and after compression, its
/// checksums, and which runs of which partition its logical bytes fill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkRecord {
    /// Index into the manifest's partitions.
    pub partition: u32,
    pub run_count: u32,
    pub first_run: u64,
    /// Absolute offset of the zstd frame in the image.
    pub stored_offset: u64,
    pub stored_len: u32,
    pub logical_len: u32,
    /// CRC-32 (IEEE) of the stored (compressed) bytes.
    pub stored_crc: u32,
    /// CRC-32 of the logical (decompressed) bytes.
    pub logical_crc: u32,
    /// SHA-256 of the stored bytes: with the signed digest over the index, this makes the
    /// whole image authenticated, not just its metadata.
    pub stored_sha256: [u8; 32],
}

impl ChunkRecord {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.partition.to_le_bytes());
        out.extend_from_slice(&self.run_count.to_le_bytes());
        out.extend_from_slice(&self.first_run.to_le_bytes());
        out.extend_from_slice(&self.stored_offset.to_le_bytes());
        out.extend_from_slice(&self.stored_len.to_le_bytes());
        out.extend_from_slice(&self.logical_len.to_le_bytes());
        out.extend_from_slice(&self.stored_crc.to_le_bytes());
        out.extend_from_slice(&self.logical_crc.to_le_bytes());
        out.extend_from_slice(&self.stored_sha256);
    }

    fn decode(b: &[u8]) -> ChunkRecord {
        let mut sha = [0u8; 32];
        sha.copy_from_slice(&b[40..72]);
        ChunkRecord {
            partition: le32(b, 0),
            run_count: le32(b, 4),
            first_run: le64(b, 8),
            stored_offset: le64(b, 16),
            stored_len: le32(b, 24),
            logical_len: le32(b, 28),
            stored_crc: le32(b, 32),
            logical_crc: le32(b, 36),
            stored_sha256: sha,
        }
    }

    pub fn stored_end(&self) -> u64 {
        self.stored_offset + u64::from(self.stored_len)
    }
}

/// A run: `len` bytes at byte `offset` of the partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub offset: u64,
    pub len: u64,
}

/// The parsed, checked index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    pub chunks: Vec<ChunkRecord>,
    pub runs: Vec<Run>,
}

impl Index {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.chunks.len() * CHUNK_RECORD_LEN + self.runs.len() * RUN_RECORD_LEN);
        for c in &self.chunks {
            c.encode(&mut out);
        }
        for r in &self.runs {
            out.extend_from_slice(&r.offset.to_le_bytes());
            out.extend_from_slice(&r.len.to_le_bytes());
        }
        out
    }

    /// The runs of chunk `c`.
    pub fn runs_of(&self, c: &ChunkRecord) -> &[Run] {
        let s = c.first_run as usize;
        &self.runs[s..s + c.run_count as usize]
    }

    /// Parses `b` and checks it against the header and the partition sizes (bytes, in the
    /// manifest's order): payloads back to back from `DATA_OFFSET` to `data_end`; runs
    /// sector-aligned, inside their partition, ascending without overlap; each chunk's runs
    /// adding up to its logical length, at most one chunk size; compressed lengths bounded.
    pub fn decode(b: &[u8], h: &Header, partition_sizes: &[u64]) -> Result<Index, FormatError> {
        let bad = |m: String| Err(FormatError::Index(m));
        if b.len() as u64 != h.index_len {
            return bad(format!("{} bytes, the header says {}", b.len(), h.index_len));
        }
        let nchunks = usize::try_from(h.chunk_count).map_err(|_| FormatError::Index("chunk count".into()))?;
        let split = nchunks * CHUNK_RECORD_LEN;
        let mut runs = Vec::with_capacity(b[split..].len() / RUN_RECORD_LEN);
        for r in b[split..].chunks_exact(RUN_RECORD_LEN) {
            runs.push(Run { offset: le64(r, 0), len: le64(r, 8) });
        }
        let max_stored = u64::from(h.chunk_size) + u64::from(h.chunk_size) / 64 + 4096;
        let mut chunks = Vec::with_capacity(nchunks);
        let mut expect_offset = DATA_OFFSET;
        let mut expect_run = 0u64;
        // Per partition: where the previous run ended, to require ascending runs.
        let mut part_pos: Vec<u64> = vec![0; partition_sizes.len()];
        let mut last_part = 0u32;
        for (i, rec) in b[..split].chunks_exact(CHUNK_RECORD_LEN).enumerate() {
            let c = ChunkRecord::decode(rec);
            let Some(&psize) = partition_sizes.get(c.partition as usize) else {
                return bad(format!("chunk {i} names partition {} of {}", c.partition, partition_sizes.len()));
            };
            if c.partition < last_part {
                return bad(format!("chunk {i}: partitions must come in manifest order"));
            }
            last_part = c.partition;
            if c.stored_offset != expect_offset {
                return bad(format!("chunk {i} starts at byte {} instead of {expect_offset}", c.stored_offset));
            }
            if c.stored_len == 0 || u64::from(c.stored_len) > max_stored {
                return bad(format!("chunk {i}: stored length {} is outside 1..{max_stored}", c.stored_len));
            }
            if c.logical_len == 0 || c.logical_len > h.chunk_size {
                return bad(format!("chunk {i}: logical length {} is outside 1..{}", c.logical_len, h.chunk_size));
            }
            if c.first_run != expect_run || c.run_count == 0 {
                return bad(format!("chunk {i}: runs {}+{} (expected to start at run {expect_run})", c.first_run, c.run_count));
            }
            let run_end = c.first_run.checked_add(u64::from(c.run_count)).filter(|e| *e <= runs.len() as u64);
            let Some(run_end) = run_end else {
                return bad(format!("chunk {i}: runs {}+{} past the {} runs", c.first_run, c.run_count, runs.len()));
            };
            let mut sum = 0u64;
            let pos = &mut part_pos[c.partition as usize];
            for r in &runs[c.first_run as usize..run_end as usize] {
                let end = r.offset.checked_add(r.len);
                if r.len == 0 || r.offset % RUN_ALIGN != 0 || r.len % RUN_ALIGN != 0 || r.offset < *pos || end.is_none_or(|e| e > psize) {
                    return bad(format!(
                        "chunk {i}: run at byte {} of {} bytes is unaligned, overlapping, or outside its {psize}-byte partition",
                        r.offset, r.len
                    ));
                }
                *pos = end.unwrap_or(u64::MAX);
                sum += r.len;
            }
            if sum != u64::from(c.logical_len) {
                return bad(format!("chunk {i}: runs hold {sum} bytes, the chunk {}", c.logical_len));
            }
            expect_offset = c.stored_end();
            expect_run = run_end;
            chunks.push(c);
        }
        if expect_offset != h.data_end {
            return bad(format!("the chunks end at byte {expect_offset}, the header says {}", h.data_end));
        }
        if expect_run != runs.len() as u64 {
            return bad(format!("{} runs are not used by any chunk", runs.len() as u64 - expect_run));
        }
        Ok(Index { chunks, runs })
    }
}

/// The signature block: magic, ed25519 public key, signature over `SIG_CONTEXT ‖ digest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureBlock {
    pub public_key: [u8; 32],
    pub signature: [u8; 64],
}

impl SignatureBlock {
    pub fn encode(&self) -> [u8; SIG_LEN] {
        let mut b = [0u8; SIG_LEN];
        b[..8].copy_from_slice(SIG_MAGIC);
        b[8..40].copy_from_slice(&self.public_key);
        b[40..104].copy_from_slice(&self.signature);
        b
    }

    pub fn decode(b: &[u8]) -> Result<SignatureBlock, FormatError> {
        if b.len() != SIG_LEN {
            return Err(FormatError::Signature(format!("{} bytes instead of {SIG_LEN}", b.len())));
        }
        if &b[..8] != SIG_MAGIC {
            return Err(FormatError::Signature("no INPLSIG1 magic".into()));
        }
        let mut public_key = [0u8; 32];
        public_key.copy_from_slice(&b[8..40]);
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&b[40..104]);
        Ok(SignatureBlock { public_key, signature })
    }
}

pub fn signed_message(digest: &[u8; 32]) -> Vec<u8> {
    let mut m = SIG_CONTEXT.to_vec();
    m.extend_from_slice(digest);
    m
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Parses exactly `N` bytes of hex (upper or lower case).
pub fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let s = s.trim();
    if s.len() != 2 * N || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Header, Vec<u8>, Vec<u8>) {
        let runs = vec![Run { offset: 0, len: 4096 }, Run { offset: 8192, len: 512 }, Run { offset: 0, len: 1024 }];
        let chunks = vec![
            ChunkRecord { partition: 0, run_count: 2, first_run: 0, stored_offset: DATA_OFFSET, stored_len: 100, logical_len: 4608, stored_crc: 1, logical_crc: 2, stored_sha256: [3; 32] },
            ChunkRecord { partition: 1, run_count: 1, first_run: 2, stored_offset: DATA_OFFSET + 100, stored_len: 50, logical_len: 1024, stored_crc: 1, logical_crc: 2, stored_sha256: [3; 32] },
        ];
        let index = Index { chunks, runs }.encode();
        let manifest = b"{}".to_vec();
        let data_end = DATA_OFFSET + 150;
        let mut h = Header {
            chunk_size: 1 << 20,
            manifest_offset: data_end,
            manifest_len: manifest.len() as u64,
            index_offset: data_end + manifest.len() as u64,
            index_len: index.len() as u64,
            chunk_count: 2,
            run_count: 3,
            data_end,
            file_len: data_end + manifest.len() as u64 + index.len() as u64,
            digest: [0; 32],
            sig_offset: 0,
            sig_len: 0,
        };
        h.digest = h.compute_digest(&manifest, &index);
        (h, manifest, index)
    }

    #[test]
    fn header_and_index_round_trip() {
        let (h, _, index) = sample();
        let enc = h.encode();
        assert_eq!(Header::decode(&enc).unwrap(), h);
        let idx = Index::decode(&index, &h, &[16384, 1024]).unwrap();
        assert_eq!(idx.encode(), index);
        assert_eq!(idx.runs_of(&idx.chunks[0]).len(), 2);
        // A partition too small for its runs is refused.
        assert!(Index::decode(&index, &h, &[8192, 1024]).is_err());
        assert!(Index::decode(&index, &h, &[16384]).is_err());
    }

    #[test]
    fn damaged_headers_are_refused_with_reasons() {
        let (h, _, _) = sample();
        let enc = h.encode();
        let mut b = enc;
        b[0] = b'X';
        assert_eq!(Header::decode(&b), Err(FormatError::Magic));
        let mut b = enc;
        b[30] ^= 1;
        assert!(matches!(Header::decode(&b), Err(FormatError::HeaderCrc { .. })));
        assert!(matches!(Header::decode(&enc[..100]), Err(FormatError::Truncated { .. })));
        let mut h2 = h.clone();
        h2.chunk_size = 3000;
        assert!(matches!(Header::decode(&h2.encode()), Err(FormatError::Header(_))));
        let mut h2 = h.clone();
        h2.index_len += 16;
        assert!(matches!(Header::decode(&h2.encode()), Err(FormatError::Header(_))));
    }

    #[test]
    fn hex_round_trip() {
        let b = [0u8, 1, 0xab, 0xff];
        assert_eq!(unhex::<4>(&hex(&b)), Some(b));
        assert_eq!(unhex::<4>("00"), None);
        assert_eq!(unhex::<2>("zz00"), None);
    }
}
