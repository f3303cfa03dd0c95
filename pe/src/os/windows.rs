//! Windows on NTFS: `\Windows\System32` marks it. The version and the accounts come from the
//! registry hives (`Windows\System32\config\SOFTWARE` and `SAM`): each account's profile is
//! where ProfileList says, on this volume or another. A volume with no hives at all (a copy of
//! a system volume, a data partition) falls back to the folders under `\Users`, and says so in
//! `users_from`. A hibernation file with a live header means the volume is not safe to read.

use super::hive::{self, Header, Version};
use super::{Account, Detection, Os};
use crate::fs::{read_head, EntryKind, FsError, FsReader};

/// Profile directories that are not people.
const NOT_PEOPLE: [&str; 6] = ["Public", "Default", "Default User", "All Users", "defaultuser0", "defaultuser100000"];

/// The largest hive read into memory (a busy SOFTWARE hive is 100–200 MiB).
const HIVE_CAP: u64 = 512 << 20;

pub const SOFTWARE: &[u8] = b"/Windows/System32/config/SOFTWARE";
pub const SAM: &[u8] = b"/Windows/System32/config/SAM";

/// What the hives of one Windows volume say.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Registry {
    pub version: Version,
    pub accounts: Vec<Account>,
    pub warnings: Vec<String>,
}

impl Registry {
    /// The drive letter of the volume the hives are on.
    pub fn system_drive(&self) -> char {
        self.version.system_drive()
    }
}

/// The hives of `fs`: `Ok(None)` when there are none, `Err` (said as a warning) when they are
/// there but cannot be read.
pub fn registry(fs: &mut dyn FsReader) -> Result<Option<Registry>, Unreadable> {
    let software = match fs.read_small(SOFTWARE, HIVE_CAP) {
        Ok(b) => b,
        Err(FsError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(Unreadable(format!("cannot read the registry (SOFTWARE hive): {e}"))),
    };
    // The hive reader is a third party's parser of untrusted bytes: a crash is a finding.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| from_hives(fs, &software))).unwrap_or_else(|_| {
        Err(Unreadable("the registry hives crashed their reader (damaged data, or a bug in inplace)".into()))
    })
}

/// Registry hives that are there but cannot be read, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unreadable(pub String);

fn from_hives(fs: &mut dyn FsReader, software: &[u8]) -> Result<Option<Registry>, Unreadable> {
    let mut warnings = Vec::new();
    let (soft, header) = hive::open(software).map_err(|e| Unreadable(format!("the SOFTWARE hive cannot be read ({e})")))?;
    if header == Header::Dirty {
        warnings.push(dirty("SOFTWARE"));
    }
    let version = hive::version(&soft).map_err(|e| Unreadable(format!("the SOFTWARE hive cannot be read ({e})")))?;
    let profiles = hive::profiles(&soft, version.system_drive()).map_err(|e| Unreadable(format!("the profile list cannot be read ({e})")))?;
    let sam = match fs.read_small(SAM, HIVE_CAP) {
        Ok(bytes) => match hive::open(&bytes).and_then(|(h, header)| Ok((hive::sam(&h)?, header))) {
            Ok((s, header)) => {
                if header == Header::Dirty {
                    warnings.push(dirty("SAM"));
                }
                s
            }
            Err(e) => {
                warnings.push(format!("the SAM hive cannot be read ({e}); local and domain accounts are not told apart"));
                hive::Sam::default()
            }
        },
        Err(e) => {
            warnings.push(format!("cannot read the SAM hive ({e}); local and domain accounts are not told apart"));
            hive::Sam::default()
        }
    };
    Ok(Some(Registry { accounts: accounts(&profiles, &sam), version, warnings }))
}

fn dirty(name: &str) -> String {
    format!(
        "the {name} hive was not closed cleanly (Windows did not shut down fully); it was read \
         as it is, so the latest changes may be missing — boot Windows and shut it down fully"
    )
}

