//! Running a job: plan, journal, then each step in turn, every transition written and synced
//! to the journal before the next step begins. A job found unfinished on the disk resumes at
//! the step its journal names; a new job is never started over a store holding a capture that
//! is not restored.

use std::path::Path;
use std::time::Instant;

use super::find::{self, Found, Record};
use super::journal::{now, DiskId, Journal};
use super::plan::{self, Env, Planned};
use super::state::State;
use super::steps;
use crate::disk::write::RwDevice;
use crate::error::{Error, Hint, Result, Written};
use crate::migrate::store::journal::EventLog;
use crate::preset::Preset;
use crate::progress::{Cancel, Event, Sink, Tee};
use crate::step::Step;

/// How a run ended, for the front end's summary.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub journal: Record,
    /// The plan in words (a fresh job) or the journal's (a resumed one).
    pub lines: Vec<String>,
    pub resumed: bool,
}

fn new_id() -> String {
    let mut b = [0u8; 16];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut b);
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Plans only: what [`run`] would do, nothing written.
pub fn dry_run(preset: &Preset, env: &Env, sink: &dyn Sink, cancel: &Cancel) -> Result<Planned> {
    sink.event(&Event::Step { step: Step::Plan });
    plan::plan(preset, env, sink, cancel)
}

/// Runs the job `preset` describes, up to and including the hand-off; or, when the disk it
/// names holds an unfinished job, resumes that one.
pub fn run(preset: &Preset, env: &Env, sink: &dyn Sink, cancel: &Cancel) -> Result<Outcome> {
    sink.event(&Event::Step { step: Step::Plan });
    let started = Instant::now();
    // An unfinished job comes first: its disk may no longer look like the preset's choice
    // (a lay-down cut short leaves no OS to recognise).
    if let Some((path, found)) = unfinished(env)? {
        return resume_found(found, &path, env, sink, cancel);
    }
    let planned = plan::plan(preset, env, sink, cancel)?;
    let path = planned.plan.disk_path.clone();
    for l in &planned.lines {
        sink.log(l);
    }
    if let Some(found) = find::planned(&path, &planned.plan)? {
        if found.journal.state != State::RolledBack && found.journal.state != State::Done {
            return resume_found(found, &path, env, sink, cancel);
        }
    }
    let d = &planned.disk;
    let id = DiskId {
        name: d.name.clone(),
        size_bytes: d.size_bytes,
        sector_size: d.logical_sector_size,
        serial: d.serial.clone(),
        wwn: d.wwn.clone(),
        model: d.model.clone(),
    };
    let at = find::reserve_at(planned.plan.carve.store.start, planned.plan.carve.store.size, d.logical_sector_size)
        .ok_or_else(|| Error::internal(Step::Plan, "the planned store is smaller than its tail"))?;
    let mut j: Record = Journal::new(new_id(), preset.name.clone(), id, planned.plan.clone());
    j.begin(Step::Plan, now());
    j.end(Step::Plan, now(), started.elapsed().as_secs_f64(), 0);
    j.state = State::Planned;
    sink.event(&Event::StepDone { step: Step::Plan, secs: started.elapsed().as_secs_f64(), bytes: 0 });
    let dev = open(&path, Step::Carve)?;
    j.write(&dev, at)?;
    sink.log(&format!("job {} recorded in the journal on {}", j.job_id, d.name));
    sink.event(&Event::Job { job_id: j.job_id.clone(), name: j.name.clone(), resumed: false });
    let journal = drive(j, &dev, at, env, sink, cancel)?;
    Ok(Outcome { journal, lines: planned.lines, resumed: false })
}

/// The one candidate disk holding a job that is not finished or rolled back; refused when
/// several do.
pub fn unfinished(env: &Env) -> Result<Option<(std::path::PathBuf, Found)>> {
    let mut found = Vec::new();
    for d in env.inventory.disks.iter().filter(|d| !env.excluded.contains(&d.name)) {
        let path = env.path_of(&d.name);
        if let Some(f) = find::anywhere(&path, d)? {
            if !matches!(f.journal.state, State::Done | State::RolledBack) {
                found.push((path, f));
            }
        }
    }
    if found.len() > 1 {
        let names: Vec<String> = found.iter().map(|(p, f)| format!("{} (job {}, {})", p.display(), f.journal.job_id, f.journal.state)).collect();
        return Err(Error::refused(Step::Plan, format!("several disks hold unfinished jobs: {}", names.join("; ")))
            .advice("finish or roll back each one by itself"));
    }
    Ok(found.pop())
}

/// Resumes the unfinished job on the disk at `path`.
pub fn resume(path: &Path, env: &Env, sink: &dyn Sink, cancel: &Cancel) -> Result<Outcome> {
    let disk = inventory_disk(path, env)?;
    let found = find::anywhere(path, &disk)?
        .ok_or_else(|| Error::refused(Step::Inspect, format!("{} holds no inplace job to resume", path.display())))?;
    resume_found(found, path, env, sink, cancel)
}

