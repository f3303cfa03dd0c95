//! The CLI as a front end of long engine work: the work runs on its own thread and sends its
//! events over a channel; this thread shows them (bars on a terminal, plain lines on any other
//! stderr, or JSON lines on stdout with `--json`) and turns Ctrl-C into a cancel.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use std::io::IsTerminal;

use crate::progress::{Cancel, Channel, Event, JsonLines, Sink};
use crate::ui::bars::Bars;
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
    let shown: Box<dyn Sink> = if json {
        Box::new(JsonLines::new(std::io::stdout()))
    } else if std::io::stderr().is_terminal() {
        Box::new(Bars::stderr(super::render::error))
    } else {
        Box::new(Prefixed(PlainProgress::with_words(super::render::error)))
    };
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
                Ok(e) => shown.event(&e),
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

/// Plain lines on stderr, each after `inplace: `.
struct Prefixed(PlainProgress);

impl Sink for Prefixed {
    fn event(&self, e: &Event) {
        if let Some(l) = self.0.line(e) {
            eprintln!("inplace: {}", l.trim_start());
        }
    }
}

/// The CLI's printer for work it runs on its own thread: bars on a terminal, plain lines on
/// any other stderr.
pub fn printer() -> Box<dyn Sink> {
    if std::io::stderr().is_terminal() {
        Box::new(Bars::stderr(super::render::error))
    } else {
        Box::new(PlainProgress::with_words(super::render::error))
    }
}
