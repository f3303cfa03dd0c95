//! The [`Reporter`]: a [`Sink`] that wraps each event in an envelope ([`Outbox`]) and a thread
//! that POSTs them ([`Collector`]), retrying with backoff. Taking an event never waits on the
//! network, so a dead collector never slows or stops the job. What is not acknowledged stays in
//! the outbox, which the job keeps in the store's journal ([`Reporter::spool_files`]) and the
//! reporter in a spool folder (the stick's, or the new OS's).

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::config::ReportConfig;
use super::envelope::{Envelope, Origin};
use super::identity::Identity;
use super::outbox::{Numbering, Outbox};
use super::post::{Collector, Failure};
use super::spool::{encode_spool, encode_state, SpoolDir};
use crate::error::Result;
use crate::progress::{Event, Sink};

/// Envelopes per POST.
const BATCH: usize = 200;
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Where sending stands.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Status {
    pub sent: u64,
    /// Envelopes not yet acknowledged (held ones included).
    pub unsent: usize,
    pub last_error: Option<String>,
    /// Sending stopped: retrying cannot help (a bad certificate, a rejected token).
    pub refused: bool,
}

struct Inner {
    outbox: Outbox,
    /// A `Failed` event came.
    failed: bool,
    status: Status,
    next_try: Instant,
    backoff: Duration,
}

struct Shared {
    inner: Mutex<Inner>,
    wake: Condvar,
    /// Saved after every change: the stick's spool folder, or the new OS's.
    spool_dir: Option<PathBuf>,
    /// Told when sending fails the first time, and when it stops.
    note: Box<dyn Fn(&str) + Send + Sync>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn save(&self, inner: &Inner) {
        let (Some(dir), Some(n)) = (&self.spool_dir, inner.outbox.numbering()) else { return };
        let dir = dir.join(&n.job_id);
        if let Err(e) = SpoolDir(&dir).save(&n, inner.outbox.unsent()) {
            (self.note)(&format!("report: the spool {} cannot be written: {e}", dir.display()));
        }
    }
}

pub struct Reporter {
    shared: Arc<Shared>,
    sending: bool,
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter").field("status", &self.status()).finish()
    }
}

impl Reporter {
    /// A reporter that sends to `config`'s collector from a thread of its own. `spool_dir`:
    /// where it keeps what is unsent, in a folder per job (`None`: only in memory and the
    /// store).
    pub fn start(
        config: &ReportConfig,
        machine: Identity,
        origin: Origin,
        spool_dir: Option<PathBuf>,
        note: Box<dyn Fn(&str) + Send + Sync>,
    ) -> Result<Reporter> {
        let outbox = Outbox::new(origin, machine, Duration::from_secs(config.interval_secs()));
        Reporter::resume(config, outbox, spool_dir, note)
    }

    /// A reporter that only keeps envelopes, in `spool_dir`, for another program to send:
    /// the first boot's restore, which runs before the network is up.
    pub fn spool_only(outbox: Outbox, spool_dir: PathBuf) -> Reporter {
        let r = Reporter::new(outbox, Some(spool_dir), Box::new(|_| {}), false);
        r.shared.save(&r.shared.lock());
        r
    }

    /// Sends an existing outbox (a spool's), from a thread of its own.
    pub fn resume(config: &ReportConfig, outbox: Outbox, spool_dir: Option<PathBuf>, note: Box<dyn Fn(&str) + Send + Sync>) -> Result<Reporter> {
        let collector = Collector::new(config)?;
        let r = Reporter::new(outbox, spool_dir, note, true);
        let shared = r.shared.clone();
        std::thread::Builder::new()
            .name("report".into())
            .spawn(move || send_loop(&shared, &collector))
            .map_err(|e| crate::error::Error::internal(crate::step::Step::Report, format!("cannot start the report thread: {e}")))?;
        r.shared.wake.notify_all();
        Ok(r)
    }

    fn new(outbox: Outbox, spool_dir: Option<PathBuf>, note: Box<dyn Fn(&str) + Send + Sync>, sending: bool) -> Reporter {
        let inner = Inner { outbox, failed: false, status: Status::default(), next_try: Instant::now(), backoff: FIRST_BACKOFF };
        Reporter { shared: Arc::new(Shared { inner: Mutex::new(inner), wake: Condvar::new(), spool_dir, note }), sending }
    }

