//! `Read + Write + Seek` over a byte range of a disk opened for writing: what fatfs needs to
//! format or write a FAT volume inside a partition. Writes past the range are refused.

use std::io::{self, Read, Seek, SeekFrom, Write};

use super::device::WriteAt;

/// Bytes `start .. start + len` of a writable disk, as a stream from 0.
pub struct RwRange<'a> {
    dev: &'a dyn WriteAt,
    start: u64,
    len: u64,
    pos: u64,
}

impl<'a> RwRange<'a> {
    pub fn new(dev: &'a dyn WriteAt, start: u64, len: u64) -> Self {
        RwRange { dev, start, len, pos: 0 }
    }
}

impl Read for RwRange<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.len.saturating_sub(self.pos)) as usize;
        if n == 0 {
            return Ok(0);
        }
        self.dev.read_back_at(self.start + self.pos, &mut buf[..n])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for RwRange<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.pos.checked_add(buf.len() as u64).is_none_or(|e| e > self.len) {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "write past the end of the range"));
        }
        self.dev.write_exact_at(self.start + self.pos, buf)?;
        self.pos += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for RwRange<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = seek_position(self.pos, self.len, to)?;
        Ok(self.pos)
    }
}

/// Where `to` leads from `pos` in a stream of `len` bytes (past the end is allowed, as for a
/// file); every `Seek` over a byte range of a disk goes through this.
pub fn seek_position(pos: u64, len: u64, to: SeekFrom) -> io::Result<u64> {
    let p = match to {
        SeekFrom::Start(p) => Some(p),
        SeekFrom::End(d) => len.checked_add_signed(d),
        SeekFrom::Current(d) => pos.checked_add_signed(d),
    };
    p.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before byte 0 or past 2^64"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_is_a_stream_from_zero_and_stays_inside() {
        let f = tempfile::tempfile().unwrap();
        f.set_len(100).unwrap();
        let mut r = RwRange::new(&f, 10, 20);
        r.seek(SeekFrom::End(-2)).unwrap();
        r.write_all(b"xy").unwrap();
        assert!(r.write(b"z").is_err());
        r.seek(SeekFrom::Start(18)).unwrap();
        let mut b = Vec::new();
        r.read_to_end(&mut b).unwrap();
        assert_eq!(b, b"xy");
        let mut all = [0u8; 100];
        f.read_back_at(0, &mut all).unwrap();
        assert_eq!(&all[28..30], b"xy");
    }
}
