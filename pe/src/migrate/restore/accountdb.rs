//! The new OS's accounts and groups, read from `<root>/etc/passwd` and `<root>/etc/group`
//! (parsed here; the formats are tiny), never from the host's.

use std::collections::BTreeMap;

use super::paths::{RelPath, Root};

/// The largest `/etc/passwd` or `/etc/group` read.
const DB_CAP: u64 = 16 << 20;

/// One line of `/etc/passwd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
}

/// The new OS's accounts and groups.
#[derive(Debug, Clone, Default)]
pub struct Accounts {
    pub users: Vec<Account>,
    /// Group name → gid.
    pub groups: BTreeMap<String, u32>,
    /// Group name → the accounts it lists as members.
    pub members: BTreeMap<String, Vec<String>>,
}

impl Accounts {
    /// Parses `passwd` and `group` text; malformed lines (and NIS `+`/`-` lines) are skipped.
    pub fn parse(passwd: &str, group: &str) -> Accounts {
        let mut users = Vec::new();
        for line in passwd.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() != 7 || f[0].is_empty() || f[0].starts_with(['#', '+', '-']) {
                continue;
            }
            let (Ok(uid), Ok(gid)) = (f[2].parse(), f[3].parse()) else { continue };
            users.push(Account { name: f[0].into(), uid, gid, home: f[5].into(), shell: f[6].into() });
        }
        let mut groups = BTreeMap::new();
        let mut members = BTreeMap::new();
        for line in group.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() != 4 || f[0].is_empty() || f[0].starts_with(['#', '+', '-']) {
                continue;
            }
            if let Ok(gid) = f[2].parse() {
                groups.entry(f[0].to_string()).or_insert(gid);
                members.entry(f[0].to_string()).or_insert_with(|| f[3].split(',').filter(|m| !m.is_empty()).map(String::from).collect());
            }
        }
        Accounts { users, groups, members }
    }

    /// Reads them from the root. `Ok(None)` when the root has no `/etc/passwd`.
    pub(crate) fn load(root: &Root) -> Result<Option<Accounts>, String> {
        let read = |name: &str| root_read(root, name);
        let Some(passwd) = read("/etc/passwd")? else { return Ok(None) };
        let group = read("/etc/group")?.unwrap_or_default();
        Ok(Some(Accounts::parse(&passwd, &group)))
    }

    pub fn user(&self, name: &str) -> Option<&Account> {
        self.users.iter().find(|a| a.name == name)
    }

    /// The account a profile of the old OS maps to: the same name, else its lowercase.
    pub fn for_profile(&self, profile: &str) -> Option<&Account> {
        self.user(profile).or_else(|| self.user(&profile.to_lowercase()))
    }

    pub fn gid(&self, group: &str) -> Option<u32> {
        self.groups.get(group).copied()
    }

    /// Whether `group` lists `user` as a member.
    pub fn is_member(&self, user: &str, group: &str) -> bool {
        self.members.get(group).is_some_and(|m| m.iter().any(|u| u == user))
    }
}

/// A small text file of the root (at most 16 MiB), opened without following a link at its
/// name; `Ok(None)` when it does not exist.
pub(crate) fn root_read(root: &Root, abs: &str) -> Result<Option<String>, String> {
    let rel = RelPath::parse_abs(abs).map_err(|e| e.to_string())?;
    let Some(dir) = root.open_abs(&rel.prefix(rel.parts().len() - 1)).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let shown = root.show(&rel);
    let fd = match rustix::fs::openat(
        &dir,
        rel.name(),
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(e) => return Err(format!("cannot read {shown}: {e}")),
    };
    let mut text = String::new();
    let file = std::fs::File::from(fd);
    std::io::Read::read_to_string(&mut std::io::Read::take(file, DB_CAP), &mut text)
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    Ok(Some(text))
}

