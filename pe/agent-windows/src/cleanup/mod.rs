//! `inplace.exe cleanup`: once every user is restored, what becomes of the store partition
//! (job.json's `store_after`): kept, formatted as an empty data drive, or deleted with C:
//! extended over it (`docs/windows.md`, "Cleanup").
//!
//! The store is found by its label (`INPLACE`, FAT32) and its locator's job id, never by its
//! label alone. Everything here is portable; the machine (volumes, raw reads, diskpart,
//! schtasks) comes in as a [`Machine`].

pub mod locator;
pub mod machine;
pub mod ready;
pub mod report;
pub mod script;

use crate::job::{Job, StoreAfter};
pub use machine::{DirMachine, Machine, Ran, Tool, Volume};
pub use report::{CleanupReport, Status};
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

/// cleanup's report, beside the staged folder.
pub const REPORT: &str = "cleanup.json";
/// The store partition's volume label.
pub const STORE_LABEL: &str = "INPLACE";

/// One cleanup run.
pub struct Request<'a> {
    /// The staged folder (`C:\ProgramData\inplace\staged`).
    pub staged: &'a Path,
    pub job: &'a Path,
    /// `cleanup.log`: diskpart's script and output, schtasks' output. The script file is
    /// written beside it while diskpart runs.
    pub log: &'a Path,
    /// Go on although some users are not restored.
    pub force: bool,
    /// Find the store and make the script; run nothing, change nothing.
    pub dry_run: bool,
    /// The scheduled task to delete once cleanup is over.
    pub task: Option<&'a str>,
}

/// What the volumes say about the store of a job.
pub struct Found {
    /// The letters of the volumes labelled INPLACE, FAT32, with a locator of this job.
    pub stores: Vec<char>,
    /// Why other INPLACE volumes do not count.
    pub notes: Vec<String>,
}

/// The volumes that hold the store of `job_id`.
pub fn find_stores(machine: &dyn Machine, job_id: [u8; 16]) -> Result<Found, String> {
    let volumes = machine.volumes().map_err(|e| format!("cannot list the drive letters: {e}"))?;
    let mut found = Found { stores: Vec::new(), notes: Vec::new() };
    for v in volumes {
        if !v.label.trim().eq_ignore_ascii_case(STORE_LABEL) {
            continue;
        }
        if !v.fs.eq_ignore_ascii_case("FAT32") {
            found.notes.push(format!("{}: is labelled {STORE_LABEL} but is {}, not FAT32", v.letter, v.fs));
            continue;
        }
        match machine.read_head(v.letter, locator::HEAD_LEN) {
            Ok(head) if locator::job_ids(&head).contains(&job_id) => found.stores.push(v.letter),
            Ok(head) if locator::job_ids(&head).is_empty() => {
                found.notes.push(format!("{}: is labelled {STORE_LABEL} but holds no store locator", v.letter))
            }
            Ok(_) => found.notes.push(format!("{}: holds the store of another job", v.letter)),
            Err(e) => found.notes.push(format!("{}: is labelled {STORE_LABEL} but could not be read ({e})", v.letter)),
        }
    }
    Ok(found)
}

fn letters(l: &[char]) -> String {
    l.iter().map(|c| format!("{c}:")).collect::<Vec<_>>().join(", ")
}

/// Appends to cleanup.log (best effort: the report holds the same).
pub fn log(path: &Path, text: &str) {
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = f.write_all(text.as_bytes());
        if !text.ends_with('\n') {
            let _ = f.write_all(b"\n");
        }
    }
}

fn waiting_line(r: &CleanupReport) -> String {
    r.pending.iter().map(|w| format!("{} ({})", w.user, w.why)).collect::<Vec<_>>().join(", ")
}

/// Runs cleanup and returns its report (not yet written).
pub fn cleanup(req: &Request, machine: &dyn Machine) -> CleanupReport {
    let mut r = CleanupReport::new(Status::Failed);
    let job = match Job::load(req.job) {
        Ok(j) => j,
        Err(e) => {
            r.message = format!("{e}; nothing was changed");
            return r;
        }
    };
    r.job_id = Some(job.job_id.clone());
    r.store_after = Some(job.store_after);
    r.pending = ready::waiting(req.staged, &job);
    if !r.pending.is_empty() && !req.force {
        r.status = Status::Waiting;
        r.message = format!(
            "waiting for {}; nothing was changed. It runs again at the next start; to go on without them, run it with --force",
            waiting_line(&r)
        );
        return r;
    }
    let forced = if r.pending.is_empty() { String::new() } else { format!(" (forced, without {})", waiting_line(&r)) };
    if job.store_after == StoreAfter::Keep {
        r.status = if req.dry_run { Status::DryRun } else { Status::Kept };
        r.message = format!("store_after is keep: the store partition is left as it is{forced}");
        if !req.dry_run {
            let _ = std::fs::remove_dir(req.staged);
            end_task(req, &mut r, machine);
        }
        return r;
    }
    let Some(job_id) = locator::parse_job_id(&job.job_id) else {
        r.message = format!(
            "the job file {} has the job id {:?}, not 32 hex digits, so its store cannot be told apart; nothing was changed",
            req.job.display(),
            job.job_id
        );
        return r;
    };
    let found = match find_stores(machine, job_id) {
        Ok(f) => f,
        Err(e) => {
            r.message = format!("{e}; nothing was changed");
            return r;
        }
    };
    let store = match found.stores.as_slice() {
        [one] => *one,
        [] => {
            let seen = if found.notes.is_empty() {
                format!("no volume labelled {STORE_LABEL} (FAT32) has a drive letter")
            } else {
                found.notes.join("; ")
            };
            r.message = format!(
                "no store of job {} was found ({seen}); nothing was changed. Assign a drive letter to the {STORE_LABEL} \
                 partition in Disk Management, then run inplace.exe cleanup --staged \"{}\" as administrator",
                job.job_id,
                req.staged.display()
            );
            return r;
        }
        many => {
            r.message = format!(
                "more than one volume holds a store of job {} ({}); cleanup does not choose, nothing was changed. \
                 Remove the drive letter of the one that is not this disk's store (Disk Management), then run \
                 inplace.exe cleanup --staged \"{}\" as administrator",
                job.job_id,
                letters(many),
                req.staged.display()
            );
            return r;
        }
    };
    r.store_volume = Some(format!("{store}:"));
    let system = match machine.system_drive() {
        Ok(c) => c,
        Err(e) => {
            r.message = format!("cannot tell the system drive (%SystemDrive%): {e}; nothing was changed");
            return r;
        }
    };
    if store.eq_ignore_ascii_case(&system) {
        r.message = format!("the store found ({store}:) is the system drive; nothing was changed");
        return r;
    }
    let Some(lines) = script::script(job.store_after, store, system) else { return r };
    r.script = Some(lines.clone());
    let what = match job.store_after {
        StoreAfter::Delete => format!("delete the store {store}: and extend {system}: over its space"),
        _ => format!("format the store {store}: as an empty NTFS drive labelled Data"),
    };
    if req.dry_run {
        r.status = Status::DryRun;
        r.message = format!("would {what}{forced}; nothing was run");
        return r;
    }
    let _ = std::fs::remove_dir(req.staged);
    run_diskpart(req, machine, &mut r, &lines, (store, system), job_id);
    if r.status != Status::Failed {
        r.message = format!("{}{forced}", r.message);
    }
    end_task(req, &mut r, machine);
    r
}

