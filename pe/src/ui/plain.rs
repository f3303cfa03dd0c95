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
        let os = p.os.as_ref().map(|o| match &o.version {
            Some(v) => format!("{} {v}; users: {}", o.name, o.users.join(", ")),
            None => format!("{}; users: {}", o.name, o.users.join(", ")),
        });
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

/// Progress as plain lines on stderr (a serial or text console): every log line, phases, and
/// bytes with rate and time left every 2 s.
pub struct PlainProgress {
    last: std::sync::Mutex<std::time::Instant>,
}

impl PlainProgress {
    pub fn new() -> Self {
        PlainProgress { last: std::sync::Mutex::new(std::time::Instant::now()) }
    }
}

impl Default for PlainProgress {
    fn default() -> Self {
        Self::new()
    }
}

impl crate::image::progress::Progress for PlainProgress {
    fn event(&self, e: crate::image::progress::Event) {
        use crate::image::progress::Event;
        match e {
            Event::Log(m) => eprintln!("{m}"),
            Event::Phase { name, total } => eprintln!("{name}: {}", human_size(total)),
            Event::Bytes { done, total, rate, eta_secs } => {
                let Ok(mut last) = self.last.lock() else { return };
                if last.elapsed() >= std::time::Duration::from_secs(2) || done >= total {
                    *last = std::time::Instant::now();
                    eprintln!(
                        "  {} of {} ({:.0} MiB/s, {:.0} s left)",
                        human_size(done),
                        human_size(total),
                        rate / 1048576.0,
                        eta_secs
                    );
                }
            }
        }
    }
}
