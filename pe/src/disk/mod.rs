//! Disks: enumeration through sysfs, partition tables, content signatures, and the probe that
//! turns one disk into an inventory entry.

use std::path::{Path, PathBuf};

use crate::inventory::Inventory;

/// Inventory of every disk under `sys`/block, opened read-only through `dev`.
pub fn scan_system(sys: &Path, dev: &Path) -> Inventory {
    let _ = (sys, dev);
    todo!("sysfs enumeration")
}

/// Inventory of the given image files or block devices, opened read-only.
pub fn inspect_paths(paths: &[PathBuf]) -> Inventory {
    let _ = paths;
    todo!("probe image files")
}