fn script_path(log: &Path) -> PathBuf {
    log.with_file_name("cleanup-diskpart.txt")
}

fn run_diskpart(req: &Request, machine: &dyn Machine, r: &mut CleanupReport, lines: &[String], (store, system): (char, char), job_id: [u8; 16]) {
    let path = script_path(req.log);
    if let Err(e) = std::fs::write(&path, script::text(lines)) {
        r.message = format!("cannot write the diskpart script {}: {e}; nothing was changed", path.display());
        return;
    }
    log(req.log, &format!("diskpart /s {}\n{}", path.display(), script::text(lines)));
    let ran = machine.run(Tool::Diskpart, &[OsString::from("/s"), path.clone().into_os_string()]);
    let _ = std::fs::remove_file(&path);
    let ran = match ran {
        Ok(ran) => ran,
        Err(e) => {
            r.message = format!("cannot run diskpart: {e}; nothing was changed");
            log(req.log, &r.message);
            return;
        }
    };
    log(req.log, &format!("{}diskpart exit code: {:?}", ran.output, ran.code));
    r.output = Some(ran.output);
    let after = r.store_after.unwrap_or_default();
    if ran.code == Some(0) {
        (r.status, r.message) = match after {
            StoreAfter::Delete => (Status::Deleted, format!("the store {store}: was deleted and {system}: extended over its space")),
            _ => (Status::Emptied, format!("the store {store}: is now an empty NTFS drive labelled Data")),
        };
        return;
    }
    let code = ran.code.map_or("none".to_string(), |c| c.to_string());
    // diskpart stops at the first failing line: is the store still there?
    let still_there = find_stores(machine, job_id).map(|f| f.stores.contains(&store)).unwrap_or(true);
    r.message = match (after, still_there) {
        (StoreAfter::Delete, false) => {
            r.status = Status::DeletedNotExtended;
            format!(
                "the store {store}: was deleted but {system}: was not extended (diskpart exit code {code}; see output): \
                 the space is unallocated. In Disk Management, extend {system}: over it if it lies right after C:, \
                 or make a new volume there"
            )
        }
        (_, true) => format!("diskpart failed (exit code {code}; see output) and the store {store}: is still there; nothing was changed. See cleanup.log, then run cleanup again as administrator"),
        (_, false) => format!("diskpart failed (exit code {code}; see output) while formatting {store}:; check the volume in Disk Management"),
    };
}

/// Deletes the scheduled task that ran cleanup, once cleanup is over.
fn end_task(req: &Request, r: &mut CleanupReport, machine: &dyn Machine) {
    let Some(task) = req.task else { return };
    if !r.status.is_final() {
        return;
    }
    log(req.log, &format!("schtasks /delete /tn {task} /f"));
    match delete_task(machine, task) {
        Ok(output) => log(req.log, &output),
        Err((output, why)) => {
            log(req.log, &output);
            r.message.push_str(&format!("; the scheduled task {task} could not be deleted ({why}): delete it in Task Scheduler"));
        }
    }
}

/// Deletes a scheduled task (`schtasks /delete /tn NAME /f`). Returns schtasks' output for a
/// log, and on failure why.
pub fn delete_task(machine: &dyn Machine, task: &str) -> Result<String, (String, String)> {
    let args: Vec<OsString> = ["/delete", "/tn", task, "/f"].iter().map(OsString::from).collect();
    match machine.run(Tool::Schtasks, &args) {
        Ok(ran) if ran.code == Some(0) => Ok(format!("{}schtasks exit code: 0", ran.output)),
        Ok(ran) => {
            let code = ran.code.map_or("none".to_string(), |c| c.to_string());
            Err((format!("{}schtasks exit code: {code}", ran.output), format!("schtasks exit code {code}")))
        }
        Err(e) => Err((format!("cannot run schtasks: {e}"), e.to_string())),
    }
}
