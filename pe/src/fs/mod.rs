//! Userspace filesystem readers over a byte range of a disk; nothing is ever mounted.
//!
//! Every reader implements [`FsReader`]: look a path up, list a directory, stream a file out.
//! Paths are bytes, `/`-separated from the filesystem root (`/Windows/System32`,
//! `/etc/os-release`): an ext4 name is any bytes, an NTFS one WTF-8 ([`bytes`]); NTFS and FAT
//! compare names case-insensitively, ext4 exactly. Readers never write: the view under them
//! ([`range::RangeReader`]) refuses writes, and the device is opened read-only.

pub mod alloc;
pub mod bpb;
pub mod bytes;
pub mod dir_index;
pub mod exfat;
pub mod ext4;
pub mod fat;
pub mod fuzzing;
pub mod lznt1;
pub mod ntfs;
pub mod range;
pub mod xattr;
#[cfg(test)]
pub(crate) mod testimg;

use std::io::{self, Write};

pub use bytes::Bytes;
use range::RangeReader;
use xattr::Xattrs;

/// What kind of thing a directory entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    /// A symbolic link or an NTFS junction. In `read_dir` and `stat` on NTFS, any reparse point
    /// (WOF-compressed and cloud files too), while ntfs-3g's Interix symlinks show as files
    /// there; `metadata` tells them apart (other reparse points are files with an `unreadable`
    /// reason).
    Symlink,
    Other,
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The name's exact bytes.
    pub name: Bytes,
    pub kind: EntryKind,
    /// Size in bytes for files (as the directory records it); 0 otherwise.
    pub size: u64,
}

/// A point in time: seconds and nanoseconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct Time {
    pub secs: i64,
    pub nanos: u32,
}

/// Everything a reader knows about one entry, without following a final symbolic link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub kind: EntryKind,
    /// Data length in bytes (files); 0 otherwise.
    pub size: u64,
    /// Bytes of the data that are stored on the volume, where the reader knows (files): less
    /// than `size` for a sparse file, whose holes read as zeros. ext4: the inode's block count;
    /// NTFS: the clusters of non-sparse runs up to the initialized size; FAT: `size`.
    pub allocated: Option<u64>,
    /// Permission bits, uid and gid (ext4; `None` on NTFS and FAT).
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub mtime: Option<Time>,
    pub atime: Option<Time>,
    /// Inode or MFT-record change time, and creation time, where recorded.
    pub ctime: Option<Time>,
    pub crtime: Option<Time>,
    /// NTFS `FILE_ATTRIBUTE_*` bits, or the FAT attribute byte.
    pub attributes: Option<u32>,
    /// Identity of the underlying file (inode or MFT record number): names with the same
    /// `link_id` are hard links of one file.
    pub link_id: Option<u64>,
    /// Number of names the file has, where recorded.
    pub nlink: Option<u32>,
    /// Where a symbolic link or junction points (exact bytes; WTF-8 on NTFS).
    pub target: Option<Bytes>,
    /// Named data streams (NTFS alternate data streams) with their sizes.
    pub streams: Vec<(String, u64)>,
    /// Why the data cannot be read, when the reader already knows (EFS encryption, a reparse
    /// point that is not a link).
    pub unreadable: Option<String>,
    /// Extended attributes and POSIX ACLs (ext4; empty elsewhere).
    pub xattrs: Xattrs,
}

impl Metadata {
    /// Metadata of `kind` with nothing else known.
    pub fn empty(kind: EntryKind) -> Metadata {
        Metadata {
            kind,
            size: 0,
            allocated: None,
            mode: None,
            uid: None,
            gid: None,
            mtime: None,
            atime: None,
            ctime: None,
            crtime: None,
            attributes: None,
            link_id: None,
            nlink: None,
            target: None,
            streams: Vec::new(),
            unreadable: None,
            xattrs: Xattrs::default(),
        }
    }
}

