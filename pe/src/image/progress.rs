//! Progress events from the image engine to whatever front end drives it (the TUI, the plain
//! console, the CLI). The engine never prints.

use std::sync::Mutex;
use std::time::Instant;

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A new phase starts (`verifying`, `writing`, `downloading`, …) with its total bytes.
    Phase { name: String, total: u64 },
    /// Bytes done in the current phase, with the rate (bytes/s) and the time left (s).
    Bytes { done: u64, total: u64, rate: f64, eta_secs: f64 },
    /// Something worth a line in the log (a retry, a resume, a note).
    Log(String),
}

pub trait Progress: Send + Sync {
    fn event(&self, e: Event);
}

/// Drops every event.
pub struct Silent;

impl Progress for Silent {
    fn event(&self, _e: Event) {}
}

/// Turns "n more bytes" into rate-limited `Bytes` events (at most ~4 per second).
pub struct Meter<'a> {
    sink: &'a dyn Progress,
    inner: Mutex<MeterState>,
}

struct MeterState {
    start: Instant,
    last: Instant,
    done: u64,
    total: u64,
}

impl<'a> Meter<'a> {
    pub fn new(sink: &'a dyn Progress, phase: &str, total: u64) -> Self {
        sink.event(Event::Phase { name: phase.into(), total });
        let now = Instant::now();
        Meter { sink, inner: Mutex::new(MeterState { start: now, last: now, done: 0, total }) }
    }

    pub fn add(&self, n: u64) {
        let Ok(mut s) = self.inner.lock() else { return };
        s.done = s.done.saturating_add(n);
        let now = Instant::now();
        if now.duration_since(s.last).as_millis() >= 250 || s.done >= s.total {
            s.last = now;
            let secs = now.duration_since(s.start).as_secs_f64().max(1e-6);
            let rate = s.done as f64 / secs;
            let eta = if rate > 0.0 { s.total.saturating_sub(s.done) as f64 / rate } else { 0.0 };
            self.sink.event(Event::Bytes { done: s.done, total: s.total, rate, eta_secs: eta });
        }
    }

    pub fn log(&self, m: String) {
        self.sink.event(Event::Log(m));
    }
}
