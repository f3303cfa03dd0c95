//! inplace: re-image a PC in place while keeping its user's data.
//!
//! The flow reads top to bottom: `boot` (init, modules, console) → `disk` (devices, partition
//! tables, signatures, writing) → `fs` (userspace filesystem readers) → `os` (installed-OS
//! detection) → `inventory` (what the PE and `inspect` report) → `locator` (the store's
//! identity on its disk) → `carve` (planning and making the store) → `migrate` / `image` →
//! `ui` (TUI and plain output) → `cli`. `codepage` (the OEM code pages of FAT labels) serves
//! `disk` and `fs` alike.

pub mod boot;
pub mod carve;
pub mod cli;
pub mod codepage;
pub mod command;
pub mod disk;
pub mod error;
pub mod files;
pub mod fs;
pub mod handoff;
pub mod image;
pub mod inventory;
pub mod job;
pub mod locator;
pub mod migrate;
pub mod net;
pub mod os;
pub mod preset;
pub mod preset_sig;
pub mod progress;
pub mod report;
pub mod step;
pub mod ui;
pub mod units;
