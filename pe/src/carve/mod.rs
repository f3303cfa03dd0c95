//! Carving the migration store: a partition for it on the same disk, without moving a byte of
//! anything else.
//!
//! The flow: [`layout`] turns a real partition table into the planner's [`model::Layout`],
//! [`usage`] reads what each filesystem says is free at its tail, [`plan::plan`] is a pure
//! function from those to a [`model::Plan`] (or a refusal), and [`apply`] executes a plan:
//! saves the original table into the store area, formats the store FAT32, writes the
//! [`locator`] twice, then writes the table. [`locate`] finds a store again by scanning for
//! its locator, and [`rollback`] puts the saved table back.

pub mod model;
pub mod plan;
pub mod gpt_write;
pub mod locator;
pub mod patch;
pub mod snapshot;
pub mod mbr_write;
pub mod usage;
pub mod apply;
pub mod layout;
pub mod locate;
pub mod rollback;
pub mod store;
pub mod render;
pub mod kernel;
