//! The `hive` fuzz target's entry: a registry hive as the Windows detection reads it from
//! `Windows\System32\config` — the version, the profile list, the SAM accounts and the
//! accounts made of them. Any bytes give a value or an error, never a panic.

use super::{hive, windows};

/// Bytes → every reader of a hive, as SOFTWARE and as SAM.
pub fn hive(data: &[u8]) {
    let Ok((h, _)) = hive::open(data) else { return };
    let version = hive::version(&h).unwrap_or_default();
    let _ = version.describe();
    let profiles = hive::profiles(&h, version.system_drive()).unwrap_or_default();
    let sam = hive::sam(&h).unwrap_or_default();
    let accounts = windows::accounts(&profiles, &sam);
    let _ = windows::orphans(&["a".into()], &accounts, version.system_drive());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::fuzzing::tests::XorShift;

    /// Inputs the fuzz target crashed nt-hive 0.3.0 with, fixed in the vendored copy.
    #[test]
    fn known_hive_crashers_stay_fixed() {
        // A subkey list pointing at data offset u32::MAX hit an `assert!`.
        hive(include_bytes!("crashers/hive-data-offset-max"));
        // A profile's LocalProfileLoadTime past the year 9999 made humantime's RFC 3339 panic.
        hive(include_bytes!("crashers/hive-load-time-year-10000"));
    }

    /// hivex's empty hive (the fixtures' starting point) and mutations of it, random bytes,
    /// and a `regf` header over garbage (stable Rust, no libFuzzer).
    #[test]
    fn the_hive_target_never_panics() {
        let minimal = include_bytes!("../../../tests/data/hivex/minimal").to_vec();
        let mut rng = XorShift(0x5eed_41fe);
        let mut regf = vec![0u8; 8192];
        regf[..4].copy_from_slice(b"regf");
        for seed in [minimal, regf] {
            hive(&seed);
            for _ in 0..400 {
                let mut m = seed.clone();
                for _ in 0..1 + rng.next() % 8 {
                    let i = (rng.next() as usize) % m.len();
                    m[i] = rng.next() as u8;
                }
                hive(&m);
            }
        }
        for _ in 0..300 {
            let len = (rng.next() % 9000) as usize;
            let mut data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if data.len() >= 4 {
                data[..4].copy_from_slice(b"regf");
            }
            hive(&data);
        }
    }
}
