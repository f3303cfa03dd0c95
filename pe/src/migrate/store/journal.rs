//! The store's event log, `journal/events.jsonl`: what happened to the store, one JSON object
//! a line (as [`crate::progress::JsonLines`] writes them), kept for whoever looks at the store
//! later. Events are gathered while the work runs and appended when it ends.

use std::sync::Mutex;

use super::error::StoreError;
use super::volume::Store;
use crate::progress::{Event, JsonLines, Sink};

/// Where the log lives in the store volume.
pub const EVENTS: &str = "journal/events.jsonl";

/// A sink that keeps the events worth a log line (not the byte and entry counts).
#[derive(Default)]
pub struct EventLog {
    lines: Mutex<Vec<u8>>,
}

impl EventLog {
    pub fn new() -> EventLog {
        EventLog::default()
    }

    /// Appends the gathered events to the store's log and forgets them.
    pub fn keep(&self, store: &Store) -> Result<(), StoreError> {
        let lines = match self.lines.lock() {
            Ok(mut l) => std::mem::take(&mut *l),
            Err(_) => return Ok(()),
        };
        if lines.is_empty() {
            return Ok(());
        }
        store.append_file(EVENTS, &lines)
    }
}

impl Sink for EventLog {
    fn event(&self, e: &Event) {
        if matches!(e, Event::Bytes { .. } | Event::Entries { .. }) {
            return;
        }
        if let Ok(mut l) = self.lines.lock() {
            l.extend_from_slice(JsonLines::<Vec<u8>>::line(e).as_bytes());
            l.push(b'\n');
        }
    }
}
