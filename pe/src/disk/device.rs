//! Read-only access to a disk: positioned reads over an image file, a block device or a byte
//! buffer. A [`Device`] cannot write: it is opened `O_RDONLY` (writing is `disk::write`'s, which
//! opens through the same [`open`]).
//!
//! The block-device ioctls (`BLKGETSIZE64`, `BLKSSZGET`, `BLKPBSZGET`) are the only `unsafe` code,
//! at the bottom of this file.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Positioned, read-only access to the bytes of a disk.
pub trait ReadAt: Send + Sync {
    /// Fills `buf` with the bytes at `offset`; fails with `UnexpectedEof` if they are not all
    /// there.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// The size in bytes.
    fn size(&self) -> u64;
}

/// A disk shared by the table readers and the filesystem readers of one probe.
pub type SharedDisk = Arc<dyn ReadAt>;

/// An image file or a block device, opened read-only.
#[derive(Debug)]
pub struct Device {
    file: File,
    path: PathBuf,
    info: Info,
}

/// What the kernel says about a block device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockGeometry {
    pub logical_sector_size: u32,
    pub physical_sector_size: u32,
}

/// What opening a disk learnt: its size and, for a block device, its sector sizes and numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Info {
    pub size: u64,
    pub block: Option<BlockGeometry>,
    pub rdev: Option<(u32, u32)>,
}

/// Opening or sizing a device failed.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("cannot open {path} read-only: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("cannot open {path} for writing: {source}")]
    OpenWrite { path: PathBuf, source: io::Error },
    #[error("{path} is in use (mounted?): unmount it first")]
    Busy { path: PathBuf },
    #[error("{path} is neither a regular file nor a block device")]
    NotADisk { path: PathBuf },
    #[error("cannot get the size of block device {path}: {source}")]
    Size { path: PathBuf, source: io::Error },
}

/// How a disk is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadOnly,
    ReadWrite,
    /// Read-write, and a block device exclusively (`O_EXCL`: refused while it is mounted).
    Exclusive,
}

/// Opens `path` as `access` says and sizes it: regular files by their length, block devices
/// by `BLKGETSIZE64`, with their sector sizes from `BLKSSZGET` / `BLKPBSZGET`.
pub fn open(path: &Path, access: Access) -> Result<(File, Info), DeviceError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true).write(access != Access::ReadOnly);
    let block_device = std::fs::metadata(path).is_ok_and(|m| m.file_type().is_block_device());
    if access == Access::Exclusive && block_device {
        opts.custom_flags(nix::libc::O_EXCL);
    }
    let file = opts.open(path).map_err(|source| {
        let path = path.to_owned();
        match access {
            Access::ReadOnly => DeviceError::Open { path, source },
            Access::Exclusive if source.raw_os_error() == Some(nix::libc::EBUSY) => DeviceError::Busy { path },
            _ => DeviceError::OpenWrite { path, source },
        }
    })?;
    let info = info(&file, path)?;
    Ok((file, info))
}

/// The size of an open image file or block device, and what the kernel says about a block
/// device.
pub fn info(file: &File, path: &Path) -> Result<Info, DeviceError> {
    let meta = file.metadata().map_err(|source| DeviceError::Open { path: path.to_owned(), source })?;
    let ft = meta.file_type();
    if ft.is_file() {
        return Ok(Info { size: meta.len(), block: None, rdev: None });
    }
    if !ft.is_block_device() {
        return Err(DeviceError::NotADisk { path: path.to_owned() });
    }
    let size = ioctl::size_bytes(file).map_err(|source| DeviceError::Size { path: path.to_owned(), source })?;
    // A sector size we cannot read is not fatal: callers fall back to sysfs or 512.
    let logical = ioctl::logical_sector_size(file).unwrap_or(512);
    let physical = ioctl::physical_sector_size(file).unwrap_or(logical);
    let rdev = meta.rdev();
    let block = Some(BlockGeometry { logical_sector_size: logical, physical_sector_size: physical });
    Ok(Info { size, block, rdev: Some((major(rdev), minor(rdev))) })
}

/// An I/O error that names the device, what was done and where.
pub fn located(path: &Path, what: &str, len: usize, offset: u64, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {what} {len} bytes at byte {offset}: {e}", path.display()))
}

