//! UEFI hand-off after a lay-down: the ESP must hold the fallback loader
//! `\EFI\BOOT\BOOTX64.EFI` (copied from a known vendor loader when missing), and in the PE an
//! NVRAM `Boot####` entry pointing at it is added through efivarfs and put first in
//! `BootOrder`.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use super::create::ESP_TYPE;
use super::layout::Placement;
use super::manifest::Manifest;
use super::target::TargetInfo;
use crate::disk::write::RwRange;
use crate::error::{Error, Result};
use crate::step::Step;

fn io(what: String) -> Error {
    Error::io(Step::LayDown, what)
}

pub const FALLBACK: &str = "EFI/BOOT/BOOTX64.EFI";
/// Vendor loaders to copy to the fallback path, in order of preference.
const KNOWN: &[&str] = &[
    "EFI/Microsoft/Boot/bootmgfw.efi",
    "EFI/debian/shimx64.efi",
    "EFI/ubuntu/shimx64.efi",
    "EFI/fedora/shimx64.efi",
    "EFI/debian/grubx64.efi",
    "EFI/ubuntu/grubx64.efi",
];
const GLOBAL_GUID: &str = "8be4df61-93ca-11d2-aa0d-00e098032b8c";

fn esp(m: &Manifest, p: &Placement) -> Option<(u32, u64, u64)> {
    p.placed.iter().find(|x| m.partitions[x.image_index].type_id == ESP_TYPE).map(|x| (x.number, x.start, x.size))
}

/// Makes sure the fallback loader exists on the laid-down ESP.
pub fn ensure_fallback(file: &dyn crate::disk::write::WriteAt, m: &Manifest, p: &Placement) -> Result<Vec<String>> {
    let Some((number, start, size)) = esp(m, p) else {
        return Ok(vec!["the image boots with UEFI but has no ESP; the firmware needs one on this disk".into()]);
    };
    let fs = fatfs::FileSystem::new(RwRange::new(file, start, size), fatfs::FsOptions::new())
        .map_err(|e| io(format!("the ESP (partition {number}) does not open as FAT after the lay-down: {e}")))?;
    let root = fs.root_dir();
    if root.open_file(FALLBACK).is_ok() {
        return Ok(Vec::new());
    }
    let mut note = None;
    for k in KNOWN {
        let Ok(mut src) = root.open_file(k) else { continue };
        let mut data = Vec::new();
        src.read_to_end(&mut data).map_err(|e| io(format!("reading {k} on the ESP: {e}")))?;
        let _ = root.create_dir("EFI");
        let _ = root.create_dir("EFI/BOOT");
        let mut dst = root.create_file(FALLBACK).map_err(|e| io(format!("creating {FALLBACK} on the ESP: {e}")))?;
        dst.truncate().map_err(|e| io(format!("truncating {FALLBACK} on the ESP: {e}")))?;
        dst.write_all(&data).map_err(|e| io(format!("writing {FALLBACK} on the ESP: {e}")))?;
        note = Some(format!("copied {k} to the fallback path {FALLBACK} on the ESP"));
        break;
    }
    drop(root);
    fs.unmount().map_err(|e| io(format!("closing the ESP: {e}")))?;
    Ok(vec![note.unwrap_or_else(|| format!("the ESP has no {FALLBACK} and no known vendor loader; the firmware may not find a boot loader"))])
}

fn utf16z(s: &str) -> Vec<u8> {
    s.encode_utf16().chain(std::iter::once(0)).flat_map(|u| u.to_le_bytes()).collect()
}

/// The `EFI_LOAD_OPTION` for `\EFI\BOOT\BOOTX64.EFI` on GPT partition `number`.
pub fn load_option(description: &str, number: u32, first_lba: u64, lbas: u64, part_guid: uuid::Uuid) -> Vec<u8> {
    let mut path = Vec::new();
    // Hard drive media device path.
    path.extend_from_slice(&[4, 1, 42, 0]);
    path.extend_from_slice(&number.to_le_bytes());
    path.extend_from_slice(&first_lba.to_le_bytes());
    path.extend_from_slice(&lbas.to_le_bytes());
    path.extend_from_slice(&part_guid.to_bytes_le());
    path.extend_from_slice(&[2, 2]);
    // File path.
    let file = utf16z("\\EFI\\BOOT\\BOOTX64.EFI");
    path.extend_from_slice(&[4, 4]);
    path.extend_from_slice(&((4 + file.len()) as u16).to_le_bytes());
    path.extend_from_slice(&file);
    path.extend_from_slice(&[0x7f, 0xff, 4, 0]);
    let mut out = Vec::new();
    out.extend_from_slice(&1u32.to_le_bytes()); // LOAD_OPTION_ACTIVE
    out.extend_from_slice(&(path.len() as u16).to_le_bytes());
    out.extend_from_slice(&utf16z(description));
    out.extend_from_slice(&path);
    out
}

