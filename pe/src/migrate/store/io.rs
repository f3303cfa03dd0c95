//! Byte I/O under fatfs. fatfs reads and writes FAT entries four bytes at a time (four
//! writes and two reads per cluster it allocates) and writes file data one cluster per call:
//! with 4 KiB clusters that is millions of system calls per GiB. Here the FAT area is kept
//! in 4 KiB blocks and contiguous data writes are combined up to 1 MiB. [`IoCache::flush`]
//! writes everything out: on every fatfs file flush, and when the store syncs or unmounts.
//! Until then, like the page cache, it is lost in a power cut.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::disk::write::WriteAt;

const BLOCK: u64 = 4096;
const COMBINE: usize = 1 << 20;

/// Simulated power cut (tests): after `left` more bytes reach the store file, abort the
/// process, or fail every further write.
pub(crate) struct WriteBudget {
    pub left: AtomicU64,
    pub abort: bool,
}

/// Positioned access to the volume's bytes of the store file.
#[derive(Clone, Copy)]
pub(crate) struct Disk<'a> {
    pub file: &'a File,
    /// Where the volume starts in the file.
    pub start: u64,
    pub budget: Option<&'a WriteBudget>,
}

impl Disk<'_> {
    fn read_at(&self, at: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_back_at(self.start + at, buf)
    }

    fn write_at(&self, at: u64, buf: &[u8]) -> io::Result<()> {
        if let Some(b) = self.budget {
            let left = b.left.load(Ordering::Relaxed);
            if buf.len() as u64 > left {
                self.file.write_exact_at(self.start + at, &buf[..left as usize])?;
                b.left.store(0, Ordering::Relaxed);
                if b.abort {
                    // A power cut: no flush, no unmount.
                    std::process::abort();
                }
                return Err(io::Error::other("simulated power cut"));
            }
            b.left.store(left - buf.len() as u64, Ordering::Relaxed);
        }
        self.file.write_exact_at(self.start + at, buf)
    }
}

/// The cached FAT blocks and the pending data write of one store.
pub(crate) struct IoCache {
    state: Mutex<CacheState>,
}

struct CacheState {
    /// Volume offsets `[from, to)` of all FAT copies.
    fat: (u64, u64),
    blocks: HashMap<u64, Block>,
    pending: Vec<u8>,
    pending_at: u64,
}

struct Block {
    data: Vec<u8>,
    dirty: bool,
}

fn poisoned() -> io::Error {
    io::Error::other("the store's I/O cache is unusable after a panic")
}

impl CacheState {
    fn flush_pending(&mut self, disk: &Disk) -> io::Result<()> {
        if !self.pending.is_empty() {
            let r = disk.write_at(self.pending_at, &self.pending);
            self.pending.clear();
            r?;
        }
        Ok(())
    }

    /// The cached block `b` (its index), read in on a miss.
    fn block(&mut self, disk: &Disk, b: u64) -> io::Result<&mut Block> {
        if !self.blocks.contains_key(&b) {
            let from = b * BLOCK;
            let len = BLOCK.min(self.fat.1 - from) as usize;
            let mut data = vec![0u8; len];
            disk.read_at(from, &mut data)?;
            self.blocks.insert(b, Block { data, dirty: false });
        }
        Ok(self.blocks.get_mut(&b).expect("block just cached"))
    }

    fn in_fat(&self, at: u64, len: usize) -> bool {
        at >= self.fat.0 && at + len as u64 <= self.fat.1
    }
}

impl IoCache {
    /// A cache for a volume whose FATs are at volume bytes `fat.0 .. fat.1`.
    pub fn new(fat: (u64, u64)) -> IoCache {
        IoCache { state: Mutex::new(CacheState { fat, blocks: HashMap::new(), pending: Vec::new(), pending_at: 0 }) }
    }

    /// Writes the pending data, then the changed FAT blocks, and empties the cache.
    pub fn flush(&self, disk: &Disk) -> io::Result<()> {
        let mut s = self.state.lock().map_err(|_| poisoned())?;
        s.flush_pending(disk)?;
        let mut dirty: Vec<(u64, Vec<u8>)> =
            s.blocks.drain().filter(|(_, b)| b.dirty).map(|(i, b)| (i, b.data)).collect();
        dirty.sort_by_key(|d| d.0);
        for (i, data) in dirty {
            disk.write_at(i * BLOCK, &data)?;
        }
        Ok(())
    }

