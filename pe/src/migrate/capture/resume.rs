//! Starting a capture run: a fresh start, or the continuation of an interrupted capture
//! from its resume state, after re-reading the segments it completed.

use std::collections::{BTreeMap, HashMap};
use std::io;

use super::error::CaptureError;
use super::plan::{now, CaptureOptions};
use super::PHASE_RESUME;
use crate::migrate::store::format::{self, CHUNK};
use crate::migrate::store::progress::{self, Position, ResumeState};
use crate::migrate::store::verify;
use crate::migrate::store::writer::{PackStart, Packed};
use crate::migrate::store::{DataLoc, Store, StoreError};
use crate::progress::{Cancel, Meter, Sink};

/// Where a run starts: the packer's start and the first entry (and offset) to read.
pub(crate) struct Start {
    pub pack: PackStart,
    pub next: Position,
}

/// Loads and checks the resume state, re-reads its complete segments (keeping the longest
/// prefix whose SHA-256 matches) and removes everything after them.
pub(crate) fn prepare(
    store: &Store,
    opts: &CaptureOptions,
    fp: &str,
    capture_id: &[u8; 12],
    sink: &dyn Sink,
    cancel: &Cancel,
) -> Result<Start, CaptureError> {
    let d = store.describe();
    let io = |what: &str| {
        let what = what.to_string();
        let d = d.clone();
        move |source| StoreError::Io { store: d, what, source }
    };
    let capture = store.selected().dir();
    let fs = store.mount()?;
    let saved = {
        let root = fs.root_dir();
        let dir = store.create_dir(&root, &capture, true).map_err(io(&format!("creating {capture}/")))?;
        progress::load(&dir).map_err(io(&store.capture_file(format::PROGRESS)))?
    };
    store.unmount(fs)?;
    let fresh = || ResumeState {
        format: format::VERSION,
        plan_sha256: fp.to_string(),
        started: now(),
        chunk_size: CHUNK,
        segment_limit: opts.segment_limit,
        zstd_level: opts.zstd_level,
        segments: Vec::new(),
        failed: Vec::new(),
    };
    let mut state = match saved {
        None => fresh(),
        Some(s) => {
            if s.plan_sha256 != fp || s.chunk_size != CHUNK || s.format != format::VERSION {
                return Err(CaptureError::OtherPlan {
                    store: d,
                    detail: format!("it was started {} with plan {}, this plan is {fp}", s.started, s.plan_sha256),
                });
            }
            s
        }
    };
    // Re-read the complete segments: trust only those whose bytes still match.
    let total: u64 = state.segments.iter().map(|s| s.info.bytes).sum();
    let meter = (!state.segments.is_empty()).then(|| Meter::start(sink, PHASE_RESUME, total));
    let mut packed = Packed::default();
    let mut last: HashMap<u32, (u64, u32)> = HashMap::new();
    let mut keep = 0usize;
    let mut done = 0u64;
    for (i, seg) in state.segments.iter().enumerate() {
        if let Some(m) = &meter {
            m.set(done);
        }
        let number = i as u32 + 1;
        let mut locs = BTreeMap::new();
        let mut ends = HashMap::new();
        let mut visit = |h: &format::RecordHeader, at: u64, _: &[u8]| {
            if cancel.is_cancelled() {
                return Err(StoreError::Cancelled { store: store.describe() });
            }
            locs.entry(h.entry)
                .and_modify(|l: &mut DataLoc| l.records += 1)
                .or_insert(DataLoc { segment: number, offset: at, records: 1 });
            ends.insert(h.entry, (h.end(), h.running_crc));
            Ok(())
        };
        match verify::walk_segment(store, number, capture_id, CHUNK, &mut visit) {
            Err(e @ StoreError::Cancelled { .. }) => return Err(e.into()),
            Ok(scan) if scan.sha256 == seg.info.sha256 && scan.bytes == seg.info.bytes => {
                for (id, l) in locs {
                    packed.locs.entry(id).and_modify(|p| p.records += l.records).or_insert(l);
                }
                last.extend(ends);
                keep = i + 1;
                done += scan.bytes;
            }
            _ => break,
        }
    }
    state.segments.truncate(keep);
    let next = state.segments.last().map_or(Position { entry: 0, offset: 0 }, |s| s.next);
    state.failed.retain(|f| f.id < next.entry);
    for f in &state.failed {
        packed.locs.remove(&f.id);
        last.remove(&f.id);
    }
    let mut check = None;
    for (id, (end, crc)) in last {
        if id < next.entry {
            packed.finished.insert(id, (end, crc));
        } else if id == next.entry && next.offset > 0 {
            check = Some((id, next.offset, crc));
        } else {
            packed.locs.remove(&id);
        }
    }
    if next.entry > 0 && next.offset > 0 && check.is_none() {
        // The segment says the entry goes on, but none of its records were found.
        packed.locs.remove(&next.entry);
    }
    // Remove what came after the kept segments: an incomplete segment, a stale manifest.
    let fs = store.mount()?;
    let r = (|| -> io::Result<()> {
        let dir = store.capture_dir(&fs)?;
        let names: Vec<String> = dir.iter().filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
        for n in names {
            let stale_segment = n
                .strip_prefix("seg-")
                .and_then(|r| r.strip_suffix(".ipa"))
                .and_then(|r| r.parse::<usize>().ok())
                .is_none_or(|k| k > keep);
            let is_segment = n.starts_with("seg-");
            if (is_segment && stale_segment) || n == format::MANIFEST || n == format::MANIFEST_SHA {
                dir.remove(&n)?;
            }
        }
        if keep == 0 {
            progress::remove(&dir)?;
        }
        Ok(())
    })()
    .map_err(io("removing the incomplete part of an interrupted capture"));
    store.unmount(fs)?;
    r?;
    let pack = PackStart { limit: opts.segment_limit, capture_id: *capture_id, state, packed, check };
    Ok(Start { pack, next })
}