    /// Takes over what an earlier run of the same job left (see [`Outbox::adopt`]).
    pub fn adopt(&self, n: Numbering, unsent: Vec<Envelope>) {
        let mut g = self.shared.lock();
        g.outbox.adopt(n, unsent);
        drop(g);
        self.shared.wake.notify_all();
    }

    /// What the job keeps in the store's journal: the unsent envelopes and the numbering.
    pub fn spool_files(&self) -> Option<(Vec<u8>, Vec<u8>)> {
        let g = self.shared.lock();
        let n = g.outbox.numbering()?;
        Some((encode_spool(g.outbox.unsent()), encode_state(&n)))
    }

    /// Numbers what is held even though no job began (a refused plan), so it can be sent.
    pub fn close_without_job(&self) {
        let mut g = self.shared.lock();
        g.outbox.close_without_job();
        self.shared.save(&g);
        drop(g);
        self.shared.wake.notify_all();
    }

    /// Whether a `Failed` event came.
    pub fn saw_failure(&self) -> bool {
        self.shared.lock().failed
    }

    pub fn status(&self) -> Status {
        let g = self.shared.lock();
        Status { unsent: g.outbox.pending(), ..g.status.clone() }
    }

    /// Tries now, and waits up to `limit` for everything to be acknowledged.
    pub fn flush(&self, limit: Duration) -> Status {
        let end = Instant::now() + limit;
        let mut g = self.shared.lock();
        g.next_try = Instant::now();
        self.shared.wake.notify_all();
        while self.sending && g.outbox.pending() > 0 && !g.status.refused {
            let now = Instant::now();
            if now >= end {
                break;
            }
            g = self.shared.wake.wait_timeout(g, end - now).map(|(g, _)| g).unwrap_or_else(|e| e.into_inner().0);
        }
        Status { unsent: g.outbox.pending(), ..g.status.clone() }
    }
}

/// The problem and its advice, for a note.
fn in_words(e: &crate::error::Error) -> String {
    let mut s = e.problem.clone();
    for h in &e.hints {
        if let crate::error::Hint::Advice { text } = h {
            s.push_str("; ");
            s.push_str(text);
        }
    }
    s
}

impl Sink for Reporter {
    fn event(&self, e: &Event) {
        let mut g = self.shared.lock();
        g.failed |= matches!(e, Event::Failed { .. });
        if g.outbox.push(e, Instant::now()) {
            // A sending reporter saves after each try instead.
            if !self.sending {
                self.shared.save(&g);
            }
            self.shared.wake.notify_all();
        }
    }
}

fn send_loop(s: &Shared, collector: &Collector) {
    loop {
        let batch = {
            let mut g = s.lock();
            loop {
                let now = Instant::now();
                if !g.status.refused && !g.outbox.unsent().is_empty() && now >= g.next_try {
                    break;
                }
                let wait = if g.status.refused || g.outbox.unsent().is_empty() { Duration::from_secs(60) } else { g.next_try - now };
                g = s.wake.wait_timeout(g, wait).map(|(g, _)| g).unwrap_or_else(|e| e.into_inner().0);
            }
            g.outbox.batch(BATCH)
        };
        let result = collector.send(&batch);
        let mut g = s.lock();
        match result {
            Ok(()) => {
                if let Some(last) = batch.last() {
                    g.outbox.ack(last.seq);
                }
                g.status.sent += batch.len() as u64;
                if g.status.last_error.take().is_some() {
                    (s.note)(&format!("report: the collector takes events again ({} unsent)", g.outbox.pending()));
                }
                g.backoff = FIRST_BACKOFF;
            }
            Err(Failure::Later(e)) => {
                if g.status.last_error.is_none() {
                    (s.note)(&format!("report: {}; the events are kept and sent again with backoff", in_words(&e)));
                }
                g.status.last_error = Some(e.problem.clone());
                g.next_try = Instant::now() + g.backoff;
                g.backoff = (g.backoff * 2).min(MAX_BACKOFF);
            }
            Err(Failure::Refused(e)) => {
                (s.note)(&format!("report: {}; the events are kept in the spool and not sent again", in_words(&e)));
                g.status.last_error = Some(e.problem.clone());
                g.status.refused = true;
            }
        }
        s.save(&g);
        s.wake.notify_all();
    }
}
