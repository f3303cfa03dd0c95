//! The store locator: a 512-byte record, written at logical sector 2 of the store partition
//! (inside the FAT32 reserved sectors, which FAT does not use) and again at the start of the
//! partition's last logical sector. It names the job, the store's extent and the saved copy
//! of the original partition table, so the store can be found by scanning the disk even when
//! the partition table is damaged or rewritten. The byte layout is in `docs/store-format.md`.
//!
//! Integrity, not authenticity: the record carries a SHA-256 digest of its fields and a CRC-32
//! over fields and digest. Both detect accidental damage (a torn write, a stale sector, random
//! data that happens to start with the magic); neither stops someone who can write the disk
//! from forging a record. There is no key.

use sha2::{Digest, Sha256};

pub const MAGIC: &[u8; 8] = b"INPLSTOR";
pub const VERSION: u16 = 1;
pub const LEN: usize = 512;
/// Where the digest and the CRC sit.
const SHA_AT: usize = 476;
const CRC_AT: usize = 508;
const NAME_LEN: usize = 32;

/// What a locator says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Locator {
    pub job_id: [u8; 16],
    /// Unix seconds (UTC) when the store was carved.
    pub created: u64,
    pub disk_bytes: u64,
    pub sector_size: u32,
    pub table: TableKind,
    pub store_number: u32,
    pub store_start: u64,
    pub store_len: u64,
    /// Bytes of the FAT32 volume, from the store start.
    pub fs_len: u64,
    /// The saved original partition table: offset from the store start, length, SHA-256.
    pub snapshot_offset: u64,
    pub snapshot_len: u64,
    pub snapshot_sha256: [u8; 32],
    /// A short human name for the job (at most 32 bytes of UTF-8).
    pub job_name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TableKind {
    Gpt,
    Mbr,
}

/// Why bytes are not a valid locator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocatorError {
    #[error("the record is {0} bytes; a locator is 512")]
    Length(usize),
    #[error("no locator magic (INPLSTOR)")]
    Magic,
    #[error("locator version {0} is not supported (this inplace reads version 1); use a newer inplace")]
    Version(u16),
    #[error("the locator's CRC-32 does not match (stored {stored:#010x}, computed {computed:#010x}): the record is damaged")]
    Crc { stored: u32, computed: u32 },
    #[error("the locator's SHA-256 does not match: the record is damaged")]
    Digest,
    #[error("the locator is inconsistent: {0}")]
    Field(String),
}

fn le_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}
fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

