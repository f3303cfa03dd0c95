//! The old OS's filesystem, opened read-only through its userspace reader: a partition of a
//! disk (image file or device), refused when the inventory found it unreadable (BitLocker,
//! damage).
//!
//! When a store on the disk was carved from the partition's free tail, the filesystem still
//! describes itself up to the partition's end before the carve: it is then read through that
//! original extent, as the table saved in the store has it ([`crate::locator::original`]).
//! The part past the partition's end now is the store's; the old filesystem marked it free,
//! so its reader never asks for it, and nothing is ever written through this view.

use std::path::Path;
use std::sync::Arc;

use crate::disk::device::{Device, SharedDisk};
use crate::disk::table::Entry;
use crate::error::{Error, Result};
use crate::fs::range::RangeReader;
use crate::fs::FsReader;
use crate::inventory::{Finding, Partition, Severity};
use crate::locator::original::{shrunk_by_store, Shrunk};
use crate::progress::Sink;
use crate::step::Step;
use crate::units::human;

/// An opened source and what the inventory said of it.
pub struct Source {
    pub reader: Box<dyn FsReader>,
    /// The partition as it is read: its extent before the carve when [`Source::shrunk`] is set.
    pub partition: Partition,
    /// What the inventory warned about this partition (hibernated, dirty, …).
    pub warnings: Vec<String>,
    /// Set when a store was carved from this partition's tail and the filesystem is read
    /// through the partition's original extent.
    pub shrunk: Option<Shrunk>,
}

impl Source {
    /// The OS family found on it (`windows`, `linux`), if any.
    pub fn family(&self) -> Option<&str> {
        self.partition.os.as_ref().map(|o| o.family.as_str())
    }
}

/// Opens partition `number` of `disk` with the reader for its filesystem. Writes nothing.
/// Says in a log event when it reads through the partition's extent from before the carve.
pub fn open(disk: &Path, number: u32, sink: &dyn Sink) -> Result<Source> {
    let refused = |m: String| Error::refused(Step::Inspect, m);
    let inventory = crate::inventory::inspect_paths(&[disk.to_path_buf()]);
    if let Some(f) = inventory.findings.first() {
        return Err(refused(format!("{}: {}", f.subject, f.message)));
    }
    let d = inventory.disks.first().ok_or_else(|| refused(format!("{}: not readable as a disk", disk.display())))?;
    let mut partition = d.partitions.iter().find(|p| p.number == number).cloned().ok_or_else(|| {
        let have: Vec<String> = d.partitions.iter().map(|p| p.number.to_string()).collect();
        refused(format!("{}: there is no partition {number} (partitions: {})", disk.display(), have.join(", ")))
    })?;
    let subject = format!("{}/partition {number}", d.name);
    let device: SharedDisk = Arc::new(Device::open(disk).map_err(|e| Error::io(Step::Inspect, e.to_string()))?);
    let mut findings: Vec<Finding> = d.findings.iter().filter(|f| f.subject == subject).cloned().collect();

    let current: Vec<(u32, u64, u64)> = d.partitions.iter().map(|p| (p.number, p.start_bytes, p.size_bytes)).collect();
    let shrunk = match shrunk_by_store(&device, &current, number) {
        Ok(s) => s,
        Err(why) => {
            sink.warn(&format!("{subject}: a store was carved on this disk, but {why}; the partition is read as it is now"));
            None
        }
    };
    if let Some(s) = &shrunk {
        let entry = Entry {
            number,
            start_bytes: s.start,
            size_bytes: s.original_size,
            part_type: partition.part_type.clone(),
            name: partition.name.clone(),
            container: false,
        };
        (partition, findings) = crate::inventory::probe::partition(&device, &d.name, entry);
        sink.log(&format!(
            "{subject}: the store (partition {}) was carved from its free tail; its {} filesystem is read \
             through its extent before the carve (bytes {}–{}, {}, as the table saved in the store has it), \
             read-only: the {} past byte {} are the store's and free in that filesystem",
            s.store_number,
            partition.fs.as_deref().unwrap_or("unknown"),
            s.start,
            s.original_end(),
            human(s.original_size),
            human(s.original_size - s.size),
            s.start + s.size,
        ));
    }

    let mut warnings = Vec::new();
    for f in &findings {
        match f.severity {
            Severity::Error => return Err(refused(format!("{subject}: {}", f.message))),
            Severity::Warning => warnings.push(f.message.clone()),
        }
    }
    refuse_encrypted(&partition, &subject)?;
    let fs = partition.fs.clone().ok_or_else(|| refused(format!("{subject}: no filesystem recognised")))?;
    let range = RangeReader::new(device, partition.start_bytes, partition.size_bytes);
    let reader = crate::fs::open(&fs, range)
        .ok_or_else(|| refused(format!("{subject}: inplace cannot read {fs} filesystems, so nothing on it can be captured")))?
        .map_err(|e| Error::damaged(Step::Inspect, format!("{subject}: {e}")))?;
    Ok(Source { reader, partition, warnings, shrunk })
}

