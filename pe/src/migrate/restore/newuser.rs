//! Creating a missing account whole, from what the capture recorded of it on the old OS
//! ([`AccountRecord`]): what the new OS can take, what `useradd` is asked for
//! ([`NewAccount`]), and the password fields written into the new OS's `/etc/shadow` once the
//! account exists ([`set_password`]). The rules, also in `docs/store-format.md` ("Accounts on
//! restore"):
//!
//! - **Password.** The old hash is kept when the new OS's libcrypt (the library every shadow
//!   reader — `pam_unix`, `login`, `su`, `sshd` — checks passwords with) implements its scheme:
//!   the scheme's prefix (`$y$`, `$gy$`, `$7$`, `$2b$`, `$6$`, `$5$`, `$1$`, …) is in that
//!   library's method table; bcrypt and the yescrypt family also need libxcrypt (glibc's old
//!   libcrypt never had them). The aging fields come with it. A DES hash, a scheme the new OS
//!   cannot check, an empty password, or the restore choice `passwords = false` give an empty
//!   password that must be changed at the first login (last change 0, as `chage -d 0`). A
//!   locked password stays locked. With no record (a Windows profile) the account is left as
//!   `useradd` makes it, locked, and the report says it needs a password.
//! - **Shell.** The old one when the new OS lists it in `/etc/shells` and has it (a no-login
//!   shell such as `/usr/sbin/nologin` needs no listing); otherwise `useradd`'s default.
//! - **Full name** (GECOS) as it was; **uid** as it was when it is a normal user's (1000 to
//!   59999) and free in the new OS; **groups**: those of the old supplementary groups the new
//!   OS has, and the primary group when it is not the account's own (then made with it).
//!
//! Anything not carried is said in the user's notes in the report.

use std::fs::File;
use std::io::Read;

use rustix::fs::{Mode, OFlags, ResolveFlags};

use super::paths::{RelPath, Root};
use super::accountdb::{root_read, Accounts};
use crate::migrate::accounts::{AccountRecord, Shadow};

/// What restore asks `useradd` for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewAccount {
    pub name: String,
    pub uid: Option<u32>,
    /// The primary group, when it is an existing group; `None`: a group of the account's own
    /// name is made with it.
    pub group: Option<String>,
    pub gecos: Option<String>,
    /// `None`: the new OS's default.
    pub shell: Option<String>,
    /// Supplementary groups, all existing in the new OS.
    pub groups: Vec<String>,
}

/// The password a new account gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Password {
    /// The old OS's shadow fields (hash and aging), as they were.
    Carry(Shadow),
    /// An empty password that must be changed at the first login.
    MustChange,
    /// As `useradd` made it (locked): someone must set one.
    Unset,
}

/// How a missing account is created, with what is not carried, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creation {
    pub account: NewAccount,
    pub password: Password,
    pub notes: Vec<String>,
}

/// What the new OS offers an account: the password schemes its libcrypt checks and its
/// login shells.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewOs {
    /// The libcrypt found (as the new OS sees it), and whether it is libxcrypt.
    pub libcrypt: Option<String>,
    pub xcrypt: bool,
    /// Scheme prefixes present in its method table.
    pub prefixes: Vec<&'static str>,
    /// `/etc/shells`.
    pub shells: Vec<String>,
    /// Shells of `shells` that are missing or not executable in the root.
    pub absent_shells: Vec<String>,
}

/// Password schemes by prefix: `(prefix, name, needs libxcrypt)`. Longest prefixes first.
const SCHEMES: &[(&str, &str, bool)] = &[
    ("$gy$", "gost-yescrypt", true),
    ("$y$", "yescrypt", true),
    ("$7$", "scrypt", true),
    ("$2b$", "bcrypt", true),
    ("$2a$", "bcrypt", true),
    ("$2y$", "bcrypt", true),
    ("$sha1$", "sha1crypt", true),
    ("$md5", "sunmd5", true),
    ("$6$", "sha512crypt", false),
    ("$5$", "sha256crypt", false),
    ("$1$", "md5crypt", false),
];

/// Where libcrypt lives, by distribution (Debian multiarch, Fedora/SUSE lib64, Arch).
const LIB_DIRS: &[&str] = &["/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib64", "/lib64", "/usr/lib", "/lib"];
/// Largest library read.
const LIB_CAP: u64 = 16 << 20;
/// Shells that refuse logins: kept even when `/etc/shells` does not list them.
const NO_LOGIN: &[&str] = &["nologin", "false"];

