//! The store area itself: formatting the FAT32 volume over its first part.

use std::io;

use crate::disk::write::{RwRange, WriteAt};

/// The volume label of every store.
pub const LABEL: &[u8; 11] = b"INPLACE    ";

/// The largest cluster (32 KiB down to one sector) that still gives FAT32 its 65,525
/// clusters with room to spare: bigger clusters write faster through fatfs.
pub fn cluster_size(fs_len: u64, sector_size: u32) -> Option<u32> {
    [32768u32, 16384, 8192, 4096, 2048, 1024, 512]
        .into_iter()
        .filter(|c| *c >= sector_size)
        .find(|c| fs_len / u64::from(*c) >= 66_000 && fs_len / u64::from(*c) < 0x0FFF_FFF0)
}

/// Formats `start .. start + fs_len` of `dev` as FAT32 labelled `INPLACE`, then opens it again
/// to check it, and syncs.
pub fn format(dev: &dyn WriteAt, start: u64, fs_len: u64, sector_size: u32, volume_id: u32) -> io::Result<()> {
    let cluster = cluster_size(fs_len, sector_size).ok_or_else(|| {
        io::Error::other(format!("{fs_len} bytes is too small for a FAT32 volume on {sector_size}-byte sectors"))
    })?;
    let sectors = u32::try_from(fs_len / u64::from(sector_size))
        .map_err(|_| io::Error::other("the store is too large for FAT32 (2^32 sectors)"))?;
    // fatfs zeroes the FATs and the root cluster; the reserved sectors it leaves alone are
    // zeroed here so no stale data (or old locator) remains.
    dev.zero_at(start, 64 * 1024)?;
    let opts = fatfs::FormatVolumeOptions::new()
        .fat_type(fatfs::FatType::Fat32)
        .bytes_per_sector(sector_size as u16)
        .bytes_per_cluster(cluster)
        .total_sectors(sectors)
        .volume_id(volume_id)
        .volume_label(*LABEL);
    fatfs::format_volume(RwRange::new(dev, start, fs_len), opts)?;
    let fs = fatfs::FileSystem::new(RwRange::new(dev, start, fs_len), fatfs::FsOptions::new())?;
    if fs.fat_type() != fatfs::FatType::Fat32 {
        return Err(io::Error::other("the formatted store is not FAT32"));
    }
    fs.unmount()?;
    dev.sync()
}
