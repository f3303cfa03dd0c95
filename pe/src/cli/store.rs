//! `inplace store`: look at a migration store's capture.

use std::path::PathBuf;

use super::render;
use crate::error::Error;
use crate::migrate::store::{self, Store};
use crate::progress::Cancel;
use crate::ui::plain::PlainProgress;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Subcommand)]
pub enum Command {
    /// Read the whole capture back: manifest SHA-256, every segment's SHA-256, every record's
    /// and every entry's CRC-32 and size. Exit 0 when good, 1 naming what is damaged.
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
    let progress = PlainProgress::new();
    let result = Store::open(path, false).and_then(|s| store::verify(&s, &progress, &Cancel::new()).map(|r| (s, r)));
    match result {
        Ok((s, r)) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "ok": true, "report": r }))?);
            } else {
                println!(
                    "store {}: good: {} entries ({} files, {} bytes), {} segments ({} bytes), {} skipped",
                    s.describe(),
                    r.entries,
                    r.files,
                    r.bytes,
                    r.segments,
                    r.stored_bytes,
                    r.skipped
                );
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
