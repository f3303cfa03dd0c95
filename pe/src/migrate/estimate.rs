//! How big a capture will be: counts from the selection, and the store size expected after
//! compression, judged from a sample of the files compressed the way capture compresses them.
//! A sparse file counts with the data its filesystem stores (the readers' `allocated`): its
//! holes go into the store as hole records, which take no room.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::entry::{Entry, Kind};
use super::rules::{self, Overrides};
use super::select::{self, Selection};
use super::source;
use crate::error::{Result, Written};
use crate::fs::{read_head, FsReader};
use crate::progress::{Cancel, Meter, Sink};
use crate::step::Step;
use crate::units::{human, human_size};

/// The phase name of sampling, in progress events.
pub const PHASE: &str = "sampling how well the files compress";

/// Files sampled for the compression ratio, spread over the selection.
const SAMPLES: usize = 64;
/// Bytes read from the start of each sampled file.
const SAMPLE_BYTES: usize = 256 * 1024;
/// Store bytes per entry beyond its data: manifest record and chunk headers.
const PER_ENTRY: u64 = 512;
/// Room kept on top of the estimate: FAT32 metadata, the journal and reports.
const FIXED_MARGIN: u64 = 64 << 20;

/// The numbers `inplace capture --estimate` prints and the carve plan is sized from.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Estimate {
    pub users: Vec<UserTotal>,
    pub files: u64,
    pub dirs: u64,
    pub links: u64,
    /// Data bytes of the selected files.
    pub bytes: u64,
    /// Of those, the bytes their filesystem stores: less than `bytes` when sparse files are
    /// selected (their holes cost the store nothing).
    pub allocated_bytes: u64,
    /// Items left out (excluded, unreadable, over a cap) and their bytes.
    pub skipped: u64,
    pub skipped_bytes: u64,
    /// Compressed size over data size in the sampled heads of files.
    pub ratio: f64,
    /// Expected bytes the capture needs in the store, margin included.
    pub store_bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserTotal {
    pub name: String,
    pub files: u64,
    pub bytes: u64,
    /// Items of the user's profile the rules leave out, and their bytes.
    #[serde(default)]
    pub left_out: u64,
    #[serde(default)]
    pub left_out_bytes: u64,
}

/// Counts the selection and samples compression from `fs`; checks `cancel` at each sample.
pub fn estimate(fs: &mut dyn FsReader, sel: &Selection, sink: &dyn Sink, cancel: &Cancel) -> Result<Estimate> {
    let mut e = Estimate { skipped: sel.skipped.len() as u64, ..Default::default() };
    e.skipped_bytes = sel.skipped.iter().map(|s| s.size).sum();
    for u in &sel.users {
        let home = format!("{}/", u.home.trim_end_matches('/'));
        let left: Vec<&super::entry::Skipped> = sel.skipped.iter().filter(|s| s.source.to_string().starts_with(&home)).collect();
        e.users.push(UserTotal {
            name: u.name.clone(),
            left_out: left.len() as u64,
            left_out_bytes: left.iter().map(|s| s.size).sum(),
            ..Default::default()
        });
    }
    for entry in &sel.entries {
        match entry.kind {
            Kind::File => {
                e.files += 1;
                e.bytes += entry.size;
                e.allocated_bytes += stored(entry);
                if let Some(t) = e.users.iter_mut().find(|t| Some(&t.name) == entry.user.as_ref()) {
                    t.files += 1;
                    t.bytes += entry.size;
                }
            }
            Kind::Dir => e.dirs += 1,
            Kind::Symlink | Kind::HardLink => e.links += 1,
        }
    }
    // The head of a sparse file may be a hole, which says nothing of how its data compresses:
    // sparse files are not sampled.
    let files: Vec<_> = sel.entries.iter().filter(|x| x.kind == Kind::File && x.size > 0 && stored(x) == x.size).collect();
    let step = files.len().div_ceil(SAMPLES).max(1);
    // Sampled files count with their own ratio (zeros cost next to nothing in the store); the
    // others, and the stored data of sparse files, with the sample's overall ratio.
    let (mut raw, mut packed, mut sampled_bytes, mut sampled_est) = (0u64, 0u64, 0u64, 0f64);
    let samples = files.len().div_ceil(step) as u64;
    let meter = Meter::start(sink, PHASE, 0);
    for (n, f) in files.iter().step_by(step).enumerate() {
        cancel.check(Step::Plan, Written::Nothing)?;
        meter.entries(n as u64, samples, &f.source.to_string());
        let Ok(head) = read_head(fs, &f.source, SAMPLE_BYTES) else { continue };
        if head.is_empty() {
            continue;
        }
        let compressed = zstd::bulk::compress(&head, 1).map(|c| c.len()).unwrap_or(head.len()).min(head.len());
        raw += head.len() as u64;
        packed += compressed as u64;
        sampled_bytes += f.size;
        sampled_est += f.size as f64 * compressed as f64 / head.len() as f64;
    }
    e.ratio = if raw == 0 { 1.0 } else { packed as f64 / raw as f64 };
    let data = (sampled_est + e.allocated_bytes.saturating_sub(sampled_bytes) as f64 * e.ratio).ceil() as u64;
    let entries = sel.entries.len() as u64;
    e.store_bytes = data + data / 10 + entries * PER_ENTRY + FIXED_MARGIN;
    meter.entries(samples, samples, "");
    Ok(e)
}

