//! MBR writing: sector 0 through `mbrman::MBRHeader` (read, change one entry, write back; the
//! boot code, disk signature and other entries stay byte-identical), and the extended/logical
//! chain written here sector by sector. `mbrman::MBR::write_into` is not used: 0.6.1 computes
//! EBR byte offsets in `u32` and writes EBRs past 4 GiB to the wrong place.
//!
//! The chain is the standard one Linux and fdisk write: each EBR holds the logical partition
//! (relative to the EBR) in entry 0 and the link to the next EBR (relative to the start of the
//! extended partition) in entry 1.

use std::io::Cursor;

use mbrman::{MBRHeader, MBRPartitionEntry, CHS};

use super::patch::Patch;
use crate::disk::device::SharedDisk;
use crate::error::Error;
use crate::step::Step;

const MAX_LOGICAL: usize = 128;

/// One EBR of the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ebr {
    pub lba: u64,
    /// The whole sector as it is on disk.
    pub sector: Vec<u8>,
    /// Logical partition: absolute first LBA and sectors.
    pub logical: Option<(u64, u64)>,
}

#[derive(Debug, Clone)]
pub struct MbrTable {
    pub sector_size: u32,
    /// Sector 0 as it is on disk (a full logical sector).
    pub sector0: Vec<u8>,
    pub header: MBRHeader,
    /// (slot 1–4, first LBA, sectors) of the extended partition.
    pub extended: Option<(usize, u64, u64)>,
    pub chain: Vec<Ebr>,
}

#[derive(Debug, thiserror::Error)]
pub enum MbrWriteError {
    #[error("the MBR cannot be edited safely: {0}")]
    Unusable(String),
    #[error("the MBR edit is invalid: {0}")]
    Edit(String),
}

impl MbrWriteError {
    /// The engine's error for `step`, about `disk`; nothing was written.
    pub fn into_error(self, step: Step, disk: &str) -> Error {
        match self {
            MbrWriteError::Unusable(_) => Error::refused(step, format!("{disk}: {self}")).advice("fix the table with fdisk first"),
            MbrWriteError::Edit(_) => Error::internal(step, format!("{disk}: {self}")),
        }
    }
}

#[derive(Debug, Clone)]
pub enum MbrEdit {
    /// Set the size of primary `slot` (1–4).
    ResizePrimary { slot: usize, sectors: u64 },
    /// Set the size of logical partition `number` (5…).
    ResizeLogical { number: u32, sectors: u64 },
    GrowExtended { sectors: u64 },
    AddPrimary { slot: usize, first_lba: u64, sectors: u64, sys: u8 },
    /// Append a logical partition to the end of the chain, described by a new EBR at `ebr_lba`.
    AddLogical { ebr_lba: u64, first_lba: u64, sectors: u64, sys: u8 },
}

fn u32_of(v: u64, what: &str) -> Result<u32, MbrWriteError> {
    u32::try_from(v).map_err(|_| MbrWriteError::Edit(format!("{what} {v} does not fit the MBR's 32-bit sector fields")))
}

fn read_sector(disk: &SharedDisk, lba: u64, ss: u64) -> Result<Vec<u8>, MbrWriteError> {
    let mut b = vec![0u8; ss as usize];
    let at = lba.checked_mul(ss).ok_or_else(|| MbrWriteError::Unusable(format!("sector {lba} overflows")))?;
    disk.read_exact_at(at, &mut b).map_err(|e| MbrWriteError::Unusable(format!("reading sector {lba}: {e}")))?;
    Ok(b)
}

fn entry(sector: &[u8], i: usize) -> (u8, u64, u64) {
    let at = 446 + i * 16;
    let start = u32::from_le_bytes([sector[at + 8], sector[at + 9], sector[at + 10], sector[at + 11]]);
    let size = u32::from_le_bytes([sector[at + 12], sector[at + 13], sector[at + 14], sector[at + 15]]);
    (sector[at + 4], u64::from(start), u64::from(size))
}

fn is_ext(sys: u8) -> bool {
    matches!(sys, 0x05 | 0x0f | 0x85)
}

