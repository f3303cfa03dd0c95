//! A `Read + Seek` view over a byte range of a disk, with a small block cache.
//!
//! The filesystem readers (and the GPT/MBR crates) see a partition as a stream starting at 0.
//! `ntfs` has no cache of its own and reads a few bytes at a time, so small reads go through
//! a handful of cached 64 KiB blocks; large reads (streaming a file out) bypass the cache.
//! The view refuses to write: `Write` is only implemented because `fatfs` asks for it.

use std::io::{self, Read, Seek, SeekFrom, Write};

use crate::disk::device::SharedDisk;
use crate::disk::write::range::seek_position;

const BLOCK: u64 = 64 * 1024;
const CACHED_BLOCKS: usize = 32;

/// Bytes `start .. start + len` of a disk, read-only.
pub struct RangeReader {
    disk: SharedDisk,
    start: u64,
    len: u64,
    pos: u64,
    cache: Vec<CachedBlock>,
    tick: u64,
}

struct CachedBlock {
    index: u64,
    data: Vec<u8>,
    used: u64,
}

impl std::fmt::Debug for RangeReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RangeReader")
            .field("start", &self.start)
            .field("len", &self.len)
            .field("pos", &self.pos)
            .finish()
    }
}

impl RangeReader {
    /// A view of `len` bytes from byte `start` of `disk`. The range may extend past the end of
    /// the disk (a truncated image); reads there fail with `UnexpectedEof`.
    pub fn new(disk: SharedDisk, start: u64, len: u64) -> Self {
        let len = len.min(u64::MAX - start);
        RangeReader { disk, start, len, pos: 0, cache: Vec::new(), tick: 0 }
    }

    /// The whole disk.
    pub fn whole(disk: SharedDisk) -> Self {
        let len = disk.size();
        Self::new(disk, 0, len)
    }

    /// Length of the view in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Where the view starts on the disk.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// The disk under the view.
    pub fn disk(&self) -> &SharedDisk {
        &self.disk
    }

    /// Fills `buf` from `offset` within the view; fails unless every byte is inside the view
    /// and on the disk.
    pub fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let end = offset.checked_add(buf.len() as u64).filter(|end| *end <= self.len);
        if end.is_none() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "reading {} bytes at byte {offset} of a {}-byte range at disk byte {}",
                    buf.len(),
                    self.len,
                    self.start
                ),
            ));
        }
        if buf.len() as u64 >= BLOCK {
            return self.disk.read_exact_at(self.start + offset, buf);
        }
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset + done as u64;
            let index = at / BLOCK;
            let within = (at % BLOCK) as usize;
            let block = self.block(index)?;
            let n = (buf.len() - done).min(block.len().saturating_sub(within));
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "disk byte {} is past the end of the disk ({} bytes)",
                        self.start + at,
                        self.disk.size()
                    ),
                ));
            }
            buf[done..done + n].copy_from_slice(&block[within..within + n]);
            done += n;
        }
        Ok(())
    }

    /// Block `index` of the view, as much of it as lies inside both the view and the disk.
    fn block(&mut self, index: u64) -> io::Result<&[u8]> {
        self.tick += 1;
        let tick = self.tick;
        if let Some(i) = self.cache.iter().position(|b| b.index == index) {
            self.cache[i].used = tick;
            return Ok(&self.cache[i].data);
        }
        let from = index * BLOCK;
        let view_end = self.len.min(from.saturating_add(BLOCK));
        let disk_end = self.disk.size().saturating_sub(self.start);
        let end = view_end.min(disk_end).max(from);
        let mut data = vec![0u8; (end - from) as usize];
        self.disk.read_exact_at(self.start + from, &mut data)?;
        let slot = if self.cache.len() < CACHED_BLOCKS {
            self.cache.push(CachedBlock { index, data, used: tick });
            self.cache.len() - 1
        } else {
            let i = self
                .cache
                .iter()
                .enumerate()
                .min_by_key(|(_, b)| b.used)
                .map(|(i, _)| i)
                .unwrap_or(0);
            self.cache[i] = CachedBlock { index, data, used: tick };
            i
        };
        Ok(&self.cache[slot].data)
    }
}

impl Read for RangeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        let n = (buf.len() as u64).min(left) as usize;
        if n == 0 {
            return Ok(0);
        }
        self.read_exact_at(self.pos, &mut buf[..n])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for RangeReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = seek_position(self.pos, self.len, to)?;
        Ok(self.pos)
    }
}

/// Always fails: the inventory and capture never write through a reader.
impl Write for RangeReader {
    fn write(&mut self, _buf: &[u8]) -> io::Result<usize> {
        Err(io::Error::new(io::ErrorKind::PermissionDenied, "the disk is opened read-only"))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ext4_view::Ext4Read for RangeReader {
    fn read(
        &mut self,
        start_byte: u64,
        dst: &mut [u8],
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync + 'static>> {
        self.read_exact_at(start_byte, dst).map_err(Box::from)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::disk::device::MemDisk;

    fn disk(n: usize) -> SharedDisk {
        Arc::new(MemDisk((0..n).map(|i| (i % 251) as u8).collect()))
    }

    #[test]
    fn reads_across_cache_blocks_and_bypass() {
        let d = disk(300_000);
        let mut r = RangeReader::new(d, 1000, 250_000);
        let mut b = vec![0u8; 70_000];
        r.seek(SeekFrom::Start(60_000)).unwrap();
        r.read_exact(&mut b).unwrap();
        assert!(b.iter().enumerate().all(|(i, v)| *v == ((61_000 + i) % 251) as u8));
        let mut small = [0u8; 10];
        r.seek(SeekFrom::Start(65_530)).unwrap();
        r.read_exact(&mut small).unwrap();
        assert!(small.iter().enumerate().all(|(i, v)| *v == ((66_530 + i) % 251) as u8));
        r.seek(SeekFrom::End(-3)).unwrap();
        assert_eq!(r.read(&mut small).unwrap(), 3);
        assert_eq!(r.read(&mut small).unwrap(), 0);
        assert!(r.write(&[1]).is_err());
    }

    #[test]
    fn range_past_disk_end_fails_cleanly() {
        let d = disk(10_000);
        let mut r = RangeReader::new(d, 8_000, 4_000);
        let mut b = [0u8; 100];
        r.read_exact_at(1_900, &mut b[..100]).unwrap();
        assert!(r.read_exact_at(1_950, &mut b).is_err());
        assert!(r.read_exact_at(u64::MAX - 5, &mut b).is_err());
        let mut r = RangeReader::new(disk(10), u64::MAX - 1, u64::MAX);
        assert!(r.read_exact_at(0, &mut b[..1]).is_err());
        assert!(r.seek(SeekFrom::Current(-1)).is_err());
    }
}
