//! Which bytes of a filesystem are in use, read from its own allocation data: the ext2/3/4
//! block bitmaps ([`ext4`]), the NTFS `$Bitmap` ([`ntfs`]), the FAT ([`fat`]).
//!
//! Two users: `image create` copies the [`UsedMap::ranges`]; the carve planner
//! (`carve::usage`) takes the [`UsedMap::free_tail`].
//!
//! A byte counts as unused only if the filesystem says so; when in doubt (journal needing
//! recovery, dirty volume, unsupported layout) the reader fails and the caller copies raw.

pub mod ext4;
pub mod fat;
pub mod ntfs;

use crate::fs::range::RangeReader;

/// The used part of one filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsedMap {
    /// The allocation unit (ext block, NTFS/FAT cluster) in bytes.
    pub block_size: u64,
    /// Bytes of the partition the filesystem spans (it may be smaller than the partition).
    pub fs_bytes: u64,
    /// The filesystem's own sector size where it records one (FAT, NTFS): it cannot be moved
    /// to a disk with another logical sector size.
    pub fs_sector_size: Option<u32>,
    /// `(offset, length)` in bytes from the partition start: sorted, disjoint, non-empty.
    pub ranges: Vec<(u64, u64)>,
    /// Where a structure the filesystem keeps at its very end starts (the NTFS backup boot
    /// sector, just past the last cluster). It is in `ranges` too, but it is not data: a free
    /// tail runs up to it, not past it.
    pub trailer: Option<u64>,
}

impl UsedMap {
    /// Total used bytes.
    pub fn used_bytes(&self) -> u64 {
        self.ranges.iter().map(|r| r.1).sum()
    }

    /// The free run at the end of a partition of `part_len` bytes, `(from, to)` in bytes from
    /// its start: `from` is just after the last used byte before the trailer, `to` is the
    /// trailer or, without one, the partition end (past a filesystem smaller than it).
    pub fn free_tail(&self, part_len: u64) -> (u64, u64) {
        let to = self.trailer.unwrap_or(part_len).min(part_len);
        let from = self.ranges.iter().filter(|r| r.0 < to).map(|r| r.0.saturating_add(r.1).min(to)).max().unwrap_or(0);
        (from, to)
    }
}

/// What a reader learnt about the filesystem besides its used ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// The allocation unit in bytes.
    pub block_size: u64,
    /// Bytes the filesystem spans, its trailer included.
    pub fs_bytes: u64,
    /// The filesystem's own sector size, where it records one.
    pub fs_sector_size: Option<u32>,
    /// See [`UsedMap::trailer`].
    pub trailer: Option<u64>,
}

/// Why the allocation data could not be read; the message says what to do.
pub type AllocError = String;

/// The used ranges of filesystem `fs` (`ext2`/`ext3`/`ext4`, `ntfs`, `vfat`) on `r`. Ranges
/// closer than `merge_gap` bytes are merged (copying a small gap is cheaper than a run).
pub fn used(fs: &str, r: &mut RangeReader, merge_gap: u64) -> Result<UsedMap, AllocError> {
    let mut b = Runs::new(merge_gap);
    let g = match fs {
        "ext2" | "ext3" | "ext4" => ext4::used(r, &mut b)?,
        "ntfs" => ntfs::used(r, &mut b)?,
        "vfat" => fat::used(r, &mut b)?,
        other => return Err(format!("no allocation reader for {other}")),
    };
    let len = r.len();
    let mut ranges = b.finish();
    // Clip to the partition.
    ranges.retain_mut(|(s, l)| {
        if *s >= len {
            return false;
        }
        *l = (*l).min(len - *s);
        *l > 0
    });
    Ok(UsedMap {
        block_size: g.block_size,
        fs_bytes: g.fs_bytes.min(len),
        fs_sector_size: g.fs_sector_size,
        ranges,
        trailer: g.trailer.filter(|&t| t < len),
    })
}

/// Collects ranges in ascending order, merging neighbours closer than `gap`.
#[derive(Debug)]
pub struct Runs {
    gap: u64,
    v: Vec<(u64, u64)>,
    unsorted: bool,
}

impl Runs {
    pub fn new(gap: u64) -> Self {
        Runs { gap, v: Vec::new(), unsorted: false }
    }

    pub fn push(&mut self, start: u64, len: u64) {
        if len == 0 {
            return;
        }
        if let Some(last) = self.v.last_mut() {
            let end = last.0.saturating_add(last.1);
            if start >= last.0 && start <= end.saturating_add(self.gap) {
                let new_end = end.max(start.saturating_add(len));
                last.1 = new_end - last.0;
                return;
            }
            if start < last.0 {
                self.unsorted = true;
            }
        }
        self.v.push((start, len));
    }

    /// Sorted, disjoint ranges.
    pub fn finish(mut self) -> Vec<(u64, u64)> {
        if !self.unsorted {
            return self.v;
        }
        self.v.sort_unstable();
        let mut out = Runs::new(self.gap);
        for (s, l) in self.v {
            out.push(s, l);
        }
        out.v
    }
}

pub(crate) fn read_at(r: &mut RangeReader, at: u64, len: usize) -> Result<Vec<u8>, AllocError> {
    let mut b = vec![0u8; len];
    r.read_exact_at(at, &mut b).map_err(|e| format!("reading {len} bytes at byte {at}: {e}"))?;
    Ok(b)
}

pub(crate) fn le16(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 2).map_or(0, |x| u64::from(u16::from_le_bytes([x[0], x[1]])))
}

pub(crate) fn le32(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 4).map_or(0, |x| u64::from(u32::from_le_bytes([x[0], x[1], x[2], x[3]])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_merge_and_sort() {
        let mut r = Runs::new(10);
        r.push(0, 5);
        r.push(12, 3); // gap 7 ≤ 10: merged
        r.push(100, 1);
        r.push(50, 1); // out of order
        assert_eq!(r.finish(), vec![(0, 15), (50, 1), (100, 1)]);
        let mut r = Runs::new(0);
        r.push(0, 4);
        r.push(4, 4);
        r.push(9, 1);
        assert_eq!(r.finish(), vec![(0, 8), (9, 1)]);
    }

    #[test]
    fn free_tail_stops_at_the_trailer() {
        let map = |ranges: Vec<(u64, u64)>, trailer| UsedMap { block_size: 4, fs_bytes: 100, fs_sector_size: None, ranges, trailer };
        // No trailer: up to the partition end, even past the filesystem.
        assert_eq!(map(vec![(0, 8), (20, 4)], None).free_tail(200), (24, 200));
        assert_eq!(map(vec![], None).free_tail(200), (0, 200));
        // A trailer merged with the last data run does not count as data.
        assert_eq!(map(vec![(0, 8), (92, 9)], Some(100)).free_tail(200), (100, 100));
        assert_eq!(map(vec![(0, 8), (100, 1)], Some(100)).free_tail(200), (8, 100));
        // A trailer past the partition: the partition end.
        assert_eq!(map(vec![(0, 8)], Some(300)).free_tail(200), (8, 200));
    }
}