/// Loads sector 0 and the EBR chain, refusing anything non-standard.
pub fn load(disk: &SharedDisk, ss: u32) -> Result<MbrTable, MbrWriteError> {
    let s = u64::from(ss);
    let sector0 = read_sector(disk, 0, s)?;
    let header = MBRHeader::read_from(&mut Cursor::new(&sector0[..512]))
        .map_err(|e| MbrWriteError::Unusable(format!("sector 0 is not an MBR ({e})")))?;
    let mut extended = None;
    for i in 0..4 {
        let (sys, start, size) = entry(&sector0, i);
        if is_ext(sys) && size > 0 {
            if extended.is_some() {
                return Err(MbrWriteError::Unusable("two extended partitions".into()));
            }
            extended = Some((i + 1, start, size));
        }
    }
    let mut chain = Vec::new();
    if let Some((_, ext_start, ext_size)) = extended {
        let ext_end = ext_start + ext_size;
        let mut lba = ext_start;
        loop {
            if chain.len() >= MAX_LOGICAL {
                return Err(MbrWriteError::Unusable("the logical partition chain is too long or loops".into()));
            }
            let sector = read_sector(disk, lba, s)?;
            if sector[510] != 0x55 || sector[511] != 0xAA {
                if lba == ext_start {
                    break; // an empty extended partition
                }
                return Err(MbrWriteError::Unusable(format!("the EBR at sector {lba} has no boot signature")));
            }
            let (sys0, rel0, size0) = entry(&sector, 0);
            let (sys1, rel1, size1) = entry(&sector, 1);
            if entry(&sector, 2).0 != 0 || entry(&sector, 3).0 != 0 || is_ext(sys0) || (sys1 != 0 && !is_ext(sys1)) {
                return Err(MbrWriteError::Unusable(format!("the EBR at sector {lba} is not in the standard form")));
            }
            let logical = (sys0 != 0 && size0 > 0).then_some((lba + rel0, size0));
            if let Some((st, sz)) = logical {
                if st <= lba || st + sz > ext_end {
                    return Err(MbrWriteError::Unusable(format!("the logical partition of the EBR at sector {lba} lies outside the extended partition")));
                }
            }
            chain.push(Ebr { lba, sector, logical });
            if sys1 == 0 || size1 == 0 {
                break;
            }
            let next = ext_start + rel1;
            if next <= lba || next >= ext_end {
                return Err(MbrWriteError::Unusable(format!("the EBR at sector {lba} links backwards or outside the extended partition")));
            }
            lba = next;
        }
    }
    Ok(MbrTable { sector_size: ss, sector0, header, extended, chain })
}

fn chs() -> CHS {
    // "Use LBA": the largest CHS value, as fdisk writes for partitions past 8 GiB.
    CHS::new(1023, 254, 63)
}

fn set_entry(sector: &mut [u8], i: usize, sys: u8, rel: u32, size: u32) {
    let at = 446 + i * 16;
    sector[at] = 0;
    sector[at + 1..at + 4].copy_from_slice(&[0xFE, 0xFF, 0xFF]);
    sector[at + 4] = sys;
    sector[at + 5..at + 8].copy_from_slice(&[0xFE, 0xFF, 0xFF]);
    sector[at + 8..at + 12].copy_from_slice(&rel.to_le_bytes());
    sector[at + 12..at + 16].copy_from_slice(&size.to_le_bytes());
    sector[510] = 0x55;
    sector[511] = 0xAA;
}

fn set_size(sector: &mut [u8], i: usize, size: u32) {
    let at = 446 + i * 16 + 12;
    sector[at..at + 4].copy_from_slice(&size.to_le_bytes());
}

