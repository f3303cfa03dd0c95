//! Reading a capture back: every segment's SHA-256 against the manifest, every record
//! decompressed and checked (CRC-32 per record, running CRC-32 per entry), every entry's
//! size and CRC-32. A capture is reported good only after this.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::error::StoreError;
use super::format::{self, RecordHeader, RecordKind, SegmentHeader, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN};
use super::manifest::{hex, Manifest};
use super::record::Scratch;
use super::volume::Store;
use super::writer::Pool;
use crate::progress::{Cancel, Meter, Sink};
use crate::step::Step;

/// The phase name of reading a store back, in progress events.
pub const PHASE: &str = "reading the store back";

/// What a verification read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub entries: u64,
    pub files: u64,
    /// Bytes of file data, of which `hole_bytes` are holes.
    pub bytes: u64,
    pub hole_bytes: u64,
    pub segments: u32,
    pub stored_bytes: u64,
    pub records: u64,
    /// Records of files that could not be read to the end during the capture (not restored).
    pub orphan_records: u64,
    pub skipped: u64,
}

/// What one pass over a segment found.
pub(crate) struct SegmentScan {
    pub bytes: u64,
    pub sha256: String,
    pub records: u32,
}

/// Called for each record: header, its offset in the segment, its payload.
pub(crate) type Visit<'a> = dyn FnMut(&RecordHeader, u64, &[u8]) -> Result<(), StoreError> + 'a;

/// Reads segment `number` from start to end: checks its header (number, `capture_id`) and
/// calls `visit(header, offset, stored payload)` for each record in order. Returns its size,
/// SHA-256 and record count. Structural damage stops it with `Err` naming the offset.
pub(crate) fn walk_segment(
    store: &Store,
    number: u32,
    capture_id: &[u8; 12],
    chunk: u32,
    visit: &mut Visit<'_>,
) -> Result<SegmentScan, StoreError> {
    let name = format::segment_name(number);
    let damaged =
        |detail: String| StoreError::SegmentDamaged { store: store.describe(), segment: store.capture_file(&name), detail };
    let map = store.load_segment_map(number)?;
    let mut r = BufReader::with_capacity(4 << 20, Hashing { inner: store.map_reader(&map), sha: Sha256::new() });
    let io = |at: u64| {
        let name = name.clone();
        move |source| StoreError::Io { store: store.describe(), what: format!("reading {} at byte {at}", store.capture_file(&name)), source }
    };
    let mut sh = [0u8; SEGMENT_HEADER_LEN];
    r.read_exact(&mut sh).map_err(io(0))?;
    let h = SegmentHeader::decode(&sh).map_err(|e| damaged(format!("at byte 0: {e}")))?;
    if h.number != number || &h.capture_id != capture_id {
        return Err(damaged(format!(
            "its header names segment {} of capture {}, not segment {number} of capture {}",
            h.number,
            hex(&h.capture_id),
            hex(capture_id)
        )));
    }
    let mut at = SEGMENT_HEADER_LEN as u64;
    let mut records = 0u32;
    let mut payload = Vec::new();
    while at < map.size {
        if map.size - at < RECORD_HEADER_LEN as u64 {
            return Err(damaged(format!("{} stray bytes at its end (byte {at})", map.size - at)));
        }
        let mut hb = [0u8; RECORD_HEADER_LEN];
        r.read_exact(&mut hb).map_err(io(at))?;
        let h = RecordHeader::decode(&hb, chunk).map_err(|e| damaged(format!("record at byte {at}: {e}")))?;
        if at + h.total_len() > map.size {
            return Err(damaged(format!("the record at byte {at} runs past the end of the segment")));
        }
        let n = h.stored_len as usize;
        let buffered = r.fill_buf().map_err(io(at))?;
        if buffered.len() >= n {
            // Straight from the read buffer, without a copy.
            visit(&h, at, &buffered[..n])?;
            r.consume(n);
        } else {
            if payload.len() < n {
                payload.resize(n, 0);
            }
            r.read_exact(&mut payload[..n]).map_err(io(at))?;
            visit(&h, at, &payload[..n])?;
        }
        at += h.total_len();
        records += 1;
    }
    // Whatever the buffer has not yet pulled through the hash.
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).map_err(io(at))?;
    let sha = r.into_inner().sha;
    Ok(SegmentScan { bytes: map.size, sha256: hex(&sha.finalize()), records })
}

