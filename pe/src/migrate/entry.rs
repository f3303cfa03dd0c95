//! What a capture records about each file: the planned entries that selection produces, the
//! items it leaves out with the reason, and the settings it carries.

use serde::{Deserialize, Serialize};

pub use crate::fs::Time;

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    File,
    Dir,
    /// A symbolic link or an NTFS junction; `target` holds where it points.
    Symlink,
    /// A second name of a file captured earlier; `target` holds that entry's `path` and the
    /// entry carries no data.
    HardLink,
}

/// One captured file, directory or link.
///
/// `path` is relative and `/`-separated: to the user's profile directory when `user` is set
/// (`Documents/report.txt`), to the root of the new OS otherwise (`etc/hostname`). It is
/// untrusted when read back from a store: restore checks it before use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Where it was on the old filesystem (`/Users/Carol/Documents/report.txt`), for reports.
    pub source: String,
    /// The account whose profile holds it, by name as on the old OS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    pub path: String,
    pub kind: Kind,
    /// Data length in bytes (files only; 0 otherwise).
    pub size: u64,
    /// Permission bits (`0o644`); `None` where the old filesystem has none (NTFS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    /// Owner and group by name, as the old OS named them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Numeric ids on the old OS (ext4), for the report only: restore maps by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime: Option<Time>,
    /// NTFS `FILE_ATTRIBUTE_*` bits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<u32>,
    /// Symlink target, or for a hard link the `path` of the entry it is another name of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// Why an item on the old filesystem is not in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Why {
    /// An exclude rule matched (`rule` is the glob).
    Excluded { rule: String },
    /// Over a size cap set by the rules.
    OverCap { cap: u64 },
    /// The reader cannot read it (EFS-encrypted, a reparse point other than a link, a damaged
    /// record, …).
    Unreadable { detail: String },
    /// Readable but not carried (an NTFS alternate data stream, a device node, a socket).
    NotCarried { detail: String },
}

/// An item left out, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub source: String,
    pub size: u64,
    #[serde(flatten)]
    pub why: Why,
}
