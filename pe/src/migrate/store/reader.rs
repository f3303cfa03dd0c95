//! Streaming one entry's data out of the store, with its holes, checking every record's
//! CRC-32, the entry's CRC-32 and its size. This is what restore uses.

use std::io;

use super::error::StoreError;
use super::format::{self, RecordHeader, RecordKind, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN};
use super::manifest::Manifest;
use super::record::Scratch;
use super::volume::Store;

/// Where [`Store::read_entry`] puts an entry's data. Calls come in increasing offset order
/// and cover `0 .. size` exactly; then `finish` is called, only if every check passed.
pub trait EntrySink {
    /// `bytes` at `offset` of the entry's data.
    fn data(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()>;
    /// `len` zero bytes at `offset` that were recorded as a hole: a sink writing a file
    /// seeks over them (leaving a sparse region). The default writes zeros through `data`.
    fn hole(&mut self, offset: u64, len: u64) -> io::Result<()> {
        let zeros = vec![0u8; len.min(1 << 20) as usize];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(zeros.len() as u64) as usize;
            self.data(offset + done, &zeros[..n])?;
            done += n as u64;
        }
        Ok(())
    }
    /// All `size` bytes arrived and matched the checksums. A file sink sets the file length
    /// here, so a trailing hole is kept.
    fn finish(&mut self, _size: u64) -> io::Result<()> {
        Ok(())
    }
}

/// Collects the data in memory (tests, small files).
impl EntrySink for Vec<u8> {
    fn data(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        if offset != self.len() as u64 {
            return Err(io::Error::other("out-of-order data"));
        }
        self.extend_from_slice(bytes);
        Ok(())
    }
    fn hole(&mut self, offset: u64, len: u64) -> io::Result<()> {
        if offset != self.len() as u64 {
            return Err(io::Error::other("out-of-order data"));
        }
        let len = usize::try_from(len).map_err(|_| io::Error::other("too large for memory"))?;
        self.resize(self.len() + len, 0);
        Ok(())
    }
}

/// Writes an entry into a regular file: positioned writes, holes skipped, the length set at
/// the end (so holes stay sparse). The file should be new and empty.
pub struct FileSink<'a>(pub &'a std::fs::File);

impl EntrySink for FileSink<'_> {
    fn data(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(self.0, bytes, offset)
    }
    fn hole(&mut self, _offset: u64, _len: u64) -> io::Result<()> {
        Ok(())
    }
    fn finish(&mut self, size: u64) -> io::Result<()> {
        self.0.set_len(size)
    }
}

impl Store {
    /// Streams the data of `manifest.entries[index]` into `out`, checking each record (header
    /// CRC, entry id, offset, CRC-32 of the data) and at the end the entry's CRC-32 and size;
    /// then calls `out.finish(size)`. Returns the size. On `Err` the sink may hold part of
    /// the data: discard it. `manifest` must be this store's ([`Store::manifest`]).
    pub fn read_entry(
        &mut self,
        manifest: &Manifest,
        index: usize,
        out: &mut dyn EntrySink,
    ) -> Result<u64, StoreError> {
        let store = self.describe();
        let e = manifest.entries.get(index).ok_or(StoreError::NoEntry { store: store.clone(), index })?;
        if e.data.is_none() {
            out.finish(0).map_err(|source| StoreError::Sink { store, entry: e.entry.source.to_string(), source })?;
            return Ok(0);
        }
        let mut scratch = match self.scratch.take() {
            Some(s) => s,
            None => Scratch::new().map_err(|e| StoreError::Io {
                store: store.clone(),
                what: "starting zstd".into(),
                source: e,
            })?,
        };
        let r = self.read_records(manifest, index, out, &mut scratch);
        self.scratch = Some(scratch);
        r
    }

    fn read_records(
        &mut self,
        manifest: &Manifest,
        index: usize,
        out: &mut dyn EntrySink,
        scratch: &mut Scratch,
    ) -> Result<u64, StoreError> {
        let store = self.describe();
        let capture = self.selected();
        let e = &manifest.entries[index];
        let size = e.entry.size;
        let Some(loc) = e.data else { return Ok(0) };
        let (mut seg, mut at) = (loc.segment, loc.offset);
        let mut done = 0u64;
        let mut crc = crc32fast::Hasher::new();
        for _ in 0..loc.records {
            let damaged = |seg: u32, at: u64, detail: String| StoreError::Damaged {
                store: store.clone(),
                entry: e.entry.source.to_string(),
                segment: format!("{capture}/{}", format::segment_name(seg)),
                offset: at,
                detail,
            };
            let seg_size = manifest.segments.get(seg as usize - 1).map_or(0, |s| s.bytes);
            if at >= seg_size {
                seg += 1;
                at = SEGMENT_HEADER_LEN as u64;
                if seg as usize > manifest.segments.len() {
                    return Err(damaged(seg - 1, at, "its records run past the last segment".into()));
                }
            }
            let mut hb = [0u8; RECORD_HEADER_LEN];
            self.read_segment(seg, at, &mut hb)?;
            let h = RecordHeader::decode(&hb, manifest.chunk_size).map_err(|d| damaged(seg, at, d))?;
            if h.entry != e.id || h.offset != done {
                return Err(damaged(
                    seg,
                    at,
                    format!(
                        "a record of entry {} at offset {} where entry {} offset {done} belongs",
                        h.entry, h.offset, e.id
                    ),
                ));
            }
            if h.end() > size {
                return Err(damaged(seg, at, format!("a record ends at byte {}, past the size {size}", h.end())));
            }
            let sink = |source| StoreError::Sink { store: store.clone(), entry: e.entry.source.to_string(), source };
            match h.kind {
                RecordKind::Zstd => {
                    scratch.stored.resize(h.stored_len as usize, 0);
                    self.read_segment(seg, at + RECORD_HEADER_LEN as u64, &mut scratch.stored)?;
                    scratch.unpack(&h).map_err(|d| damaged(seg, at, d))?;
                    crc.update(&scratch.raw);
                    out.data(h.offset, &scratch.raw).map_err(sink)?;
                }
                RecordKind::Hole => {
                    let zeros = format::zeros_crc(u64::from(h.raw_len));
                    if h.raw_crc != zeros.clone().finalize() {
                        return Err(damaged(seg, at, "a hole record with the CRC-32 of non-zero data".into()));
                    }
                    crc.combine(&zeros);
                    out.hole(h.offset, u64::from(h.raw_len)).map_err(sink)?;
                }
            }
            let running = crc.clone().finalize();
            if running != h.running_crc {
                return Err(damaged(
                    seg,
                    at,
                    format!("running CRC-32 {running:08x}, the record says {:08x}", h.running_crc),
                ));
            }
            done = h.end();
            at += h.total_len();
        }
        let fail = |detail: String| StoreError::Damaged {
            store: store.clone(),
            entry: e.entry.source.to_string(),
            segment: format!("{capture}/{}", format::segment_name(loc.segment)),
            offset: loc.offset,
            detail,
        };
        if done != size {
            return Err(fail(format!("its records hold {done} bytes, the manifest says {size}")));
        }
        let got = crc.finalize();
        if got != e.crc32 {
            return Err(fail(format!("CRC-32 {got:08x} of the data, the manifest says {:08x}", e.crc32)));
        }
        out.finish(size).map_err(|source| StoreError::Sink { store, entry: e.entry.source.to_string(), source })?;
        Ok(size)
    }
}
