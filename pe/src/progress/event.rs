//! What the engine tells its front ends.

use serde::{Deserialize, Serialize};

use crate::error::Error;
pub use crate::step::Step;

/// One thing the engine reports. Serialised as one JSON object with an `event` tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The job has its id: a new job recorded in its journal, or an unfinished one resumed.
    Job { job_id: String, name: String, resumed: bool },
    /// A step of the job begins.
    Step { step: Step },
    /// A phase of the current work begins, with the bytes it will handle (0: unknown).
    Phase { name: String, total: u64 },
    /// Bytes done in the current phase, with the rate (bytes/s) and the time left (s) the
    /// engine measured. `eta_secs` is `None` until there is a rate to go by.
    Bytes { done: u64, total: u64, rate: f64, eta_secs: Option<f64> },
    /// Entries (files, directories, links) done in the current phase, and the one at hand.
    Entries { done: u64, total: u64, current: String },
    /// A line for the log.
    Log { message: String },
    /// Something the user should know; the work goes on.
    Warning { message: String },
    /// A filesystem was resized to fit its partition: its bytes before and after.
    Resized { number: u32, fs: String, before: u64, after: u64, secs: f64 },
    /// A step ended well.
    StepDone { step: Step, secs: f64, bytes: u64 },
    /// The work stopped: why, whether anything was written, and what to do.
    Failed { error: Error },
    /// A part of the job is over (the PE's, handed off; the first boot's, restored), with its
    /// report: the journal's steps, times and bytes, and the restore's report.
    Done { report: serde_json::Value },
}

impl Event {
    pub fn log(message: impl Into<String>) -> Event {
        Event::Log { message: message.into() }
    }

    pub fn warning(message: impl Into<String>) -> Event {
        Event::Warning { message: message.into() }
    }
}
