//! What a capture records about its job in the manifest (`info`), for the report and for the
//! new OS's first boot: where the data came from, with which rules, and the restore choices
//! made at capture time. Field by field in `docs/store-format.md` ("manifest.json: info").

use serde::{Deserialize, Deserializer, Serialize};

use super::accounts::AccountRecord;
use crate::inventory::Os;

/// The manifest's `info`. Every field may be missing in a store (older or hand-made ones):
/// missing fields read as their defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JobInfo {
    /// The disk the old OS was read from, as named to the capture (a device or image path).
    pub disk: String,
    /// Its partition number, as the kernel numbers it.
    pub partition: u32,
    /// The filesystem found on it (`ntfs`, `ext4`, …).
    pub fs: Option<String>,
    /// The OS found on it.
    pub os: Option<Os>,
    /// The rules' family: `windows` or `linux`.
    pub family: String,
    /// The effective rules, as TOML.
    pub rules: String,
    /// The preset's name, when a preset drove the capture.
    pub preset: Option<String>,
    /// Restore choices made at capture time.
    pub restore: RestoreChoices,
    /// What the inventory warned about the partition.
    pub warnings: Vec<String>,
    /// The captured users' accounts (Linux sources), password hashes included.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<AccountRecord>,
}

/// Restore choices made at capture time (a preset's `[restore]` table) and carried in the
/// store for the first boot. Values are kept as written; restore falls back to its defaults
/// for values it does not know, and says so in its report.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RestoreChoices {
    /// Create accounts the new OS lacks for captured users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_users: Option<bool>,
    /// `keep-new` (default), `overwrite` or `skip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict: Option<String>,
    /// `keep` (default), `empty` or `delete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleanup: Option<String>,
    /// Give created accounts their old password hash (default true); `false`: they must set
    /// a password at their first login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passwords: Option<bool>,
    /// A new Windows: the password of the accounts `SetupComplete.cmd` creates, to be changed
    /// at the first logon. Never kept in the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_password: Option<String>,
}

/// `null` reads as the default (stores whose `info` was left empty).
pub(crate) fn null_is_default<'de, D: Deserializer<'de>>(d: D) -> Result<JobInfo, D::Error> {
    Ok(Option::<JobInfo>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_earlier_stores_hold() {
        let v = serde_json::json!({
            "disk": "/dev/sda", "partition": 3, "fs": "ntfs",
            "os": {"family": "windows", "name": "Windows 11", "version": null, "users": ["Carol"]},
            "family": "windows", "rules": "family = \"windows\"\n", "preset": null,
            "restore": {"conflict": "overwrite"}, "warnings": ["hibernated"]
        });
        let i: JobInfo = serde_json::from_value(v.clone()).unwrap();
        assert_eq!((i.partition, i.fs.as_deref(), i.restore.conflict.as_deref()), (3, Some("ntfs"), Some("overwrite")));
        assert_eq!(i.os.as_ref().unwrap().users, ["Carol"]);
        assert_eq!(serde_json::to_value(&i).unwrap(), v, "written back the same");
        let hand: JobInfo = serde_json::from_value(serde_json::json!({"disk": "hand-made", "partition": 2, "family": "linux"})).unwrap();
        assert_eq!((hand.family.as_str(), hand.restore.clone()), ("linux", RestoreChoices::default()));
        #[derive(Deserialize)]
        struct M {
            #[serde(deserialize_with = "null_is_default")]
            info: JobInfo,
        }
        let m: M = serde_json::from_str("{\"info\": null}").unwrap();
        assert_eq!(m.info, JobInfo::default());
    }

    #[test]
    fn carries_accounts_and_the_password_choice() {
        let v = serde_json::json!({
            "family": "linux",
            "restore": {"create_users": true, "passwords": false},
            "accounts": [{"name": "alice", "uid": 1000, "gid": 1000, "group": "alice", "gecos": "Alice,,,",
                          "home": "/home/alice", "shell": "/bin/bash", "groups": ["sudo"],
                          "shadow": {"password": "$y$j9T$s$h", "last_change": 19700, "min_days": 0, "max_days": 99999,
                                     "warn_days": 7, "inactive_days": null, "expire": null}}]
        });
        let i: JobInfo = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(i.restore.passwords, Some(false));
        let a = &i.accounts[0];
        assert_eq!((a.name.as_str(), a.groups.as_slice(), a.shadow.as_ref().unwrap().last_change), ("alice", &["sudo".to_string()][..], Some(19700)));
        let back = serde_json::to_value(&i).unwrap();
        assert_eq!(back["accounts"], v["accounts"]);
        assert_eq!(back["restore"], v["restore"]);
        assert!(serde_json::to_value(JobInfo::default()).unwrap().get("accounts").is_none(), "no accounts, no field");
    }
}
