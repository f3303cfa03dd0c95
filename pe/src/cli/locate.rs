//! `inplace locate`: find a store by its locator, without trusting the partition table.

use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    pub disk: PathBuf,
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let disk = super::plan::open_read(&args.disk)?;
    match crate::carve::locate::locate(disk.as_ref()) {
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
                    crate::carve::model::human(l.store_len),
                    l.job_id_hex(),
                    l.job_name,
                    l.fs_len,
                    match l.table {
                        crate::carve::locator::TableKind::Gpt => "GPT",
                        crate::carve::locator::TableKind::Mbr => "MBR",
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
            eprintln!("inplace: {}: {e}", args.disk.display());
            Ok(2)
        }
    }
}
