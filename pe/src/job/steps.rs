//! The PE's steps of a job, each safe to run again over its own partial work: a resume after a
//! power cut runs the step the journal says had begun.

use std::path::Path;

use super::find::Record;
use super::plan::{Env, Role, SourcePlan};
use crate::carve::model::Layout;
use crate::carve::CarveOptions;
use crate::error::{Error, Hint, Result, Written};
use crate::image::apply;
use crate::inventory::Partition;
use crate::migrate::capture::{capture, CaptureOptions, CapturePlan};
use crate::migrate::job_info::JobInfo;
use crate::migrate::rules::{self, Family};
use crate::migrate::select;
use crate::migrate::source::open_partition;
use crate::migrate::store::{CaptureState, Store};
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

/// Capture: every source of the plan, each into its own capture of the store, read through
/// the extent it had when the job was planned. A finished capture is recorded in the journal
/// (`save` writes it) and is not touched again; after a cut, the capture that was running
/// resumes on its own.
pub fn capture_step(
    j: &mut Record,
    env: &Env,
    save: &mut dyn FnMut(&mut Record) -> Result<()>,
    sink: &dyn Sink,
    cancel: &Cancel,
) -> Result<u64> {
    let plan = j.plan.clone();
    let mut store = Store::open(&plan.disk_path, true).map_err(|e| e.in_step(Step::Capture))?;
    let mut bytes = 0;
    for source in &plan.sources {
        cancel.check(Step::Capture, Written::StoreOnly)?;
        store.select(source.capture);
        let subject = format!("{}/partition {}", j.disk.name, source.partition.number);
        let finished = store.capture_state().map_err(|e| e.error(Step::Capture))? == CaptureState::Complete;
        if finished && j.captured.contains(&source.capture) {
            let m = store.manifest().map_err(|e| e.error(Step::Capture))?;
            sink.log(&format!("{subject}: captured into {}/ before: kept as it is", source.capture));
            bytes += m.totals.bytes;
            continue;
        }
        bytes += capture_source(j, source, &mut store, env, sink, cancel)?;
        j.captured.push(source.capture);
        save(j)?;
    }
    Ok(bytes)
}

/// One source into its capture.
fn capture_source(j: &Record, source: &SourcePlan, store: &mut Store, env: &Env, sink: &dyn Sink, cancel: &Cancel) -> Result<u64> {
    let plan = &j.plan;
    let in_step = |e: Error| e.in_step(Step::Capture);
    let subject = |p: &Partition| format!("{}/partition {}", j.disk.name, p.number);
    let mut src = open_partition(&plan.disk_path, &source.partition, &subject(&source.partition)).map_err(in_step)?;
    let (rules, mut os) = match source.role {
        Role::Os => (rules::effective(None, Some(&source.family), &plan.preset.migrate).map_err(in_step)?, None),
        Role::Data => {
            let family = if source.family == "linux" { Family::Linux } else { Family::Windows };
            let os_linux = plan.os.os.as_ref().is_some_and(|o| o.family == "linux");
            // A Linux data partition's homes and owners are the old OS's accounts.
            let os = (family == Family::Linux && os_linux)
                .then(|| open_partition(&plan.disk_path, &plan.os, &subject(&plan.os)))
                .transpose()
                .map_err(in_step)?;
            (rules::effective_for(family, &plan.preset.migrate).map_err(in_step)?, os)
        }
    };
    let role = match (source.role, os.as_mut()) {
        (Role::Os, _) => select::Role::Os,
        (Role::Data, Some(os)) => select::Role::Data { accounts: Some(os.reader.as_mut()) },
        (Role::Data, None) => select::Role::Data { accounts: None },
    };
    let sel = select::select_as(src.reader.as_mut(), &rules, role, sink, cancel).map_err(in_step)?;
    let mut restore = plan.preset.restore.clone();
    restore.cleanup = Some(plan.store_after.clone());
    restore.initial_password = None;
    let info = JobInfo {
        disk: plan.disk_path.display().to_string(),
        partition: source.partition.number,
        fs: source.partition.fs.clone(),
        os: source.partition.os.clone(),
        family: source.family.clone(),
        rules: rules.to_toml(),
        preset: Some(plan.preset.name.clone()),
        restore,
        warnings: Vec::new(),
        accounts: Vec::new(),
    };
    let cp = CapturePlan::new(sel, info);
    // The verify step reads every capture back once they are all in.
    let mut opts = CaptureOptions { verify: false, ..CaptureOptions::default() };
    if let Some((name, after)) = env.cut_capture {
        opts.abort_after_bytes = (name == source.capture).then_some(after);
    }
    let summary = capture(src.reader.as_mut(), &cp, store, &opts, sink, cancel)?;
    sink.log(&format!(
        "{}: captured {} files ({}) into {}/; {} item(s) left out",
        subject(&source.partition),
        summary.files,
        crate::units::human(summary.bytes),
        source.capture,
        summary.skipped
    ));
    Ok(summary.bytes)
}