impl Locator {
    /// The 512 bytes of the record.
    pub fn encode(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[0..8].copy_from_slice(MAGIC);
        b[8..10].copy_from_slice(&VERSION.to_le_bytes());
        b[10..12].copy_from_slice(&(LEN as u16).to_le_bytes());
        // 12..16 flags: 0
        b[16..32].copy_from_slice(&self.job_id);
        b[32..40].copy_from_slice(&self.created.to_le_bytes());
        b[40..48].copy_from_slice(&self.disk_bytes.to_le_bytes());
        b[48..52].copy_from_slice(&self.sector_size.to_le_bytes());
        b[52] = match self.table {
            TableKind::Gpt => 1,
            TableKind::Mbr => 2,
        };
        b[56..60].copy_from_slice(&self.store_number.to_le_bytes());
        b[64..72].copy_from_slice(&self.store_start.to_le_bytes());
        b[72..80].copy_from_slice(&self.store_len.to_le_bytes());
        b[80..88].copy_from_slice(&self.fs_len.to_le_bytes());
        b[88..96].copy_from_slice(&self.snapshot_offset.to_le_bytes());
        b[96..104].copy_from_slice(&self.snapshot_len.to_le_bytes());
        b[104..136].copy_from_slice(&self.snapshot_sha256);
        let name = truncate_utf8(&self.job_name, NAME_LEN);
        b[136..136 + name.len()].copy_from_slice(name.as_bytes());
        let digest = Sha256::digest(&b[..SHA_AT]);
        b[SHA_AT..CRC_AT].copy_from_slice(&digest);
        let crc = crc32fast::hash(&b[..CRC_AT]);
        b[CRC_AT..LEN].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Parses and checks a record. Never panics, whatever the bytes.
    pub fn decode(b: &[u8]) -> Result<Locator, LocatorError> {
        if b.len() != LEN {
            return Err(LocatorError::Length(b.len()));
        }
        if &b[0..8] != MAGIC {
            return Err(LocatorError::Magic);
        }
        let version = le_u16(b, 8);
        if version != VERSION {
            return Err(LocatorError::Version(version));
        }
        let stored = le_u32(b, CRC_AT);
        let computed = crc32fast::hash(&b[..CRC_AT]);
        if stored != computed {
            return Err(LocatorError::Crc { stored, computed });
        }
        if Sha256::digest(&b[..SHA_AT]).as_slice() != &b[SHA_AT..CRC_AT] {
            return Err(LocatorError::Digest);
        }
        let field = |m: String| Err(LocatorError::Field(m));
        if le_u16(b, 10) as usize != LEN || le_u32(b, 12) != 0 {
            return field("record length or flags are not those of version 1".into());
        }
        if b[53..56].iter().chain(&b[60..64]).chain(&b[168..SHA_AT]).any(|x| *x != 0) {
            return field("reserved bytes are not zero".into());
        }
        let table = match b[52] {
            1 => TableKind::Gpt,
            2 => TableKind::Mbr,
            k => return field(format!("unknown table kind {k}")),
        };
        let name_bytes = &b[136..136 + NAME_LEN];
        let name_end = name_bytes.iter().position(|x| *x == 0).unwrap_or(NAME_LEN);
        let Ok(job_name) = std::str::from_utf8(&name_bytes[..name_end]) else {
            return field("the job name is not UTF-8".into());
        };
        if name_bytes[name_end..].iter().any(|x| *x != 0) {
            return field("the job name is not NUL-padded".into());
        }
        let mut job_id = [0u8; 16];
        job_id.copy_from_slice(&b[16..32]);
        let mut snapshot_sha256 = [0u8; 32];
        snapshot_sha256.copy_from_slice(&b[104..136]);
        let l = Locator {
            job_id,
            created: le_u64(b, 32),
            disk_bytes: le_u64(b, 40),
            sector_size: le_u32(b, 48),
            table,
            store_number: le_u32(b, 56),
            store_start: le_u64(b, 64),
            store_len: le_u64(b, 72),
            fs_len: le_u64(b, 80),
            snapshot_offset: le_u64(b, 88),
            snapshot_len: le_u64(b, 96),
            snapshot_sha256,
            job_name: job_name.to_string(),
        };
        l.check().map_err(LocatorError::Field)?;
        Ok(l)
    }

    /// The relations between fields that every valid record satisfies.
    fn check(&self) -> Result<(), String> {
        let ss = u64::from(self.sector_size);
        if self.sector_size != 512 && self.sector_size != 4096 {
            return Err(format!("sector size {} is not 512 or 4096", self.sector_size));
        }
        let store_end = self.store_start.checked_add(self.store_len).ok_or("the store extent overflows")?;
        if self.store_len == 0 || store_end > self.disk_bytes || self.store_start % ss != 0 || self.store_len % ss != 0 {
            return Err(format!(
                "the store extent (bytes {}–{store_end}) is empty, unaligned or beyond the disk ({} bytes)",
                self.store_start, self.disk_bytes
            ));
        }
        let snap_end = self.snapshot_offset.checked_add(self.snapshot_len).ok_or("the snapshot extent overflows")?;
        // The snapshot lies after the FAT volume and before the tail copy of the locator.
        if self.fs_len > self.snapshot_offset || snap_end > self.store_len.saturating_sub(ss) || self.snapshot_len == 0 {
            return Err(format!(
                "the FAT volume ({} bytes), the table snapshot (bytes {}–{snap_end}) and the tail \
                 copy do not fit the {}-byte store in that order",
                self.fs_len, self.snapshot_offset, self.store_len
            ));
        }
        if self.store_number == 0 {
            return Err("store partition number 0".into());
        }
        Ok(())
    }

    /// Disk byte offsets of the head and tail copies.
    pub fn copies(&self) -> [u64; 2] {
        let ss = u64::from(self.sector_size);
        [self.store_start + 2 * ss, self.store_start + self.store_len - ss]
    }

    pub fn job_id_hex(&self) -> String {
        self.job_id.iter().map(|b| format!("{b:02x}")).collect()
    }
}

fn truncate_utf8(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].trim_end_matches('\0')
}