/// One account per profile of a person, named from SAM when it is local, from its folder
/// otherwise; then the local accounts that never logged on.
pub fn accounts(profiles: &[hive::Profile], sam: &hive::Sam) -> Vec<Account> {
    let local_rid = |sid: &str| -> Option<u32> {
        let (domain, rid) = sid.rsplit_once('-')?;
        let rid: u32 = rid.parse().ok()?;
        match &sam.machine_sid {
            Some(m) if m != domain => None,
            _ => sam.accounts.iter().any(|(_, r)| *r == rid).then_some(rid),
        }
    };
    let mut out = Vec::new();
    for p in profiles {
        let folder = p.path.rsplit(['\\', '/']).next().unwrap_or(&p.path).to_string();
        let (name, kind) = match local_rid(&p.sid) {
            Some(rid) => (sam.accounts.iter().find(|(_, r)| *r == rid).map(|(n, _)| n.clone()).unwrap_or(folder), "local"),
            None => (folder, "domain"),
        };
        let last_use = p.last_use.and_then(rfc3339);
        out.push(Account { name, sid: Some(p.sid.clone()), uid: None, profile: Some(p.path.clone()), kind: kind.into(), last_use });
    }
    for (name, rid) in &sam.accounts {
        let sid = sam.machine_sid.as_ref().map(|m| format!("{m}-{rid}"));
        let has_profile = out.iter().any(|a| a.kind == "local" && a.name.eq_ignore_ascii_case(name));
        // RIDs under 1000 are the built-in accounts (Administrator, Guest, …).
        if *rid >= 1000 && !has_profile {
            out.push(Account { name: name.clone(), sid, uid: None, profile: None, kind: "local".into(), last_use: None });
        }
    }
    out
}

/// The last year RFC 3339 can write.
const YEAR_10000: i64 = 253_402_300_800;

/// A FILETIME as RFC 3339 (UTC); `None` before 1970 or after 9999 (a damaged value).
fn rfc3339(ft: u64) -> Option<String> {
    let secs = hive::filetime_to_unix(ft);
    (0..YEAR_10000).contains(&secs).then(|| {
        humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs as u64)).to_string()
    })
}

/// The path on the volume of drive `drive` of a Windows path (`C:\Users\x` → `/Users/x`);
/// `None` when it is on another drive.
pub fn path_on(drive: char, windows_path: &str) -> Option<String> {
    (hive::drive_letter(windows_path)? == drive).then(|| windows_path[2..].replace('\\', "/"))
}

/// The path of a Windows path on its own volume, drive letter dropped (`D:\Users\x` →
/// `/Users/x`).
pub fn path_without_drive(windows_path: &str) -> Option<String> {
    hive::drive_letter(windows_path)?;
    Some(windows_path[2..].replace('\\', "/"))
}

pub fn detect(fs: &mut dyn FsReader) -> Detection {
    if !fs.is_dir(b"/Windows/System32") {
        return Detection::default();
    }
    let mut warnings = Vec::new();
    let folders = match fs.read_dir(b"/Users") {
        Ok(entries) => profile_names(entries.into_iter().filter(|e| e.kind == EntryKind::Dir).map(|e| e.name.lossy().into_owned())),
        Err(FsError::NotFound { .. }) => Vec::new(),
        Err(e) => {
            warnings.push(format!("cannot list the user profiles: {e}"));
            Vec::new()
        }
    };
    let mut os = Os { family: "windows".into(), name: "Windows".into(), ..Os::default() };
    match registry(fs) {
        Ok(Some(reg)) => {
            warnings.extend(reg.warnings.iter().cloned());
            let drive = reg.system_drive();
            for f in orphans(&folders, &reg.accounts, drive) {
                warnings.push(format!(
                    "the profile folder \\Users\\{f} belongs to no account in the registry (a \
                     deleted account's leftovers?); it is not captured unless the preset names \
                     it in [migrate] users"
                ));
            }
            os.version = reg.version.describe();
            os.edition = reg.version.edition_id.clone();
            os.users = reg.accounts.iter().map(|a| a.name.clone()).collect();
            os.accounts = reg.accounts;
            os.users_from = Some("registry".into());
        }
        other => {
            if let Err(w) = other {
                warnings.push(format!("{w}; the users listed are the folders under \\Users"));
            }
            os.users = folders;
            os.users_from = Some("folders".into());
        }
    }
    if let Some(w) = hibernation(fs) {
        warnings.push(w);
    }
    os.sysprep = super::sysprep::Sysprep::read(fs);
    Detection { os: Some(os), warnings }
}

