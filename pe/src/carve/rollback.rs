//! Putting the original partition table back from the copy a carve saved in its store.

use sha2::{Digest, Sha256};

use super::locate::Found;
use super::patch::Patch;
use super::snapshot::Snapshot;
use crate::disk::device::ReadAt;

/// The writes that restore the saved table, after checking the copy against the locator.
pub fn restore_patch(disk: &dyn ReadAt, found: &Found) -> Result<Patch, String> {
    let l = &found.locator;
    let len = usize::try_from(l.snapshot_len).map_err(|_| "snapshot too large")?;
    let mut buf = vec![0u8; len];
    disk.read_exact_at(l.store_start + l.snapshot_offset, &mut buf)
        .map_err(|e| format!("reading the saved table: {e}"))?;
    if Sha256::digest(&buf).as_slice() != l.snapshot_sha256 {
        return Err("the saved partition table does not match its SHA-256 in the locator: it is damaged; nothing was written".into());
    }
    let snap = Snapshot::decode(&buf).map_err(|e| e.to_string())?;
    if snap.disk_bytes != disk.size() || snap.sector_size != l.sector_size {
        return Err(format!(
            "the saved table is for a {}-byte disk with {}-byte sectors; this one has {} bytes; nothing was written",
            snap.disk_bytes,
            snap.sector_size,
            disk.size()
        ));
    }
    let mut p = Patch::default();
    for (at, bytes) in snap.extents {
        p.put(at, bytes);
    }
    Ok(p)
}
