//! Where image bytes come from: a local file (boot medium, any readable partition) or
//! HTTP(S) ([`super::http`]). The lay-down and the verifier see only [`Source`].

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::progress::Progress;

/// A source failure. `retryable` errors (a cut connection, a timeout, a 5xx) are retried with
/// backoff; the others (404, TLS, a changed file) stop the run with the message as it is.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SourceError {
    pub message: String,
    pub retryable: bool,
}

impl SourceError {
    pub fn fatal(message: impl Into<String>) -> Self {
        SourceError { message: message.into(), retryable: false }
    }
    pub fn retry(message: impl Into<String>) -> Self {
        SourceError { message: message.into(), retryable: true }
    }
}

/// Random access to an image.
pub trait Source: Send {
    /// The path or URL, for messages.
    fn name(&self) -> String;
    /// The total length in bytes.
    fn len(&mut self) -> Result<u64, SourceError>;
    /// Exactly `buf.len()` bytes at `offset` (small reads: header, manifest, index).
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), SourceError>;
    /// A sequential stream of bytes `offset .. end`.
    fn stream(&mut self, offset: u64, end: u64) -> Result<Box<dyn Read + Send>, SourceError>;
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
    pub fn open(path: &Path) -> Result<LocalFile, SourceError> {
        let file = File::open(path).map_err(|e| {
            SourceError::fatal(format!("cannot open image {}: {e}; check the path and that you may read it", path.display()))
        })?;
        if file.metadata().map(|m| m.is_dir()).unwrap_or(false) {
            return Err(SourceError::fatal(format!("image {} is a directory; name the image file", path.display())));
        }
        Ok(LocalFile { path: path.to_path_buf(), file })
    }
}

impl Source for LocalFile {
    fn name(&self) -> String {
        self.path.display().to_string()
    }
    fn len(&mut self) -> Result<u64, SourceError> {
        self.file
            .metadata()
            .map(|m| m.len())
            .map_err(|e| SourceError::fatal(format!("{}: {e}", self.path.display())))
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), SourceError> {
        self.file.read_exact_at(buf, offset).map_err(|e| {
            SourceError::fatal(format!("{}: reading {} bytes at byte {offset}: {e}", self.path.display(), buf.len()))
        })
    }
    fn stream(&mut self, offset: u64, end: u64) -> Result<Box<dyn Read + Send>, SourceError> {
        let mut f = self.file.try_clone().map_err(|e| SourceError::fatal(format!("{}: {e}", self.path.display())))?;
        f.seek(SeekFrom::Start(offset)).map_err(|e| SourceError::fatal(format!("{}: {e}", self.path.display())))?;
        Ok(Box::new(f.take(end.saturating_sub(offset))))
    }
    fn local_path(&self) -> Option<&Path> {
        Some(&self.path)
    }
}

/// Opens a path or an `http://` / `https://` URL.
pub fn open(spec: &str, opts: &super::http::HttpOptions, progress: &dyn Progress) -> Result<Box<dyn Source>, SourceError> {
    if spec.starts_with("http://") || spec.starts_with("https://") {
        Ok(Box::new(super::http::HttpSource::open(spec, opts, progress)?))
    } else if spec.contains("://") {
        Err(SourceError::fatal(format!("{spec}: only local paths and http:// or https:// URLs are supported")))
    } else {
        Ok(Box::new(LocalFile::open(Path::new(spec))?))
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
