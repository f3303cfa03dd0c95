//! Names as filesystems hold them: bytes. An ext4 name is any bytes but `/` and NUL (an old
//! system or an unpacked Windows zip leaves Latin-1 or CP437 names behind), and an NTFS name is
//! UTF-16 that may hold unpaired surrogates ([`wtf8_from_utf16`] gives it as WTF-8, the way
//! Rust's `OsStr` holds it on Windows). Valid names are UTF-8 and look the same here; the
//! others stay exact all the way from the reader to the restored file.
//!
//! [`Bytes`] carries a name, path, link target or attribute value. It is shown escaped
//! ([`show`]): plain text when it is UTF-8 without a backslash, otherwise with `\` doubled and
//! every byte outside valid UTF-8 as `\xNN` — so two different names never show the same. In
//! JSON it is a string when it is UTF-8 and `{"hex": "…"}` otherwise
//! (`docs/store-format.md`, "Names that are not UTF-8").

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Exact bytes of a name, a path, a link target or an attribute value.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bytes(Vec<u8>);

impl Bytes {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Bytes {
        Bytes(bytes.into())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }

    /// The text, when the bytes are UTF-8.
    pub fn to_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// The text with U+FFFD for each byte outside valid UTF-8: what globs are matched against.
    pub fn lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.0)
    }

    /// `self/name` (`name` alone when `self` is empty; no second `/` after a trailing one).
    pub fn join(&self, name: &[u8]) -> Bytes {
        let mut v = self.0.clone();
        if !v.is_empty() && !v.ends_with(b"/") {
            v.push(b'/');
        }
        v.extend_from_slice(name);
        Bytes(v)
    }

    /// The last `/`-separated component.
    pub fn file_name(&self) -> &[u8] {
        self.0.rsplit(|b| *b == b'/').next().unwrap_or(&[])
    }
}

/// Shows `bytes` so a person can read it and no two names look alike: UTF-8 without `\` as it
/// is; otherwise `\` as `\\` and each byte outside valid UTF-8 as `\xNN` (lowercase hex).
pub fn show(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) if !s.contains('\\') => s.to_string(),
        _ => {
            let mut out = String::with_capacity(bytes.len() + 8);
            for chunk in bytes.utf8_chunks() {
                out.push_str(&chunk.valid().replace('\\', "\\\\"));
                for b in chunk.invalid() {
                    out.push_str(&format!("\\x{b:02x}"));
                }
            }
            out
        }
    }
}

/// The bytes [`show`] showed as `s`; `None` when `s` is not something `show` gives.
pub fn unshow(s: &str) -> Option<Vec<u8>> {
    if !s.contains('\\') {
        return Some(s.as_bytes().to_vec());
    }
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            Some(b'\\') => {
                out.push(b'\\');
                i += 2;
            }
            Some(b'x') => {
                let hex = std::str::from_utf8(b.get(i + 2..i + 4)?).ok()?;
                if !hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
                    return None;
                }
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 4;
            }
            _ => return None,
        }
    }
    (show(&out) == s).then_some(out)
}

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&show(&self.0))
    }
}

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&show(&self.0), f)
    }
}

impl From<&str> for Bytes {
    fn from(s: &str) -> Bytes {
        Bytes(s.as_bytes().to_vec())
    }
}

impl From<String> for Bytes {
    fn from(s: String) -> Bytes {
        Bytes(s.into_bytes())
    }
}

impl From<&String> for Bytes {
    fn from(s: &String) -> Bytes {
        Bytes(s.as_bytes().to_vec())
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Bytes {
        Bytes(v)
    }
}

impl From<&[u8]> for Bytes {
    fn from(v: &[u8]) -> Bytes {
        Bytes(v.to_vec())
    }
}

impl std::ops::Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl PartialEq<str> for Bytes {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for Bytes {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<[u8]> for Bytes {
    fn eq(&self, other: &[u8]) -> bool {
        self.0 == other
    }
}

/// Most bytes a `{"hex"}` value may stand for (a path is at most 4 KiB, an attribute value
/// 64 KiB); longer ones are refused when read.
pub const MAX_HEX_BYTES: usize = 1 << 20;

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(text) => s.serialize_str(text),
            Err(_) => {
                use serde::ser::SerializeMap;
                let hex: String = self.0.iter().map(|b| format!("{b:02x}")).collect();
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("hex", &hex)?;
                m.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Text(String),
            Hex { hex: String },
        }
        match Form::deserialize(d)? {
            Form::Text(s) => Ok(Bytes(s.into_bytes())),
            Form::Hex { hex } => from_hex(&hex).map(Bytes).map_err(serde::de::Error::custom),
        }
    }
}

fn from_hex(hex: &str) -> Result<Vec<u8>, String> {
    if !hex.len().is_multiple_of(2) || hex.len() / 2 > MAX_HEX_BYTES {
        return Err(format!("a {{\"hex\"}} value of {} digits (an even number, at most {} bytes)", hex.len(), MAX_HEX_BYTES));
    }
    let b = hex.as_bytes();
    let digit = |c: u8| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(format!("{:?} is not a hex digit", c as char)),
    };
    (0..b.len() / 2).map(|i| Ok(digit(b[2 * i])? << 4 | digit(b[2 * i + 1])?)).collect()
}

/// An NTFS name (UTF-16 code units) as WTF-8: UTF-8, where an unpaired surrogate takes the
/// three bytes UTF-8 would give its code point. Valid UTF-16 gives plain UTF-8.
pub fn wtf8_from_utf16(units: impl IntoIterator<Item = u16>) -> Vec<u8> {
    let mut out = Vec::new();
    for r in char::decode_utf16(units) {
        match r {
            Ok(c) => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            Err(e) => {
                let u = u32::from(e.unpaired_surrogate());
                out.extend_from_slice(&[0xE0 | (u >> 12) as u8, 0x80 | ((u >> 6) & 0x3F) as u8, 0x80 | (u & 0x3F) as u8]);
            }
        }
    }
    out
}

