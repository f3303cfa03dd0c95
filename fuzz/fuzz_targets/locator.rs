//! The store locator and table-snapshot parsers take bytes found by scanning a disk: any bytes
//! must give a value or an error, never a panic, and a decoded locator must re-encode to the
//! same bytes.
#![no_main]

use inplace::locator::Locator;
use inplace::locator::Snapshot;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(l) = Locator::decode(data) {
        assert_eq!(&l.encode()[..], data);
    }
    let _ = Snapshot::decode(data);
});
