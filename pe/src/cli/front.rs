//! The CLI as a front end of long engine work: the work runs on its own thread and sends its
//! events over a channel; this thread prints them (plain lines on stderr, or JSON lines on
//! stdout with `--json`) and turns Ctrl-C into a cancel.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use crate::progress::{Cancel, Channel, Event, JsonLines, Sink};
use crate::ui::plain::PlainProgress;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: nix::libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

fn catch_interrupt() {
    let action = nix::sys::signal::SigAction::new(
        nix::sys::signal::SigHandler::Handler(on_interrupt),
        nix::sys::signal::SaFlags::empty(),
        nix::sys::signal::SigSet::empty(),
    );
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    let _ = unsafe { nix::sys::signal::sigaction(nix::sys::signal::Signal::SIGINT, &action) };
}

/// Runs `work` on a thread, showing its events as they come; returns what it returns.
pub fn run<T: Send>(json: bool, work: impl FnOnce(&dyn Sink, &Cancel) -> T + Send) -> T {
    catch_interrupt();
    let (tx, rx) = mpsc::channel::<Event>();
    let cancel = Cancel::new();
    let plain = PlainProgress::with_words(super::render::error);
    let lines = JsonLines::new(std::io::stdout());
    std::thread::scope(|s| {
        let worker = {
            let cancel = cancel.clone();
            s.spawn(move || {
                let sink = Channel::new(tx);
                work(&sink, &cancel)
            })
        };
        let mut told = false;
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(e) => show(&e, json, &plain, &lines),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if INTERRUPTED.load(Ordering::SeqCst) && !told {
                told = true;
                eprintln!("inplace: stopping at the next safe point (interrupted)");
                cancel.cancel();
            }
        }
        worker.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

fn show(e: &Event, json: bool, plain: &PlainProgress, lines: &JsonLines<std::io::Stdout>) {
    if json {
        lines.event(e);
    } else if let Some(l) = plain.line(e) {
        eprintln!("inplace: {}", l.trim_start());
    }
}
