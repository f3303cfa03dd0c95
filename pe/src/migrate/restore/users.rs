//! Users by name. The new OS's accounts come from `<root>/etc/passwd` and `<root>/etc/group`
//! ([`super::accountdb`]), never from the host's. A profile from the store maps to the account
//! with exactly its name, else to its lowercase name (`Carol` → `carol`). Missing accounts are
//! created with `useradd` when allowed ([`Useradd`]), whole as the old OS had them where the
//! new OS can take it ([`super::newuser`]); otherwise their files are reported as not restored.
//! An account the new OS already has is left as it is (password, shell, groups): the report
//! says which of the old account's groups it lacks. File owners and groups map by name too:
//! the old OS's numeric ids mean nothing on the new one.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;
use std::process::Command;

use serde::Serialize;

pub use super::accountdb::{Account, Accounts};
use super::newuser::{self, NewAccount, NewOs};
use super::paths::Root;
use crate::migrate::accounts::{valid_name, AccountRecord};

/// The name an account for `profile` gets when restore creates it: the profile name in
/// lowercase, if that is a portable Linux user name.
pub(crate) fn new_account_name(profile: &str) -> Result<String, String> {
    let name = profile.to_lowercase();
    if valid_name(&name) && !name.ends_with('$') {
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
    /// What of the old account was carried and what not (password, shell, groups).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Creates an account in the new OS.
pub trait CreateAccount {
    fn create(&mut self, root: &Path, account: &NewAccount) -> Result<(), String>;
}

/// `useradd -m`, with `--prefix ROOT` when the root is not `/` (shadow ≥ 4.9: the root's
/// `/etc` files are edited and the home is made under it; the host's are not touched). The
/// password is set afterwards ([`newuser::set_password`]), never on a command line.
pub struct Useradd;

/// The arguments [`Useradd`] runs `useradd` with.
pub fn useradd_args(root: &Path, a: &NewAccount) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    if root != Path::new("/") {
        args.push("--prefix".into());
        args.push(root.into());
    }
    args.push("-m".into());
    match &a.group {
        Some(g) => args.extend(["-N".into(), "-g".into(), g.into()]),
        None => args.push("-U".into()),
    }
    let mut opt = |flag: &str, v: Option<String>| {
        if let Some(v) = v {
            args.push(flag.into());
            args.push(v.into());
        }
    };
    opt("-u", a.uid.map(|u| u.to_string()));
    opt("-c", a.gecos.clone());
    opt("-s", a.shell.clone());
    opt("-G", (!a.groups.is_empty()).then(|| a.groups.join(",")));
    args.push("--".into());
    args.push(a.name.clone().into());
    args
}

impl CreateAccount for Useradd {
    fn create(&mut self, root: &Path, account: &NewAccount) -> Result<(), String> {
        let out = Command::new("useradd")
            .args(useradd_args(root, account))
            .output()
            .map_err(|e| format!("cannot run useradd: {e}; install the `passwd` package or create the account yourself"))?;
        if !out.status.success() {
            return Err(format!(
                "useradd {} failed ({}): {}",
                account.name,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(())
    }
}

/// What restore carries of the old accounts when it creates them.
#[derive(Debug, Clone, Copy)]
pub struct Carry<'a> {
    /// The old OS's accounts, as the capture recorded them (none for Windows sources).
    pub records: &'a [AccountRecord],
    /// Give created accounts their old password hash.
    pub passwords: bool,
    /// What the new OS offers.
    pub new_os: &'a NewOs,
}

impl Carry<'_> {
    fn record(&self, profile: &str) -> Option<&AccountRecord> {
        self.records.iter().find(|r| r.name == profile)
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
    /// Maps `profiles` (name → entry count). `create` allows creating missing accounts, as
    /// `carry` says; `creator` is `None` in a dry run. `accounts` is re-read after each
    /// creation.
    pub fn build(
        root: &Root,
        accounts: &mut Accounts,
        profiles: &BTreeMap<String, u64>,
        create: bool,
        mut creator: Option<&mut dyn CreateAccount>,
        carry: &Carry<'_>,
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
                notes: Vec::new(),
            };
            if let Some(a) = accounts.for_profile(profile).cloned() {
                out.status = UserStatus::Mapped;
                out.notes.extend(left_as_it_is(accounts, &a, carry.record(profile)));
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
                    Ok(name) => map.create(root, accounts, creator.as_deref_mut(), carry, &name, &mut out),
                }
            }
            map.outcomes.push(out);
        }
        map
    }

    /// Creates the account `name` for `out.profile` as `carry` says (or, with no `creator`,
    /// says what would be created), with notes on what of the old account came over.
    fn create(
        &mut self,
        root: &Root,
        accounts: &mut Accounts,
        creator: Option<&mut (dyn CreateAccount + '_)>,
        carry: &Carry<'_>,
        name: &str,
        out: &mut UserOutcome,
    ) {
        let plan = newuser::plan(root, name, carry.record(&out.profile), accounts, carry.new_os, carry.passwords);
        out.notes = plan.notes.clone();
        let Some(c) = creator else {
            out.status = UserStatus::WouldCreate;
            let shell = plan.account.shell.clone().unwrap_or_default();
            self.set(out, Account { name: name.into(), uid: 0, gid: 0, home: format!("/home/{name}"), shell });
            out.uid = None;
            return;
        };
        let (a, useradd_said) = match create_and_reload(root, accounts, c, &plan.account) {
            Ok(x) => x,
            Err(why) => {
                out.notes.clear();
                out.reason = Some(why);
                return;
            }
        };
        out.status = UserStatus::Created;
        out.notes.extend(useradd_said);
        if plan.account.shell.is_none() {
            let default = format!("the new OS's default: {}", shown_shell(&a.shell));
            match out.notes.iter_mut().find(|n| n.starts_with("shell ")) {
                Some(n) => *n = format!("{n} ({default})"),
                None => out.notes.push(format!("its shell is {default}")),
            }
        }
        if let Err(why) = newuser::set_password(root, name, &plan.password) {
            out.notes.push(format!("its password could not be set ({why}): it has none; set one with `passwd`"));
        }
        self.set(out, a);
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

/// A passwd shell field as a person reads it: empty means `/bin/sh`.
fn shown_shell(shell: &str) -> &str {
    if shell.is_empty() { "/bin/sh" } else { shell }
}

/// What an account the new OS already has lacks of the old one (restore does not change it).
fn left_as_it_is(accounts: &Accounts, a: &Account, record: Option<&AccountRecord>) -> Option<String> {
    let r = record?;
    let missing: Vec<&str> = r.groups.iter().filter(|g| !accounts.is_member(&a.name, g)).map(String::as_str).collect();
    (!missing.is_empty()).then(|| {
        format!(
            "the new OS already has this account and it is left as it is (password, shell, groups); on the old OS it \
             was also in: {}",
            missing.join(", ")
        )
    })
}

/// Creates the account and reads it back; also when `useradd` failed part-way but the account
/// is there (say a home it could not make), with what `useradd` said.
fn create_and_reload(root: &Root, accounts: &mut Accounts, c: &mut dyn CreateAccount, new: &NewAccount) -> Result<(Account, Option<String>), String> {
    let name = &new.name;
    let created = c.create(root.path(), new);
    *accounts = Accounts::load(root)?.ok_or("useradd left no /etc/passwd in the root")?;
    match (created, accounts.user(name).cloned()) {
        (Ok(()), Some(a)) => Ok((a, None)),
        (Ok(()), None) => Err(format!("useradd reported success but {name} is not in /etc/passwd")),
        (Err(why), Some(a)) => Ok((a, Some(format!("the account was made, but {why}")))),
        (Err(why), None) => Err(why),
    }
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

    /// Appends the account to the root's passwd, group and (when there is one) shadow, as
    /// useradd would: the uid asked for or the next of its own, the shell asked for or
    /// `/bin/sh`; supplementary groups are not written.
    pub struct FakeUseradd(pub u32);
    impl CreateAccount for FakeUseradd {
        fn create(&mut self, root: &Path, a: &NewAccount) -> Result<(), String> {
            use std::io::Write;
            let append = |file: &str, line: String| -> Result<(), String> {
                let mut f = std::fs::OpenOptions::new().append(true).open(root.join(file)).map_err(|e| e.to_string())?;
                writeln!(f, "{line}").map_err(|e| e.to_string())
            };
            let id = a.uid.unwrap_or(self.0);
            self.0 += 1;
            let name = &a.name;
            let (gecos, shell) = (a.gecos.clone().unwrap_or_default(), a.shell.clone().unwrap_or_else(|| "/bin/sh".into()));
            append("etc/passwd", format!("{name}:x:{id}:{id}:{gecos}:/home/{name}:{shell}"))?;
            append("etc/group", format!("{name}:x:{id}:"))?;
            if root.join("etc/shadow").exists() {
                append("etc/shadow", format!("{name}:!:20000:0:99999:7:::"))?;
            }
            std::fs::create_dir_all(root.join("home").join(name)).map_err(|e| e.to_string())
        }
    }

    /// Nothing recorded of the old accounts (a Windows capture), passwords allowed.
    pub fn no_records() -> Carry<'static> {
        static NEW_OS: std::sync::OnceLock<NewOs> = std::sync::OnceLock::new();
        Carry { records: &[], passwords: true, new_os: NEW_OS.get_or_init(NewOs::default) }
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

        let m = UserMap::build(&root, &mut acc, &p, false, None, &no_records());
        let st: Vec<_> = m.outcomes.iter().map(|o| (o.profile.as_str(), o.status)).collect();
        assert_eq!(st, [("Bad Name", UserStatus::Missing), ("Carol", UserStatus::Mapped), ("Erin", UserStatus::Missing)]);
        assert!(m.outcomes[2].reason.as_ref().unwrap().contains("no account named \"Erin\""));
        assert_eq!(m.outcomes[2].hint, Some(crate::error::Hint::CreateUsers));
        assert!(!m.outcomes[2].reason.as_ref().unwrap().contains("--"));

        let m = UserMap::build(&root, &mut acc, &p, true, None, &no_records());
        assert_eq!(m.outcomes[2].status, UserStatus::WouldCreate);
        assert_eq!(std::fs::read_to_string(t.path().join("etc/passwd")).unwrap(), PASSWD, "dry run wrote nothing");

        let mut fake = FakeUseradd(2000);
        let m = UserMap::build(&root, &mut acc, &p, true, Some(&mut fake), &no_records());
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

    #[test]
    fn useradd_is_asked_for_the_whole_account() {
        let a = NewAccount {
            name: "alice".into(),
            uid: Some(1000),
            group: None,
            gecos: Some("Alice Liddell,,,".into()),
            shell: Some("/bin/bash".into()),
            groups: vec!["sudo".into(), "audio".into()],
        };
        let args = |root: &str, a: &NewAccount| -> Vec<String> {
            useradd_args(Path::new(root), a).into_iter().map(|s| s.into_string().unwrap()).collect()
        };
        let want = ["--prefix", "/mnt/new", "-m", "-U", "-u", "1000", "-c", "Alice Liddell,,,", "-s", "/bin/bash", "-G", "sudo,audio", "--", "alice"];
        assert_eq!(args("/mnt/new", &a), want);
        let b = NewAccount { name: "bob".into(), group: Some("users".into()), ..NewAccount::default() };
        assert_eq!(args("/", &b), ["-m", "-N", "-g", "users", "--", "bob"]);
    }

    #[test]
    fn an_existing_account_is_left_as_it_is() {
        let t = tempfile::tempdir().unwrap();
        os_root(t.path());
        let root = Root::open(t.path()).unwrap();
        let mut acc = Accounts::load(&root).unwrap().unwrap();
        let records = crate::migrate::accounts::parse(
            "carol:x:1000:1000:Carol,,,:/home/carol:/bin/zsh\n",
            "carol:$y$j9T$s$h:19000:0:99999:7:::\n",
            "users:x:100:carol\nstaff:x:50:carol\nlpadmin:x:120:carol\n",
            &["carol"],
        );
        let carry = Carry { records: &records, ..no_records() };
        let before = std::fs::read(t.path().join("etc/passwd")).unwrap();
        let m = UserMap::build(&root, &mut acc, &profiles(&["carol"]), true, Some(&mut FakeUseradd(2000)), &carry);
        assert_eq!(m.outcomes[0].status, UserStatus::Mapped);
        assert_eq!(m.outcomes[0].notes.len(), 1, "{:?}", m.outcomes[0].notes);
        assert!(m.outcomes[0].notes[0].ends_with("was also in: staff, lpadmin"), "{:?}", m.outcomes[0].notes);
        assert_eq!(std::fs::read(t.path().join("etc/passwd")).unwrap(), before, "nothing written");
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
        let m = UserMap::build(&root, &mut acc, &profiles(&["Frank"]), true, Some(&mut Useradd), &no_records());
        assert_eq!(m.outcomes[0].status, UserStatus::Created, "{:?}", m.outcomes[0].reason);
        assert_eq!(m.accounts["Frank"].name, "frank");
        assert!(t.path().join("home/frank").is_dir());
        assert_eq!(std::fs::read("/etc/passwd").unwrap(), host, "the host's passwd is untouched");
    }
}
