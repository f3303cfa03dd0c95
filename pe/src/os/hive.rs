//! Windows registry hives, read-only, through `nt-hive`: the version from SOFTWARE, the profile
//! list from SOFTWARE, the local accounts from SAM. Pure functions over a hive's bytes; bad
//! bytes give a [`HiveError`], never a panic.

use nt_hive::{Hive, KeyNode, KeyValueDataType, NtHiveError};

/// A hive that could not be read, or a key or value in it that is missing or malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {detail}")]
pub struct HiveError {
    pub what: String,
    pub detail: String,
}

fn err(what: &str, detail: impl ToString) -> HiveError {
    HiveError { what: what.to_string(), detail: detail.to_string() }
}

/// Whether the hive's header was consistent. A hive Windows was still writing (its sequence
/// numbers differ, the logs not replayed) is read anyway, with a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    Clean,
    Dirty,
}

/// Opens `bytes` as a hive, accepting a dirty header.
pub fn open(bytes: &[u8]) -> Result<(Hive<&[u8]>, Header), HiveError> {
    // Said plainly, before nt-hive's own error about a field offset.
    if bytes.get(..4) != Some(b"regf") {
        return Err(err("not a registry hive", "no \"regf\" signature at its start"));
    }
    match Hive::new(bytes) {
        Ok(h) => Ok((h, Header::Clean)),
        Err(NtHiveError::SequenceNumberMismatch { .. } | NtHiveError::InvalidChecksum { .. }) => {
            Hive::without_validation(bytes).map(|h| (h, Header::Dirty)).map_err(|e| err("not a registry hive", e))
        }
        Err(e) => Err(err("not a registry hive", e)),
    }
}

/// The key at `path` (backslash-separated) under the root, if present.
fn key<'h>(hive: &'h Hive<&'h [u8]>, path: &str) -> Result<Option<KeyNode<'h, &'h [u8]>>, HiveError> {
    let root = hive.root_key_node().map_err(|e| err("the hive's root key", e))?;
    match root.subpath(path) {
        None => Ok(None),
        Some(Ok(k)) => Ok(Some(k)),
        Some(Err(e)) => Err(err(path, e)),
    }
}

/// A `REG_SZ`/`REG_EXPAND_SZ` value as text, `None` when absent or of another type.
fn string(k: &KeyNode<'_, &[u8]>, name: &str) -> Option<String> {
    let v = k.value(name)?.ok()?;
    if !matches!(v.data_type().ok()?, KeyValueDataType::RegSZ | KeyValueDataType::RegExpandSZ) {
        return None;
    }
    let bytes = v.data().ok()?.into_vec().ok()?;
    let units: Vec<u16> = bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
    let s = String::from_utf16_lossy(&units);
    Some(s.trim_end_matches('\0').to_string())
}

/// A `REG_DWORD` value, `None` when absent or of another type.
fn dword(k: &KeyNode<'_, &[u8]>, name: &str) -> Option<u32> {
    k.value(name)?.ok()?.dword_data().ok()
}

/// A `REG_BINARY` (or any) value's raw bytes.
fn binary(k: &KeyNode<'_, &[u8]>, name: &str) -> Option<Vec<u8>> {
    k.value(name)?.ok()?.data().ok()?.into_vec().ok()
}

/// What SOFTWARE\Microsoft\Windows NT\CurrentVersion says about the installed Windows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Version {
    pub product_name: Option<String>,
    pub edition_id: Option<String>,
    /// `DisplayVersion` (20H2 and later), else `ReleaseId`.
    pub display_version: Option<String>,
    pub build: Option<u32>,
    pub ubr: Option<u32>,
    /// `SystemRoot` (`C:\WINDOWS`): its drive letter is the system volume's.
    pub system_root: Option<String>,
}

const CURRENT_VERSION: &str = "Microsoft\\Windows NT\\CurrentVersion";

/// The version of the Windows whose SOFTWARE hive is `software`.
pub fn version(software: &Hive<&[u8]>) -> Result<Version, HiveError> {
    let k = key(software, CURRENT_VERSION)?.ok_or_else(|| err(CURRENT_VERSION, "the key is missing"))?;
    Ok(Version {
        product_name: string(&k, "ProductName"),
        edition_id: string(&k, "EditionID"),
        display_version: string(&k, "DisplayVersion").or_else(|| string(&k, "ReleaseId")),
        build: string(&k, "CurrentBuildNumber").and_then(|b| b.trim().parse().ok()),
        ubr: dword(&k, "UBR"),
        system_root: string(&k, "SystemRoot"),
    })
}