/// An encrypted partition is refused, with what to do, before anything is read or written.
fn refuse_encrypted(partition: &Partition, subject: &str) -> Result<()> {
    match partition.encryption() {
        Some(what) => Err(Error::refused(Step::Inspect, format!("{subject} is encrypted with {what}; inplace cannot read it, so nothing on it can be captured"))
            .advice(crate::inventory::decrypt_advice(what))),
        None => Ok(()),
    }
}

/// Opens `partition` of `disk` through the extent the record gives (a job reads the old OS
/// through the extent it planned with, whatever the table says after the carve), without
/// asking the inventory again. `subject` names it in errors.
pub fn open_partition(disk: &Path, partition: &Partition, subject: &str) -> Result<Source> {
    let refused = |m: String| Error::refused(Step::Inspect, m);
    refuse_encrypted(partition, subject)?;
    let fs = partition.fs.clone().ok_or_else(|| refused(format!("{subject}: no filesystem recognised")))?;
    let device: SharedDisk = Arc::new(Device::open(disk).map_err(|e| Error::io(Step::Inspect, e.to_string()))?);
    let range = RangeReader::new(device, partition.start_bytes, partition.size_bytes);
    let reader = crate::fs::open(&fs, range)
        .ok_or_else(|| refused(format!("{subject}: inplace cannot read {fs} filesystems, so nothing on it can be captured")))?
        .map_err(|e| Error::damaged(Step::Inspect, format!("{subject}: {e}")))?;
    Ok(Source { reader, partition: partition.clone(), warnings: Vec::new(), shrunk: None })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::carve::{layout, model::Request, plan as carve_plan, CarveOptions};
    use crate::progress::{Cancel, Collect, Event, Silent};

    fn have(tool: &str) -> bool {
        std::process::Command::new(tool).arg("-V").output().is_ok()
    }

    fn sh(cmd: &str) {
        let o = std::process::Command::new("sh").arg("-c").arg(cmd).output().unwrap();
        assert!(o.status.success(), "{cmd}: {}", String::from_utf8_lossy(&o.stderr));
    }

    /// A disk whose only partition is an ext4 filling it; the store is carved from that
    /// partition's free tail, and the partition is then read through its original extent.
    #[test]
    fn a_partition_shrunk_by_the_store_is_read_through_its_original_extent() {
        if !(have("sfdisk") && have("mkfs.ext4")) {
            eprintln!("skipped: sfdisk or mkfs.ext4 missing");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let disk = t.path().join("disk.img");
        let src = t.path().join("src");
        std::fs::create_dir_all(src.join("home/alice")).unwrap();
        std::fs::write(src.join("home/alice/notes.txt"), b"read through the original extent\n").unwrap();
        std::fs::File::create(&disk).unwrap().set_len(512 << 20).unwrap();
        let (d, fsimg) = (disk.display(), t.path().join("fs.img"));
        // One partition up to the last usable sector: no unallocated space.
        sh(&format!("printf 'label: gpt\\nstart=2048, type=L\\n' | sfdisk -q {d}"));
        let shared: SharedDisk = Arc::new(Device::open(&disk).unwrap());
        let before = layout::read(&shared, "disk", None, false).unwrap();
        let size = before.layout.parts[0].size;
        sh(&format!(
            "mkfs.ext4 -q -F -d {} {} {}k && dd if={} of={d} bs=1M seek=1 conv=notrunc status=none",
            src.display(),
            fsimg.display(),
            size / 1024,
            fsimg.display()
        ));
        let state = layout::read(&shared, "disk", None, false).unwrap();
        let plan = carve_plan::plan(&state.layout, &state.tails, &Request { store_bytes: 40 << 20, replace: vec![1] }).unwrap();
        let opts = CarveOptions { job_name: "test".into(), job_id: None, repair_gpt: false };
        crate::carve::carve(&disk, &plan, &opts, &Silent, &Cancel::new()).unwrap();

        // The carve shrank partition 1: its ext4 now claims more than the partition holds.
        let now = crate::inventory::inspect_paths(std::slice::from_ref(&disk));
        let p1 = now.disks[0].partitions.iter().find(|p| p.number == 1).unwrap().clone();
        assert!(p1.size_bytes < size, "{p1:?}");
        assert!(now.disks[0].findings.iter().any(|f| f.subject.ends_with("partition 1") && f.severity == Severity::Error));

        let sink = Collect::default();
        let mut source = open(&disk, 1, &sink).unwrap();
        let s = source.shrunk.clone().expect("read through the original extent");
        assert_eq!((s.start, s.size, s.original_size), (p1.start_bytes, p1.size_bytes, size));
        assert_eq!((source.partition.start_bytes, source.partition.size_bytes), (p1.start_bytes, size));
        assert!(s.store_start >= p1.start_bytes + p1.size_bytes && s.store_start + s.store_len <= s.original_end(), "{s:?}");
        assert_eq!(source.partition.fs.as_deref(), Some("ext4"));
        assert_eq!(source.reader.read_small(b"/home/alice/notes.txt", 1 << 10).unwrap(), b"read through the original extent\n");
        let logged = sink.events().into_iter().any(|e| matches!(e, Event::Log { message } if message.contains("extent before the carve") && message.contains("read-only")));
        assert!(logged, "{:?}", sink.events());

        // A damaged saved table is said, and the partition is read as it is now (and refused).
        let damaged = t.path().join("damaged.img");
        sh(&format!("cp --sparse=always {d} {}", damaged.display()));
        let l = crate::locator::locate(shared.as_ref()).unwrap().locator;
        let at = l.store_start + l.snapshot_offset + 40;
        let f = std::fs::OpenOptions::new().write(true).open(&damaged).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&f, b"X", at).unwrap();
        let sink = Collect::default();
        assert!(open(&damaged, 1, &sink).is_err());
        let warned = sink.events().into_iter().any(|e| matches!(e, Event::Warning { message } if message.contains("saved partition table")));
        assert!(warned, "{:?}", sink.events());

        // The store's own partition is not grown, and a disk without a store is read as it is.
        let store_no = s.store_number;
        let current: Vec<(u32, u64, u64)> = now.disks[0].partitions.iter().map(|p| (p.number, p.start_bytes, p.size_bytes)).collect();
        assert_eq!(shrunk_by_store(&shared, &current, store_no).unwrap(), None);
        let plain = t.path().join("plain.img");
        sh(&format!("cp --sparse=always {d} {}", plain.display()));
        crate::locator::rollback::roll_back(&crate::locator::rollback::prepare(&plain).unwrap(), &Silent, &Cancel::new()).unwrap();
        let source = open(&plain, 1, &Silent).unwrap();
        assert!(source.shrunk.is_none());
        assert_eq!(source.partition.size_bytes, size);
    }
}
