//! After the restore, the store as configured:
//! - `keep`: left as it is;
//! - `empty`: the partition stays (extra storage), the data of every capture goes
//!   (`clear_capture`);
//! - `delete`: the store partition leaves the partition table and the partition right before
//!   it (the OS partition) grows over the freed space, then its ext2/3/4 filesystem.
//!
//! `delete` in order: the store's signatures (both locator copies, the FAT boot sectors, and
//! the last MiB with the saved table and the job's journal reserve) are zeroed first, so no
//! later `locate`, `rollback` or search for a job can act on a stale one; then the
//! table is edited with the table writers (`disk::write::{gpt, mbr}`: the store's slot is
//! cleared, the OS entry's end moved); then, on a block device, the kernel is told
//! (`partx --delete`, `resizepart`) and the filesystem grown online with `resize2fs`. On a
//! disk image there is no kernel to tell: the filesystem is grown with `e2fsck -f -p` and
//! `resize2fs` on a loop device over the partition's bytes, when `/dev/loop-control` works;
//! otherwise only the table is edited and the report says the filesystem was not grown and
//! why. Whatever is not done is reported with the reason and the command to finish it.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use super::report::CleanupReport;
use crate::carve::layout::{self, Editable};
use crate::carve::model::{Part, Role};
use crate::disk::device::{Device, SharedDisk};
use crate::disk::write::gpt::{self as gpt_write, EntryEdit};
use crate::disk::write::mbr::{self as mbr_write, MbrEdit};
use crate::disk::write::{Patch, RwDevice, WriteAt};
use crate::locator as locate;
use crate::migrate::store::{Store, StoreKind};

/// What to do with the store once the restore is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cleanup {
    #[default]
    Keep,
    Empty,
    Delete,
}

impl Cleanup {
    pub fn as_str(self) -> &'static str {
        match self {
            Cleanup::Keep => "keep",
            Cleanup::Empty => "empty",
            Cleanup::Delete => "delete",
        }
    }

    pub fn parse(s: &str) -> Option<Cleanup> {
        match s {
            "keep" => Some(Cleanup::Keep),
            "empty" => Some(Cleanup::Empty),
            "delete" => Some(Cleanup::Delete),
            _ => None,
        }
    }
}

/// Where a store is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Site {
    /// Partition `number` (bytes `start .. start + size`) of `disk`, an image file or a block
    /// device; `node` is the partition's own device node, when there is one.
    Partition { disk: PathBuf, number: u32, start: u64, size: u64, node: Option<PathBuf> },
    /// A bare FAT volume image: there is no partition table to edit.
    Volume(PathBuf),
}

/// Finds where `store` is, from its locator or, for a partition device, from sysfs.
pub(crate) fn site_of(store: &Store) -> Result<Site, String> {
    let path = store.path().to_path_buf();
    match store.kind() {
        StoreKind::Disk { .. } => {
            let dev = Device::open(&path).map_err(|e| e.to_string())?;
            let f = locate::locate(&dev).map_err(|e| format!("{}: {e}", path.display()))?;
            let l = f.locator;
            let node = dev.dev_numbers().and_then(|(ma, mi)| partition_node(ma, mi, l.store_number));
            Ok(Site::Partition { disk: path, number: l.store_number, start: l.store_start, size: l.store_len, node })
        }
        StoreKind::Volume => {
            let meta = fs::metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            if !meta.file_type().is_block_device() {
                return Ok(Site::Volume(path));
            }
            let rdev = meta.rdev();
            let sys = fs::canonicalize(format!("/sys/dev/block/{}:{}", nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev)))
                .map_err(|e| format!("{}: cannot find it in /sys: {e}", path.display()))?;
            let read = |f: &str| fs::read_to_string(sys.join(f)).ok().and_then(|s| s.trim().parse::<u64>().ok());
            let (Some(number), Some(start), Some(size)) = (read("partition"), read("start"), read("size")) else {
                return Ok(Site::Volume(path));
            };
            let disk_name = sys.parent().and_then(|p| p.file_name()).ok_or("no parent disk in /sys")?;
            Ok(Site::Partition {
                disk: Path::new("/dev").join(disk_name),
                number: number as u32,
                start: start * 512,
                size: size * 512,
                node: Some(path),
            })
        }
    }
}

