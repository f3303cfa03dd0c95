//! Users by name. The new OS's accounts come from `<root>/etc/passwd` and `<root>/etc/group`
//! (parsed here; the formats are tiny), never from the host's. A profile from the store maps
//! to the account with exactly its name, else to its lowercase name (`Carol` → `carol`).
//! Missing accounts are created with `useradd` when allowed ([`Useradd`]); otherwise their
//! files are reported as not restored. File owners and groups map by name too: the old OS's
//! numeric ids mean nothing on the new one.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde::Serialize;

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
}

/// The new OS's accounts and groups.
#[derive(Debug, Clone, Default)]
pub struct Accounts {
    pub users: Vec<Account>,
    /// Group name → gid.
    pub groups: BTreeMap<String, u32>,
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
            users.push(Account { name: f[0].into(), uid, gid, home: f[5].into() });
        }
        let mut groups = BTreeMap::new();
        for line in group.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() != 4 || f[0].is_empty() || f[0].starts_with(['#', '+', '-']) {
                continue;
            }
            if let Ok(gid) = f[2].parse() {
                groups.entry(f[0].to_string()).or_insert(gid);
            }
        }
        Accounts { users, groups }
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
}

fn root_read(root: &Root, abs: &str) -> Result<Option<String>, String> {
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

/// The name an account for `profile` gets when restore creates it: the profile name in
/// lowercase, if that is a portable Linux user name.
pub(crate) fn new_account_name(profile: &str) -> Result<String, String> {
    let name = profile.to_lowercase();
    let ok_first = name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let ok_rest = name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.'));
    if ok_first && ok_rest && name.len() <= 32 {
        Ok(name)
    } else {
        Err(format!(
            "{profile:?} is not a valid Linux user name (letters a–z, digits, `_`, `-`, `.`, at most 32, \
             starting with a letter); create an account for this user yourself and run restore again"
        ))
    }
}

/// What happened to one user of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UserStatus {
    /// An account with that name exists.
    Mapped,
    /// Restore created the account.
    Created,
    /// A dry run: restore would create it.
    WouldCreate,
    /// No account, none created: this user's files are not restored.
    Missing,
}

/// One profile of the store and the account it maps to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserOutcome {
    /// The profile name on the old OS.
    pub profile: String,
    pub status: UserStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub home: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What to do about a missing account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<crate::error::Hint>,
    /// Entries of this profile in the store.
    pub entries: u64,
}

/// Creates an account in the new OS.
pub trait CreateAccount {
    fn create(&mut self, root: &Path, name: &str) -> Result<(), String>;
}

/// `useradd -m -U NAME`, with `--prefix ROOT` when the root is not `/` (shadow ≥ 4.9: the
/// root's `/etc` files are edited and the home is made under it; the host's are not touched).
/// The account gets no password: the report says so.
pub struct Useradd;

