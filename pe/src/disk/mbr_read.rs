//! MBR reading: the primary table with `mbrman`, the extended/logical chain walked here.
//!
//! `mbrman::MBR::read_from` adds on-disk `u32`s without checking (a panic in debug builds) and
//! can panic while guessing the alignment, so only its sector decoder (`MBRHeader::read_from`)
//! is used, on sector 0 and on each EBR. The chain is walked the way Linux walks it
//! (`block/partitions/msdos.c`): every data entry of an EBR is a logical partition relative to
//! that EBR, the link entry is relative to the start of the extended partition, and logical
//! partitions are numbered from 5 in the order found.

use std::collections::HashSet;
use std::io;

use mbrman::{MBRHeader, MBRPartitionEntry};

use super::device::SharedDisk;
use super::table::{check_layout, Entry, Note, Table, TableKind};

/// The MBR partition type of a GPT protective entry.
pub const PROTECTIVE: u8 = 0xEE;
/// More EBRs than this is a loop or garbage (Linux stops at the same kind of limit).
const MAX_LOGICAL: usize = 256;

/// What sector 0 holds.
#[derive(Debug)]
pub enum Sector0 {
    /// No `55 AA` boot signature.
    Blank,
    /// A boot signature, but entries `mbrman` rejects (e.g. a boot flag other than 0x00/0x80):
    /// usually a filesystem boot sector on an unpartitioned disk.
    Invalid(String),
    /// A protective (or hybrid) MBR in front of a GPT.
    Protective,
    /// An ordinary MBR.
    Mbr(Box<MBRHeader>),
}

/// Decodes sector 0 of `disk`.
pub fn sector0(disk: &SharedDisk) -> Sector0 {
    match decode_sector(disk, 0) {
        Ok(h) if h.iter().any(|(_, e)| e.sys == PROTECTIVE) => Sector0::Protective,
        Ok(h) => Sector0::Mbr(Box::new(h)),
        Err(mbrman::Error::InvalidSignature) | Err(mbrman::Error::Io(_)) | Err(mbrman::Error::Deserialize(_)) => {
            Sector0::Blank
        }
        Err(e) => Sector0::Invalid(e.to_string()),
    }
}

/// The MBR partitions of `disk`: primaries 1–4 by slot, then the logical partitions of the
/// extended partition from 5.
pub fn read(disk: &SharedDisk, header: &MBRHeader, sector_size: u32) -> Table {
    let ss = u64::from(sector_size);
    let mut table = Table { kind: TableKind::Mbr, sector_size, entries: Vec::new(), notes: Vec::new() };
    let mut extended: Option<(u32, u64, u64)> = None; // (number, first LBA, sectors)
    for (slot, e) in header.iter() {
        if e.sys == 0 || e.sectors == 0 {
            continue;
        }
        let number = slot as u32;
        let is_ext = e.is_extended();
        if e.starting_lba == 0 {
            table.notes.push(
                Note::error(format!(
                    "partition {number} starts at sector 0, on top of the partition table; the \
                     table is damaged — fix it with fdisk before migrating"
                ))
                .on(number),
            );
        }
        if is_ext {
            if extended.is_some() {
                table.notes.push(
                    Note::warning(format!(
                        "partition {number} is a second extended partition; only the first is \
                         followed (as Linux does)"
                    ))
                    .on(number),
                );
            } else {
                extended = Some((number, u64::from(e.starting_lba), u64::from(e.sectors)));
            }
        }
        table.entries.push(entry(number, u64::from(e.starting_lba), e, ss, is_ext));
    }
    if let Some((ext_number, ext_start, ext_sectors)) = extended {
        logical_chain(disk, &mut table, ext_number, ext_start, ext_sectors, ss);
    }
    let layout = check_layout(&table.entries, disk.size(), |container, inner| {
        container.container && inner.number >= 5
    });
    table.notes.extend(layout);
    table
}

/// The 512-byte table sector at byte `at`, decoded by mbrman from memory.
fn decode_sector(disk: &SharedDisk, at: u64) -> Result<MBRHeader, mbrman::Error> {
    let mut sector = [0u8; 512];
    disk.read_exact_at(at, &mut sector)?;
    MBRHeader::read_from(&mut io::Cursor::new(&sector[..]))
}

fn entry(number: u32, start_lba: u64, e: &MBRPartitionEntry, ss: u64, container: bool) -> Entry {
    Entry {
        number,
        // u32 sectors × at most 4096 bytes always fits in a u64.
        start_bytes: start_lba * ss,
        size_bytes: u64::from(e.sectors) * ss,
        part_type: format!("0x{:02x}", e.sys),
        name: None,
        container,
    }
}

