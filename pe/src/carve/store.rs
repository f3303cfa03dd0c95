//! The store area itself: formatting the FAT32 volume over its first part, and raw
//! read/write of byte ranges of the opened disk.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;

use crate::disk::device::ReadAt;

/// The volume label of every store.
pub const LABEL: &[u8; 11] = b"INPLACE    ";

/// A disk opened for writing; reads go to the same descriptor.
pub struct RwDisk {
    pub file: File,
    pub size: u64,
}

impl ReadAt for RwDisk {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }
    fn size(&self) -> u64 {
        self.size
    }
}

/// `Read + Write + Seek` over bytes `start .. start + len` of a file, for fatfs.
pub struct FileRange<'a> {
    file: &'a File,
    start: u64,
    len: u64,
    pos: u64,
}

impl<'a> FileRange<'a> {
    pub fn new(file: &'a File, start: u64, len: u64) -> Self {
        FileRange { file, start, len, pos: 0 }
    }
}

impl Read for FileRange<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.len.saturating_sub(self.pos)) as usize;
        if n == 0 {
            return Ok(0);
        }
        self.file.read_exact_at(&mut buf[..n], self.start + self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for FileRange<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.pos.checked_add(buf.len() as u64).is_none_or(|e| e > self.len) {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "write past the end of the store volume"));
        }
        self.file.write_all_at(buf, self.start + self.pos)?;
        self.pos += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for FileRange<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let p = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = p.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bad seek"))?;
        Ok(self.pos)
    }
}

/// The largest cluster (32 KiB down to one sector) that still gives FAT32 its 65,525
/// clusters with room to spare: bigger clusters write faster through fatfs.
pub fn cluster_size(fs_len: u64, sector_size: u32) -> Option<u32> {
    [32768u32, 16384, 8192, 4096, 2048, 1024, 512]
        .into_iter()
        .filter(|c| *c >= sector_size)
        .find(|c| fs_len / u64::from(*c) >= 66_000 && fs_len / u64::from(*c) < 0x0FFF_FFF0)
}

/// Writes zeros over `start .. start + len`.
pub fn zero(file: &File, start: u64, len: u64) -> io::Result<()> {
    let chunk = vec![0u8; 1 << 20];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(chunk.len() as u64) as usize;
        file.write_all_at(&chunk[..n], start + done)?;
        done += n as u64;
    }
    Ok(())
}

/// Formats `start .. start + fs_len` as FAT32 labelled `INPLACE`, then opens it again to
/// check it.
pub fn format(file: &File, start: u64, fs_len: u64, sector_size: u32, volume_id: u32) -> io::Result<()> {
    let cluster = cluster_size(fs_len, sector_size).ok_or_else(|| {
        io::Error::other(format!("{fs_len} bytes is too small for a FAT32 volume on {sector_size}-byte sectors"))
    })?;
    let sectors = u32::try_from(fs_len / u64::from(sector_size))
        .map_err(|_| io::Error::other("the store is too large for FAT32 (2^32 sectors)"))?;
    // fatfs zeroes the FATs and the root cluster; the reserved sectors it leaves alone are
    // zeroed here so no stale data (or old locator) remains.
    zero(file, start, 64 * 1024)?;
    let opts = fatfs::FormatVolumeOptions::new()
        .fat_type(fatfs::FatType::Fat32)
        .bytes_per_sector(sector_size as u16)
        .bytes_per_cluster(cluster)
        .total_sectors(sectors)
        .volume_id(volume_id)
        .volume_label(*LABEL);
    fatfs::format_volume(FileRange::new(file, start, fs_len), opts)?;
    let fs = fatfs::FileSystem::new(FileRange::new(file, start, fs_len), fatfs::FsOptions::new())?;
    if fs.fat_type() != fatfs::FatType::Fat32 {
        return Err(io::Error::other("the formatted store is not FAT32"));
    }
    fs.unmount()?;
    file.sync_all()
}
