//! NTFS through the `ntfs` crate, over the cached range view (the crate has no cache).
//!
//! The crate returns raw bytes for LZNT1-compressed and EFS-encrypted data without an error,
//! so `read_file` checks the attribute flags and refuses those (and reparse points such as
//! WOF/CompactOS files) with [`FsError::Unsupported`] instead of returning garbage.

use std::io::Write;

use ntfs::indexes::NtfsFileNameIndex;
use ntfs::structured_values::{NtfsFileAttributeFlags, NtfsFileNamespace, NtfsVolumeFlags};
use ntfs::{Ntfs, NtfsAttributeFlags, NtfsError, NtfsFile, NtfsReadSeek};

use super::range::RangeReader;
use super::{components, DirEntry, EntryKind, FsError, FsReader, VolumeWarning};

pub struct NtfsReader {
    ntfs: Ntfs,
    io: RangeReader,
    label: Option<String>,
    warnings: Vec<VolumeWarning>,
}

fn corrupt(path: &str, e: NtfsError) -> FsError {
    match e {
        NtfsError::NotADirectory { .. } => FsError::NotADirectory { path: path.into() },
        NtfsError::Io(source) => FsError::Io { path: path.into(), source },
        other => FsError::Corrupt { path: path.into(), fs: "ntfs", detail: other.to_string() },
    }
}

impl NtfsReader {
    /// Reads the boot sector, `$UpCase`, `$Volume` (label and flags) and the root directory.
    pub fn open(range: RangeReader) -> Result<Self, FsError> {
        let mut io = range;
        // The crate panics (`unreachable!`) on an I/O error inside its boot-sector parser, so
        // make sure the boot sector is there first.
        let mut boot = [0u8; 512];
        io.read_exact_at(0, &mut boot).map_err(|source| FsError::Io { path: "/".into(), source })?;
        let mut ntfs = Ntfs::new(&mut io).map_err(|e| corrupt("/", e))?;
        ntfs.read_upcase_table(&mut io).map_err(|e| corrupt("/$UpCase", e))?;
        ntfs.root_directory(&mut io).map_err(|e| corrupt("/", e))?;
        let label = ntfs
            .volume_name(&mut io)
            .and_then(|r| r.ok())
            .map(|n| n.name().to_string_lossy())
            .filter(|s| !s.is_empty());
        let mut warnings = Vec::new();
        match ntfs.volume_info(&mut io) {
            Ok(info) if info.flags().contains(NtfsVolumeFlags::IS_DIRTY) => warnings.push(VolumeWarning(
                "the NTFS volume is marked dirty (not cleanly unmounted, or errors found); boot \
                 Windows and run `chkdsk /f`, then shut down fully, before migrating"
                    .into(),
            )),
            Ok(_) => {}
            Err(e) => warnings.push(VolumeWarning(format!("the NTFS $Volume information is unreadable: {e}"))),
        }
        Ok(NtfsReader { ntfs, io, label, warnings })
    }
}

/// The file at `path`, walking the directory indexes from the root.
fn lookup<'n>(ntfs: &'n Ntfs, io: &mut RangeReader, path: &str) -> Result<NtfsFile<'n>, FsError> {
    let mut file = ntfs.root_directory(io).map_err(|e| corrupt(path, e))?;
    for name in components(path) {
        let next = {
            let index = file.directory_index(io).map_err(|e| corrupt(path, e))?;
            let mut finder = index.finder();
            let entry = NtfsFileNameIndex::find(&mut finder, ntfs, io, name)
                .ok_or_else(|| FsError::NotFound { path: path.into() })?
                .map_err(|e| corrupt(path, e))?;
            entry.to_file(ntfs, io).map_err(|e| corrupt(path, e))?
        };
        file = next;
    }
    Ok(file)
}

fn attributes_of(file: &NtfsFile) -> NtfsFileAttributeFlags {
    file.info().map(|i| i.file_attributes()).unwrap_or(NtfsFileAttributeFlags::empty())
}

