//! The "restored" mark in the store (`restore/state.json`): written after the reports, it
//! makes a second run say the job is done and write nothing.

use serde::{Deserialize, Serialize};

use super::error::RestoreError;
use crate::error::Hint;
use crate::migrate::store::Store;

/// Where the mark lives in the store volume.
pub const STATE: &str = "restore/state.json";

/// What the mark records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// `restored`.
    pub state: String,
    /// The capture it is about (the manifest's fingerprint).
    pub plan_sha256: String,
    /// Unix seconds (UTC).
    pub finished: u64,
    /// The root restored into.
    pub root: String,
    /// No entry failed and every user had an account.
    pub complete: bool,
    /// The report in the store.
    pub report: String,
}

/// The mark, if the store has one. A damaged mark is an error: the caller must not guess.
pub(crate) fn read(store: &Store) -> Result<Option<State>, RestoreError> {
    let Some(bytes) = store.read_file(STATE, 64 << 10).map_err(|e| RestoreError::Store(Box::new(e)))? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| RestoreError::Target {
        problem: format!("store {}: {STATE} is damaged ({e})", store.describe()),
        hints: vec![
            Hint::Advice { text: format!("check the restore report in the new OS, then remove {STATE} from the store") },
            Hint::RestoreAgain,
        ],
    })
}

/// Writes the mark.
pub(crate) fn mark(store: &Store, st: &State) -> Result<(), String> {
    let mut json = serde_json::to_vec_pretty(st).map_err(|e| e.to_string())?;
    json.push(b'\n');
    store.write_file(STATE, &json).map_err(|e| e.to_string())
}
