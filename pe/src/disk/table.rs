//! What the partition-table readers return: entries in bytes, plus notes about anything odd.
//! The readers know nothing about disk names; the inventory's probe turns notes into findings.

use serde::{Deserialize, Serialize};

/// How bad a note (or an inventory finding) is.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Read, but with doubt.
    Warning,
    /// Could not be read.
    Error,
}

/// A partition table as read from a disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub kind: TableKind,
    /// The logical sector size the table was read with.
    pub sector_size: u32,
    pub entries: Vec<Entry>,
    pub notes: Vec<Note>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    Gpt,
    Mbr,
}

impl TableKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TableKind::Gpt => "gpt",
            TableKind::Mbr => "mbr",
        }
    }
}

/// One partition, numbered as the kernel numbers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub number: u32,
    pub start_bytes: u64,
    pub size_bytes: u64,
    /// GPT type GUID in lower case, or the MBR type byte as `0x83`.
    pub part_type: String,
    pub name: Option<String>,
    /// An MBR extended partition: a container of logical partitions, not content.
    pub container: bool,
}

impl Entry {
    /// One past the last byte, if it fits in a u64.
    pub fn end_bytes(&self) -> Option<u64> {
        self.start_bytes.checked_add(self.size_bytes)
    }
}

/// Something odd about the table, said for a technician.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub severity: Severity,
    /// The partition number the note is about, if any.
    pub partition: Option<u32>,
    pub message: String,
}

impl Note {
    pub fn warning(message: impl Into<String>) -> Self {
        Note { severity: Severity::Warning, partition: None, message: message.into() }
    }
    pub fn error(message: impl Into<String>) -> Self {
        Note { severity: Severity::Error, partition: None, message: message.into() }
    }
    pub fn on(mut self, partition: u32) -> Self {
        self.partition = Some(partition);
        self
    }
}

/// Notes for entries that overlap each other or run past the end of the disk. `allowed`
/// says which pairs may overlap (an extended partition and its logical partitions).
pub fn check_layout(entries: &[Entry], disk_size: u64, allowed: impl Fn(&Entry, &Entry) -> bool) -> Vec<Note> {
    let mut notes = Vec::new();
    for e in entries {
        match e.end_bytes() {
            Some(end) if end <= disk_size => {}
            _ => notes.push(
                Note::error(format!(
                    "partition {} (bytes {}–{}) runs past the end of the disk ({} bytes); the \
                     disk or image is truncated or the table is wrong — re-copy the full image \
                     or fix the table before migrating",
                    e.number,
                    e.start_bytes,
                    e.start_bytes.saturating_add(e.size_bytes),
                    disk_size
                ))
                .on(e.number),
            ),
        }
    }
    for (i, a) in entries.iter().enumerate() {
        for b in &entries[i + 1..] {
            if allowed(a, b) || allowed(b, a) {
                continue;
            }
            let a_end = a.start_bytes.saturating_add(a.size_bytes);
            let b_end = b.start_bytes.saturating_add(b.size_bytes);
            if a.start_bytes < b_end && b.start_bytes < a_end && a.size_bytes > 0 && b.size_bytes > 0 {
                notes.push(
                    Note::error(format!(
                        "partitions {} (bytes {}–{}) and {} (bytes {}–{}) overlap; the table is \
                         inconsistent — fix it (fdisk/gdisk) before migrating; inplace will not \
                         write to this disk",
                        a.number, a.start_bytes, a_end, b.number, b.start_bytes, b_end
                    ))
                    .on(b.number),
                );
            }
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(number: u32, start: u64, size: u64) -> Entry {
        Entry { number, start_bytes: start, size_bytes: size, part_type: "0x83".into(), name: None, container: false }
    }

    #[test]
    fn overlap_and_overrun() {
        let es = [e(1, 0, 100), e(2, 100, 50), e(3, 120, 10), e(4, 140, 100)];
        let notes = check_layout(&es, 200, |_, _| false);
        let text: Vec<_> = notes.iter().map(|n| n.message.as_str()).collect();
        assert_eq!(notes.len(), 3, "{text:#?}");
        assert!(text[0].starts_with("partition 4 (bytes 140–240) runs past the end"));
        assert!(text[1].starts_with("partitions 2 (bytes 100–150) and 3 (bytes 120–130) overlap"));
        assert!(text[2].starts_with("partitions 2 (bytes 100–150) and 4"));
        assert!(check_layout(&es[..2], 200, |_, _| false).is_empty());
        assert!(check_layout(&[e(1, u64::MAX, 2)], u64::MAX, |_, _| false).len() == 1);
    }
}
