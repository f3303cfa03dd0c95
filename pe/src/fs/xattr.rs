//! Extended attributes and POSIX ACLs: ext4's on-disk xattr areas (the one in the inode after
//! `i_extra_isize`, and the external block `i_file_acl` points at), ext4's own ACL format, and
//! the kernel's `posix_acl_xattr` form that `setxattr` takes. Everything here parses untrusted
//! bytes: bounds are checked, nothing panics, damage is an `Err` naming what is wrong.
//!
//! Layouts (little-endian; Linux `fs/ext4/xattr.h`, `fs/ext4/acl.h`,
//! `include/uapi/linux/posix_acl_xattr.h`):
//! - in-inode area: `u32 magic 0xEA020000`, then entries; value offsets count from the first
//!   entry; the area ends with the inode record.
//! - external block: a 32-byte header (`u32 magic 0xEA020000`, `u32 refcount`, `u32 blocks`
//!   = 1, `u32 hash`, `u32 checksum`, 12 reserved), then entries; value offsets count from
//!   the block's start.
//! - entry: `u8 name_len`, `u8 name_index`, `u16 value_offs`, `u32 value_inum`, `u32
//!   value_size`, `u32 hash`, the name; padded to 4 bytes. Four zero bytes end the list. A
//!   non-zero `value_inum` keeps the value in an inode of its own (`ea_inode`).
//! - ext4 ACL: `u32 version 1`, then entries `u16 tag, u16 perm` plus `u32 id` for named users
//!   and groups only.
//! - kernel ACL (`system.posix_acl_access` / `_default`): `u32 version 2`, then entries `u16
//!   tag, u16 perm, u32 id` (`0xFFFFFFFF` where there is no qualifier), sorted by tag, then id.

use serde::{Deserialize, Serialize};

/// What is wrong with attribute or ACL bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct XattrError(pub String);

/// The magic of both ext4 xattr areas.
pub const EXT4_XATTR_MAGIC: u32 = 0xEA02_0000;
/// Size of the external block's header.
const BLOCK_HEADER: usize = 32;
/// Size of an entry before its name.
const ENTRY_HEADER: usize = 16;

/// Full xattr names of the two ACLs.
pub const ACL_ACCESS: &str = "system.posix_acl_access";
pub const ACL_DEFAULT: &str = "system.posix_acl_default";

/// One attribute as an ext4 area stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawXattr {
    pub index: u8,
    pub name: Vec<u8>,
    pub value: Vec<u8>,
}

