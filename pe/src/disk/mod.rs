//! Disks: enumeration through sysfs, partition tables, content signatures, and writing.
//!
//! Reading never writes: [`device::Device`] opens files and devices `O_RDONLY`. Writing is
//! [`write`]'s alone.
//!
//! - [`sysfs`]: which disks exist, and what the kernel knows about them.
//! - [`device`]: positioned reads of a file, block device or buffer ([`device::ReadAt`]), and
//!   opening and sizing a disk.
//! - [`gpt_read`], [`mbr_read`] → [`table::Table`]: partition tables; [`detect`] picks the
//!   reader sector 0 calls for.
//! - [`signature`]: what a partition holds, from its first and last bytes.
//! - [`write`]: a disk opened for writing, byte ranges, GPT and MBR edits, telling the kernel.
//!
//! Turning a disk into an inventory entry (with the `fs` and `os` readers) is
//! `crate::inventory`'s: this layer sits below them.

pub mod attach;
pub mod detect;
pub mod device;
pub mod fuzzing;
pub mod gpt_read;
pub mod mount;
pub mod mbr_read;
pub mod signature;
pub mod sysfs;
pub mod table;
pub mod write;
