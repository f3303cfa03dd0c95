//! Where events go. A sink must not block the engine for long: slow front ends queue.

use std::io::Write;
use std::sync::mpsc::Sender;
use std::sync::Mutex;
use std::time::SystemTime;

use super::event::Event;

/// Receives the engine's events, from any thread.
pub trait Sink: Send + Sync {
    fn event(&self, e: &Event);

    fn log(&self, message: &str) {
        self.event(&Event::log(message));
    }

    fn warn(&self, message: &str) {
        self.event(&Event::warning(message));
    }
}

impl<S: Sink + ?Sized> Sink for Box<S> {
    fn event(&self, e: &Event) {
        (**self).event(e)
    }
}

/// Drops every event.
pub struct Silent;

impl Sink for Silent {
    fn event(&self, _e: &Event) {}
}

/// Sends every event on a channel; a front end on another thread receives them. Events sent
/// after the receiver is gone are dropped.
pub struct Channel(Mutex<Sender<Event>>);

impl Channel {
    pub fn new(tx: Sender<Event>) -> Channel {
        Channel(Mutex::new(tx))
    }
}

impl Sink for Channel {
    fn event(&self, e: &Event) {
        if let Ok(tx) = self.0.lock() {
            let _ = tx.send(e.clone());
        }
    }
}

/// Keeps every event (tests, and reports that list what happened).
#[derive(Default)]
pub struct Collect(Mutex<Vec<Event>>);

impl Collect {
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

impl Sink for Collect {
    fn event(&self, e: &Event) {
        if let Ok(mut v) = self.0.lock() {
            v.push(e.clone());
        }
    }
}

/// Passes every event to each of several sinks, in order.
pub struct Tee<'a>(pub Vec<&'a dyn Sink>);

impl Sink for Tee<'_> {
    fn event(&self, e: &Event) {
        for s in &self.0 {
            s.event(e);
        }
    }
}

/// Writes each event as one JSON object a line, with its time: `{"time": …, "event": …, …}`.
/// `Bytes` and `Entries` events are written at most once a second each, so a log of a long
/// phase stays small; every other event is written.
pub struct JsonLines<W: Write + Send> {
    out: Mutex<(W, Option<std::time::Instant>)>,
}

impl<W: Write + Send> JsonLines<W> {
    pub fn new(out: W) -> Self {
        JsonLines { out: Mutex::new((out, None)) }
    }

    pub fn into_inner(self) -> W {
        self.out.into_inner().unwrap_or_else(|e| e.into_inner()).0
    }

    /// The line written for `e` (without the newline).
    pub fn line(e: &Event) -> String {
        let time = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        let mut v = serde_json::to_value(e).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("time".into(), time.into());
        }
        v.to_string()
    }
}

impl<W: Write + Send> Sink for JsonLines<W> {
    fn event(&self, e: &Event) {
        let Ok(mut g) = self.out.lock() else { return };
        if matches!(e, Event::Bytes { .. } | Event::Entries { .. }) {
            let now = std::time::Instant::now();
            if g.1.is_some_and(|t| now.duration_since(t).as_millis() < 1000) {
                return;
            }
            g.1 = Some(now);
        }
        let line = Self::line(e);
        let _ = writeln!(g.0, "{line}");
        let _ = g.0.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Step;

    #[test]
    fn a_channel_carries_events_to_another_thread() {
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = Channel::new(tx);
        std::thread::scope(|s| {
            s.spawn(|| sink.event(&Event::Step { step: Step::Capture }));
        });
        assert_eq!(rx.recv().unwrap(), Event::Step { step: Step::Capture });
    }

    #[test]
    fn json_lines_are_tagged_and_timed() {
        let sink = JsonLines::new(Vec::new());
        sink.event(&Event::Phase { name: "writing".into(), total: 7 });
        sink.event(&Event::warning("careful"));
        let text = String::from_utf8(sink.into_inner()).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["event"], "phase");
        assert_eq!(lines[0]["total"], 7);
        assert_eq!(lines[1]["event"], "warning");
        assert!(lines[1]["time"].as_str().unwrap().ends_with('Z'));
        let back: Event = serde_json::from_value(lines[1].clone()).unwrap();
        assert_eq!(back, Event::warning("careful"));
    }
}
