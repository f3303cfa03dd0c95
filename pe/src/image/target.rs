//! The target disk as the lay-down sees it, read before anything is written: size, sector
//! size, table, partitions, which one is the migration store (found by its locator), and the
//! identity checks that refuse the wrong disk.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::layout::{Target, TargetPart};
use crate::disk::write::gpt::{self as gpt_write, GptTable};
use crate::locator::Locator;
use crate::disk::device::{Device, ReadAt, SharedDisk};
use crate::disk::gpt_read;
use crate::inventory::probe::{self, Identity};
use crate::error::{Error, Hint, Result};
use crate::inventory::{Disk, Severity};
use crate::step::Step;

const STEP: Step = Step::LayDown;
const WRONG_DISK: &str = "check that this is the disk meant";

/// What the caller says the target must be.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    pub size: Option<u64>,
    pub serial: Option<String>,
    pub disk_guid: Option<String>,
}

pub struct TargetInfo {
    pub path: PathBuf,
    pub disk: SharedDisk,
    pub block_device: bool,
    /// `(major, minor)` of a block device.
    pub dev_numbers: Option<(u32, u32)>,
    pub sector_size: u32,
    /// The editable GPT (a fresh one when the disk has no table).
    pub gpt: GptTable,
    pub fresh_table: bool,
    pub inventory: Disk,
    pub layout: Target,
    pub store: Option<u32>,
    /// The image's own file lives on this partition of the target (must be kept).
    pub holds_image: Option<u32>,
}

/// A new GPT for an empty disk: 128 entries, the usual geometry.
pub fn fresh_gpt(disk_bytes: u64, ss: u32, guid: uuid::Uuid) -> Result<GptTable> {
    let s = u64::from(ss);
    let lbas = disk_bytes / s;
    let arr = (128u64 * 128).div_ceil(s);
    if lbas < 2 * arr + 64 {
        return Err(Error::refused(STEP, format!("the disk ({disk_bytes} bytes) is too small for a GPT")));
    }
    let last = lbas - 1;
    let h = gpt::header::Header {
        signature: "EFI PART".into(),
        revision: (1, 0),
        header_size_le: 92,
        crc32: 0,
        reserved: 0,
        current_lba: 1,
        backup_lba: last,
        first_usable: 2 + arr,
        last_usable: last - arr - 1,
        disk_guid: guid,
        part_start: 2,
        num_parts: 128,
        part_size: 128,
        crc32_parts: 0,
    };
    let mut b = h.clone();
    b.current_lba = last;
    b.backup_lba = 1;
    b.part_start = last - arr;
    Ok(GptTable { sector_size: ss, primary: h, backup: b, entries: vec![0u8; 128 * 128], repairs: Vec::new() })
}

/// `major:minor` of every mounted filesystem.
fn mounted_devs() -> Vec<(u32, u32)> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mm = l.split(' ').nth(2)?;
            let (a, b) = mm.split_once(':')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .collect()
}

/// The partition number of block device `major:minor` if it is a partition of the disk
/// `disk_major:disk_minor` (from sysfs).
pub(crate) fn partition_of(dev: (u32, u32), disk: (u32, u32)) -> Option<u32> {
    let link = std::fs::canonicalize(format!("/sys/dev/block/{}:{}", dev.0, dev.1)).ok()?;
    let parent = link.parent()?;
    let pdev = std::fs::read_to_string(parent.join("dev")).ok()?;
    if pdev.trim() != format!("{}:{}", disk.0, disk.1) {
        return None;
    }
    std::fs::read_to_string(link.join("partition")).ok()?.trim().parse().ok()
}

