//! The capture pipeline. The calling thread reads files (filesystem readers are not `Send`)
//! into batches; worker threads checksum and compress them; one writer thread puts them, in
//! order, into segments through the [`Packer`]. Channels are bounded and credits bound the
//! batches in flight, so memory stays flat whatever the file sizes.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use super::ahead::ReadAhead;
use super::error::CaptureError;
use super::plan::{CaptureOptions, CapturePlan};
use super::resume::Start;
use super::PHASE_CAPTURE;
use crate::fs::FsReader;
use crate::migrate::entry::Kind;
use crate::migrate::store::format::{self, CHUNK};
use crate::migrate::store::progress::Position;
use crate::migrate::store::writer::{Body, Chunk, Item, PackError, PackStart, Packed, PackedBatch, Packer, Pool};
use crate::migrate::store::{Store, StoreError};
use crate::progress::{Cancel, Meter, Sink};

/// Raw data of many small files, or of one chunk of a large file, for the compression
/// workers. Each chunk starts with at least [`CHUNK`] bytes of room, so chunking depends
/// only on the file (a resumed run cuts records exactly as an uninterrupted one).
#[derive(Default)]
struct Batch {
    data: Vec<u8>,
    parts: Vec<Part>,
}

enum Part {
    Data { id: u32, offset: u64, start: usize, len: usize, end: bool, skip: bool },
    Failed { id: u32, detail: String },
}

/// Bytes of raw data a batch can hold, and most parts in one.
const BATCH_BYTES: usize = 2 * CHUNK as usize;
const BATCH_PARTS: usize = 1024;

/// Runs the pipeline from `start` to the end of the plan, or until `cancel` is raised (then
/// the last complete segment's resume state is where a later run goes on).
#[allow(clippy::too_many_arguments)]
pub(super) fn run(
    source: &mut dyn FsReader,
    plan: &CapturePlan,
    store: &Store,
    opts: &CaptureOptions,
    start: Start,
    sink: &dyn Sink,
    cancel: &Cancel,
    free: u64,
) -> Result<Packed, CaptureError> {
    let workers = match opts.workers {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    }
    .clamp(1, 16);
    let pool = Pool::default();
    let frame_pool = Pool::default();
    let (job_tx, job_rx) = sync_channel::<(u64, Batch)>(workers * 2);
    let job_rx = Arc::new(Mutex::new(job_rx));
    let (out_tx, out_rx) = sync_channel::<(u64, PackedBatch)>(workers * 2);
    // Credits bound the batches between the reader and the writer: a stalled worker cannot
    // make the writer's reorder buffer grow.
    let credits = workers * 3 + 2;
    let (credit_tx, credit_rx) = sync_channel::<()>(credits);
    for _ in 0..credits {
        let _ = credit_tx.send(());
    }
    let end = Position { entry: plan.entries.len() as u32, offset: 0 };
    let total: u64 = plan.entries.iter().filter(|e| e.kind == Kind::File).map(|e| e.size).sum();
    let before: u64 =
        plan.entries[..start.next.entry as usize].iter().filter(|e| e.kind == Kind::File).map(|e| e.size).sum();
    let Start { pack, next } = start;
    let meter = Meter::start(sink, PHASE_CAPTURE, total);
    meter.set(before);
    let (written, read, result) = std::thread::scope(|s| {
        for _ in 0..workers {
            let rx = Arc::clone(&job_rx);
            let tx = out_tx.clone();
            let (pool, frame_pool) = (&pool, &frame_pool);
            let level = opts.zstd_level;
            s.spawn(move || worker(&rx, &tx, pool, frame_pool, level));
        }
        drop(job_rx);
        drop(out_tx);
        let (pool, frame_pool) = (&pool, &frame_pool);
        let writer = s.spawn(move || write_all(store, frame_pool, out_rx, &credit_tx, pack, end, cancel));
        let mut reader = Reader {
            tx: job_tx,
            credits: credit_rx,
            seq: 0,
            pool,
            meter: &meter,
            cancel,
            done: before,
            gone: false,
            stopped: false,
            batch: Batch::default(),
        };
        reader.read_all(source, plan, next);
        let read = reader.done - before;
        drop(reader);
        let (written, result) = writer.join().unwrap_or_else(|_| {
            let source = io::Error::other("panicked");
            (
                0,
                Err(PackError::Store(StoreError::Io {
                    store: store.describe(),
                    what: "the store writer".into(),
                    source,
                })),
            )
        });
        (written, read, result)
    });
    match result {
        Ok(p) => Ok(p),
        Err(PackError::Full { detail }) => Err(CaptureError::StoreFull {
            store: store.describe(),
            detail,
            written,
            remaining: total.saturating_sub(before + read) + (BATCH_BYTES * 2 * workers) as u64,
            free,
        }),
        Err(PackError::Store(e)) => Err(e.into()),
    }
}

