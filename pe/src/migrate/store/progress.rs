//! `capture/progress.json`: written after each complete segment so an interrupted capture
//! continues from the last complete segment instead of starting over.
//!
//! Replaced by writing `progress.new`, removing `progress.json`, then renaming (FAT has no
//! atomic replace): a cut between the steps leaves `progress.new`, which [`load`] takes.

use std::io;

use serde::{Deserialize, Serialize};

use super::format::{PROGRESS, PROGRESS_NEW};
use super::manifest::SegmentInfo;
use super::dir::{read_in, remove_if_present, write_in, Dir};

/// The state of an unfinished capture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumeState {
    pub format: u16,
    /// Fingerprint of the plan: a resume with another plan is refused.
    pub plan_sha256: String,
    /// Unix seconds when the first run started.
    pub started: u64,
    pub chunk_size: u32,
    pub segment_limit: u64,
    pub zstd_level: i32,
    /// Complete segments, in order.
    pub segments: Vec<DoneSegment>,
    /// Entries (before the last segment's `next`) whose data could not be read.
    pub failed: Vec<Failed>,
}

/// A complete segment and where the capture goes on after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoneSegment {
    #[serde(flatten)]
    pub info: SegmentInfo,
    pub next: Position,
}

/// A point in the capture: entry id and offset in its data. Every entry before `entry` is
/// finished; `entry`'s bytes before `offset` are in the segments so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Position {
    pub entry: u32,
    pub offset: u64,
}

/// An entry whose data could not be read during the capture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failed {
    pub id: u32,
    pub detail: String,
}

/// The saved state, if any: `progress.json`, or `progress.new` when a replace was cut short.
/// A file that does not parse counts as absent.
pub fn load(dir: &Dir<'_, '_>) -> io::Result<Option<ResumeState>> {
    for name in [PROGRESS, PROGRESS_NEW] {
        if let Some(bytes) = read_in(dir, name, 64 << 20)? {
            if let Ok(s) = serde_json::from_slice::<ResumeState>(&bytes) {
                return Ok(Some(s));
            }
        }
    }
    Ok(None)
}

/// Replaces the saved state.
pub fn save(dir: &Dir<'_, '_>, state: &ResumeState) -> io::Result<()> {
    let json = serde_json::to_vec_pretty(state).map_err(io::Error::other)?;
    write_in(dir, PROGRESS_NEW, &json)?;
    remove_if_present(dir, PROGRESS)?;
    dir.rename(PROGRESS_NEW, dir, PROGRESS)
}

/// Removes both state files (the capture is finished).
pub fn remove(dir: &Dir<'_, '_>) -> io::Result<()> {
    remove_if_present(dir, PROGRESS_NEW)?;
    remove_if_present(dir, PROGRESS)
}
