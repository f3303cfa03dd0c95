//! GPT reading with the `gpt` crate, hardened for untrusted disks: the one GPT loader.
//!
//! The crate parses headers and entries; this module checks what the crate does not (entry
//! size, entry-array bounds, which it would otherwise `assert!` on or allocate blindly), and
//! reads each copy as a header and its raw, CRC-checked entry array ([`header_at`],
//! [`entry_array`]). [`read`] decides which copy to trust for the inventory, falls back to the
//! backup and explains what it found; the table editor (`disk::write::gpt`) loads both copies
//! through the same two functions.

use std::io::{self, Cursor};

use gpt::disk::LogicalBlockSize;
use gpt::header::{Header, HeaderError};

use super::device::SharedDisk;
use super::table::{check_layout, Entry, Note, Table, TableKind};

const SIGNATURE: &[u8; 8] = b"EFI PART";
/// The largest entry array we read (32768 entries of 128 bytes); real tables use 16 KiB.
const MAX_ENTRY_BYTES: u64 = 4 * 1024 * 1024;

/// The logical sector size of an image file: where the primary GPT header sits (LBA 1 at byte
/// 512 or 4096), else where a backup header sits (the last 512- or 4096-byte sector); 512 when
/// there is none.
pub fn detect_sector_size(disk: &SharedDisk) -> u32 {
    for ss in [512u32, 4096] {
        if raw_signature(disk, 1, u64::from(ss)) {
            return ss;
        }
    }
    for ss in [512u32, 4096] {
        let last = (disk.size() / u64::from(ss)).checked_sub(1);
        if last.is_some_and(|lba| lba > 1 && raw_signature(disk, lba, u64::from(ss))) {
            return ss;
        }
    }
    512
}

/// Whether either GPT header location holds the `EFI PART` signature (valid or not).
pub fn has_signature(disk: &SharedDisk, sector_size: u32) -> bool {
    let ss = u64::from(sector_size);
    let last = (disk.size() / ss.max(1)).checked_sub(1);
    [Some(1), last].into_iter().flatten().any(|lba| raw_signature(disk, lba, ss))
}

