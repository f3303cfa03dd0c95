//! Finding the store on first boot, when no `--store` is given: every disk under
//! `/sys/block` is scanned for the store locator (`locator::locate`), and the store's partition
//! device is used (the whole disk cannot be opened exclusively while the new OS's root on it
//! is mounted). Without a locator, a partition holding a FAT32 volume labelled `INPLACE` (the
//! table type — GPT basic data or MBR `0x0c` — is not required: the label and the store's own
//! checks are what count).

use std::fs;
use std::path::{Path, PathBuf};

use crate::locator;
use crate::disk::device::{Device, ReadAt};
use crate::disk::sysfs;

/// Where a store was found, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundStore {
    pub path: PathBuf,
    pub how: String,
}

fn attr(dir: &Path, name: &str) -> Option<u64> {
    fs::read_to_string(dir.join(name)).ok()?.trim().parse().ok()
}

/// Partitions of disk `name`: (kernel name, number, start byte, size bytes).
pub fn partitions(sys: &Path, name: &str) -> Vec<(String, u32, u64, u64)> {
    let dir = sys.join("block").join(name);
    let mut out = Vec::new();
    for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
        let p = e.path();
        let (Some(number), Some(start), Some(size)) = (attr(&p, "partition"), attr(&p, "start"), attr(&p, "size")) else { continue };
        out.push((e.file_name().to_string_lossy().into_owned(), number as u32, start * 512, size * 512));
    }
    out.sort_by_key(|p| p.1);
    out
}

/// Whether the first sector is a FAT32 boot sector labelled `INPLACE`.
pub fn is_inplace_fat(boot: &[u8]) -> bool {
    boot.len() >= 512
        && boot[510..512] == [0x55, 0xAA]
        && &boot[82..90] == b"FAT32   "
        && &boot[71..82] == crate::carve::store::LABEL
}

/// Looks for the store on the disks under `sys` (device nodes under `dev`).
pub(crate) fn find(sys: &Path, dev: &Path) -> Result<FoundStore, String> {
    let (disks, _) = sysfs::list(sys);
    let mut by_locator = Vec::new();
    let mut by_label = Vec::new();
    for d in &disks {
        let node = dev.join(&d.name);
        let Ok(device) = Device::open(&node) else { continue };
        let parts = partitions(sys, &d.name);
        if let Ok(f) = locator::locate(&device) {
            let l = &f.locator;
            let part = parts.iter().find(|p| p.1 == l.store_number && p.2 == l.store_start);
            let path = part.map_or(node.clone(), |p| dev.join(&p.0));
            by_locator.push(FoundStore { path, how: format!("locator of job {} on {}", l.job_id_hex(), node.display()) });
            continue;
        }
        for (pname, number, ..) in &parts {
            let pnode = dev.join(pname);
            let mut boot = [0u8; 512];
            let ok = Device::open(&pnode).is_ok_and(|p| p.read_exact_at(0, &mut boot).is_ok() && is_inplace_fat(&boot));
            if ok {
                by_label.push(FoundStore { path: pnode, how: format!("FAT32 volume labelled INPLACE, partition {number} of {}", node.display()) });
            }
        }
    }
    let found = if by_locator.is_empty() { by_label } else { by_locator };
    match found.len() {
        0 => Err(format!(
            "no migration store found on {} disk(s) (no store locator, no FAT32 volume labelled INPLACE)",
            disks.len()
        )),
        1 => Ok(found.into_iter().next().unwrap_or_else(|| unreachable!())),
        _ => Err(format!(
            "{} migration stores found ({})",
            found.len(),
            found.iter().map(|f| format!("{} by {}", f.path.display(), f.how)).collect::<Vec<_>>().join("; ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_labelled_fat_partition_through_a_fake_sysfs() {
        let t = tempfile::tempdir().unwrap();
        let (sys, dev) = (t.path().join("sys"), t.path().join("dev"));
        let disk = sys.join("block/vda");
        fs::create_dir_all(disk.join("vda2")).unwrap();
        fs::create_dir_all(&dev).unwrap();
        fs::write(disk.join("size"), "8192\n").unwrap();
        fs::write(disk.join("vda2/partition"), "2\n").unwrap();
        fs::write(disk.join("vda2/start"), "2048\n").unwrap();
        fs::write(disk.join("vda2/size"), "4096\n").unwrap();
        fs::write(dev.join("vda"), vec![0u8; 8192 * 512]).unwrap();
        let mut boot = vec![0u8; 4096];
        boot[71..82].copy_from_slice(b"INPLACE    ");
        boot[82..90].copy_from_slice(b"FAT32   ");
        boot[510] = 0x55;
        boot[511] = 0xAA;
        assert!(is_inplace_fat(&boot));
        fs::write(dev.join("vda2"), &boot).unwrap();
        let f = find(&sys, &dev).unwrap();
        assert_eq!(f.path, dev.join("vda2"));
        assert!(f.how.contains("partition 2"));
        fs::write(dev.join("vda2"), vec![0u8; 4096]).unwrap();
        assert!(find(&sys, &dev).unwrap_err().contains("no migration store"));
    }
}
