//! One disk → one inventory entry: partition table, then per partition the content signature,
//! the filesystem reader (label, volume health) and the installed OS. Everything odd becomes a
//! finding; nothing here fails or panics on bad input.

use std::panic::{catch_unwind, AssertUnwindSafe};

use super::{Disk, Finding, Os, Partition};
use crate::disk::detect::read_table;
use crate::disk::device::{MemDisk, SharedDisk};
use crate::disk::gpt_read;
use crate::disk::signature::{self, Probe, Signature, HEAD_LEN, TAIL_LEN};
use crate::disk::table::{Entry, Note};
use crate::fs::{self, range::RangeReader};

/// What is known about a disk besides its bytes (from sysfs, or nothing for an image file).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    /// The kernel's logical sector size; `None` for an image file (then it is detected).
    pub logical_sector_size: Option<u32>,
    pub physical_sector_size: Option<u32>,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub wwn: Option<String>,
    pub transport: String,
    pub removable: bool,
}

impl Identity {
    /// A disk entry with this identity and no table, partitions or findings yet.
    pub fn into_disk(self, size_bytes: u64, logical_sector_size: u32) -> Disk {
        Disk {
            name: self.name,
            size_bytes,
            logical_sector_size,
            physical_sector_size: self.physical_sector_size.unwrap_or(logical_sector_size),
            model: self.model,
            serial: self.serial,
            wwn: self.wwn,
            transport: self.transport,
            removable: self.removable,
            table: None,
            partitions: Vec::new(),
            findings: Vec::new(),
        }
    }
}

/// The inventory entry of `disk`.
pub fn probe(disk: SharedDisk, id: Identity) -> Disk {
    let size = disk.size();
    let ss = id.logical_sector_size.unwrap_or_else(|| gpt_read::detect_sector_size(&disk));
    let mut out = id.clone().into_disk(size, ss);
    if size == 0 {
        out.findings.push(Finding::error(
            &out.name,
            "the disk has a size of 0 bytes (no medium, a failed device, or an empty image \
             file); check the media or cable, or re-copy the image",
        ));
        return out;
    }

    let table = match catch_unwind(AssertUnwindSafe(|| read_table(&disk, ss))) {
        Ok(t) => t,
        Err(_) => Err(Note::error(
            "reading the partition table crashed a parser (a bug in inplace, triggered by \
             damaged data); partitions are not listed",
        )),
    };
    let table = match table {
        Ok(Some(t)) => t,
        Ok(None) => {
            whole_disk_content(&disk, &mut out);
            return out;
        }
        Err(note) => {
            push_note(&mut out.findings, &out.name, note);
            return out;
        }
    };
    out.table = Some(table.kind.as_str().to_string());
    for note in table.notes {
        push_note(&mut out.findings, &id.name, note);
    }
    let mut entries = table.entries;
    entries.sort_by_key(|e| e.number);
    for e in entries {
        let (p, findings) = partition(&disk, &id.name, e);
        out.findings.extend(findings);
        out.partitions.push(p);
    }
    out
}

/// The inventory entry of one partition of `disk` (named `disk_name` in findings): its
/// filesystem, label and installed OS, read within `e`'s extent, and what looked wrong.
pub fn partition(disk: &SharedDisk, disk_name: &str, e: Entry) -> (Partition, Vec<Finding>) {
    let (content, notes) = partition_content(disk, &e);
    let mut findings = Vec::new();
    for note in notes {
        push_note(&mut findings, disk_name, note.on(e.number));
    }
    let p = Partition {
        number: e.number,
        start_bytes: e.start_bytes,
        size_bytes: e.size_bytes,
        part_type: e.part_type,
        name: e.name,
        fs: content.fs,
        label: content.label,
        os: content.os,
    };
    (p, findings)
}

/// Inventory entry of a disk held in memory (tests and fuzzing).
pub fn probe_bytes(name: &str, bytes: Vec<u8>) -> Disk {
    let disk: SharedDisk = std::sync::Arc::new(MemDisk(bytes));
    probe(disk, Identity { name: name.into(), transport: "memory".into(), ..Identity::default() })
}

fn push_note(findings: &mut Vec<Finding>, disk: &str, note: Note) {
    let subject = match note.partition {
        Some(n) => format!("{disk}/partition {n}"),
        None => disk.to_string(),
    };
    findings.push(Finding { severity: note.severity, subject, message: note.message });
}

