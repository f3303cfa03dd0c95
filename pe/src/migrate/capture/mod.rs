//! Capture: read the planned entries from the old filesystem (never written: it is only
//! read through an [`FsReader`]) and write them into the store, then read the store back and
//! verify it before reporting success.
//!
//! - [`plan`]: what to capture and how, and the plan's fingerprint.
//! - `resume`: a fresh start or the continuation of an interrupted capture.
//! - `pipeline`: this thread reads files, worker threads compress, a writer thread cuts
//!   segments.
//! - `finish`: the manifest, its verification, the resume state removed.
//! - [`error`]: why a capture stopped.
//!
//! After each complete segment a resume state is saved; a later call with the same plan
//! continues from there and ends with the same store as an uninterrupted run, whether the
//! earlier run lost power or was cancelled. Layout: `docs/store-format.md`, "Capture store".

mod ahead;
mod error;
mod finish;
mod pipeline;
pub mod plan;
mod resume;

#[cfg(test)]
mod tests;

use serde::Serialize;

pub use error::CaptureError;
pub use plan::{plan_fingerprint, CaptureOptions, CapturePlan};

use crate::fs::FsReader;
use crate::migrate::entry::{Skipped, Why};
use crate::migrate::store::format;
use crate::migrate::store::verify::{self, VerifyReport};
use crate::migrate::store::{CaptureState, EventLog, Store, StoreError};
use crate::progress::{Cancel, Event, Sink, Tee};

/// Phase names of a capture, in progress events.
pub const PHASE_RESUME: &str = "checking the segments of the interrupted capture";
pub const PHASE_CAPTURE: &str = "capturing";

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

/// Captures `plan` from `source` into `store`, verifies it, and returns what it holds. See
/// the module doc. Checks `cancel` at every file and record (and in verification at every
/// record): a cancelled capture leaves the store resumable. Its events (not the counts) are
/// also appended to the store's journal.
pub fn capture(
    source: &mut dyn FsReader,
    plan: &CapturePlan,
    store: &mut Store,
    opts: &CaptureOptions,
    sink: &dyn Sink,
    cancel: &Cancel,
) -> crate::error::Result<CaptureSummary> {
    let log = EventLog::new();
    let both = Tee(vec![sink, &log]);
    both.log(&format!(
        "capture of {} entries of {} user(s) into {}; {} items left out by the selection",
        plan.entries.len(),
        plan.users.len(),
        store.describe(),
        plan.skipped.len()
    ));
    let result = run(source, plan, store, opts, &both, cancel).map_err(CaptureError::error);
    match &result {
        Ok(s) => log.log(&format!(
            "{} entries, {} files, {} bytes in {} segments ({} stored); {} items left out; verified",
            s.entries, s.files, s.bytes, s.segments, s.stored_bytes, s.skipped
        )),
        Err(e) => log.event(&Event::Failed { error: e.clone() }),
    }
    if store.is_writable() {
        if let Err(e) = log.keep(store) {
            sink.warn(&format!("the capture's events could not be kept in the store: {e}"));
        }
    }
    result
}

fn run(
    source: &mut dyn FsReader,
    plan: &CapturePlan,
    store: &mut Store,
    opts: &CaptureOptions,
    sink: &dyn Sink,
    cancel: &Cancel,
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

    if store.capture_state()? == CaptureState::Complete {
        return already_complete(store, &fp, opts, sink, cancel);
    }
    let free = store.free_bytes()?;
    let start = resume::prepare(store, opts, &fp, &capture_id, sink, cancel)?;
    let resumed_segments = start.pack.state.segments.len() as u32;
    let begin = start.next;
    let packed = pipeline::run(source, plan, store, opts, start, sink, cancel, free)?;
    let (manifest, unreadable) = finish::build_manifest(plan, opts, &fp, begin, packed)?;
    finish::write_manifest(store, &manifest)?;
    let report = finish::verify_written(store, &manifest, opts, sink, cancel)?;
    finish::remove_resume_state(store)?;
    Ok(finish::summary(&manifest, report, unreadable, resumed_segments, false))
}

/// The store holds a finished capture: the same plan's is verified and reported, another
/// plan's is refused.
fn already_complete(
    store: &mut Store,
    fp: &str,
    opts: &CaptureOptions,
    sink: &dyn Sink,
    cancel: &Cancel,
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
    let report = finish::verify_written(store, &m, opts, sink, cancel)?;
    finish::remove_resume_state(store)?;
    let unreadable: Vec<Skipped> =
        m.skipped.iter().filter(|s| matches!(s.why, Why::Unreadable { .. })).cloned().collect();
    Ok(finish::summary(&m, report, unreadable, m.segments.len() as u32, true))
}
