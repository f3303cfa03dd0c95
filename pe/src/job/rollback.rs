//! Rolling a job back, up to the start of its lay-down: the partition table the carve saved
//! goes back, then the store's area is zeroed — it is free space of the old OS's partition (or
//! unallocated space) again, and the captured copy of the user's files must not linger there.
//! The old OS's partitions are then byte for byte as before the job in every block their
//! filesystems use; the store's area reads as zeros.
//!
//! Order, for power cuts: the journal says rolling-back; the store's FAT volume is zeroed (the
//! tail with the saved table, the journal and the locator's tail copy stays); the table goes
//! back; the tail is zeroed last. A cut anywhere leaves the journal (and the tail locator that finds it) until
//! the end, so running the rollback again finishes it.

use std::path::Path;
use std::time::Instant;

use super::find::{self, Found, Record};
use super::journal::now;
use super::state::State;
use crate::disk::device::ReadAt;
use crate::disk::write::{RwDevice, WriteAt};
use crate::error::{Error, Hint, Result, Written};
use crate::progress::{Cancel, Event, Meter, Sink};
use crate::step::Step;

/// The job on `path`, found through the table (its store partition) or, when the table no
/// longer lists the store, through the store's locator.
pub fn find_job(path: &Path) -> Result<Option<Found>> {
    let inv = crate::inventory::inspect_paths(&[path.to_path_buf()]);
    if let Some(disk) = inv.disks.first() {
        if let Some(f) = find::anywhere(path, disk)? {
            return Ok(Some(f));
        }
    }
    let dev = find::open(path)?;
    let Ok(Some(at)) = find::locator_reserve(&dev) else { return Ok(None) };
    Ok(find::read(&dev, at, dev.size())?.map(|journal| Found { at, journal }))
}

/// Rolls back the job on `path`. Refused once the lay-down has begun (the old OS is gone; the
/// job can only go forward then).
pub fn rollback(path: &Path, sink: &dyn Sink, cancel: &Cancel) -> Result<Record> {
    let name = path.display().to_string();
    let Found { at, journal: mut j } =
        find_job(path)?.ok_or_else(|| Error::refused(Step::Rollback, format!("{name} holds no inplace job to roll back")))?;
    if j.state == State::RolledBack {
        sink.log(&format!("job {} was rolled back already", j.job_id));
        return Ok(j);
    }
    if !j.state.can_roll_back() {
        return Err(Error::refused(
            Step::Rollback,
            format!("job {} on {name} is at {}: the new OS is being or has been laid down, so the old OS cannot come back", j.job_id, j.state),
        )
        .hint(Hint::RunAgain));
    }
    cancel.check(Step::Rollback, Written::Nothing)?;
    let started = Instant::now();
    sink.event(&Event::Step { step: Step::Rollback });
    let dev = RwDevice::open(path).map_err(|e| Error::io(Step::Rollback, e.to_string()))?;
    let store = j.plan.carve.store.clone();
    let tail_from = store.size - crate::locator::STORE_TAIL;
    j.begin(Step::Rollback, now());
    j.write(&dev, at)?;
    let io = |what: &str, e: std::io::Error| {
        Error::io(Step::Rollback, format!("{name}: {what}: {e}")).written(Written::Disk).hint(Hint::Rollback { disk: name.clone() })
    };
    // The store's volume, but not yet its tail: the saved table, the journal, the tail locator.
    let m = Meter::start(sink, "clearing the store", store.size);
    let mut done = 0;
    while done < tail_from {
        cancel.check(Step::Rollback, Written::Disk)?;
        let n = (tail_from - done).min(16 << 20);
        dev.zero_at(store.start + done, n).map_err(|e| io("clearing the store", e))?;
        done += n;
        m.set(done);
    }
    dev.sync().map_err(|e| io("syncing", e))?;
    // The table, when the carve got as far as changing it.
    let table_changed = crate::carve::prepare::read(path, Default::default())
        .map(|now| now.layout.parts.iter().any(|p| p.number == store.number && p.start == store.start))
        .unwrap_or(true);
    if table_changed {
        let prepared = crate::locator::rollback::prepare(path)?;
        crate::locator::rollback::roll_back(&prepared, sink, &Cancel::new())?;
        sink.log(&format!("the partition table of {name} is as it was before the job"));
    }
    let secs = started.elapsed().as_secs_f64();
    j.end(Step::Rollback, now(), secs, store.size);
    j.write(&dev, at)?;
    dev.zero_at(store.start + tail_from, store.size - tail_from).map_err(|e| io("clearing the store's tail", e))?;
    dev.sync().map_err(|e| io("syncing", e))?;
    m.set(store.size);
    sink.event(&Event::StepDone { step: Step::Rollback, secs, bytes: store.size });
    Ok(j)
}
