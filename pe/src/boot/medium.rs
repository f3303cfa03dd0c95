//! Finding the PE's own boot medium (an ISO 9660 volume labelled `INPLACE_PE`, on a CD or a
//! USB stick) and the stick's writable `INPLACE` FAT partition, by content, never by drive name.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::disk::signature::{detect, Probe, HEAD_LEN};

/// The ISO's volume label; `scripts/build-iso` sets it.
pub const MEDIUM_LABEL: &str = "INPLACE_PE";
/// The stick's config partition label.
pub const CONFIG_LABEL: &str = "INPLACE";

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Media {
    /// The device holding the ISO 9660 boot volume (`/dev/sr0`, or the stick `/dev/sda`).
    pub boot: Option<PathBuf>,
    /// The `INPLACE` FAT partition on the same disk as the boot volume.
    pub config: Option<PathBuf>,
}

/// The ISO 9660 volume label, if `head` (the first 64 KiB or more of a device) holds a primary
/// volume descriptor.
pub fn iso9660_label(head: &[u8]) -> Option<String> {
    let pvd = head.get(32768..32768 + 72)?;
    if pvd[0] != 1 || &pvd[1..6] != b"CD001" {
        return None;
    }
    Some(String::from_utf8_lossy(&pvd[40..72]).trim_end().to_string())
}

/// Looks at every block device and partition in `sys/class/block`, through `dev`.
pub fn find(sys: &Path, dev: &Path) -> Media {
    let mut names: Vec<String> = std::fs::read_dir(sys.join("class/block"))
        .map(|it| it.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    let mut media = Media::default();
    let mut boot_disk = None;
    let mut fat_configs = Vec::new();
    let is_partition = |n: &String| sys.join("class/block").join(n).join("partition").exists();
    // A hybrid ISO's first partition holds the ISO 9660 volume too. Mounting that partition, not
    // the whole disk, leaves the disk's other partitions (the INPLACE one) free to mount.
    names.sort_by_key(|n| !is_partition(n));
    for name in &names {
        let Some(head) = read_head(&dev.join(name)) else { continue };
        if iso9660_label(&head).as_deref() == Some(MEDIUM_LABEL) && boot_disk.is_none() {
            media.boot = Some(dev.join(name));
            boot_disk = Some(parent_disk(sys, name));
        }
        let sig = detect(&Probe { head: &head, tail: &[], size: head.len() as u64 });
        if matches!(sig, Some(ref s) if s.fs == "vfat" && s.label.as_deref() == Some(CONFIG_LABEL)) {
            fat_configs.push(name.clone());
        }
    }
    // Only the stick's own partition counts: a migration store is also a FAT labelled INPLACE.
    if let Some(disk) = boot_disk {
        media.config = fat_configs.iter().find(|n| parent_disk(sys, n) == disk && is_partition(n)).map(|n| dev.join(n));
    }
    media
}

/// The whole-disk name of a block device (`sda3` → `sda`; `sda` → `sda`).
/// The disk a block device `name` (a disk or a partition) belongs to.
pub fn parent_disk(sys: &Path, name: &str) -> String {
    let class = sys.join("class/block").join(name);
    if class.join("partition").exists() {
        if let Ok(target) = std::fs::canonicalize(&class) {
            if let Some(parent) = target.parent().and_then(|p| p.file_name()) {
                return parent.to_string_lossy().into_owned();
            }
        }
    }
    name.to_string()
}

fn read_head(path: &Path) -> Option<Vec<u8>> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut buf = vec![0u8; HEAD_LEN];
    let mut filled = 0;
    while filled < buf.len() {
        match f.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(_) => break,
        }
    }
    buf.truncate(filled);
    (filled > 0).then_some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_iso9660_label() {
        let mut head = vec![0u8; 65536];
        assert_eq!(iso9660_label(&head), None);
        head[32768] = 1;
        head[32769..32774].copy_from_slice(b"CD001");
        head[32808..32840].copy_from_slice(format!("{MEDIUM_LABEL:<32}").as_bytes());
        assert_eq!(iso9660_label(&head).as_deref(), Some(MEDIUM_LABEL));
        assert_eq!(iso9660_label(&head[..32800]), None, "a truncated descriptor");
    }
}
