//! The restore report, one for all the captures of the store: each capture (where it came
//! from), one outcome per entry, the users, the settings applied, what the captures left out,
//! and the cleanup. Written as JSON and as a short text into the new OS
//! ([`TARGET_JSON`], [`TARGET_TEXT`] under the root) and into the store ([`STORE_JSON`],
//! [`STORE_TEXT`]).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::paths::{Root, RelPath};
use super::users::{UserOutcome, UserStatus};
use crate::migrate::entry::{Kind, Skipped};
use crate::migrate::store::CaptureName;

/// Report locations in the new OS (absolute, inside the root).
pub const TARGET_JSON: &str = "/var/log/inplace/restore-report.json";
pub const TARGET_TEXT: &str = "/var/log/inplace/restore-report.txt";
/// Report locations in the store volume.
pub const STORE_JSON: &str = "restore/report.json";
pub const STORE_TEXT: &str = "restore/report.txt";

/// What happened to one entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// Written at its path (or already there, identical).
    Restored,
    /// The new OS has something at its path; ours was written beside it as `name`.
    RestoredBeside { name: String },
    /// The new OS has something at its path and the policy is `skip`.
    SkippedConflict,
    /// Not restored on purpose: restore never replaces this file of the new OS (its account
    /// databases, fstab, crypttab, `/boot`). Not a failure.
    LeftOut { reason: String },
    /// Not restored.
    Failed { reason: String },
}

/// One entry of the store and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryReport {
    /// Where it was on the old OS.
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    pub kind: Kind,
    pub bytes: u64,
    /// Where it went (or would go) in the new OS, as the new OS sees it.
    pub target: String,
    /// A setting (an entry outside the profiles) that replaced the new OS's file.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub setting: bool,
    #[serde(flatten)]
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The capture it comes from, when it is not the store's first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture: Option<CaptureName>,
}

/// One capture of the store, as the restore took it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaptureReport {
    pub capture: CaptureName,
    /// Its fingerprint.
    pub plan_sha256: String,
    /// Where it was captured from (the manifest's `info`): the disk as named to the capture,
    /// the partition, its filesystem, the rules' family.
    pub disk: String,
    pub partition: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fs: Option<String>,
    pub family: String,
    /// Its profiles.
    pub users: Vec<String>,
    /// Its entries, and of those, the ones that failed.
    pub entries: u64,
    pub failed: u64,
}

/// Counts over the entries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub entries: u64,
    pub restored: u64,
    pub restored_beside: u64,
    pub skipped_conflict: u64,
    /// Left out by policy ([`Outcome::LeftOut`]).
    pub left_out: u64,
    pub failed: u64,
    /// Bytes of file data written (or, in a dry run, to be written).
    pub bytes: u64,
}

/// What the cleanup did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CleanupReport {
    /// `keep`, `empty` or `delete`.
    pub mode: String,
    pub done: bool,
    /// What was done, or why not.
    pub detail: Vec<String>,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub version: u32,
    pub dry_run: bool,
    /// Unix seconds (UTC).
    pub started: u64,
    pub finished: u64,
    pub store: String,
    pub root: String,
    /// The first capture's fingerprint, naming the job.
    pub plan_sha256: String,
    /// Every capture restored, in order.
    pub captures: Vec<CaptureReport>,
    /// `keep-new`, `overwrite` or `skip` (as the first capture has it).
    pub conflict: String,
    pub users: Vec<UserOutcome>,
    /// Targets of the settings applied (or, in a dry run, to be applied).
    pub settings_applied: Vec<String>,
    pub totals: Totals,
    pub entries: Vec<EntryReport>,
    /// Items the captures did not put in the store, with the reason.
    pub capture_skipped: Vec<Skipped>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cleanup: Option<CleanupReport>,
    /// Things the technician should know (owners not set, …).
    pub notes: Vec<String>,
}

