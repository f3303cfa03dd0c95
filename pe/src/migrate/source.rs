//! The old OS's filesystem, opened read-only through its userspace reader: a partition of a
//! disk (image file or device), refused when the inventory found it unreadable (BitLocker,
//! damage).

use std::path::Path;
use std::sync::Arc;

use crate::disk::device::Device;
use crate::error::{Error, Result};
use crate::fs::range::RangeReader;
use crate::fs::FsReader;
use crate::inventory::{Partition, Severity};
use crate::step::Step;

/// An opened source and what the inventory said of it.
pub struct Source {
    pub reader: Box<dyn FsReader>,
    pub partition: Partition,
    /// What the inventory warned about this partition (hibernated, dirty, …).
    pub warnings: Vec<String>,
}

impl Source {
    /// The OS family found on it (`windows`, `linux`), if any.
    pub fn family(&self) -> Option<&str> {
        self.partition.os.as_ref().map(|o| o.family.as_str())
    }
}

/// Opens partition `number` of `disk` with the reader for its filesystem. Writes nothing.
pub fn open(disk: &Path, number: u32) -> Result<Source> {
    let refused = |m: String| Error::refused(Step::Inspect, m);
    let inventory = crate::inventory::inspect_paths(&[disk.to_path_buf()]);
    if let Some(f) = inventory.findings.first() {
        return Err(refused(format!("{}: {}", f.subject, f.message)));
    }
    let d = inventory.disks.first().ok_or_else(|| refused(format!("{}: not readable as a disk", disk.display())))?;
    let partition = d.partitions.iter().find(|p| p.number == number).cloned().ok_or_else(|| {
        let have: Vec<String> = d.partitions.iter().map(|p| p.number.to_string()).collect();
        refused(format!("{}: there is no partition {number} (partitions: {})", disk.display(), have.join(", ")))
    })?;
    let subject = format!("{}/partition {number}", d.name);
    let mut warnings = Vec::new();
    for f in d.findings.iter().filter(|f| f.subject == subject) {
        match f.severity {
            Severity::Error => return Err(refused(format!("{subject}: {}", f.message))),
            Severity::Warning => warnings.push(f.message.clone()),
        }
    }
    let mut source = open_partition(disk, &partition, &subject)?;
    source.warnings = warnings;
    Ok(source)
}

/// Opens `partition` of `disk` through the extent the record gives (a job reads the old OS
/// through the extent it planned with, whatever the table says after the carve), without
/// asking the inventory again. `subject` names it in errors.
pub fn open_partition(disk: &Path, partition: &Partition, subject: &str) -> Result<Source> {
    let refused = |m: String| Error::refused(Step::Inspect, m);
    let fs = partition.fs.clone().ok_or_else(|| refused(format!("{subject}: no filesystem recognised")))?;
    let device = Device::open(disk).map_err(|e| Error::io(Step::Inspect, e.to_string()))?;
    let range = RangeReader::new(Arc::new(device), partition.start_bytes, partition.size_bytes);
    let reader = crate::fs::open(&fs, range)
        .ok_or_else(|| refused(format!("{subject}: inplace cannot read {fs} filesystems, so nothing on it can be captured")))?
        .map_err(|e| Error::damaged(Step::Inspect, format!("{subject}: {e}")))?;
    Ok(Source { reader, partition: partition.clone(), warnings: Vec::new() })
}
