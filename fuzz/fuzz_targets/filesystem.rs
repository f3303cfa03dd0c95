//! Bytes as one partition → the NTFS, ext4 and FAT readers and OS detection. The probe
//! catches reader panics, but a panic found here is still a bug to fix or to report upstream.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    inplace::inventory::fuzzing::filesystem(data);
});
