//! Content detection by on-disk signature: a pure function over a few byte buffers (the start
//! and the end of a partition), so it can be fuzzed and tested without a disk.
//!
//! The magic numbers and their positions follow util-linux `libblkid`. Signatures that can
//! hide another one come first: RAID members (whose data may itself look like a filesystem),
//! then encryption, then filesystems, with FAT (the weakest signature) last.

/// How many bytes from the start of a partition `detect` wants (btrfs sits at 64 KiB, swap's
/// magic at the end of a page of up to 64 KiB).
pub const HEAD_LEN: usize = 128 * 1024;
/// How many bytes from the end of a partition `detect` wants (md 0.90 and 1.0 superblocks).
pub const TAIL_LEN: usize = 128 * 1024;

/// The bytes to look at. `head` is the first `min(size, HEAD_LEN)` bytes of the partition,
/// `tail` the last `min(size, TAIL_LEN)`; shorter buffers are fine (a truncated image).
#[derive(Debug, Clone, Copy)]
pub struct Probe<'a> {
    pub head: &'a [u8],
    pub tail: &'a [u8],
    /// The partition size in bytes, to place `tail`.
    pub size: u64,
}

/// What `detect` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// `ntfs`, `ext4`, `vfat`, … as in `Partition::fs`.
    pub fs: &'static str,
    pub label: Option<String>,
}

impl Signature {
    fn new(fs: &'static str, label: Option<String>) -> Self {
        Signature { fs, label }
    }
}

/// The content of a partition (or a whole disk), or `None` when no signature matches.
pub fn detect(p: &Probe) -> Option<Signature> {
    md(p)
        .or_else(|| luks(p.head))
        .or_else(|| oem(p.head))
        .or_else(|| lvm2(p.head))
        .or_else(|| btrfs(p.head))
        .or_else(|| xfs(p.head))
        .or_else(|| ext(p.head))
        .or_else(|| swap(p.head))
        .or_else(|| fat(p.head))
}

