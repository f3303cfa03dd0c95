//! What went wrong with a store. The text names the store and what was wrong, once; what to
//! do is in [`StoreError::hints`], and [`StoreError::error`] makes the engine's error of it.

use std::io;

use crate::error::{Error, Hint, Kind};
use crate::step::Step;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {detail}")]
    Open { path: String, detail: String },
    #[error("store {store}: {what}: {source}")]
    Io { store: String, what: String, source: io::Error },
    /// `capture` names the capture's directory (`capture`, `capture.2`, …).
    #[error("store {store} holds no capture (there is no {capture}/manifest.json)")]
    NoCapture { store: String, capture: String },
    #[error("store {store}: the capture in {capture}/ is not finished ({detail})")]
    Unfinished { store: String, capture: String, detail: String },
    #[error("store {store}: {capture}/manifest.json cannot be trusted: {detail}")]
    BadManifest { store: String, capture: String, detail: String },
    #[error("store {store}: {entry} is damaged ({segment} at byte {offset}): {detail}")]
    Damaged { store: String, entry: String, segment: String, offset: u64, detail: String },
    #[error("store {store}: {segment} is damaged: {detail}")]
    SegmentDamaged { store: String, segment: String, detail: String },
    #[error("store {store}: writing out {entry} failed: {source}")]
    Sink { store: String, entry: String, source: io::Error },
    #[error("store {store} was opened read-only")]
    ReadOnly { store: String },
    #[error("{path:?} is not a usable path in the store: {why}")]
    BadPath { path: String, why: String },
    #[error("store {store}: the manifest has no entry {index}")]
    NoEntry { store: String, index: usize },
    #[error("store {store}: stopped on request")]
    Cancelled { store: String },
}

impl StoreError {
    pub fn kind(&self) -> Kind {
        match self {
            StoreError::Open { .. } | StoreError::NoCapture { .. } | StoreError::Unfinished { .. } => Kind::Refused,
            StoreError::BadPath { .. } => Kind::Refused,
            StoreError::Io { .. } | StoreError::Sink { .. } => Kind::Io,
            StoreError::BadManifest { .. } | StoreError::Damaged { .. } | StoreError::SegmentDamaged { .. } => {
                Kind::Damaged
            }
            StoreError::NoEntry { .. } => Kind::Damaged,
            StoreError::ReadOnly { .. } => Kind::Internal,
            StoreError::Cancelled { .. } => Kind::Cancelled,
        }
    }

    /// What to do about it.
    pub fn hints(&self) -> Vec<Hint> {
        let advice = |t: &str| Hint::Advice { text: t.into() };
        match self {
            StoreError::Unfinished { .. } => vec![advice("run the capture again to resume it")],
            StoreError::BadManifest { .. } => {
                vec![advice("do not restore from this store"), Hint::CaptureAgain]
            }
            StoreError::Damaged { .. } => vec![
                advice("its data cannot be restored from this store"),
                Hint::CaptureAgain,
                advice("otherwise restore the other entries and recover this file from a backup"),
            ],
            StoreError::SegmentDamaged { .. } => vec![
                advice("do not restore from this store without checking which files are affected"),
                Hint::CaptureAgain,
            ],
            StoreError::Open { detail, .. } if detail.contains("in use") => {
                vec![advice("unmount it first: the store is written without mounting")]
            }
            _ => Vec::new(),
        }
    }

    /// The engine's error for this, in `step`; nothing was written by what failed.
    pub fn error(self, step: Step) -> Error {
        let hints = self.hints();
        let kind = self.kind();
        let problem = match &self {
            StoreError::Cancelled { .. } => format!("{step} was stopped on request"),
            other => other.to_string(),
        };
        let mut e = Error::new(step, kind, problem);
        for h in hints {
            e = e.hint(h);
        }
        e
    }
}
