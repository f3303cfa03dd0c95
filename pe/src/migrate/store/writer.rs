//! Turning checksummed, compressed chunks (in capture order) into records and cutting the
//! records into segments: holes merged, segments closed at the size limit, each complete
//! segment followed by a resume state. Runs on one thread with the volume mounted.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufWriter, Write};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::format::{self, RecordHeader, RecordKind, SegmentHeader, HOLE_MAX};
use super::manifest::{hex, DataLoc, SegmentInfo};
use super::progress::{self, DoneSegment, Failed, Position, ResumeState};
use super::dir::Dir;
use super::error::StoreError;
use super::io::VolumeIo;
use super::volume::Store;

/// What a compression worker made of one chunk of an entry's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Body {
    /// Below the resume point: already in a complete segment; only its CRC counts.
    Skip,
    /// All zero bytes: becomes (part of) a hole record.
    Zeros,
    /// A zstd frame: `len` bytes at `start` of the batch's frame buffer.
    Zstd { start: usize, len: usize },
}

/// One chunk of an entry's data, at most [`format::CHUNK`] bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Chunk {
    pub id: u32,
    pub offset: u64,
    pub raw_len: u32,
    pub raw_crc: u32,
    pub body: Body,
    /// The last chunk of the entry (it may be empty).
    pub end: bool,
}

/// The ordered input of the packer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item {
    Chunk(Chunk),
    /// Reading the entry failed part-way: its records so far become orphans.
    Failed {
        id: u32,
        detail: String,
    },
}

/// Compressed items of many small files or one chunk of a large one, with the buffer
/// holding their frames.
#[derive(Debug, Default)]
pub(crate) struct PackedBatch {
    pub items: Vec<Item>,
    pub frames: Vec<u8>,
}

/// Frames at least this large are written straight to the segment file; smaller writes
/// are gathered in a buffer of this size.
const DIRECT: usize = 256 * 1024;

/// Buffers handed between threads and reused.
#[derive(Default)]
pub(crate) struct Pool(Mutex<Vec<Vec<u8>>>);

impl Pool {
    pub fn get(&self, capacity: usize) -> Vec<u8> {
        let v = self.0.lock().ok().and_then(|mut p| p.pop());
        let mut v = v.unwrap_or_default();
        v.clear();
        v.reserve(capacity);
        v
    }
    /// A buffer of exactly `len` bytes whose contents are left from earlier use (only new
    /// bytes are zeroed): for output that is written before it is read.
    pub fn get_sized(&self, len: usize) -> Vec<u8> {
        let v = self.0.lock().ok().and_then(|mut p| p.pop());
        let mut v = v.unwrap_or_default();
        if v.len() < len {
            v.resize(len, 0);
        }
        v.truncate(len);
        v
    }

    pub fn put(&self, v: Vec<u8>) {
        if let Ok(mut p) = self.0.lock() {
            if p.len() < 64 {
                p.push(v);
            }
        }
    }
}

/// A write to the store failed.
#[derive(Debug)]
pub(crate) enum PackError {
    /// The volume has no free cluster left (or the device is full).
    Full {
        detail: String,
    },
    Store(StoreError),
}

impl From<StoreError> for PackError {
    fn from(e: StoreError) -> Self {
        PackError::Store(e)
    }
}

/// Everything the manifest needs from the records.
#[derive(Debug, Default)]
pub(crate) struct Packed {
    /// Segments and failed entries, as in the resume state.
    pub state: Option<ResumeState>,
    pub locs: BTreeMap<u32, DataLoc>,
    /// Entries whose data ended: (size, CRC-32).
    pub finished: BTreeMap<u32, (u64, u32)>,
    pub hole_bytes: u64,
}

struct OpenSegment<'a, 's> {
    number: u32,
    file: BufWriter<fatfs::File<'a, VolumeIo<'s>>>,
    bytes: u64,
    records: u32,
    sha: Sha256,
}

struct Hole {
    id: u32,
    offset: u64,
    len: u64,
    running: u32,
}

/// Where packing starts: the layout, the resume state so far (no segments for a fresh
/// capture) and what the scan of those segments found.
pub(crate) struct PackStart {
    pub limit: u64,
    pub capture_id: [u8; 12],
    pub state: ResumeState,
    pub packed: Packed,
    /// After a resume: (entry, offset, running CRC) the re-read must reach.
    pub check: Option<(u32, u64, u32)>,
}

