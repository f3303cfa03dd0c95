//! The PE's log: every engine event as a plain line on every console (`inplace: …`) and as a
//! JSON line in a file kept with the run's report.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use super::console::Consoles;
use crate::progress::{Event, JsonLines, Sink};
use crate::ui::plain::PlainProgress;

pub struct ConsoleLog {
    consoles: Arc<Consoles>,
    plain: PlainProgress,
    file: Option<JsonLines<File>>,
}

impl ConsoleLog {
    /// Lines go to `consoles` and, when it can be opened, the JSON-lines file `path` (appended).
    pub fn new(consoles: Arc<Consoles>, path: &Path) -> ConsoleLog {
        let file = path
            .parent()
            .and_then(|d| std::fs::create_dir_all(d).ok())
            .and_then(|_| std::fs::OpenOptions::new().create(true).append(true).open(path).ok());
        ConsoleLog { consoles, plain: PlainProgress::new(), file: file.map(JsonLines::new) }
    }

    pub fn consoles(&self) -> &Consoles {
        &self.consoles
    }
}

impl Sink for ConsoleLog {
    fn event(&self, e: &Event) {
        if let Some(line) = self.plain.line(e) {
            self.consoles.line(&format!("inplace: {}", line.trim_start()));
        }
        if let Some(f) = &self.file {
            f.event(e);
        }
    }
}