impl Version {
    /// "Windows 11 Pro 23H2, build 22631.2861". Windows 11 still writes "Windows 10" into
    /// ProductName; build 22000 and later is Windows 11, as every tool reports it.
    pub fn describe(&self) -> Option<String> {
        let mut name = self.product_name.clone()?;
        if self.build.is_some_and(|b| b >= 22000) && name.starts_with("Windows 10") {
            name = name.replacen("Windows 10", "Windows 11", 1);
        }
        if let Some(d) = &self.display_version {
            name = format!("{name} {d}");
        }
        match (self.build, self.ubr) {
            (Some(b), Some(u)) => Some(format!("{name}, build {b}.{u}")),
            (Some(b), None) => Some(format!("{name}, build {b}")),
            _ => Some(name),
        }
    }

    /// The system volume's drive letter, upper case (`C` when SystemRoot does not say).
    pub fn system_drive(&self) -> char {
        self.system_root
            .as_deref()
            .and_then(|r| drive_letter(r))
            .unwrap_or('C')
    }
}

/// The drive letter of `C:\…`, upper case.
pub fn drive_letter(path: &str) -> Option<char> {
    let b = path.as_bytes();
    (b.len() >= 2 && b[1] == b':' && b[0].is_ascii_alphabetic()).then(|| b[0].to_ascii_uppercase() as char)
}

/// One entry of SOFTWARE\…\ProfileList.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub sid: String,
    /// `ProfileImagePath` as written, `%SystemDrive%` expanded.
    pub path: String,
    /// `LocalProfileLoadTime` as a FILETIME (100 ns since 1601), where Windows wrote it.
    pub last_use: Option<u64>,
}

const PROFILE_LIST: &str = "Microsoft\\Windows NT\\CurrentVersion\\ProfileList";

/// The profiles of people (SIDs `S-1-5-21-…`, in hive order); `system_drive` expands
/// `%SystemDrive%`.
pub fn profiles(software: &Hive<&[u8]>, system_drive: char) -> Result<Vec<Profile>, HiveError> {
    let Some(list) = key(software, PROFILE_LIST)? else { return Ok(Vec::new()) };
    let Some(subkeys) = list.subkeys() else { return Ok(Vec::new()) };
    let subkeys = subkeys.map_err(|e| err(PROFILE_LIST, e))?;
    let mut out = Vec::new();
    for k in subkeys {
        let k = k.map_err(|e| err(PROFILE_LIST, e))?;
        let sid = k.name().map_err(|e| err(PROFILE_LIST, e))?.to_string_lossy();
        // `.bak` keys are profiles Windows gave up on; well-known SIDs are services.
        if !sid.starts_with("S-1-5-21-") || sid.ends_with(".bak") {
            continue;
        }
        let Some(path) = string(&k, "ProfileImagePath") else { continue };
        let path = expand_system_drive(&path, system_drive);
        let last_use = match (dword(&k, "LocalProfileLoadTimeHigh"), dword(&k, "LocalProfileLoadTimeLow")) {
            (Some(h), Some(l)) if (h, l) != (0, 0) => Some((u64::from(h) << 32) | u64::from(l)),
            _ => None,
        };
        out.push(Profile { sid, path, last_use });
    }
    Ok(out)
}

fn expand_system_drive(path: &str, drive: char) -> String {
    const VAR: &str = "%SystemDrive%";
    match path.get(..VAR.len()) {
        Some(p) if p.eq_ignore_ascii_case(VAR) => format!("{drive}:{}", &path[VAR.len()..]),
        _ => path.to_string(),
    }
}

/// The local accounts of SAM: the machine's SID and each account's name and RID.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sam {
    /// `S-1-5-21-a-b-c`, from the Account domain's `V` value.
    pub machine_sid: Option<String>,
    pub accounts: Vec<(String, u32)>,
}

const ACCOUNT: &str = "SAM\\Domains\\Account";

