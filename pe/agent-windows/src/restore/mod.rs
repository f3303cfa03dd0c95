//! Restoring one user: check the manifest, move and verify each entry, then remove the staged
//! copy only when everything verified.

mod file;
mod staged;

use crate::check::check_component;
use crate::folders::Folders;
use crate::job::Job;
use crate::manifest::{Entry, Kind, Manifest};
use crate::mapping::{self, Destination, KnownFolder};
use crate::platform::fs_path;
use crate::report::{EntryReport, Outcome, Report, Status};
use crate::times;
use crate::transfer::Strategy;
use staged::Staged;
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

/// One user's restore.
pub struct Request<'a> {
    /// The staged folder (`C:\ProgramData\inplace\staged`).
    pub staged: &'a Path,
    pub user: &'a str,
    /// The job, or why it could not be read (the restore is then refused).
    pub job: Result<Job, String>,
    pub folders: &'a dyn Folders,
    pub strategy: Strategy,
}

/// What to tell the technician when the staged folder is refused.
fn refused_advice(staged: &Path) -> String {
    format!(
        "nothing was moved and the staged copy is kept in {}. Do not run the agent again on it: \
         copy what the user needs from there by hand, and keep the manifest for whoever ran the migration",
        staged.display()
    )
}

/// Finds `<staged>/<user>.json`, in any case (as Windows would); returns (the name as staged, path).
fn find_manifest(staged: &Path, user: &str) -> Option<(String, PathBuf)> {
    let exact = staged.join(format!("{user}.json"));
    if exact.is_file() {
        return Some((user.to_string(), exact));
    }
    std::fs::read_dir(staged).ok()?.flatten().find_map(|e| {
        let name = e.file_name().to_string_lossy().into_owned();
        let stem = name.strip_suffix(".json").or_else(|| name.strip_suffix(".JSON"))?;
        stem.eq_ignore_ascii_case(user).then(|| (stem.to_string(), e.path()))
    })
}

/// Runs one user's restore and returns its report (not yet written).
pub fn restore(req: &Request) -> Report {
    let user_dir = req.staged.join(req.user);
    let mut report = Report::new(req.user, &user_dir, Status::Refused);
    if let Err(p) = check_component(req.user) {
        report.message = Some(format!("the user name {:?} {p}; {}", req.user, refused_advice(req.staged)));
        return report;
    }
    let Some((staged_name, manifest_path)) = find_manifest(req.staged, req.user) else {
        report.status = Status::NothingStaged;
        return report;
    };
    let user_dir = req.staged.join(&staged_name);
    report.staged = user_dir.display().to_string();
    let job = match &req.job {
        Ok(j) => j,
        Err(e) => {
            report.message = Some(format!("{e}; {}", refused_advice(&user_dir)));
            return report;
        }
    };
    report.job_id = Some(job.job_id.clone());
    report.conflict = Some(job.conflict);
    let manifest = match Manifest::load(&manifest_path).and_then(|m| m.validate(req.user).map(|()| m)) {
        Ok(m) => m,
        Err(r) => {
            report.message = Some(format!("{} ({}); {}", r, manifest_path.display(), refused_advice(&user_dir)));
            return report;
        }
    };
    let mut run = Run { req, job, user_dir: &user_dir, folders: HashMap::new() };
    run.entries(&manifest, &mut report);
    let t = &report.totals;
    report.status = match (t.failed, t.skipped_conflict) {
        (0, 0) => Status::Complete,
        (0, _) => Status::CompleteWithSkips,
        _ => Status::Incomplete,
    };
    if report.status == Status::Complete {
        match std::fs::remove_dir_all(fs_path(&user_dir)).or_else(not_found_ok).and_then(|()| std::fs::remove_file(&manifest_path)) {
            Ok(()) => report.staged_removed = true,
            Err(e) => report.message = Some(format!("every entry verified, but the staged copy could not be removed: {e}; delete {} by hand", user_dir.display())),
        }
    } else {
        staged::prune_empty_dirs(&user_dir);
        if report.status == Status::Incomplete {
            report.message = Some(format!(
                "entries failed: {} (see their reasons); what did not move is kept in {}. Fix the cause and run the agent again as this user: it is safe to repeat",
                report.totals.failed,
                user_dir.display()
            ));
        }
    }
    report
}

fn not_found_ok(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::NotFound { Ok(()) } else { Err(e) }
}

struct Run<'a> {
    req: &'a Request<'a>,
    job: &'a Job,
    user_dir: &'a Path,
    folders: HashMap<KnownFolder, Result<PathBuf, String>>,
}

impl Run<'_> {
    fn entries(&mut self, manifest: &Manifest, report: &mut Report) {
        let mut dirs: Vec<(&Entry, PathBuf, bool)> = Vec::new();
        for e in manifest.entries.iter().filter(|e| e.kind == Kind::Dir) {
            match self.map(e) {
                Err(reason) => report.push(failed(e, None, reason), 0),
                Ok((d, is_root)) => match self.dir(e, &d) {
                    Ok(()) => dirs.push((e, d, is_root)),
                    Err(reason) => report.push(failed(e, Some(d), reason), 0),
                },
            }
        }
        for e in manifest.entries.iter().filter(|e| e.kind == Kind::File) {
            let entry = match self.map(e) {
                Ok((dest, _)) => self.file(e, &dest),
                Err(reason) => failed(e, None, reason),
            };
            report.push(entry, e.size.unwrap_or(0));
        }
        // Folder times last, deepest first, so moving their contents does not change them.
        dirs.sort_by_key(|(e, _, _)| std::cmp::Reverse(e.path.split('/').count()));
        for (e, dest, is_root) in dirs {
            // A Known Folder itself (or the profile) belongs to the new OS: its time is left.
            let warning = if is_root { None } else { times::set(&dest, e.mtime_ns, e.created_ns).err().map(|err| format!("its modified time was not set: {err}")) };
            let outcome = if mapping::is_setting(&e.path) { Outcome::MigratedSetting } else { Outcome::Restored };
            report.push(EntryReport { path: e.path.clone(), kind: Kind::Dir, outcome, destination: Some(dest.display().to_string()), reason: None, warning }, 0);
        }
    }

    /// The destination of an entry, and whether it is a Known Folder itself.
    fn map(&mut self, e: &Entry) -> Result<(PathBuf, bool), String> {
        let Destination { folder, rel, .. } = mapping::map(&e.path);
        let folders = self.req.folders;
        let base = self
            .folders
            .entry(folder)
            .or_insert_with(|| folders.resolve(folder).map_err(|err| format!("the user's {} folder is unknown: {err}", folder_label(folder))))
            .clone()?;
        let is_root = rel.is_empty();
        Ok((rel.iter().fold(base, |p, c| p.join(c)), is_root))
    }

    fn dir(&self, e: &Entry, dest: &Path) -> Result<(), String> {
        if let Staged::Link(p) = staged::state(self.user_dir, &e.path) {
            return Err(staged::link_reason(&p));
        }
        std::fs::create_dir_all(fs_path(dest)).map_err(|err| format!("cannot create the folder {}: {err} (is a file in the way?)", dest.display()))
    }
}

fn folder_label(f: KnownFolder) -> &'static str {
    match f {
        KnownFolder::Profile => "profile",
        f => f.name(),
    }
}

fn failed(e: &Entry, dest: Option<PathBuf>, reason: String) -> EntryReport {
    EntryReport { path: e.path.clone(), kind: e.kind, outcome: Outcome::Failed, destination: dest.map(|d| d.display().to_string()), reason: Some(reason), warning: None }
}
