//! `inplace capture`: select the user's files on the old OS's partition with the rules and
//! copy them into the store, verified; or, with `--estimate`, only count them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail};

use crate::disk::device::Device;
use crate::fs::range::RangeReader;
use crate::fs::FsReader;
use crate::inventory::{Partition, Severity};
use crate::carve::model::human;
use crate::image::progress::{Event, Progress as _};
use crate::migrate::capture::{capture, CaptureOptions, CapturePlan, Phase, Progress};
use crate::migrate::store::Store;
use crate::migrate::{estimate, select};
use crate::ui::plain::PlainProgress;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// The disk (image file or device) holding the old OS.
    #[arg(long)]
    disk: PathBuf,
    /// Its partition number, as the kernel numbers it.
    #[arg(long)]
    partition: u32,
    /// Which rules, and the preset.
    #[command(flatten)]
    choice: super::rules::Choice,
    /// The store: a FAT32 volume (partition or image file) or a whole disk with a carved store.
    #[arg(long, required_unless_present = "estimate")]
    store: Option<PathBuf>,
    /// Only count files and bytes and print the expected store size.
    #[arg(long)]
    estimate: bool,
    #[arg(long)]
    json: bool,
    /// Largest archive segment in bytes.
    #[arg(long, hide = true, default_value_t = 1 << 30)]
    segment_size: u64,
    /// Simulates a power cut: abort after this many bytes were written to the store.
    #[arg(long, hide = true)]
    abort_after: Option<u64>,
}

/// The old OS's filesystem, opened read-only, and what the inventory said of it.
pub struct Source {
    pub reader: Box<dyn FsReader>,
    pub partition: Partition,
    pub warnings: Vec<String>,
}

/// Opens partition `number` of `disk` with the reader for its filesystem. Refuses when the
/// inventory found an error on it (BitLocker, damage).
pub fn open_source(disk: &Path, number: u32) -> anyhow::Result<Source> {
    let inventory = crate::inventory::inspect_paths(&[disk.to_path_buf()]);
    if let Some(f) = inventory.findings.first() {
        bail!("{}: {}", f.subject, f.message);
    }
    let d = inventory.disks.first().ok_or_else(|| anyhow!("{}: not readable as a disk", disk.display()))?;
    let partition = d.partitions.iter().find(|p| p.number == number).cloned().ok_or_else(|| {
        let have: Vec<String> = d.partitions.iter().map(|p| p.number.to_string()).collect();
        anyhow!("{}: there is no partition {number} (partitions: {})", disk.display(), have.join(", "))
    })?;
    let subject = format!("{}/partition {number}", d.name);
    let mut warnings = Vec::new();
    for f in d.findings.iter().filter(|f| f.subject == subject) {
        match f.severity {
            Severity::Error => bail!("{subject}: {}", f.message),
            Severity::Warning => warnings.push(f.message.clone()),
        }
    }
    let fs = partition.fs.clone().ok_or_else(|| anyhow!("{subject}: no filesystem recognised"))?;
    let device = Arc::new(Device::open(disk)?);
    let range = RangeReader::new(device, partition.start_bytes, partition.size_bytes);
    let reader = crate::fs::open(&fs, range)
        .ok_or_else(|| anyhow!("{subject}: inplace cannot read {fs} filesystems, so nothing on it can be captured"))?
        .map_err(|e| anyhow!("{subject}: {e}"))?;
    Ok(Source { reader, partition, warnings })
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let mut source = open_source(&args.disk, args.partition)?;
    for w in &source.warnings {
        eprintln!("inplace: warning: partition {}: {w}", args.partition);
    }
    let detected = source.partition.os.as_ref().map(|o| o.family.clone());
    let c = &args.choice;
    let rules = super::rules::effective(c.rules.as_deref(), detected.as_deref(), c.preset.as_deref(), &c.users)?;
    let sel = select::select(source.reader.as_mut(), &rules)?;
    if args.estimate {
        let e = estimate::estimate(source.reader.as_mut(), &sel);
        if args.json {
            println!("{}", serde_json::to_string_pretty(&e)?);
        } else {
            print!("{}", estimate::text(&e));
        }
        return Ok(0);
    }
    let store = args.store.as_deref().expect("clap requires --store");
    let preset = args.choice.preset.as_deref().map(super::rules::read_preset).transpose()?;
    let info = serde_json::json!({
        "disk": args.disk.display().to_string(),
        "partition": args.partition,
        "fs": source.partition.fs,
        "os": source.partition.os,
        "family": rules.family.name(),
        "rules": rules.to_toml(),
        "preset": preset.as_ref().map(|p| p.name.clone()),
        "restore": preset.as_ref().map(|p| p.restore.clone()).unwrap_or_default(),
        "warnings": source.warnings,
    });
    store_capture(source.reader.as_mut(), sel, info, store, &args)
}

