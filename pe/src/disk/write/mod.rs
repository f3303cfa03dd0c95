//! Everything that writes a disk: opening it for writing, byte I/O, and partition-table edits.
//!
//! - [`device`]: [`RwDevice`], a disk opened read-write (positioned writes that name the
//!   device and offset on failure, sync, reads back through the same descriptor), and the
//!   [`WriteAt`] trait it shares with a plain [`std::fs::File`].
//! - [`range`]: [`RwRange`], `Read + Write + Seek` over a byte range, for fatfs.
//! - [`patch`]: a table write as data (exact bytes at exact offsets), written, synced and read
//!   back in one step; [`patch::Overlay`] lets the writers compute it without writing.
//! - [`gpt`], [`mbr`]: table edits that change only what they mean to change.
//! - [`blkpg`]: telling the kernel about a changed table of a live block device.

pub mod blkpg;
pub mod device;
pub mod gpt;
pub mod mbr;
pub mod patch;
pub mod range;

pub use device::{RwDevice, WriteAt};
pub use patch::Patch;
pub use range::RwRange;
