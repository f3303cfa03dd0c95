//! The end of a capture: the manifest made from the plan and what the writer recorded,
//! written (its SHA-256 last: the commit point), read back with every segment, and the resume
//! state removed.

use std::collections::HashMap;

use super::error::CaptureError;
use super::plan::{now, CaptureOptions, CapturePlan};
use super::CaptureSummary;
use crate::migrate::entry::{Kind, Skipped, Why};
use crate::migrate::store::format::{self, CHUNK};
use crate::migrate::store::manifest::{Manifest, StoredEntry, Totals};
use crate::migrate::store::progress::{self, Position};
use crate::migrate::store::verify::{self, VerifyReport};
use crate::migrate::store::writer::Packed;
use crate::migrate::store::dir::write_in;
use crate::migrate::store::{Store, StoreError};
use crate::progress::{Cancel, Meter, Sink};

/// The manifest from the plan and what the writer recorded.
pub(super) fn build_manifest(
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
pub(super) fn write_manifest(store: &Store, m: &Manifest) -> Result<(), CaptureError> {
    let (json, line) = m.encode().map_err(|e| CaptureError::Internal(format!("encoding the manifest: {e}")))?;
    let fs = store.mount()?;
    let d = store.describe();
    let r = (|| -> Result<(), StoreError> {
        let io = |what: String| {
            let d = d.clone();
            move |source| StoreError::Io { store: d, what, source }
        };
        let dir = store.capture_dir(&fs).map_err(io(format!("opening {}/", store.selected())))?;
        write_in(&dir, format::MANIFEST, &json).map_err(io(format!("writing {}", store.capture_file(format::MANIFEST))))?;
        store.sync()?;
        write_in(&dir, format::MANIFEST_SHA, line.as_bytes())
            .map_err(io(format!("writing {}", store.capture_file(format::MANIFEST_SHA))))?;
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

/// Reads the manifest and every segment back (from the device when asked) and checks them,
/// unless the caller verifies on its own.
pub(super) fn verify_written(
    store: &Store,
    m: &Manifest,
    opts: &CaptureOptions,
    sink: &dyn Sink,
    cancel: &Cancel,
) -> Result<VerifyReport, CaptureError> {
    if !opts.verify {
        return Ok(VerifyReport::default());
    }
    if opts.reread_from_device {
        store.drop_cache().map_err(CaptureError::Verify)?;
    }
    let again = store.manifest().map_err(CaptureError::Verify)?;
    if &again != m {
        return Err(CaptureError::Verify(StoreError::BadManifest {
            store: store.describe(),
            capture: store.selected().dir(),
            detail: "the manifest read back differs from the one written".into(),
        }));
    }
    let meter = Meter::start(sink, verify::PHASE, m.totals.stored_bytes);
    verify::check_against(store, &again, &meter, cancel).map_err(|e| match e {
        e @ StoreError::Cancelled { .. } => CaptureError::Store(e),
        e => CaptureError::Verify(e),
    })
}

/// The capture is verified: the resume state goes.
pub(super) fn remove_resume_state(store: &Store) -> Result<(), CaptureError> {
    let fs = store.mount()?;
    let r = store.capture_dir(&fs).and_then(|dir| progress::remove(&dir));
    let r = r.map_err(|source| StoreError::Io {
        store: store.describe(),
        what: format!("removing {}", store.capture_file(format::PROGRESS)),
        source,
    });
    store.unmount(fs)?;
    Ok(r?)
}

pub(super) fn summary(
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