impl CreateAccount for Useradd {
    fn create(&mut self, root: &Path, name: &str) -> Result<(), String> {
        let mut cmd = Command::new("useradd");
        if root != Path::new("/") {
            cmd.arg("--prefix").arg(root);
        }
        cmd.args(["-m", "-U", "--", name]);
        let out = cmd.output().map_err(|e| format!("cannot run useradd: {e}; install the `passwd` package or create the account yourself"))?;
        if !out.status.success() {
            return Err(format!(
                "useradd {name} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(())
    }
}

/// Profiles mapped to accounts, for the rest of the restore.
#[derive(Debug, Clone, Default)]
pub struct UserMap {
    pub outcomes: Vec<UserOutcome>,
    /// Profile → its account (mapped or created; for a dry run, a stand-in for one to be
    /// created).
    pub accounts: BTreeMap<String, Account>,
}

impl UserMap {
    /// Maps `profiles` (name → entry count). `create` allows creating missing accounts;
    /// `creator` is `None` in a dry run. `accounts` is re-read after each creation.
    pub fn build(
        root: &Root,
        accounts: &mut Accounts,
        profiles: &BTreeMap<String, u64>,
        create: bool,
        mut creator: Option<&mut dyn CreateAccount>,
    ) -> UserMap {
        let mut map = UserMap::default();
        for (profile, entries) in profiles {
            let mut out = UserOutcome {
                profile: profile.clone(),
                status: UserStatus::Missing,
                account: None,
                uid: None,
                home: None,
                reason: None,
                hint: None,
                entries: *entries,
            };
            if let Some(a) = accounts.for_profile(profile).cloned() {
                out.status = UserStatus::Mapped;
                map.set(&mut out, a);
            } else if !create {
                out.reason = Some(format!(
                    "no account named {profile:?} or {:?} in {}; create it",
                    profile.to_lowercase(),
                    root.path().join("etc/passwd").display()
                ));
                out.hint = Some(crate::error::Hint::CreateUsers);
            } else {
                match new_account_name(profile) {
                    Err(why) => out.reason = Some(why),
                    Ok(name) => match creator.as_deref_mut() {
                        None => {
                            out.status = UserStatus::WouldCreate;
                            let stand_in = Account { name: name.clone(), uid: 0, gid: 0, home: format!("/home/{name}") };
                            map.set(&mut out, stand_in);
                            out.uid = None;
                        }
                        Some(c) => match create_and_reload(root, accounts, c, &name) {
                            Ok(a) => {
                                out.status = UserStatus::Created;
                                out.reason = Some("created without a password: set one with `passwd` before logging in".into());
                                map.set(&mut out, a);
                            }
                            Err(why) => out.reason = Some(why),
                        },
                    },
                }
            }
            map.outcomes.push(out);
        }
        map
    }

    fn set(&mut self, out: &mut UserOutcome, a: Account) {
        out.account = Some(a.name.clone());
        out.uid = Some(a.uid);
        out.home = Some(a.home.clone());
        self.accounts.insert(out.profile.clone(), a);
    }

    /// Owner and group ids for an entry: by name in the new OS; a profile's own name maps
    /// to its account; otherwise the profile's account (user entries) or root (settings).
    pub fn ids(&self, accounts: &Accounts, profile: Option<&str>, owner: Option<&str>, group: Option<&str>) -> (u32, u32) {
        let mapped = profile.and_then(|p| self.accounts.get(p));
        let uid = owner
            .and_then(|o| if Some(o) == profile { mapped.map(|a| a.uid) } else { accounts.user(o).map(|a| a.uid) })
            .or(mapped.map(|a| a.uid))
            .unwrap_or(0);
        let gid = group
            .and_then(|g| if Some(g) == profile { mapped.map(|a| a.gid) } else { accounts.gid(g) })
            .or(mapped.map(|a| a.gid))
            .unwrap_or(0);
        (uid, gid)
    }
}

fn create_and_reload(root: &Root, accounts: &mut Accounts, c: &mut dyn CreateAccount, name: &str) -> Result<Account, String> {
    c.create(root.path(), name)?;
    *accounts = Accounts::load(root)?.ok_or("useradd left no /etc/passwd in the root")?;
    accounts.user(name).cloned().ok_or_else(|| format!("useradd reported success but {name} is not in /etc/passwd"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
        # comment\n\
        +nis\n\
        daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
        broken:x:abc:1::/x:/bin/sh\n\
        carol:x:1000:1000:Carol,,,:/home/carol:/bin/bash\n\
        Dave:x:1001:1001::/home/Dave:/bin/bash\n";
    pub const GROUP: &str = "root:x:0:\nusers:x:100:carol\ncarol:x:1000:\nDave:x:1001:\nstaff:x:50:\n";

    /// Appends the account to the root's passwd and group, as useradd would.
    pub struct FakeUseradd(pub u32);
    impl CreateAccount for FakeUseradd {
        fn create(&mut self, root: &Path, name: &str) -> Result<(), String> {
            use std::io::Write;
            let id = self.0;
            self.0 += 1;
            let mut p = std::fs::OpenOptions::new().append(true).open(root.join("etc/passwd")).map_err(|e| e.to_string())?;
            writeln!(p, "{name}:x:{id}:{id}::/home/{name}:/bin/sh").map_err(|e| e.to_string())?;
            let mut g = std::fs::OpenOptions::new().append(true).open(root.join("etc/group")).map_err(|e| e.to_string())?;
            writeln!(g, "{name}:x:{id}:").map_err(|e| e.to_string())?;
            std::fs::create_dir_all(root.join("home").join(name)).map_err(|e| e.to_string())
        }
    }

    pub fn os_root(dir: &Path) {
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::fs::create_dir_all(dir.join("home/carol")).unwrap();
        std::fs::write(dir.join("etc/passwd"), PASSWD).unwrap();
        std::fs::write(dir.join("etc/group"), GROUP).unwrap();
    }

    #[test]
    fn parses_and_maps_by_name() {
        let a = Accounts::parse(PASSWD, GROUP);
        assert_eq!(a.users.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(), ["root", "daemon", "carol", "Dave"]);
        assert_eq!(a.for_profile("Carol").unwrap().uid, 1000, "lowercase fallback");
        assert_eq!(a.for_profile("Dave").unwrap().uid, 1001, "exact first");
        assert!(a.for_profile("dave").is_none(), "no uppercase guessing");
        assert_eq!(a.gid("staff"), Some(50));
    }

    #[test]
    fn new_names() {
        assert_eq!(new_account_name("Carol").unwrap(), "carol");
        assert_eq!(new_account_name("j.doe-2").unwrap(), "j.doe-2");
        for bad in ["Carol Smith", "1abc", "", "Zoë", &"a".repeat(33), "a/b", "a:b"] {
            assert!(new_account_name(bad).is_err(), "{bad}");
        }
    }

    fn profiles(names: &[&str]) -> BTreeMap<String, u64> {
        names.iter().map(|n| (n.to_string(), 1)).collect()
    }

    #[test]
    fn missing_created_and_dry_run() {
        let t = tempfile::tempdir().unwrap();
        os_root(t.path());
        let root = Root::open(t.path()).unwrap();
        let mut acc = Accounts::load(&root).unwrap().unwrap();
        let p = profiles(&["Carol", "Erin", "Bad Name"]);

        let m = UserMap::build(&root, &mut acc, &p, false, None);
        let st: Vec<_> = m.outcomes.iter().map(|o| (o.profile.as_str(), o.status)).collect();
        assert_eq!(st, [("Bad Name", UserStatus::Missing), ("Carol", UserStatus::Mapped), ("Erin", UserStatus::Missing)]);
        assert!(m.outcomes[2].reason.as_ref().unwrap().contains("no account named \"Erin\""));
        assert_eq!(m.outcomes[2].hint, Some(crate::error::Hint::CreateUsers));
        assert!(!m.outcomes[2].reason.as_ref().unwrap().contains("--"));

        let m = UserMap::build(&root, &mut acc, &p, true, None);
        assert_eq!(m.outcomes[2].status, UserStatus::WouldCreate);
        assert_eq!(std::fs::read_to_string(t.path().join("etc/passwd")).unwrap(), PASSWD, "dry run wrote nothing");

        let mut fake = FakeUseradd(2000);
        let m = UserMap::build(&root, &mut acc, &p, true, Some(&mut fake));
        assert_eq!(m.outcomes[0].status, UserStatus::Missing);
        assert!(m.outcomes[0].reason.as_ref().unwrap().contains("not a valid"));
        assert_eq!(m.outcomes[2].status, UserStatus::Created);
        assert_eq!(m.accounts["Erin"].uid, 2000);
        assert_eq!(m.accounts["Erin"].home, "/home/erin");
    }

    #[test]
    fn owners_map_by_name_not_number() {
        let acc = Accounts::parse(PASSWD, GROUP);
        let mut m = UserMap::default();
        m.accounts.insert("Carol".into(), acc.for_profile("Carol").unwrap().clone());
        assert_eq!(m.ids(&acc, Some("Carol"), Some("Carol"), Some("Carol")), (1000, 1000));
        assert_eq!(m.ids(&acc, Some("Carol"), Some("root"), Some("staff")), (0, 50));
        assert_eq!(m.ids(&acc, Some("Carol"), Some("ghost"), None), (1000, 1000));
        assert_eq!(m.ids(&acc, None, Some("daemon"), Some("ghost")), (1, 0));
        assert_eq!(m.ids(&acc, None, None, None), (0, 0));
    }

    /// The real useradd with --prefix edits only the temp root (run as root only).
    #[test]
    fn real_useradd_with_prefix() {
        if !rustix::process::geteuid().is_root() || Command::new("useradd").arg("--help").output().is_err() {
            return;
        }
        let t = tempfile::tempdir().unwrap();
        os_root(t.path());
        std::fs::write(t.path().join("etc/shadow"), "root:*:19000:0:99999:7:::\n").unwrap();
        std::fs::write(t.path().join("etc/gshadow"), "root:*::\n").unwrap();
        let host = std::fs::read("/etc/passwd").unwrap();
        let root = Root::open(t.path()).unwrap();
        let mut acc = Accounts::load(&root).unwrap().unwrap();
        let m = UserMap::build(&root, &mut acc, &profiles(&["Frank"]), true, Some(&mut Useradd));
        assert_eq!(m.outcomes[0].status, UserStatus::Created, "{:?}", m.outcomes[0].reason);
        assert_eq!(m.accounts["Frank"].name, "frank");
        assert!(t.path().join("home/frank").is_dir());
        assert_eq!(std::fs::read("/etc/passwd").unwrap(), host, "the host's passwd is untouched");
    }
}
