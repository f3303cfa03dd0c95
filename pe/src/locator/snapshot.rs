//! The saved original partition table: the exact bytes of every sector a carve rewrites (and
//! the whole table areas around them), so `inplace rollback` can put them back byte for byte.
//! Kept in the store's tail area; its SHA-256 is in the locator. Layout in
//! `docs/store-format.md`.

use std::io;

use crate::disk::device::ReadAt;

pub const MAGIC: &[u8; 8] = b"INPLTABL";
pub const VERSION: u16 = 1;
const HEADER: usize = 32;
/// Largest snapshot: it must fit the store's tail area with the locator copy.
pub const MAX_LEN: u64 = super::STORE_TAIL - super::RESERVE - 8192;

/// Disk bytes saved from before the carve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub sector_size: u32,
    pub disk_bytes: u64,
    /// `(disk offset, bytes)`, sorted, not overlapping.
    pub extents: Vec<(u64, Vec<u8>)>,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("the saved partition table is damaged or not a table snapshot: {0}")]
    Format(String),
    #[error("reading the original table bytes: {0}")]
    Io(#[from] io::Error),
}

impl Snapshot {
    /// Reads the current bytes of `ranges` (merged where they touch) from `disk`.
    pub fn capture(disk: &dyn ReadAt, sector_size: u32, ranges: &[(u64, u64)]) -> Result<Snapshot, SnapshotError> {
        let mut r: Vec<(u64, u64)> = ranges.iter().copied().filter(|(_, l)| *l > 0).collect();
        r.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::new();
        for (s, l) in r {
            match merged.last_mut() {
                Some((ms, ml)) if *ms + *ml >= s => *ml = (*ml).max(s + l - *ms),
                _ => merged.push((s, l)),
            }
        }
        let mut extents = Vec::new();
        for (s, l) in merged {
            let mut buf = vec![0u8; usize::try_from(l).map_err(|_| SnapshotError::Format("extent too large".into()))?];
            disk.read_exact_at(s, &mut buf)?;
            extents.push((s, buf));
        }
        let snap = Snapshot { sector_size, disk_bytes: disk.size(), extents };
        if snap.encoded_len() > MAX_LEN {
            return Err(SnapshotError::Format(format!(
                "the table areas take {} bytes, more than the {MAX_LEN} the store keeps",
                snap.encoded_len()
            )));
        }
        Ok(snap)
    }

    pub fn encoded_len(&self) -> u64 {
        HEADER as u64 + self.extents.iter().map(|(_, b)| 16 + b.len() as u64).sum::<u64>()
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len() as usize);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&self.sector_size.to_le_bytes());
        out.extend_from_slice(&self.disk_bytes.to_le_bytes());
        out.extend_from_slice(&(self.extents.len() as u32).to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        for (at, bytes) in &self.extents {
            out.extend_from_slice(&at.to_le_bytes());
            out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            out.extend_from_slice(bytes);
        }
        out
    }

    /// Parses a snapshot. Never panics; every length is checked against what is there.
    pub fn decode(b: &[u8]) -> Result<Snapshot, SnapshotError> {
        let bad = |m: &str| SnapshotError::Format(m.to_string());
        if b.len() < HEADER || &b[..8] != MAGIC {
            return Err(bad("no INPLTABL magic"));
        }
        let u32_at = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let version = u16::from_le_bytes([b[8], b[9]]);
        if version != VERSION {
            return Err(bad(&format!("version {version} is not supported")));
        }
        let sector_size = u32_at(12);
        let disk_bytes = u64::from(u32_at(16)) | (u64::from(u32_at(20)) << 32);
        let count = u32_at(24) as usize;
        let mut pos = HEADER;
        let mut extents: Vec<(u64, Vec<u8>)> = Vec::new();
        for _ in 0..count {
            let head = b.get(pos..pos + 16).ok_or_else(|| bad("an extent header is cut off"))?;
            let at = u64::from_le_bytes(head[..8].try_into().map_err(|_| bad("extent"))?);
            let len = u64::from_le_bytes(head[8..].try_into().map_err(|_| bad("extent"))?);
            pos += 16;
            let len = usize::try_from(len).map_err(|_| bad("an extent is too long"))?;
            let data = pos.checked_add(len).and_then(|end| b.get(pos..end)).ok_or_else(|| bad("an extent is cut off"))?;
            let end = at.checked_add(len as u64).ok_or_else(|| bad("an extent overflows"))?;
            if end > disk_bytes || extents.last().is_some_and(|(s, d)| s + d.len() as u64 > at) {
                return Err(bad("extents overlap, are out of order or lie beyond the disk"));
            }
            extents.push((at, data.to_vec()));
            pos += len;
        }
        if pos != b.len() {
            return Err(bad("trailing bytes after the last extent"));
        }
        Ok(Snapshot { sector_size, disk_bytes, extents })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::device::MemDisk;

    #[test]
    fn capture_merges_and_round_trips() {
        let d = MemDisk((0..20_000u32).map(|i| (i % 253) as u8).collect());
        let s = Snapshot::capture(&d, 512, &[(1024, 512), (0, 1024), (19_000, 1000), (5000, 0)]).unwrap();
        assert_eq!(s.extents.len(), 2);
        assert_eq!(s.extents[0].0, 0);
        assert_eq!(s.extents[0].1.len(), 1536);
        let enc = s.encode();
        assert_eq!(enc.len() as u64, s.encoded_len());
        assert_eq!(Snapshot::decode(&enc).unwrap(), s);
        for cut in [0, 10, 31, 40, enc.len() - 1] {
            assert!(Snapshot::decode(&enc[..cut]).is_err());
        }
        assert!(Snapshot::capture(&d, 512, &[(19_500, 1000)]).is_err());
    }
}
