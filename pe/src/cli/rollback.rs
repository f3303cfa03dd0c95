//! `inplace rollback`: put back the partition table a carve saved in its store.

use std::path::PathBuf;

use crate::locator::rollback;
use crate::progress::Cancel;
use crate::ui::plain::PlainProgress;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    pub disk: PathBuf,
    /// Write to the disk. Without it nothing is written.
    #[arg(long)]
    pub yes: bool,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let prepared = match rollback::prepare(&args.disk) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("inplace: {}", super::render::error(&e));
            return Ok(2);
        }
    };
    for (at, len) in prepared.patch.ranges() {
        println!("restore {len} bytes at byte {at}");
    }
    if !args.yes {
        eprintln!("inplace: nothing was written; run again with --yes to restore the saved table");
        return Ok(0);
    }
    rollback::roll_back(&prepared, &PlainProgress::new(), &Cancel::new())?;
    eprintln!("inplace: restored the partition table saved by job {}", prepared.found.locator.job_id_hex());
    Ok(0)
}