/// Writes records into segments of `capture/`.
pub(crate) struct Packer<'a, 's> {
    store: &'s Store,
    dir: &'a Dir<'a, 's>,
    pool: &'a Pool,
    limit: u64,
    capture_id: [u8; 12],
    state: ResumeState,
    seg: Option<OpenSegment<'a, 's>>,
    cur: Option<u32>,
    crc: crc32fast::Hasher,
    hole: Option<Hole>,
    /// An entry whose further chunks are dropped (it changed since the interrupted run).
    dead: Option<u32>,
    /// After a resume: (entry, offset, running CRC) the re-read must reach.
    check: Option<(u32, u64, u32)>,
    zero_crcs: HashMap<u64, u32>,
    pub out: Packed,
}

fn write_err(store: &Store, what: String) -> impl FnOnce(io::Error) -> PackError + '_ {
    move |e| {
        let text = e.to_string();
        if text.contains("No space left") || e.kind() == io::ErrorKind::StorageFull {
            PackError::Full { detail: format!("{what}: {text}") }
        } else {
            PackError::Store(StoreError::Io { store: store.describe(), what, source: e })
        }
    }
}

impl<'a, 's> Packer<'a, 's> {
    /// A packer that continues after `start.state.segments`.
    pub fn new(store: &'s Store, dir: &'a Dir<'a, 's>, pool: &'a Pool, start: PackStart) -> Packer<'a, 's> {
        Packer {
            store,
            dir,
            pool,
            limit: start.limit,
            capture_id: start.capture_id,
            state: start.state,
            seg: None,
            cur: None,
            crc: crc32fast::Hasher::new(),
            hole: None,
            dead: None,
            check: start.check,
            zero_crcs: HashMap::new(),
            out: start.packed,
        }
    }

    /// Takes the next batch in capture order; its buffer goes back to the pool.
    pub fn take(&mut self, batch: PackedBatch) -> Result<(), PackError> {
        let PackedBatch { items, frames } = batch;
        let mut r = Ok(());
        for item in items {
            r = match item {
                Item::Chunk(c) => self.chunk(c, &frames),
                Item::Failed { id, detail } => {
                    self.fail(id, detail);
                    Ok(())
                }
            };
            if r.is_err() {
                break;
            }
        }
        self.pool.put(frames);
        r
    }

    fn fail(&mut self, id: u32, detail: String) {
        if self.hole.as_ref().is_some_and(|h| h.id == id) {
            self.hole = None;
        }
        if self.cur == Some(id) {
            self.cur = None;
        }
        if self.check.is_some_and(|c| c.0 == id) {
            self.check = None;
        }
        self.out.locs.remove(&id);
        self.out.finished.remove(&id);
        if !self.state.failed.iter().any(|f| f.id == id) {
            self.state.failed.push(Failed { id, detail });
        }
        self.dead = Some(id);
    }

    fn chunk(&mut self, c: Chunk, frames: &[u8]) -> Result<(), PackError> {
        if self.dead == Some(c.id) {
            return Ok(());
        }
        if self.cur != Some(c.id) {
            self.flush_hole()?;
            self.cur = Some(c.id);
            self.crc = crc32fast::Hasher::new();
        }
        if c.raw_len > 0 {
            let part = crc32fast::Hasher::new_with_initial_len(c.raw_crc, u64::from(c.raw_len));
            if c.offset == 0 {
                self.crc = part;
            } else {
                self.crc.combine(&part);
            }
        }
        let end = c.offset + u64::from(c.raw_len);
        let running = self.crc.clone().finalize();
        if let Some((id, at, want)) = self.check.filter(|k| k.0 == c.id) {
            let skip = matches!(c.body, Body::Skip);
            if end == at && skip && running == want {
                self.check = None;
            } else if end >= at || !skip || c.end {
                self.fail(
                    id,
                    format!(
                        "its data differs from what an interrupted run of this capture read up to byte {at}; \
                         it was not captured"
                    ),
                );
                return Ok(());
            }
        }
        match c.body {
            Body::Skip => {}
            Body::Zeros => {
                let joins = self.hole.as_ref().is_some_and(|h| {
                    h.id == c.id && h.offset + h.len == c.offset && h.len + u64::from(c.raw_len) <= u64::from(HOLE_MAX)
                });
                if joins {
                    let h = self.hole.as_mut().expect("hole");
                    h.len += u64::from(c.raw_len);
                    h.running = running;
                } else {
                    self.flush_hole()?;
                    self.hole = Some(Hole { id: c.id, offset: c.offset, len: u64::from(c.raw_len), running });
                }
                self.out.hole_bytes += u64::from(c.raw_len);
            }
            Body::Zstd { start, len } => {
                let frame = frames.get(start..start + len).ok_or_else(|| {
                    PackError::Store(StoreError::Io {
                        store: self.store.describe(),
                        what: "packing a record".into(),
                        source: io::Error::other("a frame outside its batch"),
                    })
                })?;
                self.flush_hole()?;
                let h = RecordHeader {
                    kind: RecordKind::Zstd,
                    entry: c.id,
                    raw_crc: c.raw_crc,
                    offset: c.offset,
                    raw_len: c.raw_len,
                    stored_len: frame.len() as u32,
                    running_crc: running,
                };
                self.put(&h, frame)?;
            }
        }
        if c.end {
            self.flush_hole()?;
            self.out.finished.insert(c.id, (end, running));
            self.cur = None;
        }
        Ok(())
    }

