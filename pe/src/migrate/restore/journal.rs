//! What a restore has done so far, kept in the store as it goes (`restore/progress.jsonl`),
//! so a run after a cancel or a power cut continues the restore instead of starting it over:
//! the entries listed are reported with their recorded outcome and not written again (no
//! `.restored` copies of its own earlier work, directories made earlier still get their mode
//! and time at the end).
//!
//! The file is a header line `{"plan_sha256", "root", "started"}`, then one line per entry
//! done: `{"item", "finish_dir", …its report entry}`. Lines are appended about once a second
//! and when the restore stops; entries that failed are not recorded (a later run tries them
//! again). The file goes once the store is marked restored. A record is used only for the
//! same capture and root, and only when it is newer than the store's restored mark. Entries
//! done in the last second before a power cut are not recorded: files and links already in
//! place are recognised by their size and time, or target, when they come again.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::report::EntryReport;
use super::state::State;
use crate::migrate::store::manifest::MAX_MANIFEST_BYTES;
use crate::migrate::store::{CaptureName, Store};
use crate::progress::Sink;

/// Where the record of the store's first capture lives in the store volume; capture `n`'s is
/// `restore/progress.n.jsonl` ([`progress_path`]).
pub const PROGRESS: &str = "restore/progress.jsonl";

/// Where the record of the restore of capture `name` lives in the store volume.
pub fn progress_path(name: CaptureName) -> String {
    match name.number() {
        1 => PROGRESS.to_string(),
        n => format!("restore/progress.{n}.jsonl"),
    }
}
/// Longest time between two writes of the record while entries are restored.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Header {
    plan_sha256: String,
    root: String,
    /// Unix seconds (UTC) when the restore this record belongs to started.
    started: u64,
}

/// One entry a run restored (or skipped under the conflict policy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    /// Its index in the checked plan.
    pub item: usize,
    /// A directory this restore made, whose mode and time are set at the end.
    #[serde(default)]
    pub finish_dir: bool,
    #[serde(flatten)]
    pub entry: EntryReport,
}

/// The record of the current run of one capture's restore.
pub struct Journal {
    /// Its file in the store volume.
    path: String,
    /// The whole file to write at the next flush (a fresh record, or one with a torn last
    /// line); `None`: append.
    rewrite: Option<Vec<u8>>,
    pending: Vec<u8>,
    last: Instant,
    /// Writing failed once: the run goes on without a record.
    broken: bool,
}

impl Journal {
    /// The record of an unfinished earlier run of this restore of the capture `name` (same
    /// capture, same root, newer than the mark `marked`), with the entries it lists by item;
    /// else a fresh one.
    pub fn load(
        store: &Store,
        name: CaptureName,
        plan_sha256: &str,
        root: &str,
        marked: Option<&State>,
        started: u64,
        sink: &dyn Sink,
    ) -> (Journal, HashMap<usize, Done>) {
        let fresh = Header { plan_sha256: plan_sha256.into(), root: root.into(), started };
        let path = progress_path(name);
        let mut journal = Journal { rewrite: Some(line(&fresh)), pending: Vec::new(), last: Instant::now(), broken: false, path };
        let bytes = match store.read_file(&journal.path, MAX_MANIFEST_BYTES) {
            Ok(Some(b)) => b,
            Ok(None) => return (journal, HashMap::new()),
            Err(e) => {
                sink.warn(&format!("the record of an earlier restore cannot be read ({e}); the restore starts over"));
                return (journal, HashMap::new());
            }
        };
        let mut lines = bytes.split(|b| *b == b'\n');
        let header: Option<Header> = lines.next().and_then(|l| serde_json::from_slice(l).ok());
        let usable = header.as_ref().is_some_and(|h| {
            h.plan_sha256 == plan_sha256 && h.root == root && marked.is_none_or(|m| h.started >= m.finished)
        });
        let Some(header) = header.filter(|_| usable) else { return (journal, HashMap::new()) };
        let mut done = HashMap::new();
        let mut good = line(&header);
        let mut torn = false;
        for l in lines.filter(|l| !l.is_empty()) {
            match serde_json::from_slice::<Done>(l) {
                Ok(d) => {
                    good.extend_from_slice(l);
                    good.push(b'\n');
                    done.insert(d.item, d);
                }
                // A line cut short by a power cut: what follows it cannot be trusted either.
                Err(_) => {
                    torn = true;
                    break;
                }
            }
        }
        journal.rewrite = torn.then_some(good);
        (journal, done)
    }

    /// Records an entry done (written at the next flush).
    pub fn push(&mut self, d: &Done) {
        if serde_json::to_writer(&mut self.pending, d).is_ok() {
            self.pending.push(b'\n');
        }
    }

    /// Whether the last write is a second old: time to [`Journal::flush`], once what the
    /// pending lines list is on the disk.
    pub fn due(&self) -> bool {
        self.last.elapsed() >= FLUSH_EVERY
    }

    /// Writes what is pending into the store.
    pub fn flush(&mut self, store: &Store, sink: &dyn Sink) {
        self.last = Instant::now();
        if self.broken || (self.pending.is_empty() && self.rewrite.is_none()) {
            return;
        }
        let r = match self.rewrite.take() {
            Some(mut all) => {
                all.extend_from_slice(&self.pending);
                store.write_file(&self.path, &all)
            }
            None => store.append_file(&self.path, &self.pending),
        };
        self.pending.clear();
        if let Err(e) = r {
            self.broken = true;
            sink.warn(&format!(
                "the restore's progress cannot be kept in the store ({e}); if it is interrupted, a later run \
                 may restore some entries again"
            ));
        }
    }

    /// The restore is finished and marked: the record of capture `name` goes.
    pub fn remove(store: &Store, name: CaptureName) -> Result<bool, crate::migrate::store::StoreError> {
        store.remove_file(&progress_path(name))
    }
}

fn line<T: Serialize>(v: &T) -> Vec<u8> {
    let mut l = serde_json::to_vec(v).unwrap_or_default();
    l.push(b'\n');
    l
}
