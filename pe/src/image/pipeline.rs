//! Chunks in flight: one thread reads payloads in index order from the source (resuming a
//! cut stream with a new Range request at the first chunk not fully received), a few workers
//! check and decode them in parallel and hand the logical bytes to a job (write them, or just
//! count them). Memory is bounded: at most `2 × workers` payloads queued plus one logical
//! buffer per worker, whatever the image size.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::format::{hex, ChunkRecord, Index};
use super::reader::RECOPY;
use super::source::{read_full, Source};
use crate::error::{Error, Result, Written};
use crate::net::http::HttpOptions;
use crate::progress::{Cancel, Sink};
use crate::step::Step;

const STEP: Step = Step::Image;

/// How far to check each chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// CRC-32 and SHA-256 of the stored bytes (no decoding): the pre-write pass.
    Stored,
    /// Stored checks, then decode and check the logical length and CRC-32.
    Full,
}

/// Checks chunk `i`'s stored bytes and, with `Check::Full`, decodes it into `out`.
pub fn check_chunk(
    name: &str,
    i: usize,
    c: &ChunkRecord,
    stored: &[u8],
    check: Check,
    dec: &mut zstd::bulk::Decompressor<'_>,
    out: &mut Vec<u8>,
) -> Result<()> {
    let fail = |why: String| {
        let (offset, end) = (c.stored_offset, c.stored_end());
        Error::damaged(STEP, format!("{name}: chunk {i} (partition {}, image bytes {offset}..{end}) is damaged: {why}", c.partition)).advice(RECOPY)
    };
    if stored.len() != c.stored_len as usize {
        return Err(fail(format!("{} bytes instead of {}", stored.len(), c.stored_len)));
    }
    let crc = crc32fast::hash(stored);
    if crc != c.stored_crc {
        return Err(fail(format!("CRC-32 {crc:#010x}, the index says {:#010x}", c.stored_crc)));
    }
    let sha: [u8; 32] = Sha256::digest(stored).into();
    if sha != c.stored_sha256 {
        return Err(fail(format!("SHA-256 {}, the index says {}", hex(&sha), hex(&c.stored_sha256))));
    }
    if check == Check::Stored {
        return Ok(());
    }
    out.clear();
    out.reserve(c.logical_len as usize);
    dec.decompress_to_buffer(stored, out).map_err(|e| fail(format!("zstd: {e}")))?;
    if out.len() != c.logical_len as usize {
        return Err(fail(format!("decodes to {} bytes instead of {}", out.len(), c.logical_len)));
    }
    let lcrc = crc32fast::hash(out);
    if lcrc != c.logical_crc {
        return Err(fail(format!("decoded CRC-32 {lcrc:#010x}, the index says {:#010x}", c.logical_crc)));
    }
    Ok(())
}

/// Reads chunk payloads `from..` in order, calling `each(i, bytes)` until it returns `false`; a
/// stream that fails is reopened at the first chunk not fully received, with backoff, logging
/// each resume. Returns quietly when `stop` is set (another thread failed), and a cancellation
/// when `cancel` is raised.
#[allow(clippy::too_many_arguments)]
pub fn read_chunks(
    src: &mut dyn Source,
    index: &Index,
    from: usize,
    opts: &HttpOptions,
    sink: &dyn Sink,
    cancel: &Cancel,
    stop: &AtomicBool,
    mut each: impl FnMut(usize, Vec<u8>) -> bool,
) -> Result<()> {
    let Some(end) = index.chunks.last().map(|c| c.stored_end()) else { return Ok(()) };
    let name = src.name();
    let mut next = from;
    let mut backoff = opts.backoff();
    let mut resumed = false;
    while next < index.chunks.len() {
        let at = index.chunks[next].stored_offset;
        if resumed {
            sink.log(&format!(
                "{name}: resuming at byte {at} (chunk {next} of {}) with Range: bytes={at}-{}, not restarting",
                index.chunks.len(),
                end - 1
            ));
        }
        cancel.check(STEP, Written::Nothing)?;
        let mut stream = match src.stream(at, end) {
            Ok(s) => s,
            Err(e) => {
                backoff.pause(e, &name, sink, cancel)?;
                resumed = true;
                continue;
            }
        };
        while next < index.chunks.len() {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            cancel.check(STEP, Written::Nothing)?;
            let c = &index.chunks[next];
            let mut buf = vec![0u8; c.stored_len as usize];
            match read_full(&mut stream, &mut buf) {
                Ok(n) if n == buf.len() => {
                    if !each(next, buf) {
                        return Ok(());
                    }
                    next += 1;
                    backoff.reset();
                }
                other => {
                    let why = match other {
                        Ok(n) => format!("the stream ended after {n} of {} bytes of chunk {next}", c.stored_len),
                        Err(e) => format!("reading chunk {next}: {e}"),
                    };
                    let e = if src.local_path().is_some() {
                        Error::io(STEP, format!("{name}: {why}"))
                    } else {
                        Error::transient(STEP, format!("connection lost at byte {} ({why})", c.stored_offset))
                    };
                    backoff.pause(e, &name, sink, cancel)?;
                    resumed = true;
                    break;
                }
            }
        }
    }
    Ok(())
}

