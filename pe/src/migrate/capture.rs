//! Capture: read the planned entries from the old filesystem (never written: it is only
//! read through an [`FsReader`]) and write them into the store, then read the store back and
//! verify it before reporting success.
//!
//! The work happens in the store's modules: `store::resume` (a fresh start or the
//! continuation of an interrupted capture), `store::pipeline` (this thread reads files,
//! worker threads compress, a writer thread cuts segments), then the manifest and a full
//! verification here. After each complete segment a resume state is saved; a later call
//! with the same plan continues from there and ends with the same store as an
//! uninterrupted run. Layout: `docs/store-format.md`, "Capture store".

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::fs::FsReader;
use crate::migrate::entry::{Entry, Kind, Skipped, Why};
use crate::migrate::store::format::{self, CAPTURE_DIR, CHUNK};
use crate::migrate::store::manifest::{Manifest, StoredEntry, Totals};
use crate::migrate::store::progress::{self, Position};
use crate::migrate::store::verify::{self, VerifyReport};
use crate::migrate::store::writer::Packed;
use crate::migrate::store::{pipeline, resume};
use crate::migrate::store::{CaptureState, Store, StoreError};

/// What to capture, in order; built by selection.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CapturePlan {
    /// Entries in capture order. Files are read with `read_file(&entry.source, ..)`;
    /// directories and links carry no data.
    pub entries: Vec<Entry>,
    /// Items selection left out, with the reason.
    pub skipped: Vec<Skipped>,
    /// The accounts whose profiles are captured.
    pub users: Vec<String>,
    /// Job information kept in the manifest as given (created time, source disk and
    /// partition, OS family, rules used, …).
    pub info: serde_json::Value,
}

/// How to capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureOptions {
    /// Largest segment file in bytes (default 1 GiB; 64 KiB to 3 GiB).
    pub segment_limit: u64,
    /// zstd level (default 1).
    pub zstd_level: i32,
    /// Compression threads; 0: one per CPU.
    pub workers: usize,
    /// Drop the store's cached pages before verifying, so verification reads the device
    /// (default true).
    pub reread_from_device: bool,
    /// Tests: abort the process (no flush, no unmount: a power cut) after this many bytes
    /// were written into the store.
    #[doc(hidden)]
    pub abort_after_bytes: Option<u64>,
}

impl Default for CaptureOptions {
    fn default() -> Self {
        CaptureOptions {
            segment_limit: format::DEFAULT_SEGMENT_LIMIT,
            zstd_level: 1,
            workers: 0,
            reread_from_device: true,
            abort_after_bytes: None,
        }
    }
}

/// What the capture is doing, for the progress callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Checking the segments an interrupted run completed.
    Resume,
    /// Reading files and writing the store.
    Capture,
    /// Reading the store back.
    Verify,
}

/// Progress, passed to the callback at most about ten times a second and at each phase
/// change. In `Capture` the bytes are file bytes read; in `Resume` and `Verify` store bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub phase: Phase,
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub entries_done: u64,
    pub entries_total: u64,
    /// The file being read (its `source`), empty outside `Capture`.
    pub current: String,
}

/// A finished, verified capture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaptureSummary {
    pub entries: u64,
    pub files: u64,
    /// Bytes of file data.
    pub bytes: u64,
    /// Bytes of the segment files.
    pub stored_bytes: u64,
    pub segments: u32,
    /// All items not in the store (the plan's and those unreadable now).
    pub skipped: u64,
    /// Entries that could not be read during this capture (also in the manifest's skipped).
    pub unreadable: Vec<Skipped>,
    /// Complete segments reused from an interrupted run.
    pub resumed_segments: u32,
    /// The store already held this very capture, finished; nothing was written.
    pub already_complete: bool,
    pub verify: VerifyReport,
}

