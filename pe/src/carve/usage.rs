//! Free space at the tail of a filesystem, from the used ranges [`crate::fs::alloc`] reads out
//! of its own allocation data (ext2/3/4 block bitmaps with `BLOCK_UNINIT` groups synthesised,
//! the NTFS `$Bitmap`, the FAT). A byte counts as free only if the filesystem says so; when in
//! doubt (journal needing recovery, dirty volume, unsupported layout) there is no tail.

use super::model::TailFree;
use crate::disk::device::SharedDisk;
use crate::fs::alloc;
use crate::fs::range::RangeReader;

/// Why no tail could be read.
pub type Why = String;

/// The free tail of partition `number` (bytes `start .. start+size` of `disk`) holding `fs`:
/// after the last used byte, up to the partition end or to what the filesystem keeps at its
/// very end (the NTFS backup boot sector).
pub(crate) fn tail_free(disk: &SharedDisk, number: u32, fs: &str, start: u64, size: u64) -> Result<TailFree, Why> {
    let mut r = RangeReader::new(disk.clone(), start, size);
    let (from, to) = alloc::used(fs, &mut r, 0)?.free_tail(size);
    Ok(TailFree { number, fs: fs.to_string(), start: from, end: to })
}
