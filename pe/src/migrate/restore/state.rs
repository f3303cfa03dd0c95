//! The "restored" mark in the store (`restore/state.json`): written after the reports, once
//! every capture of the store is in, it makes a second run say the job is done and write
//! nothing.

use serde::{Deserialize, Serialize};

use super::error::RestoreError;
use crate::error::Hint;
use crate::migrate::store::{CaptureName, Store};

/// Where the mark lives in the store volume.
pub const STATE: &str = "restore/state.json";

/// What the mark records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// `restored`.
    pub state: String,
    /// The first capture it is about (the manifest's fingerprint).
    pub plan_sha256: String,
    /// Every capture it is about, with its fingerprint. A mark written before stores held
    /// several captures has none: it is about the first capture alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub captures: Vec<Marked>,
    /// Unix seconds (UTC).
    pub finished: u64,
    /// The root restored into.
    pub root: String,
    /// No entry failed and every user had an account.
    pub complete: bool,
    /// The report in the store.
    pub report: String,
}

/// One capture a mark is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marked {
    pub capture: CaptureName,
    pub plan_sha256: String,
}

impl State {
    /// Whether the mark says that each of `captures` (name, fingerprint) is restored.
    pub fn covers(&self, captures: &[(CaptureName, String)]) -> bool {
        let marked = |name: CaptureName, fp: &str| match self.captures.as_slice() {
            [] => name == CaptureName::FIRST && self.plan_sha256 == fp,
            all => all.iter().any(|m| m.capture == name && m.plan_sha256 == fp),
        };
        captures.iter().all(|(name, fp)| marked(*name, fp))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_covers_the_captures_it_names() {
        let second = CaptureName::nth(2).unwrap();
        let old = State {
            state: "restored".into(),
            plan_sha256: "aa".into(),
            captures: Vec::new(),
            finished: 1,
            root: "/".into(),
            complete: true,
            report: "restore/report.json".into(),
        };
        // A mark from before stores held several captures: the first one alone.
        assert!(old.covers(&[(CaptureName::FIRST, "aa".into())]));
        assert!(!old.covers(&[(CaptureName::FIRST, "bb".into())]));
        assert!(!old.covers(&[(CaptureName::FIRST, "aa".into()), (second, "cc".into())]));
        let json = serde_json::to_value(&old).unwrap();
        assert!(json.get("captures").is_none(), "{json}");
        let new = State {
            captures: vec![
                Marked { capture: CaptureName::FIRST, plan_sha256: "aa".into() },
                Marked { capture: second, plan_sha256: "cc".into() },
            ],
            ..old
        };
        assert!(new.covers(&[(CaptureName::FIRST, "aa".into()), (second, "cc".into())]));
        assert!(!new.covers(&[(CaptureName::FIRST, "aa".into()), (second, "dd".into())]));
        assert!(!new.covers(&[(CaptureName::nth(3).unwrap(), "cc".into())]));
        let back: State = serde_json::from_value(serde_json::to_value(&new).unwrap()).unwrap();
        assert_eq!(back, new);
        assert_eq!(serde_json::to_value(&new).unwrap()["captures"][1]["capture"], "capture.2");
    }
}