/// Why a capture stopped. The old filesystem is never written, whatever happens.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error(
        "store {store} already holds a finished capture ({what}); it may be the only copy of someone's files, \
         so it is not overwritten: restore it first, or capture into another store"
    )]
    HoldsCapture { store: String, what: String },
    #[error(
        "store {store} holds an unfinished capture of a different plan or with different options ({detail}); \
         resume it with the same selection and options, or clear the store's capture first if the old OS \
         is still intact"
    )]
    OtherPlan { store: String, detail: String },
    #[error(
        "store {store} is full ({detail}): {written} bytes of the capture are in it, about {remaining} bytes of \
         file data (before compression) were still to come, and it had {free} bytes free when this run \
         started. Make a larger store or select less data; the old filesystem was not written to"
    )]
    StoreFull { store: String, detail: String, written: u64, remaining: u64, free: u64 },
    #[error("{detail}")]
    Options { detail: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "the capture was written but reading it back failed, so it is not usable: {0}. The old OS was not touched"
    )]
    Verify(StoreError),
    #[error("capture stopped: {0}")]
    Internal(String),
}

/// Fingerprint of what decides the store's bytes: entries, users and layout options.
pub fn plan_fingerprint(plan: &CapturePlan, opts: &CaptureOptions) -> String {
    #[derive(Serialize)]
    struct Fp<'a> {
        format: u16,
        chunk: u32,
        segment_limit: u64,
        zstd_level: i32,
        users: &'a [String],
        entries: &'a [Entry],
    }
    let mut sha = Sha256::new();
    let fp = Fp {
        format: format::VERSION,
        chunk: CHUNK,
        segment_limit: opts.segment_limit,
        zstd_level: opts.zstd_level,
        users: &plan.users,
        entries: &plan.entries,
    };
    // Serialising plain data into a hasher cannot fail.
    let _ = serde_json::to_writer(&mut sha, &fp);
    format!("{:x}", sha.finalize())
}

pub(crate) fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Captures `plan` from `source` into `store`, verifies it, and returns what it holds. See
/// the module doc; errors say what to do.
pub fn capture(
    source: &mut dyn FsReader,
    plan: &CapturePlan,
    store: &mut Store,
    opts: &CaptureOptions,
    progress: &mut dyn FnMut(&Progress),
) -> Result<CaptureSummary, CaptureError> {
    store.check_writable()?;
    if !(format::MIN_SEGMENT_LIMIT..=format::MAX_SEGMENT_LIMIT).contains(&opts.segment_limit) {
        return Err(CaptureError::Options {
            detail: format!(
                "a segment limit of {} bytes is outside {}..={}",
                opts.segment_limit,
                format::MIN_SEGMENT_LIMIT,
                format::MAX_SEGMENT_LIMIT
            ),
        });
    }
    if !(1..=19).contains(&opts.zstd_level) || plan.entries.len() >= u32::MAX as usize {
        return Err(CaptureError::Options {
            detail: "the zstd level must be 1..=19 and the plan under 2^32 entries".into(),
        });
    }
    if let Some(n) = opts.abort_after_bytes {
        store.simulate_cut(n, true);
    }
    let fp = plan_fingerprint(plan, opts);
    let capture_id = verify::capture_id(&fp).ok_or_else(|| CaptureError::Internal("bad fingerprint".into()))?;
    let mut meter = Meter::new(progress);

    if store.capture_state()? == CaptureState::Complete {
        return already_complete(store, &fp, opts, &mut meter);
    }
    let free = store.free_bytes()?;
    let start = resume::prepare(store, opts, &fp, &capture_id, &mut meter)?;
    let resumed_segments = start.pack.state.segments.len() as u32;
    let begin = start.next;
    let packed = pipeline::run(source, plan, store, opts, start, &mut meter, free)?;
    let (manifest, unreadable) = build_manifest(plan, opts, &fp, begin, packed)?;
    write_manifest(store, &manifest)?;
    let report = verify_written(store, &manifest, opts, &mut meter)?;
    finish_store(store)?;
    Ok(summary(&manifest, report, unreadable, resumed_segments, false))
}