/// The GPT of `disk` read with `sector_size`, or `None` when neither header location holds
/// a GPT signature.
pub fn read(disk: &SharedDisk, sector_size: u32) -> Option<Table> {
    let ss = u64::from(sector_size);
    let size = disk.size();
    let total_lbas = size / ss.max(1);
    let last_lba = total_lbas.checked_sub(1)?;
    if !has_signature(disk, sector_size) {
        return None;
    }
    let mut table = Table { kind: TableKind::Gpt, sector_size, entries: Vec::new(), notes: Vec::new() };
    let Ok(lb) = LogicalBlockSize::try_from(ss) else {
        table.notes.push(Note::error(format!(
            "the disk has a GPT but a {sector_size}-byte logical sector size, which inplace \
             cannot read; partitions are not listed"
        )));
        return Some(table);
    };

    let primary = header_at(disk, 1, lb);
    let backup_lba = match &primary {
        HeaderRead::Valid(h) => h.backup_lba,
        _ => last_lba,
    };
    let backup = header_at(disk, backup_lba, lb);

    let plan: [(&str, &HeaderRead); 2] = [("primary", &primary), ("backup", &backup)];
    let mut used: Option<(&str, &Header)> = None;
    let mut entry_failures = Vec::new();
    for (which, read) in plan {
        let HeaderRead::Valid(h) = read else { continue };
        match entry_array(disk, h, lb).and_then(|raw| decode_entries(&raw, h, lb)) {
            Ok(entries) => {
                table.entries = entries;
                used = Some((which, h));
                break;
            }
            Err(e) => entry_failures.push((which, e)),
        }
    }

    // Say what was wrong with the header we did not use (or with both).
    let repair_primary = "repair with gdisk (recovery menu: b to use the backup header, c to \
                          load the backup entries, then w) before changing this disk";
    match (&primary, used) {
        (_, Some(("primary", h))) => {
            match &backup {
                HeaderRead::Valid(_) => {}
                HeaderRead::BeyondEnd => table.notes.push(Note::warning(format!(
                    "the backup GPT header (LBA {}, byte {}) lies beyond the end of the disk \
                     ({size} bytes): the image is truncated or was copied to a smaller disk; \
                     re-copy the full image",
                    h.backup_lba,
                    h.backup_lba.saturating_mul(ss)
                ))),
                other => table.notes.push(Note::warning(format!(
                    "the backup GPT header at LBA {} is {}; the primary is good — rewrite \
                     both with gdisk (w) or `sgdisk -e` before changing this disk",
                    h.backup_lba,
                    other.describe()
                ))),
            }
            if let Some((_, e)) = entry_failures.iter().find(|(w, _)| *w == "backup") {
                table.notes.push(Note::warning(format!("the backup GPT partition entries are unusable: {e}")));
            }
            if matches!(backup, HeaderRead::Valid(_)) && h.backup_lba < last_lba {
                table.notes.push(Note::warning(format!(
                    "the backup GPT header is at LBA {}, not at the end of the disk (LBA \
                     {last_lba}): the disk is larger than the table expects; move it with \
                     `sgdisk -e` before changing this disk",
                    h.backup_lba
                )));
            }
        }
        (HeaderRead::Valid(_), Some((_, h))) => {
            let why = entry_failures
                .iter()
                .find(|(w, _)| *w == "primary")
                .map(|(_, e)| e.to_string())
                .unwrap_or_default();
            table.notes.push(Note::warning(format!(
                "the primary GPT partition entries are corrupt ({why}); partitions read from \
                 the backup at LBA {}; {repair_primary}",
                h.current_lba
            )));
        }
        (p, Some((_, h))) => table.notes.push(Note::warning(format!(
            "primary GPT header is {}; partitions read from the backup at LBA {}; {repair_primary}",
            p.describe(),
            h.current_lba
        ))),
        (p, None) => {
            let mut why = vec![format!("primary header {}", p.describe()), format!("backup header {}", backup.describe())];
            why.extend(entry_failures.iter().map(|(w, e)| format!("{w} entries: {e}")));
            table.notes.push(Note::error(format!(
                "the GPT cannot be read ({}); partitions are not listed — restore the table \
                 (gdisk recovery menu, or from a backup) before migrating",
                why.join("; ")
            )));
            return Some(table);
        }
    }

    if let Some((_, h)) = used {
        let first = h.first_usable.saturating_mul(ss);
        let last = h.last_usable.saturating_add(1).saturating_mul(ss);
        for e in &table.entries {
            if e.start_bytes < first || e.end_bytes().is_none_or(|end| end > last) {
                table.notes.push(
                    Note::warning(format!(
                        "partition {} lies outside the GPT's usable area (LBA {}–{})",
                        e.number, h.first_usable, h.last_usable
                    ))
                    .on(e.number),
                );
            }
        }
    }
    let layout = check_layout(&table.entries, size, |_, _| false);
    table.notes.extend(layout);
    Some(table)
}

/// What is at one GPT header location.
#[derive(Debug, Clone)]
pub enum HeaderRead {
    Valid(Header),
    Corrupt(String),
    Absent,
    BeyondEnd,
}

impl HeaderRead {
    /// Why the header is not usable, in a few words (empty for a valid one).
    pub fn why(&self) -> String {
        match self {
            HeaderRead::Valid(_) => String::new(),
            HeaderRead::Corrupt(why) => why.clone(),
            HeaderRead::Absent => "no EFI PART signature".into(),
            HeaderRead::BeyondEnd => "it lies beyond the end of the disk".into(),
        }
    }

    fn describe(&self) -> String {
        match self {
            HeaderRead::Valid(_) => "valid".into(),
            HeaderRead::Corrupt(why) => format!("corrupt ({why})"),
            HeaderRead::Absent => "missing (no EFI PART signature)".into(),
            HeaderRead::BeyondEnd => "beyond the end of the disk".into(),
        }
    }
}

fn raw_signature(disk: &SharedDisk, lba: u64, ss: u64) -> bool {
    let mut sig = [0u8; 8];
    lba.checked_mul(ss).is_some_and(|at| disk.read_exact_at(at, &mut sig).is_ok()) && &sig == SIGNATURE
}

