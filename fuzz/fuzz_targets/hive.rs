//! A Windows registry hive read from an old OS's `Windows\System32\config`: any bytes give the
//! version, profiles and accounts or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    inplace::os::fuzzing::hive(data);
});
