//! A table write as data: the exact bytes to put at exact offsets. The table writers produce a
//! [`Patch`] without touching the disk (they see it through an [`Overlay`]); the caller saves
//! what the patch overwrites (a carve's snapshot), then writes it, syncs, and reads it back.

use std::collections::BTreeMap;
use std::io::{self, Read, Seek, SeekFrom, Write};

use super::device::WriteAt;
use super::range::seek_position;
use crate::disk::device::{ReadAt, SharedDisk};

/// Bytes to write, by disk offset. Later writes to the same offset replace earlier ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Patch {
    pub writes: BTreeMap<u64, Vec<u8>>,
}

impl Patch {
    pub fn put(&mut self, at: u64, bytes: Vec<u8>) {
        self.writes.insert(at, bytes);
    }

    /// `(offset, length)` of every write.
    pub fn ranges(&self) -> Vec<(u64, u64)> {
        self.writes.iter().map(|(at, b)| (*at, b.len() as u64)).collect()
    }

    /// Copies the pending bytes that fall into `lo .. lo + buf.len()` over `buf` (which holds
    /// the disk's bytes there).
    pub fn overlay(&self, lo: u64, buf: &mut [u8]) {
        let hi = lo + buf.len() as u64;
        for (at, bytes) in self.writes.range(..hi) {
            let end = at + bytes.len() as u64;
            if end <= lo {
                continue;
            }
            let s = (*at).max(lo);
            let e = end.min(hi);
            buf[(s - lo) as usize..(e - lo) as usize].copy_from_slice(&bytes[(s - at) as usize..(e - at) as usize]);
        }
    }

    /// Writes every piece, syncs, and reads each back.
    pub fn write_to(&self, dev: &dyn WriteAt) -> io::Result<()> {
        for (at, bytes) in &self.writes {
            dev.write_exact_at(*at, bytes)?;
        }
        dev.sync()?;
        for (at, bytes) in &self.writes {
            let mut back = vec![0u8; bytes.len()];
            dev.read_back_at(*at, &mut back)?;
            if &back != bytes {
                return Err(io::Error::other(format!(
                    "read-back of {} bytes at byte {at} differs from what was written",
                    bytes.len()
                )));
            }
        }
        Ok(())
    }
}

/// A disk seen through pending writes: reads return the written bytes where there are any.
/// Used to run the `gpt` crate's writers without writing anything.
pub struct Overlay {
    base: SharedDisk,
    pos: u64,
    pub patch: Patch,
}

impl std::fmt::Debug for Overlay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Overlay({} bytes, {} pending writes)", self.base.size(), self.patch.writes.len())
    }
}

impl Overlay {
    pub fn new(base: SharedDisk) -> Self {
        Overlay { base, pos: 0, patch: Patch::default() }
    }
}

impl Read for Overlay {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.base.size().saturating_sub(self.pos);
        let n = (buf.len() as u64).min(left) as usize;
        if n == 0 {
            return Ok(0);
        }
        let buf = &mut buf[..n];
        self.base.read_exact_at(self.pos, buf)?;
        self.patch.overlay(self.pos, buf);
        self.pos += n as u64;
        Ok(n)
    }
}

/// Positioned reads see the pending writes too: a table reader can read the disk as the patch
/// would leave it (or, with a saved table as the patch, as it was).
impl ReadAt for Overlay {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.base.read_exact_at(offset, buf)?;
        self.patch.overlay(offset, buf);
        Ok(())
    }
    fn size(&self) -> u64 {
        self.base.size()
    }
}

impl Write for Overlay {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.pos.checked_add(buf.len() as u64).is_none_or(|e| e > self.base.size()) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "write past the end of the disk"));
        }
        // Merge into an existing piece at the same offset only; the writers write whole
        // sectors or whole arrays, so pieces do not partly overlap.
        self.patch.put(self.pos, buf.to_vec());
        self.pos += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for Overlay {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = seek_position(self.pos, self.base.size(), to)?;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::disk::device::MemDisk;

    #[test]
    fn reads_see_pending_writes() {
        let mut o = Overlay::new(Arc::new(MemDisk(vec![1u8; 100])));
        o.seek(SeekFrom::Start(10)).unwrap();
        o.write_all(&[9, 9]).unwrap();
        o.seek(SeekFrom::Start(8)).unwrap();
        let mut b = [0u8; 6];
        o.read_exact(&mut b).unwrap();
        assert_eq!(b, [1, 1, 9, 9, 1, 1]);
        o.seek(SeekFrom::Start(99)).unwrap();
        assert!(o.write(&[1, 2]).is_err());
        assert_eq!(o.patch.ranges(), vec![(10, 2)]);
        let mut b = [0u8; 4];
        ReadAt::read_exact_at(&o, 9, &mut b).unwrap();
        assert_eq!(b, [1, 9, 9, 1], "positioned reads see the patch too");
        assert!(ReadAt::read_exact_at(&o, 98, &mut b).is_err());
    }
}