/// The store holds a finished capture: the same plan's is verified and reported, another
/// plan's is refused.
fn already_complete(
    store: &mut Store,
    fp: &str,
    opts: &CaptureOptions,
    meter: &mut Meter<'_>,
) -> Result<CaptureSummary, CaptureError> {
    let m = match store.manifest() {
        Ok(m) => m,
        Err(StoreError::BadManifest { detail, .. }) => {
            return Err(CaptureError::HoldsCapture {
                store: store.describe(),
                what: format!("its manifest cannot be read: {detail}"),
            })
        }
        Err(e) => return Err(e.into()),
    };
    if m.plan_sha256 != fp {
        return Err(CaptureError::HoldsCapture {
            store: store.describe(),
            what: format!("{} entries, {} bytes, of another selection", m.totals.entries, m.totals.bytes),
        });
    }
    let report = verify_written(store, &m, opts, meter)?;
    finish_store(store)?;
    let unreadable: Vec<Skipped> =
        m.skipped.iter().filter(|s| matches!(s.why, Why::Unreadable { .. })).cloned().collect();
    Ok(summary(&m, report, unreadable, m.segments.len() as u32, true))
}

/// Throttles the progress callback.
pub(crate) struct Meter<'c> {
    cb: &'c mut dyn FnMut(&Progress),
    last: Option<Instant>,
    pub(crate) entries_total: u64,
}

impl<'c> Meter<'c> {
    pub(crate) fn new(cb: &'c mut dyn FnMut(&Progress)) -> Self {
        Meter { cb, last: None, entries_total: 0 }
    }

    pub(crate) fn show(&mut self, phase: Phase, done: u64, total: u64, entries: u64, current: &str, force: bool) {
        if !force && self.last.is_some_and(|t| t.elapsed() < Duration::from_millis(100)) {
            return;
        }
        self.last = Some(Instant::now());
        (self.cb)(&Progress {
            phase,
            bytes_done: done,
            bytes_total: total,
            entries_done: entries,
            entries_total: self.entries_total,
            current: current.to_string(),
        });
    }
}

/// The manifest from the plan and what the writer recorded.
fn build_manifest(
    plan: &CapturePlan,
    opts: &CaptureOptions,
    fp: &str,
    begin: Position,
    packed: Packed,
) -> Result<(Manifest, Vec<Skipped>), CaptureError> {
    let state = packed.state.ok_or_else(|| CaptureError::Internal("no writer state".into()))?;
    let failed: HashMap<u32, &str> = state.failed.iter().map(|f| (f.id, f.detail.as_str())).collect();
    let mut entries = Vec::with_capacity(plan.entries.len());
    let mut unreadable = Vec::new();
    let mut totals = Totals::default();
    for (i, e) in plan.entries.iter().enumerate() {
        let id = i as u32;
        if let Some(detail) = failed.get(&id) {
            unreadable.push(Skipped {
                source: e.source.clone(),
                size: e.size,
                why: Why::Unreadable { detail: detail.to_string() },
            });
            continue;
        }
        let mut entry = e.clone();
        let (crc32, data) = if e.kind == Kind::File {
            let (size, crc) = match packed.finished.get(&id) {
                Some(f) => *f,
                None if id < begin.entry => (0, 0),
                None => return Err(CaptureError::Internal(format!("{}: the writer did not see its end", e.source))),
            };
            entry.size = size;
            let data = packed.locs.get(&id).copied();
            if (size > 0) != data.is_some() {
                return Err(CaptureError::Internal(format!("{}: {size} bytes but records {data:?}", e.source)));
            }
            (crc, data)
        } else {
            entry.size = 0;
            (0, None)
        };
        match entry.kind {
            Kind::File => totals.files += 1,
            Kind::Dir => totals.dirs += 1,
            Kind::Symlink | Kind::HardLink => totals.links += 1,
        }
        totals.bytes += entry.size;
        entries.push(StoredEntry { entry, id, crc32, data });
    }
    let segments: Vec<_> = state.segments.into_iter().map(|s| s.info).collect();
    totals.entries = entries.len() as u64;
    totals.hole_bytes = packed.hole_bytes;
    totals.stored_bytes = segments.iter().map(|s| s.bytes).sum();
    totals.records = segments.iter().map(|s| u64::from(s.records)).sum();
    let mut skipped = plan.skipped.clone();
    skipped.extend(unreadable.iter().cloned());
    totals.skipped = skipped.len() as u64;
    let m = Manifest {
        format: format::VERSION,
        plan_sha256: fp.to_string(),
        started: state.started,
        finished: now(),
        info: plan.info.clone(),
        users: plan.users.clone(),
        chunk_size: CHUNK,
        segment_limit: opts.segment_limit,
        zstd_level: opts.zstd_level,
        entries,
        skipped,
        segments,
        totals,
    };
    m.check().map_err(|e| CaptureError::Internal(format!("the manifest made does not check: {e}")))?;
    Ok((m, unreadable))
}

