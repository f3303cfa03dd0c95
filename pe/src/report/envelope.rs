//! What a collector receives: one [`Envelope`] per event. Its JSON Schema is
//! `docs/reporting.schema.json`; a test checks every kind of event against it.

use serde::{Deserialize, Serialize};

use super::identity::Identity;
use crate::progress::Event;

/// The envelope's schema version.
pub const VERSION: u32 = 1;

/// Which program sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// The PE, during the job.
    Pe,
    /// The new OS, on its first boot (the restore and what the PE left unsent).
    FirstBoot,
}

/// What the event is to a collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The job has an id (a new job, or one resumed).
    Start,
    /// A step or a phase begins, or a step ends.
    Phase,
    /// Bytes or entries done, at the preset's interval.
    Progress,
    Warning,
    Log,
    /// A part of the job is over: the PE's (handed off) or the first boot's (restored), with
    /// its report.
    Done,
    Failed,
}

impl Kind {
    pub fn of(e: &Event) -> Kind {
        match e {
            Event::Job { .. } => Kind::Start,
            Event::Step { .. } | Event::StepDone { .. } | Event::Phase { .. } => Kind::Phase,
            Event::Bytes { .. } | Event::Entries { .. } => Kind::Progress,
            Event::Warning { .. } => Kind::Warning,
            Event::Log { .. } | Event::Resized { .. } => Kind::Log,
            Event::Done { .. } => Kind::Done,
            Event::Failed { .. } => Kind::Failed,
        }
    }
}

/// One event as sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub version: u32,
    /// Unique: a collector drops an envelope whose id it has seen.
    pub id: String,
    /// The job's id (32 hex digits), as the store's journal has it; for a run that ended
    /// before it had a job (a refused plan), an id of that run.
    pub job_id: String,
    pub machine: Identity,
    /// 1, 2, 3, … over the whole job, the PE's part and the first boot's: a collector orders
    /// by it and sees a gap as something not yet received.
    pub seq: u64,
    /// When it happened (RFC 3339, UTC).
    pub time: String,
    pub origin: Origin,
    pub kind: Kind,
    /// The engine's event, as the `--json` stream has it.
    pub event: Event,
}

/// 32 random hex digits.
pub fn random_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
