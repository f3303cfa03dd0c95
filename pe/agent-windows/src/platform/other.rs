//! The stand-in on Linux (and any non-Windows host): symlinks are the reparse points, paths have
//! no length prefix, there are no ACLs to reset and no creation times to set.

use crate::folders::{Folders, RootFolders};
use std::fs::{File, FileTimes, Metadata};
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The variable naming the profile root when `--profile-root` is not given.
pub const PROFILE_ROOT_ENV: &str = "INPLACE_AGENT_PROFILE_ROOT";

/// The current user's folders: `<root>/<Name>` under `$INPLACE_AGENT_PROFILE_ROOT`.
pub fn user_folders() -> io::Result<Box<dyn Folders>> {
    let root = std::env::var_os(PROFILE_ROOT_ENV).ok_or_else(|| {
        io::Error::other(format!("no profile root: pass --profile-root DIR or set {PROFILE_ROOT_ENV} (Known Folders exist on Windows only)"))
    })?;
    Ok(Box::new(RootFolders { root: PathBuf::from(root) }))
}

/// Whether metadata from `symlink_metadata` is a link that must not be followed.
pub fn is_reparse_point(meta: &Metadata) -> bool {
    meta.file_type().is_symlink()
}

/// The path to hand to the filesystem (unchanged here).
pub fn fs_path(path: &Path) -> PathBuf {
    path.to_path_buf()
}

/// Nothing to do: there are no Windows ACLs here.
pub fn inherit_acl(_path: &Path) -> io::Result<()> {
    Ok(())
}

/// Creation times cannot be set here.
pub fn with_created(times: FileTimes, _created: Option<SystemTime>) -> FileTimes {
    times
}

/// Opens a file or folder so its times can be set.
pub fn open_for_times(path: &Path) -> io::Result<File> {
    File::open(path)
}

/// The variable naming the folder that describes the volumes (`cleanup::DirMachine`).
pub const VOLUMES_ENV: &str = "INPLACE_AGENT_VOLUMES";

/// The machine cleanup works on: here, the stand-in folder under `$INPLACE_AGENT_VOLUMES`.
pub fn machine() -> io::Result<Box<dyn crate::cleanup::Machine>> {
    let dir = std::env::var_os(VOLUMES_ENV).ok_or_else(|| {
        io::Error::other(format!("no volumes: set {VOLUMES_ENV} to a folder describing them (drive letters exist on Windows only)"))
    })?;
    Ok(Box::new(crate::cleanup::DirMachine { dir: PathBuf::from(dir) }))
}