fn write_var(dir: &Path, name: &str, data: &[u8]) -> std::io::Result<()> {
    let p = dir.join(format!("{name}-{GLOBAL_GUID}"));
    if let Ok(f) = File::open(&p) {
        // efivarfs marks existing variables immutable; lift that to rewrite one.
        if let Ok(flags) = rustix::fs::ioctl_getflags(&f) {
            let _ = rustix::fs::ioctl_setflags(&f, flags - rustix::fs::IFlags::IMMUTABLE);
        }
    }
    let mut buf = 7u32.to_le_bytes().to_vec(); // NV | BS | RT
    buf.extend_from_slice(data);
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(false).open(&p)?;
    f.write_all(&buf)
}

/// Adds an NVRAM entry for the new ESP and puts it first in `BootOrder`.
pub fn nvram_entry(m: &Manifest, p: &Placement, t: &TargetInfo) -> Result<Vec<String>> {
    let dir = Path::new("/sys/firmware/efi/efivars");
    if !dir.is_dir() {
        return Ok(vec!["no efivarfs (not booted with UEFI): no NVRAM boot entry added; the fallback loader is used".into()]);
    }
    let Some((number, start, size)) = esp(m, p) else { return Ok(Vec::new()) };
    let disk: crate::disk::device::SharedDisk = Arc::new(crate::disk::device::Device::open(&t.path).map_err(|e| io(e.to_string()))?);
    let g = crate::disk::write::gpt::load(&disk, t.sector_size, false).map_err(|e| io(format!("{}: {e}", t.path.display())))?;
    let at = (number as usize - 1) * 128;
    let mut b = [0u8; 16];
    b.copy_from_slice(&g.entries[at + 16..at + 32]);
    let guid = uuid::Uuid::from_bytes_le(b);
    let ss = u64::from(t.sector_size);
    let opt = load_option("inplace image", number, start / ss, size / ss, guid);
    let mut order: Vec<u16> = std::fs::read(dir.join(format!("BootOrder-{GLOBAL_GUID}")))
        .ok()
        .map(|v| v.get(4..).unwrap_or(&[]).chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect())
        .unwrap_or_default();
    let slot = (0u16..0xffff).find(|n| !dir.join(format!("Boot{n:04X}-{GLOBAL_GUID}")).exists()).ok_or_else(|| io("no free Boot#### slot".into()))?;
    write_var(dir, &format!("Boot{slot:04X}"), &opt).map_err(|e| io(format!("writing NVRAM Boot{slot:04X}: {e}")))?;
    order.retain(|x| *x != slot);
    order.insert(0, slot);
    let bytes: Vec<u8> = order.iter().flat_map(|x| x.to_le_bytes()).collect();
    write_var(dir, "BootOrder", &bytes).map_err(|e| io(format!("writing NVRAM BootOrder: {e}")))?;
    Ok(vec![format!("added NVRAM entry Boot{slot:04X} for the ESP (partition {number}) and put it first")])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_option_layout() {
        let g = uuid::Uuid::from_u128(0x0011_2233_4455_6677_8899_aabb_ccdd_eeff);
        let o = load_option("x", 1, 2048, 4096, g);
        assert_eq!(&o[0..4], &[1, 0, 0, 0]);
        let plen = u16::from_le_bytes([o[4], o[5]]) as usize;
        let desc = 4; // "x\0" in UTF-16
        assert_eq!(o.len(), 6 + desc + plen);
        let path = &o[6 + desc..];
        assert_eq!(&path[..4], &[4, 1, 42, 0]);
        assert_eq!(u64::from_le_bytes(path[8..16].try_into().unwrap()), 2048);
        assert_eq!(&path[40..42], &[2, 2]);
        assert_eq!(&path[plen - 4..], &[0x7f, 0xff, 4, 0]);
    }
}
