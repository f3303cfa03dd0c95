//! A run's reporter, for every front end that runs a job: started from the preset's
//! `[report]`, and at the end flushed for a while, with what is still unsent kept in the store
//! for the first boot.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::find::Record;
use crate::error::Error;
use crate::preset::Preset;
use crate::progress::{Event, Sink};
use crate::report::envelope::Origin;
use crate::report::{Identity, Reporter};

/// How long the end of a run waits for the collector.
pub const FLUSH: Duration = Duration::from_secs(15);

/// The preset's reporter, when it has a `[report]`. `spool_dir`: a folder that keeps what is
/// unsent besides the store (the stick's). `note` hears about trouble with the collector.
/// Front ends show an error here as a warning and run the job: reports never stop a job.
pub fn start(
    preset: &Preset,
    machine: Identity,
    spool_dir: Option<PathBuf>,
    note: Box<dyn Fn(&str) + Send + Sync>,
) -> crate::error::Result<Option<Arc<Reporter>>> {
    let Some(config) = preset.report.as_ref() else { return Ok(None) };
    Reporter::start(config, machine, Origin::Pe, spool_dir, note).map(|r| Some(Arc::new(r)))
}

/// Ends the run's reporting: a failure the job did not report itself (a refused plan) is
/// reported, what was held is numbered (a run with no job), the collector gets up to
/// [`FLUSH`], and the store keeps what is left. Returns a line for the front end.
pub fn finish(r: &Reporter, journal: Option<&Record>, failure: Option<&Error>, url: &str) -> String {
    if let Some(e) = failure {
        if !r.saw_failure() {
            r.event(&Event::Failed { error: e.clone() });
        }
    }
    r.close_without_job();
    let status = r.flush(FLUSH);
    if let Some(j) = journal {
        super::run::keep_report(j, r);
    }
    match (status.unsent, status.last_error) {
        (0, _) => format!("report: {} events sent to {url}", status.sent),
        (n, Some(e)) => format!(
            "report: {} events sent, {n} not sent ({e}); they are kept in the store and sent again on the new OS's first boot",
            status.sent
        ),
        (n, None) => format!("report: {} events sent, {n} still on their way; the rest waits in the store", status.sent),
    }
}