/// A failed lookup or read, naming the path (shown with [`bytes::show`]) and why.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("{path}: not found")]
    NotFound { path: String },
    #[error("{path}: not a directory")]
    NotADirectory { path: String },
    #[error("{path}: is a directory")]
    IsADirectory { path: String },
    #[error("{path}: {size} bytes is more than the {cap}-byte limit for this read")]
    TooLarge { path: String, size: u64, cap: u64 },
    #[error("{path}: {what} is not supported by the {fs} reader")]
    Unsupported { path: String, fs: &'static str, what: String },
    #[error("{path}: the {fs} structures are damaged: {detail}")]
    Corrupt { path: String, fs: &'static str, detail: String },
    #[error("{path}: read error: {source}")]
    Io { path: String, source: io::Error },
}

/// A volume-level problem noticed while opening a filesystem (dirty, needs recovery, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeWarning(pub String);

/// Read-only access to the files of one filesystem.
pub trait FsReader {
    /// `ntfs`, `ext4`, `vfat`, … as in `Partition::fs`.
    fn fs_type(&self) -> &'static str;
    /// The volume label, if it has one.
    fn label(&mut self) -> Option<String>;
    /// Problems with the volume as a whole, found when it was opened.
    fn warnings(&self) -> Vec<VolumeWarning> {
        Vec::new()
    }
    /// What `path` is (following symbolic links on ext4), and its size for a file.
    fn stat(&mut self, path: &[u8]) -> Result<DirEntry, FsError>;
    /// Full metadata of `path`, not following a final symbolic link or junction.
    fn metadata(&mut self, path: &[u8]) -> Result<Metadata, FsError>;
    /// The entries of directory `path`, without `.` and `..`, in on-disk order.
    fn read_dir(&mut self, path: &[u8]) -> Result<Vec<DirEntry>, FsError>;
    /// Streams the content of file `path` into `out`, returning the byte count. Never buffers
    /// the whole file.
    fn read_file(&mut self, path: &[u8], out: &mut dyn Write) -> Result<u64, FsError>;
    /// Where on the volume file `path`'s data starts, in bytes, where the reader knows: reading
    /// files in this order saves seeks. `None` for files with no data on the volume.
    fn data_position(&mut self, _path: &[u8]) -> Option<u64> {
        None
    }

    /// Whether `path` exists.
    fn exists(&mut self, path: &[u8]) -> bool {
        self.stat(path).is_ok()
    }
    /// Whether `path` is a directory.
    fn is_dir(&mut self, path: &[u8]) -> bool {
        self.stat(path).is_ok_and(|e| e.kind == EntryKind::Dir)
    }
    /// A small file (a config file) read into memory; fails if it is larger than `cap`.
    fn read_small(&mut self, path: &[u8], cap: u64) -> Result<Vec<u8>, FsError> {
        let meta = self.stat(path)?;
        if meta.kind == EntryKind::Dir {
            return Err(FsError::IsADirectory { path: shown(path) });
        }
        if meta.size > cap {
            return Err(FsError::TooLarge { path: shown(path), size: meta.size, cap });
        }
        let mut out = CappedBuf { buf: Vec::new(), cap };
        match self.read_file(path, &mut out) {
            Ok(_) => Ok(out.buf),
            Err(FsError::Io { source, .. }) if source.kind() == io::ErrorKind::FileTooLarge => {
                Err(FsError::TooLarge { path: shown(path), size: out.buf.len() as u64, cap })
            }
            Err(e) => Err(e),
        }
    }
}

/// A small text file Windows wrote: UTF-16LE when it starts with that byte-order mark, else
/// bytes read as UTF-8 (lossily). At most `cap` bytes are read.
pub fn read_text(fs: &mut dyn FsReader, path: &[u8], cap: usize) -> Result<String, FsError> {
    let b = read_head(fs, path, cap)?;
    Ok(match b.strip_prefix(&[0xff, 0xfe]) {
        Some(utf16) => String::from_utf16_lossy(&utf16.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect::<Vec<_>>()),
        None => String::from_utf8_lossy(b.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&b)).into_owned(),
    })
}

/// The first `n` bytes of file `path` (fewer if the file is shorter), without reading the rest.
pub fn read_head(fs: &mut dyn FsReader, path: &[u8], n: usize) -> Result<Vec<u8>, FsError> {
    let mut out = HeadBuf { buf: Vec::new(), want: n };
    match fs.read_file(path, &mut out) {
        Ok(_) => Ok(out.buf),
        Err(FsError::Io { source, .. }) if source.kind() == io::ErrorKind::WriteZero && out.buf.len() == n => {
            Ok(out.buf)
        }
        Err(e) => Err(e),
    }
}

/// Opens the filesystem `fs` (as detected by signature) on `range`. `None` when there is no
/// reader for that type (swap, LUKS, …).
pub fn open(fs: &str, range: RangeReader) -> Option<Result<Box<dyn FsReader>, FsError>> {
    Some(match fs {
        "ntfs" => ntfs::NtfsReader::open(range).map(|r| Box::new(r) as Box<dyn FsReader>),
        "ext2" | "ext3" | "ext4" => ext4::Ext4Reader::open(range, fs).map(|r| Box::new(r) as Box<dyn FsReader>),
        "vfat" => fat::FatReader::open(range).map(|r| Box::new(r) as Box<dyn FsReader>),
        _ => return None,
    })
}

/// Splits a path into its non-empty components.
pub(crate) fn components(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.split(|b| *b == b'/').filter(|c| !c.is_empty() && *c != b".")
}

/// A path for messages ([`bytes::show`]).
pub(crate) fn shown(path: &[u8]) -> String {
    bytes::show(path)
}

/// A `Write` into memory that fails once more than `cap` bytes arrive.
struct CappedBuf {
    buf: Vec<u8>,
    cap: u64,
}

impl Write for CappedBuf {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() as u64 + data.len() as u64 > self.cap {
            return Err(io::Error::new(io::ErrorKind::FileTooLarge, "over the size cap"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A `Write` that keeps the first `want` bytes and then stops the stream.
struct HeadBuf {
    buf: Vec<u8>,
    want: usize,
}

impl Write for HeadBuf {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = self.want - self.buf.len();
        if room == 0 {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "have enough"));
        }
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