/// The writer thread: mounts the volume, puts batches in order into segments. Returns the
/// bytes in segments and the result. Stops at a batch when `cancel` is raised, without
/// finishing: the last complete segment's resume state stands.
fn write_all(
    store: &Store,
    pool: &Pool,
    rx: Receiver<(u64, PackedBatch)>,
    credits: &SyncSender<()>,
    start: PackStart,
    end: Position,
    cancel: &Cancel,
) -> (u64, Result<Packed, PackError>) {
    let fs = match store.mount() {
        Ok(fs) => fs,
        Err(e) => return (0, Err(e.into())),
    };
    let mut written = 0u64;
    let r = (|| {
        let dir = store.capture_dir(&fs).map_err(|source| StoreError::Io {
            store: store.describe(),
            what: format!("opening {}/", store.selected()),
            source,
        })?;
        let mut packer = Packer::new(store, &dir, pool, start);
        let mut pending: BTreeMap<u64, PackedBatch> = BTreeMap::new();
        let mut next = 0u64;
        let stopped = || StoreError::Cancelled { store: store.describe() };
        for (seq, batch) in rx.iter() {
            if cancel.is_cancelled() {
                return Err(stopped().into());
            }
            pending.insert(seq, batch);
            while let Some(batch) = pending.remove(&next) {
                let r = packer.take(batch);
                written = packer.stored_so_far();
                r?;
                next += 1;
                let _ = credits.try_send(());
            }
        }
        // The reader stops early only when cancelled (or when this thread failed).
        if cancel.is_cancelled() {
            return Err(stopped().into());
        }
        packer.finish(end)
    })();
    // Returning drops `rx`, which stops the workers, which stops the reader.
    match &r {
        Ok(_) => {
            if let Err(e) = store.unmount(fs) {
                return (written, Err(e.into()));
            }
        }
        // Best effort: the resume state is from the last complete segment anyway.
        Err(_) => {
            let _ = store.unmount(fs);
        }
    }
    (written, r)
}

/// A compression worker: CRC-32, zero test and zstd for each part of a batch.
fn worker(
    rx: &Mutex<Receiver<(u64, Batch)>>,
    tx: &SyncSender<(u64, PackedBatch)>,
    pool: &Pool,
    frame_pool: &Pool,
    level: i32,
) {
    let mut z = zstd::bulk::Compressor::new(level).ok();
    loop {
        let job = match rx.lock() {
            Ok(r) => r.recv(),
            Err(_) => return,
        };
        let Ok((seq, batch)) = job else { return };
        let bound: usize = batch
            .parts
            .iter()
            .map(|p| match p {
                Part::Data { len, .. } => format::zstd_bound(*len),
                Part::Failed { .. } => 0,
            })
            .sum();
        let mut frames = frame_pool.get_sized(bound);
        let mut used = 0usize;
        let mut items = Vec::with_capacity(batch.parts.len());
        for part in batch.parts {
            items.push(match part {
                Part::Failed { id, detail } => Item::Failed { id, detail },
                Part::Data { id, offset, start, len, end, skip } => {
                    let data = &batch.data[start..start + len];
                    let raw_crc = crc32fast::hash(data);
                    let body = if skip || data.is_empty() {
                        Ok(Body::Skip)
                    } else if format::is_zero(data) {
                        Ok(Body::Zeros)
                    } else {
                        match z.as_mut().map(|z| z.compress_to_buffer(data, &mut frames[used..])) {
                            Some(Ok(n)) => {
                                used += n;
                                Ok(Body::Zstd { start: used - n, len: n })
                            }
                            Some(Err(e)) => Err(format!("zstd failed: {e}")),
                            None => Err("zstd could not start".into()),
                        }
                    };
                    match body {
                        Ok(body) => Item::Chunk(Chunk { id, offset, raw_len: len as u32, raw_crc, body, end }),
                        Err(detail) => Item::Failed { id, detail },
                    }
                }
            });
        }
        frames.truncate(used);
        pool.put(batch.data);
        if tx.send((seq, PackedBatch { items, frames })).is_err() {
            return;
        }
    }
}

/// The reading side, on the calling thread.
struct Reader<'p, 'm> {
    tx: SyncSender<(u64, Batch)>,
    /// One per batch the writer has not yet taken.
    credits: Receiver<()>,
    seq: u64,
    pool: &'p Pool,
    meter: &'m Meter<'m>,
    cancel: &'m Cancel,
    done: u64,
    /// The writer stopped (it reports why itself).
    gone: bool,
    /// Cancelled: read nothing more.
    stopped: bool,
    batch: Batch,
}