/// Opens `abs` (a path as the new OS sees it) for reading, resolving the new OS's own links
/// as if the root were `/` (`openat2` with `RESOLVE_IN_ROOT`). `None` when it cannot.
fn open_in_root(root: &Root, abs: &str) -> Option<File> {
    let rel = RelPath::parse_abs(abs).ok()?;
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY;
    let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    rustix::fs::openat2(root.fd(), rel.to_string(), flags, Mode::empty(), resolve).ok().map(File::from)
}

/// Whether `abs` is an executable regular file in the root.
fn executable(root: &Root, abs: &str) -> bool {
    open_in_root(root, abs)
        .and_then(|f| rustix::fs::fstat(&f).ok())
        .is_some_and(|st| st.st_mode & 0o170000 == 0o100000 && st.st_mode & 0o111 != 0)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

impl NewOs {
    /// Looks at the root: its libcrypt and `/etc/shells`. Reads only.
    pub fn probe(root: &Root) -> NewOs {
        let mut os = NewOs::default();
        let found = LIB_DIRS.iter().flat_map(|d| ["libcrypt.so.2", "libcrypt.so.1"].map(|f| format!("{d}/{f}"))).find_map(|p| {
            let mut bytes = Vec::new();
            open_in_root(root, &p)?.take(LIB_CAP).read_to_end(&mut bytes).ok()?;
            Some((p, bytes))
        });
        if let Some((path, lib)) = found {
            os.xcrypt = contains(&lib, b"XCRYPT_2.0");
            os.prefixes = SCHEMES.iter().filter(|s| contains(&lib, s.0.as_bytes())).map(|s| s.0).collect();
            os.libcrypt = Some(path);
        }
        let shells = root_read(root, "/etc/shells").ok().flatten().unwrap_or_default();
        for s in shells.lines().map(str::trim).filter(|l| l.starts_with('/')) {
            if executable(root, s) {
                os.shells.push(s.to_string());
            } else {
                os.absent_shells.push(s.to_string());
            }
        }
        os
    }

    /// Whether the new OS checks `hash`: `Ok(scheme)`, or why not.
    pub(crate) fn checks(&self, hash: &str) -> Result<&'static str, String> {
        let Some(&(prefix, scheme, xcrypt)) = SCHEMES.iter().find(|s| hash.starts_with(s.0)) else {
            return Err(if hash.len() == 13 || hash.starts_with('_') {
                "a DES hash, which is too weak to keep".into()
            } else {
                "a hash of a scheme inplace does not know".into()
            });
        };
        let Some(lib) = &self.libcrypt else {
            return Err(format!("a {scheme} hash, and the new OS has no libcrypt to check it with"));
        };
        if !self.prefixes.contains(&prefix) || (xcrypt && !self.xcrypt) {
            return Err(format!("a {scheme} hash, which the new OS's libcrypt ({lib}) does not implement"));
        }
        Ok(scheme)
    }

    /// Whether `shell` can be the account's shell.
    fn has_shell(&self, root: &Root, shell: &str) -> bool {
        let name = shell.rsplit('/').next().unwrap_or("");
        self.shells.iter().any(|s| s == shell) || (NO_LOGIN.contains(&name) && executable(root, shell))
    }
}

/// How to create the account `name` for the old OS's `record` (none for a Windows profile),
/// given the new OS's `accounts` and what it offers. `passwords`: carry password hashes.
pub(crate) fn plan(root: &Root, name: &str, record: Option<&AccountRecord>, accounts: &Accounts, os: &NewOs, passwords: bool) -> Creation {
    let mut c = Creation { account: NewAccount { name: name.into(), ..NewAccount::default() }, password: Password::Unset, notes: Vec::new() };
    let Some(r) = record else {
        if passwords {
            c.notes.push("no password: the old OS's account was not carried (a Windows profile carries none); set one with `passwd` before logging in".into());
        } else {
            c.password = Password::MustChange;
            c.notes.push(must_change("the restore choices do not carry passwords"));
        }
        return c;
    };
    let problems = r.problems();
    if !problems.is_empty() {
        // The store is untrusted: a record with a bad field is not used at all.
        c.notes.push(format!("the old account's record is not used ({}); the account is made as for a new user", problems.join("; ")));
        c.password = Password::MustChange;
        c.notes.push(must_change("its record could not be used"));
        return c;
    }
    c.account.gecos = (!r.gecos.is_empty()).then(|| r.gecos.clone());
    if (1000..60000).contains(&r.uid) {
        match accounts.users.iter().find(|a| a.uid == r.uid) {
            None => c.account.uid = Some(r.uid),
            Some(other) => c.notes.push(format!("uid {} is {}'s in the new OS: the account gets another", r.uid, other.name)),
        }
    }
    match r.group.as_deref() {
        Some(g) if g != r.name && accounts.gid(g).is_some() => c.account.group = Some(g.into()),
        Some(g) if g != r.name => c.notes.push(format!("primary group {g} is not in the new OS: the account gets a group of its own name")),
        _ => {}
    }
    let (have, lack): (Vec<&String>, Vec<&String>) = r.groups.iter().filter(|g| **g != r.name).partition(|g| accounts.gid(g).is_some());
    c.account.groups = have.into_iter().cloned().collect();
    if !lack.is_empty() {
        let names: Vec<&str> = lack.iter().map(|g| g.as_str()).collect();
        c.notes.push(format!("groups not in the new OS, not added: {}", names.join(", ")));
    }
    if !r.shell.is_empty() {
        if os.has_shell(root, &r.shell) {
            c.account.shell = Some(r.shell.clone());
        } else {
            c.notes.push(format!("shell {} is not a login shell of the new OS (its /etc/shells, or missing): it gets the new OS's default", r.shell));
        }
    }
    let (p, note) = password(r, os, passwords);
    c.password = p;
    c.notes.push(note);
    c
}

