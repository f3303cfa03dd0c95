//! Bytes as a whole disk (512- and 4096-byte sectors) → the GPT and MBR readers, including
//! the backup-header fallback and the logical-partition chain: never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    inplace::disk::fuzzing::partition_table(data);
});
