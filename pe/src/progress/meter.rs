//! Bytes and entries of one phase, turned into events: a `Phase` event at the start, then
//! `Bytes` and `Entries` events at most [`INTERVAL`] apart (and always the last one), each with
//! the rate and the time left. Front ends only show what they get.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::cancel::Cancel;
use super::event::Event;
use super::sink::Sink;

/// The shortest time between two progress events of one meter.
pub const INTERVAL: Duration = Duration::from_millis(250);
/// The rate is measured over about this much recent time, so the time left follows changes
/// (a slower disk region, a network stall) without jumping at every sample.
pub const WINDOW: Duration = Duration::from_secs(10);

/// Rate and time left from (time, bytes done) samples: the rate over the last [`WINDOW`],
/// or since the start when less time has passed.
#[derive(Debug, Default, Clone)]
pub struct Rate {
    samples: VecDeque<(Duration, u64)>,
}

impl Rate {
    /// Records that `done` bytes were done `at` after the start; returns the rate (bytes/s)
    /// and the seconds left to reach `total` (`None` while nothing has been measured).
    pub fn sample(&mut self, at: Duration, done: u64, total: u64) -> (f64, Option<f64>) {
        if self.samples.is_empty() {
            self.samples.push_back((Duration::ZERO, 0));
        }
        self.samples.push_back((at, done));
        while self.samples.len() > 2 && self.samples.get(1).is_some_and(|s| at.saturating_sub(s.0) >= WINDOW) {
            self.samples.pop_front();
        }
        let (t0, d0) = self.samples[0];
        let secs = at.saturating_sub(t0).as_secs_f64();
        if secs <= 0.0 || done <= d0 {
            let left = (done >= total).then_some(0.0);
            return (0.0, left);
        }
        let rate = (done - d0) as f64 / secs;
        (rate, Some(total.saturating_sub(done) as f64 / rate))
    }
}

/// One phase's progress; shared by the threads of the phase (`&Meter` is `Sync`).
pub struct Meter<'a> {
    sink: &'a dyn Sink,
    state: Mutex<State>,
}

struct State {
    start: Instant,
    done: u64,
    total: u64,
    rate: Rate,
    last_bytes: Option<Instant>,
    last_entries: Option<Instant>,
}

impl<'a> Meter<'a> {
    /// Starts phase `name` with `total` bytes of work (0: unknown).
    pub fn start(sink: &'a dyn Sink, name: &str, total: u64) -> Self {
        sink.event(&Event::Phase { name: name.into(), total });
        Meter {
            sink,
            state: Mutex::new(State {
                start: Instant::now(),
                done: 0,
                total,
                rate: Rate::default(),
                last_bytes: None,
                last_entries: None,
            }),
        }
    }

    pub fn sink(&self) -> &'a dyn Sink {
        self.sink
    }

    /// `n` more bytes done.
    pub fn add(&self, n: u64) {
        self.update(|s| s.done = s.done.saturating_add(n));
    }

    /// `done` bytes done in all (for work that counts from a position, like a resume).
    pub fn set(&self, done: u64) {
        self.update(|s| s.done = done);
    }

    /// The total changed (a download learnt its length).
    pub fn set_total(&self, total: u64) {
        self.update(|s| s.total = total);
    }

    fn update(&self, f: impl FnOnce(&mut State)) {
        let Ok(mut s) = self.state.lock() else { return };
        f(&mut s);
        let now = Instant::now();
        let last = s.done >= s.total && s.total > 0;
        if !last && s.last_bytes.is_some_and(|t| now.duration_since(t) < INTERVAL) {
            return;
        }
        s.last_bytes = Some(now);
        let (done, total, at) = (s.done, s.total, now.duration_since(s.start));
        let (rate, eta_secs) = s.rate.sample(at, done, total);
        drop(s);
        self.sink.event(&Event::Bytes { done, total, rate, eta_secs });
    }

    /// `done` of `total` entries done (`total` 0: not known yet); `current` is the one at
    /// hand. Throttled like bytes, except the last of a known total.
    pub fn entries(&self, done: u64, total: u64, current: &str) {
        let Ok(mut s) = self.state.lock() else { return };
        let now = Instant::now();
        let last = total > 0 && done >= total;
        if !last && s.last_entries.is_some_and(|t| now.duration_since(t) < INTERVAL) {
            return;
        }
        s.last_entries = Some(now);
        drop(s);
        self.sink.event(&Event::Entries { done, total, current: current.to_string() });
    }

    /// Sends the bytes done now, whatever the time since the last event.
    pub fn flush(&self) {
        let Ok(mut s) = self.state.lock() else { return };
        let now = Instant::now();
        s.last_bytes = Some(now);
        let (done, total, at) = (s.done, s.total, now.duration_since(s.start));
        let (rate, eta_secs) = s.rate.sample(at, done, total);
        drop(s);
        self.sink.event(&Event::Bytes { done, total, rate, eta_secs });
    }

    pub fn done(&self) -> u64 {
        self.state.lock().map(|s| s.done).unwrap_or(0)
    }

    pub fn elapsed(&self) -> Duration {
        self.state.lock().map(|s| s.start.elapsed()).unwrap_or_default()
    }

    pub fn log(&self, message: impl Into<String>) {
        self.sink.event(&Event::log(message));
    }

    pub fn warn(&self, message: impl Into<String>) {
        self.sink.event(&Event::warning(message));
    }

    /// Whether `cancel` was raised (a convenience for loops that hold a meter).
    pub fn cancelled(&self, cancel: &Cancel) -> bool {
        cancel.is_cancelled()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::sink::Collect;

    #[test]
    fn rate_and_time_left_follow_recent_work() {
        let mut r = Rate::default();
        let s = |x: u64| Duration::from_secs(x);
        assert_eq!(r.sample(s(0), 0, 100), (0.0, None));
        let (rate, eta) = r.sample(s(2), 20, 100);
        assert_eq!((rate, eta), (10.0, Some(8.0)));
        // Steady 10 B/s for 20 s, then 1 B/s for 20 s: after the window only the slow part counts.
        let mut r = Rate::default();
        for t in 1..=20 {
            r.sample(s(t), t * 10, 1000);
        }
        let mut last = (0.0, None);
        for t in 21..=40 {
            last = r.sample(s(t), 200 + (t - 20), 1000);
        }
        assert!((last.0 - 1.0).abs() < 0.15, "{last:?}");
        assert!((last.1.unwrap() - 780.0).abs() < 120.0, "{last:?}");
    }

    #[test]
    fn a_finished_phase_has_nothing_left() {
        let mut r = Rate::default();
        assert_eq!(r.sample(Duration::ZERO, 5, 5).1, Some(0.0));
    }

    #[test]
    fn the_meter_throttles_but_always_sends_the_last_bytes() {
        let sink = Collect::default();
        let m = Meter::start(&sink, "writing", 1000);
        for _ in 0..100 {
            m.add(10);
        }
        let ev = sink.events();
        assert_eq!(ev[0], Event::Phase { name: "writing".into(), total: 1000 });
        let bytes: Vec<_> = ev.iter().filter(|e| matches!(e, Event::Bytes { .. })).collect();
        assert!(bytes.len() <= 3, "{bytes:?}");
        assert!(matches!(bytes.last(), Some(Event::Bytes { done: 1000, total: 1000, .. })), "{bytes:?}");
    }
}
