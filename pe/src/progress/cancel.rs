//! The stop flag. A front end raises it (Esc in the TUI, Ctrl-C on the CLI, a test); the
//! engine looks at it between units of work (a chunk, a file, a record) and stops at the next
//! point where what it leaves behind is resumable or untouched, returning a
//! [`Kind::Cancelled`](crate::error::Kind::Cancelled) error.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::{Error, Written};
use crate::step::Step;

/// Cheap to clone; every clone sees the same flag.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Asks the work to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// `Err` once the flag is raised: the work of `step` stops here, having written `written`.
    pub fn check(&self, step: Step, written: Written) -> Result<(), Error> {
        if self.is_cancelled() {
            Err(Error::cancelled(step, written))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_clone_sees_the_flag() {
        let c = Cancel::new();
        let d = c.clone();
        assert!(c.check(Step::Capture, Written::Nothing).is_ok());
        d.cancel();
        let e = c.check(Step::Capture, Written::StoreOnly).unwrap_err();
        assert_eq!(e.kind, crate::error::Kind::Cancelled);
        assert_eq!(e.step, Step::Capture);
    }
}