impl Report {
    /// Adds an entry's outcome and counts it.
    pub fn push(&mut self, e: EntryReport) {
        let t = &mut self.totals;
        t.entries += 1;
        match &e.outcome {
            Outcome::Restored => t.restored += 1,
            Outcome::RestoredBeside { .. } => t.restored_beside += 1,
            Outcome::SkippedConflict => t.skipped_conflict += 1,
            Outcome::LeftOut { .. } => t.left_out += 1,
            Outcome::Failed { .. } => t.failed += 1,
        }
        if matches!(e.outcome, Outcome::Restored | Outcome::RestoredBeside { .. }) {
            if e.kind == Kind::File {
                t.bytes += e.bytes;
            }
            if e.setting && matches!(e.kind, Kind::File | Kind::Symlink | Kind::HardLink) {
                self.settings_applied.push(e.target.clone());
            }
        }
        self.entries.push(e);
    }

    /// Takes in the users of one more capture: a profile already there (another capture of the
    /// same user) counts its entries once more and is missing if it is missing in either.
    pub fn add_users(&mut self, users: Vec<UserOutcome>) {
        for u in users {
            match self.users.iter_mut().find(|have| have.profile == u.profile) {
                Some(have) => {
                    have.entries += u.entries;
                    if u.status == UserStatus::Missing && have.status != UserStatus::Missing {
                        have.status = UserStatus::Missing;
                        have.reason = u.reason;
                        have.hint = u.hint;
                    }
                    for n in u.notes {
                        if !have.notes.contains(&n) {
                            have.notes.push(n);
                        }
                    }
                }
                None => self.users.push(u),
            }
        }
    }

    /// Whether everything is in: every entry restored or left out on purpose (conflict policy,
    /// protected files), and every user had an account. Only then is the store marked
    /// restored.
    pub fn complete(&self) -> bool {
        self.totals.failed == 0 && self.users.iter().all(|u| u.status != UserStatus::Missing)
    }

    pub fn json(&self) -> Vec<u8> {
        // Plain data: serialising cannot fail.
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// The short human summary.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let would = if self.dry_run { "would be " } else { "" };
        let t = &self.totals;
        let captures = match self.captures.len() {
            0 | 1 => String::new(),
            n => format!(" ({n} captures)"),
        };
        let _ = writeln!(s, "inplace restore{} from {}{captures} into {}", if self.dry_run { " (dry run: nothing written)" } else { "" }, self.store, self.root);
        let _ = writeln!(
            s,
            "{} entries: {} {would}restored, {} {would}restored beside an existing file, {} skipped (conflict), {} left out by policy, {} failed; {} bytes",
            t.entries, t.restored, t.restored_beside, t.skipped_conflict, t.left_out, t.failed, t.bytes
        );
        if self.captures.len() > 1 {
            for c in &self.captures {
                let _ = writeln!(
                    s,
                    "{}/: partition {} of {} ({}, {} rules), users {}: {} entries, {} failed",
                    c.capture,
                    c.partition,
                    c.disk,
                    c.fs.as_deref().unwrap_or("-"),
                    c.family,
                    if c.users.is_empty() { "none".to_string() } else { c.users.join(", ") },
                    c.entries,
                    c.failed
                );
            }
        }
        for u in &self.users {
            let acct = u.account.as_deref().unwrap_or("-");
            let status = match u.status {
                UserStatus::Mapped => format!("→ {acct}"),
                UserStatus::Created => format!("→ {acct} (created)"),
                UserStatus::WouldCreate => format!("→ {acct} (would be created)"),
                UserStatus::Missing => "NOT RESTORED".to_string(),
            };
            let _ = write!(s, "user {} {status}, {} entries", u.profile, u.entries);
            if let Some(r) = &u.reason {
                let _ = write!(s, ": {r}");
            }
            if let Some(h) = &u.hint {
                let _ = write!(s, ", or {h}");
            }
            s.push('\n');
            for n in &u.notes {
                let _ = writeln!(s, "  {n}");
            }
        }
        for t in &self.settings_applied {
            let _ = writeln!(s, "setting {}applied: {t}", if self.dry_run { "to be " } else { "" });
        }
        for e in &self.entries {
            if let Outcome::LeftOut { reason } = &e.outcome {
                let _ = writeln!(s, "left out by policy: {} → {}: {reason}", e.source, e.target);
            }
        }
        let failed: Vec<&EntryReport> = self.entries.iter().filter(|e| matches!(e.outcome, Outcome::Failed { .. })).collect();
        for e in failed.iter().take(50) {
            if let Outcome::Failed { reason } = &e.outcome {
                let _ = writeln!(s, "failed: {} → {}: {reason}", e.source, e.target);
            }
        }
        if failed.len() > 50 {
            let _ = writeln!(s, "… and {} more failures (see the JSON report)", failed.len() - 50);
        }
        if !self.capture_skipped.is_empty() {
            let _ = writeln!(s, "{} items were left out by the capture (listed in the JSON report)", self.capture_skipped.len());
        }
        if let Some(c) = &self.cleanup {
            let state = match (self.dry_run, c.done) {
                (true, _) => "dry run",
                (false, true) => "done",
                (false, false) => "not done",
            };
            let _ = writeln!(s, "cleanup {}: {state}", c.mode);
            for d in &c.detail {
                let _ = writeln!(s, "  {d}");
            }
        }
        for n in &self.notes {
            let _ = writeln!(s, "note: {n}");
        }
        s
    }
}

