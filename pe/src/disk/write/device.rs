//! A disk opened for writing. Writes are positioned (`pwrite`), so several threads can write
//! through one [`RwDevice`]; every failure names the device and the byte offset. Reads go
//! through the same descriptor, so what was written is what is read back.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::disk::device::{self, located, Access, BlockGeometry, DeviceError, Info, ReadAt};

/// Positioned writes, reads back through the same descriptor, and sync: what every writer in
/// the engine needs from a disk.
pub trait WriteAt: Send + Sync {
    /// Writes all of `buf` at byte `offset`.
    fn write_exact_at(&self, offset: u64, buf: &[u8]) -> io::Result<()>;
    /// Fills `buf` from byte `offset`, through the descriptor that writes.
    fn read_back_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Flushes everything written to the device.
    fn sync(&self) -> io::Result<()>;

    /// Writes `len` zero bytes from `offset`.
    fn zero_at(&self, offset: u64, len: u64) -> io::Result<()> {
        let chunk = vec![0u8; (1 << 20).min(len) as usize];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(chunk.len() as u64) as usize;
            self.write_exact_at(offset + done, &chunk[..n])?;
            done += n as u64;
        }
        Ok(())
    }
}

impl WriteAt for File {
    fn write_exact_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        FileExt::write_all_at(self, buf, offset)
    }
    fn read_back_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        FileExt::read_exact_at(self, buf, offset)
    }
    fn sync(&self) -> io::Result<()> {
        self.sync_all()
    }
}

/// An image file or a block device, opened read-write.
#[derive(Debug)]
pub struct RwDevice {
    file: File,
    path: PathBuf,
    info: Info,
}

impl RwDevice {
    /// Opens `path` for reading and writing.
    pub fn open(path: &Path) -> Result<RwDevice, DeviceError> {
        RwDevice::open_as(path, Access::ReadWrite)
    }

    /// Opens `path` for reading and writing; a block device exclusively, so this fails while
    /// it is mounted ([`DeviceError::Busy`]).
    pub fn open_exclusive(path: &Path) -> Result<RwDevice, DeviceError> {
        RwDevice::open_as(path, Access::Exclusive)
    }

    fn open_as(path: &Path, access: Access) -> Result<RwDevice, DeviceError> {
        let (file, info) = device::open(path, access)?;
        Ok(RwDevice { file, path: path.to_owned(), info })
    }

    /// A device over `file`, opened by the caller (with its own flags) from `path`.
    pub fn from_file(file: File, path: &Path) -> Result<RwDevice, DeviceError> {
        let info = device::info(&file, path)?;
        Ok(RwDevice { file, path: path.to_owned(), info })
    }

    /// The descriptor back, for code that keeps its own file.
    pub fn into_file(self) -> File {
        self.file
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn is_block_device(&self) -> bool {
        self.info.block.is_some()
    }

    /// The kernel's sector sizes, for a block device.
    pub fn geometry(&self) -> Option<BlockGeometry> {
        self.info.block
    }

    /// `(major, minor)` of a block device.
    pub fn dev_numbers(&self) -> Option<(u32, u32)> {
        self.info.rdev
    }

    /// The open descriptor (for ioctls).
    pub fn file(&self) -> &File {
        &self.file
    }
}

impl ReadAt for RwDevice {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buf, offset).map_err(|e| located(&self.path, "reading", buf.len(), offset, e))
    }

    fn size(&self) -> u64 {
        self.info.size
    }
}

impl WriteAt for RwDevice {
    fn write_exact_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        self.file.write_all_at(buf, offset).map_err(|e| located(&self.path, "writing", buf.len(), offset, e))
    }

    fn read_back_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        ReadAt::read_exact_at(self, offset, buf)
    }

    fn sync(&self) -> io::Result<()> {
        self.file.sync_all().map_err(|e| io::Error::new(e.kind(), format!("{}: flushing: {e}", self.path.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_read_back_and_failures_name_the_device_and_offset() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("img");
        std::fs::write(&p, vec![1u8; 8192]).unwrap();
        let d = RwDevice::open(&p).unwrap();
        assert_eq!((d.size(), d.is_block_device()), (8192, false));
        d.write_exact_at(4096, b"abc").unwrap();
        d.zero_at(0, 10).unwrap();
        d.sync().unwrap();
        let mut b = [9u8; 3];
        d.read_back_at(4096, &mut b).unwrap();
        assert_eq!(&b, b"abc");
        assert_eq!(std::fs::read(&p).unwrap()[..11], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        let e = ReadAt::read_exact_at(&d, 8190, &mut b).unwrap_err();
        assert!(e.to_string().contains(&format!("{}: reading 3 bytes at byte 8190", p.display())), "{e}");
        assert!(matches!(RwDevice::open(&dir.path().join("missing")), Err(DeviceError::OpenWrite { .. })));
    }

    #[test]
    fn threads_write_through_one_device() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("img");
        std::fs::File::create(&p).unwrap().set_len(4 << 20).unwrap();
        let d = RwDevice::open(&p).unwrap();
        std::thread::scope(|s| {
            for t in 0..4u8 {
                let d = &d;
                s.spawn(move || d.write_exact_at(u64::from(t) << 20, &vec![t + 1; 1 << 20]).unwrap());
            }
        });
        d.sync().unwrap();
        let all = std::fs::read(&p).unwrap();
        for t in 0..4usize {
            assert!(all[t << 20..(t + 1) << 20].iter().all(|b| usize::from(*b) == t + 1), "chunk {t}");
        }
    }
}