/// Verify: every capture read back from the disk (the page cache dropped first) and checked
/// against its manifest: segment digests, record and entry checksums.
pub fn verify(j: &Record, sink: &dyn Sink, cancel: &Cancel) -> Result<u64> {
    let plan = &j.plan;
    let mut store = Store::open(&plan.disk_path, false).map_err(|e| e.in_step(Step::Verify))?;
    let mut bytes = 0;
    for source in &plan.sources {
        store.select(source.capture);
        store.drop_cache().map_err(|e| e.error(Step::Verify))?;
        let r = crate::migrate::store::verify(&store, sink, cancel)?;
        sink.log(&format!(
            "{}/partition {}: {}/ read back and verified: {} files, {}",
            j.disk.name,
            source.partition.number,
            source.capture,
            r.files,
            crate::units::human(r.bytes)
        ));
        bytes += r.stored_bytes;
    }
    Ok(bytes)
}

/// Lay-down: the image over the replaced partitions, never over the store or a kept one.
/// After a cut it lays the image down again (the table is already the new one or still the old
/// one; the placement is the same either way). The growable filesystem is grown to fill its
/// partition; the figures go into the journal (`resized`).
pub fn lay_down(j: &mut Record, env: &Env, sink: &dyn Sink, cancel: &Cancel) -> Result<u64> {
    // A staged copy in the store is read instead of the network.
    let store = match j.plan.stage && j.plan.image.remote {
        true => super::stage::StoreMount::open(j, env, Step::LayDown)
            .map_err(|e| sink.warn(&format!("{}; the image is streamed from {} instead", e.problem, j.plan.image.source)))
            .ok(),
        false => None,
    };
    let staged = store.as_ref().map(|s| s.image_path(j)).filter(|p| {
        let there = p.exists();
        if !there {
            sink.warn(&format!("the staged copy {} is not in the store; the image is streamed from {} instead", p.display(), j.plan.image.source));
        }
        there
    });
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
    j.resized = report.resized.clone();
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
    if plan.new_os == "windows" {
        return hand_off_windows(j, env, disk, sink, cancel);
    }
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
    let r = crate::handoff::hand_off(&target, &env.agent, &j.job_id, plan.preset.report.is_some(), &env.work, sink, cancel)?;
    Ok(r.written.len() as u64)
}

