//! The job: one in-place migration, journaled step by step.
//!
//! - [`plan`]: what the job will do, decided before anything is written.
//! - [`journal`]: what the job is and how far it got.
//! - [`state`]: where a job is, and what comes next.
//! - [`reserve`]: the journal's two slots at the end of the store partition.
//! - [`select`]: which disk the preset means.

pub mod journal;
pub mod plan;
pub mod reserve;
pub mod select;
pub mod state;
