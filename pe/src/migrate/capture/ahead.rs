//! Small files read ahead in the order their data lies on the volume, then handed out in plan
//! order. On a spinning disk this turns a seek per file into a sweep; the store gets the same
//! bytes in the same order either way.

use std::collections::HashMap;

use super::plan::CapturePlan;
use crate::fs::FsReader;
use crate::migrate::entry::Kind;
use crate::progress::Cancel;

/// Files up to this size are read ahead; larger ones stream.
const SMALL: u64 = 1 << 20;
/// Most bytes and files held ahead at once.
const WINDOW_BYTES: u64 = 32 << 20;
const WINDOW_FILES: usize = 4096;

/// A file's data, or why it could not be read.
pub(super) type Data = Result<Vec<u8>, String>;

#[derive(Default)]
pub(super) struct ReadAhead {
    held: HashMap<usize, Data>,
}

impl ReadAhead {
    /// The data of entry `i` when it is a small file, reading the next window of small files
    /// (in on-disk order) when it is not held yet. `None`: stream it. `first` is the entry a
    /// resumed capture starts in; it streams, as it may start mid-file.
    pub(super) fn take(
        &mut self,
        source: &mut dyn FsReader,
        plan: &CapturePlan,
        i: usize,
        first: usize,
        cancel: &Cancel,
    ) -> Option<Data> {
        if !small(plan, i) || i == first {
            return None;
        }
        if let Some(d) = self.held.remove(&i) {
            return Some(d);
        }
        self.held.clear();
        let mut window = Vec::new();
        let mut bytes = 0u64;
        for (j, e) in plan.entries.iter().enumerate().skip(i) {
            if window.len() >= WINDOW_FILES || bytes >= WINDOW_BYTES {
                break;
            }
            if small(plan, j) {
                window.push((source.data_position(&e.source).unwrap_or(u64::MAX), j));
                bytes += e.size;
            }
        }
        window.sort_unstable();
        for (_, j) in window {
            if cancel.is_cancelled() {
                break;
            }
            let mut data = Vec::with_capacity(plan.entries[j].size as usize);
            let read = source.read_file(&plan.entries[j].source, &mut data);
            self.held.insert(j, read.map(|_| data).map_err(|e| e.to_string()));
        }
        // Cancelled before `i` was read: it streams, and sees the cancel itself.
        self.held.remove(&i)
    }
}

fn small(plan: &CapturePlan, i: usize) -> bool {
    let e = &plan.entries[i];
    e.kind == Kind::File && e.size <= SMALL
}
