//! FAT12/16/32 through `fatfs`. `fatfs` wants a writable device; the view under it refuses
//! every write, and nothing here calls a writing method.

use std::io::{self, Read, Write};

use fatfs::{FileSystem, FsOptions};

use super::range::RangeReader;
use super::{components, DirEntry, EntryKind, FsError, FsReader};

pub struct FatReader {
    fs: FileSystem<RangeReader>,
}

impl FatReader {
    pub fn open(range: RangeReader) -> Result<Self, FsError> {
        let fs = FileSystem::new(range, FsOptions::new().update_accessed_date(false))
            .map_err(|e| FsError::Corrupt { path: "/".into(), fs: "vfat", detail: e.to_string() })?;
        Ok(FatReader { fs })
    }
}

fn io_err(path: &str, e: io::Error) -> FsError {
    match e.kind() {
        io::ErrorKind::NotFound => FsError::NotFound { path: path.into() },
        _ => FsError::Io { path: path.into(), source: e },
    }
}

impl FsReader for FatReader {
    fn fs_type(&self) -> &'static str {
        "vfat"
    }

    fn label(&mut self) -> Option<String> {
        let from_root = self.fs.read_volume_label_from_root_dir().ok().flatten();
        from_root
            .or_else(|| Some(self.fs.volume_label()))
            .map(|s| s.trim_end().to_string())
            .filter(|s| !s.is_empty() && s != "NO NAME")
    }

    fn stat(&mut self, path: &str) -> Result<DirEntry, FsError> {
        let parts: Vec<&str> = components(path).collect();
        let Some((last, parents)) = parts.split_last() else {
            return Ok(DirEntry { name: "/".into(), kind: EntryKind::Dir, size: 0 });
        };
        let parent = parents.join("/");
        self.read_dir(&parent)?
            .into_iter()
            .find(|e| e.name.eq_ignore_ascii_case(last))
            .ok_or_else(|| FsError::NotFound { path: path.into() })
    }

    fn read_dir(&mut self, path: &str) -> Result<Vec<DirEntry>, FsError> {
        let rel = components(path).collect::<Vec<_>>().join("/");
        let root = self.fs.root_dir();
        let dir = if rel.is_empty() { root } else { root.open_dir(&rel).map_err(|e| io_err(path, e))? };
        let mut out = Vec::new();
        for entry in dir.iter() {
            let entry = entry.map_err(|e| io_err(path, e))?;
            let name = entry.file_name();
            if name == "." || name == ".." {
                continue;
            }
            let kind = if entry.is_dir() { EntryKind::Dir } else { EntryKind::File };
            let size = if kind == EntryKind::File { entry.len() } else { 0 };
            out.push(DirEntry { name, kind, size });
        }
        Ok(out)
    }

    fn read_file(&mut self, path: &str, out: &mut dyn Write) -> Result<u64, FsError> {
        let rel = components(path).collect::<Vec<_>>().join("/");
        let mut file = self.fs.root_dir().open_file(&rel).map_err(|e| io_err(path, e))?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err(path, e)),
            };
            out.write_all(&buf[..n]).map_err(|source| FsError::Io { path: path.into(), source })?;
            total += n as u64;
        }
    }
}
