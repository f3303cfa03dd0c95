//! Why a restore stopped. Every refusal comes before the first write into the root; only a
//! cancel can stop a restore part-way, and a later run continues it.

use crate::error::{Error, Hint, Kind, Written};
use crate::migrate::store::StoreError;
use crate::step::Step;

use super::plan::Refusal;

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("{0}")]
    Store(Box<StoreError>),
    #[error("store {store}: {refusal}")]
    Refused { store: String, refusal: Refusal },
    #[error("the store failed verification: {0}")]
    Verify(Box<StoreError>),
    /// The target (the new OS's root) does not allow the restore.
    #[error("{problem}")]
    Target { problem: String, hints: Vec<Hint> },
    #[error("the restore was stopped on request")]
    Cancelled { written: Written },
}

impl RestoreError {
    pub fn target(problem: impl Into<String>) -> RestoreError {
        RestoreError::Target { problem: problem.into(), hints: Vec::new() }
    }

    /// The engine's error: in the restore step, with what was written.
    pub fn error(self) -> Error {
        match self {
            RestoreError::Store(e) => match *e {
                e @ StoreError::Cancelled { .. } => e.error(Step::Restore).hint(Hint::RunAgain),
                e => e.error(Step::Restore),
            },
            RestoreError::Verify(source) => {
                let hints = source.hints();
                let e = match *source {
                    e @ StoreError::Cancelled { .. } => return e.error(Step::Restore).hint(Hint::RunAgain),
                    e => Error::new(Step::Restore, e.kind(), RestoreError::Verify(Box::new(e)).to_string()),
                };
                hints.into_iter().fold(e, Error::hint)
            }
            e @ RestoreError::Refused { .. } => Error::damaged(Step::Restore, e.to_string()).advice(
                "a capture never writes such entries: the store is damaged or was tampered with; do not restore from it",
            ),
            RestoreError::Target { problem, hints } => {
                hints.into_iter().fold(Error::new(Step::Restore, Kind::Refused, problem), Error::hint)
            }
            RestoreError::Cancelled { written } => Error::cancelled(Step::Restore, written).hint(Hint::RunAgain),
        }
    }
}
