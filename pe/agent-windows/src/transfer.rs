//! Moving one file: a rename on the same volume, otherwise a copy then a delete.

use std::io;
use std::path::Path;

/// How files are moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Rename; copy and delete when the destination is on another volume.
    #[default]
    RenameOrCopy,
    /// Always copy and delete (tests of the cross-volume path).
    Copy,
}

/// How a file was moved, to undo it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moved {
    Renamed,
    Copied,
}

/// Moves `src` to `dst`, replacing `dst` if it exists. Paths are already `platform::fs_path`ed.
pub fn move_file(src: &Path, dst: &Path, strategy: Strategy) -> io::Result<Moved> {
    if strategy == Strategy::RenameOrCopy {
        match std::fs::rename(src, dst) {
            Ok(()) => return Ok(Moved::Renamed),
            Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {}
            Err(e) => return Err(e),
        }
    }
    let name = dst.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let partial = dst.with_file_name(format!(".{name}.inplace-partial"));
    let copied = std::fs::copy(src, &partial).and_then(|_| std::fs::rename(&partial, dst));
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    std::fs::remove_file(src)?;
    Ok(Moved::Copied)
}

/// Puts a moved file back in the staged folder after its destination failed to verify.
pub fn undo(src: &Path, dst: &Path, moved: Moved) -> io::Result<()> {
    match moved {
        Moved::Renamed => std::fs::rename(dst, src),
        Moved::Copied => std::fs::copy(dst, src).and_then(|_| std::fs::remove_file(dst)),
    }
}
