//! Manifest times (ns since 1970) to and from `SystemTime`, and setting them on a path.

use std::fs::FileTimes;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A manifest time as a `SystemTime`.
pub fn from_ns(ns: i64) -> SystemTime {
    if ns >= 0 {
        UNIX_EPOCH + Duration::from_nanos(ns as u64)
    } else {
        UNIX_EPOCH - Duration::from_nanos(ns.unsigned_abs())
    }
}

/// A `SystemTime` as manifest ns (saturating).
pub fn to_ns(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
    }
}

/// Sets the modified time (and on Windows the creation time) of a file or folder.
pub fn set(path: &Path, mtime_ns: Option<i64>, created_ns: Option<i64>) -> io::Result<()> {
    let Some(m) = mtime_ns else { return Ok(()) };
    let times = FileTimes::new().set_modified(from_ns(m));
    let times = crate::platform::with_created(times, created_ns.map(from_ns));
    crate::platform::open_for_times(path)?.set_times(times)
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip() {
        for ns in [0i64, 100, 1_700_000_000_123_456_700, -86_400_000_000_000] {
            assert_eq!(super::to_ns(super::from_ns(ns)), ns);
        }
    }
}
