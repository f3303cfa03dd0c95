//! `restore-<user>.json`: what the agent did with each entry, and the one-line summary.

use crate::job::Conflict;
use crate::manifest::Kind;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// What happened to one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// At its destination and verified (or the destination was already identical).
    Restored,
    /// Written beside the new OS's differing file (`keep-new`).
    RestoredBeside,
    /// The destination differs and the policy is `skip`: still in the staged folder.
    SkippedConflict,
    /// A registry hive or settings file, kept under Documents\Migrated settings.
    MigratedSetting,
    /// Not restored: see `reason`; the staged copy is kept.
    Failed,
}

/// One entry of the report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EntryReport {
    pub path: String,
    pub kind: Kind,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Something that went wrong after the entry was placed (its time, its ACL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// The user's restore as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Every entry verified; the staged copy was removed.
    Complete,
    /// Every entry verified or skipped by policy; the skipped ones stay staged.
    CompleteWithSkips,
    /// Some entries failed; what did not move stays staged.
    Incomplete,
    /// The staged folder or job was refused; nothing was moved.
    Refused,
    /// No manifest for this user.
    NothingStaged,
}

impl Status {
    /// The process exit code for this status.
    pub fn exit_code(self) -> i32 {
        match self {
            Status::Complete | Status::CompleteWithSkips | Status::NothingStaged => 0,
            Status::Incomplete => 1,
            Status::Refused => 2,
        }
    }
}

/// Counts over the entries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub entries: u64,
    pub restored: u64,
    pub restored_beside: u64,
    pub skipped_conflict: u64,
    pub migrated_setting: u64,
    pub failed: u64,
    pub warnings: u64,
    /// Bytes of the files placed (restored, beside, settings).
    pub bytes: u64,
}

/// The report written to `restore-<user>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub version: u32,
    #[serde(default)]
    pub job_id: Option<String>,
    pub user: String,
    pub status: Status,
    #[serde(default)]
    pub conflict: Option<Conflict>,
    /// Why the restore was refused or did not complete, and what to do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The user's staged folder.
    pub staged: String,
    pub staged_removed: bool,
    pub totals: Totals,
    pub entries: Vec<EntryReport>,
}

impl Report {
    /// A report with no entries.
    pub fn new(user: &str, staged: &Path, status: Status) -> Report {
        Report {
            version: 1,
            job_id: None,
            user: user.to_string(),
            status,
            conflict: None,
            message: None,
            staged: staged.display().to_string(),
            staged_removed: false,
            totals: Totals::default(),
            entries: Vec::new(),
        }
    }

    /// Adds an entry and counts it (`bytes` for placed files).
    pub fn push(&mut self, entry: EntryReport, bytes: u64) {
        let t = &mut self.totals;
        t.entries += 1;
        match entry.outcome {
            Outcome::Restored => t.restored += 1,
            Outcome::RestoredBeside => t.restored_beside += 1,
            Outcome::SkippedConflict => t.skipped_conflict += 1,
            Outcome::MigratedSetting => t.migrated_setting += 1,
            Outcome::Failed => t.failed += 1,
        }
        if !matches!(entry.outcome, Outcome::SkippedConflict | Outcome::Failed) {
            t.bytes += bytes;
        }
        if entry.warning.is_some() {
            t.warnings += 1;
        }
        self.entries.push(entry);
    }

    /// One line for stdout.
    pub fn summary(&self) -> String {
        let t = &self.totals;
        let what = match self.status {
            Status::Refused => return format!("{}: refused: {}", self.user, self.message.as_deref().unwrap_or("")),
            Status::NothingStaged => return format!("{}: nothing staged for this user; nothing to do", self.user),
            Status::Complete => "complete",
            Status::CompleteWithSkips => "complete with skipped conflicts",
            Status::Incomplete => "INCOMPLETE",
        };
        let staged = if self.staged_removed { "staged copy removed" } else { "staged copy kept" };
        format!(
            "{}: {what}: {} restored, {} restored beside, {} migrated settings, {} skipped (conflict), {} failed, {} warnings; {} bytes; {staged}",
            self.user, t.restored, t.restored_beside, t.migrated_setting, t.skipped_conflict, t.failed, t.warnings, t.bytes
        )
    }

    /// Writes the report as pretty JSON.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let mut text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        text.push(b'\n');
        std::fs::write(path, text)
    }
}
