//! Restoring one user: check the manifest, move and verify each entry, then remove the staged
//! copy only when everything verified.

use crate::check::check_component;
use crate::conflict::{beside_name, MAX_BESIDE};
use crate::folders::Folders;
use crate::hash;
use crate::job::{Conflict, Job};
use crate::manifest::{Entry, Kind, Manifest};
use crate::mapping::{self, Destination, KnownFolder};
use crate::platform::{self, fs_path, is_reparse_point};
use crate::report::{EntryReport, Outcome, Report, Status};
use crate::times;
use crate::transfer::{self, Strategy};
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
        prune_empty_dirs(&user_dir);
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

/// The state of an entry's staged object.
enum Staged {
    Present(std::fs::Metadata),
    Missing,
    /// This path (the object or a folder above it) is a reparse point.
    Link(PathBuf),
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
        if let Staged::Link(p) = self.staged_state(&e.path) {
            return Err(link_reason(&p));
        }
        std::fs::create_dir_all(fs_path(dest)).map_err(|err| format!("cannot create the folder {}: {err} (is a file in the way?)", dest.display()))
    }

    fn staged_path(&self, path: &str) -> PathBuf {
        path.split('/').fold(self.user_dir.to_path_buf(), |p, c| p.join(c))
    }

    /// Walks from the user's staged folder down to the entry, refusing to pass a reparse point.
    fn staged_state(&self, path: &str) -> Staged {
        let mut p = self.user_dir.to_path_buf();
        let mut meta = std::fs::symlink_metadata(fs_path(&p));
        for c in path.split('/') {
            match &meta {
                Ok(m) if is_reparse_point(m) => return Staged::Link(p),
                Ok(_) => {}
                Err(_) => return Staged::Missing,
            }
            p.push(c);
            meta = std::fs::symlink_metadata(fs_path(&p));
        }
        match meta {
            Ok(m) if is_reparse_point(&m) => Staged::Link(p),
            Ok(m) => Staged::Present(m),
            Err(_) => Staged::Missing,
        }
    }

    fn file(&self, e: &Entry, dest: &Path) -> EntryReport {
        let (size, sha) = (e.size.unwrap_or(0), e.sha256.as_deref().unwrap_or(""));
        let setting = mapping::is_setting(&e.path);
        let placed = |outcome: Outcome, at: &Path, warning: Option<String>| EntryReport {
            path: e.path.clone(),
            kind: Kind::File,
            outcome: if setting { Outcome::MigratedSetting } else { outcome },
            destination: Some(at.display().to_string()),
            reason: None,
            warning,
        };
        let fail = |at: &Path, reason: String| failed(e, Some(at.to_path_buf()), reason);
        let src = self.staged_path(&e.path);
        match self.staged_state(&e.path) {
            Staged::Link(p) => return fail(dest, link_reason(&p)),
            Staged::Missing => return self.already_placed(e, dest).map(|(o, at)| placed(o, &at, None)).unwrap_or_else(|| {
                fail(dest, format!("the staged copy {} is missing and the destination does not match the manifest", src.display()))
            }),
            Staged::Present(m) if !m.is_file() => return fail(dest, format!("the staged {} is not a file", src.display())),
            Staged::Present(_) => {}
        }
        match hash::matches(&fs_path(&src), size, sha) {
            Ok(true) => {}
            Ok(false) => return fail(dest, format!("the staged copy {} does not match the manifest (size {size}, sha256 {sha}); it is kept: recover this file from the store or a backup", src.display())),
            Err(err) => return fail(dest, format!("cannot read the staged copy {}: {err}", src.display())),
        }
        // Where it goes, after the conflict policy.
        let target = match std::fs::symlink_metadata(fs_path(dest)) {
            Err(err) if err.kind() == io::ErrorKind::NotFound => dest.to_path_buf(),
            Err(err) => return fail(dest, format!("cannot look at {}: {err}", dest.display())),
            Ok(m) if m.is_dir() => return fail(dest, format!("a folder is in the way at {}", dest.display())),
            Ok(_) => match self.resolve_conflict(e, dest, &src) {
                Ok(Ok(t)) => t,
                Ok(Err(done)) => return done.map_or_else(|| skipped(e, dest), |(o, at)| placed(o, &at, None)),
                Err(reason) => return fail(dest, reason),
            },
        };
        if let Some(parent) = target.parent() {
            if let Err(err) = std::fs::create_dir_all(fs_path(parent)) {
                return fail(&target, format!("cannot create the folder {}: {err} (is a file in the way?)", parent.display()));
            }
        }
        let moved = match transfer::move_file(&fs_path(&src), &fs_path(&target), self.req.strategy) {
            Ok(m) => m,
            Err(err) => return fail(&target, format!("cannot move it to {}: {err}; the staged copy is kept", target.display())),
        };
        let mut warnings = Vec::new();
        if let Err(err) = times::set(&target, e.mtime_ns, e.created_ns) {
            warnings.push(format!("its modified time was not set: {err}"));
        }
        if let Err(err) = platform::inherit_acl(&target) {
            warnings.push(format!("its permissions were not reset to inherit from its folder: {err}"));
        }
        if !hash::matches(&fs_path(&target), size, sha).unwrap_or(false) {
            let undone = transfer::undo(&fs_path(&src), &fs_path(&target), moved).is_ok();
            let kept = if undone { "it was put back in the staged folder" } else { "it could not be put back in the staged folder" };
            return fail(&target, format!("{} does not match the manifest after the move; {kept}", target.display()));
        }
        let outcome = if target == dest { Outcome::Restored } else { Outcome::RestoredBeside };
        placed(outcome, &target, (!warnings.is_empty()).then(|| warnings.join("; ")))
    }

    /// With an existing differing `dest`: `Ok(Ok(target))` to move to, or `Ok(Err(done))` when
    /// nothing is to be moved (`Some` when already placed, `None` when skipped).
    #[allow(clippy::type_complexity)]
    fn resolve_conflict(&self, e: &Entry, dest: &Path, src: &Path) -> Result<Result<PathBuf, Option<(Outcome, PathBuf)>>, String> {
        let (size, sha) = (e.size.unwrap_or(0), e.sha256.as_deref().unwrap_or(""));
        let same = |p: &Path| hash::matches(&fs_path(p), size, sha).map_err(|err| format!("cannot read {}: {err}", p.display()));
        if same(dest)? {
            remove_staged(src);
            return Ok(Err(Some((Outcome::Restored, dest.to_path_buf()))));
        }
        match self.job.conflict {
            Conflict::Skip => Ok(Err(None)),
            Conflict::Overwrite => Ok(Ok(dest.to_path_buf())),
            Conflict::KeepNew => {
                let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                for n in 1..=MAX_BESIDE {
                    let cand = dest.with_file_name(beside_name(&name, n));
                    match std::fs::symlink_metadata(fs_path(&cand)) {
                        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Ok(cand)),
                        Ok(m) if m.is_file() && same(&cand)? => {
                            remove_staged(src);
                            return Ok(Err(Some((Outcome::RestoredBeside, cand))));
                        }
                        _ => {}
                    }
                }
                Err(format!("{} and {MAX_BESIDE} \"(restored n)\" names beside it are all taken", dest.display()))
            }
        }
    }

    /// After an earlier run moved an entry: where it is, if it is there and verifies.
    fn already_placed(&self, e: &Entry, dest: &Path) -> Option<(Outcome, PathBuf)> {
        let (size, sha) = (e.size.unwrap_or(0), e.sha256.as_deref().unwrap_or(""));
        let same = |p: &Path| hash::matches(&fs_path(p), size, sha).unwrap_or(false);
        if same(dest) {
            return Some((Outcome::Restored, dest.to_path_buf()));
        }
        let name = dest.file_name()?.to_string_lossy().into_owned();
        (1..=MAX_BESIDE)
            .map(|n| dest.with_file_name(beside_name(&name, n)))
            .take_while(|c| std::fs::symlink_metadata(fs_path(c)).is_ok())
            .find(|c| same(c))
            .map(|c| (Outcome::RestoredBeside, c))
    }
}

