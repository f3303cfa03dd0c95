//! `C:\ProgramData\inplace\job.json`: what the agent needs at each first logon, from the
//! preset's `[restore]` (`docs/windows.md`, "The staged folder").

use serde::{Deserialize, Serialize};

/// The job file the agent reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFile {
    /// 1.
    pub version: u32,
    pub job_id: String,
    /// The preset's name.
    pub preset: String,
    /// `keep-new`, `overwrite` or `skip`.
    pub conflict: String,
    /// Create the local accounts the new Windows lacks (`SetupComplete.cmd` does it).
    pub create_users: bool,
    /// What becomes of the store once every user is restored: `keep`, `empty` or `delete`.
    pub store_after: String,
    pub users: Vec<JobUser>,
}

/// One user whose profile is staged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobUser {
    /// The account's name on the old Windows, and the staged folder's.
    pub name: String,
    /// The old account's SID, where the old registry had it.
    pub sid: Option<String>,
    /// `local` or `domain` (domain and Entra ID accounts are never created).
    pub kind: String,
}

impl JobUser {
    /// `SetupComplete.cmd` creates this account when it is missing.
    pub fn created(&self, job: &JobFile) -> bool {
        job.create_users && self.kind == "local"
    }
}