/// `Read` that hashes everything passing through.
struct Hashing<R> {
    inner: R,
    sha: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha.update(&buf[..n]);
        Ok(n)
    }
}

/// The entry being followed through the records.
struct Open {
    index: usize,
    done: u64,
    records: u32,
    /// Running CRC-32 from the record headers (each record's own CRC is checked against its
    /// data by a worker).
    crc: u32,
}

/// Reads the selected capture back; see the module doc. `Ok` only when every check passed. The
/// damage found first is named: [`StoreError::Damaged`] names the entry, segment and offset;
/// [`StoreError::SegmentDamaged`] a segment; [`StoreError::BadManifest`] the manifest.
/// Checks `cancel` at every record.
pub fn verify(store: &Store, sink: &dyn Sink, cancel: &Cancel) -> crate::error::Result<VerifyReport> {
    read_back(store, sink, cancel).map_err(|e| e.error(Step::Verify))
}

/// [`verify`], with the store's own error.
pub(crate) fn read_back(store: &Store, sink: &dyn Sink, cancel: &Cancel) -> Result<VerifyReport, StoreError> {
    let m = store.manifest()?;
    let meter = Meter::start(sink, PHASE, m.totals.stored_bytes);
    check_against(store, &m, &meter, cancel)
}

/// Records whose payloads a worker checks: decompress, length, CRC-32.
struct PayloadBatch {
    data: Vec<u8>,
    records: Vec<PayloadCheck>,
}

struct PayloadCheck {
    header: RecordHeader,
    /// Where the payload is in `data`.
    start: usize,
    segment: u32,
    at: u64,
    /// Index of the live entry, `None` for an orphan record.
    entry: Option<usize>,
}

/// A damaged record found by a worker: position, entry, what.
type Found = ((u32, u64), Option<usize>, String);

const PAYLOAD_BATCH: usize = 4 << 20;

/// Checks a batch's payloads; failures go to `found`.
fn check_payloads(scratch: &mut Scratch, batch: &PayloadBatch, found: &Mutex<Vec<Found>>) {
    for r in &batch.records {
        let h = &r.header;
        let res = match h.kind {
            RecordKind::Zstd => scratch.unpack_from(&batch.data[r.start..r.start + h.stored_len as usize], h),
            RecordKind::Hole if h.raw_crc != format::zeros_crc(u64::from(h.raw_len)).finalize() => {
                Err("a hole record with the CRC-32 of non-zero data".into())
            }
            RecordKind::Hole => Ok(()),
        };
        if let Err(detail) = res {
            if let Ok(mut f) = found.lock() {
                f.push(((r.segment, r.at), r.entry, detail));
            }
        }
    }
}

/// Verifies the segments against an already loaded and checked manifest. This thread reads,
/// hashes and follows the structure; workers decompress and check the data.
pub(crate) fn check_against(
    store: &Store,
    m: &Manifest,
    meter: &Meter<'_>,
    cancel: &Cancel,
) -> Result<VerifyReport, StoreError> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 4);
    let found: Mutex<Vec<Found>> = Mutex::new(Vec::new());
    let pool = Pool::default();
    let (tx, rx) = sync_channel::<PayloadBatch>(workers * 2);
    let rx = Arc::new(Mutex::new(rx));
    let started = std::thread::scope(|s| {
        for _ in 0..workers {
            let rx = Arc::clone(&rx);
            let (found, pool) = (&found, &pool);
            s.spawn(move || {
                let Ok(mut scratch) = Scratch::new() else { return };
                loop {
                    let next = match rx.lock() {
                        Ok(r) => r.recv(),
                        Err(_) => return,
                    };
                    let Ok(batch) = next else { return };
                    check_payloads(&mut scratch, &batch, found);
                    pool.put(batch.data);
                }
            });
        }
        drop(rx);
        let mut batch = PayloadBatch { data: pool.get(PAYLOAD_BATCH), records: Vec::new() };
        let r = follow(store, m, meter, cancel, &tx, &pool, &mut batch);
        // Whatever is read gets checked, also after an error: an earlier damaged record
        // explains a later error.
        if !batch.records.is_empty() {
            let _ = tx.send(batch);
        }
        drop(tx);
        r
    });
    let mut found = found.into_inner().unwrap_or_default();
    found.sort_by_key(|f| f.0);
    let worker_err = found.into_iter().next().map(|((segment, at), entry, detail)| {
        let e = match entry {
            Some(i) => StoreError::Damaged {
                store: store.describe(),
                entry: m.entries[i].entry.source.to_string(),
                segment: store.capture_file(&format::segment_name(segment)),
                offset: at,
                detail,
            },
            None => StoreError::SegmentDamaged {
                store: store.describe(),
                segment: store.capture_file(&format::segment_name(segment)),
                detail: format!("the record at byte {at} (of a file that was not captured): {detail}"),
            },
        };
        ((segment, at), e)
    });
    // Report the first damage in segment order: a damaged payload explains a structural
    // error found after it.
    match (started, worker_err) {
        (Err((_, e @ StoreError::Cancelled { .. })), _) => Err(e),
        (Err((pos, e)), Some((wpos, w))) => Err(if wpos <= pos { w } else { e }),
        (Err((_, e)), None) => Err(e),
        (Ok(_), Some((_, w))) => Err(w),
        (Ok(report), None) => Ok(report),
    }
}

