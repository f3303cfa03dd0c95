//! The TUI on the PE's screen (tty1). It runs as a child of PID 1 over a session
//! ([`crate::ui::session`]): the engine runs the job in PID 1; the TUI chooses, shows the plan,
//! asks for the confirmation, and follows the job's events. A TUI that crashes and starts again
//! re-attaches. Keys end the PE through the exit code (power off, reboot, shell).
//!
//! - [`app`]: the state machine (screens, keys, the engine's news);
//! - [`job`]: the job's progress folded from events;
//! - one file per screen: [`home`], [`choose`], [`plan`], [`confirm`], [`progress`], [`result`];
//! - [`widgets`], [`text`]: pieces the screens share; [`keys`]: where keys come from.

pub mod app;
pub mod choose;
pub mod confirm;
pub mod home;
pub mod job;
pub mod keys;
pub mod mirror;
pub mod plan;
pub mod progress;
pub mod result;
pub mod text;
pub mod widgets;

#[cfg(test)]
mod snapshots;

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use ratatui::backend::{Backend, CrosstermBackend};
use ratatui::layout::Rect;
use ratatui::{Frame, Terminal, TerminalOptions, Viewport};

pub use app::{App, Screen, EXIT_POWER_OFF, EXIT_REBOOT, EXIT_SHELL};
pub use keys::KeySource;

use crate::ui::session::Session;

/// How long the loop waits for a key before looking at the engine again.
pub const TICK: Duration = Duration::from_millis(200);

/// Draws the screen `app` is on.
pub fn render(f: &mut Frame, app: &App) {
    match app.screen {
        Screen::Home => home::render(f, app),
        Screen::Choose => choose::render(f, app),
        Screen::Plan => plan::render(f, app),
        Screen::Confirm => confirm::render(f, app),
        Screen::Progress => progress::render(f, app),
        Screen::Result => result::render(f, app),
    }
}

/// The event loop: draw, read a key (or time out), look at the engine; until a key asks to end
/// the PE. Returns that exit code.
pub fn run_loop<B: Backend>(terminal: &mut Terminal<B>, keys: &mut dyn KeySource, app: &mut App) -> anyhow::Result<i32>
where
    B::Error: Send + Sync + 'static,
{
    run_loop_with(terminal, keys, app, &mut |_| {})
}

/// [`run_loop`], calling `drawn` after each frame (the serial mirror).
pub fn run_loop_with<B: Backend>(
    terminal: &mut Terminal<B>,
    keys: &mut dyn KeySource,
    app: &mut App,
    drawn: &mut dyn FnMut(&App),
) -> anyhow::Result<i32>
where
    B::Error: Send + Sync + 'static,
{
    loop {
        app.tick();
        terminal.draw(|f| render(f, app))?;
        drawn(app);
        if let Some(code) = app.exit {
            return Ok(code);
        }
        if let Some(k) = keys.next(app, TICK)? {
            app.key(k);
        }
    }
}

/// Runs the TUI on `tty` over the session in `session_dir`, its screens also said in plain
/// lines on `echo` (the other consoles); returns the exit code a key chose.
pub fn run(tty: &Path, session_dir: &Path, echo: &[std::path::PathBuf]) -> anyhow::Result<i32> {
    attach_tty(tty).with_context(|| format!("taking {} as the controlling terminal", tty.display()))?;
    let session = Session::open(session_dir).with_context(|| format!("opening the session {}", session_dir.display()))?;
    let mut app = App::attach(session).context("reading the session's context")?;
    ratatui::crossterm::terminal::enable_raw_mode()?;
    // A serial line reports 0x0; a console of unknown size gets 80x25.
    let (w, h) = match ratatui::crossterm::terminal::size() {
        Ok((w, h)) if w > 0 && h > 0 => (w, h),
        _ => (80, 25),
    };
    let options = TerminalOptions { viewport: Viewport::Fixed(Rect::new(0, 0, w, h)) };
    // A panic leaves the console usable for what PID 1 shows next.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = ratatui::crossterm::terminal::disable_raw_mode();
        default_hook(info);
    }));
    let mut terminal = Terminal::with_options(CrosstermBackend::new(std::io::stdout()), options)?;
    terminal.clear()?;
    let mut mirror = mirror::Mirror::open(echo);
    let code = run_loop_with(&mut terminal, &mut keys::Console, &mut app, &mut |a| mirror.show(a));
    let _ = ratatui::crossterm::terminal::disable_raw_mode();
    code
}

/// New session with `tty` as controlling terminal and as stdin/stdout/stderr.
fn attach_tty(tty: &Path) -> anyhow::Result<()> {
    let _ = rustix::process::setsid();
    let fd = rustix::fs::open(tty, rustix::fs::OFlags::RDWR, rustix::fs::Mode::empty())?;
    rustix::process::ioctl_tiocsctty(&fd)?;
    rustix::stdio::dup2_stdin(&fd)?;
    rustix::stdio::dup2_stdout(&fd)?;
    rustix::stdio::dup2_stderr(&fd)?;
    Ok(())
}
