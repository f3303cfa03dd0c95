//! Linux: `/etc/os-release` (or `/usr/lib/os-release`) for the name, pretty name and version,
//! `/etc/passwd` for the people who log in (1000 ≤ uid < 65534, in file order) and their homes,
//! wherever they are.

use super::{Detection, SMALL_FILE_CAP};
use crate::fs::{FsError, FsReader};
use super::{Account, Os};

pub fn detect(fs: &mut dyn FsReader) -> Detection {
    let mut warnings = Vec::new();
    let mut release = None;
    let mut pretty = None;
    for path in ["/etc/os-release", "/usr/lib/os-release"] {
        match fs.read_small(path.as_bytes(), SMALL_FILE_CAP) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                release = Some(parse_os_release(&text));
                pretty = os_release_value(&text, "PRETTY_NAME");
                break;
            }
            Err(FsError::NotFound { .. }) => {}
            Err(e) => warnings.push(format!("cannot read the OS release file: {e}")),
        }
    }
    let passwd = match fs.read_small(b"/etc/passwd", SMALL_FILE_CAP) {
        Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
        Err(FsError::NotFound { .. }) => None,
        Err(e) => {
            warnings.push(format!("cannot read the user list: {e}; users are not listed"));
            None
        }
    };
    let (name, version, pretty_name) = match release {
        Some((n, v)) => (n, v, pretty),
        // No os-release: still a Linux root if it has a user list and an init.
        None if passwd.is_some() && ["/sbin/init", "/usr/lib/systemd/systemd", "/bin/sh"].iter().any(|p| fs.exists(p.as_bytes())) => {
            ("Linux".to_string(), None, None)
        }
        None => return Detection { os: None, warnings: Vec::new() },
    };
    let users = passwd.as_deref().map(parse_passwd).unwrap_or_default();
    let accounts = passwd.as_deref().map(passwd_accounts).unwrap_or_default();
    let users_from = passwd.is_some().then(|| "passwd".to_string());
    Detection { os: Some(Os { family: "linux".into(), name, version, pretty_name, users, accounts, users_from, ..Os::default() }), warnings }
}

/// One key of an os-release file, unquoted; `None` when absent or empty.
pub fn os_release_value(text: &str, key: &str) -> Option<String> {
    text.lines()
        .filter_map(|l| l.trim().split_once('='))
        .filter(|(k, _)| k.trim() == key)
        .map(|(_, v)| unquote(v.trim()))
        .last()
        .filter(|v| !v.is_empty())
}

/// The accounts of [`parse_passwd`] with their uids and homes.
pub fn passwd_accounts(text: &str) -> Vec<Account> {
    let people = parse_passwd(text);
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            let (name, uid, home) = (f.first()?.trim(), f.get(2)?.trim().parse().ok()?, f.get(5)?.trim());
            people.iter().any(|p| p == name).then(|| Account {
                name: name.to_string(),
                uid: Some(uid),
                profile: (!home.is_empty()).then(|| home.to_string()),
                kind: "local".into(),
                ..Account::default()
            })
        })
        .collect()
}

/// `NAME` (default "Linux") and `VERSION_ID` from an os-release file.
pub fn parse_os_release(text: &str) -> (String, Option<String>) {
    let mut name = None;
    let mut version = None;
    for line in text.lines() {
        let line = line.trim();
        let Some((key, value)) = line.split_once('=') else { continue };
        let value = unquote(value.trim());
        match key.trim() {
            "NAME" if !value.is_empty() => name = Some(value),
            "VERSION_ID" if !value.is_empty() => version = Some(value),
            _ => {}
        }
    }
    (name.unwrap_or_else(|| "Linux".into()), version)
}

/// Shell-style value: strip matching quotes and undo backslash escapes.
fn unquote(v: &str) -> String {
    let inner = match v.as_bytes() {
        [q @ (b'"' | b'\''), .., last] if last == q && v.len() >= 2 => &v[1..v.len() - 1],
        _ => v,
    };
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Login names with 1000 ≤ uid < 65534, in file order.
pub fn parse_passwd(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split(':');
            let name = f.next()?.trim();
            let _password = f.next()?;
            let uid: u32 = f.next()?.trim().parse().ok()?;
            ((1000..65534).contains(&uid) && !name.is_empty() && !name.starts_with('#') && !name.starts_with('+'))
                .then(|| name.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release() {
        let t = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n";
        assert_eq!(parse_os_release(t), ("Debian GNU/Linux".into(), Some("12".into())));
        assert_eq!(parse_os_release("NAME=Arch\\ Linux\n# no version\n"), ("Arch Linux".into(), None));
        assert_eq!(parse_os_release("NAME='Fedora Linux'\nVERSION_ID=40"), ("Fedora Linux".into(), Some("40".into())));
        assert_eq!(parse_os_release("garbage\n=\nNAME=\"\n"), ("\"".into(), None));
        assert_eq!(parse_os_release(""), ("Linux".into(), None));
    }

    #[test]
    fn passwd_users() {
        let t = "root:x:0:0:root:/root:/bin/bash\n\
                 daemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n\
                 bob:x:1001:1001:Bob:/home/bob:/bin/bash\n\
                 alice:x:1000:1000:Alice:/home/alice:/bin/bash\n\
                 nobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\n\
                 broken:x:notanumber:1::/:\n\
                 short\n\
                 +:::::: \n\
                 sys:x:999:999::/:\n\
                 edge:x:65533:1::/:";
        assert_eq!(parse_passwd(t), vec!["bob", "alice", "edge"]);
        let a = passwd_accounts(t);
        assert_eq!(a.len(), 3);
        assert_eq!((a[0].name.as_str(), a[0].uid, a[0].profile.as_deref()), ("bob", Some(1001), Some("/home/bob")));
        assert_eq!(a[2].profile.as_deref(), Some("/"));
        let os = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=Debian\n";
        assert_eq!(os_release_value(os, "PRETTY_NAME").as_deref(), Some("Debian GNU/Linux 12 (bookworm)"));
        assert_eq!(os_release_value(os, "VERSION_ID"), None);
    }
}
