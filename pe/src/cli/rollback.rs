//! `inplace rollback`: put back the partition table a carve saved in its store.

use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    pub disk: PathBuf,
    /// Write to the disk. Without it nothing is written.
    #[arg(long)]
    pub yes: bool,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let name = args.disk.display().to_string();
    let disk = super::plan::open_read(&args.disk)?;
    let found = match crate::carve::locate::locate(disk.as_ref()) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("inplace: {name}: {e}; nothing was written");
            return Ok(2);
        }
    };
    let patch = match crate::carve::rollback::restore_patch(disk.as_ref(), &found) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("inplace: {name}: {e}");
            return Ok(2);
        }
    };
    for (at, len) in patch.ranges() {
        println!("restore {len} bytes at byte {at}");
    }
    if !args.yes {
        eprintln!("inplace: nothing was written; run again with --yes to restore the saved table");
        return Ok(0);
    }
    let (rw, _) = crate::carve::apply::open_rw(&args.disk).map_err(anyhow::Error::msg)?;
    patch.write_to(&rw.file).map_err(|e| anyhow::anyhow!("{name}: restoring the table: {e}"))?;
    eprintln!("inplace: restored the partition table saved by job {}", found.locator.job_id_hex());
    Ok(0)
}
