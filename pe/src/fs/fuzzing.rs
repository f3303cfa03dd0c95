//! The `xattr` and `lznt1` fuzz targets' entries. `xattr`: the parsers of extended attributes and ACLs (bytes from an
//! ext4 inode or attribute block) and of names (a store's `{ "hex" }` and shown forms). Any
//! bytes give a value or an error, never a panic; what parses re-encodes to what it came from.

use super::bytes::{self, Bytes};
use super::lznt1;
use super::xattr::{self, Xattrs};

/// Bytes → every parser here; panics when a round trip does not hold.
pub fn xattrs(data: &[u8]) {
    if let Ok(raw) = xattr::parse_ibody(data) {
        let _ = Xattrs::from_ext4(raw);
    }
    if let Ok(raw) = xattr::parse_block(data) {
        let _ = Xattrs::from_ext4(raw);
    }
    if let Ok(acl) = xattr::parse_ext4_acl(data) {
        let v = xattr::encode_vfs_acl(&acl).expect("ext4 named entries carry an id");
        let back = xattr::parse_vfs_acl(&v).expect("an encoded ACL parses");
        assert!(back.len() <= acl.len());
    }
    if let Ok(acl) = xattr::parse_vfs_acl(data) {
        let v = xattr::encode_vfs_acl(&acl).expect("named entries carry an id");
        assert_eq!(xattr::parse_vfs_acl(&v).map(|a| a.len() <= acl.len()), Ok(true));
    }
    let text = String::from_utf8_lossy(data);
    if let Some(b) = bytes::unshow(&text) {
        assert_eq!(bytes::show(&b), text);
    }
    assert_eq!(bytes::unshow(&bytes::show(data)).as_deref(), Some(data));
    if let Some(units) = bytes::utf16_from_wtf8(data) {
        assert_eq!(bytes::wtf8_from_utf16(units), data);
    }
    if let Ok(b) = serde_json::from_slice::<Bytes>(data) {
        let json = serde_json::to_vec(&b).expect("bytes serialise");
        assert_eq!(serde_json::from_slice::<Bytes>(&json).expect("and read back"), b);
    }
}

/// Bytes → LZNT1 decompression of one compression unit (the first byte picks the output
/// length, 0 to 64 KiB): never a panic, never more output than the unit.
pub fn lznt1(data: &[u8]) {
    let Some((&len, src)) = data.split_first() else { return };
    let mut out = vec![0u8; usize::from(len) * 256 + usize::from(len & 1)];
    if let Ok(n) = lznt1::decompress_unit(src, &mut out) {
        assert!(n <= out.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::fuzzing::tests::XorShift;

    /// The lznt1 target over compressed chunks, their mutations and random bytes.
    #[test]
    fn the_lznt1_target_never_panics() {
        let mut rng = XorShift(0x5eed_12e1);
        // 0xFF: a 64 KiB unit; a compressed chunk of "abc" repeated (header 0xB00C: compressed,
        // 13 bytes), an uncompressed chunk (0x3FFF header, flag clear) and a truncated one.
        let seeds: Vec<Vec<u8>> = vec![
            vec![0xFF, 0x0C, 0xB0, 0x00, b'a', b'b', b'c', 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
            [&[0x10u8, 0xFF, 0x3F][..], &[b'x'; 4096][..]].concat(),
            vec![0x01, 0xFF, 0xBF, 1, 2],
        ];
        for seed in &seeds {
            lznt1(seed);
            for _ in 0..500 {
                let mut m = seed.clone();
                for _ in 0..1 + rng.next() % 4 {
                    let i = (rng.next() as usize) % m.len();
                    m[i] = rng.next() as u8;
                }
                lznt1(&m);
            }
        }
        for _ in 0..500 {
            let len = (rng.next() % 600) as usize;
            let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            lznt1(&data);
        }
    }

    /// The fuzz target's body over random and mutated inputs (stable Rust, no libFuzzer).
    #[test]
    fn the_xattr_target_never_panics() {
        let mut rng = XorShift(0x5eed_ea02);
        let mut area = xattr::EXT4_XATTR_MAGIC.to_le_bytes().to_vec();
        area.extend_from_slice(&[11, 1, 64, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0]);
        area.extend_from_slice(b"xdg.comment\0");
        area.resize(96, 0);
        let seeds: Vec<Vec<u8>> = vec![
            area,
            vec![1, 0, 0, 0, 1, 0, 6, 0, 2, 0, 6, 0, 0xd2, 4, 0, 0, 4, 0, 4, 0, 0x20, 0, 4, 0],
            vec![2, 0, 0, 0, 1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff],
            br#"{"hex":"6e61ef7665"}"#.to_vec(),
            b"na\\xefve".to_vec(),
            b"a\xed\xa0\x80b".to_vec(),
        ];
        for seed in &seeds {
            xattrs(seed);
            for _ in 0..300 {
                let mut m = seed.clone();
                for _ in 0..1 + rng.next() % 4 {
                    let i = (rng.next() as usize) % m.len().max(1);
                    if m.is_empty() {
                        m.push(rng.next() as u8);
                    } else {
                        m[i] = rng.next() as u8;
                    }
                }
                xattrs(&m);
            }
        }
        for _ in 0..500 {
            let len = (rng.next() % 200) as usize;
            let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            xattrs(&data);
        }
    }
}