    fn flush_hole(&mut self) -> Result<(), PackError> {
        let Some(h) = self.hole.take() else { return Ok(()) };
        let raw_crc = *self.zero_crcs.entry(h.len).or_insert_with(|| format::zeros_crc(h.len).finalize());
        let header = RecordHeader {
            kind: RecordKind::Hole,
            entry: h.id,
            raw_crc,
            offset: h.offset,
            raw_len: h.len as u32,
            stored_len: 0,
            running_crc: h.running,
        };
        self.put(&header, &[])
    }

    /// Appends one record, closing the segment first if the record would take it over the
    /// limit (a segment holds at least one record).
    fn put(&mut self, h: &RecordHeader, payload: &[u8]) -> Result<(), PackError> {
        let len = h.total_len();
        if self.seg.as_ref().is_some_and(|s| s.records > 0 && s.bytes + len > self.limit) {
            self.close_segment(Position { entry: h.entry, offset: h.offset })?;
        }
        if self.seg.is_none() {
            self.open_segment()?;
        }
        let store = self.store;
        let s = self.seg.as_mut().expect("open segment");
        let at = s.bytes;
        let hb = h.encode();
        s.sha.update(hb);
        s.sha.update(payload);
        // BufWriter passes writes of at least its capacity straight through (after its
        // buffer): large frames are not copied.
        let r = s.file.write_all(&hb).and_then(|()| s.file.write_all(payload));
        r.map_err(|e| write_err(store, format!("writing {}", store.capture_file(&format::segment_name(s.number))))(e))?;
        s.bytes += len;
        s.records += 1;
        let number = s.number;
        self.out.locs.entry(h.entry).and_modify(|l| l.records += 1).or_insert(DataLoc {
            segment: number,
            offset: at,
            records: 1,
        });
        Ok(())
    }

    fn open_segment(&mut self) -> Result<(), PackError> {
        let number = self.state.segments.len() as u32 + 1;
        let name = format::segment_name(number);
        let err = || write_err(self.store, format!("creating {}", self.store.capture_file(&name)));
        let mut file = self.dir.create_file(&name).map_err(err())?;
        file.truncate().map_err(err())?;
        let header = SegmentHeader { number, capture_id: self.capture_id }.encode();
        file.write_all(&header).map_err(err())?;
        // Records the first cluster in the directory entry now, so a cut leaves a file that
        // can be removed with its clusters.
        file.flush().map_err(err())?;
        let mut sha = Sha256::new();
        sha.update(header);
        self.seg = Some(OpenSegment {
            number,
            file: BufWriter::with_capacity(DIRECT, file),
            bytes: header.len() as u64,
            records: 0,
            sha,
        });
        Ok(())
    }

    /// Finishes the open segment: flush, sync, then the resume state saying where the next
    /// segment starts.
    fn close_segment(&mut self, next: Position) -> Result<(), PackError> {
        let Some(s) = self.seg.take() else { return Ok(()) };
        let name = format::segment_name(s.number);
        let store = self.store;
        let mut file =
            s.file.into_inner().map_err(|e| write_err(store, format!("writing {}", store.capture_file(&name)))(e.into_error()))?;
        file.flush().map_err(write_err(store, format!("closing {}", store.capture_file(&name))))?;
        drop(file);
        self.store.sync()?;
        let info =
            SegmentInfo { name: name.clone(), bytes: s.bytes, sha256: hex(&s.sha.finalize()), records: s.records };
        self.state.segments.push(DoneSegment { info, next });
        self.state.failed.sort_by_key(|f| f.id);
        progress::save(self.dir, &self.state).map_err(write_err(store, store.capture_file("progress.json")))?;
        self.store.sync()?;
        Ok(())
    }

    /// Closes the last segment; `end` is the position after the last entry.
    pub fn finish(mut self, end: Position) -> Result<Packed, PackError> {
        self.flush_hole()?;
        self.close_segment(end)?;
        self.state.failed.sort_by_key(|f| f.id);
        let mut out = self.out;
        out.state = Some(self.state);
        Ok(out)
    }

    /// Bytes in segments so far, complete and open.
    pub fn stored_so_far(&self) -> u64 {
        self.state.segments.iter().map(|s| s.info.bytes).sum::<u64>() + self.seg.as_ref().map_or(0, |s| s.bytes)
    }
}
