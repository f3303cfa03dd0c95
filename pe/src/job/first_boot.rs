//! The job's last steps, in the new OS on its first boot (run by `inplace-restore.service`):
//! restore → cleanup → done, each transition in the journal (the store's reserve) and in a
//! copy kept in the new OS (`/var/log/inplace/journal.json`, which outlives a deleted store).
//! The unit is disabled only once the job is done, so a restore cut short, or one that did not
//! put everything back, runs again at the next boot.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::find::Record;
use super::journal::now;
use super::state::State;
use crate::disk::device::{Device, ReadAt};
use crate::disk::write::RwDevice;
use crate::error::{Error, Result, Written};
use crate::migrate::restore::report::{CleanupReport, Report};
use crate::migrate::restore::{self, cleanup, users::Useradd, Cleanup, Finished, Options};
use crate::migrate::store::{Store, StoreKind};
use crate::progress::{Cancel, Event, Sink};
use crate::report::envelope::Origin;
use crate::report::Reporter;
use crate::step::Step;

/// The journal's copy in the new OS.
pub const JOURNAL_COPY: &str = "var/log/inplace/journal.json";

/// Where the journal is: the device and the reserve's offset on it.
struct Place {
    dev: RwDevice,
    at: u64,
}

fn place_of(store: &Store) -> Result<Place> {
    let io = |m: String| Error::io(Step::Restore, m);
    let dev = RwDevice::open(store.path()).map_err(|e| io(e.to_string()))?;
    let at = match store.kind() {
        StoreKind::Disk { .. } => {
            let d = Device::open(store.path()).map_err(|e| io(e.to_string()))?;
            super::find::locator_reserve(&d).map_err(|e| io(e.to_string()))?
        }
        StoreKind::Volume => {
            let sector = dev.geometry().map_or(512, |g| g.logical_sector_size);
            crate::locator::reserve_offset(dev.size(), sector)
        }
    };
    let at = at.ok_or_else(|| io(format!("{}: too small to hold a journal", store.path().display())))?;
    Ok(Place { dev, at })
}