/// `/dev/NAME` of partition `number` of the block device `major:minor`.
fn partition_node(major: u32, minor: u32, number: u32) -> Option<PathBuf> {
    let disk = fs::canonicalize(format!("/sys/dev/block/{major}:{minor}")).ok()?;
    fs::read_dir(&disk).ok()?.flatten().find_map(|e| {
        let n = fs::read_to_string(e.path().join("partition")).ok()?;
        (n.trim() == number.to_string()).then(|| Path::new("/dev").join(e.file_name()))
    })
}

/// Whether the block device `node` is mounted (by device number, in `/proc/self/mountinfo`).
fn is_mounted(node: &Path) -> bool {
    let Ok(meta) = fs::metadata(node) else { return false };
    let want = format!("{}:{}", nix::sys::stat::major(meta.rdev()), nix::sys::stat::minor(meta.rdev()));
    fs::read_to_string("/proc/self/mountinfo").is_ok_and(|m| m.lines().any(|l| l.split(' ').nth(2) == Some(want.as_str())))
}

fn report(mode: Cleanup, done: bool, detail: Vec<String>) -> CleanupReport {
    CleanupReport { mode: mode.as_str().into(), done, detail }
}

/// `empty`: removes the capture, keeps the partition.
pub fn empty(store: &mut Store, dry_run: bool) -> CleanupReport {
    if dry_run {
        return report(Cleanup::Empty, false, vec![format!("would remove the capture data from {}; the partition stays", store.describe())]);
    }
    let cleared = store.captures().and_then(|names| {
        for name in names {
            store.select(name);
            store.clear_capture()?;
        }
        Ok(())
    });
    store.select(crate::migrate::store::CaptureName::FIRST);
    match cleared {
        Ok(()) => report(Cleanup::Empty, true, vec![format!("removed the capture data from {}; the partition stays as extra storage", store.describe())]),
        Err(e) => report(Cleanup::Empty, false, vec![format!("could not remove the capture data: {e}")]),
    }
}

/// What `delete` will change.
#[derive(Debug, Clone)]
struct Change {
    store: Part,
    /// The partition that grows, and its new size.
    grow: Option<(Part, u64)>,
    patch: Patch,
    sector_size: u32,
    notes: Vec<String>,
}

fn plan_delete(disk: &SharedDisk, name: &str, number: u32, start: u64) -> Result<Change, String> {
    let state = layout::read(disk, name, None, false).map_err(|e| e.to_string())?;
    let l = &state.layout;
    let s = u64::from(l.sector_size);
    let store = l.part(number).filter(|p| p.start == start).cloned().ok_or_else(|| {
        format!("the partition table of {name} has no partition {number} at byte {start} (was the store already deleted?)")
    })?;
    // The partition that ends last before the store, in the same container.
    let prev = l
        .parts
        .iter()
        .filter(|p| p.role != Role::Extended && p.number != number && p.end() <= store.start)
        .max_by_key(|p| p.end())
        .cloned();
    let mut notes = Vec::new();
    let grow = match prev {
        Some(p) if (p.role == Role::Logical) != (store.role == Role::Logical) => {
            notes.push(format!(
                "partition {} is not in the same part of the MBR as the store (primary vs logical); it is not grown",
                p.number
            ));
            None
        }
        Some(p) => Some((p.clone(), store.end().min(l.usable_end) - p.start)),
        None => {
            notes.push("no partition lies before the store; the space is left unallocated".into());
            None
        }
    };
    let patch = match &state.table {
        Editable::Gpt(t) => {
            let mut t = t.clone();
            let at = (number as usize - 1) * 128;
            // The store's slot is marked unused (no re-packing: other partitions keep their numbers).
            t.entries.get_mut(at..at + 128).ok_or("the store's GPT slot is outside the entry array")?.fill(0);
            let edits: Vec<EntryEdit> = grow
                .iter()
                .map(|(p, size)| EntryEdit::Resize { slot: p.number, first_lba: p.start / s, last_lba: (p.start + size) / s - 1 })
                .collect();
            gpt_write::patch(disk, &t, &edits).map_err(|e| e.to_string())?
        }
        Editable::Mbr(t) => {
            if store.role == Role::Logical {
                return Err(format!(
                    "the store is logical partition {number}; removing a logical partition is not supported yet — \
                     delete it with fdisk, then grow the OS partition"
                ));
            }
            let mut t = t.clone();
            let e = t.header.get_mut(number as usize).ok_or("the store's MBR slot does not exist")?;
            *e = mbrman::MBRPartitionEntry::empty();
            let edits: Vec<MbrEdit> = grow
                .iter()
                .map(|(p, size)| MbrEdit::ResizePrimary { slot: p.number as usize, sectors: size / s })
                .collect();
            mbr_write::patch(&t, &edits).map_err(|e| e.to_string())?
        }
    };
    Ok(Change { store, grow, patch, sector_size: l.sector_size, notes })
}

