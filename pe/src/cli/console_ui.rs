//! `inplace console-ui`: the TUI, as PID 1 starts it on the PE's screen, over the session
//! directory where the engine serves the job (`ui::session`).

use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value = "/dev/tty1")]
    tty: PathBuf,
    /// The session directory: context.json (the inventory, the preset, the title bar), the
    /// request, the events, the end.
    #[arg(long, default_value = crate::ui::session::DIR)]
    session: PathBuf,
    /// Where the screens are also said in plain lines (e.g. /dev/ttyS0; repeat for several).
    #[arg(long)]
    echo: Vec<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    crate::ui::tui::run(&args.tty, &args.session, &args.echo)
}