fn inventory_disk(path: &Path, env: &Env) -> Result<crate::inventory::Disk> {
    let by_path = env.inventory.disks.iter().find(|d| env.path_of(&d.name) == path).cloned();
    match by_path {
        Some(d) => Ok(d),
        None => crate::inventory::inspect_paths(&[path.to_path_buf()])
            .disks
            .into_iter()
            .next()
            .ok_or_else(|| Error::io(Step::Inspect, format!("{} cannot be read as a disk", path.display()))),
    }
}

fn resume_found(found: Found, path: &Path, env: &Env, sink: &dyn Sink, cancel: &Cancel) -> Result<Outcome> {
    let j = found.journal;
    if let Some(r) = &env.reporter {
        super::reporting::adopt_from_store(r, &j);
    }
    sink.event(&Event::Job { job_id: j.job_id.clone(), name: j.name.clone(), resumed: true });
    sink.log(&format!("job {} ({:?}) found on {} at state {}: resuming", j.job_id, j.name, path.display(), j.state));
    let lines = super::plan::describe(&inventory_disk(path, env)?, &j.plan);
    match j.state {
        State::Done | State::RolledBack => {
            sink.log(&format!("the job has nothing left to do ({})", j.state));
            return Ok(Outcome { journal: j, lines, resumed: true });
        }
        s if !s.pe_side() => {
            sink.log("the new OS finishes the job (the restore) on its first boot: boot the disk");
            return Ok(Outcome { journal: j, lines, resumed: true });
        }
        _ => {}
    }
    let dev = open(path, j.state.next_step().unwrap_or(Step::Finish))?;
    let journal = drive(j, &dev, found.at, env, sink, cancel)?;
    Ok(Outcome { journal, lines, resumed: true })
}

fn open(path: &Path, step: Step) -> Result<RwDevice> {
    RwDevice::open(path).map_err(|e| Error::io(step, e.to_string()))
}

/// Runs the PE's steps from the journal's state to the hand-off.
fn drive(mut j: Record, dev: &RwDevice, at: u64, env: &Env, sink: &dyn Sink, cancel: &Cancel) -> Result<Record> {
    let log = EventLog::new();
    let tee = Tee(vec![sink, &log]);
    while let Some(step) = j.state.next_step() {
        if !j.state.pe_side() || step == Step::Rollback {
            break;
        }
        let t = Instant::now();
        j.begin(step, now());
        j.write(dev, at)?;
        tee.event(&Event::Step { step });
        let result = match step {
            Step::Carve => steps::carve(&j, &tee, cancel),
            // The capture keeps its own events in the store.
            Step::Capture => steps::capture_step(&mut j, env, &mut |j| j.write(dev, at), sink, cancel),
            Step::Verify => steps::verify(&j, &tee, cancel),
            Step::Stage => super::stage::stage(&j, env, &tee, cancel),
            Step::LayDown => steps::lay_down(&mut j, env, &tee, cancel),
            Step::HandOff => steps::hand_off(&j, env, &tee, cancel),
            other => Err(Error::internal(other, format!("the PE has no step {other}"))),
        };
        match result {
            Ok(bytes) => {
                let secs = t.elapsed().as_secs_f64();
                j.end(step, now(), secs, bytes);
                j.write(dev, at)?;
                tee.event(&Event::StepDone { step, secs, bytes });
                if !j.state.pe_side() {
                    tee.event(&Event::Done { report: summary(&j) });
                }
                keep_events(&j, &log, env);
            }
            Err(e) => {
                let e = e.in_step(step).at_least(if j.state > State::Carving { Written::StoreOnly } else { Written::Nothing });
                let e = match j.state.can_roll_back() {
                    true if j.state > State::Carving => e.hint(Hint::Rollback { disk: j.plan.disk_path.display().to_string() }),
                    _ => e,
                };
                j.error = Some(e.clone());
                let _ = j.write(dev, at);
                tee.event(&Event::Failed { error: e.clone() });
                keep_events(&j, &log, env);
                return Err(e.hint(Hint::RunAgain));
            }
        }
    }
    Ok(j)
}

/// Appends the gathered events to the store's `journal/events.jsonl`, and keeps what the
/// reporter has not sent in `journal/report-*`, once there is a store.
fn keep_events(j: &Record, log: &EventLog, env: &Env) {
    if j.state < State::Carved {
        return;
    }
    if let Some(store) = steps::open_store(&j.plan.disk_path) {
        let _ = log.keep(&store);
        if let Some(r) = &env.reporter {
            super::reporting::keep_in_store(&store, r);
        }
    }
}

/// What the `Done` event carries for the PE's part: the journal's steps, times and bytes.
pub fn summary(j: &Record) -> serde_json::Value {
    serde_json::json!({
        "job_id": j.job_id,
        "name": j.name,
        "state": j.state,
        "disk": j.disk,
        "image": j.plan.image.source,
        "steps": j.steps,
        "resized": j.resized,
    })
}
