//! A run's reporter, for every front end that runs a job ([`reported`]): started from the
//! preset's `[report]`, teed into the front end's sink and set in the job's `Env`, and at the
//! end flushed for a while, with what is still unsent kept in the store for the first boot.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::find::Record;
use super::plan::Env;
use super::state::State;
use super::steps;
use crate::error::Error;
use crate::preset::Preset;
use crate::progress::{Event, Sink, Tee};
use crate::report::envelope::Origin;
use crate::migrate::store::Store;
use crate::report::envelope::Envelope;
use crate::report::outbox::Numbering;
use crate::report::spool::{decode_spool, STORE_SPOOL, STORE_STATE};
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
        keep_report(j, r);
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

/// Runs `job` (a run or a resume of the job `preset` describes) with the preset's reporter:
/// its events go to `sink` and to the collector. `journal` finds the job's record in what `job`
/// returns. A reporter that cannot start is a warning on `sink`; the last line says what was
/// sent. Without `[report]` this is `job(env, sink)`.
pub fn reported<T>(
    preset: &Preset,
    env: &Env,
    sink: &dyn Sink,
    spool_dir: Option<PathBuf>,
    note: Box<dyn Fn(&str) + Send + Sync>,
    job: impl FnOnce(&Env, &dyn Sink) -> crate::error::Result<T>,
    journal: impl Fn(&T) -> Option<&Record>,
) -> crate::error::Result<T> {
    let machine = Identity::read(std::path::Path::new("/sys"));
    let reporter = match start(preset, machine, spool_dir, note) {
        Ok(r) => r,
        Err(e) => {
            sink.warn(&format!("report: {}; the job runs without sending its events", e.problem));
            None
        }
    };
    let (Some(r), Some(config)) = (reporter, &preset.report) else { return job(env, sink) };
    sink.log(&format!("report: events go to {}", config.url));
    let env = Env { reporter: Some(r.clone()), ..env.clone() };
    let result = job(&env, &Tee(vec![sink, &*r]));
    let line = finish(&r, result.as_ref().ok().and_then(&journal), result.as_ref().err(), &config.url);
    sink.log(&line);
    result
}

/// Keeps what `r` has not sent, and its numbering, in the store's journal.
pub fn keep_in_store(store: &Store, r: &Reporter) {
    if let Some((spool, state)) = r.spool_files() {
        let _ = store.write_file(STORE_SPOOL, &spool);
        let _ = store.write_file(STORE_STATE, &state);
    }
}

/// Keeps the reporter's spool in the store of the job `j` once more (after a last flush, so
/// the first boot does not send again what the collector has).
fn keep_report(j: &Record, r: &Reporter) {
    if j.state >= State::Carved {
        if let Some(store) = steps::open_store(&j.plan.disk_path) {
            keep_in_store(&store, r);
        }
    }
}

/// The numbering and the unsent envelopes the store's journal keeps, when it has them.
pub fn from_store(store: &Store) -> Option<(Numbering, Vec<Envelope>)> {
    let n: Numbering = serde_json::from_slice(&store.read_file(STORE_STATE, 1 << 20).ok()??).ok()?;
    let unsent = store.read_file(STORE_SPOOL, 64 << 20).ok().flatten().map(|b| decode_spool(&b)).unwrap_or_default();
    Some((n, unsent))
}

/// A resumed job's events go on from the numbering its earlier run kept in the store.
pub fn adopt_from_store(r: &Reporter, j: &Record) {
    if j.state < State::Carved {
        return;
    }
    let Some(store) = steps::open_store(&j.plan.disk_path) else { return };
    if let Some((n, unsent)) = from_store(&store).filter(|(n, _)| n.job_id == j.job_id) {
        r.adopt(n, unsent);
    }
}
