//! Progress on a terminal: one `indicatif` bar for the phase at hand, drawn from the engine's
//! own figures (bytes, rate, time left; the engine's `Meter` is the only place they are
//! computed), with steps, logs and warnings printed above it as plain lines.

use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::plain::duration;
use crate::progress::{Event, Sink};
use super::map::human_size as human;

/// The bar and the lines above it.
pub struct Bars {
    multi: MultiProgress,
    bar: Mutex<Option<ProgressBar>>,
    words: fn(&crate::error::Error) -> String,
}

fn bytes_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix:>12} [{bar:32}] {msg}").unwrap_or_else(|_| ProgressStyle::default_bar()).progress_chars("=> ")
}

fn count_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix:>12} {spinner} {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner())
}

/// `12.0 MiB of 40.0 MiB, 3.2 MiB/s, 9 s left`.
pub fn bytes_message(done: u64, total: u64, rate: f64, eta_secs: Option<f64>) -> String {
    let mut m = format!("{} of {}", human(done), human(total));
    if rate > 0.0 {
        m.push_str(&format!(", {:.1} MiB/s", rate / 1048576.0));
    }
    if let Some(s) = eta_secs {
        m.push_str(&format!(", {} left", duration(s)));
    }
    m
}

impl Bars {
    /// Bars on stderr, errors in the front end's words.
    pub fn stderr(words: fn(&crate::error::Error) -> String) -> Bars {
        Bars::with_target(ProgressDrawTarget::stderr, words)
    }

    /// Bars drawn where `target` says (tests draw into memory).
    pub fn with_target(target: fn() -> ProgressDrawTarget, words: fn(&crate::error::Error) -> String) -> Bars {
        Bars { multi: MultiProgress::with_draw_target(target()), bar: Mutex::new(None), words }
    }

    fn line(&self, _bar: &Option<ProgressBar>, text: &str) {
        let _ = self.multi.println(text);
    }

    fn new_bar(&self, slot: &mut Option<ProgressBar>, name: &str, total: Option<u64>) -> ProgressBar {
        if let Some(old) = slot.take() {
            old.finish_and_clear();
        }
        let bar = self.multi.add(ProgressBar::with_draw_target(total, ProgressDrawTarget::hidden()));
        bar.set_style(if total.is_some() { bytes_style() } else { count_style() });
        bar.set_prefix(name.to_string());
        *slot = Some(bar.clone());
        bar
    }
}

impl Sink for Bars {
    fn event(&self, e: &Event) {
        let Ok(mut slot) = self.bar.lock() else { return };
        match e {
            Event::Step { step } => {
                if let Some(old) = slot.take() {
                    old.finish_and_clear();
                }
                self.line(&slot, &format!("== {step}"));
            }
            Event::Phase { name, total } => {
                let bar = self.new_bar(&mut slot, name, (*total > 0).then_some(*total));
                if *total > 0 {
                    bar.set_message(bytes_message(0, *total, 0.0, None));
                }
            }
            Event::Bytes { done, total, rate, eta_secs } => {
                let bar = match slot.as_ref() {
                    Some(b) if b.length().is_some() => b.clone(),
                    _ => self.new_bar(&mut slot, "", Some(*total)),
                };
                bar.set_length(*total);
                bar.set_position(*done);
                bar.set_message(bytes_message(*done, *total, *rate, *eta_secs));
            }
            Event::Entries { done, total, current } => {
                let bar = match slot.as_ref() {
                    Some(b) => b.clone(),
                    None => self.new_bar(&mut slot, "", None),
                };
                let of = if *total > 0 { format!(" of {total}") } else { String::new() };
                bar.set_message(format!("{done}{of} entries {current}"));
                bar.tick();
            }
            Event::Log { message } => self.line(&slot, message),
            // The engine logs a line with the same figures.
            Event::Resized { .. } | Event::Job { .. } | Event::Done { .. } => {}
            Event::Warning { message } => self.line(&slot, &format!("warning: {message}")),
            Event::StepDone { step, secs, .. } => {
                if let Some(old) = slot.take() {
                    old.finish_and_clear();
                }
                self.line(&slot, &format!("== {step} done in {}", duration(*secs)));
            }
            Event::Failed { error } => {
                if let Some(old) = slot.take() {
                    old.abandon();
                }
                self.line(&slot, &format!("{} failed: {}", error.step, (self.words)(error)));
            }
        }
    }
}

impl Drop for Bars {
    fn drop(&mut self) {
        if let Some(b) = self.bar.get_mut().ok().and_then(Option::take) {
            b.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::step::Step;
    use indicatif::{InMemoryTerm, TermLike};
    use std::sync::OnceLock;

    static TERM: OnceLock<InMemoryTerm> = OnceLock::new();

    fn term() -> InMemoryTerm {
        TERM.get_or_init(|| InMemoryTerm::new(12, 100)).clone()
    }

    fn target() -> ProgressDrawTarget {
        ProgressDrawTarget::term_like(Box::new(term()) as Box<dyn TermLike>)
    }

    #[test]
    fn the_bar_shows_the_engines_rate_and_time_left_under_the_lines() {
        let bars = Bars::with_target(target, crate::ui::words::error);
        let mib = 1u64 << 20;
        bars.event(&Event::Step { step: Step::Capture });
        bars.event(&Event::log("capturing alice and bob"));
        bars.event(&Event::Phase { name: "capture".into(), total: 40 * mib });
        // The engine says 2 MiB/s and 14 s left: the bar shows those, not its own guess.
        bars.event(&Event::Bytes { done: 12 * mib, total: 40 * mib, rate: 2.0 * mib as f64, eta_secs: Some(14.0) });
        bars.event(&Event::warning("a file changed while it was read"));
        let screen = term().contents();
        let lines: Vec<&str> = screen.lines().collect();
        assert_eq!(lines[0], "== capture", "{screen}");
        assert_eq!(lines[1], "capturing alice and bob", "{screen}");
        assert_eq!(lines[2], "warning: a file changed while it was read", "{screen}");
        let bar = lines[3];
        assert!(bar.trim_start().starts_with("capture ["), "{screen}");
        assert!(bar.ends_with("] 12.0 MiB of 40.0 MiB, 2.0 MiB/s, 14 s left"), "{screen}");
        // 12 of 40 MiB over 32 cells: 9 drawn.
        assert_eq!(bar.matches('=').count() + bar.matches('>').count(), 10, "{screen}");

        bars.event(&Event::StepDone { step: Step::Capture, secs: 20.0, bytes: 40 * mib });
        let screen = term().contents();
        assert!(screen.lines().any(|l| l == "== capture done in 20 s"), "{screen}");
        assert!(!screen.contains("MiB/s"), "the finished bar is cleared:\n{screen}");
    }

    #[test]
    fn bytes_message_leaves_out_what_the_engine_does_not_know_yet() {
        assert_eq!(bytes_message(0, 1 << 30, 0.0, None), "0 B of 1.0 GiB");
        assert_eq!(bytes_message(1 << 20, 1 << 30, 1048576.0, Some(3600.0)), "1.0 MiB of 1.0 GiB, 1.0 MiB/s, 1 h 0 min left");
    }
}