/// A disk without a partition table whose whole extent is one filesystem (a superfloppy: a
/// USB stick, some external disks): table `"none"` and one pseudo-partition, number 0, of type
/// [`WHOLE_DISK`], read like a partition; the job refuses to carve on it.
fn whole_disk_content(disk: &SharedDisk, out: &mut Disk) {
    let (head, tail) = head_tail(disk, 0, disk.size());
    let Some(sig) = signature::detect(&Probe { head: &head, tail: &tail, size: disk.size() }) else { return };
    out.table = Some("none".into());
    let entry = Entry {
        number: 0,
        start_bytes: 0,
        size_bytes: disk.size(),
        part_type: WHOLE_DISK.into(),
        name: None,
        container: false,
    };
    let (p, findings) = partition(disk, &out.name.clone(), entry);
    out.findings.push(Finding::warning(
        &out.name,
        format!(
            "the disk has no partition table: the whole disk is one {} filesystem (a \
             superfloppy); inplace reads it but cannot carve a store on it",
            sig.fs
        ),
    ));
    out.findings.extend(findings);
    out.partitions.push(p);
}

/// The type of the pseudo-partition of a disk without a partition table.
pub const WHOLE_DISK: &str = "whole-disk";

#[derive(Debug, Default)]
struct Content {
    fs: Option<String>,
    label: Option<String>,
    os: Option<Os>,
}

/// Signature, label and OS of one partition, never panicking.
fn partition_content(disk: &SharedDisk, e: &Entry) -> (Content, Vec<Note>) {
    if e.container || e.size_bytes == 0 || e.start_bytes >= disk.size() {
        return (Content::default(), Vec::new());
    }
    let (head, tail) = head_tail(disk, e.start_bytes, e.size_bytes);
    let Some(sig) = signature::detect(&Probe { head: &head, tail: &tail, size: e.size_bytes }) else {
        return (Content::default(), Vec::new());
    };
    let mut notes = Vec::new();
    let fs_name = sig.fs;
    let result = catch_unwind(AssertUnwindSafe(|| read_content(disk, e, &sig, &mut notes)));
    let (label, os) = match result {
        Ok(v) => v,
        Err(_) => {
            notes.push(Note::error(format!(
                "reading this {fs_name} filesystem crashed its reader (a bug in inplace, triggered \
                 by damaged data); its label and OS are not listed — check the filesystem before \
                 migrating"
            )));
            (sig.label.clone(), None)
        }
    };
    (Content { fs: Some(fs_name.to_string()), label, os }, notes)
}

fn read_content(disk: &SharedDisk, e: &Entry, sig: &Signature, notes: &mut Vec<Note>) -> (Option<String>, Option<Os>) {
    match sig.fs {
        "bitlocker" | "luks" => {
            let what = if sig.fs == "luks" { "LUKS" } else { "BitLocker" };
            notes.push(Note::warning(format!(
                "{what}-encrypted volume: inplace cannot read it, so nothing on it can be migrated; {}",
                super::decrypt_advice(what)
            )))
        }
        _ => {}
    }
    let mut range = RangeReader::new(disk.clone(), e.start_bytes, e.size_bytes);
    if sig.fs == "exfat" {
        return (fs::exfat::label(&mut range), None);
    }
    let mut reader = match fs::open(sig.fs, range) {
        None => return (sig.label.clone(), None),
        Some(Ok(r)) => r,
        Some(Err(err)) => {
            notes.push(Note::error(format!(
                "the {} signature is present but the filesystem cannot be read ({err}); it may be \
                 damaged or use unsupported features — check it ({}) before migrating",
                sig.fs,
                fsck_hint(sig.fs)
            )));
            return (sig.label.clone(), None);
        }
    };
    for w in reader.warnings() {
        notes.push(Note::warning(w.0));
    }
    let label = reader.label().or_else(|| sig.label.clone());
    let detection = crate::os::detect(reader.as_mut());
    for w in detection.warnings {
        notes.push(Note::warning(w));
    }
    (label, detection.os)
}

fn fsck_hint(fs: &str) -> &'static str {
    match fs {
        "ntfs" => "chkdsk /f in Windows",
        "vfat" => "fsck.vfat",
        _ => "e2fsck -f",
    }
}