/// Zeroes the store's locator copies and FAT boot sectors, so nothing finds it again.
fn wipe_signatures(dev: &RwDevice, disk: &SharedDisk, start: u64, size: u64, ss: u32) -> std::io::Result<()> {
    let s = u64::from(ss);
    dev.zero_at(start, 8 * s)?;
    if let Ok(f) = locate::locate(disk.as_ref()) {
        if f.locator.store_start == start {
            for at in f.locator.copies() {
                dev.zero_at(at, s)?;
            }
        }
    }
    // The last MiB (docs/store-format.md): the saved table, the job's journal reserve and the
    // tail copy. The space goes to the OS partition, where a journal left behind would be found
    // at the disk's end as a job still to finish.
    let tail = size.min(1 << 20);
    dev.zero_at(start + size - tail, tail)?;
    dev.sync()
}

/// `delete`; see the module doc. The store must be closed.
pub fn delete(site: &Site, dry_run: bool) -> CleanupReport {
    let mut detail = Vec::new();
    let (disk_path, number, start, size, node) = match site {
        Site::Volume(p) => {
            return report(
                Cleanup::Delete,
                false,
                vec![format!("{} is a volume image, not a partition of a disk: there is no partition to delete", p.display())],
            )
        }
        Site::Partition { disk, number, start, size, node } => (disk, *number, *start, *size, node.clone()),
    };
    let name = disk_path.display().to_string();
    let disk: SharedDisk = match Device::open(disk_path) {
        Ok(d) => Arc::new(d),
        Err(e) => return report(Cleanup::Delete, false, vec![e.to_string()]),
    };
    let block = fs::metadata(disk_path).is_ok_and(|m| m.file_type().is_block_device());
    if let Some(n) = node.as_ref().filter(|n| block && is_mounted(n)) {
        return report(Cleanup::Delete, false, vec![format!("the store partition {} is mounted: unmount it and run the cleanup again", n.display())]);
    }
    let change = match plan_delete(&disk, &name, number, start) {
        Ok(c) => c,
        Err(e) => return report(Cleanup::Delete, false, vec![format!("nothing was changed: {e}")]),
    };
    detail.extend(change.notes.iter().cloned());
    let grow_text = change.grow.as_ref().map(|(p, to)| format!("grow partition {} from {} to {} bytes", p.number, p.size, to));
    if dry_run {
        detail.insert(0, format!("would remove store partition {number} (bytes {start}–{}) from {name}", start + size));
        detail.extend(grow_text.map(|g| format!("would {g}")));
        return report(Cleanup::Delete, false, detail);
    }
    let rw = match RwDevice::open(disk_path) {
        Ok(x) => x,
        Err(e) => return report(Cleanup::Delete, false, vec![format!("nothing was changed: {e}")]),
    };
    if let Err(e) = wipe_signatures(&rw, &disk, change.store.start, change.store.size, change.sector_size) {
        return report(Cleanup::Delete, false, vec![format!("erasing the store's locator failed ({e}); the partition table was not changed")]);
    }
    if let Err(e) = change.patch.write_to(&rw) {
        return report(
            Cleanup::Delete,
            false,
            vec![format!("the store was erased but writing the partition table of {name} failed: {e}; remove partition {number} with fdisk")],
        );
    }
    detail.insert(0, format!("removed store partition {number} from the partition table of {name}"));
    let Some((p, to)) = change.grow.clone() else { return report(Cleanup::Delete, true, detail) };
    detail.push(format!("grew partition {} to {to} bytes", p.number));
    let part_node = if block { tell_kernel(disk_path, number, &p, to, &mut detail) } else { None };
    grow_fs(disk_path, block, part_node.as_deref(), &p, to, &mut detail);
    report(Cleanup::Delete, true, detail)
}