fn logical_chain(disk: &SharedDisk, table: &mut Table, ext_number: u32, ext_start: u64, ext_sectors: u64, ss: u64) {
    let ext_end = ext_start + ext_sectors;
    let mut ebr = ext_start;
    let mut seen = HashSet::new();
    let mut next_number = 5u32;
    loop {
        if !seen.insert(ebr) || seen.len() > MAX_LOGICAL {
            table.notes.push(Note::error(format!(
                "the chain of logical partitions loops back to sector {ebr}; logical \
                 partitions after it are not listed — fix the table with fdisk"
            )));
            return;
        }
        let header = match decode_sector(disk, ebr * ss) {
            Ok(h) => h,
            Err(e) => {
                // An extended partition with no EBR at all is an empty container.
                if ebr != ext_start {
                    table.notes.push(Note::error(format!(
                        "the extended boot record at sector {ebr} (in extended partition \
                         {ext_number}) is unreadable ({e}); logical partitions after it are \
                         not listed — fix the table with fdisk"
                    )));
                }
                return;
            }
        };
        let mut link = None;
        for (_, e) in header.iter() {
            if e.sys == 0 || e.sectors == 0 {
                continue;
            }
            if e.is_extended() {
                link.get_or_insert(ext_start + u64::from(e.starting_lba));
                continue;
            }
            let start = ebr + u64::from(e.starting_lba);
            let number = next_number;
            next_number += 1;
            let end = start + u64::from(e.sectors);
            if start <= ebr || end > ext_end {
                table.notes.push(
                    Note::error(format!(
                        "logical partition {number} (sectors {start}–{end}) lies outside its \
                         extended partition {ext_number} (sectors {ext_start}–{ext_end}) or on \
                         its own boot record; the table is inconsistent — fix it with fdisk"
                    ))
                    .on(number),
                );
            }
            table.entries.push(entry(number, start, e, ss, false));
        }
        match link {
            Some(next) if next > ext_start && next < ext_end => ebr = next,
            Some(next) => {
                table.notes.push(Note::error(format!(
                    "the extended boot record at sector {ebr} links to sector {next}, outside \
                     extended partition {ext_number}; logical partitions after it are not \
                     listed — fix the table with fdisk"
                )));
                return;
            }
            None => return,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::disk::device::MemDisk;

    /// Writes a 16-byte MBR entry into a sector image.
    pub(crate) fn put_entry(img: &mut [u8], sector_at: usize, slot: usize, sys: u8, start: u32, sectors: u32) {
        let at = sector_at + 446 + slot * 16;
        img[at] = 0;
        img[at + 4] = sys;
        img[at + 8..at + 12].copy_from_slice(&start.to_le_bytes());
        img[at + 12..at + 16].copy_from_slice(&sectors.to_le_bytes());
        img[sector_at + 510] = 0x55;
        img[sector_at + 511] = 0xAA;
    }

    fn table(img: Vec<u8>) -> Table {
        let d: SharedDisk = Arc::new(MemDisk(img));
        match sector0(&d) {
            Sector0::Mbr(h) => read(&d, &h, 512),
            other => panic!("not an MBR: {other:?}"),
        }
    }

    fn layout(t: &Table) -> Vec<(u32, u64, u64, String)> {
        t.entries.iter().map(|e| (e.number, e.start_bytes / 512, e.size_bytes / 512, e.part_type.clone())).collect()
    }

    /// Primary 1, extended 2 with two logicals (as fdisk lays them out), primary 3.
    pub(crate) fn extended_sample() -> Vec<u8> {
        let mut img = vec![0u8; 8192 * 512];
        put_entry(&mut img, 0, 0, 0x83, 2048, 1024);
        put_entry(&mut img, 0, 1, 0x05, 4096, 3072);
        put_entry(&mut img, 0, 2, 0x07, 7168, 1024);
        // EBR 1 at 4096: logical at +2048, link to the EBR at ext+1536.
        put_entry(&mut img, 4096 * 512, 0, 0x83, 2, 1000);
        put_entry(&mut img, 4096 * 512, 1, 0x05, 1536, 1024);
        // EBR 2 at 5632: logical at +2.
        put_entry(&mut img, 5632 * 512, 0, 0x0c, 2, 1000);
        img
    }

    #[test]
    fn primaries_and_logicals() {
        let t = table(extended_sample());
        assert!(t.notes.is_empty(), "{:?}", t.notes);
        assert_eq!(
            layout(&t),
            vec![
                (1, 2048, 1024, "0x83".into()),
                (2, 4096, 3072, "0x05".into()),
                (3, 7168, 1024, "0x07".into()),
                (5, 4098, 1000, "0x83".into()),
                (6, 5634, 1000, "0x0c".into()),
            ]
        );
        assert!(t.entries[1].container);
    }

    #[test]
    fn overlapping_primaries_are_reported() {
        let mut img = vec![0u8; 8192 * 512];
        put_entry(&mut img, 0, 0, 0x83, 2048, 2048);
        put_entry(&mut img, 0, 1, 0x83, 3072, 2048);
        let t = table(img);
        assert_eq!(t.entries.len(), 2);
        assert_eq!(t.notes.len(), 1);
        assert!(t.notes[0].message.starts_with("partitions 1 (bytes 1048576–2097152) and 2 (bytes 1572864–2621440) overlap"));
    }

    #[test]
    fn looping_and_escaping_chains_stop() {
        let mut img = extended_sample();
        // EBR 2 links back to EBR 1.
        put_entry(&mut img, 5632 * 512, 1, 0x05, 0, 1024);
        let t = table(img);
        assert_eq!(t.entries.len(), 5);
        // A link to the extended start itself is "outside" (it must move forward).
        assert!(t.notes.iter().any(|n| n.message.contains("links to sector 4096")), "{:?}", t.notes);

        let mut img = extended_sample();
        put_entry(&mut img, 5632 * 512, 1, 0x05, 512, 8);
        put_entry(&mut img, 4608 * 512, 1, 0x05, 1536, 8);
        let t = table(img);
        assert!(t.notes.iter().any(|n| n.message.contains("loops back to sector 5632")), "{:?}", t.notes);

        let mut img = extended_sample();
        put_entry(&mut img, 5632 * 512, 1, 0x05, u32::MAX, u32::MAX);
        put_entry(&mut img, 5632 * 512, 2, 0x83, u32::MAX, u32::MAX);
        let t = table(img);
        assert!(t.notes.iter().any(|n| n.message.contains("outside extended partition 2")));
    }

    #[test]
    fn logicals_past_4_gib() {
        // Sparse in spirit: only the sectors that matter are non-zero, but the buffer must be
        // large enough to hold the EBR at 9 GiB… so use a disk that fakes its size instead.
        struct Sparse(std::collections::HashMap<u64, Vec<u8>>, u64);
        impl crate::disk::device::ReadAt for Sparse {
            fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
                buf.fill(0);
                if let Some(s) = self.0.get(&(offset / 512)) {
                    let n = buf.len().min(512);
                    buf[..n].copy_from_slice(&s[..n]);
                }
                Ok(())
            }
            fn size(&self) -> u64 {
                self.1
            }
        }
        let mut s0 = vec![0u8; 512];
        let ext_start: u32 = 2048;
        put_entry(&mut s0, 0, 0, 0x0f, ext_start, 20_000_000);
        let mut e1 = vec![0u8; 512];
        put_entry(&mut e1, 0, 0, 0x83, 2048, 4096);
        put_entry(&mut e1, 0, 1, 0x05, 18_000_000, 8192);
        let mut e2 = vec![0u8; 512];
        put_entry(&mut e2, 0, 0, 0x07, 2048, 4096);
        let mut map = std::collections::HashMap::new();
        map.insert(0, s0.clone());
        map.insert(u64::from(ext_start), e1);
        map.insert(u64::from(ext_start) + 18_000_000, e2);
        let d: SharedDisk = Arc::new(Sparse(map, 20_002_048 * 512));
        let Sector0::Mbr(h) = sector0(&d) else { panic!() };
        let t = read(&d, &h, 512);
        assert!(t.notes.is_empty(), "{:?}", t.notes);
        let l6 = t.entries.iter().find(|e| e.number == 6).unwrap();
        assert_eq!(l6.start_bytes, (2048 + 18_000_000 + 2048) * 512);
        assert!(l6.start_bytes > 4 << 30);
    }

    #[test]
    fn sector0_kinds() {
        let d: SharedDisk = Arc::new(MemDisk(vec![0u8; 4096]));
        assert!(matches!(sector0(&d), Sector0::Blank));
        let mut img = vec![0u8; 4096];
        put_entry(&mut img, 0, 0, PROTECTIVE, 1, 7);
        let d: SharedDisk = Arc::new(MemDisk(img.clone()));
        assert!(matches!(sector0(&d), Sector0::Protective));
        img[446] = 0x12; // a boot flag mbrman rejects
        let d: SharedDisk = Arc::new(MemDisk(img));
        assert!(matches!(sector0(&d), Sector0::Invalid(_)));
        let d: SharedDisk = Arc::new(MemDisk(vec![0u8; 10]));
        assert!(matches!(sector0(&d), Sector0::Blank));
    }
}