/// Reads the target and runs the identity checks. `image_path` is the local image file, if
/// any, to refuse writing over the partition that holds it. Reads only.
pub fn read(path: &Path, keep: &[u32], store: Option<u32>, expect: &Expect, image_path: Option<&Path>) -> Result<TargetInfo> {
    let name = path.display().to_string();
    let dev = Device::open(path).map_err(|e| Error::refused(STEP, e.to_string()))?;
    let geometry = dev.geometry();
    let rdev = dev.dev_numbers();
    let size = dev.size();
    let disk: SharedDisk = Arc::new(dev);
    let ss = geometry.map(|g| g.logical_sector_size).unwrap_or_else(|| gpt_read::detect_sector_size(&disk));
    let inv = probe::probe(disk.clone(), Identity { name: name.clone(), logical_sector_size: Some(ss), transport: "file".into(), ..Identity::default() });
    // What is wrong with a partition the lay-down replaces does not matter: it is overwritten.
    let replaced = |subject: &str| {
        let n = subject.strip_prefix(&format!("{name}/partition ")).and_then(|n| n.parse::<u32>().ok());
        n.is_some_and(|n| !keep.contains(&n) && store != Some(n))
    };
    let errors: Vec<String> = inv
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error && !replaced(&f.subject))
        .map(|f| format!("{}: {}", f.subject, f.message))
        .collect();
    if let Some(want) = expect.size {
        if want != size {
            return Err(Error::refused(STEP, format!("{name} is {size} bytes, not the {want} bytes expected: this looks like the wrong disk")).advice(WRONG_DISK));
        }
    }
    if let Some(want) = &expect.serial {
        let serial = rdev.and_then(|(a, b)| {
            let link = std::fs::canonicalize(format!("/sys/dev/block/{a}:{b}")).ok()?;
            std::fs::read_to_string(link.join("device/serial")).ok().map(|s| s.trim().to_string())
        });
        if serial.as_deref() != Some(want.as_str()) {
            return Err(Error::refused(STEP, format!("{name} has serial {serial:?}, not {want:?}: this looks like the wrong disk")).advice(WRONG_DISK));
        }
    }
    let (gpt, fresh) = match inv.table.as_deref() {
        Some("gpt") => (gpt_write::load(&disk, ss, false).map_err(|e| Error::damaged(STEP, format!("{name}: {e}")))?, false),
        Some(other) => {
            return Err(Error::refused(
                STEP,
                format!("{name} has an {other} partition table; this version lays GPT images down on GPT disks (or empty ones) only"),
            ))
        }
        None if inv.partitions.is_empty() && keep.is_empty() && store.is_none() => {
            let guid = uuid::Builder::from_random_bytes(super::create::random_bytes::<16>()?).into_uuid();
            (fresh_gpt(size, ss, guid)?, true)
        }
        None => return Err(Error::refused(STEP, format!("{name}: no partition table found, but partitions to keep were named"))),
    };
    if !errors.is_empty() {
        return Err(Error::damaged(STEP, format!("{name}: the partition table has errors:\n  {}", errors.join("\n  "))));
    }
    if let Some(want) = &expect.disk_guid {
        if !gpt.primary.disk_guid.to_string().eq_ignore_ascii_case(want) {
            return Err(Error::refused(STEP, format!("{name} has disk GUID {}, not {want}: this looks like the wrong disk", gpt.primary.disk_guid))
                .advice(WRONG_DISK));
        }
    }
    // The store, by its locator.
    let s = u64::from(ss);
    let mut found_store = None;
    for p in &inv.partitions {
        let mut b = [0u8; 512];
        if disk.read_exact_at(p.start_bytes + 2 * s, &mut b).is_ok() {
            if let Ok(l) = Locator::decode(&b) {
                if l.store_start == p.start_bytes {
                    found_store = Some(p.number);
                }
            }
        }
    }
    if let (Some(a), Some(b)) = (store, found_store) {
        if a != b {
            return Err(Error::refused(STEP, format!("the store was named as partition {a} of {name}, but the store locator is on partition {b}"))
                .advice(WRONG_DISK));
        }
    }
    let store = store.or(found_store);
    for n in keep.iter().chain(store.iter()) {
        if !inv.partitions.iter().any(|p| p.number == *n) {
            return Err(Error::refused(STEP, format!("{name} has no partition {n} to keep")));
        }
    }
    // Mounted partitions and the image's own partition.
    let mut holds_image = None;
    if let Some(disk_dev) = rdev {
        let mounted: Vec<u32> = mounted_devs().into_iter().filter_map(|d| if d == disk_dev { Some(0) } else { partition_of(d, disk_dev) }).collect();
        if mounted.contains(&0) {
            return Err(Error::refused(STEP, format!("{name} itself is mounted")).advice("unmount it first"));
        }
        for n in &mounted {
            if !keep.contains(n) && store != Some(*n) {
                return Err(Error::refused(STEP, format!("partition {n} of {name} is mounted and would be overwritten"))
                    .advice("unmount it")
                    .hint(Hint::Keep { number: *n }));
            }
        }
        if let Some(img) = image_path.and_then(|p| std::fs::metadata(p).ok()) {
            let d = img.dev();
            let dd = ((((d >> 32) & 0xffff_f000) | ((d >> 8) & 0xfff)) as u32, (((d >> 12) & 0xffff_ff00) | (d & 0xff)) as u32);
            if dd == disk_dev {
                return Err(Error::refused(STEP, format!("the image lives on {name} itself")).advice("copy the image elsewhere"));
            }
            holds_image = partition_of(dd, disk_dev);
            if let Some(n) = holds_image {
                if !keep.contains(&n) && store != Some(n) {
                    return Err(Error::refused(STEP, format!("the image file lives on partition {n} of {name}, which would be overwritten"))
                        .hint(Hint::Keep { number: n })
                        .advice("or copy the image elsewhere"));
                }
            }
        }
    }
    let parts = inv
        .partitions
        .iter()
        .map(|p| TargetPart { number: p.number, start: p.start_bytes, size: p.size_bytes, keep: keep.contains(&p.number) || store == Some(p.number) })
        .collect();
    let layout = Target {
        sector_size: ss,
        disk_bytes: size,
        usable_start: gpt.primary.first_usable * s,
        usable_end: (gpt.primary.last_usable + 1) * s,
        slots: gpt.primary.num_parts,
        parts,
    };
    Ok(TargetInfo { path: path.to_path_buf(), disk, block_device: geometry.is_some(), dev_numbers: rdev, sector_size: ss, gpt, fresh_table: fresh, inventory: inv, layout, store, holds_image })
}
