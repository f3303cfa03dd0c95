//! Extended attributes and POSIX ACLs on restore. A store carries `user.*` attributes and the
//! ACLs of files and directories (`docs/store-format.md`); restore sets them on the file it
//! writes (before the file is renamed into place) and on the directories it makes (at the end,
//! with their mode and time, so no entry restored into one inherits its default ACL).
//!
//! ACLs go to the kernel in its `posix_acl_xattr` form ([`crate::fs::xattr::encode_vfs_acl`]).
//! A named entry's user or group is mapped like an owner: by its name on the old system to
//! the new system's id (the profile's own name to the account it maps to). An entry whose
//! name the new system does not have, or that had no name on the old one, is left out and the
//! entry's report says so; the rest of the ACL is still set. Whatever could not be set is in
//! the entry's note, one phrase each.

use std::os::fd::BorrowedFd;

use rustix::fs::XattrFlags;

use super::users::{Accounts, UserMap};
use crate::fs::xattr::{acl_text, encode_vfs_acl, AclEntry, AclTag, ACL_ACCESS, ACL_DEFAULT};
use crate::migrate::entry::Entry;

/// What to set on one restored file or directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attrs {
    /// Attribute name → value, ACLs in the kernel's form.
    pub set: Vec<(String, Vec<u8>)>,
    /// What the store has that is not set, and why.
    pub notes: Vec<String>,
}

impl Attrs {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.notes.is_empty()
    }
}

/// The attributes of `e` for the new system; `None` when it has none.
pub fn prepare(e: &Entry, user_map: &UserMap, accounts: &Accounts) -> Option<Attrs> {
    if e.xattrs.is_empty() && e.acl.is_none() {
        return None;
    }
    let mut a = Attrs::default();
    for x in &e.xattrs {
        a.set.push((x.name.clone(), x.value.as_bytes().to_vec()));
    }
    if let Some(acl) = &e.acl {
        let profile = e.user.as_deref();
        for (name, list) in [(ACL_ACCESS, &acl.access), (ACL_DEFAULT, &acl.default)] {
            let Some(list) = list else { continue };
            let mapped = map_acl(list, profile, user_map, accounts, &mut a.notes);
            match encode_vfs_acl(&mapped) {
                Some(v) => a.set.push((name.to_string(), v)),
                None => a.notes.push(format!("{name} not set: a named entry has no id")),
            }
        }
    }
    Some(a)
}

/// The entries of an old system's ACL with the new system's ids; entries that do not map are
/// left out, with a note.
fn map_acl(list: &[AclEntry], profile: Option<&str>, user_map: &UserMap, accounts: &Accounts, notes: &mut Vec<String>) -> Vec<AclEntry> {
    let profile_account = profile.and_then(|p| user_map.accounts.get(p));
    let mut out = Vec::with_capacity(list.len());
    for entry in list {
        if !entry.tag.named() {
            out.push(AclEntry { id: None, name: None, ..entry.clone() });
            continue;
        }
        let Some(name) = entry.name.as_deref() else {
            notes.push(format!("ACL entry {} not set: the id had no name on the old system", acl_text(entry)));
            continue;
        };
        let id = match entry.tag {
            AclTag::User if Some(name) == profile => profile_account.map(|a| a.uid),
            AclTag::User => accounts.user(name).map(|a| a.uid),
            _ if Some(name) == profile => profile_account.map(|a| a.gid),
            _ => accounts.gid(name),
        };
        match id {
            Some(id) => out.push(AclEntry { id: Some(id), name: None, ..entry.clone() }),
            None => {
                let what = if entry.tag == AclTag::User { "user" } else { "group" };
                notes.push(format!("ACL entry {} not set: the new system has no {what} {name:?}", acl_text(entry)));
            }
        }
    }
    out
}

/// Sets `attrs` on the open file or directory `fd`; returns what failed, one phrase each,
/// with the notes of [`prepare`].
pub fn apply(fd: BorrowedFd<'_>, attrs: &Attrs) -> Vec<String> {
    let mut problems = attrs.notes.clone();
    for (name, value) in &attrs.set {
        if let Err(e) = rustix::fs::fsetxattr(fd, name.as_str(), value, XattrFlags::empty()) {
            problems.push(format!("{name} not set: {e}"));
        }
    }
    problems
}

/// The problems of [`apply`] as one note.
pub fn note(problems: &[String]) -> Option<String> {
    (!problems.is_empty()).then(|| format!("extended attributes: {}", problems.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::Bytes;
    use crate::migrate::entry::{Acls, Kind, Xattr};
    use crate::migrate::restore::users::tests::{GROUP, PASSWD};

    fn ace(tag: AclTag, perm: u8, id: Option<u32>, name: Option<&str>) -> AclEntry {
        AclEntry { tag, perm, id, name: name.map(str::to_string) }
    }

    fn entry(acl: Acls) -> Entry {
        let se = crate::migrate::restore::plan::tests::entry(Some("Carol"), "a.txt", Kind::File, 0, None);
        Entry { xattrs: vec![Xattr { name: "user.tag".into(), value: Bytes::from("v") }], acl: Some(acl), ..se.entry }
    }

    #[test]
    fn named_entries_map_by_name() {
        let accounts = Accounts::parse(PASSWD, GROUP);
        let mut map = UserMap::default();
        map.accounts.insert("Carol".into(), accounts.for_profile("Carol").unwrap().clone());
        let access = vec![
            ace(AclTag::UserObj, 6, None, None),
            ace(AclTag::User, 6, Some(1234), Some("Dave")),
            ace(AclTag::User, 4, Some(1500), Some("Carol")),
            ace(AclTag::User, 4, Some(77), Some("ghost")),
            ace(AclTag::User, 4, Some(78), None),
            ace(AclTag::GroupObj, 4, None, None),
            ace(AclTag::Group, 4, Some(9), Some("staff")),
            ace(AclTag::Mask, 6, None, None),
            ace(AclTag::Other, 0, None, None),
        ];
        let a = prepare(&entry(Acls { access: Some(access), default: None }), &map, &accounts).unwrap();
        assert_eq!(a.set[0], ("user.tag".to_string(), b"v".to_vec()));
        assert_eq!(a.set[1].0, ACL_ACCESS);
        let back: Vec<String> = crate::fs::xattr::parse_vfs_acl(&a.set[1].1).unwrap().iter().map(acl_text).collect();
        // Dave is 1001 and Carol 1000 on the new system; staff is 50. Sorted by id.
        assert_eq!(back, ["user::rw-", "user:1000:r--", "user:1001:rw-", "group::r--", "group:50:r--", "mask::rw-", "other::---"]);
        assert_eq!(a.notes.len(), 2, "{:?}", a.notes);
        assert!(a.notes[0].contains("\"ghost\"") && a.notes[1].contains("no name on the old system"), "{:?}", a.notes);
    }
}
