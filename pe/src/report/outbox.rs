//! The envelopes of one reporter: numbered in order, held until the job's id is known, and
//! kept until the collector has acknowledged them. Pure bookkeeping, no I/O.

use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use super::envelope::{random_id, Envelope, Kind, Origin, VERSION};
use super::identity::Identity;
use crate::progress::Event;

/// Where numbering stands: kept in the spool, so the first boot goes on from the PE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Numbering {
    pub job_id: String,
    pub machine: Identity,
    /// The sequence number the next envelope gets.
    pub next_seq: u64,
    /// Every envelope up to this one is acknowledged (0: none).
    pub acked: u64,
}

pub struct Outbox {
    origin: Origin,
    machine: Identity,
    job_id: Option<String>,
    next_seq: u64,
    acked: u64,
    /// Events that came before the job's id, with their time.
    held: Vec<(SystemTime, Event)>,
    /// Numbered, not yet acknowledged, in order.
    unsent: Vec<Envelope>,
    interval: Duration,
    last_progress: Option<Instant>,
}

impl Outbox {
    pub fn new(origin: Origin, machine: Identity, interval: Duration) -> Outbox {
        Outbox { origin, machine, job_id: None, next_seq: 1, acked: 0, held: Vec::new(), unsent: Vec::new(), interval, last_progress: None }
    }

    /// An outbox that goes on where `n` (a spool's) left off, with `unsent` still to send.
    pub fn resume(origin: Origin, n: Numbering, unsent: Vec<Envelope>, interval: Duration) -> Outbox {
        let mut o = Outbox::new(origin, n.machine.clone(), interval);
        o.adopt(n, unsent);
        o
    }

    /// Takes one event. Progress is kept at most once per interval; everything else always.
    /// Returns whether an envelope is ready to send.
    pub fn push(&mut self, e: &Event, now: Instant) -> bool {
        if Kind::of(e) == Kind::Progress {
            if self.last_progress.is_some_and(|t| now.duration_since(t) < self.interval) {
                return false;
            }
            self.last_progress = Some(now);
        }
        if let Event::Job { job_id, .. } = e {
            if self.job_id.is_none() {
                self.job_id = Some(job_id.clone());
            }
        }
        self.held.push((SystemTime::now(), e.clone()));
        if self.job_id.is_some() {
            self.number_held();
            return true;
        }
        false
    }

    /// Takes over an earlier numbering of the same job and what it left unsent (a resumed job's
    /// spool): what is held now is numbered after it.
    pub fn adopt(&mut self, n: Numbering, unsent: Vec<Envelope>) {
        let mut earlier: Vec<Envelope> = unsent.into_iter().filter(|e| e.seq > n.acked).collect();
        earlier.sort_by_key(|e| e.seq);
        self.next_seq = n.next_seq.max(earlier.last().map_or(0, |e| e.seq + 1)).max(n.acked + 1);
        self.acked = n.acked;
        earlier.append(&mut self.unsent);
        self.unsent = earlier;
        self.job_id = Some(n.job_id);
        self.number_held();
    }

    /// Numbers what is held under a fresh id: the run ended before it had a job.
    pub fn close_without_job(&mut self) {
        if self.job_id.is_none() && !self.held.is_empty() {
            self.job_id = Some(random_id());
            self.number_held();
        }
    }

    fn number_held(&mut self) {
        let job_id = self.job_id.clone().unwrap_or_default();
        for (at, event) in std::mem::take(&mut self.held) {
            self.unsent.push(Envelope {
                version: VERSION,
                id: random_id(),
                job_id: job_id.clone(),
                machine: self.machine.clone(),
                seq: self.next_seq,
                time: humantime::format_rfc3339_millis(at).to_string(),
                origin: self.origin,
                kind: Kind::of(&event),
                event,
            });
            self.next_seq += 1;
        }
    }

    /// Up to `max` envelopes to send next, oldest first.
    pub fn batch(&self, max: usize) -> Vec<Envelope> {
        self.unsent.iter().take(max).cloned().collect()
    }

    /// The collector has every envelope up to `seq`.
    pub fn ack(&mut self, seq: u64) {
        self.acked = self.acked.max(seq);
        self.unsent.retain(|e| e.seq > seq);
    }

    pub fn unsent(&self) -> &[Envelope] {
        &self.unsent
    }

    pub fn pending(&self) -> usize {
        self.unsent.len() + self.held.len()
    }

    /// `None` until the job has an id.
    pub fn numbering(&self) -> Option<Numbering> {
        Some(Numbering { job_id: self.job_id.clone()?, machine: self.machine.clone(), next_seq: self.next_seq, acked: self.acked })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::step::Step;

    fn job(id: &str) -> Event {
        Event::Job { job_id: id.into(), name: "lab".into(), resumed: false }
    }

    #[test]
    fn events_wait_for_the_job_id_then_number_in_order() {
        let mut o = Outbox::new(Origin::Pe, Identity::default(), Duration::from_secs(10));
        let t = Instant::now();
        assert!(!o.push(&Event::Step { step: Step::Plan }, t));
        assert!(!o.push(&Event::log("planned"), t));
        assert!(o.numbering().is_none());
        assert!(o.push(&job("ab"), t));
        o.push(&Event::Step { step: Step::Carve }, t);
        let b = o.batch(10);
        assert_eq!(b.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
        assert!(b.iter().all(|e| e.job_id == "ab"));
        assert_eq!(b[2].kind, Kind::Start);
        let ids: std::collections::HashSet<_> = b.iter().map(|e| &e.id).collect();
        assert_eq!(ids.len(), 4);
        o.ack(2);
        assert_eq!(o.unsent().iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 4]);
        assert_eq!(o.numbering().unwrap().acked, 2);
    }

    #[test]
    fn progress_is_kept_once_an_interval() {
        let mut o = Outbox::new(Origin::Pe, Identity::default(), Duration::from_secs(10));
        let t = Instant::now();
        o.push(&job("ab"), t);
        let bytes = |d| Event::Bytes { done: d, total: 100, rate: 1.0, eta_secs: None };
        assert!(o.push(&bytes(1), t));
        assert!(!o.push(&bytes(2), t + Duration::from_secs(9)));
        assert!(o.push(&bytes(3), t + Duration::from_secs(10)));
        assert!(o.push(&Event::warning("w"), t + Duration::from_secs(11)));
        assert_eq!(o.batch(10).len(), 4);
    }

    #[test]
    fn a_resumed_outbox_goes_on_from_the_spool() {
        let mut o = Outbox::new(Origin::Pe, Identity::default(), Duration::from_secs(10));
        let t = Instant::now();
        o.push(&job("ab"), t);
        o.push(&Event::log("x"), t);
        o.push(&Event::log("y"), t);
        o.ack(1);
        let n = o.numbering().unwrap();
        let mut r = Outbox::resume(Origin::FirstBoot, n, o.unsent().to_vec(), Duration::from_secs(10));
        r.push(&Event::Step { step: Step::Restore }, t);
        let b = r.batch(10);
        assert_eq!(b.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3, 4]);
        assert_eq!(b[2].origin, Origin::FirstBoot);
        assert!(b.iter().all(|e| e.job_id == "ab"));
    }

    #[test]
    fn a_run_without_a_job_still_reports() {
        let mut o = Outbox::new(Origin::Pe, Identity::default(), Duration::from_secs(10));
        o.push(&Event::log("refused"), Instant::now());
        o.close_without_job();
        let b = o.batch(10);
        assert_eq!((b.len(), b[0].seq, b[0].job_id.len()), (1, 1, 32));
    }
}