fn folder_label(f: KnownFolder) -> &'static str {
    match f {
        KnownFolder::Profile => "profile",
        f => f.name(),
    }
}

fn link_reason(p: &Path) -> String {
    format!("the staged {} is a reparse point (a junction or link); it was not followed and the staged copy is kept", p.display())
}

fn failed(e: &Entry, dest: Option<PathBuf>, reason: String) -> EntryReport {
    EntryReport { path: e.path.clone(), kind: e.kind, outcome: Outcome::Failed, destination: dest.map(|d| d.display().to_string()), reason: Some(reason), warning: None }
}

fn skipped(e: &Entry, dest: &Path) -> EntryReport {
    EntryReport {
        path: e.path.clone(),
        kind: e.kind,
        outcome: Outcome::SkippedConflict,
        destination: Some(dest.display().to_string()),
        reason: Some("the destination exists and differs; the policy is skip, so the staged copy is kept".into()),
        warning: None,
    }
}

/// Drops a staged file whose content is already at its destination.
fn remove_staged(src: &Path) {
    let _ = std::fs::remove_file(fs_path(src));
}

/// Removes empty folders under `dir` (bottom-up, not through links) so only what did not move stays.
fn prune_empty_dirs(dir: &Path) {
    let Ok(rd) = std::fs::read_dir(fs_path(dir)) else { return };
    for e in rd.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) && !std::fs::symlink_metadata(e.path()).is_ok_and(|m| is_reparse_point(&m)) {
            prune_empty_dirs(&e.path());
            let _ = std::fs::remove_dir(e.path());
        }
    }
}
