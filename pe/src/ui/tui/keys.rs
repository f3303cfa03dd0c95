//! Where keys come from: the console (crossterm) or, in tests, a script.

use std::time::Duration;

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::app::App;

/// A source of key presses. `next` waits up to `wait` and may look at the app (a script waits
/// for the screen it expects).
pub trait KeySource {
    fn next(&mut self, app: &App, wait: Duration) -> anyhow::Result<Option<KeyEvent>>;
}

/// The console's keys.
pub struct Console;

impl KeySource for Console {
    fn next(&mut self, _app: &App, wait: Duration) -> anyhow::Result<Option<KeyEvent>> {
        if !event::poll(wait)? {
            return Ok(None);
        }
        match event::read()? {
            Event::Key(k) if k.kind == KeyEventKind::Press => Ok(Some(k)),
            _ => Ok(None),
        }
    }
}

/// A key press with no modifiers.
pub fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

/// The key presses that type `text`.
pub fn typed(text: &str) -> Vec<KeyEvent> {
    text.chars().map(|c| key(KeyCode::Char(c))).collect()
}