/// Follows every record in order: segment headers and SHA-256, the order and offsets of each
/// entry's records, running CRCs, sizes. Payloads go to the workers. An error comes with the
/// position (segment, byte) where it was found.
fn follow(
    store: &Store,
    m: &Manifest,
    meter: &Meter<'_>,
    cancel: &Cancel,
    tx: &SyncSender<PayloadBatch>,
    pool: &Pool,
    batch: &mut PayloadBatch,
) -> Result<VerifyReport, ((u32, u64), StoreError)> {
    let capture_id = capture_id(&m.plan_sha256).ok_or_else(|| {
        ((0, 0), StoreError::BadManifest { store: store.describe(), capture: store.selected().dir(), detail: "plan_sha256 is not hex".into() })
    })?;
    let by_id: HashMap<u32, usize> = m.entries.iter().enumerate().map(|(i, e)| (e.id, i)).collect();
    let total: u64 = m.segments.iter().map(|s| s.bytes).sum();
    meter.set_total(total);
    let mut report = VerifyReport { skipped: m.skipped.len() as u64, ..VerifyReport::default() };
    let mut open: Option<Open> = None;
    let mut closed = 0u64;
    let mut read_before = 0u64;
    let mut pos = (0u32, 0u64);
    for (i, info) in m.segments.iter().enumerate() {
        let number = i as u32 + 1;
        let seg_name = info.name.clone();
        let damaged = |index: usize, at: u64, detail: String| StoreError::Damaged {
            store: store.describe(),
            entry: m.entries[index].entry.source.to_string(),
            segment: store.capture_file(&seg_name),
            offset: at,
            detail,
        };
        let mut visit = |h: &RecordHeader, at: u64, stored: &[u8]| -> Result<(), StoreError> {
            pos = (number, at);
            if cancel.is_cancelled() {
                return Err(StoreError::Cancelled { store: store.describe() });
            }
            meter.set(read_before + at);
            report.records += 1;
            let live = by_id.get(&h.entry).copied();
            // A new entry's first record closes the one before.
            if open.as_ref().is_some_and(|o| Some(o.index) != live) {
                close(m, open.take().expect("open entry"), store)?;
                closed += 1;
            }
            batch.records.push(PayloadCheck { header: *h, start: batch.data.len(), segment: number, at, entry: live });
            batch.data.extend_from_slice(stored);
            if batch.data.len() >= PAYLOAD_BATCH || batch.records.len() >= 4096 {
                let full =
                    std::mem::replace(batch, PayloadBatch { data: pool.get(PAYLOAD_BATCH), records: Vec::new() });
                // Workers gone means a panic; the join reports it.
                let _ = tx.send(full);
            }
            let Some(index) = live else {
                report.orphan_records += 1;
                return Ok(());
            };
            let e = &m.entries[index];
            if open.is_none() {
                let loc = e.data.ok_or_else(|| damaged(index, at, "a record for an entry without data".into()))?;
                if (loc.segment, loc.offset) != (number, at) || h.offset != 0 {
                    return Err(damaged(
                        index,
                        at,
                        format!(
                            "a record at offset {} where the manifest puts its first record in segment {} at byte {}",
                            h.offset, loc.segment, loc.offset
                        ),
                    ));
                }
                open = Some(Open { index, done: 0, records: 0, crc: 0 });
            }
            let o = open.as_mut().expect("open entry");
            if h.offset != o.done {
                return Err(damaged(index, at, format!("a record at data offset {}, expected {}", h.offset, o.done)));
            }
            o.crc = format::crc_append(o.crc, o.done, h.raw_crc, u64::from(h.raw_len));
            if o.crc != h.running_crc {
                return Err(damaged(
                    index,
                    at,
                    format!("running CRC-32 {:08x}, the record says {:08x}", o.crc, h.running_crc),
                ));
            }
            if h.kind == RecordKind::Hole {
                report.hole_bytes += u64::from(h.raw_len);
            }
            o.done = h.end();
            o.records += 1;
            if o.done > e.entry.size {
                return Err(damaged(index, at, format!("data past the size of {} bytes", e.entry.size)));
            }
            Ok(())
        };
        let scan = walk_segment(store, number, &capture_id, m.chunk_size, &mut visit).map_err(|e| (pos, e))?;
        let seg_damaged = |detail: String| {
            (
                (number, u64::MAX),
                StoreError::SegmentDamaged { store: store.describe(), segment: store.capture_file(&info.name), detail },
            )
        };
        if scan.bytes != info.bytes || scan.records != info.records {
            return Err(seg_damaged(format!(
                "it has {} bytes and {} records, the manifest says {} and {}",
                scan.bytes, scan.records, info.bytes, info.records
            )));
        }
        if !scan.sha256.eq_ignore_ascii_case(&info.sha256) {
            return Err(seg_damaged(format!("its SHA-256 is {}, the manifest says {}", scan.sha256, info.sha256)));
        }
        read_before += scan.bytes;
        report.stored_bytes += scan.bytes;
        report.segments += 1;
    }
    let end = (u32::MAX, u64::MAX);
    if let Some(o) = open.take() {
        close(m, o, store).map_err(|e| (end, e))?;
        closed += 1;
    }
    for e in &m.entries {
        report.entries += 1;
        if e.entry.kind == crate::migrate::entry::Kind::File {
            report.files += 1;
            report.bytes += e.entry.size;
        }
    }
    // Every entry with data must have been followed from its first record to its last.
    let with_data = m.entries.iter().filter(|e| e.data.is_some()).count() as u64;
    if closed != with_data {
        return Err((
            end,
            StoreError::BadManifest {
                store: store.describe(),
                capture: store.selected().dir(),
                detail: format!(
                    "{with_data} entries have data in the manifest, but the data of only {closed} was found in the segments"
                ),
            },
        ));
    }
    meter.set(total);
    Ok(report)
}

