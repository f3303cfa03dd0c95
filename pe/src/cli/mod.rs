//! The command-line front end.

mod carve;
mod console_ui;
mod image;
mod inspect;
mod locate;
mod plan;
mod rollback;

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
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("inplace: error: {e:#}");
            1
        }
    }
}
