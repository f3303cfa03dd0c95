//! Reporting a job to a collector: every event of the job, wrapped in an [`Envelope`] (a unique
//! id, the job id, the machine's identity, a sequence number), POSTed as JSON to the preset's
//! `[report]` URL. What cannot be sent yet waits in a spool (the store's journal, the stick, and
//! in the new OS), and the first boot sends what is left. A dead collector never stops a job.
//!
//! - [`config`]: the preset's `[report]` table.
//! - [`identity`]: the machine's DMI serial, UUID and MAC.
//! - [`envelope`]: what is sent, and its JSON Schema (`docs/reporting.schema.json`).
//! - [`outbox`]: numbering, holding events until the job id is known, what is unsent.
//! - [`spool`]: the spool files.
//! - [`post`]: the HTTP POST, over the same rustls setup as image fetches.
//! - [`reporter`]: the [`Reporter`] sink and its sender thread.

pub mod config;
pub mod envelope;
pub mod identity;
pub mod outbox;
pub mod post;
pub mod reporter;
pub mod spool;

pub use config::ReportConfig;
pub use envelope::{Envelope, Kind};
pub use identity::Identity;
pub use reporter::Reporter;
