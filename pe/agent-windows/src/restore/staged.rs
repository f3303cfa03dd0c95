//! The staged copy of an entry, looked at without following links.

use crate::platform::{fs_path, is_reparse_point};
use std::fs::Metadata;
use std::path::{Path, PathBuf};

/// The state of an entry's staged object.
pub(super) enum Staged {
    Present(Metadata),
    Missing,
    /// This path (the object or a folder above it) is a reparse point.
    Link(PathBuf),
}

/// `<user_dir>\<path>`.
pub(super) fn path(user_dir: &Path, path: &str) -> PathBuf {
    path.split('/').fold(user_dir.to_path_buf(), |p, c| p.join(c))
}

/// Walks from the user's staged folder down to the entry, refusing to pass a reparse point.
pub(super) fn state(user_dir: &Path, path: &str) -> Staged {
    let mut p = user_dir.to_path_buf();
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

/// Why an entry under a link fails.
pub(super) fn link_reason(p: &Path) -> String {
    format!("the staged {} is a reparse point (a junction or link); it was not followed and the staged copy is kept", p.display())
}

/// Drops a staged file whose content is already at its destination.
pub(super) fn remove(src: &Path) {
    let _ = std::fs::remove_file(fs_path(src));
}

/// Removes empty folders under `dir` (bottom-up, not through links) so only what did not move stays.
pub(super) fn prune_empty_dirs(dir: &Path) {
    let Ok(rd) = std::fs::read_dir(fs_path(dir)) else { return };
    for e in rd.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) && !std::fs::symlink_metadata(e.path()).is_ok_and(|m| is_reparse_point(&m)) {
            prune_empty_dirs(&e.path());
            let _ = std::fs::remove_dir(e.path());
        }
    }
}