impl FsReader for NtfsReader {
    fn fs_type(&self) -> &'static str {
        "ntfs"
    }

    fn label(&mut self) -> Option<String> {
        self.label.clone()
    }

    fn warnings(&self) -> Vec<VolumeWarning> {
        self.warnings.clone()
    }

    fn stat(&mut self, path: &str) -> Result<DirEntry, FsError> {
        let file = lookup(&self.ntfs, &mut self.io, path)?;
        let name = components(path).last().unwrap_or("/").to_string();
        let kind = if attributes_of(&file).contains(NtfsFileAttributeFlags::REPARSE_POINT) {
            EntryKind::Symlink
        } else if file.is_directory() {
            EntryKind::Dir
        } else {
            EntryKind::File
        };
        let size = if kind == EntryKind::File {
            match file.data(&mut self.io, "") {
                Some(Ok(item)) => item.to_attribute().map(|a| a.value_length()).unwrap_or(0),
                _ => 0,
            }
        } else {
            0
        };
        Ok(DirEntry { name, kind, size })
    }

    fn metadata(&mut self, path: &str) -> Result<super::Metadata, FsError> {
        Err(FsError::Unsupported { path: path.into(), fs: self.fs_type(), what: "metadata".into() })
    }

    fn read_dir(&mut self, path: &str) -> Result<Vec<DirEntry>, FsError> {
        let io = &mut self.io;
        let dir = lookup(&self.ntfs, io, path)?;
        let index = dir.directory_index(io).map_err(|e| corrupt(path, e))?;
        let mut iter = index.entries();
        let mut out = Vec::new();
        while let Some(entry) = iter.next(io) {
            let entry = entry.map_err(|e| corrupt(path, e))?;
            let Some(key) = entry.key() else { continue };
            let file_name = key.map_err(|e| corrupt(path, e))?;
            // An 8.3 alias has its own index entry next to the long name.
            if file_name.namespace() == NtfsFileNamespace::Dos {
                continue;
            }
            let name = file_name.name().to_string_lossy();
            if name == "." {
                continue;
            }
            let attrs = file_name.file_attributes();
            let kind = if attrs.contains(NtfsFileAttributeFlags::REPARSE_POINT) {
                EntryKind::Symlink
            } else if file_name.is_directory() {
                EntryKind::Dir
            } else {
                EntryKind::File
            };
            let size = if kind == EntryKind::File { file_name.data_size() } else { 0 };
            out.push(DirEntry { name, kind, size });
        }
        Ok(out)
    }

    fn read_file(&mut self, path: &str, out: &mut dyn Write) -> Result<u64, FsError> {
        let io = &mut self.io;
        let file = lookup(&self.ntfs, io, path)?;
        if file.is_directory() {
            return Err(FsError::IsADirectory { path: path.into() });
        }
        if attributes_of(&file).contains(NtfsFileAttributeFlags::REPARSE_POINT) {
            return Err(FsError::Unsupported {
                path: path.into(),
                fs: "ntfs",
                what: "a reparse point (a link, or a WOF/CompactOS-compressed file)".into(),
            });
        }
        let item = file
            .data(io, "")
            .ok_or_else(|| FsError::Corrupt { path: path.into(), fs: "ntfs", detail: "no $DATA attribute".into() })?
            .map_err(|e| corrupt(path, e))?;
        let attr = item.to_attribute().map_err(|e| corrupt(path, e))?;
        let flags = attr.flags();
        if flags.contains(NtfsAttributeFlags::ENCRYPTED) {
            return Err(FsError::Unsupported { path: path.into(), fs: "ntfs", what: "an EFS-encrypted file".into() });
        }
        if flags.contains(NtfsAttributeFlags::COMPRESSED) {
            return Err(FsError::Unsupported { path: path.into(), fs: "ntfs", what: "an NTFS-compressed file".into() });
        }
        let mut value = attr.value(io).map_err(|e| corrupt(path, e))?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            let n = value.read(io, &mut buf).map_err(|e| corrupt(path, e))?;
            if n == 0 {
                return Ok(total);
            }
            out.write_all(&buf[..n]).map_err(|source| FsError::Io { path: path.into(), source })?;
            total += n as u64;
        }
    }
}
