//! Every disk of the system (sysfs + `/dev`), or the image files and devices named, each
//! probed into an inventory entry.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::probe::{self, Identity};
use super::{Disk, Finding, Inventory};
use crate::disk::device::Device;
use crate::disk::sysfs::{self, SysDisk};

/// Inventory of every disk under `sys`/block, opened read-only through `dev`.
pub fn scan_system(sys: &Path, dev: &Path) -> Inventory {
    let (disks, unreadable) = sysfs::list(sys);
    let findings = unreadable.into_iter().map(|u| Finding::error(u.path, u.message)).collect();
    let mut inventory = Inventory { disks: Vec::new(), findings };
    for d in disks {
        let id = identity(&d);
        let node = dev.join(&d.name);
        if d.size_bytes == 0 && d.removable {
            let mut disk = empty_disk(id);
            disk.findings.push(Finding::warning(&d.name, "removable drive with no medium inserted"));
            inventory.disks.push(disk);
            continue;
        }
        match Device::open(&node) {
            Ok(device) => {
                let mut id = id;
                if let Some(g) = device.geometry() {
                    id.logical_sector_size = Some(g.logical_sector_size);
                    id.physical_sector_size = Some(g.physical_sector_size);
                }
                inventory.disks.push(probe::probe(Arc::new(device), id));
            }
            Err(e) => {
                let mut disk = empty_disk(id);
                disk.size_bytes = d.size_bytes;
                disk.findings.push(Finding::error(&d.name, format!("{e}; its partitions are not listed")));
                inventory.disks.push(disk);
            }
        }
    }
    inventory
}

/// Inventory of the given image files or block devices, opened read-only.
pub fn inspect_paths(paths: &[PathBuf]) -> Inventory {
    let mut inventory = Inventory::default();
    for path in paths {
        match Device::open(path) {
            Ok(device) => {
                let id = identity_of(&device, path);
                inventory.disks.push(probe::probe(Arc::new(device), id));
            }
            Err(e) => inventory.findings.push(Finding::error(
                path.display().to_string(),
                format!("{e}; check the path and that you may read it"),
            )),
        }
    }
    inventory
}

/// An image file is named by its path; a block device also gets what sysfs knows about it.
fn identity_of(device: &Device, path: &Path) -> Identity {
    let name = path.display().to_string();
    let Some(g) = device.geometry() else {
        return Identity { name, transport: "file".into(), ..Identity::default() };
    };
    let mut id = device
        .dev_numbers()
        .and_then(|(major, minor)| {
            let link = std::fs::canonicalize(format!("/sys/dev/block/{major}:{minor}")).ok()?;
            let kernel = link.file_name()?.to_string_lossy().into_owned();
            let parent = link.parent()?.to_path_buf();
            sysfs::describe(&parent, &kernel).ok().map(|d| identity(&d))
        })
        .unwrap_or_else(|| Identity { transport: "unknown".into(), ..Identity::default() });
    id.name = name;
    id.logical_sector_size = Some(g.logical_sector_size);
    id.physical_sector_size = Some(g.physical_sector_size);
    id
}

/// What sysfs knows about a disk, as the probe takes it.
fn identity(d: &SysDisk) -> Identity {
    Identity {
        name: d.name.clone(),
        logical_sector_size: Some(d.logical_sector_size),
        physical_sector_size: Some(d.physical_sector_size),
        model: d.model.clone(),
        serial: d.serial.clone(),
        wwn: d.wwn.clone(),
        transport: d.transport.clone(),
        removable: d.removable,
    }
}

fn empty_disk(id: Identity) -> Disk {
    let ss = id.logical_sector_size.unwrap_or(512);
    id.into_disk(0, ss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_system_over_a_fake_sysfs_and_dev() {
        let root = std::env::temp_dir().join(format!("inplace-scan-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let (sys, dev) = (root.join("sys"), root.join("dev"));
        let node = sys.join("devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda");
        std::fs::create_dir_all(node.join("device")).unwrap();
        std::fs::create_dir_all(sys.join("block")).unwrap();
        std::fs::create_dir_all(&dev).unwrap();
        let mut img = crate::disk::gpt_read::tests::sample(512, 4096, &[(1, 2048, 1024, "one")]);
        crate::disk::mbr_read::tests::put_entry(&mut img, 0, 0, crate::disk::mbr_read::PROTECTIVE, 1, 4095);
        std::fs::write(dev.join("sda"), &img).unwrap();
        std::fs::write(node.join("size"), "4096\n").unwrap();
        std::fs::write(node.join("device/model"), "QEMU HARDDISK   \n").unwrap();
        std::fs::write(node.join("device/wwid"), "t10.ATA QEMU HARDDISK QM00001\n").unwrap();
        let mut vpd = vec![0, 0x80, 0, 8];
        vpd.extend_from_slice(b"QM00001 ");
        std::fs::write(node.join("device/vpd_pg80"), vpd).unwrap();
        std::os::unix::fs::symlink(
            "../devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda",
            sys.join("block/sda"),
        )
        .unwrap();
        // A disk sysfs lists but /dev lacks.
        let gone = sys.join("devices/virtual/block/vdb");
        std::fs::create_dir_all(&gone).unwrap();
        std::fs::write(gone.join("size"), "8\n").unwrap();
        std::os::unix::fs::symlink("../devices/virtual/block/vdb", sys.join("block/vdb")).unwrap();

        let inv = scan_system(&sys, &dev);
        assert!(inv.findings.is_empty(), "{:?}", inv.findings);
        assert_eq!(inv.disks.len(), 2);
        let sda = &inv.disks[0];
        assert_eq!(sda.name, "sda");
        assert_eq!(sda.transport, "sata");
        assert_eq!(sda.model.as_deref(), Some("QEMU HARDDISK"));
        assert_eq!(sda.serial.as_deref(), Some("QM00001"));
        assert_eq!(sda.wwn.as_deref(), Some("t10.ATA QEMU HARDDISK QM00001"));
        assert_eq!(sda.table.as_deref(), Some("gpt"));
        assert_eq!(sda.partitions.len(), 1);
        let vdb = &inv.disks[1];
        assert_eq!((vdb.name.as_str(), vdb.size_bytes), ("vdb", 4096));
        assert!(vdb.findings[0].message.contains("cannot open"));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
