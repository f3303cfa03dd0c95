//! Plain text for consoles and the CLI: the inventory with an ASCII partition map.

use std::fmt::Write;

use crate::inventory::{Disk, Inventory, Severity};

use super::map::{human_size, segments};

const BAR: usize = 64;

/// The inventory as plain text, one block per disk.
pub fn inventory_text(inventory: &Inventory) -> String {
    let mut out = String::new();
    for disk in &inventory.disks {
        disk_text(&mut out, disk);
    }
    if inventory.disks.is_empty() {
        out.push_str("no disks found\n");
    }
    for f in &inventory.findings {
        let _ = writeln!(out, "{}: {}: {}", severity(f.severity), f.subject, f.message);
    }
    out
}

fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

fn disk_text(out: &mut String, disk: &Disk) {
    let _ = writeln!(
        out,
        "{}  {}  {} ({}-byte sectors)  {}  {}{}",
        disk.name,
        disk.transport,
        human_size(disk.size_bytes),
        disk.logical_sector_size,
        disk.model.as_deref().unwrap_or("-"),
        disk.table.as_deref().unwrap_or("no partition table"),
        if disk.removable { "  removable" } else { "" }
    );
    let mut bar = String::from("[");
    for seg in segments(disk, BAR) {
        let c = match seg.partition {
            Some(i) => char::from_digit(disk.partitions[i].number % 36, 36).unwrap_or('#'),
            None => '.',
        };
        bar.extend(std::iter::repeat_n(c, seg.width));
    }
    bar.push(']');
    let _ = writeln!(out, "  {bar}");
    for p in &disk.partitions {
        let os = p.os.as_ref().map(|o| format!("{}; users: {}", o.title(), o.users.join(", ")));
        let _ = writeln!(
            out,
            "  {:>3}  {:>10}  {:<9} {:<16} {}",
            p.number,
            human_size(p.size_bytes),
            p.fs.as_deref().unwrap_or("-"),
            p.label.as_deref().or(p.name.as_deref()).unwrap_or(""),
            os.unwrap_or_default()
        );
    }
    for f in &disk.findings {
        let _ = writeln!(out, "  {}: {}: {}", severity(f.severity), f.subject, f.message);
    }
}

/// Progress as plain lines on stderr (a serial or text console, the CLI): steps, phases,
/// logs and warnings as they come, bytes with rate and time left every 2 s and at the end of a
/// phase, entries every 2 s.
pub struct PlainProgress {
    last: std::sync::Mutex<(std::time::Instant, std::time::Instant)>,
    words: fn(&crate::error::Error) -> String,
}

impl PlainProgress {
    /// Errors in neutral words ([`super::words::error`]).
    pub fn new() -> Self {
        Self::with_words(super::words::error)
    }

    /// Errors in the front end's words (the CLI's, with its flags).
    pub fn with_words(words: fn(&crate::error::Error) -> String) -> Self {
        let now = std::time::Instant::now();
        PlainProgress { last: std::sync::Mutex::new((now, now)), words }
    }

    /// The line for `e`, or `None` when it is not shown now.
    pub fn line(&self, e: &crate::progress::Event) -> Option<String> {
        use crate::progress::Event;
        let every = std::time::Duration::from_secs(2);
        match e {
            Event::Step { step } => Some(format!("== {step}")),
            Event::Log { message } => Some(message.clone()),
            Event::Warning { message } => Some(format!("warning: {message}")),
            Event::Phase { name, total: 0 } => Some(format!("{name}")),
            Event::Phase { name, total } => Some(format!("{name}: {}", human_size(*total))),
            Event::Bytes { done, total, rate, eta_secs } => {
                let mut last = self.last.lock().ok()?;
                if last.0.elapsed() < every && done < total {
                    return None;
                }
                last.0 = std::time::Instant::now();
                let left = match eta_secs {
                    Some(s) => format!(", {} left", crate::ui::plain::duration(*s)),
                    None => String::new(),
                };
                Some(format!("  {} of {} ({:.1} MiB/s{left})", human_size(*done), human_size(*total), rate / 1048576.0))
            }
            Event::Entries { done, total, current } => {
                let mut last = self.last.lock().ok()?;
                if last.1.elapsed() < every && (*total == 0 || done < total) {
                    return None;
                }
                last.1 = std::time::Instant::now();
                match total {
                    0 => Some(format!("  {done} entries {current}")),
                    _ => Some(format!("  {done} of {total} entries {current}")),
                }
            }
            // The engine logs a line with the same figures.
            Event::Resized { .. } | Event::Job { .. } | Event::Done { .. } => None,
            Event::StepDone { step, secs, .. } => Some(format!("== {step} done in {}", duration(*secs))),
            Event::Failed { error } => Some(format!("{} failed: {}", error.step, (self.words)(error))),
        }
    }
}

impl Default for PlainProgress {
    fn default() -> Self {
        Self::new()
    }
}

impl crate::progress::Sink for PlainProgress {
    fn event(&self, e: &crate::progress::Event) {
        if let Some(l) = self.line(e) {
            eprintln!("{l}");
        }
    }
}

/// `42 s`, `3 min 5 s`, `1 h 2 min`.
pub fn duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    if s < 60 {
        format!("{s} s")
    } else if s < 3600 {
        format!("{} min {} s", s / 60, s % 60)
    } else {
        format!("{} h {} min", s / 3600, s % 3600 / 60)
    }
}
