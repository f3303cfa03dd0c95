//! Free space at the tail of a filesystem, read from its own allocation data: the ext2/3/4
//! block bitmaps (synthesising `BLOCK_UNINIT` groups the way the kernel does), the NTFS
//! `$Bitmap`, the FAT table. A byte counts as free only if the filesystem says so; when in
//! doubt (journal needing recovery, dirty volume, unsupported layout) there is no tail.


use ntfs::{KnownNtfsFileRecordNumber, Ntfs, NtfsReadSeek};

use super::model::TailFree;
use crate::disk::device::SharedDisk;
use crate::fs::range::RangeReader;

/// Why no tail could be read.
pub type Why = String;

/// The free tail of partition `number` (bytes `start .. start+size` of `disk`) holding `fs`.
pub fn tail_free(disk: &SharedDisk, number: u32, fs: &str, start: u64, size: u64) -> Result<TailFree, Why> {
    let mut r = RangeReader::new(disk.clone(), start, size);
    let (from, to) = match fs {
        "ext2" | "ext3" | "ext4" => (ext4_tail(&mut r)?, size),
        "vfat" => (fat_tail(&mut r)?, size),
        "ntfs" => ntfs_tail(&mut r)?,
        other => return Err(format!("no allocation reader for {other}")),
    };
    let from = from.min(size);
    Ok(TailFree { number, fs: fs.to_string(), start: from, end: to.clamp(from, size) })
}

fn read_at(r: &mut RangeReader, at: u64, len: usize) -> Result<Vec<u8>, Why> {
    let mut b = vec![0u8; len];
    r.read_exact_at(at, &mut b).map_err(|e| format!("reading {len} bytes at byte {at}: {e}"))?;
    Ok(b)
}

fn u16_at(b: &[u8], at: usize) -> u64 {
    u64::from(u16::from_le_bytes([b[at], b[at + 1]]))
}
fn u32_at(b: &[u8], at: usize) -> u64 {
    u64::from(u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]))
}

/// Byte offset (in the partition) after the last block the ext filesystem uses.
fn ext4_tail(r: &mut RangeReader) -> Result<u64, Why> {
    let sb = read_at(r, 1024, 1024)?;
    if u16_at(&sb, 0x38) != 0xEF53 {
        return Err("no ext2/3/4 superblock".into());
    }
    let incompat = u32_at(&sb, 0x60);
    let ro_compat = u32_at(&sb, 0x64);
    let compat = u32_at(&sb, 0x5C);
    if incompat & 0x4 != 0 {
        return Err("the ext4 journal needs recovery (the filesystem was not cleanly unmounted); boot the old OS and shut it down cleanly, or run e2fsck".into());
    }
    if incompat & 0x10 != 0 || compat & 0x200 != 0 {
        return Err("meta_bg / sparse_super2 layouts are not supported for free-space analysis".into());
    }
    let log = u32_at(&sb, 0x18);
    if log > 6 {
        return Err(format!("block size 2^{} is invalid", 10 + log));
    }
    let bs = 1024u64 << log;
    let is64 = incompat & 0x80 != 0;
    let blocks = u32_at(&sb, 0x04) | if is64 { u32_at(&sb, 0x150) << 32 } else { 0 };
    let first = u32_at(&sb, 0x14);
    let bpg = u32_at(&sb, 0x20);
    let ipg = u32_at(&sb, 0x28);
    let inode_size = if u32_at(&sb, 0x4C) == 0 { 128 } else { u16_at(&sb, 0x58) };
    let desc = if is64 { u16_at(&sb, 0xFE).max(32) } else { 32 };
    if bpg == 0 || bpg > bs * 8 || blocks <= first || desc > 1024 {
        return Err("the ext superblock is inconsistent".into());
    }
    let groups = (blocks - first).div_ceil(bpg);
    if groups > 1 << 22 {
        return Err("too many block groups".into());
    }
    let gdt_blocks = (groups * desc).div_ceil(bs);
    let gdt = read_at(r, (first + 1) * bs, (gdt_blocks * bs) as usize)?;
    let field = |g: u64, lo: usize, hi: usize| -> u64 {
        let at = (g * desc) as usize;
        u32_at(&gdt, at + lo) | if desc >= 64 { u32_at(&gdt, at + hi) << 32 } else { 0 }
    };
    let itb = (ipg * inode_size).div_ceil(bs);
    let reserved_gdt = u16_at(&sb, 0xCE);
    let sparse = ro_compat & 1 != 0;
    let has_super = |g: u64| {
        if g <= 1 || !sparse {
            return true;
        }
        [3u64, 5, 7].iter().any(|&b| {
            let mut x = g;
            while x % b == 0 {
                x /= b;
            }
            x == 1
        })
    };
    // Every group's own metadata, wherever flex_bg put it.
    let mut meta: Vec<(u64, u64)> = Vec::new();
    for g in 0..groups {
        meta.push((field(g, 0x0, 0x20), 1));
        meta.push((field(g, 0x4, 0x24), 1));
        meta.push((field(g, 0x8, 0x28), itb));
    }
    for g in (0..groups).rev() {
        let g_start = first + g * bpg;
        let g_end = (g_start + bpg).min(blocks);
        let flags = u16_at(&gdt, (g * desc) as usize + 0x12);
        let mut used = vec![false; (g_end - g_start) as usize];
        if flags & 0x2 != 0 {
            // BLOCK_UNINIT: what ext4_init_block_bitmap would mark.
            if has_super(g) {
                for b in 0..(1 + gdt_blocks + reserved_gdt).min(g_end - g_start) {
                    used[b as usize] = true;
                }
            }
            for &(s, n) in &meta {
                for b in s..s.saturating_add(n) {
                    if (g_start..g_end).contains(&b) {
                        used[(b - g_start) as usize] = true;
                    }
                }
            }
        } else {
            let bitmap = read_at(r, field(g, 0x0, 0x20).saturating_mul(bs), bs as usize)?;
            for (i, u) in used.iter_mut().enumerate() {
                *u = bitmap[i / 8] & (1 << (i % 8)) != 0;
            }
        }
        if let Some(last) = used.iter().rposition(|u| *u) {
            return Ok((g_start + last as u64 + 1) * bs);
        }
    }
    Ok(first * bs)
}

