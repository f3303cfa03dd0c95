//! FAT12/16/32 through `fatfs`. `fatfs` wants a writable device; the view under it refuses
//! every write, and nothing here calls a writing method.
//!
//! `fatfs` finds a name by reading its directory from the start. The reader keeps the last
//! directory it read, with each entry's metadata, so a walk (list, then ask for each entry)
//! reads a directory once, not once per entry. Opening a file to read it still scans its
//! directory: `fatfs` opens files by name only.

use std::collections::HashMap;
use std::io::{self, Read, Write};

use fatfs::{FileSystem, FsOptions};

use super::bpb::Bpb;
use super::range::RangeReader;
use super::{components, shown, Bytes, DirEntry, EntryKind, FsError, FsReader, Metadata, Time};

pub struct FatReader {
    fs: FileSystem<RangeReader>,
    /// The label's 11 raw bytes: the root directory's volume-label entry, else the BPB's.
    raw_label: Option<[u8; 11]>,
    /// The last directory read.
    last: Option<Listing>,
}

/// A directory's entries with their metadata, and where each name is (ASCII case folded, as
/// FAT compares names).
struct Listing {
    /// The directory's path, its components joined and lowercased.
    key: String,
    entries: Vec<(DirEntry, Metadata)>,
    by_name: HashMap<Vec<u8>, usize>,
}

impl FatReader {
    pub fn open(mut range: RangeReader) -> Result<Self, FsError> {
        let mut boot = [0u8; 512];
        range.read_exact_at(0, &mut boot).map_err(|source| FsError::Io { path: "/".into(), source })?;
        check_bpb(&boot).map_err(|detail| FsError::Corrupt { path: "/".into(), fs: "vfat", detail })?;
        let raw_label = root_dir_label(&mut range, &boot).or_else(|| bpb_label(&boot));
        let fs = FileSystem::new(range, FsOptions::new().update_accessed_date(false))
            .map_err(|e| FsError::Corrupt { path: "/".into(), fs: "vfat", detail: e.to_string() })?;
        Ok(FatReader { fs, raw_label, last: None })
    }
}

/// The label in the boot sector's extended BPB (signature 0x29), raw.
pub fn bpb_label(b: &[u8; 512]) -> Option<[u8; 11]> {
    let at = if Bpb::decode(b).root_entries == 0 && b[22] == 0 && b[23] == 0 { 66 } else { 38 };
    (b[at] == 0x29).then(|| b[at + 5..at + 16].try_into().ok()).flatten()
}

/// The most root-directory clusters searched for the label entry.
const LABEL_CLUSTERS: u64 = 64;

/// The raw name of the root directory's volume-label entry (attribute 0x08), where there is
/// one. FAT12/16: the fixed root directory; FAT32: the root cluster chain, followed through
/// the first FAT for at most [`LABEL_CLUSTERS`] clusters.
fn root_dir_label(range: &mut RangeReader, b: &[u8; 512]) -> Option<[u8; 11]> {
    let bpb = Bpb::decode(b);
    let bps = bpb.bytes_per_sector;
    let first_data = bpb.reserved_sectors + bpb.fats * bpb.sectors_per_fat;
    let mut runs: Vec<(u64, u64)> = Vec::new();
    if bpb.root_entries > 0 {
        runs.push((first_data * bps, (bpb.root_entries * 32).min(1 << 16)));
    } else {
        let cluster_bytes = bpb.sectors_per_cluster * bps;
        let data = (first_data + bpb.root_entries * 32 / bps) * bps;
        let mut c = u64::from(u32::from_le_bytes([b[44], b[45], b[46], b[47]]) & 0x0FFF_FFFF);
        while (2..0x0FFF_FFF0).contains(&c) && (runs.len() as u64) < LABEL_CLUSTERS {
            runs.push((data.checked_add((c - 2).checked_mul(cluster_bytes)?)?, cluster_bytes.min(1 << 20)));
            let mut next = [0u8; 4];
            range.read_exact_at(bpb.reserved_sectors * bps + c * 4, &mut next).ok()?;
            c = u64::from(u32::from_le_bytes(next) & 0x0FFF_FFFF);
        }
    }
    for (at, len) in runs {
        let mut dir = vec![0u8; len as usize];
        range.read_exact_at(at, &mut dir).ok()?;
        for e in dir.chunks_exact(32) {
            match (e[0], e[11]) {
                (0, _) => return None,
                (0xE5, _) | (_, 0x0F) => continue,
                (_, attr) if attr & 0x08 != 0 && attr & 0x10 == 0 => return e[..11].try_into().ok(),
                _ => {}
            }
        }
    }
    None
}

