//! `inplace locate`: find a store by its locator, without trusting the partition table.

use std::path::PathBuf;

use crate::locator::TableKind;
use crate::step::Step;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    pub disk: PathBuf,
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    match crate::locator::find(&args.disk, Step::Inspect) {
        Ok(f) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&f)?);
            } else {
                let l = &f.locator;
                println!(
                    "store: partition {} at bytes {}–{} ({}), job {} {:?}, FAT32 volume {} bytes, saved {} table of {} bytes",
                    l.store_number,
                    l.store_start,
                    l.store_start + l.store_len,
                    crate::units::human(l.store_len),
                    l.job_id_hex(),
                    l.job_name,
                    l.fs_len,
                    match l.table {
                        TableKind::Gpt => "GPT",
                        TableKind::Mbr => "MBR",
                    },
                    l.snapshot_len
                );
                for (at, why) in &f.damaged {
                    println!("warning: the locator copy at byte {at} is unusable: {why}");
                }
            }
            Ok(0)
        }
        Err(e) => {
            eprintln!("inplace: {}", super::render::error(&e));
            Ok(2)
        }
    }
}