/// Byte offset after the last cluster the FAT marks as used.
fn fat_tail(r: &mut RangeReader) -> Result<u64, Why> {
    let bs = read_at(r, 0, 512)?;
    let bps = u16_at(&bs, 11);
    let spc = u64::from(bs[13]);
    let reserved = u16_at(&bs, 14);
    let nfats = u64::from(bs[16]);
    let root_entries = u16_at(&bs, 17);
    let total = if u16_at(&bs, 19) != 0 { u16_at(&bs, 19) } else { u32_at(&bs, 32) };
    let fatsz = if u16_at(&bs, 22) != 0 { u16_at(&bs, 22) } else { u32_at(&bs, 36) };
    if !(512..=4096).contains(&bps) || !bps.is_power_of_two() || spc == 0 || !spc.is_power_of_two() || nfats == 0 || reserved == 0 {
        return Err("the FAT boot sector is invalid".into());
    }
    let root_sectors = (root_entries * 32).div_ceil(bps);
    let data = reserved + nfats * fatsz + root_sectors;
    if total <= data {
        return Err("the FAT geometry is inconsistent".into());
    }
    let clusters = (total - data) / spc;
    let bits = if clusters < 4085 { 12 } else if clusters < 65525 { 16 } else { 32 };
    if fatsz * bps > 256 << 20 {
        return Err("the FAT is implausibly large".into());
    }
    let fat = read_at(r, reserved * bps, (fatsz * bps) as usize)?;
    let entry = |c: u64| -> Option<u64> {
        match bits {
            12 => {
                let at = (c * 3 / 2) as usize;
                let v = u16::from_le_bytes([*fat.get(at)?, *fat.get(at + 1)?]);
                Some(u64::from(if c % 2 == 0 { v & 0xFFF } else { v >> 4 }))
            }
            16 => fat.get(c as usize * 2..c as usize * 2 + 2).map(|b| u16_at(b, 0)),
            _ => fat.get(c as usize * 4..c as usize * 4 + 4).map(|b| u32_at(b, 0) & 0x0FFF_FFFF),
        }
    };
    let mut last_used = None;
    for c in (2..clusters + 2).rev() {
        match entry(c) {
            Some(0) => {}
            Some(_) => {
                last_used = Some(c);
                break;
            }
            None => return Err(format!("the FAT is shorter than its {clusters} clusters")),
        }
    }
    let end_sector = match last_used {
        Some(c) => data + (c - 1) * spc,
        None => data,
    };
    Ok(end_sector * bps)
}

/// `(offset after the last used cluster, offset of the backup boot sector)`.
fn ntfs_tail(r: &mut RangeReader) -> Result<(u64, u64), Why> {
    let ntfs = Ntfs::new(r).map_err(|e| format!("NTFS: {e}"))?;
    if let Ok(info) = ntfs.volume_info(r) {
        if info.flags().contains(ntfs::structured_values::NtfsVolumeFlags::IS_DIRTY) {
            return Err("the NTFS volume is marked dirty; run `chkdsk /f` in Windows and shut down fully first".into());
        }
    }
    let cluster = u64::from(ntfs.cluster_size());
    let volume = ntfs.size();
    let clusters = volume / cluster;
    let file = ntfs.file(r, KnownNtfsFileRecordNumber::Bitmap as u64).map_err(|e| format!("NTFS $Bitmap: {e}"))?;
    let item = file.data(r, "").ok_or("NTFS $Bitmap has no data")?.map_err(|e| format!("NTFS $Bitmap: {e}"))?;
    let attr = item.to_attribute().map_err(|e| format!("NTFS $Bitmap: {e}"))?;
    let len = attr.value_length();
    if len < clusters.div_ceil(8) || len > 512 << 20 {
        return Err(format!("NTFS $Bitmap is {len} bytes for {clusters} clusters"));
    }
    let mut value = attr.value(r).map_err(|e| format!("NTFS $Bitmap: {e}"))?;
    let mut bitmap = vec![0u8; len as usize];
    let mut done = 0;
    while done < bitmap.len() {
        let n = value.read(r, &mut bitmap[done..]).map_err(|e| format!("NTFS $Bitmap: {e}"))?;
        if n == 0 {
            return Err("NTFS $Bitmap ends early".into());
        }
        done += n;
    }
    let last = (0..clusters).rev().find(|c| bitmap[(c / 8) as usize] & (1 << (c % 8)) != 0);
    let from = last.map_or(0, |c| (c + 1) * cluster);
    // The backup boot sector sits just past the volume: the tail ends there.
    Ok((from, volume))
}

