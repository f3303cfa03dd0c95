//! ext2/3/4 through `ext4-view` (which replays the journal in memory and checks
//! `metadata_csum`). It refuses `inline_data`, `casefold`, `meta_bg` and encrypted directories;
//! those come back as [`FsError::Unsupported`].

use std::io::{self, Write};

use ext4_view::{Ext4, Ext4Error};

use super::range::RangeReader;
use super::{DirEntry, EntryKind, FsError, FsReader};

pub struct Ext4Reader {
    fs: Ext4,
    fs_type: &'static str,
}

impl Ext4Reader {
    /// Loads the superblock, group descriptors and journal of the filesystem on `range`.
    /// `fs_type` is what the signature said (`ext2`, `ext3` or `ext4`).
    pub fn open(range: RangeReader, fs_type: &str) -> Result<Self, FsError> {
        let fs_type = match fs_type {
            "ext2" => "ext2",
            "ext3" => "ext3",
            _ => "ext4",
        };
        let mut range = range;
        check_superblock(&mut range).map_err(|detail| FsError::Corrupt { path: "/".into(), fs: fs_type, detail })?;
        let fs = Ext4::load(Box::new(range)).map_err(|e| map_err(fs_type, "/", e))?;
        Ok(Ext4Reader { fs, fs_type })
    }
}

/// Most groups inplace will load descriptors for (4 Mi groups: 512 TiB with 4 KiB blocks).
const MAX_GROUPS: u64 = 1 << 22;

/// Sizes `ext4-view` trusts when it allocates: a garbage block count or group size would make
/// it allocate gigabytes, and an allocation failure aborts the process (no unwinding). Checks
/// them against the partition first, the way the kernel does at mount.
fn check_superblock(range: &mut RangeReader) -> Result<(), String> {
    let mut sb = [0u8; 1024];
    range.read_exact_at(1024, &mut sb).map_err(|e| format!("cannot read the superblock: {e}"))?;
    let le32 = |at: usize| u64::from(u32::from_le_bytes([sb[at], sb[at + 1], sb[at + 2], sb[at + 3]]));
    let log = le32(0x18);
    if log > 6 {
        return Err(format!("invalid block size (log {log})"));
    }
    let block = 1024u64 << log;
    // ext4-view takes the high half of the block count whether or not the 64bit feature is
    // set; check what it will use.
    let blocks = (le32(0x150) << 32) | le32(0x4);
    let per_group = le32(0x20);
    if per_group == 0 || per_group > 8 * block {
        return Err(format!("invalid blocks per group ({per_group})"));
    }
    let bytes = blocks.checked_mul(block).ok_or("the block count overflows")?;
    if bytes > range.len() {
        return Err(format!(
            "the filesystem claims {bytes} bytes but its partition holds {}; it is damaged, or \
             the partition or image was cut short",
            range.len()
        ));
    }
    let groups = blocks.div_ceil(per_group);
    if groups > MAX_GROUPS {
        return Err(format!("{groups} block groups is more than inplace reads"));
    }
    Ok(())
}

fn map_err(fs: &'static str, path: &str, e: Ext4Error) -> FsError {
    let path = path.to_string();
    match e {
        Ext4Error::NotFound => FsError::NotFound { path },
        Ext4Error::NotADirectory => FsError::NotADirectory { path },
        Ext4Error::IsADirectory => FsError::IsADirectory { path },
        Ext4Error::Incompatible(i) => FsError::Unsupported { path, fs, what: format!("{i}") },
        Ext4Error::Encrypted => FsError::Unsupported { path, fs, what: "an encrypted file".into() },
        Ext4Error::IsASpecialFile => FsError::Unsupported { path, fs, what: "a special file".into() },
        Ext4Error::Io(source) => FsError::Io { path, source: io::Error::other(source) },
        other => FsError::Corrupt { path, fs, detail: other.to_string() },
    }
}

fn kind(ft: ext4_view::FileType) -> EntryKind {
    if ft.is_dir() {
        EntryKind::Dir
    } else if ft.is_regular_file() {
        EntryKind::File
    } else if ft.is_symlink() {
        EntryKind::Symlink
    } else {
        EntryKind::Other
    }
}

/// ext4-view wants absolute paths.
fn absolute(path: &str) -> String {
    let joined: Vec<&str> = super::components(path).collect();
    format!("/{}", joined.join("/"))
}

impl FsReader for Ext4Reader {
    fn fs_type(&self) -> &'static str {
        self.fs_type
    }

    fn label(&mut self) -> Option<String> {
        self.fs.label().to_str().ok().map(|s| s.trim_end().to_string()).filter(|s| !s.is_empty())
    }

    fn stat(&mut self, path: &str) -> Result<DirEntry, FsError> {
        let abs = absolute(path);
        let m = self.fs.metadata(abs.as_str()).map_err(|e| map_err(self.fs_type, path, e))?;
        let name = super::components(path).last().unwrap_or("/").to_string();
        let kind = kind(m.file_type());
        Ok(DirEntry { name, kind, size: if kind == EntryKind::File { m.len() } else { 0 } })
    }

    fn metadata(&mut self, path: &str) -> Result<super::Metadata, FsError> {
        Err(FsError::Unsupported { path: path.into(), fs: self.fs_type(), what: "metadata".into() })
    }

    fn read_dir(&mut self, path: &str) -> Result<Vec<DirEntry>, FsError> {
        let abs = absolute(path);
        let fs_type = self.fs_type;
        let iter = self.fs.read_dir(abs.as_str()).map_err(|e| map_err(fs_type, path, e))?;
        let mut out = Vec::new();
        for entry in iter {
            let entry = entry.map_err(|e| map_err(fs_type, path, e))?;
            let name = entry.file_name();
            let name = String::from_utf8_lossy(name.as_ref()).into_owned();
            if name == "." || name == ".." {
                continue;
            }
            let kind = entry.file_type().map(kind).map_err(|e| map_err(fs_type, path, e))?;
            let size = if kind == EntryKind::File {
                entry.metadata().map(|m| m.len()).map_err(|e| map_err(fs_type, path, e))?
            } else {
                0
            };
            out.push(DirEntry { name, kind, size });
        }
        Ok(out)
    }

    fn read_file(&mut self, path: &str, out: &mut dyn Write) -> Result<u64, FsError> {
        let abs = absolute(path);
        let mut file = self.fs.open(abs.as_str()).map_err(|e| map_err(self.fs_type, path, e))?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            let n = match file.read_bytes(&mut buf) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) => return Err(map_err(self.fs_type, path, e)),
            };
            out.write_all(&buf[..n]).map_err(|source| FsError::Io { path: path.into(), source })?;
            total += n as u64;
        }
    }
}