fn must_change(why: &str) -> String {
    format!("password not carried ({why}): the account has an empty password, and its first login must set a new one")
}

/// The password for `r` and the note about it.
fn password(r: &AccountRecord, os: &NewOs, passwords: bool) -> (Password, String) {
    let Some(shadow) = &r.shadow else {
        return (Password::Unset, "no password: the old OS had no shadow entry for it; set one with `passwd` before logging in".into());
    };
    if !passwords {
        return (Password::MustChange, must_change("the restore choices do not carry passwords"));
    }
    let field = shadow.password.as_str();
    let hash = field.trim_start_matches('!');
    if field.is_empty() {
        return (Password::MustChange, must_change("it had an empty password on the old OS"));
    }
    if hash.is_empty() || hash == "*" {
        let note = "password: it had none on the old OS (locked), and has none here; set one with `passwd` if it needs one";
        return (Password::Carry(shadow.clone()), note.into());
    }
    match os.checks(hash) {
        Ok(scheme) if hash.len() < field.len() => {
            (Password::Carry(shadow.clone()), format!("password: the old one ({scheme}), locked on the old OS and locked here too"))
        }
        Ok(scheme) => (Password::Carry(shadow.clone()), format!("password: the old one ({scheme}; the new OS's libcrypt checks it)")),
        Err(why) => (Password::MustChange, must_change(&format!("the old one is {why}"))),
    }
}

