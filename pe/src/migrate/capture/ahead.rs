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

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::fs::{DirEntry, FsError, Metadata};
    use crate::migrate::entry::Entry;
    use crate::migrate::testing::MemFs;

    /// A MemFs whose files lie on the volume in the reverse of their name order, and which
    /// records the order files are read in.
    struct Reversed {
        fs: MemFs,
        reads: Vec<String>,
    }

    impl FsReader for Reversed {
        fn fs_type(&self) -> &'static str {
            "memfs"
        }
        fn label(&mut self) -> Option<String> {
            None
        }
        fn stat(&mut self, path: &[u8]) -> Result<DirEntry, FsError> {
            self.fs.stat(path)
        }
        fn metadata(&mut self, path: &[u8]) -> Result<Metadata, FsError> {
            self.fs.metadata(path)
        }
        fn read_dir(&mut self, path: &[u8]) -> Result<Vec<DirEntry>, FsError> {
            self.fs.read_dir(path)
        }
        fn read_file(&mut self, path: &[u8], out: &mut dyn Write) -> Result<u64, FsError> {
            self.reads.push(String::from_utf8_lossy(path).into_owned());
            self.fs.read_file(path, out)
        }
        fn data_position(&mut self, path: &[u8]) -> Option<u64> {
            let n: u64 = String::from_utf8_lossy(&path[3..]).parse().ok()?;
            Some(1_000_000 - n * 4096)
        }
    }

    fn file(name: &str, size: u64) -> Entry {
        Entry {
            source: name.into(),
            user: None,
            path: name.trim_start_matches('/').into(),
            kind: Kind::File,
            size,
            mode: None,
            owner: None,
            group: None,
            uid: None,
            gid: None,
            mtime: None,
            attributes: None,
            target: None,
            xattrs: Vec::new(),
            acl: None,
            allocated: None,
        }
    }

    #[test]
    fn small_files_are_read_in_disk_order_and_handed_out_in_plan_order() {
        let mut fs = MemFs::default();
        let mut plan = CapturePlan::default();
        for i in 0..5 {
            let name = format!("/f-{i}");
            fs.file(&name, format!("data {i}").as_bytes(), 0, 0);
            plan.entries.push(file(&name, 6));
        }
        // A large file streams, and the missing one fails in its turn.
        fs.file("/f-9", &vec![7u8; (SMALL + 1) as usize], 0, 0);
        plan.entries.insert(2, file("/f-9", SMALL + 1));
        plan.entries.push(file("/f-8", 6));
        let mut src = Reversed { fs, reads: Vec::new() };
        let mut ahead = ReadAhead::default();
        let cancel = Cancel::new();
        let mut got = Vec::new();
        for i in 0..plan.entries.len() {
            got.push(ahead.take(&mut src, &plan, i, usize::MAX, &cancel).map(|d| d.map(|v| String::from_utf8(v).unwrap())));
        }
        assert_eq!(src.reads, ["/f-8", "/f-4", "/f-3", "/f-2", "/f-1", "/f-0"].map(String::from));
        assert_eq!(got[0], Some(Ok("data 0".into())));
        assert_eq!(got[2], None, "the large file streams");
        assert_eq!(got[5], Some(Ok("data 4".into())));
        assert!(matches!(&got[6], Some(Err(e)) if e.contains("not found")), "{:?}", got[6]);
    }

    #[test]
    fn the_entry_a_resumed_capture_starts_in_streams() {
        let mut fs = MemFs::default();
        fs.file("/f-1", b"data", 0, 0);
        let plan = CapturePlan { entries: vec![file("/f-1", 4)], ..CapturePlan::default() };
        let mut src = Reversed { fs, reads: Vec::new() };
        assert!(ReadAhead::default().take(&mut src, &plan, 0, 0, &Cancel::new()).is_none());
        assert!(src.reads.is_empty());
    }
}