/// Byte offsets (in disk order) where a locator may sit for a store partition that starts or
/// ends at `boundary` (a multiple of 1 MiB): the tail copies of a store ending there (512- and
/// 4096-byte sectors) and the head copies of one starting there.
pub fn candidates(boundary: u64) -> [Option<u64>; 4] {
    [
        boundary.checked_sub(4096),
        boundary.checked_sub(512),
        boundary.checked_add(2 * 512),
        boundary.checked_add(2 * 4096),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Locator {
        Locator {
            job_id: *b"0123456789abcdef",
            created: 1_790_000_000,
            disk_bytes: 8 << 30,
            sector_size: 512,
            table: TableKind::Gpt,
            store_number: 3,
            store_start: 6 << 30,
            store_len: 1 << 30,
            fs_len: (1 << 30) - (1 << 20),
            snapshot_offset: (1 << 30) - (1 << 20),
            snapshot_len: 34 * 512,
            snapshot_sha256: [7; 32],
            job_name: "refresh lab-pc-07 ✓".into(),
        }
    }

    #[test]
    fn round_trip() {
        let l = sample();
        let b = l.encode();
        assert_eq!(&b[0..8], MAGIC);
        assert_eq!(Locator::decode(&b).unwrap(), l);
        assert_eq!(l.copies(), [(6 << 30) + 1024, (7 << 30) - 512]);
    }

    #[test]
    fn every_single_bit_flip_is_caught() {
        let b = sample().encode();
        for i in 0..LEN * 8 {
            let mut c = b;
            c[i / 8] ^= 1 << (i % 8);
            assert!(Locator::decode(&c).is_err(), "bit {i}");
        }
    }

    #[test]
    fn bad_checksum_and_fields_are_named() {
        let mut b = sample().encode();
        b[70] ^= 1;
        assert!(matches!(Locator::decode(&b), Err(LocatorError::Crc { .. })));
        // A record with a fixed-up CRC but a stale digest.
        let mut b = sample().encode();
        b[70] ^= 1;
        let crc = crc32fast::hash(&b[..CRC_AT]);
        b[CRC_AT..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(Locator::decode(&b), Err(LocatorError::Digest));
        let mut l = sample();
        l.fs_len = l.store_len;
        assert!(matches!(Locator::decode(&l.encode()), Err(LocatorError::Field(_))));
        let mut l = sample();
        l.store_start = u64::MAX - 10;
        assert!(matches!(Locator::decode(&l.encode()), Err(LocatorError::Field(_))));
        assert_eq!(Locator::decode(&[0u8; 10]), Err(LocatorError::Length(10)));
        assert_eq!(Locator::decode(&[0u8; 512]), Err(LocatorError::Magic));
    }

    #[test]
    fn long_names_are_cut_on_a_char_boundary() {
        let mut l = sample();
        l.job_name = "é".repeat(40);
        let back = Locator::decode(&l.encode()).unwrap();
        assert_eq!(back.job_name, "é".repeat(16));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 2000, ..Default::default() })]
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600), magic in proptest::prelude::any::<bool>()) {
            let mut b = bytes;
            if magic && b.len() >= 10 { b[0..8].copy_from_slice(MAGIC); b[8] = 1; b[9] = 0; }
            let _ = Locator::decode(&b);
        }
    }
}