/// Folders under `\Users` (of the volume of `drive`) that are no account's profile.
pub fn orphans(folders: &[String], accounts: &[Account], drive: char) -> Vec<String> {
    folders
        .iter()
        .filter(|f| {
            let home = format!("/Users/{f}");
            !accounts.iter().filter_map(|a| path_on(drive, a.profile.as_deref()?)).any(|p| p.eq_ignore_ascii_case(&home))
        })
        .cloned()
        .collect()
}

/// Directory names under `\Users` that are people, in directory order.
pub fn profile_names(dirs: impl Iterator<Item = String>) -> Vec<String> {
    dirs.filter(|n| !NOT_PEOPLE.iter().any(|x| x.eq_ignore_ascii_case(n))).collect()
}

/// A warning when `\hiberfil.sys` holds a hibernation image (`HIBR`, `WAKE`, `RSTR`).
fn hibernation(fs: &mut dyn FsReader) -> Option<String> {
    let head = read_head(fs, b"/hiberfil.sys", 4).ok()?;
    let magic = String::from_utf8_lossy(&head).to_ascii_uppercase();
    matches!(magic.as_str(), "HIBR" | "WAKE" | "RSTR").then(|| {
        format!(
            "Windows is hibernated or was shut down with Fast Startup (hiberfil.sys header \
             {magic:?}); files on this volume may be out of date — boot Windows and shut it \
             down fully (`shutdown /s /t 0`, or turn off Fast Startup) before migrating"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_exclude_system_dirs() {
        let names = ["Carol", "Public", "default", "Dave", "All Users", "Default User"].map(String::from);
        assert_eq!(profile_names(names.into_iter()), vec!["Carol", "Dave"]);
    }

    #[test]
    fn accounts_are_local_by_machine_sid_and_rid() {
        let m = "S-1-5-21-1-2-3";
        let p = |sid: &str, path: &str| hive::Profile { sid: sid.into(), path: path.into(), last_use: None };
        let profiles = [
            p(&format!("{m}-1001"), "C:\\Users\\carol"),
            p("S-1-5-21-9-9-9-1001", "C:\\Users\\carol.CONTOSO"),
            p(&format!("{m}-1002"), "D:\\Users\\dave"),
        ];
        let sam = hive::Sam {
            machine_sid: Some(m.into()),
            accounts: vec![("Carol".into(), 1001), ("dave".into(), 1002), ("Guest".into(), 501), ("erin".into(), 1003)],
        };
        let a = accounts(&profiles, &sam);
        let got: Vec<(&str, &str, Option<&str>)> = a.iter().map(|a| (a.name.as_str(), a.kind.as_str(), a.profile.as_deref())).collect();
        assert_eq!(
            got,
            [
                ("Carol", "local", Some("C:\\Users\\carol")),
                ("carol.CONTOSO", "domain", Some("C:\\Users\\carol.CONTOSO")),
                ("dave", "local", Some("D:\\Users\\dave")),
                ("erin", "local", None),
            ]
        );
        assert_eq!(a[3].sid.as_deref(), Some("S-1-5-21-1-2-3-1003"));
        assert_eq!(path_on('C', "C:\\Users\\carol").as_deref(), Some("/Users/carol"));
        assert_eq!(path_on('C', "D:\\Users\\dave"), None);
        let folders = ["carol", "old", "carol.contoso"].map(String::from);
        assert_eq!(orphans(&folders, &a, 'C'), ["old"]);
    }
}