/// The first `HEAD_LEN` and last `TAIL_LEN` bytes of `start .. start+len`, as far as the disk
/// has them.
fn head_tail(disk: &SharedDisk, start: u64, len: u64) -> (Vec<u8>, Vec<u8>) {
    let disk_end = disk.size();
    let end = start.saturating_add(len);
    let readable_end = end.min(disk_end);
    let head_len = readable_end.saturating_sub(start).min(HEAD_LEN as u64) as usize;
    let mut head = vec![0u8; head_len];
    if disk.read_exact_at(start, &mut head).is_err() {
        head.clear();
    }
    let mut tail = Vec::new();
    if end <= disk_end {
        let tail_len = len.min(TAIL_LEN as u64) as usize;
        tail = vec![0u8; tail_len];
        if disk.read_exact_at(end - tail_len as u64, &mut tail).is_err() {
            tail.clear();
        }
    }
    (head, tail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::gpt_read::tests::sample;
    use crate::disk::mbr_read::tests::put_entry;
    use crate::disk::mbr_read::PROTECTIVE;
    use crate::inventory::Severity;

    fn gpt_with_pmbr() -> Vec<u8> {
        let mut img = sample(512, 4096, &[(1, 2048, 1024, "one")]);
        put_entry(&mut img, 0, 0, PROTECTIVE, 1, 4095);
        img
    }

    #[test]
    fn protective_mbr_means_gpt() {
        let d = probe_bytes("mem", gpt_with_pmbr());
        assert_eq!(d.table.as_deref(), Some("gpt"));
        assert_eq!(d.partitions.len(), 1);
        assert_eq!((d.partitions[0].start_bytes, d.partitions[0].size_bytes), (2048 * 512, 1024 * 512));
        assert_eq!(d.partitions[0].name.as_deref(), Some("one"));
        assert!(d.findings.is_empty(), "{:?}", d.findings);
        assert_eq!(d.transport, "memory");
    }

    #[test]
    fn gpt_without_protective_mbr_is_read_with_a_warning() {
        let d = probe_bytes("mem", sample(512, 4096, &[(1, 2048, 1024, "one")]));
        assert_eq!(d.table.as_deref(), Some("gpt"));
        assert_eq!(d.partitions.len(), 1);
        assert!(d.findings[0].message.starts_with("the GPT has no protective MBR"));
    }

    #[test]
    fn ordinary_mbr_wins_over_stale_gpt() {
        let mut img = sample(512, 4096, &[(1, 2048, 1024, "one")]);
        put_entry(&mut img, 0, 0, 0x83, 2048, 2000);
        let d = probe_bytes("mem", img);
        assert_eq!(d.table.as_deref(), Some("mbr"));
        assert_eq!(d.partitions[0].part_type, "0x83");
        assert_eq!(d.findings.len(), 1);
        assert!(d.findings[0].message.starts_with("GPT structures are present too"));
    }

    #[test]
    fn protective_mbr_without_gpt_is_an_error() {
        let mut img = vec![0u8; 4096 * 512];
        put_entry(&mut img, 0, 0, PROTECTIVE, 1, 4095);
        let d = probe_bytes("mem", img);
        assert_eq!(d.table.as_deref(), Some("gpt"));
        assert!(d.partitions.is_empty());
        assert_eq!(d.findings[0].severity, Severity::Error);
        assert!(d.findings[0].message.contains("neither GPT header was found"));
    }

    #[test]
    fn gpt_for_the_other_sector_size() {
        let mut img = sample(4096, 512, &[(1, 256, 64, "one")]);
        put_entry(&mut img, 0, 0, PROTECTIVE, 1, 511);
        let disk: SharedDisk = std::sync::Arc::new(crate::disk::device::MemDisk(img));
        let id = Identity { name: "usb".into(), logical_sector_size: Some(512), ..Identity::default() };
        let d = probe(disk, id);
        assert!(d.partitions.is_empty());
        assert!(d.findings[0].message.starts_with("the GPT was written for 4096-byte sectors but the disk reports 512-byte"));
    }

    #[test]
    fn blank_zero_and_whole_disk_filesystems() {
        let d = probe_bytes("blank", vec![0u8; 1 << 20]);
        assert_eq!((d.table.clone(), d.partitions.len(), d.findings.len()), (None, 0, 0));

        let d = probe_bytes("empty", Vec::new());
        assert_eq!(d.size_bytes, 0);
        assert!(d.findings[0].message.contains("size of 0 bytes"));

        // An ext4 superblock on the bare disk (garbage past it).
        let mut img = vec![0u8; 1 << 20];
        img[1024 + 56..1024 + 58].copy_from_slice(&0xEF53u16.to_le_bytes());
        img[1024 + 96] = 0x40; // extents
        let d = probe_bytes("superfloppy", img);
        assert_eq!(d.table.as_deref(), Some("none"));
        assert_eq!((d.partitions.len(), d.partitions[0].number, d.partitions[0].part_type.as_str()), (1, 0, WHOLE_DISK));
        assert_eq!(d.partitions[0].fs.as_deref(), Some("ext4"));
        assert!(d.findings[0].message.contains("the whole disk is one ext4 filesystem"));
        assert!(d.findings[1].message.contains("cannot be read"), "{:?}", d.findings);
    }

    #[test]
    fn partition_subjects_and_garbage_content() {
        // A GPT partition whose content claims ext4 but is garbage, and one past the end.
        let mut img = gpt_with_pmbr();
        let at = 2048 * 512 + 1024;
        img[at + 56..at + 58].copy_from_slice(&0xEF53u16.to_le_bytes());
        img[at + 96] = 0x40;
        let d = probe_bytes("mem", img);
        assert_eq!(d.partitions[0].fs.as_deref(), Some("ext4"));
        assert_eq!(d.findings.len(), 1, "{:?}", d.findings);
        assert_eq!(d.findings[0].subject, "mem/partition 1");
        assert!(d.findings[0].message.starts_with("the ext4 signature is present but the filesystem cannot be read"));
    }
}
