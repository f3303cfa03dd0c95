//! `inplace console-ui`: the TUI, as PID 1 starts it on the PE's screen.

use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value = "/dev/tty1")]
    tty: PathBuf,
    #[arg(long, default_value = crate::boot::init::INVENTORY_PATH)]
    inventory: PathBuf,
    /// Shown in the title bar (firmware, preset).
    #[arg(long, default_value = "")]
    status: String,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    crate::ui::tui::run(&args.tty, &args.inventory, &args.status)
}