/// The BPB arithmetic `fatfs` does in `u32` without overflow checks (a panic in debug builds,
/// nonsense in release), done here first in `u64`.
fn check_bpb(b: &[u8; 512]) -> Result<(), String> {
    let bpb = Bpb::decode(b);
    let (bps, spc, fats) = (bpb.bytes_per_sector, bpb.sectors_per_cluster, bpb.fats);
    if !bpb.shape_ok() {
        return Err(format!("invalid BPB (bytes/sector {bps}, sectors/cluster {spc}, FATs {fats})"));
    }
    let first_data = bpb.first_data_sector();
    if bpb.sectors_per_fat * bps * 8 > u64::from(u32::MAX) {
        return Err(format!("invalid BPB ({} sectors per FAT)", bpb.sectors_per_fat));
    }
    if first_data > u64::from(u32::MAX) || first_data >= bpb.total_sectors {
        return Err(format!("the BPB puts the data area at sector {first_data}, past the {}-sector volume", bpb.total_sectors));
    }
    Ok(())
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A FAT timestamp (local time of whatever machine wrote it; taken as UTC, there is no zone on
/// disk). `None` for an impossible date or time (unset fields are zero).
fn fat_time(dt: fatfs::DateTime) -> Option<Time> {
    let (d, t) = (dt.date, dt.time);
    if !(1..=12).contains(&d.month) || !(1..=31).contains(&d.day) || t.hour > 23 || t.min > 59 || t.sec > 59 {
        return None;
    }
    let days = days_from_civil(i64::from(d.year), i64::from(d.month), i64::from(d.day));
    let secs = days * 86_400 + i64::from(t.hour) * 3600 + i64::from(t.min) * 60 + i64::from(t.sec);
    Some(Time { secs, nanos: u32::from(t.millis.min(999)) * 1_000_000 })
}

fn io_err(path: &[u8], e: io::Error) -> FsError {
    match e.kind() {
        io::ErrorKind::NotFound => FsError::NotFound { path: shown(path) },
        _ => FsError::Io { path: shown(path), source: e },
    }
}

/// A path's components as text: fatfs names are UTF-16 long names it gives as `String`s, so a
/// path that is not UTF-8 names nothing here.
fn text_parts(path: &[u8]) -> Result<Vec<&str>, FsError> {
    components(path).map(|c| std::str::from_utf8(c).map_err(|_| FsError::NotFound { path: shown(path) })).collect()
}

impl FatReader {
    /// The entries of directory `parts` with their metadata, from the last listing when it is
    /// that directory's.
    fn listing(&mut self, parts: &[&str], path: &[u8]) -> Result<&Listing, FsError> {
        let key = parts.join("/").to_lowercase();
        if self.last.as_ref().is_none_or(|l| l.key != key) {
            let rel = parts.join("/");
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
                let meta = Metadata {
                    size,
                    allocated: (kind == EntryKind::File).then_some(size),
                    mtime: fat_time(entry.modified()),
                    attributes: Some(u32::from(entry.attributes().bits())),
                    ..Metadata::empty(kind)
                };
                out.push((DirEntry { name: Bytes::from(name), kind, size }, meta));
            }
            let mut by_name = HashMap::with_capacity(out.len());
            for (i, (e, _)) in out.iter().enumerate() {
                by_name.entry(e.name.as_bytes().to_ascii_lowercase()).or_insert(i);
            }
            self.last = Some(Listing { key, entries: out, by_name });
        }
        Ok(self.last.as_ref().expect("just listed"))
    }

    /// The entry at `path` (names compared without ASCII case, as FAT does); `None` for the
    /// root, which has no entry.
    fn entry(&mut self, path: &[u8]) -> Result<Option<(DirEntry, Metadata)>, FsError> {
        let parts = text_parts(path)?;
        let Some((last, parents)) = parts.split_last() else { return Ok(None) };
        let listing = self.listing(parents, path)?;
        match listing.by_name.get(&last.as_bytes().to_ascii_lowercase()) {
            Some(i) => Ok(Some(listing.entries[*i].clone())),
            None => Err(FsError::NotFound { path: shown(path) }),
        }
    }
}

impl FsReader for FatReader {
    fn fs_type(&self) -> &'static str {
        "vfat"
    }

    fn label(&mut self) -> Option<String> {
        crate::codepage::fat_label(&self.raw_label?, crate::codepage::current())
    }

    fn stat(&mut self, path: &[u8]) -> Result<DirEntry, FsError> {
        match self.entry(path)? {
            Some((e, _)) => Ok(e),
            None => Ok(DirEntry { name: Bytes::from("/"), kind: EntryKind::Dir, size: 0 }),
        }
    }

    fn metadata(&mut self, path: &[u8]) -> Result<Metadata, FsError> {
        match self.entry(path)? {
            Some((_, m)) => Ok(m),
            // The root directory has no entry of its own.
            None => Ok(Metadata::empty(EntryKind::Dir)),
        }
    }

    fn read_dir(&mut self, path: &[u8]) -> Result<Vec<DirEntry>, FsError> {
        let parts = text_parts(path)?;
        Ok(self.listing(&parts, path)?.entries.iter().map(|(e, _)| e.clone()).collect())
    }

    fn read_file(&mut self, path: &[u8], out: &mut dyn Write) -> Result<u64, FsError> {
        let rel = text_parts(path)?.join("/");
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
            out.write_all(&buf[..n]).map_err(|source| FsError::Io { path: shown(path), source })?;
            total += n as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::process::Command;

    use super::*;
    use crate::fs::testimg;

    #[test]
    fn civil_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1980, 1, 1), 3_652);
    }

    #[test]
    fn metadata_from_a_mtools_image() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("fat.img");
        testimg::mkfat(&img, 40 << 20, "FATFIX");
        let src = dir.path().join("Report.txt");
        fs::write(&src, "report\r\n").unwrap();
        testimg::run(Command::new("touch").args(["-d", "2022-07-08 09:10:12"]).arg(&src));
        let mt = |args: &[&str]| {
            testimg::run(Command::new(args[0]).args(&args[1..]).env("TZ", "UTC").env("MTOOLS_SKIP_CHECK", "1"));
        };
        let img_s = img.to_str().unwrap();
        mt(&["mmd", "-i", img_s, "::/Docs"]);
        mt(&["mcopy", "-m", "-i", img_s, src.to_str().unwrap(), "::/Docs/Report.txt"]);
        mt(&["mattrib", "-i", img_s, "+r", "+h", "::/Docs/Report.txt"]);

        let mut r = testimg::open(&img, "vfat");
        let m = r.metadata(b"/docs/report.TXT").unwrap();
        assert_eq!((m.kind, m.size), (EntryKind::File, 8));
        // 2022-07-08 09:10:12 UTC.
        assert_eq!(m.mtime, Some(Time { secs: 1_657_271_412, nanos: 0 }));
        assert_eq!(m.attributes.map(|a| a & 0x3F), Some(0x01 | 0x02 | 0x20));
        assert_eq!((m.mode, m.link_id, m.target.as_ref()), (None, None, None));
        assert_eq!(m.allocated, Some(8));
        let d = r.metadata(b"/Docs").unwrap();
        assert_eq!((d.kind, d.size), (EntryKind::Dir, 0));
        assert_eq!(d.attributes.map(|a| a & 0x10), Some(0x10));
        assert_eq!(r.metadata(b"/").unwrap().kind, EntryKind::Dir);
        assert!(matches!(r.metadata(b"/Docs/none"), Err(FsError::NotFound { .. })));
    }
}
