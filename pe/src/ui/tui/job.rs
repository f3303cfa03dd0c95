//! The job as the progress screen shows it, folded from the engine's events: the steps with
//! ticks, the current phase's bytes with the rate and time left the engine measured, the log.

use crate::error::Error;
use crate::progress::Event;
use crate::step::Step;
use crate::ui::session::{Ended, Request};

/// Lines of log kept.
const LOG_LINES: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mark {
    Waiting,
    Running,
    Done { secs: f64, bytes: u64 },
    Failed,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Bytes {
    pub done: u64,
    pub total: u64,
    pub rate: f64,
    pub eta_secs: Option<f64>,
}

#[derive(Debug, Clone, Default)]
pub struct JobView {
    pub request: Option<Request>,
    pub steps: Vec<(Step, Mark)>,
    pub current: Option<Step>,
    pub phase: Option<String>,
    pub bytes: Option<Bytes>,
    pub entries: Option<(u64, u64, String)>,
    pub log: Vec<String>,
    pub failed: Option<Error>,
    pub ended: Option<Ended>,
    /// Esc was pressed: stopping waits for `y`.
    pub asking_stop: bool,
    /// The person asked the engine to stop.
    pub stop_asked: bool,
    /// Log lines scrolled back from the newest.
    pub scroll: usize,
}

/// The PE's steps of a job, in order.
pub const JOB_STEPS: [Step; 6] = [Step::Carve, Step::Capture, Step::Verify, Step::Stage, Step::LayDown, Step::HandOff];

impl JobView {
    pub fn for_request(r: Option<&Request>) -> JobView {
        let steps: Vec<Step> = match r {
            Some(Request::Rollback { .. }) => vec![Step::Rollback],
            _ => JOB_STEPS.to_vec(),
        };
        JobView { request: r.cloned(), steps: steps.into_iter().map(|s| (s, Mark::Waiting)).collect(), ..JobView::default() }
    }

    fn mark(&mut self, step: Step, m: Mark) {
        match self.steps.iter_mut().find(|(s, _)| *s == step) {
            Some(e) => e.1 = m,
            None if step != Step::Plan => self.steps.push((step, m)),
            None => {}
        }
    }

    pub fn apply(&mut self, e: &Event) {
        match e {
            Event::Step { step } => {
                // A resumed job skips the steps done before: they are done.
                if let Some(i) = self.steps.iter().position(|(s, _)| s == step) {
                    for (_, m) in &mut self.steps[..i] {
                        if *m == Mark::Waiting {
                            *m = Mark::Done { secs: 0.0, bytes: 0 };
                        }
                    }
                }
                self.mark(*step, Mark::Running);
                self.current = Some(*step);
                self.phase = None;
                self.bytes = None;
                self.entries = None;
                self.log.push(format!("== {step}"));
            }
            Event::Phase { name, total } => {
                self.phase = Some(name.clone());
                self.bytes = (*total > 0).then_some(Bytes { done: 0, total: *total, rate: 0.0, eta_secs: None });
                self.entries = None;
                self.log.push(name.clone());
            }
            Event::Bytes { done, total, rate, eta_secs } => self.bytes = Some(Bytes { done: *done, total: *total, rate: *rate, eta_secs: *eta_secs }),
            Event::Entries { done, total, current } => self.entries = Some((*done, *total, current.clone())),
            Event::Log { message } => self.log.push(message.clone()),
            Event::Warning { message } => self.log.push(format!("warning: {message}")),
            // Its figures come with a log line of their own.
            Event::Resized { .. } | Event::Job { .. } | Event::Done { .. } => {}
            Event::StepDone { step, secs, bytes } => {
                self.mark(*step, Mark::Done { secs: *secs, bytes: *bytes });
                if let Some(b) = &mut self.bytes {
                    b.done = b.total;
                    b.eta_secs = Some(0.0);
                }
            }
            Event::Failed { error } => {
                self.mark(error.step, Mark::Failed);
                self.failed = Some(error.clone());
                self.log.push(format!("failed: {}", error.problem));
            }
        }
        if self.log.len() > LOG_LINES {
            self.log.drain(..self.log.len() - LOG_LINES);
        }
    }

    /// The share of the job done: whole steps, and the current step's bytes.
    pub fn overall(&self) -> f64 {
        if self.steps.is_empty() {
            return 0.0;
        }
        let done = self.steps.iter().filter(|(_, m)| matches!(m, Mark::Done { .. })).count() as f64;
        let running = self.steps.iter().any(|(_, m)| *m == Mark::Running);
        let part = match (&self.bytes, running) {
            (Some(b), true) if b.total > 0 => b.done.min(b.total) as f64 / b.total as f64,
            _ => 0.0,
        };
        ((done + part) / self.steps.len() as f64).clamp(0.0, 1.0)
    }

    /// The error the job ended with, if it did not end well.
    pub fn error(&self) -> Option<&Error> {
        match &self.ended {
            Some(Ended::Failed { error }) => Some(error),
            _ => self.failed.as_ref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_tick_steps_and_fill_the_bars() {
        let mut j = JobView::for_request(None);
        j.apply(&Event::Step { step: Step::Capture });
        assert_eq!(j.steps[0].1, Mark::Done { secs: 0.0, bytes: 0 }, "a resumed job had its carve done");
        j.apply(&Event::Phase { name: "capturing".into(), total: 100 });
        j.apply(&Event::Bytes { done: 50, total: 100, rate: 10.0, eta_secs: Some(5.0) });
        assert!((j.overall() - 1.5 / 6.0).abs() < 1e-9, "{}", j.overall());
        j.apply(&Event::StepDone { step: Step::Capture, secs: 10.0, bytes: 100 });
        assert_eq!(j.steps[1].1, Mark::Done { secs: 10.0, bytes: 100 });
        assert_eq!(j.log, ["== capture", "capturing"]);
    }
}