impl Device {
    /// Opens `path` read-only.
    pub fn open(path: &Path) -> Result<Device, DeviceError> {
        let (file, info) = open(path, Access::ReadOnly)?;
        Ok(Device { file, path: path.to_owned(), info })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The kernel's sector sizes, for a block device; `None` for an image file.
    pub fn geometry(&self) -> Option<BlockGeometry> {
        self.info.block
    }

    /// `(major, minor)` of a block device, to find it under `/sys/dev/block`.
    pub fn dev_numbers(&self) -> Option<(u32, u32)> {
        self.info.rdev
    }
}

impl ReadAt for Device {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buf, offset).map_err(|e| located(&self.path, "reading", buf.len(), offset, e))
    }

    fn size(&self) -> u64 {
        self.info.size
    }
}

/// A disk held in memory (tests, fuzzing).
#[derive(Debug, Clone, Default)]
pub struct MemDisk(pub Vec<u8>);

impl ReadAt for MemDisk {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let src = usize::try_from(offset)
            .ok()
            .and_then(|start| Some((start, start.checked_add(buf.len())?)))
            .and_then(|(start, end)| self.0.get(start..end));
        match src {
            Some(src) => {
                buf.copy_from_slice(src);
                Ok(())
            }
            None => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("reading {} bytes at byte {offset} of a {}-byte disk", buf.len(), self.0.len()),
            )),
        }
    }

    fn size(&self) -> u64 {
        self.0.len() as u64
    }
}

fn major(dev: u64) -> u32 {
    (((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0x0000_0fff)) as u32
}

fn minor(dev: u64) -> u32 {
    (((dev >> 12) & 0xffff_ff00) | (dev & 0x0000_00ff)) as u32
}

/// The block-device ioctls: the only `unsafe` in the disk layer.
mod ioctl {
    use std::fs::File;
    use std::io;
    use std::ffi::{c_int, c_uint};
    use std::os::fd::AsRawFd;

    // BLKGETSIZE64 = _IOR(0x12, 114, size_t): the size in bytes.
    nix::ioctl_read!(blkgetsize64, 0x12, 114, u64);
    // BLKSSZGET = _IO(0x12, 104) returning an int: the logical sector size.
    nix::ioctl_read_bad!(blksszget, nix::request_code_none!(0x12, 104), c_int);
    // BLKPBSZGET = _IO(0x12, 123) returning an unsigned int: the physical sector size.
    nix::ioctl_read_bad!(blkpbszget, nix::request_code_none!(0x12, 123), c_uint);

    pub fn size_bytes(file: &File) -> io::Result<u64> {
        let mut size: u64 = 0;
        // SAFETY: the fd is open for the lifetime of `file`, and BLKGETSIZE64 writes exactly one
        // u64 through the pointer, which points at a live, aligned u64.
        unsafe { blkgetsize64(file.as_raw_fd(), &mut size) }.map_err(io::Error::from)?;
        Ok(size)
    }

    pub fn logical_sector_size(file: &File) -> io::Result<u32> {
        let mut v: c_int = 0;
        // SAFETY: as above; BLKSSZGET writes one int through a pointer to a live int.
        unsafe { blksszget(file.as_raw_fd(), &mut v) }.map_err(io::Error::from)?;
        positive(i64::from(v))
    }

    pub fn physical_sector_size(file: &File) -> io::Result<u32> {
        let mut v: c_uint = 0;
        // SAFETY: as above; BLKPBSZGET writes one unsigned int through a pointer to a live one.
        unsafe { blkpbszget(file.as_raw_fd(), &mut v) }.map_err(io::Error::from)?;
        positive(i64::from(v))
    }

    fn positive(v: i64) -> io::Result<u32> {
        u32::try_from(v)
            .ok()
            .filter(|v| *v >= 512 && v.is_power_of_two())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("sector size {v}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memdisk_reads_within_bounds_only() {
        let d = MemDisk((0u8..=255).collect());
        let mut b = [0u8; 4];
        d.read_exact_at(10, &mut b).unwrap();
        assert_eq!(b, [10, 11, 12, 13]);
        assert!(d.read_exact_at(253, &mut b).is_err());
        assert!(d.read_exact_at(u64::MAX, &mut b).is_err());
    }

    #[test]
    fn device_opens_files_read_only() {
        let dir = std::env::temp_dir().join(format!("inplace-dev-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("img");
        std::fs::write(&p, vec![7u8; 1000]).unwrap();
        let d = Device::open(&p).unwrap();
        assert_eq!(d.size(), 1000);
        assert!(d.geometry().is_none());
        let mut b = [0u8; 2];
        d.read_exact_at(998, &mut b).unwrap();
        assert!(d.read_exact_at(999, &mut b).is_err());
        assert!(Device::open(&dir.join("missing")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
