//! The command-line front end.

mod console_ui;
mod inspect;

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
    /// The PE's TUI (started by the PE's init on tty1).
    #[command(hide = true)]
    ConsoleUi(console_ui::Args),
}

/// Runs the CLI and returns the process exit code.
pub fn run() -> i32 {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect(args) => inspect::run(args),
        Command::ConsoleUi(args) => console_ui::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("inplace: error: {e:#}");
            1
        }
    }
}
