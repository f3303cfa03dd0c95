//! Bytes as an ext4 extended-attribute area or block, an ext4 or kernel ACL, a store's name (its
//! `{ "hex" }` JSON or shown form) or an NTFS WTF-8 name: a value or an error, never a panic, and
//! what parses goes back to what it came from.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    inplace::fs::fuzzing::xattrs(data);
});
