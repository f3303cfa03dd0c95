//! FAT12/16/32: the reserved sectors, the FATs and the FAT12/16 root directory are always
//! used; a data cluster is used when its FAT entry is not 0.

use super::{le16, le32, read_at, AllocError, Geometry, Runs};
use crate::fs::range::RangeReader;

/// Pushes the used byte ranges (the reserved sectors, FATs and root directory always).
pub fn used(r: &mut RangeReader, out: &mut Runs) -> Result<Geometry, AllocError> {
    let bs = read_at(r, 0, 512)?;
    let bps = le16(&bs, 11);
    let spc = u64::from(bs[13]);
    let reserved = le16(&bs, 14);
    let nfats = u64::from(bs[16]);
    let root_entries = le16(&bs, 17);
    let total = if le16(&bs, 19) != 0 { le16(&bs, 19) } else { le32(&bs, 32) };
    let fatsz = if le16(&bs, 22) != 0 { le16(&bs, 22) } else { le32(&bs, 36) };
    if !(512..=4096).contains(&bps) || !bps.is_power_of_two() || spc == 0 || !spc.is_power_of_two() || nfats == 0 || reserved == 0 || fatsz == 0 {
        return Err("the FAT boot sector is invalid".into());
    }
    let root_sectors = (root_entries * 32).div_ceil(bps);
    let data = reserved + nfats * fatsz + root_sectors;
    if total <= data {
        return Err("the FAT geometry is inconsistent".into());
    }
    let vol_bytes = total * bps;
    if vol_bytes > r.len() {
        return Err(format!("the FAT volume ({vol_bytes} bytes) is larger than its partition ({} bytes)", r.len()));
    }
    let clusters = (total - data) / spc;
    let bits = if clusters < 4085 { 12 } else if clusters < 65525 { 16 } else { 32 };
    if fatsz * bps > 256 << 20 {
        return Err("the FAT is implausibly large".into());
    }
    out.push(0, data * bps);
    let fat = read_at(r, reserved * bps, (fatsz * bps) as usize)?;
    let entry = |c: u64| -> Option<u64> {
        match bits {
            12 => {
                let at = usize::try_from(c * 3 / 2).ok()?;
                let v = u16::from_le_bytes([*fat.get(at)?, *fat.get(at + 1)?]);
                Some(u64::from(if c.is_multiple_of(2) { v & 0xFFF } else { v >> 4 }))
            }
            16 => fat.get(c as usize * 2..c as usize * 2 + 2).map(|b| le16(b, 0)),
            _ => fat.get(c as usize * 4..c as usize * 4 + 4).map(|b| le32(b, 0) & 0x0FFF_FFFF),
        }
    };
    let cluster_bytes = spc * bps;
    for c in 2..clusters + 2 {
        match entry(c) {
            Some(0) => {}
            Some(_) => out.push((data + (c - 2) * spc) * bps, cluster_bytes),
            None => return Err(format!("the FAT is shorter than its {clusters} clusters")),
        }
    }
    Ok(Geometry { block_size: cluster_bytes, fs_bytes: vol_bytes, fs_sector_size: Some(bps as u32), trailer: None })
}
