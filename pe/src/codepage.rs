//! OEM code pages for FAT names and labels: the volume does not record which one wrote it,
//! so CP437 is the default and the kernel parameter `inplace.codepage=` (or
//! `inplace inspect --codepage`) names another. Bytes that no code page makes text of (control
//! characters) are shown as hex.

use std::sync::atomic::{AtomicU16, Ordering};

/// The code pages known here.
pub const KNOWN: [u16; 2] = [437, 850];

static CURRENT: AtomicU16 = AtomicU16::new(437);

/// A code page inplace does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("code page {0} is not known; use one of {KNOWN:?}")]
pub struct Unknown(pub u16);

/// Makes `cp` the code page of FAT labels from now on.
pub fn set(cp: u16) -> Result<(), Unknown> {
    if !KNOWN.contains(&cp) {
        return Err(Unknown(cp));
    }
    CURRENT.store(cp, Ordering::Relaxed);
    Ok(())
}

/// The code page in use.
pub fn current() -> u16 {
    CURRENT.load(Ordering::Relaxed)
}

/// `bytes` decoded through code page `cp`; `None` when a byte is a control character (below
/// 0x20, or 0x7F) or `cp` is unknown.
pub fn decode(bytes: &[u8], cp: u16) -> Option<String> {
    let high: &[char; 128] = match cp {
        437 => &CP437,
        850 => &CP850,
        _ => return None,
    };
    bytes
        .iter()
        .map(|&b| match b {
            0..=0x1F | 0x7F => None,
            0x20..=0x7E => Some(b as char),
            _ => Some(high[usize::from(b - 0x80)]),
        })
        .collect()
}

/// A FAT label's 11 raw bytes as text: 0x05 first stands for 0xE5, trailing spaces go, and
/// bytes no code page makes text of are shown as `hex:…`. `None` for an empty label and for
/// mkfs's "NO NAME" marker.
pub fn fat_label(raw: &[u8], cp: u16) -> Option<String> {
    let mut b = raw.to_vec();
    if b.first() == Some(&0x05) {
        b[0] = 0xE5;
    }
    let end = b.iter().rposition(|&c| c != b' ' && c != 0).map_or(0, |i| i + 1);
    let b = &b[..end];
    if b.is_empty() || b == b"NO NAME" {
        return None;
    }
    Some(decode(b, cp).unwrap_or_else(|| format!("hex:{}", b.iter().map(|c| format!("{c:02x}")).collect::<String>())))
}

#[rustfmt::skip]
const CP437: [char; 128] = [
    '\u{00c7}', '\u{00fc}', '\u{00e9}', '\u{00e2}', '\u{00e4}', '\u{00e0}', '\u{00e5}', '\u{00e7}', '\u{00ea}', '\u{00eb}', '\u{00e8}', '\u{00ef}', '\u{00ee}', '\u{00ec}', '\u{00c4}', '\u{00c5}',
    '\u{00c9}', '\u{00e6}', '\u{00c6}', '\u{00f4}', '\u{00f6}', '\u{00f2}', '\u{00fb}', '\u{00f9}', '\u{00ff}', '\u{00d6}', '\u{00dc}', '\u{00a2}', '\u{00a3}', '\u{00a5}', '\u{20a7}', '\u{0192}',
    '\u{00e1}', '\u{00ed}', '\u{00f3}', '\u{00fa}', '\u{00f1}', '\u{00d1}', '\u{00aa}', '\u{00ba}', '\u{00bf}', '\u{2310}', '\u{00ac}', '\u{00bd}', '\u{00bc}', '\u{00a1}', '\u{00ab}', '\u{00bb}',
    '\u{2591}', '\u{2592}', '\u{2593}', '\u{2502}', '\u{2524}', '\u{2561}', '\u{2562}', '\u{2556}', '\u{2555}', '\u{2563}', '\u{2551}', '\u{2557}', '\u{255d}', '\u{255c}', '\u{255b}', '\u{2510}',
    '\u{2514}', '\u{2534}', '\u{252c}', '\u{251c}', '\u{2500}', '\u{253c}', '\u{255e}', '\u{255f}', '\u{255a}', '\u{2554}', '\u{2569}', '\u{2566}', '\u{2560}', '\u{2550}', '\u{256c}', '\u{2567}',
    '\u{2568}', '\u{2564}', '\u{2565}', '\u{2559}', '\u{2558}', '\u{2552}', '\u{2553}', '\u{256b}', '\u{256a}', '\u{2518}', '\u{250c}', '\u{2588}', '\u{2584}', '\u{258c}', '\u{2590}', '\u{2580}',
    '\u{03b1}', '\u{00df}', '\u{0393}', '\u{03c0}', '\u{03a3}', '\u{03c3}', '\u{00b5}', '\u{03c4}', '\u{03a6}', '\u{0398}', '\u{03a9}', '\u{03b4}', '\u{221e}', '\u{03c6}', '\u{03b5}', '\u{2229}',
    '\u{2261}', '\u{00b1}', '\u{2265}', '\u{2264}', '\u{2320}', '\u{2321}', '\u{00f7}', '\u{2248}', '\u{00b0}', '\u{2219}', '\u{00b7}', '\u{221a}', '\u{207f}', '\u{00b2}', '\u{25a0}', '\u{00a0}',
];

