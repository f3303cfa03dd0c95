//! `job.json`: what the PE tells the agent about the whole migration.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// What to do when a destination exists and differs from the staged file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Conflict {
    /// Keep the new OS's file; write ours beside it as `name (restored).ext`.
    #[default]
    KeepNew,
    /// Replace the new OS's file with ours.
    Overwrite,
    /// Leave ours in the staged folder.
    Skip,
}

/// What becomes of the store partition once every user is restored (`inplace.exe cleanup`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StoreAfter {
    /// Left as it is.
    #[default]
    Keep,
    /// Formatted as an empty NTFS data drive.
    Empty,
    /// Deleted, and C: extended over its space.
    Delete,
}

/// A user the PE staged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobUser {
    /// The account's name on the old Windows, and the staged folder's.
    pub name: String,
    /// The old account's SID, where the old registry had it.
    #[serde(default)]
    pub sid: Option<String>,
    /// `local` or `domain` (domain and Entra ID accounts are never created).
    #[serde(default = "local")]
    pub kind: String,
}

fn local() -> String {
    "local".into()
}

/// `job.json`, as the PE writes it (`pe/src/handoff/windows`) and the agent reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// 1.
    pub version: u32,
    pub job_id: String,
    /// The preset's name.
    #[serde(default)]
    pub preset: String,
    #[serde(default)]
    pub conflict: Conflict,
    /// The PE's setup script creates the missing local accounts.
    #[serde(default)]
    pub create_users: bool,
    #[serde(default)]
    pub store_after: StoreAfter,
    #[serde(default)]
    pub users: Vec<JobUser>,
    /// The preset has a `[report]`: the spool is in `report\<job>\` and the task
    /// `inplace-report` sends it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub report: bool,
}

impl Job {
    /// Reads and checks `job.json`.
    pub fn load(path: &Path) -> Result<Job, String> {
        let text = std::fs::read(path).map_err(|e| format!("cannot read the job file {}: {e}", path.display()))?;
        let job: Job = serde_json::from_slice(&text)
            .map_err(|e| format!("the job file {} is not a valid job: {e}", path.display()))?;
        if job.version != 1 {
            return Err(format!("the job file {} has version {}; this agent reads version 1", path.display(), job.version));
        }
        Ok(job)
    }
}
