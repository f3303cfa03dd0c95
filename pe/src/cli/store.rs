//! `inplace store`: look at a migration store's capture.

use std::path::PathBuf;

use super::render;
use crate::error::Error;
use crate::migrate::store::{self, CaptureName, Store};
use crate::progress::Cancel;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Subcommand)]
pub enum Command {
    /// Read every capture of the store back: manifest SHA-256, every segment's SHA-256, every
    /// record's and every entry's CRC-32 and size. Exit 0 when all are good, 1 naming what is
    /// damaged.
    Verify {
        /// The store: a FAT32 volume (image file or partition), or a whole disk holding one.
        #[arg(long)]
        store: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    match args.command {
        Command::Verify { store, json } => verify(&store, json),
    }
}

fn verify(path: &std::path::Path, json: bool) -> anyhow::Result<i32> {
    let progress = super::front::printer();
    let result = Store::open(path, false).and_then(|mut s| {
        let names = s.captures().map_err(|e| e.error(crate::step::Step::Verify))?;
        let mut reports = Vec::new();
        // A store without a capture is said by verifying the first.
        for name in if names.is_empty() { vec![CaptureName::FIRST] } else { names } {
            s.select(name);
            reports.push((name, store::verify(&s, &progress, &Cancel::new())?));
        }
        Ok((s, reports))
    });
    match result {
        Ok((s, reports)) => {
            if json {
                let captures: Vec<_> = reports.iter().map(|(name, r)| serde_json::json!({ "capture": name, "report": r })).collect();
                let first = &reports[0].1;
                println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "ok": true, "report": first, "captures": captures }))?);
            } else {
                for (name, r) in &reports {
                    let which = if reports.len() > 1 { format!(", {name}/") } else { String::new() };
                    println!(
                        "store {}{which}: good: {} entries ({} files, {} bytes), {} segments ({} bytes), {} skipped",
                        s.describe(),
                        r.entries,
                        r.files,
                        r.bytes,
                        r.segments,
                        r.stored_bytes,
                        r.skipped
                    );
                }
            }
            Ok(0)
        }
        Err(e) => {
            report_error(json, &e);
            Ok(1)
        }
    }
}

fn report_error(json: bool, e: &Error) {
    let text = render::error(e);
    if json {
        println!("{}", serde_json::json!({ "ok": false, "error": text, "failure": e }));
    } else {
        eprintln!("inplace: {text}");
    }
}
