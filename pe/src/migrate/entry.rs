//! What a capture records about each file: the planned entries that selection produces, the
//! items it leaves out with the reason, and the settings it carries.

use serde::{Deserialize, Serialize};

pub use crate::fs::xattr::{AclEntry, AclTag};
pub use crate::fs::{Bytes, Time};

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
/// untrusted when read back from a store: restore checks it before use. `source`, `path` and
/// `target` are the exact bytes the old filesystem has (see [`Bytes`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Where it was on the old filesystem (`/Users/Carol/Documents/report.txt`): what capture
    /// reads, and what reports show.
    pub source: Bytes,
    /// The account whose profile holds it, by name as on the old OS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    pub path: Bytes,
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
    pub target: Option<Bytes>,
    /// `user.*` extended attributes (files and directories), in the order the old filesystem
    /// listed them; at most [`MAX_XATTR_BYTES`] of names and values in all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub xattrs: Vec<Xattr>,
    /// POSIX ACLs (files and directories).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<Acls>,
    /// Files: bytes of the data the old filesystem stores (less than `size` for a sparse
    /// file), where the reader knows; what the estimate counts. Informative in a store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocated: Option<u64>,
}

/// One extended attribute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Xattr {
    /// The full name: `user.` and the rest.
    pub name: String,
    pub value: Bytes,
}

/// An entry's POSIX ACLs: `access` as `system.posix_acl_access` holds it (the extended one:
/// a file whose permissions are its mode alone has none), `default` for a directory's new
/// entries. Named entries carry the old system's id and name; restore maps them by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acls {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<Vec<AclEntry>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Vec<AclEntry>>,
}

/// Most bytes of extended attribute names and values one entry carries (the kernel's limit
/// for one value, `XATTR_SIZE_MAX`).
pub const MAX_XATTR_BYTES: usize = 64 << 10;
/// The longest attribute name (`XATTR_NAME_MAX`).
pub const MAX_XATTR_NAME: usize = 255;
/// Most entries one ACL may have.
pub use crate::fs::xattr::MAX_ACL_ENTRIES;

/// Whether an attribute of this name is carried: `user.` and a rest, at most
/// [`MAX_XATTR_NAME`] bytes, no NUL.
pub fn carried_xattr_name(name: &str) -> bool {
    name.starts_with("user.") && name.len() > 5 && name.len() <= MAX_XATTR_NAME && !name.contains('\0')
}

/// Why an entry's attributes cannot be carried as they are: a name that is not `user.*` or is
/// too long, too many bytes, an ACL too long or with a named entry lacking its id. `None` when
/// they are fine. Selection never plans such an entry; restore refuses a store that has one.
pub fn xattr_problem(e: &Entry) -> Option<String> {
    let mut total = 0usize;
    for x in &e.xattrs {
        if !carried_xattr_name(&x.name) {
            return Some(format!("extended attribute name {:?} is not a user.* name of at most {MAX_XATTR_NAME} bytes", x.name));
        }
        total += x.name.len() + x.value.len();
    }
    if total > MAX_XATTR_BYTES {
        return Some(format!("{total} bytes of extended attributes (at most {MAX_XATTR_BYTES})"));
    }
    if let Some(acl) = &e.acl {
        for list in [&acl.access, &acl.default].into_iter().flatten() {
            if list.len() > MAX_ACL_ENTRIES || list.iter().any(|a| a.tag.named() && a.id.is_none() && a.name.is_none()) {
                return Some(format!("an ACL of {} entries, or a named entry with neither id nor name", list.len()));
            }
        }
        if !matches!(e.kind, Kind::File | Kind::Dir) || (acl.default.is_some() && e.kind != Kind::Dir) {
            return Some(format!("an ACL on a {:?}", e.kind));
        }
    }
    if !e.xattrs.is_empty() && !matches!(e.kind, Kind::File | Kind::Dir) {
        return Some(format!("extended attributes on a {:?}", e.kind));
    }
    None
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
    /// Readable but not carried (an NTFS alternate data stream, a device node, a socket, a
    /// `security.*` or `trusted.*` extended attribute).
    NotCarried { detail: String },
}

/// An item left out, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub source: Bytes,
    pub size: u64,
    #[serde(flatten)]
    pub why: Why,
}
