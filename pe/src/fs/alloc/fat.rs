//! FAT12/16/32: the reserved sectors, the FATs and the FAT12/16 root directory are always
//! used; a data cluster is used when its FAT entry is not 0.

use super::{le16, le32, read_at, AllocError, Geometry, Runs};
use crate::fs::bpb::Bpb;
use crate::fs::range::RangeReader;

/// Pushes the used byte ranges (the reserved sectors, FATs and root directory always).
pub fn used(r: &mut RangeReader, out: &mut Runs) -> Result<Geometry, AllocError> {
    let mut bs = [0u8; 512];
    bs.copy_from_slice(&read_at(r, 0, 512)?);
    let bpb = Bpb::decode(&bs);
    let (bps, spc, reserved, fatsz) = (bpb.bytes_per_sector, bpb.sectors_per_cluster, bpb.reserved_sectors, bpb.sectors_per_fat);
    if !bpb.shape_ok() || reserved == 0 || fatsz == 0 {
        return Err("the FAT boot sector is invalid".into());
    }
    let data = bpb.first_data_sector();
    let Some(clusters) = bpb.clusters() else {
        return Err("the FAT geometry is inconsistent".into());
    };
    let vol_bytes = bpb.total_sectors * bps;
    if vol_bytes > r.len() {
        return Err(format!("the FAT volume ({vol_bytes} bytes) is larger than its partition ({} bytes)", r.len()));
    }
    let bits = Bpb::fat_bits(clusters);
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
    let cluster_bytes = bpb.cluster_bytes();
    for c in 2..clusters + 2 {
        match entry(c) {
            Some(0) => {}
            Some(_) => out.push((data + (c - 2) * spc) * bps, cluster_bytes),
            None => return Err(format!("the FAT is shorter than its {clusters} clusters")),
        }
    }
    Ok(Geometry { block_size: cluster_bytes, fs_bytes: vol_bytes, fs_sector_size: Some(bps as u32), trailer: None })
}