/// The GPT header at `lba`, checked by the crate (signature, CRC) and here (size, position).
pub fn header_at(disk: &SharedDisk, lba: u64, lb: LogicalBlockSize) -> HeaderRead {
    let ss = lb.as_u64();
    let Some(end) = lba.checked_add(1).and_then(|n| n.checked_mul(ss)) else {
        return HeaderRead::BeyondEnd;
    };
    if lba == 0 {
        return HeaderRead::Corrupt("it points at LBA 0".into());
    }
    if end > disk.size() {
        return HeaderRead::BeyondEnd;
    }
    if !raw_signature(disk, lba, ss) {
        return HeaderRead::Absent;
    }
    // The crate reads the header at byte `ss` of what it is given: show it a buffer whose
    // byte `ss` is LBA `lba` of the disk.
    let mut window = vec![0u8; 2 * ss as usize];
    if let Err(e) = disk.read_exact_at(lba * ss, &mut window[ss as usize..]) {
        return HeaderRead::Corrupt(e.to_string());
    }
    match gpt::header::read_header_from_arbitrary_device(&mut Cursor::new(window), lb) {
        Ok(h) => {
            if h.header_size_le < 92 || u64::from(h.header_size_le) > ss {
                HeaderRead::Corrupt(format!("header size {} is invalid", h.header_size_le))
            } else if h.current_lba != lba {
                HeaderRead::Corrupt(format!("it says it is at LBA {}, but it was read at LBA {lba}", h.current_lba))
            } else {
                HeaderRead::Valid(h)
            }
        }
        Err(HeaderError::InvalidCRC32Checksum) => HeaderRead::Corrupt("CRC mismatch".into()),
        Err(HeaderError::InvalidGptSignature) => HeaderRead::Absent,
        Err(e) => HeaderRead::Corrupt(e.to_string()),
    }
}

/// Why an entry array cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum EntriesError {
    #[error("the entry size is {0} bytes; only 128 is supported")]
    EntrySize(u32),
    #[error("{0} entries is more than inplace reads")]
    TooMany(u32),
    #[error(
        "the entry array (LBA {first}–{last}) lies beyond the end of the disk ({size} bytes): \
         the image is truncated; re-copy the full image"
    )]
    BeyondEnd { first: u64, last: u64, size: u64 },
    #[error("partition table CRC mismatch")]
    Crc,
    #[error("{0}")]
    Read(io::Error),
}

/// The raw entry array `h` describes (`num_parts × 128` bytes), checked against its CRC.
pub fn entry_array(disk: &SharedDisk, h: &Header, lb: LogicalBlockSize) -> Result<Vec<u8>, EntriesError> {
    let ss = lb.as_u64();
    if h.part_size != 128 {
        return Err(EntriesError::EntrySize(h.part_size));
    }
    let bytes = u64::from(h.num_parts) * 128;
    if bytes > MAX_ENTRY_BYTES {
        return Err(EntriesError::TooMany(h.num_parts));
    }
    let start = h.part_start.checked_mul(ss).filter(|s| s.checked_add(bytes).is_some_and(|end| end <= disk.size()));
    let Some(start) = start else {
        let last = h.part_start.saturating_add(bytes.div_ceil(ss)).saturating_sub(1);
        return Err(EntriesError::BeyondEnd { first: h.part_start, last, size: disk.size() });
    };
    let mut raw = vec![0u8; bytes as usize];
    disk.read_exact_at(start, &mut raw).map_err(EntriesError::Read)?;
    if crc32fast::hash(&raw) != h.crc32_parts {
        return Err(EntriesError::Crc);
    }
    Ok(raw)
}

