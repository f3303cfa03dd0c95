//! The capture store: a FAT32 volume (an image, a partition, or found on a whole disk by its
//! locator) whose `capture/` directory holds a capture as zstd-compressed, checksummed
//! records in segment files of bounded size, a manifest, and while a capture runs, a resume
//! state. The byte layout is in `docs/store-format.md` ("Capture store").
//!
//! - [`volume`]: opening the store, small files, removing a capture.
//! - [`format`](mod@format): segment and record headers.
//! - [`manifest`]: the manifest and its checks.
//! - `writer`: cutting records into segments (used by [`crate::migrate::capture`]).
//! - `pipeline`: reading, compressing and writing in parallel (used by the capture).
//! - `progress`, `resume`: the resume state written after each complete segment, and
//!   continuing from it.
//! - [`reader`]: streaming one entry out (restore).
//! - [`verify`](mod@verify): reading everything back.

mod fat;
pub mod format;
mod io;
pub mod manifest;
pub(crate) mod pipeline;
pub(crate) mod progress;
pub mod reader;
pub(crate) mod resume;
pub mod verify;
pub mod volume;
pub(crate) mod writer;

#[cfg(test)]
mod tests;

pub use manifest::{DataLoc, Manifest, SegmentInfo, StoredEntry, Totals};
pub use reader::{EntrySink, FileSink};
pub use verify::{verify, verify_with_progress, VerifyError, VerifyReport};
pub use volume::{CaptureState, Store, StoreError, StoreKind};
