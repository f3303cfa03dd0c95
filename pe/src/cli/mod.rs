//! The command-line front end.

mod capture;
mod carve;
mod console_ui;
mod front;
mod image;
mod inspect;
mod job;
mod locate;
mod plan;
mod preset;
mod report;
pub mod render;
mod restore;
mod rollback;
mod rules;
mod store;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "inplace", version, about = "Re-image a PC in place while keeping its user's data")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Report disks, partitions, filesystems and installed OS (read only).
    Inspect(inspect::Args),
    /// Create, inspect, verify and lay down OS images.
    Image(image::Args),
    /// The PE's TUI (started by the PE's init on tty1).
    #[command(hide = true)]
    ConsoleUi(console_ui::Args),
    /// Show where the migration store would go, before and after (writes nothing).
    Plan(plan::Args),
    /// Make the store partition (FAT32, label INPLACE); writes only with --yes.
    Carve(carve::Args),
    /// Find a store by its locator, even without a partition table.
    Locate(locate::Args),
    /// Restore the partition table saved by a carve; writes only with --yes.
    Rollback(rollback::Args),
    /// Copy the user's files and settings from the old OS into the store (or --estimate).
    Capture(capture::Args),
    /// Check a store: manifest, segment checksums, every entry.
    Store(store::Args),
    /// Put a store's files and settings back onto the new OS.
    Restore(restore::Args),
    /// Show migration rules.
    Rules(rules::Args),
    /// Run the whole job a preset describes on a disk, up to the hand-off to the new OS.
    Run(job::RunArgs),
    /// Continue the unfinished job on a disk.
    Resume(job::ResumeArgs),
    /// Check a preset, and the plan it would run on a disk.
    Preset(preset::Args),
    /// Send the job reports a first boot keeps until its collector takes them.
    Report(report::Args),
}

/// Runs the CLI and returns the process exit code.
pub fn run() -> i32 {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect(args) => inspect::run(args),
        Command::Image(args) => image::run(args),
        Command::ConsoleUi(args) => console_ui::run(args),
        Command::Plan(args) => plan::run(args),
        Command::Carve(args) => carve::run(args),
        Command::Locate(args) => locate::run(args),
        Command::Rollback(args) => rollback::run(args),
        Command::Capture(args) => capture::run(args),
        Command::Store(args) => store::run(args),
        Command::Restore(args) => restore::run(args),
        Command::Rules(args) => rules::run(args),
        Command::Run(args) => job::run(args),
        Command::Resume(args) => job::resume(args),
        Command::Preset(args) => preset::run(args),
        Command::Report(args) => report::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            match e.downcast_ref::<crate::error::Error>() {
                Some(engine) => eprintln!("inplace: error: {}", render::error(engine)),
                None => eprintln!("inplace: error: {e:#}"),
            }
            1
        }
    }
}