/// The used entries of a raw array, numbered by slot, decoded by the crate.
fn decode_entries(raw: &[u8], h: &Header, lb: LogicalBlockSize) -> Result<Vec<Entry>, EntriesError> {
    let ss = lb.as_u64();
    // The crate reads the array at `part_start`: show it the array alone, at 0.
    let mut at_zero = h.clone();
    at_zero.part_start = 0;
    let slots = gpt::partition::file_read_partitions(&mut Cursor::new(raw), &at_zero, lb).map_err(EntriesError::Read)?;
    let mut entries = Vec::new();
    for (slot, p) in slots {
        if !p.is_used() {
            continue;
        }
        let (Some(sectors), Some(start)) = (p.sectors_len().ok(), p.first_lba.checked_mul(ss)) else {
            // Reported by the probe as a layout problem would be confusing: skip with a clear
            // message instead.
            entries.push(Entry {
                number: slot,
                start_bytes: p.first_lba.saturating_mul(ss),
                size_bytes: 0,
                part_type: p.part_type_guid.guid.as_hyphenated().to_string(),
                name: (!p.name.is_empty()).then(|| p.name.clone()),
                container: false,
            });
            continue;
        };
        entries.push(Entry {
            number: slot,
            start_bytes: start,
            size_bytes: sectors.saturating_mul(ss),
            part_type: p.part_type_guid.guid.as_hyphenated().to_string(),
            name: (!p.name.is_empty()).then(|| p.name.clone()),
            container: false,
        });
    }
    Ok(entries)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::disk::device::MemDisk;

    /// A GPT written by the `gpt` crate's writer into a zeroed buffer of `lbas` sectors.
    pub(crate) fn sample(ss: u64, lbas: u64, parts: &[(u32, u64, u64, &str)]) -> Vec<u8> {
        let lb = LogicalBlockSize::try_from(ss).unwrap();
        let mut cur = io::Cursor::new(vec![0u8; (ss * lbas) as usize]);
        let mut disk =
            gpt::GptConfig::new().writable(true).logical_block_size(lb).create_from_device(&mut cur, None).unwrap();
        for (id, first, len, name) in parts {
            disk.add_partition_at(name, *id, *first, *len, gpt::partition_types::LINUX_FS, 0).unwrap();
        }
        disk.write().unwrap();
        cur.into_inner()
    }

    pub(crate) fn crc32(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for b in data {
            crc ^= u32::from(*b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }

    /// Sets a header field and fixes the header CRC, as a buggy tool would write it.
    fn patch_header(img: &mut [u8], at: usize, field: usize, value: &[u8]) {
        img[at + field..at + field + value.len()].copy_from_slice(value);
        img[at + 16..at + 20].copy_from_slice(&[0; 4]);
        let size = u32::from_le_bytes(img[at + 12..at + 16].try_into().unwrap()) as usize;
        let crc = crc32(&img[at..at + size]);
        img[at + 16..at + 20].copy_from_slice(&crc.to_le_bytes());
    }

    /// Moves the entry in `from` to slot `to` (1-based) in both arrays, fixing every CRC: the
    /// crate's writer re-packs entries, so holes must be made by hand.
    pub(crate) fn move_slot(img: &mut [u8], ss: usize, from: usize, to: usize) {
        for h in [ss, img.len() - ss] {
            let le64 = |at: usize| u64::from_le_bytes(img[at..at + 8].try_into().unwrap()) as usize;
            let entries = le64(h + 72) * ss;
            let num = u32::from_le_bytes(img[h + 80..h + 84].try_into().unwrap()) as usize;
            let e = img[entries + (from - 1) * 128..entries + from * 128].to_vec();
            img[entries + (from - 1) * 128..entries + from * 128].fill(0);
            img[entries + (to - 1) * 128..entries + to * 128].copy_from_slice(&e);
            let crc = crc32(&img[entries..entries + num * 128]);
            patch_header(img, h, 88, &crc.to_le_bytes());
        }
    }

    fn shared(v: Vec<u8>) -> SharedDisk {
        Arc::new(MemDisk(v))
    }

    fn messages(t: &Table) -> Vec<String> {
        t.notes.iter().map(|n| n.message.clone()).collect()
    }

    const PARTS: [(u32, u64, u64, &str); 3] =
        [(1, 2048, 2048, "esp"), (2, 4096, 8192, "root"), (3, 12288, 2048, "slot five")];

    #[test]
    fn reads_numbers_by_slot_and_both_sector_sizes() {
        for ss in [512u64, 4096] {
            let mut img = sample(ss, 16384, &PARTS);
            move_slot(&mut img, ss as usize, 3, 5);
            let d = shared(img);
            assert_eq!(u64::from(detect_sector_size(&d)), ss);
            let t = read(&d, ss as u32).unwrap();
            assert_eq!(t.kind, TableKind::Gpt);
            assert!(t.notes.is_empty(), "{:?}", t.notes);
            let got: Vec<_> = t.entries.iter().map(|e| (e.number, e.start_bytes, e.size_bytes)).collect();
            assert_eq!(got, vec![(1, 2048 * ss, 2048 * ss), (2, 4096 * ss, 8192 * ss), (5, 12288 * ss, 2048 * ss)]);
            assert_eq!(t.entries[2].name.as_deref(), Some("slot five"));
            assert_eq!(t.entries[0].part_type, "0fc63daf-8483-4772-8e79-3d69d8477de4");
        }
    }

    #[test]
    fn sector_size_from_the_backup_when_the_primary_is_gone() {
        let mut img = sample(4096, 256, &PARTS_4K);
        img[4096..4096 + 512].fill(0);
        let d = shared(img);
        assert_eq!(detect_sector_size(&d), 4096);
        let t = read(&d, 4096).unwrap();
        assert_eq!(t.entries.len(), 2);
        assert!(t.notes[0].message.starts_with("primary GPT header is missing"), "{:?}", t.notes);
    }

    const PARTS_4K: [(u32, u64, u64, &str); 2] = [(1, 16, 16, "a"), (2, 32, 64, "b")];

    #[test]
    fn not_gpt_without_signature() {
        assert!(read(&shared(vec![0u8; 1 << 20]), 512).is_none());
        assert!(read(&shared(vec![]), 512).is_none());
        assert!(read(&shared(vec![0u8; 100]), 512).is_none());
        assert_eq!(detect_sector_size(&shared(vec![0u8; 100])), 512);
    }

    #[test]
    fn corrupt_primary_header_uses_backup() {
        let mut img = sample(512, 16384, &PARTS);
        img[512 + 40] ^= 0xff; // first_usable, under the CRC
        let t = read(&shared(img), 512).unwrap();
        assert_eq!(t.entries.len(), 3);
        let m = messages(&t);
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(m[0].starts_with("primary GPT header is corrupt (CRC mismatch); partitions read from the backup at LBA 16383; repair with gdisk"), "{m:?}");
    }

    #[test]
    fn corrupt_primary_entries_use_backup_entries() {
        let mut img = sample(512, 16384, &PARTS);
        img[1024 + 40] ^= 0x01; // partition 1's first LBA
        let t = read(&shared(img), 512).unwrap();
        assert_eq!(t.entries[0].start_bytes, 2048 * 512);
        let m = messages(&t);
        assert!(m[0].starts_with("the primary GPT partition entries are corrupt (partition table CRC mismatch)"), "{m:?}");
    }

    #[test]
    fn truncated_image() {
        let mut img = sample(512, 16384, &PARTS);
        img.truncate(10000 * 512);
        let t = read(&shared(img), 512).unwrap();
        assert_eq!(t.entries.len(), 3);
        let m = messages(&t);
        assert!(m[0].starts_with("the backup GPT header (LBA 16383, byte 8388096) lies beyond the end of the disk (5120000 bytes)"), "{m:?}");
        assert!(m.iter().any(|m| m.starts_with("partition 2 (bytes 2097152–6291456) runs past the end")), "{m:?}");
        assert!(m.iter().any(|m| m.starts_with("partition 3 ")), "{m:?}");

        // Cut inside the entry array: nothing is readable, which is said.
        let mut img = sample(512, 16384, &PARTS);
        img.truncate(8192);
        let t = read(&shared(img), 512).unwrap();
        assert!(t.entries.is_empty());
        let m = messages(&t);
        assert_eq!(m.len(), 1);
        assert!(m[0].contains("primary entries: the entry array (LBA 2–33) lies beyond the end of the disk (8192 bytes)"), "{m:?}");
    }

    #[test]
    fn both_headers_corrupt() {
        let mut img = sample(512, 16384, &PARTS);
        img[512 + 40] ^= 0xff;
        let last = img.len() - 512;
        img[last + 40] ^= 0xff;
        let t = read(&shared(img), 512).unwrap();
        assert!(t.entries.is_empty());
        assert!(messages(&t)[0].starts_with("the GPT cannot be read (primary header corrupt (CRC mismatch); backup header corrupt (CRC mismatch))"));
    }

    #[test]
    fn hostile_header_fields_do_not_panic() {
        // Entry size the crate would assert on, and an entry count it would allocate for.
        for (field, value) in [(84usize, 256u32.to_le_bytes().to_vec()), (80, u32::MAX.to_le_bytes().to_vec())] {
            let mut img = sample(512, 16384, &PARTS);
            patch_header(&mut img, 512, field, &value);
            let last = img.len() - 512;
            patch_header(&mut img, last, field, &value);
            let t = read(&shared(img), 512).unwrap();
            assert!(t.entries.is_empty());
            assert_eq!(t.notes.len(), 1);
        }
        // Entries starting past the end; a backup LBA of 0 and of u64::MAX.
        for (field, value) in [(72usize, u64::MAX / 2), (32, 0), (32, u64::MAX)] {
            let mut img = sample(512, 16384, &PARTS);
            patch_header(&mut img, 512, field, &value.to_le_bytes());
            let _ = read(&shared(img), 512).unwrap();
        }
    }

    #[test]
    fn disk_larger_than_table() {
        let mut img = sample(512, 16384, &PARTS);
        img.resize(20000 * 512, 0);
        let t = read(&shared(img), 512).unwrap();
        assert_eq!(t.entries.len(), 3);
        let m = messages(&t);
        assert!(m[0].starts_with("the backup GPT header is at LBA 16383, not at the end of the disk (LBA 19999)"), "{m:?}");
    }
}