/// Checks that an entry's records ended where the manifest says.
fn close(m: &Manifest, o: Open, store: &Store) -> Result<(), StoreError> {
    let e = &m.entries[o.index];
    let loc = e.data.expect("an open entry has data");
    let fail = |detail: String| StoreError::Damaged {
        store: store.describe(),
        entry: e.entry.source.to_string(),
        segment: store.capture_file(&format::segment_name(loc.segment)),
        offset: loc.offset,
        detail,
    };
    if o.records != loc.records {
        return Err(fail(format!("{} records, the manifest says {}", o.records, loc.records)));
    }
    if o.done != e.entry.size {
        return Err(fail(format!("its records hold {} bytes, the manifest says {}", o.done, e.entry.size)));
    }
    let crc = o.crc;
    if crc != e.crc32 {
        return Err(fail(format!("CRC-32 {crc:08x} of its data, the manifest says {:08x}", e.crc32)));
    }
    Ok(())
}

/// The capture id in segment headers: the first 12 bytes of the plan fingerprint.
pub(crate) fn capture_id(plan_sha256: &str) -> Option<[u8; 12]> {
    let mut id = [0u8; 12];
    for (i, b) in id.iter_mut().enumerate() {
        *b = u8::from_str_radix(plan_sha256.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(id)
}