/// Writes the report into the new OS at [`TARGET_JSON`] and [`TARGET_TEXT`] (root-only, mode
/// 0600: it lists every user's files). Directories are created; no link is followed.
/// Writes the report into the new OS whose root is the directory `root`.
pub(crate) fn write_to_target_dir(root: &std::path::Path, report: &Report) -> Result<(), String> {
    write_to_target(&Root::open(root).map_err(|e| e.to_string())?, report)
}

pub(crate) fn write_to_target(root: &Root, report: &Report) -> Result<(), String> {
    for (path, bytes) in [(TARGET_JSON, report.json()), (TARGET_TEXT, report.text().into_bytes())] {
        let rel = RelPath::parse_abs(path).map_err(|e| e.to_string())?;
        let shown = root.show(&rel);
        let mut init = |dir: std::os::fd::BorrowedFd<'_>, name: &[u8]| {
            rustix::fs::chmodat(dir, name, rustix::fs::Mode::from_raw_mode(0o755), rustix::fs::AtFlags::empty())
                .map_err(std::io::Error::from)
        };
        let dir = super::paths::walk(root.fd(), "", rel.dirs(), super::paths::Missing::Create(&mut init))
            .map_err(|e| format!("writing {shown}: {e}"))?;
        super::replace::replace_file(&dir, rel.name(), &bytes, 0o600).map_err(|e| format!("writing {shown}: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        Report {
            version: 1,
            dry_run: false,
            started: 1,
            finished: 2,
            store: "s.img".into(),
            root: "/r".into(),
            plan_sha256: "ab".into(),
            captures: Vec::new(),
            conflict: "keep-new".into(),
            users: vec![UserOutcome {
                profile: "Erin".into(),
                status: UserStatus::Missing,
                account: None,
                uid: None,
                home: None,
                reason: Some("no account; create it".into()),
                hint: Some(crate::error::Hint::CreateUsers),
                entries: 3,
                notes: Vec::new(),
            }],
            settings_applied: Vec::new(),
            totals: Totals::default(),
            entries: Vec::new(),
            capture_skipped: Vec::new(),
            cleanup: None,
            notes: Vec::new(),
        }
    }

    #[test]
    fn json_and_text() {
        let mut r = report();
        let e = |outcome, setting| EntryReport {
            source: "/old/x".into(),
            user: None,
            kind: Kind::File,
            bytes: 10,
            target: "/etc/x".into(),
            setting,
            outcome,
            note: None,
            capture: None,
        };
        r.push(e(Outcome::Restored, true));
        r.push(e(Outcome::RestoredBeside { name: "x.restored".into() }, false));
        r.push(e(Outcome::Failed { reason: "boom".into() }, false));
        r.push(e(Outcome::SkippedConflict, false));
        r.push(e(Outcome::LeftOut { reason: "protected".into() }, true));
        assert_eq!(r.totals, Totals { entries: 5, restored: 1, restored_beside: 1, skipped_conflict: 1, left_out: 1, failed: 1, bytes: 20 });
        assert_eq!(r.settings_applied, ["/etc/x"]);
        assert!(!r.complete());
        let v: serde_json::Value = serde_json::from_slice(&r.json()).unwrap();
        assert_eq!(v["entries"][1]["outcome"], "restored-beside");
        assert_eq!(v["entries"][1]["name"], "x.restored");
        assert_eq!(v["entries"][2]["reason"], "boom");
        assert_eq!(v["users"][0]["status"], "missing");
        let text = r.text();
        assert!(text.contains("user Erin NOT RESTORED, 3 entries: no account; create it, or allow the restore to create missing accounts"), "{text}");
        assert_eq!(v["users"][0]["hint"]["do"], "create-users");
        assert!(text.contains("failed: /old/x → /etc/x: boom"));
        assert!(text.contains("setting applied: /etc/x"));
        assert!(text.contains("left out by policy: /old/x → /etc/x: protected"));
        assert_eq!(v["entries"][4]["outcome"], "left-out");

        // Left out on purpose is not a failure: with the failed entry and the missing user
        // gone, the report is complete.
        r.entries.retain(|e| !matches!(e.outcome, Outcome::Failed { .. }));
        r.totals.failed = 0;
        r.users[0].status = UserStatus::Created;
        r.users[0].notes.push("password: the old one".into());
        assert!(r.complete());
        assert!(r.text().contains("\n  password: the old one\n"), "{}", r.text());
    }

    #[test]
    fn users_of_several_captures_merge_by_profile() {
        let mut r = report();
        r.users[0].status = UserStatus::Created;
        let user = |profile: &str, status, entries| UserOutcome {
            profile: profile.into(),
            status,
            account: Some(profile.to_lowercase()),
            uid: None,
            home: None,
            reason: (status == UserStatus::Missing).then(|| "no account".to_string()),
            hint: None,
            entries,
            notes: vec![format!("{profile} note")],
        };
        r.add_users(vec![user("Erin", UserStatus::Mapped, 4), user("Carol", UserStatus::Created, 7)]);
        let got: Vec<(&str, UserStatus, u64)> = r.users.iter().map(|u| (u.profile.as_str(), u.status, u.entries)).collect();
        assert_eq!(got, [("Erin", UserStatus::Created, 7), ("Carol", UserStatus::Created, 7)]);
        assert_eq!(r.users[0].notes, ["Erin note"], "a note said once");
        assert!(r.complete());
        r.add_users(vec![user("Carol", UserStatus::Missing, 1)]);
        assert_eq!((r.users[1].status, r.users[1].entries), (UserStatus::Missing, 8));
        assert!(!r.complete(), "missing in one capture is missing");
        let capture = |n, partition, fs: &str, family: &str, user: &str, entries| CaptureReport {
            capture: CaptureName::nth(n).unwrap(),
            plan_sha256: format!("{n:064}"),
            disk: "/dev/vda".into(),
            partition,
            fs: Some(fs.into()),
            family: family.into(),
            users: vec![user.into()],
            entries,
            failed: 0,
        };
        r.captures = vec![capture(1, 2, "ext4", "linux", "Erin", 7), capture(2, 3, "ntfs", "windows", "Carol", 8)];
        let text = r.text();
        assert!(text.contains("(2 captures)"), "{text}");
        assert!(text.contains("capture.2/: partition 3 of /dev/vda (ntfs, windows rules), users Carol: 8 entries, 0 failed"), "{text}");
        let v: serde_json::Value = serde_json::from_slice(&r.json()).unwrap();
        assert_eq!(v["captures"][1]["capture"], "capture.2");
    }
}
