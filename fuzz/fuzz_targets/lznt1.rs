//! An NTFS-compressed file's compression unit: any bytes decompress or give an error, never a
//! panic, and never more than the unit.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    inplace::fs::fuzzing::lznt1(data);
});
