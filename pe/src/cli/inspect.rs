//! `inplace inspect`: the inventory of disk image files or devices.

use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Print the inventory as JSON (the same document the PE prints).
    #[arg(long)]
    json: bool,
    /// The OEM code page of FAT labels (437 or 850; the PE's `inplace.codepage=`).
    #[arg(long, default_value_t = 437)]
    codepage: u16,
    /// Disk image files or block devices; with none, every disk in /sys/block.
    paths: Vec<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    crate::codepage::set(args.codepage)?;
    let inventory = if args.paths.is_empty() {
        crate::inventory::scan_system(std::path::Path::new("/sys"), std::path::Path::new("/dev"))
    } else {
        crate::inventory::inspect_paths(&args.paths)
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&inventory)?);
    } else {
        print!("{}", crate::ui::plain::inventory_text(&inventory));
    }
    Ok(0)
}