/// Writes `p` into the shadow line of `name` in the root's `/etc/shadow` (through a temporary
/// file and a rename, keeping the file's owner and mode). `Unset` writes nothing.
pub(crate) fn set_password(root: &Root, name: &str, p: &Password) -> Result<(), String> {
    let fields: Vec<String> = match p {
        Password::Unset => return Ok(()),
        Password::Carry(s) => std::iter::once(s.password.clone()).chain(s.aging_fields()).collect(),
        Password::MustChange => vec![String::new(), "0".into()],
    };
    let etc = RelPath::parse_abs("/etc").map_err(|e| e.to_string())?;
    let dir = root.open_abs(&etc).map_err(|e| e.to_string())?.ok_or("the new OS has no /etc")?;
    let shown = root.show(&etc.join(&RelPath::parse(b"shadow").map_err(|e| e.to_string())?));
    let fd = rustix::fs::openat(&dir, "shadow", OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    let st = rustix::fs::fstat(&fd).map_err(|e| format!("{shown}: {e}"))?;
    let mut text = String::new();
    File::from(fd).take(16 << 20).read_to_string(&mut text).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let mut found = false;
    let mut out = String::with_capacity(text.len() + 128);
    for line in text.lines() {
        let mut f: Vec<String> = line.split(':').map(String::from).collect();
        if f.first().is_some_and(|n| n == name) && !found {
            found = true;
            f.resize(f.len().max(9), String::new());
            for (i, v) in fields.iter().enumerate() {
                f[1 + i] = v.clone();
            }
            out.push_str(&f.join(":"));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    if !found {
        return Err(format!("{shown} has no line for {name}"));
    }
    let tmp = format!(".inplace-shadow.{}", std::process::id());
    let mode = Mode::from_raw_mode(st.st_mode & 0o7777);
    let new = rustix::fs::openat(&dir, tmp.as_str(), OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| format!("writing {shown}: {e}"))?;
    let file = File::from(new);
    let r = (|| -> std::io::Result<()> {
        if rustix::process::geteuid().is_root() {
            rustix::fs::fchown(&file, Some(rustix::fs::Uid::from_raw(st.st_uid)), Some(rustix::fs::Gid::from_raw(st.st_gid)))?;
        }
        rustix::fs::fchmod(&file, mode)?;
        std::io::Write::write_all(&mut &file, out.as_bytes())?;
        file.sync_all()?;
        rustix::fs::renameat(&dir, tmp.as_str(), &dir, "shadow")?;
        Ok(())
    })();
    if let Err(e) = r {
        let _ = rustix::fs::unlinkat(&dir, tmp.as_str(), rustix::fs::AtFlags::empty());
        return Err(format!("writing {shown}: {e}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::accounts::parse;

    fn xcrypt() -> NewOs {
        NewOs {
            libcrypt: Some("/usr/lib/x86_64-linux-gnu/libcrypt.so.1".into()),
            xcrypt: true,
            prefixes: SCHEMES.iter().map(|s| s.0).collect(),
            shells: vec!["/bin/sh".into(), "/bin/bash".into()],
            absent_shells: vec![],
        }
    }

    #[test]
    fn schemes_by_what_the_library_has() {
        let x = xcrypt();
        assert_eq!(x.checks("$y$j9T$salt$hash"), Ok("yescrypt"));
        assert_eq!(x.checks("$gy$j9T$salt$hash"), Ok("gost-yescrypt"));
        assert_eq!(x.checks("$2b$10$abc"), Ok("bcrypt"));
        assert_eq!(x.checks("$6$salt$hash"), Ok("sha512crypt"));
        assert!(x.checks("abcdefghijklm").unwrap_err().contains("DES"));
        assert!(x.checks("$9$what").unwrap_err().contains("does not know"));
        // glibc's old libcrypt: sha512 yes, yescrypt and bcrypt no.
        let glibc = NewOs { xcrypt: false, prefixes: vec!["$6$", "$5$", "$1$", "$y$"], ..xcrypt() };
        assert_eq!(glibc.checks("$6$s$h"), Ok("sha512crypt"));
        assert!(glibc.checks("$y$j9T$s$h").unwrap_err().contains("does not implement"));
        let strong = NewOs { prefixes: vec!["$y$", "$6$"], ..xcrypt() };
        assert!(strong.checks("$1$s$h").unwrap_err().contains("md5crypt"));
        let none = NewOs::default();
        assert!(none.checks("$6$s$h").unwrap_err().contains("no libcrypt"));
    }

    #[test]
    fn probes_a_root() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join("usr/lib/x86_64-linux-gnu")).unwrap();
        std::fs::create_dir_all(r.join("usr/bin")).unwrap();
        std::fs::create_dir_all(r.join("etc")).unwrap();
        // Merged /usr: /lib and /bin are links, resolved inside the root.
        std::os::unix::fs::symlink("usr/lib", r.join("lib")).unwrap();
        std::os::unix::fs::symlink("usr/bin", r.join("bin")).unwrap();
        std::fs::write(r.join("usr/lib/x86_64-linux-gnu/libcrypt.so.1.1.0"), b"\x7fELF..XCRYPT_2.0\0$y$\0$6$\0$2b$\0").unwrap();
        std::os::unix::fs::symlink("libcrypt.so.1.1.0", r.join("usr/lib/x86_64-linux-gnu/libcrypt.so.1")).unwrap();
        std::fs::write(r.join("usr/bin/bash"), b"#!").unwrap();
        std::fs::set_permissions(r.join("usr/bin/bash"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        std::fs::write(r.join("etc/shells"), "# shells\n/bin/bash\n/usr/bin/zsh\n").unwrap();
        let root = Root::open(r).unwrap();
        let os = NewOs::probe(&root);
        assert_eq!(os.libcrypt.as_deref(), Some("/usr/lib/x86_64-linux-gnu/libcrypt.so.1"));
        assert!(os.xcrypt);
        assert_eq!(os.prefixes, ["$y$", "$2b$", "$6$"]);
        assert_eq!((os.shells.clone(), os.absent_shells.clone()), (vec!["/bin/bash".to_string()], vec!["/usr/bin/zsh".to_string()]));
        assert_eq!(os.checks("$y$j9T$s$h"), Ok("yescrypt"));
        assert!(os.checks("$5$s$h").is_err());
    }

    const PASSWD: &str = "alice:x:1000:1000:Alice Liddell,,,:/home/alice:/bin/bash\nzed:x:1001:100::/home/zed:/usr/bin/zsh\n";
    const SHADOW: &str = "alice:$y$j9T$salt$hash:19700:0:99999:7:::\nzed:$1$old$md5:19000::::::\n";
    const GROUP: &str = "sudo:x:27:alice\naudio:x:29:alice\nlpadmin:x:120:alice\nalice:x:1000:\nusers:x:100:\n";

    #[test]
    fn plans_the_account_whole() {
        let t = tempfile::tempdir().unwrap();
        let root = Root::open(t.path()).unwrap();
        let new = Accounts::parse("root:x:0:0:root:/root:/bin/bash\nsvc:x:1001:1001::/srv:/bin/sh\n", "root:x:0:\nsudo:x:27:\naudio:x:29:\nusers:x:100:\n");
        let recs = parse(PASSWD, SHADOW, GROUP, &["alice", "zed"]);
        let os = NewOs { prefixes: vec!["$y$", "$6$"], ..xcrypt() };
        let c = plan(&root, "alice", Some(&recs[0]), &new, &os, true);
        assert_eq!(
            c.account,
            NewAccount {
                name: "alice".into(),
                uid: Some(1000),
                group: None,
                gecos: Some("Alice Liddell,,,".into()),
                shell: Some("/bin/bash".into()),
                groups: vec!["sudo".into(), "audio".into()],
            }
        );
        assert_eq!(c.password, Password::Carry(recs[0].shadow.clone().unwrap()));
        assert!(c.notes.iter().any(|n| n == "groups not in the new OS, not added: lpadmin"), "{:?}", c.notes);
        assert!(c.notes.iter().any(|n| n.contains("the old one (yescrypt")), "{:?}", c.notes);

        // md5 where the library lacks it, a shell the new OS lacks, a taken uid, a shared
        // primary group.
        let z = plan(&root, "zed", Some(&recs[1]), &new, &os, true);
        assert_eq!((z.account.uid, z.account.group.as_deref(), z.account.shell.as_deref()), (None, Some("users"), None));
        assert_eq!(z.password, Password::MustChange);
        let notes = z.notes.join("\n");
        assert!(notes.contains("uid 1001 is svc's") && notes.contains("shell /usr/bin/zsh") && notes.contains("md5crypt"), "{notes}");

        // The preset's passwords = false; a Windows profile; a locked account.
        assert_eq!(plan(&root, "alice", Some(&recs[0]), &new, &os, false).password, Password::MustChange);
        let w = plan(&root, "carol", None, &new, &os, true);
        assert_eq!((w.password, w.account.gecos), (Password::Unset, None));
        assert!(w.notes[0].contains("set one with `passwd`"));
        let mut locked = recs[0].clone();
        locked.shadow.as_mut().unwrap().password = "!$y$j9T$salt$hash".into();
        let l = plan(&root, "alice", Some(&locked), &new, &os, true);
        assert!(matches!(l.password, Password::Carry(_)) && l.notes.iter().any(|n| n.contains("locked here too")));
        let mut empty = recs[0].clone();
        empty.shadow.as_mut().unwrap().password.clear();
        assert_eq!(plan(&root, "alice", Some(&empty), &new, &os, true).password, Password::MustChange);
        // A record with a hostile field is not used.
        let mut bad = recs[0].clone();
        bad.gecos = "x\nroot::0:0::/:/bin/sh".into();
        let b = plan(&root, "alice", Some(&bad), &new, &os, true);
        assert_eq!((b.account.gecos, b.password), (None, Password::MustChange));
    }

    #[test]
    fn writes_the_shadow_line() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("etc")).unwrap();
        let shadow = t.path().join("etc/shadow");
        std::fs::write(&shadow, "root:*:19000:0:99999:7:::\nalice:!:20000:0:99999:7:::\nbob:!:20000\n").unwrap();
        std::fs::set_permissions(&shadow, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
        let root = Root::open(t.path()).unwrap();
        let recs = parse(PASSWD, SHADOW, GROUP, &["alice"]);
        set_password(&root, "alice", &Password::Carry(recs[0].shadow.clone().unwrap())).unwrap();
        set_password(&root, "bob", &Password::MustChange).unwrap();
        set_password(&root, "root", &Password::Unset).unwrap();
        assert_eq!(
            std::fs::read_to_string(&shadow).unwrap(),
            "root:*:19000:0:99999:7:::\nalice:$y$j9T$salt$hash:19700:0:99999:7:::\nbob::0::::::\n"
        );
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&shadow).unwrap().permissions()) & 0o777, 0o640);
        assert!(set_password(&root, "ghost", &Password::MustChange).unwrap_err().contains("no line for ghost"));
        assert_eq!(std::fs::read_dir(t.path().join("etc")).unwrap().count(), 1, "no temporary file left");
    }
}
