//! The PE's steps of a job, each safe to run again over its own partial work: a resume after a
//! power cut runs the step the journal says had begun.

use std::path::Path;

use super::find::Record;
use super::plan::Env;
use crate::carve::model::Layout;
use crate::carve::CarveOptions;
use crate::error::{Error, Hint, Result, Written};
use crate::image::apply;
use crate::migrate::capture::{capture, CaptureOptions, CapturePlan};
use crate::migrate::job_info::JobInfo;
use crate::migrate::store::Store;
use crate::progress::{Cancel, Sink};
use crate::step::Step;

/// The journal's job id as the locator keeps it.
pub fn job_id_bytes(id: &str) -> Option<[u8; 16]> {
    crate::image::format::unhex::<16>(id)
}

fn same_table(a: &Layout, b: &Layout) -> bool {
    let key = |l: &Layout| {
        let mut v: Vec<(u32, u64, u64)> = l.parts.iter().map(|p| (p.number, p.start, p.size)).collect();
        v.sort_unstable();
        (l.scheme, l.sector_size, l.disk_bytes, v)
    };
    key(a) == key(b)
}

/// Carve: makes the store the plan describes; when a cut came after the table was written,
/// finds it done.
pub fn carve(j: &Record, sink: &dyn Sink, cancel: &Cancel) -> Result<u64> {
    let plan = &j.plan;
    let disk = &plan.disk_path;
    let now = crate::carve::prepare::read(disk, Default::default()).map_err(|e| e.in_step(Step::Carve))?;
    if same_table(&now.layout, &plan.carve.after) {
        sink.log("the store's partition is already in the table: the carve was done before the cut");
        return Ok(plan.carve.store.size);
    }
    if !same_table(&now.layout, &plan.carve.before) {
        return Err(Error::refused(Step::Carve, format!("{} changed since the job was planned", disk.display()))
            .written(Written::Nothing)
            .hint(Hint::PlanAgain));
    }
    let opts = CarveOptions { job_name: plan.preset.name.clone(), job_id: job_id_bytes(&j.job_id), repair_gpt: false };
    crate::carve::carve(disk, &plan.carve, &opts, sink, cancel)?;
    Ok(plan.carve.store.size)
}

/// Capture: the old OS's files through the extent it had when the job was planned, into the
/// store, read back and verified. The capture resumes on its own after a cut.
pub fn capture_step(j: &Record, sink: &dyn Sink, cancel: &Cancel) -> Result<u64> {
    let plan = &j.plan;
    let mut store = Store::open(&plan.disk_path, true).map_err(|e| e.in_step(Step::Capture))?;
    let subject = format!("{}/partition {}", j.disk.name, plan.source.number);
    let mut src = crate::migrate::source::open_partition(&plan.disk_path, &plan.source, &subject).map_err(|e| e.in_step(Step::Capture))?;
    let rules = crate::migrate::rules::effective(None, Some(&plan.family), &plan.preset.migrate).map_err(|e| e.in_step(Step::Capture))?;
    let sel = crate::migrate::select::select(src.reader.as_mut(), &rules, sink, cancel).map_err(|e| e.in_step(Step::Capture))?;
    let mut restore = plan.preset.restore.clone();
    restore.cleanup = Some(plan.store_after.clone());
    let info = JobInfo {
        disk: plan.disk_path.display().to_string(),
        partition: plan.source.number,
        fs: plan.source.fs.clone(),
        os: plan.source.os.clone(),
        family: plan.family.clone(),
        rules: rules.to_toml(),
        preset: Some(plan.preset.name.clone()),
        restore,
        warnings: Vec::new(),
        accounts: Vec::new(),
    };
    let cp = CapturePlan::new(sel, info);
    let summary = capture(src.reader.as_mut(), &cp, &mut store, &CaptureOptions::default(), sink, cancel)?;
    sink.log(&format!(
        "captured {} files ({}) into the store, read back and verified; {} item(s) left out",
        summary.files,
        crate::units::human(summary.bytes),
        summary.skipped
    ));
    Ok(summary.bytes)
}

/// Lay-down: the image over the replaced partitions, never over the store or a kept one.
/// After a cut it lays the image down again (the table is already the new one or still the old
/// one; the placement is the same either way).
pub fn lay_down(j: &Record, env: &Env, sink: &dyn Sink, cancel: &Cancel) -> Result<u64> {
    // A staged copy in the store is read instead of the network.
    let store = match j.plan.stage && j.plan.image.remote {
        true => super::stage::StoreMount::open(j, env, Step::LayDown).ok(),
        false => None,
    };
    let staged = store.as_ref().map(|s| s.image_path(j)).filter(|p| p.exists());
    let source = match &staged {
        Some(p) => {
            sink.log(&format!("laying down the copy staged in the store ({})", p.display()));
            p.display().to_string()
        }
        None => j.plan.image.source.clone(),
    };
    let prepared = apply::prepare(&super::request::request(j, env, source), sink, cancel)?;
    if prepared.placement != j.plan.placement {
        sink.warn("the image's partitions are placed differently from the plan (the disk's free space changed); the store and kept partitions stay untouched");
    }
    let report = apply::lay_down(prepared, sink, cancel)?;
    for n in &report.notes {
        sink.log(n);
    }
    if let Some(store) = store {
        // The copy has served: the store keeps only the user's files.
        if let Some(p) = &staged {
            let _ = std::fs::remove_file(p);
        }
        store.finish()?;
    }
    Ok(report.bytes_written)
}

/// Hand-off: the restore agent and its unit into the new OS's root.
pub fn hand_off(j: &Record, env: &Env, sink: &dyn Sink, cancel: &Cancel) -> Result<u64> {
    let plan = &j.plan;
    let inv = crate::inventory::inspect_paths(&[plan.disk_path.clone()]);
    let disk = inv.disks.first().ok_or_else(|| Error::io(Step::HandOff, format!("{} cannot be read after the lay-down", plan.disk_path.display())))?;
    let root = disk
        .partitions
        .iter()
        .filter(|p| plan.placement.placed.iter().any(|pl| pl.number == p.number))
        .find(|p| p.os.as_ref().is_some_and(|o| o.family == "linux"))
        .ok_or_else(|| {
            Error::refused(Step::HandOff, "no Linux root was found on the partitions the image wrote".to_string()).written(Written::Disk)
        })?;
    let target = crate::handoff::Target {
        disk: plan.disk_path.clone(),
        number: root.number,
        start: root.start_bytes,
        size: root.size_bytes,
        fs: root.fs.clone().unwrap_or_else(|| "ext4".into()),
    };
    let r = crate::handoff::hand_off(&target, &env.agent, &j.job_id, &env.work, sink, cancel)?;
    Ok(r.written.len() as u64)
}

/// The store of the job, opened for writing, once the carve is done.
pub fn open_store(path: &Path) -> Option<Store> {
    Store::open(path, true).ok()
}
