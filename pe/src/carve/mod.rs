//! Carving the migration store: a partition for it on the same disk, without moving a byte of
//! anything else.
//!
//! The flow: [`layout`] turns a real partition table into the planner's [`model::Layout`],
//! [`usage`] reads what each filesystem says is free at its tail, [`plan::plan`] is a pure
//! function from those to a [`model::Plan`] (or a refusal), [`prepare`] chains them for one
//! disk, and [`apply::carve`] executes a plan: formats the store FAT32 ([`store`]), saves the
//! original table and writes the locator twice (`crate::locator`), then writes the table
//! ([`table`], through `disk::write`). [`render`] shows a plan as text.

pub mod apply;
pub mod layout;
pub mod model;
pub mod plan;
pub mod prepare;
pub mod render;
pub mod store;
pub mod table;
pub mod usage;

pub use apply::{carve, CarveOptions, Outcome};
pub use prepare::{prepare, Prepared, ReadOptions};