fn store_capture(
    fs: &mut dyn FsReader,
    sel: select::Selection,
    info: serde_json::Value,
    store_path: &Path,
    args: &Args,
) -> anyhow::Result<i32> {
    let mut log = EventLog::default();
    log.info("select", &format!("{} entries selected, {} items left out", sel.entries.len(), sel.skipped.len()));
    let plan = CapturePlan {
        users: sel.users.iter().map(|u| u.name.clone()).collect(),
        entries: sel.entries,
        skipped: sel.skipped,
        info,
    };
    let opts = CaptureOptions { segment_limit: args.segment_size, abort_after_bytes: args.abort_after, ..Default::default() };
    let mut store = Store::open(store_path, true)?;
    let sink = PlainProgress::new();
    let mut phase = None;
    let mut started = Instant::now();
    let mut on_progress = |p: &Progress| {
        if phase != Some(p.phase) {
            phase = Some(p.phase);
            started = Instant::now();
            let name = match p.phase {
                Phase::Resume => "checking the segments of the interrupted capture",
                Phase::Capture => "capturing",
                Phase::Verify => "reading the store back",
            };
            sink.event(Event::Phase { name: name.into(), total: p.bytes_total });
        }
        let secs = started.elapsed().as_secs_f64().max(1e-3);
        let rate = p.bytes_done as f64 / secs;
        let eta_secs = if rate > 0.0 { p.bytes_total.saturating_sub(p.bytes_done) as f64 / rate } else { 0.0 };
        sink.event(Event::Bytes { done: p.bytes_done, total: p.bytes_total, rate, eta_secs });
    };
    let result = capture(fs, &plan, &mut store, &opts, &mut on_progress);
    let summary = match result {
        Ok(s) => s,
        Err(e) => {
            log.error("capture", &e.to_string());
            log.keep(&store);
            return Err(e.into());
        }
    };
    log.info(
        "capture",
        &format!(
            "{} entries, {} files, {} bytes in {} segments ({} stored); {} items left out; verified",
            summary.entries, summary.files, summary.bytes, summary.segments, summary.stored_bytes, summary.skipped
        ),
    );
    log.keep(&store);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!(
            "captured {} files ({}) and {} other entries into {} segments of {}, {}; {} items left out (listed in the store's manifest); read back and verified",
            summary.files,
            human(summary.bytes),
            summary.entries - summary.files,
            summary.segments,
            store.describe(),
            human(summary.stored_bytes),
            summary.skipped,
        );
        for u in &summary.unreadable {
            println!("  not captured: {}: {:?}", u.source, u.why);
        }
    }
    Ok(0)
}

/// Structured events of the capture, kept in the store as `journal/events.jsonl`.
#[derive(Default)]
struct EventLog {
    lines: Vec<String>,
}

impl EventLog {
    fn push(&mut self, level: &str, phase: &str, message: &str) {
        let time = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        let v = serde_json::json!({ "time": time, "phase": phase, "level": level, "message": message });
        self.lines.push(v.to_string());
    }
    fn info(&mut self, phase: &str, message: &str) {
        self.push("info", phase, message);
    }
    fn error(&mut self, phase: &str, message: &str) {
        self.push("error", phase, message);
    }
    /// Appends the events to the store's log; a store that cannot take them is not an error
    /// of its own (the capture's result is what counts).
    fn keep(&self, store: &Store) {
        let mut text = store.read_file(EVENTS, 16 << 20).ok().flatten().unwrap_or_default();
        for l in &self.lines {
            text.extend_from_slice(l.as_bytes());
            text.push(b'\n');
        }
        if let Err(e) = store.write_file(EVENTS, &text) {
            eprintln!("inplace: warning: the capture's events could not be kept in the store: {e}");
        }
    }
}

const EVENTS: &str = "journal/events.jsonl";
