//! Why a capture stopped. The old filesystem is never written, whatever happens: a capture
//! error has written nothing, or only the store.

use crate::error::{Error, Hint, Kind, Written};
use crate::migrate::store::StoreError;
use crate::step::Step;

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error(
        "store {store} already holds a finished capture ({what}); it may be the only copy of someone's files, \
         so it is not overwritten"
    )]
    HoldsCapture { store: String, what: String },
    #[error("store {store} holds an unfinished capture of a different plan or with different options ({detail})")]
    OtherPlan { store: String, detail: String },
    #[error(
        "store {store} is full ({detail}): {written} bytes of the capture are in it, about {remaining} bytes of \
         file data (before compression) were still to come, and it had {free} bytes free when this run started"
    )]
    StoreFull { store: String, detail: String, written: u64, remaining: u64, free: u64 },
    #[error("{detail}")]
    Options { detail: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the capture was written but reading it back failed, so it is not usable: {0}")]
    Verify(StoreError),
    #[error("capture stopped: {0}")]
    Internal(String),
}

impl CaptureError {
    /// The engine's error: in the capture step, having written nothing or only the store.
    pub fn error(self) -> Error {
        let advice = |t: &str| Hint::Advice { text: t.into() };
        let refused = |e: &CaptureError| Error::refused(Step::Capture, e.to_string());
        match self {
            CaptureError::Store(e @ StoreError::Cancelled { .. }) => {
                e.error(Step::Capture).written(Written::StoreOnly).hint(Hint::RunAgain)
            }
            CaptureError::Store(e) => e.error(Step::Capture).written(Written::StoreOnly),
            CaptureError::HoldsCapture { .. } => {
                refused(&self).hint(advice("restore it first, or capture into another store"))
            }
            CaptureError::OtherPlan { .. } => refused(&self)
                .hint(advice("resume it with the same selection and options"))
                .hint(advice("if the old OS is still intact, clear the store's capture first")),
            CaptureError::Options { .. } => refused(&self),
            CaptureError::StoreFull { .. } => {
                refused(&self).written(Written::StoreOnly).hint(advice("make a larger store or select less data"))
            }
            CaptureError::Verify(_) => Error::damaged(Step::Capture, self.to_string())
                .written(Written::StoreOnly)
                .hint(Hint::CaptureAgain),
            CaptureError::Internal(_) => {
                Error::new(Step::Capture, Kind::Internal, self.to_string()).written(Written::StoreOnly)
            }
        }
    }
}
