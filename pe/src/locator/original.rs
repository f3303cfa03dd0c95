//! The partitions as they were before the carve, read from the table the carve saved in the
//! store. When the store took the free tail of a partition (the usual case on a disk with no
//! unallocated space), that partition's filesystem still describes itself up to the partition's
//! original end; [`shrunk_by_store`] says where that end is, so the old OS can be read whole.

use std::sync::Arc;

use super::rollback::{restore_patch, RollbackError};
use super::scan::locate_at;
use crate::disk::detect::read_table;
use crate::disk::device::SharedDisk;
use crate::disk::write::patch::Overlay;

/// A partition whose free tail became the store, as the current and the saved table have it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shrunk {
    pub number: u32,
    /// Its first byte (the same in both tables).
    pub start: u64,
    /// Its length now, and before the carve.
    pub size: u64,
    pub original_size: u64,
    /// The store partition that took the tail.
    pub store_number: u32,
    pub store_start: u64,
    pub store_len: u64,
}

/// Why a store's saved table cannot say how large a partition was.
#[derive(Debug, thiserror::Error)]
pub enum OriginalError {
    #[error("the store's saved partition table: {0}")]
    SavedTable(#[from] RollbackError),
    #[error("the store's saved partition table cannot be read: {0}")]
    Unreadable(String),
    #[error("the store's saved partition table has partition {0} running past the end of the disk")]
    PastTheEnd(u32),
    #[error(
        "partition {other} (bytes {start}–{end}) lies where the saved table has partition {number}, between its end \
         now and its end before the carve"
    )]
    InTheWay { number: u32, other: u32, start: u64, end: u64 },
}

impl Shrunk {
    /// One past the partition's last byte before the carve.
    pub fn original_end(&self) -> u64 {
        self.start + self.original_size
    }
}

/// Partition `number` of `disk`, if a store on the disk was carved from its tail: the
/// current table is `current` (`(number, first byte, length)` of every partition), the store
/// is found by its locator at one of those partitions' boundaries (no scan of the disk), and
/// the saved table must show the partition starting at the same byte and ending past the
/// store, with nothing but the store in between. `Ok(None)`: no store on the disk, or this
/// partition was not shrunk by it. `Err`: a store is there but its saved table cannot be
/// used (damaged, or it disagrees with the current table). Reads only.
pub fn shrunk_by_store(disk: &SharedDisk, current: &[(u32, u64, u64)], number: u32) -> Result<Option<Shrunk>, OriginalError> {
    let Some(&(_, start, size)) = current.iter().find(|p| p.0 == number) else { return Ok(None) };
    let boundaries: Vec<u64> = current.iter().flat_map(|&(_, s, l)| [s, s.saturating_add(l)]).collect();
    let Some(found) = locate_at(disk.as_ref(), &boundaries) else { return Ok(None) };
    let l = &found.locator;
    let end = start + size;
    if l.store_start < end {
        return Ok(None);
    }
    let patch = restore_patch(disk.as_ref(), &found)?;
    let mut overlay = Overlay::new(disk.clone());
    overlay.patch = patch;
    let before: SharedDisk = Arc::new(overlay);
    let table = match read_table(&before, l.sector_size) {
        Ok(Some(t)) => t,
        Ok(None) => return Err(OriginalError::Unreadable("it holds no partition table".into())),
        Err(note) => return Err(OriginalError::Unreadable(note.message)),
    };
    let Some(orig) = table.entries.iter().find(|e| e.number == number && !e.container) else { return Ok(None) };
    let Some(orig_end) = orig.end_bytes().filter(|e| *e <= disk.size()) else {
        return Err(OriginalError::PastTheEnd(number));
    };
    if orig.start_bytes != start || orig_end <= end {
        return Ok(None);
    }
    let store_end = l.store_start + l.store_len;
    if store_end > orig_end {
        return Ok(None);
    }
    // Besides the store, only a partition holding this one (an MBR extended partition) may
    // reach into the space between the two ends.
    let in_the_way = |&&(n, s, len): &&(u32, u64, u64)| {
        let holds_it = s <= start && s + len >= end;
        n != number && s != l.store_start && !holds_it && len > 0 && s < orig_end && s + len > end
    };
    if let Some(&(other, s, len)) = current.iter().find(in_the_way) {
        return Err(OriginalError::InTheWay { number, other, start: s, end: s + len });
    }
    Ok(Some(Shrunk {
        number,
        start,
        size,
        original_size: orig.size_bytes,
        store_number: l.store_number,
        store_start: l.store_start,
        store_len: l.store_len,
    }))
}