/// The ext2/3/4 feature words, for callers that want to explain an unreadable ext4.
pub fn ext_features(head: &[u8]) -> Option<ExtFeatures> {
    let sb = bytes(head, 1024, 1024)?;
    if le16(sb, 56)? != 0xEF53 {
        return None;
    }
    Some(ExtFeatures { compat: le32(sb, 92)?, incompat: le32(sb, 96)?, ro_compat: le32(sb, 100)? })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtFeatures {
    pub compat: u32,
    pub incompat: u32,
    pub ro_compat: u32,
}

// ---- Linux software RAID -------------------------------------------------------------------

const MD_MAGIC: u32 = 0xa92b_4efc;

fn md(p: &Probe) -> Option<Signature> {
    // 1.1 at the start, 1.2 at 4 KiB.
    for off in [0usize, 4096] {
        if let Some(s) = md_v1(p.head, off) {
            return Some(s);
        }
    }
    let tail_start = p.size.checked_sub(p.tail.len() as u64)?;
    // 0.90: the last 64 KiB-aligned 64 KiB block.
    if p.size >= 0x20000 {
        let at = (p.size & !0xffff) - 0x10000;
        if let Some(rel) = at.checked_sub(tail_start).and_then(|r| usize::try_from(r).ok()) {
            if le32(p.tail, rel) == Some(MD_MAGIC) && le32(p.tail, rel + 4) == Some(0) {
                return Some(Signature::new("md", None));
            }
        }
    }
    // 1.0: 8 KiB from the end, rounded down to 4 KiB.
    if p.size >= 0x4000 {
        let at = ((p.size >> 9) - 16) & !7;
        let at = at << 9;
        if let Some(rel) = at.checked_sub(tail_start).and_then(|r| usize::try_from(r).ok()) {
            if let Some(s) = md_v1(p.tail, rel) {
                return Some(s);
            }
        }
    }
    None
}

fn md_v1(buf: &[u8], off: usize) -> Option<Signature> {
    if le32(buf, off)? != MD_MAGIC || le32(buf, off.checked_add(4)?)? != 1 {
        return None;
    }
    Some(Signature::new("md", text(bytes(buf, off.checked_add(32)?, 32)?)))
}

// ---- encryption and boot-sector OEM ids ----------------------------------------------------

fn luks(head: &[u8]) -> Option<Signature> {
    if bytes(head, 0, 6)? != b"LUKS\xba\xbe" {
        return None;
    }
    let label = if be16(head, 6) == Some(2) { bytes(head, 24, 48).and_then(text) } else { None };
    Some(Signature::new("luks", label))
}

fn oem(head: &[u8]) -> Option<Signature> {
    match bytes(head, 3, 8)? {
        b"-FVE-FS-" => Some(Signature::new("bitlocker", None)),
        b"NTFS    " => {
            let bps = le16(head, 11)?;
            (bps.is_power_of_two() && (256..=4096).contains(&bps)).then(|| Signature::new("ntfs", None))
        }
        b"EXFAT   " => Some(Signature::new("exfat", None)),
        _ => None,
    }
}

// ---- LVM, btrfs, xfs -----------------------------------------------------------------------

fn lvm2(head: &[u8]) -> Option<Signature> {
    (0..4usize).find_map(|sector| {
        let at = sector * 512;
        (bytes(head, at, 8)? == b"LABELONE" && bytes(head, at + 24, 8)? == b"LVM2 001")
            .then(|| Signature::new("lvm2", None))
    })
}

fn btrfs(head: &[u8]) -> Option<Signature> {
    const SB: usize = 0x10000;
    if bytes(head, SB + 0x40, 8)? != b"_BHRfS_M" {
        return None;
    }
    Some(Signature::new("btrfs", bytes(head, SB + 0x12b, 256).and_then(text)))
}

fn xfs(head: &[u8]) -> Option<Signature> {
    if bytes(head, 0, 4)? != b"XFSB" {
        return None;
    }
    let block = be32(head, 4)?;
    if !(block.is_power_of_two() && (512..=65536).contains(&block)) {
        return None;
    }
    Some(Signature::new("xfs", bytes(head, 108, 12).and_then(text)))
}

// ---- ext2/3/4 ------------------------------------------------------------------------------

const EXT_COMPAT_HAS_JOURNAL: u32 = 0x0004;
const EXT_INCOMPAT_JOURNAL_DEV: u32 = 0x0008;
/// Incompatible features ext3 knows: FILETYPE, RECOVER, META_BG.
const EXT3_INCOMPAT_SUPP: u32 = 0x0002 | 0x0004 | 0x0010;
/// Read-only-compatible features ext3 knows: SPARSE_SUPER, LARGE_FILE, BTREE_DIR.
const EXT3_RO_COMPAT_SUPP: u32 = 0x0001 | 0x0002 | 0x0004;

fn ext(head: &[u8]) -> Option<Signature> {
    let f = ext_features(head)?;
    let fs = if f.incompat & EXT_INCOMPAT_JOURNAL_DEV != 0 {
        "jbd"
    } else if f.incompat & !EXT3_INCOMPAT_SUPP != 0 || f.ro_compat & !EXT3_RO_COMPAT_SUPP != 0 {
        "ext4"
    } else if f.compat & EXT_COMPAT_HAS_JOURNAL != 0 {
        "ext3"
    } else {
        "ext2"
    };
    Some(Signature::new(fs, bytes(head, 1024 + 120, 16).and_then(text)))
}

// ---- swap ----------------------------------------------------------------------------------

fn swap(head: &[u8]) -> Option<Signature> {
    const MAGICS: [&[u8]; 2] = [b"SWAPSPACE2", b"SWAP-SPACE"];
    const SUSPENDED: [&[u8]; 4] = [b"S1SUSPEND\0", b"S2SUSPEND\0", b"ULSUSPEND\0", b"LINHIB0001"];
    for page in [4096usize, 8192, 16384, 32768, 65536] {
        let Some(magic) = bytes(head, page - 10, 10) else { break };
        if MAGICS.contains(&magic) || SUSPENDED.contains(&magic) {
            let label = if magic == b"SWAPSPACE2" { bytes(head, 1052, 16).and_then(text) } else { None };
            return Some(Signature::new("swap", label));
        }
    }
    None
}

// ---- FAT12/16/32 ---------------------------------------------------------------------------

fn fat(head: &[u8]) -> Option<Signature> {
    let b = bytes(head, 0, 512)?;
    if !(b[0] == 0xEB || b[0] == 0xE9) {
        return None;
    }
    let bps = le16(b, 11)?;
    let spc = b[13];
    let reserved = le16(b, 14)?;
    let fats = b[16];
    let media = b[21];
    let bpb_ok = matches!(bps, 512 | 1024 | 2048 | 4096)
        && spc.is_power_of_two()
        && reserved >= 1
        && (1..=4).contains(&fats)
        && (media == 0xF0 || media >= 0xF8);
    if !bpb_ok {
        return None;
    }
    let fat32 = le16(b, 22)? == 0;
    let magic = if fat32 { &b[82..90] == b"FAT32   " } else { matches!(&b[54..62], b"FAT12   " | b"FAT16   ") };
    if !(magic || (b[510] == 0x55 && b[511] == 0xAA)) {
        return None;
    }
    let (sig_at, label_at) = if fat32 { (66, 71) } else { (38, 43) };
    let label = if b[sig_at] == 0x29 { bytes(b, label_at, 11).and_then(|l| crate::codepage::fat_label(l, crate::codepage::current())) } else { None };
    Some(Signature::new("vfat", label))
}

// ---- helpers -------------------------------------------------------------------------------

fn bytes(buf: &[u8], at: usize, len: usize) -> Option<&[u8]> {
    buf.get(at..at.checked_add(len)?)
}

fn le16(buf: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes(buf, at, 2)?.try_into().ok()?))
}

