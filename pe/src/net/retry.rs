//! Trying a transfer again: doubling waits up to [`MAX_WAIT`], a log line for every retry,
//! and waits that end early when the work is cancelled. A failure is retried when its kind is
//! [`Kind::Transient`]; any other kind stops at once.

use std::time::{Duration, Instant};

use crate::error::{Error, Kind, Result, Written};
use crate::progress::{Cancel, Sink};
use crate::step::Step;

/// The longest wait between two attempts.
pub const MAX_WAIT: Duration = Duration::from_secs(10);
/// How often a wait looks at the cancel flag.
const TICK: Duration = Duration::from_millis(50);

/// The retries left and the next wait of one transfer.
#[derive(Debug, Clone)]
pub struct Backoff {
    retries: u32,
    first: Duration,
    wait: Duration,
    failures: u32,
}

impl Backoff {
    /// `retries` attempts after the first, waiting `first`, then twice as long each time.
    pub fn new(retries: u32, first: Duration) -> Backoff {
        Backoff { retries, first, wait: first, failures: 0 }
    }

    /// The transfer moved on: the next failure starts the count again.
    pub fn reset(&mut self) {
        self.failures = 0;
        self.wait = self.first;
    }

    /// After failure `e` of `what` (which names the file or URL): logs and waits before the
    /// next attempt (`Ok`), or returns the error to stop with, in the context of `what` — `e`
    /// itself when it is not transient, `e` noting the retries when they are used up, a
    /// cancellation when the flag is raised while waiting.
    pub fn pause(&mut self, e: Error, what: &str, sink: &dyn Sink, cancel: &Cancel) -> Result<()> {
        if e.is_cancelled() {
            return Err(e);
        }
        if e.kind != Kind::Transient {
            return Err(e.context(what));
        }
        if self.failures >= self.retries {
            let problem = format!("{} (gave up after {} retries)", e.problem, self.retries);
            return Err(Error { problem, ..e }.context(what));
        }
        self.failures += 1;
        sink.log(&format!("{what}: {}; retry {} of {} in {:.1} s", e.problem, self.failures, self.retries, self.wait.as_secs_f64()));
        sleep(self.wait, cancel)?;
        self.wait = (self.wait * 2).min(MAX_WAIT);
        Ok(())
    }
}

/// Sleeps `d`, or less when `cancel` is raised (then `Err`).
pub fn sleep(d: Duration, cancel: &Cancel) -> Result<()> {
    let until = Instant::now() + d;
    loop {
        cancel.check(Step::Image, Written::Nothing)?;
        let now = Instant::now();
        if now >= until {
            return Ok(());
        }
        std::thread::sleep((until - now).min(TICK));
    }
}

/// Runs `f` until it succeeds, fails for good, or runs out of retries.
pub fn retry<T>(mut backoff: Backoff, sink: &dyn Sink, cancel: &Cancel, what: &str, mut f: impl FnMut() -> Result<T>) -> Result<T> {
    loop {
        cancel.check(Step::Image, Written::Nothing)?;
        match f() {
            Ok(v) => return Ok(v),
            Err(e) => backoff.pause(e, what, sink, cancel)?,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Collect;

    #[test]
    fn transient_failures_are_retried_then_given_up() {
        let sink = Collect::default();
        let mut n = 0;
        let r: Result<()> = retry(Backoff::new(2, Duration::ZERO), &sink, &Cancel::new(), "fetching x", || {
            n += 1;
            Err(Error::transient(Step::Image, "HTTP 500"))
        });
        let e = r.unwrap_err();
        assert_eq!(n, 3);
        assert_eq!(e.kind, Kind::Transient);
        assert_eq!(e.problem, "fetching x: HTTP 500 (gave up after 2 retries)");
        let logs: Vec<_> = sink.events().into_iter().filter(|e| matches!(e, crate::progress::Event::Log { .. })).collect();
        assert_eq!(logs.len(), 2);
    }

    #[test]
    fn other_failures_stop_at_once() {
        let mut n = 0;
        let r: Result<()> = retry(Backoff::new(5, Duration::ZERO), &crate::progress::Silent, &Cancel::new(), "x", || {
            n += 1;
            Err(Error::refused(Step::Image, "404"))
        });
        assert_eq!((n, r.unwrap_err().problem.as_str()), (1, "x: 404"));
    }

    #[test]
    fn a_wait_ends_soon_after_cancel() {
        let cancel = Cancel::new();
        let c = cancel.clone();
        let raised = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            c.cancel();
            Instant::now()
        });
        let e = sleep(Duration::from_secs(30), &cancel).unwrap_err();
        let late = raised.join().unwrap().elapsed();
        assert!(e.is_cancelled());
        assert!(late < Duration::from_millis(500), "{late:?}");
    }
}
