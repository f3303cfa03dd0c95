//! Installed-OS detection through the userspace filesystem readers.

pub mod linux;
pub mod windows;

use serde::{Deserialize, Serialize};

use crate::fs::FsReader;

/// An installed OS, as the inventory reports it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Os {
    /// `"windows"` or `"linux"`.
    pub family: String,
    pub name: String,
    pub version: Option<String>,
    pub users: Vec<String>,
}

/// The OS found on one filesystem, and anything worth a warning about it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Detection {
    pub os: Option<Os>,
    pub warnings: Vec<String>,
}

/// Looks for an installed OS on `fs`: Windows on NTFS, Linux on ext2/3/4.
pub fn detect(fs: &mut dyn FsReader) -> Detection {
    match fs.fs_type() {
        "ntfs" => windows::detect(fs),
        "ext2" | "ext3" | "ext4" => linux::detect(fs),
        _ => Detection::default(),
    }
}

/// The largest config file read into memory.
pub(crate) const SMALL_FILE_CAP: u64 = 1024 * 1024;
