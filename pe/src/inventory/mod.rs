//! The inventory: every disk, its partitions, filesystems and installed OS, as reported by
//! `inplace inspect --json` and by the PE between `inplace: inventory begin/end`.
//!
//! It sits on top of the readers (disk → fs → os → inventory):
//!
//! - [`probe`]: one disk → one [`Disk`]: its table (`disk`), each partition's filesystem and
//!   label (`fs`) and installed OS (`os`).
//! - [`scan`]: every disk of the system, or the given paths.
//! - [`fuzzing`]: the fuzz targets' entry into the filesystem readers and OS detection.

pub mod fuzzing;
pub mod probe;
pub mod scan;

use serde::{Deserialize, Serialize};

pub use crate::disk::table::Severity;
pub use crate::os::Os;
pub use probe::probe_bytes;
pub use scan::{inspect_paths, scan_system};

/// What was found, and anything that looked wrong while finding it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Inventory {
    pub disks: Vec<Disk>,
    /// Problems not tied to one disk (e.g. an unreadable sysfs entry or input path).
    #[serde(default)]
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Disk {
    /// Kernel name (`vda`, `nvme0n1`) in the PE; the path given on the command line otherwise.
    pub name: String,
    pub size_bytes: u64,
    pub logical_sector_size: u32,
    pub physical_sector_size: u32,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub wwn: Option<String>,
    /// `virtio`, `sata`, `nvme`, `usb`, `scsi`, `mmc`, `file`, …
    pub transport: String,
    pub removable: bool,
    /// `"gpt"`, `"mbr"`, `"none"` for a filesystem over the whole disk (then one pseudo-partition,
    /// number 0, of type `"whole-disk"`), or `None` for a blank disk or an unreadable table.
    pub table: Option<String>,
    pub partitions: Vec<Partition>,
    #[serde(default)]
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Partition {
    /// Partition number as the kernel names it (`sda3` is 3); logical MBR partitions start at 5.
    pub number: u32,
    pub start_bytes: u64,
    pub size_bytes: u64,
    /// GPT: the type GUID in lower case. MBR: the type byte as `0x83`. `whole-disk` for the
    /// pseudo-partition of a disk without a table.
    #[serde(rename = "type")]
    pub part_type: String,
    /// GPT partition name; `None` on MBR.
    pub name: Option<String>,
    /// Detected filesystem or content: `ntfs`, `ext4`, `vfat`, `exfat`, `swap`, `luks`,
    /// `bitlocker`, `lvm2`, `md`, `btrfs`, `xfs`, …; `None` when no signature matched.
    pub fs: Option<String>,
    pub label: Option<String>,
    pub os: Option<Os>,
}

impl Partition {
    /// `BitLocker` or `LUKS` when the partition is encrypted with it.
    pub fn encryption(&self) -> Option<&'static str> {
        match self.fs.as_deref() {
            Some("bitlocker") => Some("BitLocker"),
            Some("luks") => Some("LUKS"),
            _ => None,
        }
    }

    /// The pseudo-partition of a disk without a partition table.
    pub fn is_whole_disk(&self) -> bool {
        self.part_type == probe::WHOLE_DISK
    }
}

/// What to do about a partition encrypted with `what` (BitLocker, LUKS).
pub fn decrypt_advice(what: &str) -> String {
    match what {
        "BitLocker" => "decrypt it in Windows first: `manage-bde -off C:` (or turn BitLocker off in the \
                        Control Panel) and wait until decryption is complete — suspending protection \
                        is not enough, the data stays encrypted — then run the migration"
            .into(),
        _ => format!("decrypt it in the old OS first (turn {what} off), then run the migration"),
    }
}

/// Something that looked wrong, said so that a technician knows what and where.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Finding {
    /// `error` when the item could not be read, `warning` when it was read with doubt.
    pub severity: Severity,
    /// Where: a disk name, `disk/partition 3`, a path.
    pub subject: String,
    pub message: String,
}

impl Finding {
    pub fn error(subject: impl Into<String>, message: impl Into<String>) -> Self {
        Finding { severity: Severity::Error, subject: subject.into(), message: message.into() }
    }
    pub fn warning(subject: impl Into<String>, message: impl Into<String>) -> Self {
        Finding { severity: Severity::Warning, subject: subject.into(), message: message.into() }
    }
}
