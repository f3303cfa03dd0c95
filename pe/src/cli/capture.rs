//! `inplace capture`: select the user's files on the old OS's partition with the rules and
//! copy them into the store, verified; or, with `--estimate`, only count them.

use std::path::PathBuf;

use crate::migrate::capture::{capture, CaptureOptions, CapturePlan};
use crate::migrate::job_info::JobInfo;
use crate::migrate::store::{CaptureName, Store};
use crate::migrate::{estimate, select, source};
use crate::progress::Cancel;
use crate::units::human;

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
    /// Which capture of the store to write: `capture` (the first, the default), `capture.2`, …
    /// (a store holds one capture per source partition).
    #[arg(long, default_value = "capture", value_parser = parse_capture)]
    capture: CaptureName,
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

fn parse_capture(s: &str) -> Result<CaptureName, String> {
    CaptureName::parse(s.trim_end_matches('/')).ok_or_else(|| format!("{s:?} is not a capture's name: capture, capture.2, capture.3, …"))
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let progress = super::front::printer();
    let cancel = Cancel::new();
    let mut source = source::open(&args.disk, args.partition, &progress)?;
    for w in &source.warnings {
        eprintln!("inplace: warning: partition {}: {w}", args.partition);
    }
    let preset = args.choice.preset()?;
    let rules = args.choice.rules(source.family(), preset.as_ref())?;
    let sel = select::select(source.reader.as_mut(), &rules, &progress, &cancel)?;
    if args.estimate {
        let e = estimate::estimate(source.reader.as_mut(), &sel, &progress, &cancel)?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&e)?);
        } else {
            print!("{}", estimate::text(&e));
        }
        return Ok(0);
    }
    let store_path = args.store.as_deref().expect("clap requires --store");
    let info = JobInfo {
        disk: args.disk.display().to_string(),
        partition: args.partition,
        fs: source.partition.fs.clone(),
        os: source.partition.os.clone(),
        family: rules.family.name().into(),
        rules: rules.to_toml(),
        preset: preset.as_ref().map(|p| p.name.clone()),
        restore: preset.map(|p| p.restore).unwrap_or_default(),
        warnings: source.warnings.clone(),
        // The captured users' accounts come with the selection.
        accounts: Vec::new(),
    };
    let plan = CapturePlan::new(sel, info);
    let opts = CaptureOptions { segment_limit: args.segment_size, abort_after_bytes: args.abort_after, ..Default::default() };
    let mut store = Store::open(store_path, true)?;
    store.select(args.capture);
    let summary = capture(source.reader.as_mut(), &plan, &mut store, &opts, &progress, &cancel)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!(
            "captured {} files ({}) and {} other entries into {} segments of {}{}, {}; {} items left out (listed in the store's manifest); read back and verified",
            summary.files,
            human(summary.bytes),
            summary.entries - summary.files,
            summary.segments,
            store.describe(),
            if args.capture == CaptureName::FIRST { String::new() } else { format!(" ({}/)", args.capture) },
            human(summary.stored_bytes),
            summary.skipped,
        );
        for u in &summary.unreadable {
            println!("  not captured: {}: {:?}", u.source, u.why);
        }
    }
    Ok(0)
}