/// The UTF-16 code units of a WTF-8 name ([`wtf8_from_utf16`] backwards); `None` when the bytes
/// are not WTF-8 (so no NTFS name gives them).
pub fn utf16_from_wtf8(bytes: &[u8]) -> Option<Vec<u16>> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b0 = bytes[i];
        let (len, min, init) = match b0 {
            0x00..=0x7F => (1, 0, u32::from(b0)),
            0xC2..=0xDF => (2, 0x80, u32::from(b0 & 0x1F)),
            0xE0..=0xEF => (3, 0x800, u32::from(b0 & 0x0F)),
            0xF0..=0xF4 => (4, 0x1_0000, u32::from(b0 & 0x07)),
            _ => return None,
        };
        let tail = bytes.get(i + 1..i + len)?;
        let mut c = init;
        for t in tail {
            if t & 0xC0 != 0x80 {
                return None;
            }
            c = (c << 6) | u32::from(t & 0x3F);
        }
        if c < min || c > 0x10_FFFF {
            return None;
        }
        if c >= 0x1_0000 {
            let v = c - 0x1_0000;
            out.push(0xD800 | (v >> 10) as u16);
            out.push(0xDC00 | (v & 0x3FF) as u16);
        } else {
            out.push(c as u16);
        }
        i += len;
    }
    // A surrogate pair written as two 3-byte sequences is not WTF-8 (it would be a
    // supplementary character); refusing it keeps the mapping one to one.
    (wtf8_from_utf16(out.iter().copied()) == bytes).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn shows_names_readably_and_unambiguously() {
        assert_eq!(show(b"Documents/report.txt"), "Documents/report.txt");
        assert_eq!(show("Übersicht ✓".as_bytes()), "Übersicht ✓");
        assert_eq!(show(b"na\xefve-latin1.txt"), "na\\xefve-latin1.txt");
        // A UTF-8 name that looks like an escape is escaped too, so the two differ.
        assert_eq!(show(b"na\\xefve-latin1.txt"), "na\\\\xefve-latin1.txt");
        assert_eq!(unshow("na\\xefve-latin1.txt").unwrap(), b"na\xefve-latin1.txt");
        assert_eq!(unshow("na\\\\xefve-latin1.txt").unwrap(), b"na\\xefve-latin1.txt");
        assert_eq!(unshow("a\\q"), None);
        assert_eq!(unshow("\\x41"), None, "A is shown as A, never as \\x41");
        assert_eq!(Bytes::from("a/b").join(b"c"), "a/b/c");
        assert_eq!(Bytes::default().join(b"c"), "c");
        assert_eq!(Bytes::from("/").join(b"c"), "/c");
        assert_eq!(Bytes::new(b"a/b\xff".to_vec()).file_name(), b"b\xff");
    }

    #[test]
    fn json_is_text_when_utf8_and_hex_otherwise() {
        let text = Bytes::from("Documents/ü.txt");
        assert_eq!(serde_json::to_string(&text).unwrap(), "\"Documents/ü.txt\"");
        let raw = Bytes::new(b"na\xefve".to_vec());
        assert_eq!(serde_json::to_string(&raw).unwrap(), r#"{"hex":"6e61ef7665"}"#);
        assert_eq!(serde_json::from_str::<Bytes>(r#"{"hex":"6E61EF7665"}"#).unwrap(), raw);
        assert_eq!(serde_json::from_str::<Bytes>("\"a\\\\b\"").unwrap(), "a\\b");
        for bad in [r#"{"hex":"6e6"}"#, r#"{"hex":"zz"}"#, "12", r#"{"base64":"AA=="}"#] {
            assert!(serde_json::from_str::<Bytes>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn wtf8_keeps_unpaired_surrogates() {
        let units = [0x0061, 0xD800, 0x0062, 0xD83D, 0xDE00, 0xDC00];
        let w = wtf8_from_utf16(units);
        assert_eq!(w, b"a\xed\xa0\x80b\xf0\x9f\x98\x80\xed\xb0\x80");
        assert!(std::str::from_utf8(&w).is_err());
        assert_eq!(utf16_from_wtf8(&w).unwrap(), units);
        assert_eq!(wtf8_from_utf16("plain ü".encode_utf16()), "plain ü".as_bytes());
        // A pair split into two surrogate sequences, Latin-1 and overlong forms are not WTF-8.
        assert_eq!(utf16_from_wtf8(b"\xed\xa0\xbd\xed\xb8\x80"), None);
        assert_eq!(utf16_from_wtf8(b"na\xefve"), None);
        assert_eq!(utf16_from_wtf8(b"\xc0\xaf"), None);
    }

    proptest! {
        #[test]
        fn show_is_reversible(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(unshow(&show(&bytes)), Some(bytes.clone()));
            let b = Bytes::new(bytes);
            let json = serde_json::to_string(&b).unwrap();
            prop_assert_eq!(serde_json::from_str::<Bytes>(&json).unwrap(), b);
        }

        #[test]
        fn wtf8_round_trips_any_utf16(units in proptest::collection::vec(any::<u16>(), 0..32)) {
            let w = wtf8_from_utf16(units.iter().copied());
            prop_assert_eq!(utf16_from_wtf8(&w), Some(units));
        }

        #[test]
        fn utf16_from_wtf8_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = utf16_from_wtf8(&bytes);
            let _ = unshow(&String::from_utf8_lossy(&bytes));
        }
    }
}