impl RawXattr {
    /// The full name (`user.comment`), or why it has none this reader knows.
    pub(crate) fn full_name(&self) -> Result<String, String> {
        let prefix = match self.index {
            1 => "user.",
            2 if self.name.is_empty() => return Ok(ACL_ACCESS.into()),
            3 if self.name.is_empty() => return Ok(ACL_DEFAULT.into()),
            4 => "trusted.",
            6 => "security.",
            7 => "system.",
            8 if self.name.is_empty() => return Ok("system.richacl".into()),
            i => return Err(format!("an extended attribute of unknown kind {i}")),
        };
        let suffix = std::str::from_utf8(&self.name).map_err(|_| {
            format!("extended attribute {prefix}{} (its name is not UTF-8)", crate::fs::bytes::show(&self.name))
        })?;
        Ok(format!("{prefix}{suffix}"))
    }
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Entries from `area[first..]`, values at `base + value_offs` within `area`.
fn entries(area: &[u8], first: usize, base: usize, what: &str) -> Result<Vec<RawXattr>, String> {
    let mut out = Vec::new();
    let mut at = first;
    loop {
        if at + 4 > area.len() {
            return Err(format!("the {what} ends without its end mark"));
        }
        if le32(area, at) == 0 {
            return Ok(out);
        }
        if at + ENTRY_HEADER > area.len() {
            return Err(format!("an entry of the {what} runs past its end"));
        }
        let name_len = usize::from(area[at]);
        let index = area[at + 1];
        let value_offs = usize::from(le16(area, at + 2));
        let value_inum = le32(area, at + 4);
        let value_size = le32(area, at + 8) as usize;
        let name = area.get(at + ENTRY_HEADER..at + ENTRY_HEADER + name_len).ok_or_else(|| format!("a name in the {what} runs past its end"))?;
        if value_inum != 0 {
            return Err(format!(
                "the {what} keeps a value in an inode of its own (ea_inode), which this reader does not read"
            ));
        }
        let start = base.checked_add(value_offs).ok_or("overflow")?;
        let value = start
            .checked_add(value_size)
            .and_then(|end| area.get(start..end))
            .ok_or_else(|| format!("a value in the {what} lies outside it ({value_size} bytes at {value_offs})"))?;
        out.push(RawXattr { index, name: name.to_vec(), value: value.to_vec() });
        at += (ENTRY_HEADER + name_len).div_ceil(4) * 4;
    }
}

/// The attributes in an inode's extra space: `area` is the inode record from
/// `128 + i_extra_isize` to its end. An area without the magic holds none.
pub fn parse_ibody(area: &[u8]) -> Result<Vec<RawXattr>, XattrError> {
    parse_ibody_inner(area).map_err(XattrError)
}

fn parse_ibody_inner(area: &[u8]) -> Result<Vec<RawXattr>, String> {
    if area.len() < 4 || le32(area, 0) != EXT4_XATTR_MAGIC {
        return Ok(Vec::new());
    }
    entries(&area[4..], 0, 0, "in-inode attribute area")
}

/// The attributes in an external xattr block (`i_file_acl`).
pub fn parse_block(block: &[u8]) -> Result<Vec<RawXattr>, XattrError> {
    parse_block_inner(block).map_err(XattrError)
}

fn parse_block_inner(block: &[u8]) -> Result<Vec<RawXattr>, String> {
    if block.len() < BLOCK_HEADER + 4 {
        return Err("the attribute block is too short".into());
    }
    if le32(block, 0) != EXT4_XATTR_MAGIC {
        return Err(format!("the attribute block has no magic (found {:#010x})", le32(block, 0)));
    }
    let blocks = le32(block, 8);
    if blocks != 1 {
        return Err(format!("the attribute block claims {blocks} blocks (1 is the only valid count)"));
    }
    entries(block, BLOCK_HEADER, 0, "attribute block")
}

/// A POSIX ACL entry's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AclTag {
    /// The owner (`user::`).
    UserObj,
    /// A named user (`user:bob:`).
    User,
    /// The owning group (`group::`).
    GroupObj,
    /// A named group (`group:staff:`).
    Group,
    /// The most a named entry or the owning group may get (`mask::`).
    Mask,
    /// Everyone else (`other::`).
    Other,
}

impl AclTag {
    fn from_wire(tag: u16) -> Option<AclTag> {
        Some(match tag {
            0x01 => AclTag::UserObj,
            0x02 => AclTag::User,
            0x04 => AclTag::GroupObj,
            0x08 => AclTag::Group,
            0x10 => AclTag::Mask,
            0x20 => AclTag::Other,
            _ => return None,
        })
    }

    fn wire(self) -> u16 {
        match self {
            AclTag::UserObj => 0x01,
            AclTag::User => 0x02,
            AclTag::GroupObj => 0x04,
            AclTag::Group => 0x08,
            AclTag::Mask => 0x10,
            AclTag::Other => 0x20,
        }
    }

    /// A named user or group: the entry has a qualifier.
    pub fn named(self) -> bool {
        matches!(self, AclTag::User | AclTag::Group)
    }
}

/// One ACL entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclEntry {
    pub tag: AclTag,
    /// `r`, `w`, `x` as in `getfacl`: `"rw-"`.
    #[serde(with = "perm_text")]
    pub perm: u8,
    /// The qualifier of a named user or group: its numeric id on the system that wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u32>,
    /// That id's name on the system that wrote it, where known (selection fills it in;
    /// restore maps by it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Permission bits as `rwx` text.
pub mod perm_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn text(perm: u8) -> String {
        [(4, 'r'), (2, 'w'), (1, 'x')].iter().map(|(b, c)| if perm & b != 0 { *c } else { '-' }).collect()
    }

    pub fn parse(s: &str) -> Option<u8> {
        let b = s.as_bytes();
        if b.len() != 3 {
            return None;
        }
        let mut perm = 0;
        for (i, (bit, c)) in [(4u8, b'r'), (2, b'w'), (1, b'x')].iter().enumerate() {
            match b[i] {
                x if x == *c => perm |= bit,
                b'-' => {}
                _ => return None,
            }
        }
        Some(perm)
    }

    pub fn serialize<S: Serializer>(perm: &u8, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&text(*perm))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).ok_or_else(|| serde::de::Error::custom(format!("{s:?} is not a permission like \"rw-\"")))
    }
}

/// Most entries an ACL may have here (ext4 fits about 500 in a 4 KiB block).
pub const MAX_ACL_ENTRIES: usize = 1024;