/// Writes `manifest.json`, syncs, then `manifest.sha256` (the commit point), and syncs.
fn write_manifest(store: &Store, m: &Manifest) -> Result<(), CaptureError> {
    let (json, line) = m.encode().map_err(|e| CaptureError::Internal(format!("encoding the manifest: {e}")))?;
    let fs = store.mount()?;
    let d = store.describe();
    let r = (|| -> Result<(), StoreError> {
        let io = |what: &'static str| {
            let d = d.clone();
            move |source| StoreError::Io { store: d, what: what.into(), source }
        };
        let dir = fs.root_dir().open_dir(CAPTURE_DIR).map_err(io("opening capture/"))?;
        crate::migrate::store::volume::write_in(&dir, format::MANIFEST, &json)
            .map_err(io("writing capture/manifest.json"))?;
        store.sync()?;
        crate::migrate::store::volume::write_in(&dir, format::MANIFEST_SHA, line.as_bytes())
            .map_err(io("writing capture/manifest.sha256"))?;
        Ok(())
    })();
    if r.is_err() {
        drop(fs);
        r?;
        return Ok(());
    }
    store.unmount(fs)?;
    Ok(())
}

/// Reads the manifest and every segment back (from the device when asked) and checks them.
fn verify_written(
    store: &Store,
    m: &Manifest,
    opts: &CaptureOptions,
    meter: &mut Meter<'_>,
) -> Result<VerifyReport, CaptureError> {
    if opts.reread_from_device {
        store.drop_cache().map_err(CaptureError::Verify)?;
    }
    let again = store.manifest().map_err(CaptureError::Verify)?;
    if &again != m {
        return Err(CaptureError::Verify(StoreError::BadManifest {
            store: store.describe(),
            detail: "the manifest read back differs from the one written".into(),
        }));
    }
    let n = m.totals.entries;
    meter.entries_total = n;
    meter.show(Phase::Verify, 0, m.totals.stored_bytes, 0, "", true);
    verify::check_against(store, &again, &mut |done, total| meter.show(Phase::Verify, done, total, 0, "", false))
        .map_err(CaptureError::Verify)
}

/// The capture is verified: the resume state goes.
fn finish_store(store: &Store) -> Result<(), CaptureError> {
    let fs = store.mount()?;
    let r = fs.root_dir().open_dir(CAPTURE_DIR).and_then(|dir| progress::remove(&dir));
    let r = r.map_err(|source| StoreError::Io {
        store: store.describe(),
        what: "removing capture/progress.json".into(),
        source,
    });
    store.unmount(fs)?;
    Ok(r?)
}

fn summary(
    m: &Manifest,
    verify: VerifyReport,
    unreadable: Vec<Skipped>,
    resumed_segments: u32,
    already_complete: bool,
) -> CaptureSummary {
    CaptureSummary {
        entries: m.totals.entries,
        files: m.totals.files,
        bytes: m.totals.bytes,
        stored_bytes: m.totals.stored_bytes,
        segments: m.segments.len() as u32,
        skipped: m.totals.skipped,
        unreadable,
        resumed_segments,
        already_complete,
        verify,
    }
}
