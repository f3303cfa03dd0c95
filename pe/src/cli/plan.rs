//! `inplace plan`: show where the migration store would go (writes nothing).

use std::path::{Path, PathBuf};

use crate::carve::layout::DiskState;
use crate::carve::model::{Plan, PlanError, Request};
use crate::carve::{plan, prepare, render};

#[derive(clap::Args, Clone)]
pub struct Args {
    /// The disk: an image file or a block device.
    #[arg(long)]
    pub disk: PathBuf,
    /// Size of the store's FAT32 volume: bytes, or with K, M, G, T (powers of 1024).
    #[arg(long, value_parser = parse_size, required_unless_present = "store_for")]
    pub store_size: Option<u64>,
    /// Size the store from `inplace capture --estimate` of this partition (built-in rules for
    /// the OS found on it) instead of --store-size.
    #[arg(long, conflicts_with = "store_size")]
    pub store_for: Option<u32>,
    /// Partitions the new image replaces (they may give up the free space at their end).
    #[arg(long, value_delimiter = ',')]
    pub replace: Vec<u32>,
    /// Logical sector size of an image file (default: detected from the GPT, else 512).
    #[arg(long)]
    pub sector_size: Option<u32>,
    /// Rebuild a damaged primary (or backup) GPT from the good copy when writing.
    #[arg(long)]
    pub repair_gpt: bool,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
}

pub use crate::units::parse_size;

/// Reads the disk and plans; the error says what to do.
pub fn make_plan(args: &Args) -> anyhow::Result<(DiskState, Result<Plan, PlanError>)> {
    let opts = prepare::ReadOptions { sector_size: args.sector_size, repair_gpt: args.repair_gpt };
    let state = prepare::read(&args.disk, opts)?;
    let store_bytes = match (args.store_size, args.store_for) {
        (Some(bytes), _) => bytes,
        (None, Some(n)) => {
            let progress = super::front::printer();
            crate::migrate::estimate::store_size_for(&args.disk, n, &progress, &crate::progress::Cancel::new())?
        }
        (None, None) => anyhow::bail!("give --store-size or --store-for"),
    };
    let req = Request { store_bytes, replace: args.replace.clone() };
    let result = plan::plan(&state.layout, &state.tails, &req);
    Ok((state, result))
}

pub fn print_plan(args: &Args, state: &DiskState, result: &Result<Plan, PlanError>) -> anyhow::Result<()> {
    let name = args.disk.display().to_string();
    if args.json {
        let v = serde_json::json!({
            "disk": name,
            "plan": result.as_ref().ok(),
            "error": result.as_ref().err().map(|e| e.to_string()),
            "hints": result.as_ref().err().map(|e| e.hints()),
            "refusal": match result { Err(PlanError::Refused(r)) => Some(r), _ => None },
            "free_tails": state.tails,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else if let Ok(p) = result {
        print!("{}", render::plan_text(&name, p));
    }
    for (n, why) in &state.no_tail {
        if args.replace.contains(n) {
            eprintln!("inplace: partition {n}: free space unknown: {why}");
        }
    }
    Ok(())
}

/// Why no plan was made, what the user can do (each once, in the CLI's words), and that
/// nothing was written.
pub fn refusal_text(disk: &Path, e: PlanError) -> String {
    let e = e.into_error(&disk.display().to_string());
    let mut out = format!("inplace: {}", e.problem);
    if !e.hints.is_empty() {
        out.push_str("\nwhat you can do:");
        for h in &e.hints {
            out.push_str(&format!("\n  - {}", super::render::hint(h)));
        }
    }
    out.push_str("\nnothing was written");
    out
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let (state, result) = make_plan(&args)?;
    print_plan(&args, &state, &result)?;
    match result {
        Ok(_) => Ok(0),
        Err(e) => {
            eprintln!("{}", refusal_text(&args.disk, e));
            Ok(2)
        }
    }
}
