//! Finding a job's journal on a disk: in the reserve of the partition that holds the store
//! (its FAT32 volume labelled `INPLACE`), or, before the carve wrote the table, in the reserve
//! of the store partition the plan will make.

use std::path::Path;

use super::journal::Journal;
use super::plan::JobPlan;
use crate::disk::device::{Device, ReadAt};
use crate::error::{Error, Result};
use crate::inventory::Disk;
use crate::locator::reserve_offset;
use crate::step::Step;

pub type Record = Journal<JobPlan>;

/// A journal and where it is (byte offset of the reserve on the disk).
#[derive(Debug, Clone)]
pub struct Found {
    pub at: u64,
    pub journal: Record,
}

/// The reserve's offset on the disk for a store partition at `start`, `size` bytes long.
pub fn reserve_at(start: u64, size: u64, sector: u32) -> Option<u64> {
    reserve_offset(size, sector).map(|o| start + o)
}

/// The disk at `path`, opened to look for a journal.
pub fn open(path: &Path) -> Result<Device> {
    Device::open(path).map_err(|e| Error::io(Step::Inspect, e.to_string()))
}

/// The reserve's offset of the store the disk's locator names (`None`: too small for one).
pub fn locator_reserve(dev: &dyn ReadAt) -> std::result::Result<Option<u64>, crate::locator::LocateError> {
    let l = crate::locator::locate(dev)?.locator;
    Ok(reserve_at(l.store_start, l.store_len, l.sector_size))
}

/// The newest journal (highest `seq`) among the reserves at `ats`.
fn newest(dev: &dyn ReadAt, ats: impl IntoIterator<Item = u64>, disk_bytes: u64) -> Result<Option<Found>> {
    let mut found: Option<Found> = None;
    for at in ats {
        if let Some(j) = read(dev, at, disk_bytes)? {
            if found.as_ref().is_none_or(|f| j.seq > f.journal.seq) {
                found = Some(Found { at, journal: j });
            }
        }
    }
    Ok(found)
}

/// The journal of the store partition of `disk` (as the inventory lists it), if any.
pub fn on_disk(path: &Path, disk: &Disk) -> Result<Option<Found>> {
    let ats = disk
        .partitions
        .iter()
        .filter(|p| p.label.as_deref() == Some("INPLACE") || p.name.as_deref() == Some("inplace store"))
        .filter_map(|p| reserve_at(p.start_bytes, p.size_bytes, disk.logical_sector_size));
    newest(&open(path)?, ats, disk.size_bytes)
}

/// The journal at `at` when it is there and is for a disk of `disk_bytes`.
pub fn read(dev: &dyn ReadAt, at: u64, disk_bytes: u64) -> Result<Option<Record>> {
    if at.checked_add(super::reserve::RESERVE).is_none_or(|end| end > dev.size()) {
        return Ok(None);
    }
    Ok(Record::read(dev, at)?.filter(|j| j.disk.size_bytes == disk_bytes))
}

/// A journal written before the carve changed the table (a job cut right after its plan or
/// during the carve): a store always ends where a partition or a free region ends, at a 1 MiB
/// boundary, so the reserves there are all the places to look. A few reads a partition.
pub fn before_carve(path: &Path, disk: &Disk) -> Result<Option<Found>> {
    let align = crate::locator::ALIGN;
    let ends = disk.partitions.iter().flat_map(|p| [p.start_bytes, p.start_bytes + p.size_bytes]).chain([disk.size_bytes]);
    let ats = ends.filter_map(|e| (e / align * align).checked_sub(u64::from(disk.logical_sector_size) + super::reserve::RESERVE));
    newest(&open(path)?, ats, disk.size_bytes)
}

/// Every place a job's journal can be: the store partition's reserve, or before the carve, the
/// reserve of the partition it would make.
pub fn anywhere(path: &Path, disk: &Disk) -> Result<Option<Found>> {
    match on_disk(path, disk)? {
        Some(f) => Ok(Some(f)),
        None => before_carve(path, disk),
    }
}

/// The journal in the reserve of the store partition a plan would make (a job cut before its
/// carve wrote the table).
pub fn planned(path: &Path, plan: &JobPlan) -> Result<Option<Found>> {
    let dev = open(path)?;
    let s = &plan.carve.store;
    let Some(at) = reserve_at(s.start, s.size, plan.carve.before.sector_size) else { return Ok(None) };
    Ok(read(&dev, at, plan.carve.before.disk_bytes)?.map(|journal| Found { at, journal }))
}