/// Hand-off to a new Windows: the profiles staged into its C: with the agent and the setup
/// scripts (`handoff::windows`).
fn hand_off_windows(j: &Record, env: &Env, disk: &crate::inventory::Disk, sink: &dyn Sink, cancel: &Cancel) -> Result<u64> {
    use inplace_agent::job::{Job, JobUser};
    let plan = &j.plan;
    let c = disk
        .partitions
        .iter()
        .filter(|p| plan.placement.placed.iter().any(|pl| pl.number == p.number))
        .find(|p| p.os.as_ref().is_some_and(|o| o.family == "windows"))
        .ok_or_else(|| Error::refused(Step::HandOff, "no Windows was found on the partitions the image wrote".to_string()).written(Written::Disk))?;
    let agent = env.agent_windows.as_deref().ok_or_else(|| {
        Error::refused(Step::HandOff, "this inplace has no Windows restore agent (inplace.exe)".to_string()).written(Written::Disk)
    })?;
    let accounts: Vec<&crate::os::Account> = plan.sources.iter().filter_map(|s| s.partition.os.as_ref()).flat_map(|o| &o.accounts).collect();
    let mut users: Vec<JobUser> = Vec::new();
    for name in plan.sources.iter().flat_map(|s| &s.users) {
        if users.iter().any(|u| u.name.eq_ignore_ascii_case(name)) {
            continue;
        }
        let account = accounts.iter().find(|a| a.name.eq_ignore_ascii_case(name));
        users.push(JobUser {
            name: name.clone(),
            sid: account.and_then(|a| a.sid.clone()),
            kind: account.map_or_else(|| "local".to_string(), |a| a.kind.clone()),
        });
    }
    let restore = &plan.preset.restore;
    let job = Job {
        version: 1,
        job_id: j.job_id.clone(),
        preset: plan.preset.name.clone(),
        conflict: choice(restore.conflict.as_deref(), "restore.conflict", sink),
        create_users: restore.create_users == Some(true),
        store_after: choice(Some(&plan.store_after), "store.after", sink),
        users,
        report: plan.preset.report.is_some(),
    };
    let report = plan.preset.report.as_ref().map(|config| windows_report_spool(j, env, config));
    let target = crate::handoff::Target {
        disk: plan.disk_path.clone(),
        number: c.number,
        start: c.start_bytes,
        size: c.size_bytes,
        fs: "ntfs".into(),
    };
    let captures: Vec<_> = plan.sources.iter().map(|s| s.capture).collect();
    let h = crate::handoff::windows::Handoff {
        target: &target,
        agent,
        job: &job,
        password: restore.initial_password.as_deref().unwrap_or(""),
        store: &plan.disk_path,
        captures: &captures,
        mount_under: &env.work,
        report: report.as_ref(),
    };
    let r = crate::handoff::windows::hand_off(&h, sink, cancel)?;
    Ok(r.staging.users.iter().map(|u| u.bytes).sum())
}

/// The report spool for the new Windows: what the run's reporter has not sent, with its
/// numbering; without a reporter (it could not start), an empty one numbered from 1. The
/// agent takes the PE's later events, and any numbering an earlier run kept, from the store's
/// journal.
fn windows_report_spool(j: &Record, env: &Env, config: &crate::report::ReportConfig) -> crate::handoff::windows::ReportSpool {
    use crate::report::outbox::Numbering;
    use crate::report::spool::encode_state;
    let (spool, state) = env.reporter.as_ref().and_then(|r| r.spool_files()).unwrap_or_else(|| {
        let machine = crate::report::Identity::read(Path::new("/sys"));
        (Vec::new(), encode_state(&Numbering { job_id: j.job_id.clone(), machine, next_seq: 1, acked: 0 }))
    });
    let config = serde_json::to_vec_pretty(config).unwrap_or_default();
    crate::handoff::windows::ReportSpool { config, state, spool }
}

/// A preset's word for one of the agent's choices (`keep-new`, `delete`, …); a word it does not
/// know is its default, as the Linux restore takes it, with a warning.
fn choice<T: serde::Serialize + serde::de::DeserializeOwned + Default>(word: Option<&str>, key: &str, sink: &dyn Sink) -> T {
    let Some(word) = word else { return T::default() };
    serde_json::from_value(serde_json::Value::from(word)).unwrap_or_else(|_| {
        let d = T::default();
        sink.warn(&format!("{key} = {word:?} is not known: the new Windows takes the default, {}", serde_json::to_string(&d).unwrap_or_default()));
        d
    })
}

/// The store of the job, opened for writing, once the carve is done.
pub fn open_store(path: &Path) -> Option<Store> {
    Store::open(path, true).ok()
}
