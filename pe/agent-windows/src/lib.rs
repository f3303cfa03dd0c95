//! The Windows restore agent (`inplace.exe`).
//!
//! At a user's first logon on the new Windows, the agent moves that user's staged files (written
//! by the PE under `C:\ProgramData\inplace\staged\<user>\`) into the user's profile and Known
//! Folders, verifies each against the manifest and writes a report (`docs/windows.md`).
//!
//! The core (manifest, path checks, mapping, conflicts, moving, verifying, the report) is
//! portable and tested on Linux too; `platform` holds what only Windows has.
//!
//! Once every user is restored, `cleanup` keeps, empties or deletes the store partition.
//! `reporting` sends the job's events and the restore reports to the preset's collector.

pub mod check;
pub mod cleanup;
pub mod cli;
pub mod conflict;
pub mod files;
pub mod folders;
pub mod hash;
pub mod job;
pub mod manifest;
pub mod mapping;
pub mod pending;
pub mod platform;
pub mod report;
pub mod reporting;
pub mod restore;
pub mod times;
pub mod transfer;
