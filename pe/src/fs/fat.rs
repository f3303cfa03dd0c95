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
    pub fn open(mut range: RangeReader) -> Result<Self, FsError> {
        let mut boot = [0u8; 512];
        range.read_exact_at(0, &mut boot).map_err(|source| FsError::Io { path: "/".into(), source })?;
        check_bpb(&boot).map_err(|detail| FsError::Corrupt { path: "/".into(), fs: "vfat", detail })?;
        let fs = FileSystem::new(range, FsOptions::new().update_accessed_date(false))
            .map_err(|e| FsError::Corrupt { path: "/".into(), fs: "vfat", detail: e.to_string() })?;
        Ok(FatReader { fs })
    }
}

/// The BPB arithmetic `fatfs` does in `u32` without overflow checks (a panic in debug builds,
/// nonsense in release), done here first in `u64`.
fn check_bpb(b: &[u8; 512]) -> Result<(), String> {
    let le16 = |at: usize| u64::from(u16::from_le_bytes([b[at], b[at + 1]]));
    let le32 = |at: usize| u64::from(u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]));
    let bps = le16(11);
    let spc = u64::from(b[13]);
    let (reserved, fats, root_entries) = (le16(14), u64::from(b[16]), le16(17));
    let total = if le16(19) != 0 { le16(19) } else { le32(32) };
    let per_fat = if le16(22) != 0 { le16(22) } else { le32(36) };
    let shape_ok = bps.is_power_of_two() && (512..=4096).contains(&bps) && spc.is_power_of_two() && fats > 0;
    if !shape_ok {
        return Err(format!("invalid BPB (bytes/sector {bps}, sectors/cluster {spc}, FATs {fats})"));
    }
    let first_data = reserved + fats * per_fat + (root_entries * 32).div_ceil(bps);
    if per_fat * bps * 8 > u64::from(u32::MAX) {
        return Err(format!("invalid BPB ({per_fat} sectors per FAT)"));
    }
    if first_data > u64::from(u32::MAX) || first_data >= total {
        return Err(format!("the BPB puts the data area at sector {first_data}, past the {total}-sector volume"));
    }
    Ok(())
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

    fn metadata(&mut self, path: &str) -> Result<super::Metadata, FsError> {
        Err(FsError::Unsupported { path: path.into(), fs: self.fs_type(), what: "metadata".into() })
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
