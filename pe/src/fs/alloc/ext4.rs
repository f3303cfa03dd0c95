//! ext2/3/4: the block bitmap of every group. Groups flagged `BLOCK_UNINIT` have no bitmap on
//! disk; their used blocks are synthesised the way the kernel's `ext4_init_block_bitmap` does
//! (superblock backup and group descriptors where the group has them, plus every group's
//! bitmaps and inode table that lie in it, wherever `flex_bg` put them).

use super::{le16, le32, read_at, AllocError, Geometry, Runs};
use crate::fs::range::RangeReader;

const INCOMPAT_RECOVER: u64 = 0x4;
const INCOMPAT_META_BG: u64 = 0x10;
const INCOMPAT_64BIT: u64 = 0x80;
const COMPAT_SPARSE_SUPER2: u64 = 0x200;
const RO_COMPAT_SPARSE_SUPER: u64 = 0x1;
const BG_BLOCK_UNINIT: u64 = 0x2;

/// Pushes the used byte ranges.
pub fn used(r: &mut RangeReader, out: &mut Runs) -> Result<Geometry, AllocError> {
    let sb = read_at(r, 1024, 1024)?;
    if le16(&sb, 0x38) != 0xEF53 {
        return Err("no ext2/3/4 superblock".into());
    }
    let incompat = le32(&sb, 0x60);
    let ro_compat = le32(&sb, 0x64);
    let compat = le32(&sb, 0x5C);
    if incompat & INCOMPAT_RECOVER != 0 {
        return Err("the ext4 journal needs recovery (not cleanly unmounted); run e2fsck on it or shut its OS down cleanly first".into());
    }
    if incompat & INCOMPAT_META_BG != 0 || compat & COMPAT_SPARSE_SUPER2 != 0 {
        return Err("meta_bg / sparse_super2 layouts are not supported by the allocation reader".into());
    }
    let log = le32(&sb, 0x18);
    if log > 6 {
        return Err(format!("ext block size 2^{} is invalid", 10 + log));
    }
    let bs = 1024u64 << log;
    let is64 = incompat & INCOMPAT_64BIT != 0;
    let blocks = le32(&sb, 0x04) | if is64 { le32(&sb, 0x150) << 32 } else { 0 };
    let first = le32(&sb, 0x14);
    let bpg = le32(&sb, 0x20);
    let ipg = le32(&sb, 0x28);
    let inode_size = if le32(&sb, 0x4C) == 0 { 128 } else { le16(&sb, 0x58) };
    let desc = if is64 { le16(&sb, 0xFE).max(32) } else { 32 };
    if bpg == 0 || bpg > bs * 8 || blocks <= first || !(32..=1024).contains(&desc) || inode_size == 0 {
        return Err("the ext superblock is inconsistent".into());
    }
    let fs_bytes = blocks.checked_mul(bs).ok_or("the ext block count overflows")?;
    if fs_bytes > r.len() {
        return Err(format!("the ext filesystem ({fs_bytes} bytes) is larger than its partition ({} bytes)", r.len()));
    }
    let groups = (blocks - first).div_ceil(bpg);
    if groups > 1 << 22 {
        return Err("too many ext block groups".into());
    }
    let gdt_blocks = (groups * desc).div_ceil(bs);
    let gdt = read_at(r, (first + 1) * bs, usize::try_from(gdt_blocks * bs).map_err(|_| "descriptor table too large")?)?;
    let field = |g: u64, lo: usize, hi: usize| -> u64 {
        let at = (g * desc) as usize;
        le32(&gdt, at + lo) | if desc >= 64 { le32(&gdt, at + hi) << 32 } else { 0 }
    };
    let itb = (ipg * inode_size).div_ceil(bs);
    let reserved_gdt = le16(&sb, 0xCE);
    let sparse = ro_compat & RO_COMPAT_SPARSE_SUPER != 0;
    let has_super = |g: u64| {
        if g <= 1 || !sparse {
            return true;
        }
        [3u64, 5, 7].iter().any(|&b| {
            let mut x = g;
            while x.is_multiple_of(b) {
                x /= b;
            }
            x == 1
        })
    };
    // Everything before the first group (the boot block with 1 KiB blocks).
    out.push(0, first.max(1) * bs);
    // Every group's metadata, wherever it lives, for the BLOCK_UNINIT groups.
    let mut meta: Vec<(u64, u64)> = Vec::new();
    for g in 0..groups {
        meta.push((field(g, 0x0, 0x20), 1));
        meta.push((field(g, 0x4, 0x24), 1));
        meta.push((field(g, 0x8, 0x28), itb));
    }
    meta.sort_unstable();
    let bitmap_len = usize::try_from(bs).map_err(|_| "block size")?;
    for g in 0..groups {
        let g_start = first + g * bpg;
        let g_end = (g_start + bpg).min(blocks);
        let flags = le16(&gdt, (g * desc) as usize + 0x12);
        if flags & BG_BLOCK_UNINIT != 0 {
            if has_super(g) {
                let n = (1 + gdt_blocks + reserved_gdt).min(g_end - g_start);
                out.push(g_start * bs, n * bs);
            }
            for &(s, n) in &meta {
                let (lo, hi) = (s.max(g_start), s.saturating_add(n).min(g_end));
                if lo < hi {
                    out.push(lo * bs, (hi - lo) * bs);
                }
            }
            continue;
        }
        let at = field(g, 0x0, 0x20);
        if at == 0 || at >= blocks {
            return Err(format!("ext block group {g}: bitmap block {at} is outside the filesystem"));
        }
        let bitmap = read_at(r, at * bs, bitmap_len)?;
        let n = g_end - g_start;
        let mut i = 0u64;
        while i < n {
            let byte = bitmap[(i / 8) as usize];
            if i.is_multiple_of(8) && byte == 0 && i + 8 <= n {
                i += 8;
                continue;
            }
            if byte & (1 << (i % 8)) != 0 {
                let s = i;
                while i < n && bitmap[(i / 8) as usize] & (1 << (i % 8)) != 0 {
                    i += 1;
                }
                out.push((g_start + s) * bs, (i - s) * bs);
            } else {
                i += 1;
            }
        }
    }
    Ok(Geometry { block_size: bs, fs_bytes, fs_sector_size: None, trailer: None })
}
