//! A capture store's segment header, record header and payload, and manifest, as a first-boot
//! restore reads them from a partition anyone could have written: any bytes give a value or an
//! error, never a panic; what decodes re-encodes to the same.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    inplace::migrate::store::fuzzing::store(data);
});