fn le32(buf: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes(buf, at, 4)?.try_into().ok()?))
}

fn be16(buf: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(bytes(buf, at, 2)?.try_into().ok()?))
}

fn be32(buf: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes(buf, at, 4)?.try_into().ok()?))
}

/// A label: up to the first NUL, trailing spaces trimmed, `None` when empty.
pub(crate) fn text(raw: &[u8]) -> Option<String> {
    let end = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
    let s = String::from_utf8_lossy(&raw[..end]).trim_end().to_string();
    (!s.is_empty()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(n: usize) -> Vec<u8> {
        vec![0u8; n]
    }

    fn put(buf: &mut [u8], at: usize, b: &[u8]) {
        buf[at..at + b.len()].copy_from_slice(b);
    }

    fn det(h: &[u8]) -> Option<Signature> {
        detect(&Probe { head: h, tail: &[], size: h.len() as u64 })
    }

    fn ext_sb(compat: u32, incompat: u32, ro: u32) -> Vec<u8> {
        let mut h = head(4096);
        put(&mut h, 1024 + 56, &0xEF53u16.to_le_bytes());
        put(&mut h, 1024 + 92, &compat.to_le_bytes());
        put(&mut h, 1024 + 96, &incompat.to_le_bytes());
        put(&mut h, 1024 + 100, &ro.to_le_bytes());
        put(&mut h, 1024 + 120, b"rootfs\0\0\0\0\0\0\0\0\0\0");
        h
    }

    #[test]
    fn ext_flavours_by_features() {
        assert_eq!(det(&ext_sb(0, 0x2, 0x1)).unwrap().fs, "ext2");
        assert_eq!(det(&ext_sb(0x4, 0x2, 0x3)).unwrap().fs, "ext3");
        // extents + 64bit + flex_bg, metadata_csum: what mkfs.ext4 writes.
        let s = det(&ext_sb(0x3c, 0x2c2, 0x46b)).unwrap();
        assert_eq!(s, Signature { fs: "ext4", label: Some("rootfs".into()) });
        assert_eq!(det(&ext_sb(0, 0x8, 0)).unwrap().fs, "jbd");
        let f = ext_features(&ext_sb(1, 2, 3)).unwrap();
        assert_eq!((f.compat, f.incompat, f.ro_compat), (1, 2, 3));
    }

    fn fat_bs(fat32: bool, label: &[u8; 11]) -> Vec<u8> {
        let mut h = head(512);
        put(&mut h, 0, &[0xEB, 0x3C, 0x90]);
        put(&mut h, 3, b"mkfs.fat");
        put(&mut h, 11, &512u16.to_le_bytes());
        h[13] = 4;
        put(&mut h, 14, &4u16.to_le_bytes());
        h[16] = 2;
        h[21] = 0xF8;
        if fat32 {
            h[66] = 0x29;
            put(&mut h, 71, label);
            put(&mut h, 82, b"FAT32   ");
        } else {
            put(&mut h, 22, &32u16.to_le_bytes());
            h[38] = 0x29;
            put(&mut h, 43, label);
            put(&mut h, 54, b"FAT16   ");
        }
        put(&mut h, 510, &[0x55, 0xAA]);
        h
    }

    #[test]
    fn fat_labels() {
        assert_eq!(det(&fat_bs(true, b"ESP        ")).unwrap(), Signature { fs: "vfat", label: Some("ESP".into()) });
        assert_eq!(det(&fat_bs(false, b"NO NAME    ")).unwrap(), Signature { fs: "vfat", label: None });
        let mut bad = fat_bs(false, b"X          ");
        bad[16] = 9; // nine FATs: not a FAT boot sector
        assert_eq!(det(&bad), None);
        // An MBR with a boot signature is not FAT.
        let mut mbr = head(512);
        put(&mut mbr, 510, &[0x55, 0xAA]);
        assert_eq!(det(&mbr), None);
    }

    #[test]
    fn oem_ids() {
        let mut h = head(512);
        put(&mut h, 3, b"NTFS    ");
        put(&mut h, 11, &512u16.to_le_bytes());
        assert_eq!(det(&h).unwrap().fs, "ntfs");
        put(&mut h, 11, &3u16.to_le_bytes());
        assert_eq!(det(&h), None);
        put(&mut h, 3, b"-FVE-FS-");
        assert_eq!(det(&h).unwrap().fs, "bitlocker");
        put(&mut h, 3, b"EXFAT   ");
        assert_eq!(det(&h).unwrap().fs, "exfat");
    }

    #[test]
    fn luks_lvm_btrfs_xfs_swap() {
        let mut h = head(HEAD_LEN);
        put(&mut h, 0, b"LUKS\xba\xbe\x00\x02");
        put(&mut h, 24, b"cryptroot\0");
        assert_eq!(det(&h).unwrap(), Signature { fs: "luks", label: Some("cryptroot".into()) });

        let mut h = head(HEAD_LEN);
        put(&mut h, 512, b"LABELONE");
        put(&mut h, 512 + 24, b"LVM2 001");
        assert_eq!(det(&h).unwrap().fs, "lvm2");

        let mut h = head(HEAD_LEN);
        put(&mut h, 0x10040, b"_BHRfS_M");
        put(&mut h, 0x1012b, b"data\0");
        assert_eq!(det(&h).unwrap(), Signature { fs: "btrfs", label: Some("data".into()) });
        // A truncated head (shorter than 64 KiB) is simply not btrfs.
        assert_eq!(det(&h[..0x10045]), None);

        let mut h = head(4096);
        put(&mut h, 0, b"XFSB");
        put(&mut h, 4, &4096u32.to_be_bytes());
        put(&mut h, 108, b"xlabel\0\0\0\0\0\0");
        assert_eq!(det(&h).unwrap(), Signature { fs: "xfs", label: Some("xlabel".into()) });

        let mut h = head(8192);
        put(&mut h, 4086, b"SWAPSPACE2");
        put(&mut h, 1052, b"swap0\0");
        assert_eq!(det(&h).unwrap(), Signature { fs: "swap", label: Some("swap0".into()) });
        let mut h = head(16384);
        put(&mut h, 16384 - 10, b"SWAP-SPACE");
        assert_eq!(det(&h).unwrap().fs, "swap");
    }

    #[test]
    fn md_superblock_positions() {
        let size: u64 = 10 * 1024 * 1024 + 12345;
        let tail_len = TAIL_LEN as u64;
        let tail_start = size - tail_len;
        let magic = MD_MAGIC.to_le_bytes();

        // 0.90 at the end.
        let mut t = vec![0u8; TAIL_LEN];
        let at = ((size & !0xffff) - 0x10000 - tail_start) as usize;
        put(&mut t, at, &magic);
        let p = Probe { head: &[0u8; 4096], tail: &t, size };
        assert_eq!(detect(&p).unwrap().fs, "md");

        // 1.0 at the end, with a name.
        let mut t = vec![0u8; TAIL_LEN];
        let at = (((((size >> 9) - 16) & !7) << 9) - tail_start) as usize;
        put(&mut t, at, &magic);
        put(&mut t, at + 4, &1u32.to_le_bytes());
        put(&mut t, at + 32, b"host:0\0");
        let p = Probe { head: &[0u8; 4096], tail: &t, size };
        assert_eq!(detect(&p).unwrap(), Signature { fs: "md", label: Some("host:0".into()) });

        // 1.2 at 4 KiB hides an ext4 superblock at 1 KiB.
        let mut h = ext_sb(0x3c, 0x2c2, 0x46b);
        h.resize(8192, 0);
        put(&mut h, 4096, &magic);
        put(&mut h, 4100, &1u32.to_le_bytes());
        assert_eq!(det(&h).unwrap().fs, "md");
    }

    #[test]
    fn nothing_in_zeros_or_short_buffers() {
        assert_eq!(det(&head(HEAD_LEN)), None);
        assert_eq!(det(&[]), None);
        assert_eq!(detect(&Probe { head: &[], tail: &[], size: u64::MAX }), None);
        assert_eq!(detect(&Probe { head: &[], tail: &[1, 2, 3], size: 2 }), None);
    }
}
