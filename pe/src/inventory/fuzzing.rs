//! The fuzz target's entry into the filesystem readers and OS detection, and the stable-Rust
//! no-panic tests over it. It calls the readers directly, without the `catch_unwind` the probe
//! puts around them, so a panic is seen.

use std::sync::Arc;

use crate::disk::device::{MemDisk, SharedDisk};
use crate::disk::signature;
use crate::fs::range::RangeReader;

/// Bytes → a filesystem reader (by detected signature) and OS detection, as one partition.
pub fn filesystem(data: &[u8]) {
    let disk: SharedDisk = Arc::new(MemDisk(data.to_vec()));
    let p = signature::Probe { head: data, tail: data, size: data.len() as u64 };
    let fs = signature::detect(&p).map(|s| s.fs).unwrap_or("ext4");
    for name in [fs, "ntfs", "vfat", "ext4"] {
        let range = RangeReader::new(disk.clone(), 0, data.len() as u64);
        if let Some(Ok(mut reader)) = crate::fs::open(name, range) {
            let _ = reader.label();
            let _ = reader.read_dir(b"/");
            let _ = crate::os::detect(reader.as_mut());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::fuzzing::tests::XorShift;

    /// Inputs the `filesystem` fuzz target crashed on (crate panics and an allocation abort),
    /// now refused before the crates see them.
    #[test]
    fn known_filesystem_crashers_stay_fixed() {
        // ntfs: a boot sector cut short made the crate hit `unreachable!`.
        filesystem(&[]);
        let mut short = vec![0u8; 100];
        short[3..11].copy_from_slice(b"NTFS    ");
        short[11..13].copy_from_slice(&512u16.to_le_bytes());
        filesystem(&short);

        // fatfs: sectors-per-FAT × bytes-per-sector × 8 overflowed u32.
        let mut fat = vec![0u8; 64 * 1024];
        fat[..3].copy_from_slice(&[0xEB, 0x58, 0x90]);
        fat[11..13].copy_from_slice(&512u16.to_le_bytes());
        fat[13] = 1;
        fat[14..16].copy_from_slice(&32u16.to_le_bytes());
        fat[16] = 2;
        fat[21] = 0xF8;
        fat[32..36].copy_from_slice(&100_000u32.to_le_bytes());
        fat[36..40].copy_from_slice(&0x0fff_ffffu32.to_le_bytes());
        fat[510..512].copy_from_slice(&[0x55, 0xAA]);
        filesystem(&fat);

        // ext4-view: a garbage high block count made it allocate 25 GB for group descriptors.
        let mut ext = vec![0u8; 64 * 1024];
        let sb = 1024;
        ext[sb + 0x4..sb + 0x8].copy_from_slice(&100u32.to_le_bytes());
        ext[sb + 0x150..sb + 0x154].copy_from_slice(&0xffffu32.to_le_bytes());
        ext[sb + 0x20..sb + 0x24].copy_from_slice(&1u32.to_le_bytes());
        ext[sb + 0x28..sb + 0x2c].copy_from_slice(&1u32.to_le_bytes());
        ext[sb + 0x38..sb + 0x3a].copy_from_slice(&0xEF53u16.to_le_bytes());
        ext[sb + 0x60] = 0x40;
        filesystem(&ext);
    }

    /// Filesystem images (a partition each) from `$INPLACE_FS_SEEDS`, bit-flipped through the
    /// readers; slow, so by hand: `INPLACE_FS_SEEDS=dir cargo test -p inplace -- --ignored`.
    #[test]
    #[ignore]
    fn filesystems_from_seed_dir() {
        let dir = std::env::var_os("INPLACE_FS_SEEDS").expect("set INPLACE_FS_SEEDS");
        let iterations: usize = std::env::var("INPLACE_FS_ITER").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
        let mut rng = XorShift(7);
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let seed = std::fs::read(&path).unwrap();
            eprintln!("{}: {} bytes", path.display(), seed.len());
            filesystem(&seed);
            for i in 0..iterations {
                let mut v = seed.clone();
                for _ in 0..1 + rng.below(16) {
                    // Aim at metadata: retry until a non-zero byte is hit.
                    let mut at = rng.below(v.len());
                    for _ in 0..256 {
                        if v[at] != 0 {
                            break;
                        }
                        at = rng.below(v.len());
                    }
                    v[at] ^= 1 << rng.below(8);
                }
                eprintln!("  iteration {i}");
                filesystem(&v);
            }
        }
    }
}
