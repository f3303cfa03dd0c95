//! The captured users' accounts, carried whole so the new OS can create them as they were: a
//! capture records each captured Linux user's line of the old OS's `/etc/passwd`, its
//! `/etc/shadow` fields (the password hash and its aging) and its groups from `/etc/group`, in
//! the manifest's `info.accounts` (`docs/store-format.md`, "Accounts"). The store then holds
//! password hashes. Windows sources have no such files: their profiles carry no account.
//!
//! Everything here is read from the old filesystem, so on restore it is untrusted:
//! [`AccountRecord::problems`] says what a restore must not pass on.

use serde::{Deserialize, Serialize};

use crate::fs::FsReader;

/// Largest `/etc/passwd`, `/etc/shadow` or `/etc/group` read.
const DB_CAP: u64 = 8 << 20;

/// One account of the old OS.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccountRecord {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// The primary group's name, when the old OS's group file has the gid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The GECOS field (full name, room, phones: `Alice Liddell,,,`).
    pub gecos: String,
    pub home: String,
    /// The login shell, as the old OS named it (`/bin/bash`).
    pub shell: String,
    /// Supplementary groups, by name, in the order of the old group file.
    pub groups: Vec<String>,
    /// The account's shadow line; `None` when the old OS had none for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow: Option<Shadow>,
}

/// The fields of a shadow line after the name (`shadow(5)`); empty numeric fields are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Shadow {
    /// The password field as it was: a `crypt(5)` hash (`$y$…`), possibly locked (`!` in
    /// front), `*` or `!` (no password), or empty (no password needed).
    pub password: String,
    /// Days since 1970-01-01 of the last change; 0: a change is due at the next login.
    pub last_change: Option<u64>,
    pub min_days: Option<u64>,
    pub max_days: Option<u64>,
    pub warn_days: Option<u64>,
    pub inactive_days: Option<u64>,
    /// Days since 1970-01-01 when the account expires.
    pub expire: Option<u64>,
}

impl Shadow {
    /// The fields after the password as a shadow line has them (`19000:0:99999:7:::`).
    pub fn aging_fields(&self) -> [String; 6] {
        let f = |v: Option<u64>| v.map(|n| n.to_string()).unwrap_or_default();
        [f(self.last_change), f(self.min_days), f(self.max_days), f(self.warn_days), f(self.inactive_days), f(self.expire)]
    }
}

/// A field restore may write into the new OS's account files: no separator, newline or
/// control character.
fn plain_field(s: &str) -> bool {
    !s.chars().any(|c| c == ':' || c.is_control())
}

/// A portable user or group name (`useradd`'s default rule, at most 32 bytes).
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    first
        && name.len() <= 32
        && chars.enumerate().all(|(i, c)| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.') || (c == '$' && i + 2 == name.len())
        })
}

impl AccountRecord {
    /// What in this record a restore must not write into the new OS (it comes from the store,
    /// which is untrusted), in words; empty when every field is usable.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !plain_field(&self.gecos) || self.gecos.len() > 1024 {
            out.push("its full name (GECOS) holds a `:`, a control character or is too long".into());
        }
        if !self.shell.is_empty() && (!self.shell.starts_with('/') || !plain_field(&self.shell) || self.shell.len() > 4095) {
            out.push(format!("its shell {:?} is not an absolute path", self.shell));
        }
        if let Some(g) = self.groups.iter().chain(&self.group).find(|g| !valid_name(g)) {
            out.push(format!("group {g:?} is not a valid group name"));
        }
        if let Some(s) = &self.shadow {
            if !plain_field(&s.password) || !s.password.is_ascii() || s.password.len() > 512 {
                out.push("its password field holds a `:`, a control character or is too long".into());
            }
        }
        out
    }
}

/// The records of the accounts named `names`, from the text of the old OS's passwd, shadow
/// and group files. Names without a passwd line get no record; malformed lines are skipped.
pub fn parse(passwd: &str, shadow: &str, group: &str, names: &[&str]) -> Vec<AccountRecord> {
    let groups: Vec<(&str, Option<u32>, Vec<&str>)> = group
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() == 4 && !f[0].is_empty()).then(|| (f[0], f[2].parse().ok(), f[3].split(',').filter(|m| !m.is_empty()).collect()))
        })
        .collect();
    let shadow_of = |name: &str| {
        shadow.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            let num = |i: usize| f.get(i).and_then(|v| v.parse().ok());
            (f.len() >= 8 && f[0] == name).then(|| Shadow {
                password: f[1].to_string(),
                last_change: num(2),
                min_days: num(3),
                max_days: num(4),
                warn_days: num(5),
                inactive_days: num(6),
                expire: num(7),
            })
        })
    };
    let mut out = Vec::new();
    for name in names {
        let line = passwd.lines().map(|l| l.split(':').collect::<Vec<&str>>()).find(|f| f.len() == 7 && f[0] == *name);
        let Some(f) = line else { continue };
        let (Ok(uid), Ok(gid)) = (f[2].parse::<u32>(), f[3].parse::<u32>()) else { continue };
        let group = groups.iter().find(|g| g.1 == Some(gid)).map(|g| g.0.to_string());
        let supplementary = groups
            .iter()
            .filter(|g| g.1 != Some(gid) && g.2.contains(name))
            .map(|g| g.0.to_string())
            .fold(Vec::new(), |mut v: Vec<String>, g| {
                if !v.contains(&g) {
                    v.push(g);
                }
                v
            });
        out.push(AccountRecord {
            name: name.to_string(),
            uid,
            gid,
            group,
            gecos: f[4].to_string(),
            home: f[5].to_string(),
            shell: f[6].to_string(),
            groups: supplementary,
            shadow: shadow_of(name),
        });
    }
    out
}