/// The work done on each checked chunk: `(i, record, logical bytes)` (the stored bytes with
/// [`Check::Stored`]).
pub type Job<'a> = dyn Fn(usize, &ChunkRecord, &[u8]) -> Result<()> + Sync + 'a;

/// Runs `job` on every chunk from `from` on, `workers` at a time, after checking it (`check`).
/// `done(i)` is called on the calling thread as chunks finish (in completion order). The first
/// error stops everything and is returned; a raised `cancel` stops the reader and the workers
/// at the next chunk.
#[allow(clippy::too_many_arguments)]
pub fn run(
    src: &mut dyn Source,
    index: &Index,
    from: usize,
    check: Check,
    workers: usize,
    opts: &HttpOptions,
    sink: &dyn Sink,
    cancel: &Cancel,
    job: &Job,
    done: &mut dyn FnMut(usize, &ChunkRecord),
) -> Result<()> {
    let workers = workers.max(1);
    let name = src.name();
    let stop = AtomicBool::new(false);
    let (tx, rx) = sync_channel::<(usize, Vec<u8>)>(workers * 2);
    let rx: Arc<Mutex<Receiver<(usize, Vec<u8>)>>> = Arc::new(Mutex::new(rx));
    let (rtx, rrx) = sync_channel::<Result<usize>>(workers * 2);
    std::thread::scope(|s| {
        for _ in 0..workers {
            let rx = rx.clone();
            let rtx = rtx.clone();
            let name = name.clone();
            let stop = &stop;
            s.spawn(move || {
                let mut dec = match zstd::bulk::Decompressor::new() {
                    Ok(d) => d,
                    Err(e) => {
                        let _ = rtx.send(Err(Error::internal(STEP, format!("cannot start a zstd decoder: {e}"))));
                        return;
                    }
                };
                let mut out = Vec::new();
                loop {
                    let next = rx.lock().ok().and_then(|r| r.recv().ok());
                    let Some((i, stored)) = next else { return };
                    if stop.load(Ordering::Relaxed) || cancel.is_cancelled() {
                        continue;
                    }
                    let c = &index.chunks[i];
                    let r = check_chunk(&name, i, c, &stored, check, &mut dec, &mut out)
                        .and_then(|_| job(i, c, if check == Check::Full { &out } else { &stored }))
                        .map(|_| i);
                    if r.is_err() {
                        stop.store(true, Ordering::Relaxed);
                    }
                    if rtx.send(r).is_err() {
                        return;
                    }
                }
            });
        }
        drop(rtx);
        let stop_r = &stop;
        let reader = s.spawn(move || {
            let r = read_chunks(src, index, from, opts, sink, cancel, stop_r, |i, b| tx.send((i, b)).is_ok());
            if r.is_err() {
                stop_r.store(true, Ordering::Relaxed);
            }
            r
        });
        let mut first_err: Option<Error> = None;
        let mut finished = 0usize;
        for r in rrx {
            match r {
                Ok(i) if first_err.is_none() => {
                    finished += 1;
                    done(i, &index.chunks[i]);
                }
                Ok(_) => {}
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        let read = reader.join().unwrap_or_else(|_| Err(Error::internal(STEP, "the reader thread panicked")));
        match (first_err, read) {
            (Some(e), _) | (None, Err(e)) => Err(e),
            (None, Ok(())) if finished < index.chunks.len().saturating_sub(from) => {
                cancel.check(STEP, Written::Nothing)?;
                Err(Error::internal(STEP, format!("{name}: only {finished} chunks of {} were handled", index.chunks.len() - from)))
            }
            (None, Ok(())) => Ok(()),
        }
    })
}
