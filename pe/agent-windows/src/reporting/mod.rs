//! `inplace.exe report send`: the job's events to the preset's collector from the new Windows
//! (`docs/reporting.md`). The PE's hand-off writes the spool into
//! `C:\ProgramData\inplace\report\<job>\`; this takes in the PE's last events from the store's
//! journal, adds the first boot's own (the new Windows is up, each user's restore report, the
//! cleanup's), and POSTs them in order. The scheduled task `inplace-report` runs it every two
//! minutes, as SYSTEM, until everything is sent and every user is restored.

pub mod envelope;
pub mod spool;
pub mod store;

use crate::cleanup::{ready, CleanupReport, REPORT as CLEANUP_REPORT};
use crate::job::{Job, StoreAfter};
use crate::pending::default_report_path;
use crate::platform::PostError;
use crate::report::{Report, Status};
use serde_json::json;
use sha2::{Digest, Sha256};
use spool::{Config, Spool};
use std::path::{Path, PathBuf};

/// Envelopes per POST.
pub const BATCH: usize = 100;
/// The scheduled task that runs `report send`.
pub const TASK: &str = "inplace-report";

/// Sends one body (a JSON array of envelopes) to the collector `config` names: on Windows,
/// `platform::post_json`.
pub type Post<'a> = &'a dyn Fn(&Config, &[u8]) -> Result<u16, PostError>;

/// `<base>\report\<job>\`, `base` being `C:\ProgramData\inplace`.
pub fn spool_dir(base: &Path, job_id: &str) -> PathBuf {
    base.join(spool::DIR).join(job_id)
}

/// One run.
pub struct Request<'a> {
    /// `C:\ProgramData\inplace`.
    pub base: &'a Path,
    pub staged: &'a Path,
    pub job: &'a Job,
    pub store: store::Where<'a>,
}

/// What one run did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub sent: usize,
    pub unsent: usize,
    /// Every user's restore (and the cleanup, when the store goes) is reported and sent: the
    /// task is no longer needed.
    pub finished: bool,
    /// What the run noticed, for its log.
    pub notes: Vec<String>,
    /// Why the last POST failed.
    pub error: Option<PostError>,
}

/// Takes the PE's last numbering and unsent events from the store's journal into `s`, once.
/// False (with a note) while the store cannot be read.
pub fn adopt_store(s: &mut Spool, w: &store::Where, notes: &mut Vec<String>) -> bool {
    if s.added.store_adopted {
        return true;
    }
    match store::journal(w, &s.numbering.job_id) {
        Ok((n, unsent)) => {
            s.merge(Some(n), unsent);
            s.added.store_adopted = true;
            true
        }
        Err(why) => {
            notes.push(format!(
                "the PE's last events are in the store, which cannot be read ({why}); the first boot's own events wait until it \
                 can be. Give the INPLACE partition a drive letter in Disk Management, or run inplace.exe report send --store X:\\"
            ));
            false
        }
    }
}

/// For cleanup, before the store goes: the PE's last events are taken into the spool in C:.
/// `None` when there is no spool or `report send` has taken them already (the spool is then
/// left alone: the task may be writing it); otherwise a line for cleanup's log.
pub fn keep_store_events(base: &Path, job_id: &str, w: &store::Where) -> Option<String> {
    let mut s = match Spool::load(&spool_dir(base, job_id)) {
        Ok(Some(s)) if s.added.store_adopted => return None,
        Ok(Some(s)) => s,
        Ok(None) => return None,
        Err(e) => return Some(format!("report spool: {e}")),
    };
    let mut notes = Vec::new();
    if !adopt_store(&mut s, w, &mut notes) {
        return Some(notes.join("; "));
    }
    Some(match s.save() {
        Ok(()) => format!("report spool: the store's events are kept in {}", s.dir.display()),
        Err(e) => format!("report spool: cannot write {}: {e}", s.dir.display()),
    })
}

/// `<file name>:<sha-256 prefix>`: a report is sent again when it changes.
fn key(path: &Path, bytes: &[u8]) -> String {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    format!("{name}:{}", crate::hash::hex(&Sha256::digest(bytes)[..8]))
}

