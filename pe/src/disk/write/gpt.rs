//! GPT writing that changes only what it means to change.
//!
//! The `gpt` crate's `GptDisk::write` re-packs used entries at the start of the array (which
//! renumbers partitions), so it is not used. Instead: both copies are loaded through the one
//! GPT loader ([`gpt_read::header_at`], [`gpt_read::entry_array`]), headers are re-written by
//! the crate (`Header::write_primary` / `write_backup`, which recompute both CRCs), new entries
//! are encoded by the crate (`Partition::write_to_device`), and a resized entry has only its
//! two LBA fields changed in place. Every other byte — other entries, GUIDs, attributes,
//! names, the disk GUID, the protective MBR and its boot code — stays as it was. Everything
//! is computed against an [`Overlay`]; nothing is written here.

use std::io::Cursor;

use gpt::disk::LogicalBlockSize;
use gpt::header::{Header, HeaderError};
use gpt::partition::Partition;

use super::patch::{Overlay, Patch};
use crate::disk::device::SharedDisk;
use crate::disk::gpt_read::{self, HeaderRead};
use crate::error::{Error, Hint, Kind};
use crate::step::Step;

/// A GPT ready to be edited: both headers valid and agreeing, one entry array.
#[derive(Debug, Clone)]
pub struct GptTable {
    pub sector_size: u32,
    pub primary: Header,
    pub backup: Header,
    /// The raw entry array (`num_parts × 128` bytes).
    pub entries: Vec<u8>,
    /// What was repaired while loading (only with `repair`).
    pub repairs: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum GptWriteError {
    #[error("the primary GPT is damaged ({why}) but the backup GPT at the end of the disk is good")]
    PrimaryDamaged { why: String },
    #[error("the backup GPT at the end of the disk is damaged ({why}) but the primary is good")]
    BackupDamaged { why: String },
    #[error("the primary and backup GPT disagree")]
    Disagree,
    #[error("the GPT cannot be used: {0}")]
    Unusable(String),
    #[error("the GPT edit is invalid: {0}")]
    Edit(String),
}

impl GptWriteError {
    /// What to do about it.
    pub fn hints(&self) -> Vec<Hint> {
        let advice = |t: &str| Hint::Advice { text: t.into() };
        match self {
            GptWriteError::PrimaryDamaged { .. } => vec![Hint::RepairGpt, advice("or repair it with gdisk (recovery menu: b, c, w)")],
            GptWriteError::BackupDamaged { .. } => vec![Hint::RepairGpt, advice("or rebuild the backup with `sgdisk -e`")],
            GptWriteError::Disagree => vec![advice("check which copy is right with gdisk")],
            GptWriteError::Unusable(_) => vec![advice("repair the table (gdisk) first")],
            GptWriteError::Edit(_) => Vec::new(),
        }
    }