#[rustfmt::skip]
const CP850: [char; 128] = [
    '\u{00c7}', '\u{00fc}', '\u{00e9}', '\u{00e2}', '\u{00e4}', '\u{00e0}', '\u{00e5}', '\u{00e7}', '\u{00ea}', '\u{00eb}', '\u{00e8}', '\u{00ef}', '\u{00ee}', '\u{00ec}', '\u{00c4}', '\u{00c5}',
    '\u{00c9}', '\u{00e6}', '\u{00c6}', '\u{00f4}', '\u{00f6}', '\u{00f2}', '\u{00fb}', '\u{00f9}', '\u{00ff}', '\u{00d6}', '\u{00dc}', '\u{00f8}', '\u{00a3}', '\u{00d8}', '\u{00d7}', '\u{0192}',
    '\u{00e1}', '\u{00ed}', '\u{00f3}', '\u{00fa}', '\u{00f1}', '\u{00d1}', '\u{00aa}', '\u{00ba}', '\u{00bf}', '\u{00ae}', '\u{00ac}', '\u{00bd}', '\u{00bc}', '\u{00a1}', '\u{00ab}', '\u{00bb}',
    '\u{2591}', '\u{2592}', '\u{2593}', '\u{2502}', '\u{2524}', '\u{00c1}', '\u{00c2}', '\u{00c0}', '\u{00a9}', '\u{2563}', '\u{2551}', '\u{2557}', '\u{255d}', '\u{00a2}', '\u{00a5}', '\u{2510}',
    '\u{2514}', '\u{2534}', '\u{252c}', '\u{251c}', '\u{2500}', '\u{253c}', '\u{00e3}', '\u{00c3}', '\u{255a}', '\u{2554}', '\u{2569}', '\u{2566}', '\u{2560}', '\u{2550}', '\u{256c}', '\u{00a4}',
    '\u{00f0}', '\u{00d0}', '\u{00ca}', '\u{00cb}', '\u{00c8}', '\u{0131}', '\u{00cd}', '\u{00ce}', '\u{00cf}', '\u{2518}', '\u{250c}', '\u{2588}', '\u{2584}', '\u{00a6}', '\u{00cc}', '\u{2580}',
    '\u{00d3}', '\u{00df}', '\u{00d4}', '\u{00d2}', '\u{00f5}', '\u{00d5}', '\u{00b5}', '\u{00fe}', '\u{00de}', '\u{00da}', '\u{00db}', '\u{00d9}', '\u{00fd}', '\u{00dd}', '\u{00af}', '\u{00b4}',
    '\u{00ad}', '\u{00b1}', '\u{2017}', '\u{00be}', '\u{00b6}', '\u{00a7}', '\u{00f7}', '\u{00b8}', '\u{00b0}', '\u{00a8}', '\u{00b7}', '\u{00b9}', '\u{00b3}', '\u{00b2}', '\u{25a0}', '\u{00a0}',
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_decode_through_the_code_page() {
        assert_eq!(fat_label(b"\x05DELA      ", 850).as_deref(), Some("\u{d5}DELA"));
        assert_eq!(fat_label(b"\x05DELA      ", 437).as_deref(), Some("\u{3c3}DELA"));
        assert_eq!(fat_label(b"CAF\x90       ", 437).as_deref(), Some("CAF\u{c9}"));
        assert_eq!(fat_label(b"NO NAME    ", 437), None);
        assert_eq!(fat_label(b"           ", 437), None);
        assert_eq!(fat_label(b"A\x01B       ", 437).as_deref(), Some("hex:410142"));
        assert_eq!(decode(b"x", 1252), None);
        assert!(set(1252).is_err());
    }
}
