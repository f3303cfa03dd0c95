//! Migration content: which files to keep (`rules`, `select`), how big they are (`estimate`),
//! putting them into the store (`store`, `capture`) and back onto the new OS (`restore`).
//!
//! - [`source`]: the old OS's filesystem opened for reading.
//! - [`job_info`]: what a capture records about its job.
//! - [`entry`]: what a capture records about each file.
//! - [`accounts`]: what a capture records about each captured user's account.

pub mod accounts;
pub mod capture;
pub mod entry;
pub mod estimate;
pub mod job_info;
pub mod restore;
pub mod rules;
pub mod select;
pub mod source;
pub mod store;
#[cfg(test)]
pub mod testing;