    fn read(&self, disk: &Disk, at: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut s = self.state.lock().map_err(|_| poisoned())?;
        if s.in_fat(at, buf.len()) {
            let mut done = 0usize;
            while done < buf.len() {
                let pos = at + done as u64;
                let b = pos / BLOCK;
                let off = (pos % BLOCK) as usize;
                let block = s.block(disk, b)?;
                let n = (block.data.len() - off).min(buf.len() - done);
                buf[done..done + n].copy_from_slice(&block.data[off..off + n]);
                done += n;
            }
            return Ok(());
        }
        let (p0, p1) = (s.pending_at, s.pending_at + s.pending.len() as u64);
        if !s.pending.is_empty() && at < p1 && p0 < at + buf.len() as u64 {
            s.flush_pending(disk)?;
        }
        drop(s);
        disk.read_at(at, buf)
    }

    fn write(&self, disk: &Disk, at: u64, buf: &[u8]) -> io::Result<()> {
        let mut s = self.state.lock().map_err(|_| poisoned())?;
        if s.in_fat(at, buf.len()) {
            let mut done = 0usize;
            while done < buf.len() {
                let pos = at + done as u64;
                let b = pos / BLOCK;
                let off = (pos % BLOCK) as usize;
                let block = s.block(disk, b)?;
                let n = (block.data.len() - off).min(buf.len() - done);
                block.data[off..off + n].copy_from_slice(&buf[done..done + n]);
                block.dirty = true;
                done += n;
            }
            return Ok(());
        }
        let end = s.pending_at + s.pending.len() as u64;
        if !s.pending.is_empty() && at == end && s.pending.len() + buf.len() <= COMBINE {
            s.pending.extend_from_slice(buf);
            return Ok(());
        }
        // Anything else goes after what is pending, in order.
        s.flush_pending(disk)?;
        if buf.len() >= COMBINE {
            drop(s);
            return disk.write_at(at, buf);
        }
        s.pending_at = at;
        s.pending.extend_from_slice(buf);
        Ok(())
    }
}

/// `Read + Write + Seek` over the volume, for fatfs.
pub(crate) struct VolumeIo<'a> {
    pub disk: Disk<'a>,
    pub cache: &'a IoCache,
    /// Volume length and current position.
    pub len: u64,
    pub pos: u64,
    /// Set to the volume offset of the first read after it is reset to `u64::MAX`: how the
    /// first cluster of a file or directory is learned.
    pub probe: Option<&'a AtomicU64>,
}

impl Read for VolumeIo<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.len.saturating_sub(self.pos)) as usize;
        if n == 0 {
            return Ok(0);
        }
        if let Some(p) = self.probe {
            let _ = p.compare_exchange(u64::MAX, self.pos, Ordering::Relaxed, Ordering::Relaxed);
        }
        self.cache.read(&self.disk, self.pos, &mut buf[..n])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for VolumeIo<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.pos.checked_add(buf.len() as u64).is_none_or(|e| e > self.len) {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "write past the end of the store volume"));
        }
        self.cache.write(&self.disk, self.pos, buf)?;
        self.pos += buf.len() as u64;
        Ok(buf.len())
    }

    /// fatfs calls this when a file is flushed: everything cached goes to the file.
    fn flush(&mut self) -> io::Result<()> {
        self.cache.flush(&self.disk)
    }
}

impl Seek for VolumeIo<'_> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    #[test]
    fn cached_fat_and_combined_writes_reach_the_file_on_flush() {
        let f = tempfile::tempfile().unwrap();
        f.set_len(64 * 1024).unwrap();
        let cache = IoCache::new((4096, 12288));
        let disk = Disk { file: &f, start: 0, budget: None };
        cache.write(&disk, 5000, b"fat!").unwrap();
        cache.write(&disk, 20000, b"ab").unwrap();
        cache.write(&disk, 20002, b"cd").unwrap();
        let mut b = [0u8; 4];
        cache.read(&disk, 5000, &mut b).unwrap();
        assert_eq!(&b, b"fat!");
        // Not in the file yet, except what a read had to push out.
        f.read_exact_at(&mut b, 5000).unwrap();
        assert_eq!(b, [0; 4]);
        cache.read(&disk, 20001, &mut b[..2]).unwrap();
        assert_eq!(&b[..2], b"bc");
        cache.write(&disk, 30000, b"xy").unwrap();
        cache.flush(&disk).unwrap();
        let mut all = vec![0u8; 64 * 1024];
        f.read_exact_at(&mut all, 0).unwrap();
        assert_eq!(&all[5000..5004], b"fat!");
        assert_eq!(&all[20000..20004], b"abcd");
        assert_eq!(&all[30000..30002], b"xy");
    }
}
