//! Where image bytes come from. The lay-down and the verifier see only [`Source`]: a local
//! file (boot medium, any readable partition) here, HTTP(S) in [`super::http`].
//!
//! A source's errors are [`Kind::Transient`](crate::error::Kind::Transient) when trying again
//! may help (a cut connection, a timeout, a 5xx); those are retried with backoff, the others
//! stop the work.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::step::Step;

/// Random access to an image.
pub trait Source: Send {
    /// The path or URL, for messages.
    fn name(&self) -> String;
    /// The total length in bytes.
    fn len(&mut self) -> Result<u64>;
    /// Exactly `buf.len()` bytes at `offset` (small reads: header, manifest, index).
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()>;
    /// A sequential stream of bytes `offset .. end`.
    fn stream(&mut self, offset: u64, end: u64) -> Result<Box<dyn Read + Send>>;
    /// The local file behind the source, if there is one (parallel positioned reads).
    fn local_path(&self) -> Option<&Path> {
        None
    }
}

/// An image file.
pub struct LocalFile {
    path: PathBuf,
    file: File,
}

impl LocalFile {
    pub fn open(path: &Path) -> Result<LocalFile> {
        let file = File::open(path).map_err(|e| {
            Error::refused(Step::Image, format!("cannot open image {}: {e}", path.display())).advice("check the path and that you may read it")
        })?;
        if file.metadata().map(|m| m.is_dir()).unwrap_or(false) {
            return Err(Error::refused(Step::Image, format!("image {} is a directory", path.display())).advice("name the image file"));
        }
        Ok(LocalFile { path: path.to_path_buf(), file })
    }

    fn io(&self, e: impl std::fmt::Display) -> Error {
        Error::io(Step::Image, format!("{}: {e}", self.path.display()))
    }
}

impl Source for LocalFile {
    fn name(&self) -> String {
        self.path.display().to_string()
    }
    fn len(&mut self) -> Result<u64> {
        self.file.metadata().map(|m| m.len()).map_err(|e| self.io(e))
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.file.read_exact_at(buf, offset).map_err(|e| self.io(format!("reading {} bytes at byte {offset}: {e}", buf.len())))
    }
    fn stream(&mut self, offset: u64, end: u64) -> Result<Box<dyn Read + Send>> {
        let mut f = self.file.try_clone().map_err(|e| self.io(e))?;
        f.seek(SeekFrom::Start(offset)).map_err(|e| self.io(e))?;
        Ok(Box::new(f.take(end.saturating_sub(offset))))
    }
    fn local_path(&self) -> Option<&Path> {
        Some(&self.path)
    }
}

/// Reads until `buf` is full or the stream ends; returns how many bytes arrived.
pub fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