/// Writes the copy in the new OS, on the disk when this returns (the file, then its folder): the
/// cleanup deletes the store, and with it the journal, right after recording `cleaning-up` here;
/// a power cut then finds the job only through this copy.
fn save_copy(root: &Path, j: &Record) {
    let path = root.join(JOURNAL_COPY);
    let Some(dir) = path.parent() else { return };
    let _ = std::fs::create_dir_all(dir);
    let Ok(json) = serde_json::to_vec_pretty(j) else { return };
    if crate::files::write_atomic(&path, &json).is_ok() {
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
}

fn read_copy(root: &Path) -> Option<Record> {
    serde_json::from_slice(&std::fs::read(root.join(JOURNAL_COPY)).ok()?).ok()
}

/// Records a transition in the reserve (when the store is still there) and in the copy.
fn record(j: &mut Record, place: Option<&Place>, root: &Path) -> Result<()> {
    if let Some(p) = place {
        j.write(&p.dev, p.at)?;
    } else {
        j.seq += 1;
    }
    save_copy(root, j);
    Ok(())
}

/// Stops the unit from running at later boots.
pub fn disable_unit(root: &Path) {
    let _ = std::fs::remove_file(root.join(crate::handoff::linux::WANTS));
}

/// Finishes the job inside the new OS whose root is `root` (`/` on a first boot).
pub fn first_boot(root: &Path, store_path: Option<&Path>, sink: &dyn Sink, cancel: &Cancel) -> Result<Record> {
    let root = std::path::absolute(root).map_err(|e| Error::refused(Step::Restore, format!("{}: {e}", root.display())))?;
    let found = restore::store_path(store_path);
    let (path, mut j, place) = match found {
        Ok((path, how)) => {
            if let Some(how) = how {
                sink.log(&format!("the store is {} ({how})", path.display()));
            }
            let store = Store::open(&path, false).map_err(|e| e.in_step(Step::Restore))?;
            let place = place_of(&store)?;
            drop(store);
            let j = Record::read(&place.dev, place.at)?
                .or_else(|| read_copy(&root))
                .ok_or_else(|| Error::refused(Step::Restore, format!("the store {} has no job journal", path.display())))?;
            (Some(path), j, Some(place))
        }
        Err(e) => match read_copy(&root) {
            // The store is gone: deleted by the cleanup, which a cut may have interrupted.
            Some(j) if j.state >= State::CleaningUp => (None, j, None),
            _ => return Err(e.in_step(Step::Restore)),
        },
    };
    if j.state == State::Done {
        sink.log(&format!("job {} is done", j.job_id));
        disable_unit(&root);
        return Ok(j);
    }
    let reporter = report_spool(&root, &j, path.as_deref());
    let both = crate::progress::Tee(match &reporter {
        Some(r) => vec![sink, r],
        None => vec![sink],
    });
    let sink: &dyn Sink = &both;
    if j.state < State::HandedOff {
        return Err(Error::refused(
            Step::Restore,
            format!("job {} is at {}: the PE has not finished its part; boot the PE again to resume it", j.job_id, j.state),
        ));
    }
    let mut report = None;
    if j.state <= State::Restoring {
        let path = path.clone().ok_or_else(|| Error::io(Step::Restore, "the store is gone before the restore"))?;
        report = restore_step(&mut j, &path, place.as_ref(), &root, sink, cancel)?;
    }
    let cleanup = cleanup_step(&mut j, path.as_deref(), place, &root, sink, cancel)?;
    // The restore's report said the store was kept (the job cleans up after it): say what was
    // done.
    let restored = match report {
        Some(mut r) => {
            r.cleanup = Some(cleanup.clone());
            if let Err(e) = restore::report::write_to_target_dir(&root, &r) {
                sink.warn(&format!("the restore report could not be updated with the cleanup: {e}"));
            }
            serde_json::to_value(&r).unwrap_or_default()
        }
        None => serde_json::Value::Null,
    };
    sink.event(&Event::Done {
        report: serde_json::json!({ "journal": super::run::summary(&j), "restore": restored, "cleanup": cleanup }),
    });
    disable_unit(&root);
    Ok(j)
}

/// The first boot's events, kept in the new OS (`/var/lib/inplace/report/<job>/`) after what
/// the PE left unsent (from the store's journal), for `inplace-report.service` to send once
/// the network is up. `None` when the preset has no `[report]`.
fn report_spool(root: &Path, j: &Record, store: Option<&Path>) -> Option<Reporter> {
    use crate::report::outbox::{Numbering, Outbox};
    use crate::report::spool::SpoolDir;
    let config = j.plan.preset.report.as_ref()?;
    let dir = root.join(crate::report::spool::NEW_OS_DIR);
    let interval = std::time::Duration::from_secs(config.interval_secs());
    let here = SpoolDir(&dir.join(&j.job_id)).load();
    let from_store = || super::reporting::from_store(&Store::open(store?, false).ok()?);
    let (n, unsent) = match here {
        Some((n, unsent, _)) => (n, unsent),
        None => from_store().unwrap_or_else(|| {
            let machine = crate::report::Identity::read(Path::new("/sys"));
            (Numbering { job_id: j.job_id.clone(), machine, next_seq: 1, acked: 0 }, Vec::new())
        }),
    };
    SpoolDir(&dir.join(&j.job_id)).save_config(config).ok()?;
    Some(Reporter::spool_only(Outbox::resume(Origin::FirstBoot, n, unsent, interval), dir))
}

fn restore_step(j: &mut Record, path: &Path, place: Option<&Place>, root: &Path, sink: &dyn Sink, cancel: &Cancel) -> Result<Option<Box<Report>>> {
    let t = Instant::now();
    j.begin(Step::Restore, now());
    record(j, place, root)?;
    sink.event(&Event::Step { step: Step::Restore });
    let store = Store::open(path, true).map_err(|e| e.in_step(Step::Restore))?;
    let opts = Options { root: root.to_path_buf(), cleanup: Some(Cleanup::Keep), ..Default::default() };
    let result = restore::restore(store, &opts, &mut Useradd, sink, cancel);
    let (bytes, report) = match result {
        Ok(Finished::Done(report)) if report.complete() => (report.totals.bytes, Some(report)),
        Ok(Finished::AlreadyRestored(_)) => (0, None),
        Ok(Finished::Done(report) | Finished::Incomplete(report)) => {
            let e = Error::io(
                Step::Restore,
                format!("{} entries were not restored (see /var/log/inplace/restore-report.txt); the restore runs again at the next boot", report.totals.failed),
            )
            .written(Written::Disk);
            return fail(j, place, root, sink, e).map(|()| None);
        }
        Err(e) => return fail(j, place, root, sink, e).map(|()| None),
    };
    if root == Path::new("/") {
        apply_hostname(root, sink);
    }
    let secs = t.elapsed().as_secs_f64();
    j.end(Step::Restore, now(), secs, bytes);
    record(j, place, root)?;
    sink.event(&Event::StepDone { step: Step::Restore, secs, bytes });
    Ok(report)
}

/// The running system takes the restored hostname now: systemd set the new OS's own before the
/// restore ran, and the login prompts that follow show the machine's name.
fn apply_hostname(root: &Path, sink: &dyn Sink) {
    let Ok(text) = std::fs::read_to_string(root.join("etc/hostname")) else { return };
    let name = text.lines().next().unwrap_or("").trim();
    if name.is_empty() || rustix::system::uname().nodename().to_bytes() == name.as_bytes() {
        return;
    }
    match rustix::system::sethostname(name.as_bytes()) {
        Ok(()) => sink.log(&format!("the hostname is now {name}")),
        Err(e) => sink.warn(&format!("the restored hostname {name} takes effect at the next boot ({e})")),
    }
}

fn fail(j: &mut Record, place: Option<&Place>, root: &Path, sink: &dyn Sink, e: Error) -> Result<()> {
    j.error = Some(e.clone());
    let _ = record(j, place, root);
    sink.event(&Event::Failed { error: e.clone() });
    Err(e)
}

fn cleanup_step(
    j: &mut Record,
    path: Option<&Path>,
    place: Option<Place>,
    root: &Path,
    sink: &dyn Sink,
    cancel: &Cancel,
) -> Result<CleanupReport> {
    cancel.check(Step::Cleanup, Written::Disk)?;
    let t = Instant::now();
    let mode = Cleanup::parse(&j.plan.store_after).unwrap_or_default();
    j.begin(Step::Cleanup, now());
    record(j, place.as_ref(), root)?;
    sink.event(&Event::Step { step: Step::Cleanup });
    let mut place = place;
    let detail = match (mode, path) {
        (Cleanup::Keep, _) => vec!["the store is kept as it is".to_string()],
        (Cleanup::Empty, Some(p)) => {
            let mut store = Store::open(p, true).map_err(|e| e.in_step(Step::Cleanup))?;
            let r = cleanup::empty(&mut store, false);
            if !r.done {
                return fail(j, place.as_ref(), root, sink, Error::io(Step::Cleanup, r.detail.join("; ")).written(Written::Disk)).map(|()| r);
            }
            r.detail
        }
        (Cleanup::Delete, Some(p)) => {
            let store = Store::open(p, true).map_err(|e| e.in_step(Step::Cleanup))?;
            let site = cleanup::site_of(&store).map_err(|e| Error::io(Step::Cleanup, e))?;
            drop(store);
            // Nothing of the store may stay open: the kernel refuses to drop a partition in use.
            drop(place.take());
            // The journal goes with the store: the copy in the new OS carries on.
            j.end(Step::Cleanup, now(), t.elapsed().as_secs_f64(), 0);
            j.state = State::CleaningUp;
            save_copy(root, j);
            let r = cleanup::delete(&site, false);
            if !r.done {
                return fail(j, None, root, sink, Error::io(Step::Cleanup, r.detail.join("; ")).written(Written::Disk)).map(|()| r);
            }
            r.detail
        }
        (_, None) => vec!["the store was deleted already".to_string()],
    };
    for d in &detail {
        sink.log(d);
    }
    let secs = t.elapsed().as_secs_f64();
    j.end(Step::Cleanup, now(), secs, 0);
    record(j, place.as_ref(), root)?;
    sink.event(&Event::StepDone { step: Step::Cleanup, secs, bytes: 0 });
    Ok(CleanupReport { mode: mode.as_str().into(), done: true, detail })
}

/// Where the store will be looked for when none is given (for messages).
pub fn default_store() -> Option<PathBuf> {
    restore::store_path(None).ok().map(|(p, _)| p)
}
