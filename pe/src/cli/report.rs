//! `inplace report send`: sends the report spools a job left (in the new OS,
//! `/var/lib/inplace/report/<job>/`), as `inplace-report.service` does on the first boot.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::report::envelope::Origin;
use crate::report::outbox::Outbox;
use crate::report::spool::{SpoolDir, NEW_OS_DIR};
use crate::report::Reporter;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// Send what the spools hold to their collectors; exits 1 while something is unsent.
    Send(SendArgs),
}

#[derive(clap::Args)]
pub struct SendArgs {
    /// The new OS's spools (/var/lib/inplace/report); the unit is disabled once all is sent.
    #[arg(long, conflicts_with = "dir")]
    first_boot: bool,
    /// A folder of spools, one folder per job.
    #[arg(long, required_unless_present = "first_boot")]
    dir: Option<PathBuf>,
    /// Seconds to keep trying before giving up for now.
    #[arg(long, default_value_t = 120)]
    wait: u64,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let Sub::Send(a) = args.command;
    let dir = a.dir.clone().unwrap_or_else(|| Path::new("/").join(NEW_OS_DIR));
    let mut jobs: Vec<PathBuf> = std::fs::read_dir(&dir).map(|it| it.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect()).unwrap_or_default();
    jobs.sort();
    let mut left = 0;
    for job in &jobs {
        let Some((n, unsent, config)) = SpoolDir(job).load() else {
            eprintln!("inplace: report: {} is not a report spool; skipped", job.display());
            continue;
        };
        if unsent.is_empty() {
            continue;
        }
        let interval = Duration::from_secs(config.interval_secs());
        let outbox = Outbox::resume(Origin::FirstBoot, n, unsent, interval);
        let note = Box::new(|m: &str| eprintln!("inplace: {m}"));
        let r = Reporter::resume(&config, outbox, Some(dir.clone()), note).map_err(|e| anyhow::anyhow!(super::render::error(&e)))?;
        let status = r.flush(Duration::from_secs(a.wait));
        println!("inplace: report {}: {} sent to {}, {} unsent", job.display(), status.sent, config.url, status.unsent);
        left += status.unsent;
    }
    if left > 0 {
        return Ok(1);
    }
    if a.first_boot {
        let _ = std::fs::remove_file(Path::new("/").join(crate::handoff::linux::REPORT_WANTS));
    }
    Ok(0)
}