/// The writes that apply `edits`.
pub fn patch(t: &MbrTable, edits: &[MbrEdit]) -> Result<Patch, MbrWriteError> {
    let s = u64::from(t.sector_size);
    let mut header = t.header.clone();
    let mut chain = t.chain.clone();
    let mut new_ebrs: Vec<(u64, Vec<u8>)> = Vec::new();
    let ext_start = t.extended.map(|(_, st, _)| st);
    for e in edits {
        match e {
            MbrEdit::ResizePrimary { slot, sectors } => {
                let p = header.get_mut(*slot).filter(|p| p.is_used()).ok_or_else(|| MbrWriteError::Edit(format!("primary slot {slot} is unused")))?;
                p.sectors = u32_of(*sectors, "size")?;
            }
            MbrEdit::GrowExtended { sectors } => {
                let (slot, _, _) = t.extended.ok_or_else(|| MbrWriteError::Edit("no extended partition".into()))?;
                let p = header.get_mut(slot).ok_or_else(|| MbrWriteError::Edit("extended slot".into()))?;
                p.sectors = u32_of(*sectors, "size")?;
            }
            MbrEdit::AddPrimary { slot, first_lba, sectors, sys } => {
                let p = header.get_mut(*slot).ok_or_else(|| MbrWriteError::Edit(format!("no primary slot {slot}")))?;
                if p.is_used() {
                    return Err(MbrWriteError::Edit(format!("primary slot {slot} is in use")));
                }
                *p = MBRPartitionEntry {
                    boot: mbrman::BOOT_INACTIVE,
                    first_chs: chs(),
                    sys: *sys,
                    last_chs: chs(),
                    starting_lba: u32_of(*first_lba, "start")?,
                    sectors: u32_of(*sectors, "size")?,
                };
            }
            MbrEdit::ResizeLogical { number, sectors } => {
                let idx = (*number as usize).checked_sub(5).ok_or_else(|| MbrWriteError::Edit(format!("{number} is not a logical partition")))?;
                let logicals: Vec<usize> = chain.iter().enumerate().filter(|(_, e)| e.logical.is_some()).map(|(i, _)| i).collect();
                let ci = *logicals.get(idx).ok_or_else(|| MbrWriteError::Edit(format!("no logical partition {number}")))?;
                let size = u32_of(*sectors, "size")?;
                set_size(&mut chain[ci].sector, 0, size);
                let (st, _) = chain[ci].logical.unwrap_or_default();
                chain[ci].logical = Some((st, *sectors));
                // The previous EBR's link covers this EBR through the end of its logical.
                if ci > 0 {
                    let span = u32_of(st + sectors - chain[ci].lba, "link size")?;
                    set_size(&mut chain[ci - 1].sector, 1, span);
                }
            }
            MbrEdit::AddLogical { ebr_lba, first_lba, sectors, sys } => {
                let ext = ext_start.ok_or_else(|| MbrWriteError::Edit("no extended partition for a logical one".into()))?;
                let rel = u32_of(first_lba.checked_sub(*ebr_lba).filter(|r| *r > 0).ok_or_else(|| MbrWriteError::Edit("the logical partition must start after its EBR".into()))?, "offset")?;
                let mut sector = vec![0u8; s as usize];
                set_entry(&mut sector, 0, *sys, rel, u32_of(*sectors, "size")?);
                let has_logicals = chain.iter().any(|e| e.logical.is_some());
                if !has_logicals {
                    if *ebr_lba != ext {
                        return Err(MbrWriteError::Edit("the first EBR must be at the start of the extended partition".into()));
                    }
                    chain.clear();
                    chain.push(Ebr { lba: *ebr_lba, sector: sector.clone(), logical: Some((*first_lba, *sectors)) });
                } else {
                    let last = chain.last_mut().ok_or_else(|| MbrWriteError::Edit("empty chain".into()))?;
                    if *ebr_lba <= last.lba {
                        return Err(MbrWriteError::Edit("a new EBR must come after the last one".into()));
                    }
                    let link_rel = u32_of(ebr_lba - ext, "link")?;
                    let span = u32_of(first_lba + sectors - ebr_lba, "link size")?;
                    set_entry(&mut last.sector, 1, 0x05, link_rel, span);
                    chain.push(Ebr { lba: *ebr_lba, sector: sector.clone(), logical: Some((*first_lba, *sectors)) });
                }
                new_ebrs.push((*ebr_lba, sector));
            }
        }
    }
    let mut patch = Patch::default();
    let mut s0 = t.sector0.clone();
    let mut cur = Cursor::new(vec![0u8; 512]);
    header.write_into(&mut cur).map_err(|e| MbrWriteError::Edit(format!("encoding sector 0: {e}")))?;
    let first = cur.into_inner();
    if first.len() != 512 || first[..446] != t.sector0[..446] || first[510..512] != t.sector0[510..512] {
        return Err(MbrWriteError::Edit("re-encoding sector 0 would change bytes outside the partition entries".into()));
    }
    s0[..512].copy_from_slice(&first);
    if s0 != t.sector0 {
        patch.put(0, s0);
    }
    for (e, orig) in chain.iter().zip(t.chain.iter().map(Some).chain(std::iter::repeat(None))) {
        if orig.is_none_or(|o| o.sector != e.sector || o.lba != e.lba) {
            patch.put(e.lba * s, e.sector.clone());
        }
    }
    Ok(patch)
}

