//! Small files in a directory of the mounted store volume: read, replace, append, remove.

use std::io::{self, Read, Seek, SeekFrom, Write};

use super::io::VolumeIo;

/// A directory of the mounted volume.
pub(crate) type Dir<'f, 's> = fatfs::Dir<'f, VolumeIo<'s>>;

/// Replaces file `name` in `dir` with `bytes`.
pub(crate) fn write_in(dir: &Dir<'_, '_>, name: &str, bytes: &[u8]) -> io::Result<()> {
    let mut f = dir.create_file(name)?;
    f.truncate()?;
    f.write_all(bytes)?;
    f.flush()
}

/// Appends `bytes` to file `name` in `dir`, creating it.
pub(crate) fn append_in(dir: &Dir<'_, '_>, name: &str, bytes: &[u8]) -> io::Result<()> {
    let mut f = dir.create_file(name)?;
    f.seek(SeekFrom::End(0))?;
    f.write_all(bytes)?;
    f.flush()
}

/// File `name` of `dir`, or `None`; fails above `cap` bytes.
pub(crate) fn read_in(dir: &Dir<'_, '_>, name: &str, cap: u64) -> io::Result<Option<Vec<u8>>> {
    let Some(entry) =
        dir.iter().filter_map(|e| e.ok()).find(|e| e.is_file() && e.file_name().eq_ignore_ascii_case(name))
    else {
        return Ok(None);
    };
    if entry.len() > cap {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("{name} is {} bytes, more than the {cap} expected", entry.len()),
        ));
    }
    let mut buf = Vec::with_capacity(entry.len() as usize);
    entry.to_file().read_to_end(&mut buf)?;
    Ok(Some(buf))
}

/// Removes file `name` from `dir` if it is there.
pub(crate) fn remove_if_present(dir: &Dir<'_, '_>, name: &str) -> io::Result<()> {
    match dir.remove(name) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}