/// An ACL in ext4's on-disk form (version 1; short entries for the unnamed tags).
pub fn parse_ext4_acl(v: &[u8]) -> Result<Vec<AclEntry>, XattrError> {
    parse_ext4_acl_inner(v).map_err(XattrError)
}

fn parse_ext4_acl_inner(v: &[u8]) -> Result<Vec<AclEntry>, String> {
    if v.len() < 4 || le32(v, 0) != 1 {
        return Err("the ACL is not in ext4's format (version 1)".into());
    }
    let mut out = Vec::new();
    let mut at = 4;
    while at < v.len() {
        if at + 4 > v.len() || out.len() >= MAX_ACL_ENTRIES {
            return Err(format!("the ACL is cut short or too long at byte {at}"));
        }
        let raw_tag = le16(v, at);
        let tag = AclTag::from_wire(raw_tag).ok_or_else(|| format!("the ACL has an entry of unknown tag {raw_tag:#x}"))?;
        let perm = le16(v, at + 2);
        if perm > 7 {
            return Err(format!("the ACL has an entry with permission bits {perm:#x}"));
        }
        let id = if tag.named() {
            if at + 8 > v.len() {
                return Err("the ACL's last named entry is cut short".into());
            }
            let id = le32(v, at + 4);
            at += 8;
            Some(id)
        } else {
            at += 4;
            None
        };
        out.push(AclEntry { tag, perm: perm as u8, id, name: None });
    }
    Ok(out)
}

/// An ACL in the kernel's xattr form (version 2), as `getxattr` gives it.
pub fn parse_vfs_acl(v: &[u8]) -> Result<Vec<AclEntry>, XattrError> {
    parse_vfs_acl_inner(v).map_err(XattrError)
}

fn parse_vfs_acl_inner(v: &[u8]) -> Result<Vec<AclEntry>, String> {
    if v.len() < 4 || le32(v, 0) != 2 || !(v.len() - 4).is_multiple_of(8) || (v.len() - 4) / 8 > MAX_ACL_ENTRIES {
        return Err("not a version 2 ACL of whole entries".into());
    }
    v[4..]
        .chunks_exact(8)
        .map(|e| {
            let tag = AclTag::from_wire(le16(e, 0)).ok_or_else(|| format!("unknown ACL tag {:#x}", le16(e, 0)))?;
            let perm = le16(e, 2);
            if perm > 7 {
                return Err(format!("ACL permission bits {perm:#x}"));
            }
            let id = le32(e, 4);
            Ok(AclEntry { tag, perm: perm as u8, id: tag.named().then_some(id), name: None })
        })
        .collect()
}

/// The kernel's xattr form of `entries` (version 2), sorted as the kernel wants them (by tag,
/// then id); an entry repeating an earlier one's tag and id is left out. `None` when a named
/// entry has no id.
pub fn encode_vfs_acl(entries: &[AclEntry]) -> Option<Vec<u8>> {
    let mut list: Vec<(u16, u32, u8)> = Vec::with_capacity(entries.len());
    for e in entries {
        let id = match (e.tag.named(), e.id) {
            (true, Some(id)) => id,
            (true, None) => return None,
            (false, _) => u32::MAX,
        };
        list.push((e.tag.wire(), id, e.perm & 7));
    }
    list.sort_by_key(|(tag, id, _)| (*tag, *id));
    list.dedup_by_key(|(tag, id, _)| (*tag, *id));
    let mut out = Vec::with_capacity(4 + 8 * list.len());
    out.extend_from_slice(&2u32.to_le_bytes());
    for (tag, id, perm) in list {
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&u16::from(perm).to_le_bytes());
        out.extend_from_slice(&id.to_le_bytes());
    }
    Some(out)
}

/// `getfacl`'s text of an entry, with ids (`user:1234:rw-`).
pub fn acl_text(e: &AclEntry) -> String {
    let who = e.name.clone().or(e.id.map(|i| i.to_string())).unwrap_or_default();
    let perm = perm_text::text(e.perm);
    match e.tag {
        AclTag::UserObj => format!("user::{perm}"),
        AclTag::User => format!("user:{who}:{perm}"),
        AclTag::GroupObj => format!("group::{perm}"),
        AclTag::Group => format!("group:{who}:{perm}"),
        AclTag::Mask => format!("mask::{perm}"),
        AclTag::Other => format!("other::{perm}"),
    }
}