/// `(offset, length)` of sector 0 and every EBR.
pub fn table_areas(t: &MbrTable) -> Vec<(u64, u64)> {
    let s = u64::from(t.sector_size);
    let mut v = vec![(0, s)];
    v.extend(t.chain.iter().map(|e| (e.lba * s, s)));
    v
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::disk::device::{MemDisk, ReadAt};
    use crate::disk::mbr_read;

    /// A disk that is zero except where written: large sizes without large buffers.
    struct Sparse(std::sync::Mutex<std::collections::BTreeMap<u64, Vec<u8>>>, u64);
    impl ReadAt for Sparse {
        fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
            buf.fill(0);
            for (at, b) in self.0.lock().unwrap().iter() {
                let end = at + b.len() as u64;
                let (lo, hi) = (offset.max(*at), (offset + buf.len() as u64).min(end));
                if lo < hi {
                    buf[(lo - offset) as usize..(hi - offset) as usize].copy_from_slice(&b[(lo - at) as usize..(hi - at) as usize]);
                }
            }
            Ok(())
        }
        fn size(&self) -> u64 {
            self.1
        }
    }

    #[test]
    fn logicals_past_4_gib_and_boot_code_kept() {
        let mut s0 = vec![0u8; 512];
        s0[..440].fill(0x5A);
        s0[440..444].copy_from_slice(&[1, 2, 3, 4]);
        set_entry(&mut s0, 0, 0x83, 2048, 2048);
        set_entry(&mut s0, 1, 0x05, 4096, 30_000_000);
        s0[446] = 0x80; // bootable flag must survive
        let mut e1 = vec![0u8; 512];
        set_entry(&mut e1, 0, 0x83, 2048, 10_000_000); // first logical ends ~ 4.8 GiB
        let map = std::collections::BTreeMap::from([(0u64, s0.clone()), (4096 * 512, e1)]);
        let disk = Arc::new(Sparse(std::sync::Mutex::new(map), 16 << 30));
        let d: SharedDisk = disk.clone();
        let t = load(&d, 512).unwrap();
        assert_eq!(t.chain.len(), 1);
        let ebr = 4096 + 2048 + 10_000_000 + 100;
        let first = (ebr / 2048 + 1) * 2048;
        let p = patch(&t, &[MbrEdit::AddLogical { ebr_lba: ebr, first_lba: first, sectors: 2_000_000, sys: 0x0c }]).unwrap();
        assert!(!p.writes.contains_key(&0), "sector 0 must not change");
        assert!(p.writes.contains_key(&(ebr * 512)) && ebr * 512 > 4 << 30);
        for (at, b) in &p.writes {
            disk.0.lock().unwrap().insert(*at, b.clone());
        }
        let mbr_read::Sector0::Mbr(h) = mbr_read::sector0(&d) else { panic!() };
        let read = mbr_read::read(&d, &h, 512);
        assert!(read.notes.is_empty(), "{:?}", read.notes);
        let l6 = read.entries.iter().find(|e| e.number == 6).unwrap();
        assert_eq!(l6.start_bytes, first * 512);
        assert_eq!(l6.size_bytes, 2_000_000 * 512);
        // Adding a primary changes only its 16 bytes of sector 0.
        let t = load(&d, 512).unwrap();
        let p = patch(&t, &[MbrEdit::AddPrimary { slot: 3, first_lba: 31_000_000, sectors: 2048, sys: 0x0c }]).unwrap();
        let new0 = &p.writes[&0];
        let diff: Vec<usize> = (0..512).filter(|i| new0[*i] != s0[*i]).collect();
        assert!(diff.iter().all(|i| (478..494).contains(i)), "{diff:?}");
    }

    #[test]
    fn non_standard_chains_are_refused() {
        let mut s0 = vec![0u8; 4096];
        set_entry(&mut s0, 0, 0x05, 2048, 4096);
        let mut img = s0.clone();
        img.resize(8192 * 512, 0);
        let at = 2048 * 512;
        set_entry(&mut img[at..at + 512], 0, 0x83, 2048, 100);
        set_entry(&mut img[at..at + 512], 1, 0x05, 0, 100); // links to itself
        let d: SharedDisk = Arc::new(MemDisk(img));
        assert!(load(&d, 512).unwrap_err().to_string().contains("backwards"));
    }
}
