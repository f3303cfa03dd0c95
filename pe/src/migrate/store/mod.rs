//! The capture store: a FAT32 volume (an image, a partition, or found on a whole disk by its
//! locator) whose `capture/` directory holds a capture as zstd-compressed, checksummed
//! records in segment files of bounded size, a manifest, and while a capture runs, a resume
//! state; a job with several sources puts its further captures in `capture.2/`, `capture.3/`,
//! … ([`CaptureName`]), each laid out the same and on its own. `journal/` holds the event log.
//! The byte layout is in `docs/store-format.md` ("Capture store").
//!
//! A [`Store`] acts on one capture at a time: the first when opened, another after
//! [`Store::select`]; [`Store::captures`] lists them.
//!
//! - [`volume`]: opening the store, mounting it, removing a capture; `io`, `fat`: the bytes
//!   under it; `dir`: small files in one of its directories.
//! - [`error`]: what goes wrong, with hints.
//! - [`format`](mod@format): segment and record headers; `record`: one record unpacked.
//! - [`manifest`]: the manifest and its checks.
//! - `writer`: cutting records into segments (used by [`crate::migrate::capture`]).
//! - `progress`: the resume state written after each complete segment.
//! - [`reader`]: streaming one entry out (restore).
//! - [`verify`](mod@verify): reading everything back.
//! - [`journal`]: the event log.

pub(crate) mod dir;
pub mod error;
mod fat;
pub mod fuzzing;
pub mod format;
mod io;
pub mod journal;
pub mod manifest;
pub(crate) mod progress;
pub mod reader;
mod record;
pub mod verify;
pub mod volume;
pub(crate) mod writer;

#[cfg(test)]
mod tests;

pub use error::StoreError;
pub use format::CaptureName;
pub use journal::EventLog;
pub use manifest::{DataLoc, Manifest, SegmentInfo, StoredEntry, Totals};
pub use reader::{EntrySink, FileSink};
pub use verify::{verify, VerifyReport};
pub use volume::{CaptureState, Store, StoreKind};