impl Reader<'_, '_> {
    /// Sends the batch if it is nearly full (`force`: if it has anything).
    fn send(&mut self, force: bool) -> bool {
        // Cut by a fixed size, not the buffer's capacity, so batches do not depend on timing.
        let room = BATCH_BYTES.saturating_sub(self.batch.data.len());
        let full = room < CHUNK as usize || self.batch.parts.len() >= BATCH_PARTS;
        if self.gone || !(full || force && !self.batch.parts.is_empty()) {
            return !self.gone;
        }
        let mut batch = std::mem::take(&mut self.batch);
        self.batch.data = self.pool.get(BATCH_BYTES);
        if batch.data.capacity() < BATCH_BYTES {
            batch.data.reserve(BATCH_BYTES - batch.data.len());
        }
        let seq = self.seq;
        self.seq += 1;
        if self.credits.recv().is_err() || self.tx.send((seq, batch)).is_err() {
            self.gone = true;
        }
        !self.gone
    }

    fn read_all(&mut self, source: &mut dyn FsReader, plan: &CapturePlan, from: Position) {
        self.batch.data = self.pool.get(BATCH_BYTES);
        let mut ahead = ReadAhead::default();
        let n = plan.entries.len() as u64;
        for (i, e) in plan.entries.iter().enumerate().skip(from.entry as usize) {
            if self.cancel.is_cancelled() {
                self.stopped = true;
                return;
            }
            self.meter.entries(i as u64, n, &e.source.to_string());
            if e.kind != Kind::File {
                continue;
            }
            // Every chunk starts with a chunk's room in the batch.
            if !self.send(false) {
                return;
            }
            let id = i as u32;
            let skip_below = if id == from.entry { from.offset } else { 0 };
            let (first_part, seq_before) = (self.batch.parts.len(), self.seq);
            let outcome = {
                let start = self.batch.data.len();
                let held = ahead.take(source, plan, i, from.entry as usize, self.cancel);
                let mut sink = ChunkSink { r: self, id, offset: 0, start, skip_below };
                let read = match held {
                    Some(Ok(data)) => sink.write_all(&data).map_err(|_| None),
                    Some(Err(detail)) => Err(Some(detail)),
                    None => source.read_file(&e.source, &mut sink).map(|_| ()).map_err(|err| Some(err.to_string())),
                };
                read.and_then(|()| sink.part(true).map_err(|_| None))
            };
            match outcome {
                Ok(()) => {}
                Err(Some(_)) | Err(None) if self.gone || self.stopped => return,
                Err(Some(detail)) => {
                    // Parts of this file not yet sent are dropped: fewer orphan records.
                    // After a batch went out mid-file, the current one holds only this file.
                    let keep = if self.seq == seq_before { first_part } else { 0 };
                    let cut = self.batch.parts[keep..].iter().find_map(|p| match p {
                        Part::Data { start, .. } => Some(*start),
                        Part::Failed { .. } => None,
                    });
                    self.batch.parts.truncate(keep);
                    if let Some(cut) = cut {
                        self.batch.data.truncate(cut);
                    }
                    self.batch.parts.push(Part::Failed { id, detail });
                }
                Err(None) => return,
            }
        }
        self.send(true);
        self.meter.entries(n, n, "");
    }
}

/// `Write` for one file's data: appends to the batch and cuts parts at multiples of
/// [`CHUNK`] of the file.
struct ChunkSink<'r, 'p, 'm> {
    r: &'r mut Reader<'p, 'm>,
    id: u32,
    /// File offset and batch index where the current chunk starts.
    offset: u64,
    start: usize,
    skip_below: u64,
}

impl ChunkSink<'_, '_, '_> {
    /// Ends the current chunk; a full batch goes to the workers.
    fn part(&mut self, end: bool) -> io::Result<()> {
        let len = self.r.batch.data.len() - self.start;
        let skip = len > 0 && self.offset + len as u64 <= self.skip_below;
        self.r.batch.parts.push(Part::Data { id: self.id, offset: self.offset, start: self.start, len, end, skip });
        self.offset += len as u64;
        let ok = if end { true } else { self.r.send(false) };
        self.start = self.r.batch.data.len();
        if !ok {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "the store writer stopped"));
        }
        if self.r.cancel.is_cancelled() {
            self.r.stopped = true;
            return Err(io::Error::new(io::ErrorKind::Interrupted, "stopped on request"));
        }
        self.r.meter.set(self.r.done);
        Ok(())
    }
}

impl Write for ChunkSink<'_, '_, '_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut rest = data;
        while !rest.is_empty() {
            let room = CHUNK as usize - (self.r.batch.data.len() - self.start);
            let n = room.min(rest.len());
            self.r.batch.data.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            if n == room {
                self.part(false)?;
            }
        }
        self.r.done += data.len() as u64;
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