/// Numbers the first boot's own events after the PE's: the new Windows is up (once), each
/// user's restore report not yet sent (a restore that did not complete comes as `failed`
/// first), the cleanup's report once it is final.
fn add_first_boot(s: &mut Spool, base: &Path, staged: &Path, job: &Job) {
    if !s.added.booted {
        let users: Vec<&str> = job.users.iter().map(|u| u.name.as_str()).collect();
        let message = format!("the new Windows is up; each user's files are restored at their first logon: {}", users.join(", "));
        s.push("log", json!({"event": "log", "message": message}));
        s.added.booted = true;
    }
    for u in &job.users {
        let path = default_report_path(staged, &u.name);
        let Ok(bytes) = std::fs::read(&path) else { continue };
        // One being written is taken at the next run.
        let Ok(report) = serde_json::from_slice::<Report>(&bytes) else { continue };
        let key = key(&path, &bytes);
        if s.added.reported.contains(&key) {
            continue;
        }
        if matches!(report.status, Status::Incomplete | Status::Refused) {
            let kind = if report.status == Status::Refused { "refused" } else { "io" };
            let problem = format!("{}; see {}", report.summary(), path.display());
            s.push("failed", json!({"event": "failed", "error": {"step": "restore", "kind": kind, "written": "disk", "problem": problem}}));
        }
        s.push("done", json!({"event": "done", "report": {"user": u.name, "restore": report}}));
        s.added.reported.push(key);
    }
    let path = base.join(CLEANUP_REPORT);
    if let Ok(bytes) = std::fs::read(&path) {
        let key = key(&path, &bytes);
        if let Ok(report) = serde_json::from_slice::<CleanupReport>(&bytes) {
            if report.status.is_final() && !s.added.reported.iter().any(|k| k.starts_with(CLEANUP_REPORT)) {
                s.push("done", json!({"event": "done", "report": {"cleanup": report}}));
                s.added.reported.push(key);
            }
        }
    }
}

/// Sends what the job's spool holds, after adding what the first boot has to say.
pub fn send(req: &Request, post: Post) -> Result<Outcome, String> {
    let mut out = Outcome::default();
    let dir = spool_dir(req.base, &req.job.job_id);
    let Some(mut s) = Spool::load(&dir)? else {
        out.finished = true;
        out.notes.push(format!("no report spool in {} (the preset has no [report]); nothing to send", dir.display()));
        return Ok(out);
    };
    // Before the reports are read: a user restored in between is sent at the next run.
    let waiting = ready::waiting(req.staged, req.job);
    if adopt_store(&mut s, &req.store, &mut out.notes) {
        add_first_boot(&mut s, req.base, req.staged, req.job);
    }
    let save = |s: &Spool| s.save().map_err(|e| format!("cannot write the report spool {}: {e}", dir.display()));
    save(&s)?;
    while !s.unsent.is_empty() {
        let batch = &s.unsent[..s.unsent.len().min(BATCH)];
        let last = batch.last().map_or(0, envelope::seq);
        let body = serde_json::to_vec(batch).map_err(|e| e.to_string())?;
        match post(&s.config, &body) {
            Ok(_) => {
                out.sent += batch.len();
                s.ack(last);
                save(&s)?;
            }
            Err(e) => {
                out.error = Some(e);
                break;
            }
        }
    }
    out.unsent = s.unsent.len();
    let cleanup_over = req.job.store_after == StoreAfter::Keep || s.added.reported.iter().any(|k| k.starts_with(CLEANUP_REPORT));
    out.finished = s.added.store_adopted && out.unsent == 0 && waiting.is_empty() && cleanup_over;
    Ok(out)
}

/// Appends a run's lines, with the time, to `send.log` in the spool (best effort).
pub fn log(dir: &Path, lines: &[String]) {
    use std::io::Write;
    let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("send.log")) else { return };
    let now = envelope::rfc3339(std::time::SystemTime::now());
    for l in lines {
        let _ = writeln!(f, "{now} {l}");
    }
}
