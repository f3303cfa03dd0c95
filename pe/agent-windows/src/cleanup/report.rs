//! `cleanup.json`: what cleanup found and did.

use super::ready::Waiting;
use crate::job::StoreAfter;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Where cleanup ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Some users are not restored yet; nothing was done.
    Waiting,
    /// `store_after` is `keep`: the store stays as it is.
    Kept,
    /// The store was deleted and C: extended over its space.
    Deleted,
    /// The store was deleted, but diskpart could not extend C: (the space is left unallocated).
    DeletedNotExtended,
    /// The store was formatted as an empty NTFS drive labelled `Data`.
    Emptied,
    /// `--dry-run`: the store found and the script printed; nothing run.
    DryRun,
    /// Nothing (or, if `output` says so, not everything) was done: see `message`.
    Failed,
}

impl Status {
    /// The process exit code.
    pub fn exit_code(self) -> i32 {
        match self {
            Status::Kept | Status::Deleted | Status::Emptied | Status::DryRun => 0,
            Status::Failed | Status::DeletedNotExtended => 1,
            Status::Waiting => crate::cli::EXIT_WAITING,
        }
    }

    /// Whether cleanup is over: running it again cannot do more, so its scheduled task goes.
    pub fn is_final(self) -> bool {
        matches!(self, Status::Kept | Status::Deleted | Status::Emptied | Status::DeletedNotExtended)
    }
}

/// `cleanup.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CleanupReport {
    pub version: u32,
    pub status: Status,
    pub job_id: Option<String>,
    pub store_after: Option<StoreAfter>,
    /// The users not restored yet (also when `--force` went on without them).
    pub pending: Vec<Waiting>,
    /// The store's drive letter (`"E:"`), once found.
    pub store_volume: Option<String>,
    /// The diskpart script's lines.
    pub script: Option<Vec<String>>,
    /// diskpart's output.
    pub output: Option<String>,
    pub message: String,
}

impl CleanupReport {
    pub fn new(status: Status) -> CleanupReport {
        CleanupReport {
            version: 1,
            status,
            job_id: None,
            store_after: None,
            pending: Vec::new(),
            store_volume: None,
            script: None,
            output: None,
            message: String::new(),
        }
    }

    /// One line for stdout.
    pub fn summary(&self) -> String {
        let status = serde_json::to_value(self.status).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        format!("cleanup: {status}: {}", self.message)
    }

    /// Writes the report as pretty JSON.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let mut text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        text.push(b'\n');
        std::fs::write(path, text)
    }
}