/// The records of the accounts named `names`, read from the old OS's `/etc/passwd`,
/// `/etc/shadow` and `/etc/group` on `fs` (a Linux root). A file that cannot be read counts
/// as empty: without a shadow file the records have no password.
pub fn read(fs: &mut dyn FsReader, names: &[&str]) -> Vec<AccountRecord> {
    let mut text = |p: &str| fs.read_small(p.as_bytes(), DB_CAP).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let (passwd, shadow, group) = (text("/etc/passwd"), text("/etc/shadow"), text("/etc/group"));
    parse(&passwd, &shadow, &group, names)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
        alice:x:1000:1000:Alice Liddell,,,:/home/alice:/bin/bash\n\
        bob:x:1234:100:Bob Builder,,,:/home/bob:/bin/zsh\n\
        carol:x:1300:1300::/home/carol:/usr/sbin/nologin\n\
        broken:x:1:2\n";
    const SHADOW: &str = "root:*:19000:0:99999:7:::\n\
        alice:$y$j9T$salt$hash:19700:0:99999:7:::\n\
        bob:!$6$salt$hash:19701::::::\n";
    const GROUP: &str = "root:x:0:\nusers:x:100:\nsudo:x:27:alice,bob\naudio:x:29:alice\nalice:x:1000:\ncarol:x:1300:\nstaff:x:50:alice\n";

    #[test]
    fn parses_whole_accounts() {
        let r = parse(PASSWD, SHADOW, GROUP, &["alice", "bob", "carol", "ghost", "broken"]);
        assert_eq!(r.len(), 3);
        let alice = &r[0];
        assert_eq!((alice.uid, alice.gid, alice.group.as_deref()), (1000, 1000, Some("alice")));
        assert_eq!((alice.gecos.as_str(), alice.home.as_str(), alice.shell.as_str()), ("Alice Liddell,,,", "/home/alice", "/bin/bash"));
        assert_eq!(alice.groups, ["sudo", "audio", "staff"]);
        let s = alice.shadow.as_ref().unwrap();
        assert_eq!((s.password.as_str(), s.last_change, s.min_days, s.max_days, s.warn_days), ("$y$j9T$salt$hash", Some(19700), Some(0), Some(99999), Some(7)));
        assert_eq!((s.inactive_days, s.expire), (None, None));
        assert_eq!(s.aging_fields(), ["19700", "0", "99999", "7", "", ""]);
        assert_eq!(r[1].group.as_deref(), Some("users"));
        assert_eq!(r[1].groups, ["sudo"], "the primary group is not a supplementary one");
        assert_eq!(r[1].shadow.as_ref().unwrap().password, "!$6$salt$hash");
        assert_eq!(r[2].shadow, None, "no shadow line");
        assert!(r.iter().all(|a| a.problems().is_empty()), "{r:?}");
        let v = serde_json::to_value(alice).unwrap();
        assert_eq!(serde_json::from_value::<AccountRecord>(v).unwrap(), *alice);
        assert_eq!(serde_json::from_str::<AccountRecord>("{\"name\": \"x\"}").unwrap().name, "x", "fields may be missing");
    }

    #[test]
    fn untrusted_fields_are_named() {
        let bad = AccountRecord {
            name: "eve".into(),
            gecos: "Eve\nroot::0:0".into(),
            shell: "bin/sh".into(),
            groups: vec!["wheel:x".into()],
            shadow: Some(Shadow { password: "x:0".into(), ..Shadow::default() }),
            ..AccountRecord::default()
        };
        assert_eq!(bad.problems().len(), 4, "{:?}", bad.problems());
        assert!(valid_name("alice") && valid_name("_svc") && valid_name("host$") && valid_name("j.doe-2"));
        assert!(!valid_name("Alice") && !valid_name("1x") && !valid_name("a$b") && !valid_name("") && !valid_name(&"a".repeat(33)));
    }
}
