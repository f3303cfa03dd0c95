//! `inplace preset check`: is a preset valid, and with `--disk`, the plan it would run.

use std::path::PathBuf;

use super::{front, job};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// Check a preset; with --disk, also print the plan the job would run on that disk.
    Check(CheckArgs),
}

#[derive(clap::Args)]
pub struct CheckArgs {
    /// The preset file.
    pub file: PathBuf,
    /// A disk or disk image to plan against (repeat for several; the preset chooses).
    #[arg(long)]
    pub disk: Vec<PathBuf>,
    #[command(flatten)]
    pub common: job::Common,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let Sub::Check(a) = args.command;
    let preset = job::read_preset(&a.file)?;
    if a.disk.is_empty() {
        println!("preset {}: {:?} is valid", a.file.display(), preset.name);
        return Ok(0);
    }
    let env = job::host_env(&a.disk, Some(&a.file), &a.common);
    let planned = front::run(false, |sink, cancel| crate::job::run::dry_run(&preset, &env, sink, cancel))?;
    for l in &planned.lines {
        println!("{l}");
    }
    Ok(0)
}
