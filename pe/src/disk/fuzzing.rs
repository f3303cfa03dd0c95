//! Entry points for the fuzz targets in `fuzz/` and for the stable-Rust no-panic test below.
//! They call the parsers directly, without the `catch_unwind` the probe puts around them, so a
//! panic is seen. (The filesystem readers' target is `inventory::fuzzing`.)

use std::sync::Arc;

use super::device::{MemDisk, SharedDisk};
use super::{detect, gpt_read, mbr_read, signature};

/// Bytes → the partition-table readers, as a disk of both sector sizes.
pub fn partition_table(data: &[u8]) {
    let disk: SharedDisk = Arc::new(MemDisk(data.to_vec()));
    let _ = gpt_read::detect_sector_size(&disk);
    for ss in [512u32, 4096] {
        // Reads sector 0, then the MBR chain or the GPT (both headers, both entry arrays).
        let _ = detect::read_table(&disk, ss);
    }
    if let mbr_read::Sector0::Mbr(h) = mbr_read::sector0(&disk) {
        let _ = mbr_read::read(&disk, &h, 512);
    }
    let _ = gpt_read::read(&disk, 512);
}

/// Bytes → the signature detector: the first half as the head, the second as the tail.
pub fn signature(data: &[u8]) {
    let mid = data.len() / 2;
    let (head, tail) = data.split_at(mid);
    let size = u64::from_le_bytes(data.get(..8).and_then(|b| b.try_into().ok()).unwrap_or([0; 8]));
    let _ = signature::detect(&signature::Probe { head, tail, size: size.max(tail.len() as u64) });
    let _ = signature::detect(&signature::Probe { head: data, tail: data, size: data.len() as u64 });
    let _ = signature::ext_features(data);
}

#[cfg(test)]
pub(crate) mod tests {
    //! Deterministic pseudo-random and bit-flipped real tables through the parsers: a few
    //! thousand cases in well under a second, so CI exercises them without cargo-fuzz.

    use super::*;
    use crate::disk::{gpt_read, mbr_read};

    pub(crate) struct XorShift(pub u64);

    impl XorShift {
        pub fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }
        pub fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// Flips bits and smashes fields, mostly where the tables live (start and end), sometimes
    /// truncating.
    fn mutate(rng: &mut XorShift, seed: &[u8]) -> Vec<u8> {
        let mut v = seed.to_vec();
        let hot = 40 * 512;
        for _ in 0..1 + rng.below(8) {
            let len = v.len();
            if len == 0 {
                break;
            }
            let at = match rng.below(3) {
                0 => rng.below(hot.min(len)),
                1 => len - 1 - rng.below(hot.min(len)),
                _ => rng.below(len),
            };
            match rng.below(4) {
                0 => v[at] ^= 1 << rng.below(8),
                1 => v[at] = rng.next() as u8,
                2 => {
                    // A whole little-endian field set to an extreme.
                    let val = [0u64, 1, u64::MAX, u64::from(u32::MAX), 1 << 40][rng.below(5)].to_le_bytes();
                    let n = [2usize, 4, 8][rng.below(3)].min(len - at);
                    v[at..at + n].copy_from_slice(&val[..n]);
                }
                _ => v[at] = 0,
            }
        }
        if rng.below(10) == 0 {
            let keep = rng.below(v.len() + 1);
            v.truncate(keep);
        }
        v
    }

    fn seeds() -> Vec<Vec<u8>> {
        let parts = [(1, 40, 20, "a"), (2, 60, 30, "b"), (3, 90, 10, "c")];
        let mut gpt512 = gpt_read::tests::sample(512, 256, &parts);
        gpt_read::tests::move_slot(&mut gpt512, 512, 3, 7);
        let gpt4k = gpt_read::tests::sample(4096, 64, &[(1, 8, 8, "a"), (2, 16, 16, "b"), (3, 32, 8, "c")]);
        // Primary 1, extended 2 (64–192) holding logicals at 66 and 130, primary 3.
        let mut mbr = vec![0u8; 256 * 512];
        let put = mbr_read::tests::put_entry;
        put(&mut mbr, 0, 0, 0x83, 16, 48);
        put(&mut mbr, 0, 1, 0x0f, 64, 128);
        put(&mut mbr, 0, 2, 0x07, 192, 60);
        put(&mut mbr, 64 * 512, 0, 0x83, 2, 60);
        put(&mut mbr, 64 * 512, 1, 0x05, 64, 64);
        put(&mut mbr, 128 * 512, 0, 0x0c, 2, 60);
        // A protective MBR in front of the 512-byte GPT.
        let mut pmbr = gpt512.clone();
        mbr_read::tests::put_entry(&mut pmbr, 0, 0, mbr_read::PROTECTIVE, 1, 255);
        vec![gpt512, gpt4k, mbr, pmbr]
    }

    #[test]
    fn tables_never_panic() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let seeds = seeds();
        for seed in &seeds {
            partition_table(seed);
        }
        for i in 0..2000 {
            let seed = &seeds[i % seeds.len()];
            partition_table(&mutate(&mut rng, seed));
        }
        for len in [0usize, 1, 511, 512, 513, 4096, 8192] {
            let mut v = vec![0u8; len];
            for b in &mut v {
                *b = rng.next() as u8;
            }
            partition_table(&v);
        }
    }

    #[test]
    fn signatures_never_panic() {
        let mut rng = XorShift(42);
        for _ in 0..3000 {
            let len = [0usize, 7, 512, 1100, 4096, 70_000, 140_000][rng.below(7)];
            let mut v = vec![0u8; len];
            // Mostly zeros with a few planted magics, so the deeper branches run.
            for _ in 0..rng.below(32) {
                if len > 0 {
                    let at = rng.below(len);
                    v[at] = rng.next() as u8;
                }
            }
            let magics: [(&[u8], usize); 6] = [
                (b"\x53\xef", 1024 + 56),
                (b"\xfc\x4e\x2b\xa9", 4096),
                (b"NTFS    ", 3),
                (b"_BHRfS_M", 0x10040),
                (b"SWAPSPACE2", 4086),
                (b"\xeb\x3c\x90", 0),
            ];
            let (m, at) = magics[rng.below(magics.len())];
            if at + m.len() <= len {
                v[at..at + m.len()].copy_from_slice(m);
            }
            signature(&v);
        }
    }
}
