//! One file entry: check its staged copy, apply the conflict policy, move it, set its time and
//! ACL, and verify it at its destination.

use super::staged::{self, Staged};
use super::{failed, Run};
use crate::conflict::{beside_name, MAX_BESIDE};
use crate::hash;
use crate::job::Conflict;
use crate::manifest::{Entry, Kind};
use crate::mapping;
use crate::platform::{self, fs_path};
use crate::report::{EntryReport, Outcome};
use crate::times;
use crate::transfer;
use std::io;
use std::path::{Path, PathBuf};

/// What to do about a destination that already exists.
enum Decision {
    /// Move the staged file here (the destination, to overwrite, or a name beside it).
    MoveTo(PathBuf),
    /// Our content is already there: nothing to move.
    AlreadyThere(Outcome, PathBuf),
    /// The policy is `skip`.
    Skip,
}

impl Run<'_> {
    /// Restores one file entry to `dest` (or beside it).
    pub(super) fn file(&self, e: &Entry, dest: &Path) -> EntryReport {
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
        let src = staged::path(self.user_dir, &e.path);
        match staged::state(self.user_dir, &e.path) {
            Staged::Link(p) => return fail(dest, staged::link_reason(&p)),
            Staged::Missing => {
                return match self.already_placed(e, dest) {
                    Some((o, at)) => placed(o, &at, None),
                    None => fail(dest, format!("the staged copy {} is missing and the destination does not match the manifest", src.display())),
                }
            }
            Staged::Present(m) if !m.is_file() => return fail(dest, format!("the staged {} is not a file", src.display())),
            Staged::Present(_) => {}
        }
        match hash::matches(&fs_path(&src), size, sha) {
            Ok(true) => {}
            Ok(false) => return fail(dest, format!("the staged copy {} does not match the manifest (size {size}, sha256 {sha}); it is kept: recover this file from the store or a backup", src.display())),
            Err(err) => return fail(dest, format!("cannot read the staged copy {}: {err}", src.display())),
        }
        let target = match std::fs::symlink_metadata(fs_path(dest)) {
            Err(err) if err.kind() == io::ErrorKind::NotFound => dest.to_path_buf(),
            Err(err) => return fail(dest, format!("cannot look at {}: {err}", dest.display())),
            Ok(m) if m.is_dir() => return fail(dest, format!("a folder is in the way at {}", dest.display())),
            Ok(_) => match self.decide(e, dest, &src) {
                Ok(Decision::MoveTo(t)) => t,
                Ok(Decision::AlreadyThere(o, at)) => return placed(o, &at, None),
                Ok(Decision::Skip) => return skipped(e, dest),
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

    /// The conflict policy, for an existing `dest` that is not a folder.
    fn decide(&self, e: &Entry, dest: &Path, src: &Path) -> Result<Decision, String> {
        let (size, sha) = (e.size.unwrap_or(0), e.sha256.as_deref().unwrap_or(""));
        let same = |p: &Path| hash::matches(&fs_path(p), size, sha).map_err(|err| format!("cannot read {}: {err}", p.display()));
        if same(dest)? {
            staged::remove(src);
            return Ok(Decision::AlreadyThere(Outcome::Restored, dest.to_path_buf()));
        }
        match self.job.conflict {
            Conflict::Skip => Ok(Decision::Skip),
            Conflict::Overwrite => Ok(Decision::MoveTo(dest.to_path_buf())),
            Conflict::KeepNew => {
                let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                for n in 1..=MAX_BESIDE {
                    let cand = dest.with_file_name(beside_name(&name, n));
                    match std::fs::symlink_metadata(fs_path(&cand)) {
                        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Decision::MoveTo(cand)),
                        Ok(m) if m.is_file() && same(&cand)? => {
                            staged::remove(src);
                            return Ok(Decision::AlreadyThere(Outcome::RestoredBeside, cand));
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
