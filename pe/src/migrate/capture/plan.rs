//! What a capture copies and how: the plan selection made, the options, and the plan's
//! fingerprint that ties segments, resume state and manifest together.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::migrate::entry::{Entry, Skipped};
use crate::migrate::job_info::JobInfo;
use crate::migrate::select::Selection;
use crate::migrate::store::format::{self, CHUNK};

/// What to capture, in order; built by selection.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CapturePlan {
    /// Entries in capture order. Files are read with `read_file(&entry.source, ..)`;
    /// directories and links carry no data.
    pub entries: Vec<Entry>,
    /// Items selection left out, with the reason.
    pub skipped: Vec<Skipped>,
    /// The accounts whose profiles are captured.
    pub users: Vec<String>,
    /// The job, kept in the manifest.
    pub info: JobInfo,
}

impl CapturePlan {
    /// The plan for what `sel` selected, for the job `info`; the accounts selection read go
    /// into `info`.
    pub fn new(sel: Selection, mut info: JobInfo) -> CapturePlan {
        info.accounts = sel.accounts;
        CapturePlan {
            users: sel.users.iter().map(|u| u.name.clone()).collect(),
            entries: sel.entries,
            skipped: sel.skipped,
            info,
        }
    }
}

/// How to capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureOptions {
    /// Largest segment file in bytes (default 1 GiB; 64 KiB to 3 GiB).
    pub segment_limit: u64,
    /// zstd level (default 1).
    pub zstd_level: i32,
    /// Compression threads; 0: one per CPU.
    pub workers: usize,
    /// Drop the store's cached pages before verifying, so verification reads the device
    /// (default true).
    pub reread_from_device: bool,
    /// Read the capture back before returning (default true). `false` leaves that to the
    /// caller ([`crate::migrate::store::verify`]), as the job's verify step does.
    pub verify: bool,
    /// Tests: abort the process (no flush, no unmount: a power cut) after this many bytes
    /// were written into the store.
    #[doc(hidden)]
    pub abort_after_bytes: Option<u64>,
}

impl Default for CaptureOptions {
    fn default() -> Self {
        CaptureOptions {
            segment_limit: format::DEFAULT_SEGMENT_LIMIT,
            zstd_level: 1,
            workers: 0,
            reread_from_device: true,
            verify: true,
            abort_after_bytes: None,
        }
    }
}

/// Fingerprint of what decides the store's bytes: entries, users and layout options.
pub fn plan_fingerprint(plan: &CapturePlan, opts: &CaptureOptions) -> String {
    #[derive(Serialize)]
    struct Fp<'a> {
        format: u16,
        chunk: u32,
        segment_limit: u64,
        zstd_level: i32,
        users: &'a [String],
        entries: &'a [Entry],
    }
    let mut sha = Sha256::new();
    let fp = Fp {
        format: format::VERSION,
        chunk: CHUNK,
        segment_limit: opts.segment_limit,
        zstd_level: opts.zstd_level,
        users: &plan.users,
        entries: &plan.entries,
    };
    // Serialising plain data into a hasher cannot fail.
    let _ = serde_json::to_writer(&mut sha, &fp);
    format!("{:x}", sha.finalize())
}

/// Unix seconds now.
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