/// The local accounts of the SAM hive `sam`. An account's RID is the type of the default
/// value of `Users\Names\<name>`, as Windows writes it.
pub fn sam(sam: &Hive<&[u8]>) -> Result<Sam, HiveError> {
    let Some(account) = key(sam, ACCOUNT)? else { return Ok(Sam::default()) };
    let machine_sid = binary(&account, "V").and_then(|v| machine_sid(&v));
    let mut accounts = Vec::new();
    let names_path = format!("{ACCOUNT}\\Users\\Names");
    if let Some(names) = key(sam, &names_path)? {
        if let Some(subkeys) = names.subkeys() {
            for k in subkeys.map_err(|e| err(&names_path, e))? {
                let k = k.map_err(|e| err(&names_path, e))?;
                let name = k.name().map_err(|e| err(&names_path, e))?.to_string_lossy();
                if let Some(rid) = rid(&k) {
                    accounts.push((name, rid));
                }
            }
        }
    }
    Ok(Sam { machine_sid, accounts })
}

/// The RID carried as the type of the default value.
fn rid(k: &KeyNode<'_, &[u8]>) -> Option<u32> {
    let values = k.values()?.ok()?;
    for v in values {
        let v = v.ok()?;
        if !v.name().ok()?.to_string_lossy().is_empty() {
            continue;
        }
        return match v.data_type() {
            Err(NtHiveError::UnsupportedKeyValueDataType { actual, .. }) => Some(actual),
            Ok(t) => Some(t as u32),
            Err(_) => None,
        };
    }
    None
}

/// The domain SID at the end of the Account domain's `V` value: revision 1, four
/// sub-authorities, authority 5, first sub-authority 21.
fn machine_sid(v: &[u8]) -> Option<String> {
    let s = v.get(v.len().checked_sub(24)?..)?;
    if s[0] != 1 || s[1] != 4 || s[2..8] != [0, 0, 0, 0, 0, 5] {
        return None;
    }
    let sub: Vec<u32> = s[8..].chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    (sub[0] == 21).then(|| format!("S-1-5-21-{}-{}-{}", sub[1], sub[2], sub[3]))
}

/// A FILETIME as seconds since the Unix epoch.
pub fn filetime_to_unix(ft: u64) -> i64 {
    (ft / 10_000_000) as i64 - 11_644_473_600
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_names_windows_11_by_its_build() {
        let v = Version {
            product_name: Some("Windows 10 Pro".into()),
            display_version: Some("23H2".into()),
            build: Some(22631),
            ubr: Some(2861),
            ..Version::default()
        };
        assert_eq!(v.describe().as_deref(), Some("Windows 11 Pro 23H2, build 22631.2861"));
        let v = Version { build: Some(19045), ..v };
        assert_eq!(v.describe().as_deref(), Some("Windows 10 Pro 23H2, build 19045.2861"));
        assert_eq!(Version::default().describe(), None);
        assert_eq!(Version { system_root: Some("d:\\Windows".into()), ..Version::default() }.system_drive(), 'D');
    }

    #[test]
    fn sids_and_paths() {
        let mut v = vec![0xAAu8; 40];
        v.extend_from_slice(&[1, 4, 0, 0, 0, 0, 0, 5]);
        for s in [21u32, 1, 2, 3] {
            v.extend_from_slice(&s.to_le_bytes());
        }
        assert_eq!(machine_sid(&v).as_deref(), Some("S-1-5-21-1-2-3"));
        assert_eq!(machine_sid(&v[..10]), None);
        assert_eq!(expand_system_drive("%systemdrive%\\Users\\a", 'C'), "C:\\Users\\a");
        assert_eq!(drive_letter("d:\\x"), Some('D'));
        assert_eq!(drive_letter("\\\\server\\x"), None);
        assert_eq!(filetime_to_unix(116_444_736_000_000_000), 0);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(open(b"").is_err());
        assert!(open(&[0u8; 8192]).is_err());
        let mut h = vec![0u8; 8192];
        h[..4].copy_from_slice(b"regf");
        if let Ok((hive, _)) = open(&h) {
            let _ = version(&hive);
            let _ = profiles(&hive, 'C');
            let _ = sam(&hive);
        }
    }
}
