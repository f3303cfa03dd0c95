//! `image apply` in two calls: [`prepare`] reads and checks everything and returns the plan
//! (it writes nothing); [`lay_down`] writes it. A remote image may be staged in between
//! ([`crate::image::stage`]). Every refusal comes before the target is opened for writing.

pub mod lay_down;
pub mod prepare;

pub use lay_down::{lay_down, LayDownReport};
pub use prepare::{prepare, Prepared, Request};