/// The bytes of `e`'s data its filesystem stores: its size, or less for a sparse file.
fn stored(e: &Entry) -> u64 {
    e.allocated.map_or(e.size, |a| a.min(e.size))
}

/// The store size a capture of partition `partition` of `disk` needs, by the estimate with
/// the built-in rules for the OS found on it, in whole MiB. Says what it found in a log
/// event. Writes nothing.
pub fn store_size_for(disk: &Path, partition: u32, sink: &dyn Sink, cancel: &Cancel) -> Result<u64> {
    let mut source = source::open(disk, partition, sink)?;
    let family = source.family().map(str::to_string);
    let rules = rules::effective(None, family.as_deref(), &Overrides::default())?;
    let sel = select::select(source.reader.as_mut(), &rules, sink, cancel)?;
    let e = estimate(source.reader.as_mut(), &sel, sink, cancel)?;
    sink.log(&format!(
        "partition {partition}: {} files, {} to capture; store sized {}",
        e.files,
        human(e.bytes),
        human(e.store_bytes)
    ));
    Ok(e.store_bytes.div_ceil(1 << 20) << 20)
}

/// A short human summary.
pub fn text(e: &Estimate) -> String {
    let mut s = String::new();
    for u in &e.users {
        s.push_str(&format!("user {}: {} files, {}\n", u.name, u.files, human(u.bytes)));
    }
    if e.allocated_bytes < e.bytes {
        s.push_str(&format!(
            "sparse files: {} of the data are holes, which the store keeps as holes\n",
            human_size(e.bytes - e.allocated_bytes)
        ));
    }
    s.push_str(&format!(
        "total: {} files, {} directories, {} links, {}\nleft out: {} items, {}\ncompression (sampled): {:.0}%\nexpected store size: {}\n",
        e.files,
        e.dirs,
        e.links,
        human(e.bytes),
        e.skipped,
        human(e.skipped_bytes),
        e.ratio * 100.0,
        human(e.store_bytes)
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::rules::{Family, Rules};
    use crate::migrate::select::select;
    use crate::migrate::testing::MemFs;
    use crate::progress::Silent;

    #[test]
    fn counts_and_a_compression_estimate() {
        let mut fs = MemFs::default();
        fs.file("/etc/passwd", b"alice:x:1000:1000::/home/alice:/bin/sh\n", 0, 0);
        fs.file("/home/alice/text", &b"all work and no play ".repeat(5000), 1000, 1000);
        fs.file("/home/alice/empty", b"", 1000, 1000);
        fs.file("/home/alice/.cache/x", &[7; 300], 1000, 1000);
        let sel = select(&mut fs, &Rules::builtin(Family::Linux), &Silent, &Cancel::new()).unwrap();
        let e = estimate(&mut fs, &sel, &Silent, &Cancel::new()).unwrap();
        assert_eq!((e.files, e.bytes, e.skipped, e.skipped_bytes), (2, 105_000, 1, 300));
        assert!(e.ratio < 0.05, "{}", e.ratio);
        assert!(e.store_bytes > FIXED_MARGIN && e.store_bytes < FIXED_MARGIN + 5_000, "{}", e.store_bytes);
        assert_eq!(e.users[0], UserTotal { name: "alice".into(), files: 2, bytes: 105_000, left_out: 1, left_out_bytes: 300 });
        assert!(text(&e).contains("expected store size"));
        assert_eq!(e.allocated_bytes, e.bytes);
        assert!(!text(&e).contains("sparse"));
    }

    #[test]
    fn sparse_files_count_with_the_data_they_store() {
        let mut fs = MemFs::default();
        fs.file("/etc/passwd", b"alice:x:1000:1000::/home/alice:/bin/sh\n", 0, 0);
        fs.file("/home/alice/text", &b"all work and no play ".repeat(5000), 1000, 1000);
        // 2 GiB, of which one block is stored: the head the estimate would sample is data here,
        // but a hole in general, so the file is not sampled.
        fs.sparse("/home/alice/vm.img", b"DATA", 2 << 30, 1000, 1000);
        let sel = select(&mut fs, &Rules::builtin(Family::Linux), &Silent, &Cancel::new()).unwrap();
        let e = estimate(&mut fs, &sel, &Silent, &Cancel::new()).unwrap();
        assert_eq!(e.bytes, 105_000 + (2 << 30));
        assert_eq!(e.allocated_bytes, 105_000 + 4096);
        assert!(e.store_bytes < FIXED_MARGIN + 50_000, "{} bytes for 4 KiB of stored data", e.store_bytes);
        assert!(text(&e).contains("sparse files: 2.0 GiB"), "{}", text(&e));
    }
}