    /// The engine's error for `step`, about `disk`; nothing was written.
    pub fn into_error(self, step: Step, disk: &str) -> Error {
        let kind = if matches!(self, GptWriteError::Edit(_)) { Kind::Internal } else { Kind::Refused };
        let hints = self.hints();
        hints.into_iter().fold(Error::new(step, kind, format!("{disk}: {self}")), Error::hint)
    }
}

/// One change to one slot.
#[derive(Debug, Clone)]
pub enum EntryEdit {
    /// Set the LBA range of the entry in `slot` (1-based, the partition number), leaving every
    /// other byte of the entry as it is.
    Resize { slot: u32, first_lba: u64, last_lba: u64 },
    /// Fill the unused `slot` with a new entry.
    Add { slot: u32, part: Partition },
}

fn lb(ss: u32) -> Result<LogicalBlockSize, GptWriteError> {
    LogicalBlockSize::try_from(u64::from(ss)).map_err(|_| GptWriteError::Unusable(format!("{ss}-byte sectors")))
}

/// One copy (header and entry array) through the shared loader, with what editing needs on
/// top: the standard 92-byte header and at most 4096 entries.
fn copy_at(disk: &SharedDisk, lba: u64, l: LogicalBlockSize) -> Result<(Header, Vec<u8>), String> {
    let h = match gpt_read::header_at(disk, lba, l) {
        HeaderRead::Valid(h) => h,
        other => return Err(other.why()),
    };
    if h.header_size_le != 92 || h.num_parts == 0 || h.num_parts > 4096 {
        return Err(format!("unusual header (size {}, {} entries of {} bytes)", h.header_size_le, h.num_parts, h.part_size));
    }
    let entries = gpt_read::entry_array(disk, &h, l).map_err(|e| e.to_string())?;
    Ok((h, entries))
}

/// Loads the GPT for editing. Both copies must be good and agree, unless `repair` is set, in
/// which case a damaged copy is rebuilt from the good one (and the rebuild is part of the
/// patch that [`patch`] returns).
pub fn load(disk: &SharedDisk, ss: u32, repair: bool) -> Result<GptTable, GptWriteError> {
    let s = u64::from(ss);
    let l = lb(ss)?;
    let last_lba = (disk.size() / s).checked_sub(1).ok_or_else(|| GptWriteError::Unusable("empty disk".into()))?;
    let primary = copy_at(disk, 1, l);
    let backup_lba = primary.as_ref().map_or(last_lba, |(h, _)| h.backup_lba);
    let backup = copy_at(disk, backup_lba, l);
    let mut repairs = Vec::new();
    let (p, b, entries) = match (primary, backup) {
        (Ok((p, pe)), Ok((b, be))) => {
            if pe != be || p.num_parts != b.num_parts || p.disk_guid != b.disk_guid {
                return Err(GptWriteError::Disagree);
            }
            (p, b, pe)
        }
        (Err(why), Ok((b, be))) => {
            if !repair {
                return Err(GptWriteError::PrimaryDamaged { why });
            }
            let mut p = b.clone();
            p.current_lba = 1;
            p.backup_lba = b.current_lba;
            p.part_start = 2;
            if p.part_start + (u64::from(p.num_parts) * 128).div_ceil(s) > p.first_usable {
                return Err(GptWriteError::Unusable("the backup header's first usable LBA leaves no room for a primary array".into()));
            }
            repairs.push(format!("rebuilt the primary GPT from the backup at LBA {} ({why})", b.current_lba));
            (p, b, be)
        }
        (Ok((p, pe)), Err(why)) => {
            if !repair {
                return Err(GptWriteError::BackupDamaged { why });
            }
            let mut b = p.clone();
            b.current_lba = p.backup_lba;
            b.backup_lba = 1;
            b.part_start = p.last_usable + 1;
            if b.part_start + (u64::from(p.num_parts) * 128).div_ceil(s) > b.current_lba {
                return Err(GptWriteError::Unusable("no room for a backup entry array".into()));
            }
            repairs.push(format!("rebuilt the backup GPT at LBA {} from the primary ({why})", b.current_lba));
            (p, b, pe)
        }
        (Err(a), Err(b)) => return Err(GptWriteError::Unusable(format!("primary: {a}; backup: {b}"))),
    };
    Ok(GptTable { sector_size: ss, primary: p, backup: b, entries, repairs })
}

/// The bytes of a new entry, encoded by the crate.
fn encode(part: &Partition, ss: u32) -> Result<Vec<u8>, GptWriteError> {
    let mut cur = Cursor::new(vec![0u8; 128]);
    part.write_to_device(&mut cur, 0, 0, lb(ss)?, 128).map_err(|e| GptWriteError::Edit(e.to_string()))?;
    Ok(cur.into_inner())
}

fn slot_range(t: &GptTable, slot: u32) -> Result<std::ops::Range<usize>, GptWriteError> {
    if slot == 0 || slot > t.primary.num_parts {
        return Err(GptWriteError::Edit(format!("slot {slot} is not in the {}-entry array", t.primary.num_parts)));
    }
    let at = (slot as usize - 1) * 128;
    Ok(at..at + 128)
}

/// The new entry array after `edits`.
pub fn edited_entries(t: &GptTable, edits: &[EntryEdit]) -> Result<Vec<u8>, GptWriteError> {
    let mut entries = t.entries.clone();
    for e in edits {
        match e {
            EntryEdit::Resize { slot, first_lba, last_lba } => {
                let r = slot_range(t, *slot)?;
                if entries[r.start..r.start + 16].iter().all(|b| *b == 0) {
                    return Err(GptWriteError::Edit(format!("slot {slot} is unused; there is nothing to resize")));
                }
                entries[r.start + 32..r.start + 40].copy_from_slice(&first_lba.to_le_bytes());
                entries[r.start + 40..r.start + 48].copy_from_slice(&last_lba.to_le_bytes());
            }
            EntryEdit::Add { slot, part } => {
                let r = slot_range(t, *slot)?;
                if entries[r.clone()].iter().any(|b| *b != 0) {
                    return Err(GptWriteError::Edit(format!("slot {slot} is in use; not overwriting it")));
                }
                entries[r].copy_from_slice(&encode(part, t.sector_size)?);
            }
        }
    }
    // Every used entry must lie in the usable area and not overlap another.
    let mut used: Vec<(u64, u64, usize)> = Vec::new();
    for (i, e) in entries.chunks_exact(128).enumerate() {
        if e[..16].iter().all(|b| *b == 0) {
            continue;
        }
        let first = u64::from_le_bytes(e[32..40].try_into().unwrap_or([0; 8]));
        let last = u64::from_le_bytes(e[40..48].try_into().unwrap_or([0; 8]));
        if first > last || first < t.primary.first_usable || last > t.primary.last_usable {
            return Err(GptWriteError::Edit(format!(
                "entry {} (LBA {first}–{last}) would lie outside the usable area (LBA {}–{})",
                i + 1,
                t.primary.first_usable,
                t.primary.last_usable
            )));
        }
        if let Some((_, _, j)) = used.iter().find(|(f, l, _)| first <= *l && *f <= last) {
            return Err(GptWriteError::Edit(format!("entries {} and {} would overlap", j + 1, i + 1)));
        }
        used.push((first, last, i));
    }
    Ok(entries)
}

/// The writes that apply `edits`: both entry arrays, both headers (with fresh CRCs), and any
/// repair made while loading.
pub fn patch(disk: &SharedDisk, t: &GptTable, edits: &[EntryEdit]) -> Result<Patch, GptWriteError> {
    let entries = edited_entries(t, edits)?;
    let l = lb(t.sector_size)?;
    let s = u64::from(t.sector_size);
    let mut o = Overlay::new(disk.clone());
    o.patch.put(t.primary.part_start * s, entries.clone());
    o.patch.put(t.backup.part_start * s, entries);
    let werr = |e: HeaderError| GptWriteError::Edit(format!("writing a GPT header: {e}"));
    let mut b = t.backup.clone();
    b.write_backup(&mut o, l).map_err(werr)?;
    let mut p = t.primary.clone();
    p.write_primary(&mut o, l).map_err(werr)?;
    Ok(o.patch)
}

/// `(offset, length)` of the areas a GPT lives in: LBA 0 through the primary array, and the
/// backup array through the backup header.
pub fn table_areas(t: &GptTable) -> Vec<(u64, u64)> {
    let s = u64::from(t.sector_size);
    let arr = (u64::from(t.primary.num_parts) * 128).div_ceil(s);
    vec![
        (0, (t.primary.part_start + arr) * s),
        (t.backup.part_start * s, (t.backup.current_lba + 1 - t.backup.part_start) * s),
    ]
}

/// A new "Microsoft basic data" entry for the store.
pub fn store_entry(first_lba: u64, last_lba: u64, part_guid: uuid::Uuid) -> Partition {
    Partition {
        part_type_guid: gpt::partition_types::BASIC,
        part_guid,
        first_lba,
        last_lba,
        flags: 0,
        name: "inplace store".into(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::disk::device::MemDisk;

    /// A GPT with entries in slots 1 and 3 (a hole at 2), written slot by slot.
    fn sample(ss: u32, lbas: u64) -> Vec<u8> {
        let l = lb(ss).unwrap();
        let s = u64::from(ss);
        let mut cur = Cursor::new(vec![0u8; (s * lbas) as usize]);
        let disk = gpt::GptConfig::new().writable(true).logical_block_size(l).create_from_device(&mut cur, None).unwrap();
        let mut h = disk.primary_header().unwrap().clone();
        let mut bh = disk.backup_header().unwrap().clone();
        drop(disk);
        let mut p1 = store_entry(h.first_usable, h.first_usable + 99, uuid::Uuid::from_u128(1));
        p1.flags = 1 << 60;
        p1.name = "one".into();
        let p3 = store_entry(h.first_usable + 200, h.first_usable + 299, uuid::Uuid::from_u128(3));
        for (idx, p) in [(0u64, &p1), (2, &p3)] {
            p.write_to_device(&mut cur, idx, h.part_start, l, 128).unwrap();
            p.write_to_device(&mut cur, idx, bh.part_start, l, 128).unwrap();
        }
        bh.write_backup(&mut cur, l).unwrap();
        h.write_primary(&mut cur, l).unwrap();
        let mut img = cur.into_inner();
        img[0..440].fill(0xAB); // boot code that must survive
        img
    }

    fn apply(img: &mut [u8], p: &Patch) {
        for (at, b) in &p.writes {
            img[*at as usize..*at as usize + b.len()].copy_from_slice(b);
        }
    }

    #[test]
    fn add_in_a_hole_keeps_every_other_byte() {
        for ss in [512u32, 4096] {
            let s = ss as usize;
            let img = sample(ss, 4096);
            let d: SharedDisk = Arc::new(MemDisk(img.clone()));
            let t = load(&d, ss, false).unwrap();
            let first = t.primary.first_usable + 400;
            let p = patch(&d, &t, &[EntryEdit::Add { slot: 2, part: store_entry(first, first + 9, uuid::Uuid::from_u128(2)) }]).unwrap();
            let mut out = img.clone();
            apply(&mut out, &p);
            // Sector 0 unchanged; entry 1 and 3 unchanged; slot 2 filled.
            assert_eq!(out[..s], img[..s]);
            let arr = 2 * s;
            assert_eq!(out[arr..arr + 128], img[arr..arr + 128]);
            assert_eq!(out[arr + 256..arr + 384], img[arr + 256..arr + 384]);
            assert_ne!(out[arr + 128..arr + 256], img[arr + 128..arr + 256]);
            // Header: only the two CRCs differ.
            for (i, (a, b)) in out[s..2 * s].iter().zip(&img[s..2 * s]).enumerate() {
                if a != b {
                    assert!((16..20).contains(&i) || (88..92).contains(&i), "header byte {i}");
                }
            }
            let d2: SharedDisk = Arc::new(MemDisk(out));
            let t2 = load(&d2, ss, false).unwrap();
            let read = crate::disk::gpt_read::read(&d2, ss).unwrap();
            assert!(read.notes.is_empty(), "{:?}", read.notes);
            let nums: Vec<u32> = read.entries.iter().map(|e| e.number).collect();
            assert_eq!(nums, vec![1, 2, 3]);
            assert_eq!(t2.primary.disk_guid, t.primary.disk_guid);
        }
    }

    #[test]
    fn resize_changes_only_lbas_and_overlaps_are_refused() {
        let img = sample(512, 4096);
        let d: SharedDisk = Arc::new(MemDisk(img.clone()));
        let t = load(&d, 512, false).unwrap();
        let f = t.primary.first_usable;
        let p = patch(&d, &t, &[EntryEdit::Resize { slot: 1, first_lba: f, last_lba: f + 49 }]).unwrap();
        let mut out = img.clone();
        apply(&mut out, &p);
        let diff: Vec<usize> = (1024..1024 + 128).filter(|i| out[*i] != img[*i]).collect();
        assert!(diff.iter().all(|i| (1024 + 40..1024 + 48).contains(i)), "{diff:?}");
        assert!(patch(&d, &t, &[EntryEdit::Resize { slot: 1, first_lba: f, last_lba: f + 250 }]).is_err());
        assert!(patch(&d, &t, &[EntryEdit::Resize { slot: 2, first_lba: f, last_lba: f + 1 }]).is_err());
        let past = t.primary.last_usable + 1;
        assert!(patch(&d, &t, &[EntryEdit::Add { slot: 2, part: store_entry(past - 5, past, uuid::Uuid::nil()) }]).is_err());
    }

    #[test]
    fn damaged_primary_is_repaired_only_when_asked() {
        let mut img = sample(512, 4096);
        img[512 + 40] ^= 0xff;
        let d: SharedDisk = Arc::new(MemDisk(img.clone()));
        let e = load(&d, 512, false).unwrap_err();
        assert!(matches!(e, GptWriteError::PrimaryDamaged { .. }), "{e}");
        assert!(!e.to_string().contains("--") && !e.to_string().contains("nothing was written"), "{e}");
        assert_eq!(e.hints()[0], Hint::RepairGpt);
        let t = load(&d, 512, true).unwrap();
        assert_eq!(t.repairs.len(), 1);
        let p = patch(&d, &t, &[]).unwrap();
        apply(&mut img, &p);
        let d: SharedDisk = Arc::new(MemDisk(img));
        assert!(load(&d, 512, false).is_ok());
    }
}
