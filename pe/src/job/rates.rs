//! How long a job will take, from a rate measured on the disk itself: a timed sequential read
//! of up to [`SAMPLE`] bytes (or [`SAMPLE_TIME`]) from the middle of the disk while planning.
//! The estimate's basis, stated to the person: every byte the job moves crosses that disk once
//! per read or write, at that rate:
//! - capture: the profile bytes read, and written into the store (2× the bytes to save);
//! - verify: the store read back (1×);
//! - lay-down: the image's logical bytes written (1×);
//! - a remote image: downloaded too, at a rate that is not measured (not counted).
//!
//! Writes are taken to be as fast as reads; compression and the network make it a guess.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::plan::JobPlan;

/// Bytes read to measure.
pub const SAMPLE: u64 = 64 << 20;
/// Longest time spent measuring.
pub const SAMPLE_TIME: Duration = Duration::from_secs(2);

/// A measured rate and the time estimate made from it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// Bytes per second read from the disk.
    pub read_rate: f64,
    /// Seconds the PE's part of the job is expected to take.
    pub secs: f64,
}

/// Reads up to [`SAMPLE`] bytes from the middle of `disk` and returns bytes per second, or
/// `None` when nothing could be read.
pub fn measure(disk: &Path) -> Option<f64> {
    let mut f = std::fs::File::open(disk).ok()?;
    let len = f.seek(SeekFrom::End(0)).ok()?;
    let start = (len / 2).saturating_sub(SAMPLE / 2) & !((1 << 20) - 1);
    f.seek(SeekFrom::Start(start)).ok()?;
    let mut buf = vec![0u8; 1 << 20];
    let (t, mut read) = (Instant::now(), 0u64);
    while read < SAMPLE && t.elapsed() < SAMPLE_TIME {
        match f.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => read += n as u64,
        }
    }
    let secs = t.elapsed().as_secs_f64();
    (read > 0 && secs > 0.0).then(|| read as f64 / secs)
}

/// The bytes the job moves across the disk, by the basis above.
pub fn bytes_moved(plan: &JobPlan) -> u64 {
    let (_, bytes) = plan.totals();
    bytes * 3 + plan.image.logical_bytes
}

/// The estimate for `plan` at `read_rate` bytes per second.
pub fn estimate(plan: &JobPlan, read_rate: f64) -> Estimate {
    let secs = if read_rate > 0.0 { bytes_moved(plan) as f64 / read_rate } else { 0.0 };
    Estimate { read_rate, secs }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_read_and_timed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("disk");
        std::fs::write(&p, vec![7u8; 3 << 20]).unwrap();
        let r = measure(&p).unwrap();
        assert!(r > 0.0);
        assert_eq!(measure(&dir.path().join("none")), None);
    }
}
