//! The one vocabulary between the engine and whoever drives it. Every long-running engine
//! entry point takes a [`Sink`] for its [`Event`]s and a [`Cancel`] flag, and returns an
//! [`crate::error::Error`] when it stops. The engine never prints: the plain console printer,
//! the TUI, the JSON-lines stream and the store's event log are sinks.
//!
//! - [`event`]: the events and the job's steps.
//! - [`sink`]: the trait and the sinks every front end shares (silent, channel, collect, tee,
//!   JSON lines).
//! - [`meter`]: bytes and entries of a phase turned into throttled events with rate and time
//!   left.
//! - [`cancel`]: the flag a front end raises to stop the work at the next safe point.

pub mod cancel;
pub mod event;
pub mod meter;
pub mod sink;

pub use cancel::Cancel;
pub use event::{Event, Step};
pub use meter::Meter;
pub use sink::{Channel, Collect, JsonLines, Silent, Sink, Tee};
