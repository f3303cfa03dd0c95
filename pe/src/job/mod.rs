//! The job: one in-place migration, journaled step by step.
//!
//! - [`plan`]: what the job will do, decided before anything is written.
//! - [`journal`]: what the job is and how far it got.
//! - [`find`]: where a job's journal is on a disk.
//! - [`run`]: the job from plan to hand-off, resumable; [`steps`]: each PE step.
//! - [`first_boot`]: restore, cleanup and done, inside the new OS.
//! - [`rollback`]: the old OS back, up to the lay-down.
//! - [`state`]: where a job is, and what comes next.
//! - [`reserve`]: the journal's two slots at the end of the store partition.
//! - [`stage`]: a remote image copied into the store before the lay-down.
//! - [`select`]: which disk the preset means.
//! - [`images`]: the images a person can choose from; [`rates`]: how long a job will take.
//! - [`reporting`]: a run's reporter to the preset's collector, started and finished.

pub mod find;
pub mod first_boot;
pub mod images;
pub mod journal;
pub mod plan;
pub mod rates;
pub mod request;
pub mod reporting;
pub mod reserve;
pub mod rollback;
pub mod select;
pub mod stage;
pub mod run;
pub mod state;
pub mod steps;
