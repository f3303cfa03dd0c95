//! exFAT: only the volume label, the UTF-16 name of the root directory's volume-label entry
//! (type 0x83). inplace reads no files from exFAT.

use super::range::RangeReader;

/// The most root-directory clusters searched for the label entry.
const LABEL_CLUSTERS: usize = 64;

/// The label of the exFAT volume in `range`; `None` when it has none or the boot sector and
/// chain do not hold together.
pub fn label(range: &mut RangeReader) -> Option<String> {
    let mut b = [0u8; 512];
    range.read_exact_at(0, &mut b).ok()?;
    if &b[3..11] != b"EXFAT   " {
        return None;
    }
    let le32 = |at: usize| u64::from(u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]));
    let (bps_shift, spc_shift) = (u32::from(b[108]), u32::from(b[109]));
    // exFAT allows 512-byte to 4 KiB sectors and clusters up to 32 MiB.
    if !(9..=12).contains(&bps_shift) || bps_shift + spc_shift > 25 {
        return None;
    }
    let bps = 1u64 << bps_shift;
    let cluster_bytes = bps << spc_shift;
    let (fat, heap, mut c) = (le32(80) * bps, le32(88) * bps, le32(96));
    for _ in 0..LABEL_CLUSTERS {
        if !(2..0xFFFF_FFF7).contains(&c) {
            return None;
        }
        let mut dir = vec![0u8; cluster_bytes as usize];
        range.read_exact_at(heap.checked_add((c - 2).checked_mul(cluster_bytes)?)?, &mut dir).ok()?;
        for e in dir.chunks_exact(32) {
            match e[0] {
                0x00 => return None,
                0x83 => return decode(e),
                _ => {}
            }
        }
        let mut next = [0u8; 4];
        range.read_exact_at(fat.checked_add(c * 4)?, &mut next).ok()?;
        c = u64::from(u32::from_le_bytes(next));
    }
    None
}

/// The name of a volume-label entry: `e[1]` UTF-16 units (at most 11) from byte 2.
fn decode(e: &[u8]) -> Option<String> {
    let n = usize::from(e[1]).min(11);
    let units: Vec<u16> = e[2..2 + 2 * n].chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
    let s = String::from_utf16_lossy(&units);
    (!s.is_empty()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_entry_decodes_utf16_and_caps_at_eleven() {
        let mut e = [0u8; 32];
        e[0] = 0x83;
        e[1] = 3;
        for (i, u) in "Łód".encode_utf16().enumerate() {
            e[2 + 2 * i..4 + 2 * i].copy_from_slice(&u.to_le_bytes());
        }
        assert_eq!(decode(&e).as_deref(), Some("Łód"));
        e[1] = 200;
        assert!(decode(&e).is_some());
        e[1] = 0;
        assert_eq!(decode(&e), None);
    }
}
