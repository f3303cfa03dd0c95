//! The store's identity on its disk, independent of the partition table: the [`record`] a
//! carve writes twice into the store partition, the [`scan`] that finds it again at 1 MiB
//! boundaries, the [`snapshot`] of the original table kept beside it, the [`rollback`] that
//! puts that table back, and the partitions as that table had them ([`original`]). Byte
//! layouts in `docs/store-format.md`.

pub mod original;
pub mod record;
pub mod rollback;
pub mod scan;
pub mod snapshot;

pub use record::{Locator, LocatorError, TableKind};
pub use scan::{find, locate, locate_at, Found, LocateError};
pub use snapshot::Snapshot;

/// Stores start and end on this boundary; [`scan`] looks for locators at each one.
pub const ALIGN: u64 = 1 << 20;

/// Bytes at the end of the store partition that are not part of the FAT32 volume: the saved
/// partition table, the job's journal reserve and the tail copy of the locator live there.
pub const STORE_TAIL: u64 = 1 << 20;

/// The job's journal reserve: the bytes just before the partition's last sector (where the
/// tail copy of the locator is). A carve leaves them as they are: the job writes its journal
/// there before the carve begins.
pub const RESERVE: u64 = 64 << 10;

/// Where the reserve starts, from the start of a store partition of `len` bytes with
/// `sector`-byte sectors.
pub fn reserve_offset(len: u64, sector: u32) -> Option<u64> {
    len.checked_sub(u64::from(sector))?.checked_sub(RESERVE)
}
