//! Installed-OS detection through the userspace filesystem readers.

pub mod fuzzing;
pub mod hive;
pub mod linux;
pub mod sysprep;
pub mod windows;

use serde::{Deserialize, Serialize};

use crate::fs::FsReader;

/// An installed OS, as the inventory reports it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Os {
    /// `"windows"` or `"linux"`.
    pub family: String,
    pub name: String,
    pub version: Option<String>,
    /// Linux: os-release's `PRETTY_NAME` ("Debian GNU/Linux 12 (bookworm)").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretty_name: Option<String>,
    /// Windows: the `EditionID` (`Professional`, `Core`, `Enterprise`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edition: Option<String>,
    /// The people's names, as [`Os::accounts`] has them (the folders under `\Users` when a
    /// Windows volume has no registry hives).
    pub users: Vec<String>,
    /// The people's accounts with their profiles, where the OS records them (left out of the
    /// JSON when there are none, as stores written before it have it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<Account>,
    /// Where `users` came from: `registry`, `folders` (a Windows volume without hives) or
    /// `passwd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users_from: Option<String>,
    /// Windows: the sysprep markers, when the volume has any (`os::sysprep`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sysprep: Option<sysprep::Sysprep>,
}

impl Os {
    /// The OS whole: `Windows 11 Pro 23H2, build 22631.2861`, `Debian GNU/Linux 12 (bookworm)`
    /// (a Windows version names the OS itself; a Linux one follows the name).
    pub fn title(&self) -> String {
        match &self.version {
            Some(v) if v.starts_with(&self.name) => v.clone(),
            Some(v) => format!("{} {v}", self.name),
            None => self.name.clone(),
        }
    }

    /// The OS short: `Windows 11 Pro 23H2`, `Debian GNU/Linux 12`.
    pub fn short(&self) -> String {
        match &self.version {
            Some(v) if v.starts_with(&self.name) => v.split(", build").next().unwrap_or(v).to_string(),
            Some(v) => format!("{} {}", self.name, v.split_whitespace().next().unwrap_or("")).trim().to_string(),
            None => self.name.clone(),
        }
    }
}

/// One account of the installed OS.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Account {
    pub name: String,
    /// Windows: the account's SID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Linux: the uid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// The profile or home as the OS names it (`C:\Users\carol`, `D:\Users\dave`,
    /// `/srv/home/erin`); `None` when the account never logged on.
    pub profile: Option<String>,
    /// `local` or `domain` (a domain or Entra ID SID).
    pub kind: String,
    /// When the profile was last loaded (RFC 3339, UTC), where the registry has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_use: Option<String>,
}

/// The OS found on one filesystem, and anything worth a warning about it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Detection {
    pub os: Option<Os>,
    pub warnings: Vec<String>,
}

/// Looks for an installed OS on `fs`: Windows on NTFS, Linux on ext2/3/4.
pub fn detect(fs: &mut dyn FsReader) -> Detection {
    match fs.fs_type() {
        "ntfs" => windows::detect(fs),
        "ext2" | "ext3" | "ext4" => linux::detect(fs),
        _ => Detection::default(),
    }
}

/// The largest config file read into memory.
pub(crate) const SMALL_FILE_CAP: u64 = 1024 * 1024;

#[cfg(test)]
mod title_tests {
    use super::Os;

    #[test]
    fn a_windows_version_is_not_prefixed_with_the_name_again() {
        let w = Os { name: "Windows".into(), version: Some("Windows 11 Pro 23H2, build 22631.2861".into()), ..Os::default() };
        assert_eq!(w.title(), "Windows 11 Pro 23H2, build 22631.2861");
        assert_eq!(w.short(), "Windows 11 Pro 23H2");
        let d = Os { name: "Debian GNU/Linux".into(), version: Some("12 (bookworm)".into()), ..Os::default() };
        assert_eq!(d.title(), "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(d.short(), "Debian GNU/Linux 12");
        assert_eq!(Os { name: "Windows".into(), ..Os::default() }.short(), "Windows");
    }
}
