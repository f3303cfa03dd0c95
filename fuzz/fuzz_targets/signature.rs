//! Bytes as the head and tail of a partition → the content-signature detector: never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    inplace::disk::fuzzing::signature(data);
});
