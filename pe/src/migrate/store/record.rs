//! One record's payload unpacked and checked: decompressed to its raw length, CRC-32 against
//! its header. Shared by reading an entry and by verification.

use std::io;

use super::format::RecordHeader;

/// Reusable buffers and zstd context for reading records.
pub(crate) struct Scratch {
    pub dec: zstd::bulk::Decompressor<'static>,
    pub stored: Vec<u8>,
    pub raw: Vec<u8>,
}

impl Scratch {
    pub(crate) fn new() -> io::Result<Scratch> {
        Ok(Scratch { dec: zstd::bulk::Decompressor::new()?, stored: Vec::new(), raw: Vec::new() })
    }

    /// Decompresses `self.stored` into `self.raw` and checks length and CRC-32 against `h`.
    pub(crate) fn unpack(&mut self, h: &RecordHeader) -> Result<(), String> {
        let stored = std::mem::take(&mut self.stored);
        let r = self.unpack_from(&stored[..h.stored_len as usize], h);
        self.stored = stored;
        r
    }

    /// Decompresses `stored` into `self.raw` and checks length and CRC-32 against `h`.
    pub(crate) fn unpack_from(&mut self, stored: &[u8], h: &RecordHeader) -> Result<(), String> {
        self.raw.clear();
        self.raw.reserve(h.raw_len as usize);
        let n = self
            .dec
            .decompress_to_buffer(stored, &mut self.raw)
            .map_err(|e| format!("the zstd frame does not decompress: {e}"))?;
        if n != h.raw_len as usize {
            return Err(format!("the record decompresses to {n} bytes, its header says {}", h.raw_len));
        }
        let crc = crc32fast::hash(&self.raw);
        if crc != h.raw_crc {
            return Err(format!("CRC-32 {crc:08x} of the data, the record says {:08x}", h.raw_crc));
        }
        Ok(())
    }
}
