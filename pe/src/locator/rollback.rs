//! Putting the original partition table back from the copy a carve saved in its store: first
//! [`prepare`] (find the store, check the saved copy; writes nothing), then [`roll_back`].

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::scan::{locate, Found};
use super::snapshot::Snapshot;
use crate::disk::device::{Device, ReadAt};
use crate::disk::write::{Patch, RwDevice};
use crate::error::{Error, Hint, Result, Written};
use crate::progress::{Cancel, Sink};
use crate::step::Step;

/// Why the saved table cannot be put back.
#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    #[error("reading the saved table: {0}")]
    Read(std::io::Error),
    #[error("the saved partition table does not match its SHA-256 in the locator: it is damaged")]
    Digest,
    #[error("{0}")]
    Snapshot(#[from] super::snapshot::SnapshotError),
    #[error("the saved table is for a {disk_bytes}-byte disk with {sector_size}-byte sectors; this one has {actual} bytes")]
    OtherDisk { disk_bytes: u64, sector_size: u32, actual: u64 },
    #[error("the saved table is too large")]
    TooLarge,
}

/// The writes that restore the saved table, after checking the copy against the locator.
pub fn restore_patch(disk: &dyn ReadAt, found: &Found) -> Result<Patch, RollbackError> {
    let l = &found.locator;
    let len = usize::try_from(l.snapshot_len).map_err(|_| RollbackError::TooLarge)?;
    let mut buf = vec![0u8; len];
    disk.read_exact_at(l.store_start + l.snapshot_offset, &mut buf).map_err(RollbackError::Read)?;
    if Sha256::digest(&buf).as_slice() != l.snapshot_sha256 {
        return Err(RollbackError::Digest);
    }
    let snap = Snapshot::decode(&buf)?;
    if snap.disk_bytes != disk.size() || snap.sector_size != l.sector_size {
        return Err(RollbackError::OtherDisk { disk_bytes: snap.disk_bytes, sector_size: snap.sector_size, actual: disk.size() });
    }
    let mut p = Patch::default();
    for (at, bytes) in snap.extents {
        p.put(at, bytes);
    }
    Ok(p)
}

/// A rollback checked and ready to write.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub disk: PathBuf,
    pub found: Found,
    /// The bytes the rollback writes.
    pub patch: Patch,
}

/// Finds the store on `disk` by its locator and checks the table saved in it; writes nothing.
pub fn prepare(disk: &Path) -> Result<Prepared> {
    let name = disk.display().to_string();
    let dev = Device::open(disk).map_err(|e| Error::io(Step::Rollback, e.to_string()))?;
    let found = locate(&dev).map_err(|e| e.into_error(Step::Rollback, &name))?;
    let patch = restore_patch(&dev, &found).map_err(|e| match e {
        RollbackError::Read(_) => Error::io(Step::Rollback, format!("{name}: {e}")),
        _ => Error::damaged(Step::Rollback, format!("{name}: {e}")),
    })?;
    Ok(Prepared { disk: disk.to_owned(), found, patch })
}

/// Writes the saved table back, syncs, and reads it back. A cancel raised before the write
/// leaves the disk untouched.
pub fn roll_back(p: &Prepared, sink: &dyn Sink, cancel: &Cancel) -> Result<()> {
    let name = p.disk.display().to_string();
    cancel.check(Step::Rollback, Written::Nothing)?;
    let dev = RwDevice::open(&p.disk).map_err(|e| Error::io(Step::Rollback, e.to_string()))?;
    if dev.size() != p.found.locator.disk_bytes {
        return Err(Error::refused(Step::Rollback, format!("{name} changed size since its store was found")).hint(Hint::RunAgain));
    }
    sink.log(&format!("writing {} saved piece(s) of the partition table back to {name}", p.patch.writes.len()));
    p.patch.write_to(&dev).map_err(|e| {
        // Writing it again is the way out of a partly written table.
        Error::io(Step::Rollback, format!("restoring the table: {e}")).written(Written::Disk).hint(Hint::Rollback { disk: name.clone() })
    })?;
    Ok(())
}
