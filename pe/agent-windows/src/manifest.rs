//! `staged\<user>.json`: the entries of one user's staged profile.

use crate::check::{check_path, PathProblem};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::Path;

/// Whether an entry is a file or a folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    File,
    Dir,
}

/// One staged file or folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// '/'-separated, relative to the profile folder.
    pub path: String,
    pub kind: Kind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Modified time, ns since 1970 (may be negative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime_ns: Option<i64>,
    /// Creation time, ns since 1970; optional, applied on Windows only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_ns: Option<i64>,
}

/// A user's manifest, as the PE writes it (`pe/src/handoff/windows/stage.rs`) and the agent
/// reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub user: String,
    pub entries: Vec<Entry>,
}

/// Why a manifest is refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Unreadable(String),
    BadPath { path: String, problem: PathProblem },
    Duplicate(String),
    MissingDigest(String),
    WrongUser { manifest: String, user: String },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreadable(e) => write!(f, "{e}"),
            Self::BadPath { path, problem } => write!(f, "the manifest path {path:?} {problem}"),
            Self::Duplicate(p) => write!(f, "the manifest lists {p:?} twice (names differing only in case are one name on Windows)"),
            Self::MissingDigest(p) => write!(f, "the manifest entry {p:?} is a file without a size and a 64-digit sha256"),
            Self::WrongUser { manifest, user } => write!(f, "the manifest is for user {manifest:?}, not {user:?}"),
        }
    }
}

impl Manifest {
    /// Reads a manifest; it still has to pass [`Manifest::validate`].
    pub fn load(path: &Path) -> Result<Manifest, Refusal> {
        let text = std::fs::read(path).map_err(|e| Refusal::Unreadable(format!("cannot read the manifest {}: {e}", path.display())))?;
        let m: Manifest = serde_json::from_slice(&text)
            .map_err(|e| Refusal::Unreadable(format!("the manifest {} is not valid: {e}", path.display())))?;
        if m.version != 1 {
            return Err(Refusal::Unreadable(format!("the manifest {} has version {}; this agent reads version 1", path.display(), m.version)));
        }
        Ok(m)
    }

    /// Refuses the manifest when any entry could write outside its destination or is incomplete.
    pub fn validate(&self, user: &str) -> Result<(), Refusal> {
        if !self.user.eq_ignore_ascii_case(user) {
            return Err(Refusal::WrongUser { manifest: self.user.clone(), user: user.to_string() });
        }
        let mut seen = HashSet::new();
        for e in &self.entries {
            check_path(&e.path).map_err(|problem| Refusal::BadPath { path: e.path.clone(), problem })?;
            if !seen.insert(e.path.to_lowercase()) {
                return Err(Refusal::Duplicate(e.path.clone()));
            }
            let digest_ok = e.sha256.as_deref().is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
            if e.kind == Kind::File && (e.size.is_none() || !digest_ok) {
                return Err(Refusal::MissingDigest(e.path.clone()));
            }
        }
        Ok(())
    }
}
