//! Replacing a small file (a report) in a directory of the new OS: written under a temporary
//! name, synced, then renamed over the old one, so a crash never leaves half a file.

use std::fs::File;
use std::os::fd::OwnedFd;

use rustix::fs::{AtFlags, Mode, OFlags};

/// Replaces `name` in `dir` with `bytes` (mode `mode`, owned by the caller), through a
/// temporary file and a rename.
pub(crate) fn replace_file(dir: &OwnedFd, name: &[u8], bytes: &[u8], mode: u32) -> Result<(), String> {
    let tmp = format!(".inplace-restore.{}.report", std::process::id());
    let fd = rustix::fs::openat(dir, tmp.as_str(), OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::from_raw_mode(mode))
        .map_err(|e| e.to_string())?;
    let file = File::from(fd);
    let r = std::io::Write::write_all(&mut &file, bytes)
        .map_err(|e| e.to_string())
        .and_then(|()| rustix::fs::fchmod(&file, Mode::from_raw_mode(mode)).map_err(|e| e.to_string()))
        .and_then(|()| file.sync_all().map_err(|e| e.to_string()))
        .and_then(|()| rustix::fs::renameat(dir, tmp.as_str(), dir, name).map_err(|e| e.to_string()));
    if r.is_err() {
        let _ = rustix::fs::unlinkat(dir, tmp.as_str(), AtFlags::empty());
    }
    r
}
