//! `inplace rollback`: put the disk back as it was before a job (or a bare carve): the saved
//! partition table, and for a job, the store's area cleared.

use std::path::PathBuf;

use super::front;
use crate::locator::rollback;
use crate::progress::Cancel;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    pub disk: PathBuf,
    /// Write to the disk. Without it nothing is written.
    #[arg(long)]
    pub yes: bool,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    if let Some(found) = crate::job::rollback::find_job(&args.disk)? {
        let j = &found.journal;
        println!("job {} ({:?}) at state {}: roll back to the disk as it was before the job", j.job_id, j.name, j.state);
        if !args.yes {
            eprintln!("inplace: nothing was written; run again with --yes to roll the job back");
            return Ok(0);
        }
        let j = front::run(false, |sink, cancel| crate::job::rollback::rollback(&args.disk, sink, cancel))?;
        eprintln!("inplace: job {} rolled back: the old OS's partitions and table are as before the job", j.job_id);
        return Ok(0);
    }
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
    rollback::roll_back(&prepared, super::front::printer().as_ref(), &Cancel::new())?;
    eprintln!("inplace: restored the partition table saved by job {}", prepared.found.locator.job_id_hex());
    Ok(0)
}
