//! Disk enumeration through sysfs (`/sys/block/*`): no libudev, no udevd.
//!
//! Attributes used: `size` (512-byte units), `queue/logical_block_size`,
//! `queue/physical_block_size`, `removable`, `device/model`, the serial (`serial`,
//! `device/serial`, or SCSI VPD page 0x80 `device/vpd_pg80`), the WWN (`wwid`, `device/wwid`,
//! `device/wwn`), and the device path behind the `/sys/block/NAME` link for the transport.

use std::fs;
use std::path::Path;

/// A sysfs entry that could not be read: where, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub path: String,
    pub message: String,
}

/// One whole disk as sysfs describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SysDisk {
    pub name: String,
    pub size_bytes: u64,
    pub logical_sector_size: u32,
    pub physical_sector_size: u32,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub wwn: Option<String>,
    pub transport: String,
    pub removable: bool,
}

/// Kernel block devices that are not disks a PC is installed on.
pub fn is_ignored(name: &str) -> bool {
    const PREFIXES: [&str; 9] = ["loop", "ram", "zram", "sr", "dm-", "md", "nbd", "fd", "mtdblock"];
    PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Every disk under `sys/block`, sorted by name, and the entries that could not be read.
pub fn list(sys: &Path) -> (Vec<SysDisk>, Vec<Unreadable>) {
    let block = sys.join("block");
    let mut disks = Vec::new();
    let mut findings = Vec::new();
    let entries = match fs::read_dir(&block) {
        Ok(e) => e,
        Err(e) => {
            findings.push(Unreadable {
                path: block.display().to_string(),
                message: format!("cannot list block devices: {e}; is sysfs mounted?"),
            });
            return (disks, findings);
        }
    };
    let mut names: Vec<String> =
        entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    // Hidden devices are NVMe multipath paths (`nvme0c0n1`); the disk is their `nvme0n1` head.
    let hidden = |n: &String| read_attr(&block.join(n), "hidden").as_deref() == Some("1");
    for name in names.into_iter().filter(|n| !is_ignored(n) && !hidden(n)) {
        match describe(&block, &name) {
            Ok(d) => disks.push(d),
            Err(u) => findings.push(u),
        }
    }
    (disks, findings)
}

/// Reads one `/sys/block/NAME` directory (or any directory with the same layout).
pub fn describe(block: &Path, name: &str) -> Result<SysDisk, Unreadable> {
    let dir = block.join(name);
    let unreadable = |message: String| Unreadable { path: dir.display().to_string(), message };
    let sectors: u64 = read_attr(&dir, "size")
        .ok_or_else(|| unreadable("cannot read its size attribute".into()))?
        .parse()
        .map_err(|e| unreadable(format!("its size attribute is not a number: {e}")))?;
    let size_bytes = sectors.checked_mul(512).ok_or_else(|| unreadable("its size attribute overflows".into()))?;
    let sector = |attr: &str| read_attr(&dir, attr).and_then(|v| v.parse::<u32>().ok()).filter(|v| *v >= 512);
    let logical = sector("queue/logical_block_size").unwrap_or(512);
    let physical = sector("queue/physical_block_size").unwrap_or(logical);
    let link = fs::read_link(&dir)
        .or_else(|_| fs::canonicalize(&dir))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(SysDisk {
        name: name.to_string(),
        size_bytes,
        logical_sector_size: logical,
        physical_sector_size: physical,
        model: read_attr(&dir, "device/model"),
        serial: read_attr(&dir, "serial")
            .or_else(|| read_attr(&dir, "device/serial"))
            .or_else(|| fs::read(dir.join("device/vpd_pg80")).ok().and_then(|b| vpd_pg80_serial(&b))),
        wwn: read_attr(&dir, "wwid").or_else(|| read_attr(&dir, "device/wwid")).or_else(|| read_attr(&dir, "device/wwn")),
        transport: transport(&link, name).to_string(),
        removable: read_attr(&dir, "removable").as_deref() == Some("1"),
    })
}

/// A trimmed, non-empty attribute value.
fn read_attr(dir: &Path, attr: &str) -> Option<String> {
    let raw = fs::read(dir.join(attr)).ok()?;
    let s = String::from_utf8_lossy(&raw).trim_matches(|c: char| c.is_whitespace() || c == '\0').to_string();
    (!s.is_empty()).then_some(s)
}

/// The unit serial number from a SCSI VPD page 0x80 (4-byte header, then the serial).
pub fn vpd_pg80_serial(page: &[u8]) -> Option<String> {
    if page.get(1) != Some(&0x80) {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([*page.get(2)?, *page.get(3)?]));
    let raw = page.get(4..4usize.checked_add(len)?.min(page.len()))?;
    let s = String::from_utf8_lossy(raw).trim_matches(|c: char| c.is_whitespace() || c == '\0').to_string();
    (!s.is_empty()).then_some(s)
}

/// The transport, from the sysfs device path behind `/sys/block/NAME`.
pub fn transport(device_path: &str, name: &str) -> &'static str {
    let has = |s: &str| device_path.contains(s);
    if has("/usb") {
        "usb"
    } else if name.starts_with("nvme") || has("/nvme") {
        "nvme"
    } else if name.starts_with("mmcblk") || has("/mmc") {
        "mmc"
    } else if has("/ata") {
        "sata"
    } else if has("/virtio") && !has("/host") {
        "virtio"
    } else if has("/host") {
        "scsi"
    } else {
        "unknown"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transports_from_device_paths() {
        let cases = [
            ("../devices/pci0000:00/0000:00:04.0/virtio1/block/vda", "vda", "virtio"),
            ("../devices/pci0000:00/0000:00:05.0/virtio2/host0/target0:0:0/0:0:0:0/block/sda", "sda", "scsi"),
            ("../devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda", "sda", "sata"),
            ("../devices/pci0000:00/0000:00:06.0/nvme/nvme0/nvme0n1", "nvme0n1", "nvme"),
            ("../devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0/block/sdb", "sdb", "usb"),
            ("../devices/platform/soc/mmc_host/mmc0/mmc0:0001/block/mmcblk0", "mmcblk0", "mmc"),
            ("../devices/virtual/block/xyz", "xyz", "unknown"),
        ];
        for (path, name, want) in cases {
            assert_eq!(transport(path, name), want, "{path}");
        }
    }

    #[test]
    fn vpd_serial() {
        let mut page = vec![0x00, 0x80, 0x00, 0x0a];
        page.extend_from_slice(b"  QM00001 ");
        assert_eq!(vpd_pg80_serial(&page).as_deref(), Some("QM00001"));
        assert_eq!(vpd_pg80_serial(&[0, 0x80, 0xff, 0xff, b'A']).as_deref(), Some("A"));
        assert_eq!(vpd_pg80_serial(&[0, 0x83, 0, 1, b'A']), None);
        assert_eq!(vpd_pg80_serial(&[0, 0x80]), None);
    }

    #[test]
    fn enumerates_a_fake_sysfs() {
        let root = std::env::temp_dir().join(format!("inplace-sysfs-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let dev = root.join("devices/pci0000:00/0000:00:04.0/virtio1/block/vda");
        fs::create_dir_all(dev.join("queue")).unwrap();
        fs::create_dir_all(dev.join("device")).unwrap();
        fs::write(dev.join("size"), "409600\n").unwrap();
        fs::write(dev.join("queue/logical_block_size"), "512\n").unwrap();
        fs::write(dev.join("queue/physical_block_size"), "4096\n").unwrap();
        fs::write(dev.join("serial"), "disk-serial-1\n").unwrap();
        fs::write(dev.join("removable"), "0\n").unwrap();
        fs::create_dir_all(root.join("block")).unwrap();
        std::os::unix::fs::symlink("../devices/pci0000:00/0000:00:04.0/virtio1/block/vda", root.join("block/vda"))
            .unwrap();
        let lp = root.join("devices/virtual/block/loop0");
        fs::create_dir_all(&lp).unwrap();
        std::os::unix::fs::symlink("../devices/virtual/block/loop0", root.join("block/loop0")).unwrap();
        let bad = root.join("devices/virtual/block/vdz");
        fs::create_dir_all(&bad).unwrap();
        std::os::unix::fs::symlink("../devices/virtual/block/vdz", root.join("block/vdz")).unwrap();

        let (disks, findings) = list(&root);
        assert_eq!(disks.len(), 1);
        let d = &disks[0];
        assert_eq!(
            (d.name.as_str(), d.size_bytes, d.logical_sector_size, d.physical_sector_size),
            ("vda", 409600 * 512, 512, 4096)
        );
        assert_eq!(d.serial.as_deref(), Some("disk-serial-1"));
        assert_eq!(d.transport, "virtio");
        assert!(!d.removable && d.model.is_none() && d.wwn.is_none());
        assert_eq!(findings.len(), 1);
        assert!(findings[0].message.contains("cannot read its size"));
        fs::remove_dir_all(&root).unwrap();
    }
}