/// Tells the kernel (block devices): the store partition is gone, the OS partition larger.
/// Returns the OS partition's node.
fn tell_kernel(disk: &Path, store_no: u32, p: &Part, to: u64, detail: &mut Vec<String>) -> Option<PathBuf> {
    let run = |cmd: &mut Command| -> Result<(), String> {
        let out = cmd.output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    };
    let d = disk.display();
    if let Err(e) = run(Command::new("partx").arg("--delete").arg("--nr").arg(store_no.to_string()).arg(disk)) {
        detail.push(format!("the kernel still lists the store partition ({e}); it goes away at the next boot"));
    }
    if let Err(e) = run(Command::new("resizepart").arg(disk).arg(p.number.to_string()).arg((to / 512).to_string())) {
        detail.push(format!(
            "the kernel was not told the new size of partition {} ({e}); reboot, then run `resize2fs` on it",
            p.number
        ));
        return None;
    }
    let dev = Device::open(disk).ok()?;
    let (ma, mi) = dev.dev_numbers()?;
    let node = partition_node(ma, mi, p.number);
    if node.is_none() {
        detail.push(format!("partition {} of {d} has no device node; grow its filesystem after a reboot", p.number));
    }
    node
}

/// A loop device over part of an image file, detached when dropped.
struct Loop(PathBuf);

impl Loop {
    /// Attaches bytes `offset .. offset + size` of `image`. Needs a working
    /// `/dev/loop-control` (not there in many containers).
    fn attach(image: &Path, offset: u64, size: u64) -> Result<Loop, String> {
        fs::OpenOptions::new().read(true).write(true).open("/dev/loop-control").map_err(|e| format!("/dev/loop-control: {e}"))?;
        let out = Command::new("losetup")
            .args(["--find", "--show", "--offset", &offset.to_string(), "--sizelimit", &size.to_string()])
            .arg(image)
            .output()
            .map_err(|e| format!("cannot run losetup: {e}"))?;
        let dev = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !out.status.success() || !dev.starts_with("/dev/") {
            return Err(format!("losetup failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(Loop(PathBuf::from(dev)))
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.0).output();
    }
}

/// Grows an ext2/3/4 filesystem to `to` bytes: online on a mounted partition, offline on an
/// unmounted one, and in an image through a loop device over the partition's bytes
/// (`resize2fs IMAGE?offset=` is not used: resize2fs truncates a regular file to the new
/// filesystem size, ignoring the offset, which would cut the end of the image off).
fn grow_fs(disk: &Path, block: bool, node: Option<&Path>, p: &Part, to: u64, detail: &mut Vec<String>) {
    let fs = p.fs.as_deref().unwrap_or("unknown");
    if !matches!(fs, "ext2" | "ext3" | "ext4") {
        detail.push(format!("partition {} holds {fs}; grow its filesystem with that filesystem's own tool", p.number));
        return;
    }
    let _loop;
    let target: PathBuf = if block {
        match node {
            Some(n) => n.to_path_buf(),
            None => return,
        }
    } else {
        match Loop::attach(disk, p.start, to) {
            Ok(l) => {
                let t = l.0.clone();
                _loop = l;
                t
            }
            Err(e) => {
                detail.push(format!(
                    "the {fs} filesystem of partition {} was not grown: growing it inside an image file needs a loop \
                     device ({e}); it can be grown later with `resize2fs` on the partition of the running system",
                    p.number
                ));
                return;
            }
        }
    };
    let shown = target.display().to_string();
    let mounted = block && is_mounted(&target);
    if !mounted {
        // Offline growth needs a freshly checked filesystem. Exit codes 0 and 1 mean clean or fixed.
        match Command::new("e2fsck").arg("-f").arg("-p").arg(&target).output() {
            Ok(o) if o.status.code().is_some_and(|c| c <= 1) => {}
            Ok(o) => {
                detail.push(format!(
                    "e2fsck found problems on partition {} ({}); its filesystem was not grown: run `e2fsck -f` and `resize2fs` on it",
                    p.number,
                    String::from_utf8_lossy(&o.stderr).trim()
                ));
                return;
            }
            Err(e) => {
                detail.push(format!("cannot run e2fsck ({e}); the filesystem of partition {} was not grown", p.number));
                return;
            }
        }
    }
    match Command::new("resize2fs").arg(&target).arg(format!("{}K", to / 1024)).output() {
        Ok(o) if o.status.success() => detail.push(format!(
            "grew the {fs} filesystem of partition {} to {to} bytes{}",
            p.number,
            if mounted { " (online)" } else { "" }
        )),
        Ok(o) => detail.push(format!(
            "resize2fs failed on partition {} ({}); grow it later with `resize2fs {shown}`",
            p.number,
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => detail.push(format!("cannot run resize2fs ({e}); the filesystem of partition {} was not grown", p.number)),
    }
}
