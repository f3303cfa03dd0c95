//! Structured events: every phase says what it does as one JSON line (kept with the job's
//! reports) and as a plain `inplace: …` line on the consoles.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::Serialize;

use crate::boot::console::Consoles;

#[derive(Debug, Serialize)]
pub struct Event<'a> {
    pub time: String,
    pub phase: &'a str,
    pub level: &'a str,
    pub message: &'a str,
}

pub struct Events {
    consoles: Arc<Consoles>,
    file: Mutex<Option<File>>,
}

impl Events {
    /// Events go to `consoles` and, when it can be created, the JSON-lines file `path`.
    pub fn new(consoles: Arc<Consoles>, path: &Path) -> Events {
        let file = path.parent().and_then(|d| std::fs::create_dir_all(d).ok()).and_then(|_| File::create(path).ok());
        Events { consoles, file: Mutex::new(file) }
    }

    pub fn info(&self, phase: &str, message: &str) {
        self.emit(phase, "info", message);
    }

    pub fn warn(&self, phase: &str, message: &str) {
        self.emit(phase, "warning", message);
    }

    fn emit(&self, phase: &str, level: &str, message: &str) {
        let prefix = if level == "info" { "" } else { "warning: " };
        self.consoles.line(&format!("inplace: {prefix}{message}"));
        let time = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        let line = serde_json::to_string(&Event { time, phase, level, message }).unwrap_or_default();
        if let Some(f) = self.file.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            let _ = writeln!(f, "{line}");
        }
    }

    pub fn consoles(&self) -> &Consoles {
        &self.consoles
    }
}