/// What a reader found of one file's extended attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Xattrs {
    /// Attributes by full name (`user.xdg.comment`, `security.selinux`), in on-disk order;
    /// the ACLs are not among them.
    pub attrs: Vec<(String, Vec<u8>)>,
    /// `system.posix_acl_access` and `system.posix_acl_default`, decoded.
    pub acl_access: Option<Vec<AclEntry>>,
    pub acl_default: Option<Vec<AclEntry>>,
    /// What could not be read, one phrase each (a damaged area, a value kept in an inode of
    /// its own, an ACL in an unknown format).
    pub unreadable: Vec<String>,
}

impl Xattrs {
    pub fn is_empty(&self) -> bool {
        self.attrs.is_empty() && self.acl_access.is_none() && self.acl_default.is_none() && self.unreadable.is_empty()
    }

    /// Sorts ext4's raw attributes into names, ACLs and problems.
    pub fn from_ext4(raw: Vec<RawXattr>) -> Xattrs {
        let mut x = Xattrs::default();
        for r in raw {
            match r.full_name() {
                Ok(n) if n == ACL_ACCESS || n == ACL_DEFAULT => match parse_ext4_acl(&r.value) {
                    Ok(acl) if n == ACL_ACCESS => x.acl_access = Some(acl),
                    Ok(acl) => x.acl_default = Some(acl),
                    Err(e) => x.unreadable.push(format!("{n}: {e}")),
                },
                Ok(n) => x.attrs.push((n, r.value)),
                Err(e) => x.unreadable.push(e),
            }
        }
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An in-inode area with `entries` (index, name, value), laid out as ext4 does: entries from
    /// the front, values from the back.
    pub(crate) fn ibody(entries: &[(u8, &[u8], &[u8])], len: usize) -> Vec<u8> {
        let mut a = vec![0u8; len];
        a[..4].copy_from_slice(&EXT4_XATTR_MAGIC.to_le_bytes());
        let body = &mut a[4..];
        let mut at = 0;
        let mut end = body.len();
        for (index, name, value) in entries {
            end -= value.len().div_ceil(4) * 4;
            body[end..end + value.len()].copy_from_slice(value);
            body[at] = name.len() as u8;
            body[at + 1] = *index;
            body[at + 2..at + 4].copy_from_slice(&(end as u16).to_le_bytes());
            body[at + 8..at + 12].copy_from_slice(&(value.len() as u32).to_le_bytes());
            body[at + 16..at + 16 + name.len()].copy_from_slice(name);
            at += (16 + name.len()).div_ceil(4) * 4;
        }
        a
    }

    fn ext4_acl(entries: &[(u16, u16, Option<u32>)]) -> Vec<u8> {
        let mut v = 1u32.to_le_bytes().to_vec();
        for (tag, perm, id) in entries {
            v.extend_from_slice(&tag.to_le_bytes());
            v.extend_from_slice(&perm.to_le_bytes());
            if let Some(id) = id {
                v.extend_from_slice(&id.to_le_bytes());
            }
        }
        v
    }

    #[test]
    fn in_inode_attributes_and_an_ext4_acl() {
        let acl = ext4_acl(&[(1, 6, None), (2, 6, Some(1234)), (4, 4, None), (0x10, 6, None), (0x20, 4, None)]);
        let area = ibody(&[(1, b"xdg.comment", b"checked twice"), (2, b"", &acl), (6, b"selinux", b"u:o:t\0")], 192);
        let raw = parse_ibody(&area).unwrap();
        assert_eq!(raw.len(), 3);
        let x = Xattrs::from_ext4(raw);
        assert_eq!(
            x.attrs,
            vec![("user.xdg.comment".to_string(), b"checked twice".to_vec()), ("security.selinux".to_string(), b"u:o:t\0".to_vec())]
        );
        let access = x.acl_access.unwrap();
        assert_eq!(access.iter().map(acl_text).collect::<Vec<_>>(), ["user::rw-", "user:1234:rw-", "group::r--", "mask::rw-", "other::r--"]);
        // To the kernel's form and back.
        let vfs = encode_vfs_acl(&access).unwrap();
        assert_eq!(vfs.len(), 4 + 5 * 8);
        assert_eq!(&vfs[..4], &2u32.to_le_bytes());
        assert_eq!(&vfs[8..12], &u32::MAX.to_le_bytes(), "no qualifier on user::");
        assert_eq!(parse_vfs_acl(&vfs).unwrap(), access);
        // No magic: no attributes; an empty list.
        assert!(parse_ibody(&[0u8; 32]).unwrap().is_empty());
        assert!(parse_ibody(&ibody(&[], 16)).unwrap().is_empty());
    }

    #[test]
    fn damaged_areas_are_errors() {
        let mut area = ibody(&[(1, b"a", b"value")], 64);
        area[4 + 2] = 0xF0; // value offset far outside
        assert!(parse_ibody(&area).unwrap_err().0.contains("outside"));
        let mut area = ibody(&[(1, b"a", b"value")], 64);
        area[4 + 4] = 9; // value_inum
        assert!(parse_ibody(&area).unwrap_err().0.contains("ea_inode"));
        let area = ibody(&[(1, b"a", b"v")], 24);
        assert!(parse_ibody(&area[..22]).is_err(), "no end mark");
        let mut block = vec![0u8; 1024];
        assert!(parse_block(&block).unwrap_err().0.contains("magic"));
        block[..4].copy_from_slice(&EXT4_XATTR_MAGIC.to_le_bytes());
        block[8] = 2;
        assert!(parse_block(&block).unwrap_err().0.contains("blocks"));
        block[8] = 1;
        assert!(parse_block(&block).unwrap().is_empty());
        assert!(parse_ext4_acl(&[2, 0, 0, 0]).is_err());
        assert!(parse_ext4_acl(&ext4_acl(&[(0x40, 6, None)])).unwrap_err().0.contains("tag"));
        assert!(parse_ext4_acl(&ext4_acl(&[(1, 9, None)])).is_err());
        let cut = ext4_acl(&[(2, 6, Some(5))]);
        assert!(parse_ext4_acl(&cut[..cut.len() - 2]).is_err());
        let x = Xattrs::from_ext4(vec![RawXattr { index: 5, name: b"x".to_vec(), value: vec![] }]);
        assert!(x.unreadable[0].contains("unknown kind 5"), "{x:?}");
    }

    #[test]
    fn kernel_order_and_missing_ids() {
        let e = |tag, perm, id: Option<u32>| AclEntry { tag, perm, id, name: None };
        let acl = vec![
            e(AclTag::Other, 0, None),
            e(AclTag::User, 6, Some(2001)),
            e(AclTag::UserObj, 7, None),
            e(AclTag::User, 4, Some(1000)),
            e(AclTag::User, 6, Some(1000)),
            e(AclTag::GroupObj, 5, None),
            e(AclTag::Mask, 7, None),
        ];
        let back = parse_vfs_acl(&encode_vfs_acl(&acl).unwrap()).unwrap();
        let text: Vec<String> = back.iter().map(acl_text).collect();
        assert_eq!(text, ["user::rwx", "user:1000:r--", "user:2001:rw-", "group::r-x", "mask::rwx", "other::---"]);
        assert_eq!(encode_vfs_acl(&[e(AclTag::Group, 4, None)]), None);
        assert_eq!(perm_text::parse("r-x"), Some(5));
        assert_eq!(perm_text::parse("rwz"), None);
        assert_eq!(serde_json::to_string(&e(AclTag::GroupObj, 5, None)).unwrap(), r#"{"tag":"group-obj","perm":"r-x"}"#);
    }

    proptest! {
        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse_ibody(&bytes);
            let _ = parse_block(&bytes);
            let _ = parse_ext4_acl(&bytes);
            let _ = parse_vfs_acl(&bytes);
            let mut with_magic = EXT4_XATTR_MAGIC.to_le_bytes().to_vec();
            with_magic.extend_from_slice(&bytes);
            if let Ok(raw) = parse_ibody(&with_magic) {
                let _ = Xattrs::from_ext4(raw);
            }
            let mut block = with_magic.clone();
            block.splice(4..4, [0u8, 0, 0, 0, 1, 0, 0, 0].iter().copied());
            let _ = parse_block(&block);
            let mut acl = 1u32.to_le_bytes().to_vec();
            acl.extend_from_slice(&bytes);
            if let Ok(entries) = parse_ext4_acl(&acl) {
                if let Some(v) = encode_vfs_acl(&entries) {
                    prop_assert!(parse_vfs_acl(&v).is_ok());
                }
            }
        }

        #[test]
        fn well_formed_areas_read_back(entries in proptest::collection::vec(
            (1u8..=8, proptest::collection::vec(any::<u8>(), 0..12), proptest::collection::vec(any::<u8>(), 0..40)), 0..5)
        ) {
            let refs: Vec<(u8, &[u8], &[u8])> = entries.iter().map(|(i, n, v)| (*i, n.as_slice(), v.as_slice())).collect();
            let area = ibody(&refs, 512);
            let raw = parse_ibody(&area).unwrap();
            let got: Vec<(u8, Vec<u8>, Vec<u8>)> = raw.into_iter().map(|r| (r.index, r.name, r.value)).collect();
            prop_assert_eq!(got, entries);
        }
    }
}
