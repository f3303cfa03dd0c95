//! The job's journal: what the job is (its id, preset, disk and plan) and how far it got, with
//! the time and bytes of every step. It is written, and synced, at every transition before the
//! next step starts, into the [`reserve`](super::reserve) at the end of the store partition
//! (before the carve: of the partition the plan will make), and read back by a resume, a
//! rollback and the first boot of the new OS.

use serde::{Deserialize, Serialize};

use super::reserve;
use super::state::State;
use crate::disk::device::ReadAt;
use crate::disk::write::WriteAt;
use crate::error::{Error, Written};
use crate::migrate::store::CaptureName;
use crate::step::Step;

pub const VERSION: u32 = 1;

/// Unix seconds now, as the journal records a step's start and finish.
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The disk a job runs on, as it was seen when the job was planned.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskId {
    pub name: String,
    pub size_bytes: u64,
    pub sector_size: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wwn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

/// One step's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub step: Step,
    /// Unix seconds.
    pub started: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<u64>,
    /// Seconds the step took, over all its attempts.
    pub secs: f64,
    pub bytes: u64,
    /// How many times it was begun (more than one after a cut or a retry).
    pub attempts: u32,
}

/// The journal; `plan` is the job's plan as the job module records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Journal<P> {
    pub version: u32,
    /// 32 hex digits; the store's locator carries the same id.
    pub job_id: String,
    pub name: String,
    pub state: State,
    /// Bumped by every write; the reserve keeps the two newest.
    pub seq: u64,
    pub disk: DiskId,
    pub plan: P,
    pub steps: Vec<StepRecord>,
    /// The captures of the store the capture step finished, one source each: a resume leaves
    /// them as they are.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub captured: Vec<CaptureName>,
    /// Filesystems the lay-down grew to fill their partitions, with the figures.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resized: Vec<crate::image::resize::Resized>,
    /// The last failure, kept until the step it stopped is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Error>,
}

impl<P> Journal<P> {
    pub fn new(job_id: String, name: String, disk: DiskId, plan: P) -> Self {
        Journal {
            version: VERSION,
            job_id,
            name,
            state: State::Planned,
            seq: 0,
            disk,
            plan,
            steps: Vec::new(),
            captured: Vec::new(),
            resized: Vec::new(),
            error: None,
        }
    }

    /// Records that `step` begins now (another attempt if it had begun before).
    pub fn begin(&mut self, step: Step, now: u64) {
        if let Some(s) = State::begins(step) {
            self.state = s;
        }
        match self.steps.iter_mut().find(|r| r.step == step) {
            Some(r) => {
                r.attempts += 1;
                r.finished = None;
            }
            None => self.steps.push(StepRecord { step, started: now, finished: None, secs: 0.0, bytes: 0, attempts: 1 }),
        }
    }

    /// Records that `step` ended well after `secs` of this attempt, having moved `bytes`.
    pub fn end(&mut self, step: Step, now: u64, secs: f64, bytes: u64) {
        if let Some(s) = State::ends(step) {
            self.state = s;
        }
        if let Some(r) = self.steps.iter_mut().find(|r| r.step == step) {
            r.finished = Some(now);
            r.secs += secs;
            r.bytes = bytes;
        }
        self.error = None;
    }

    pub fn step(&self, step: Step) -> Option<&StepRecord> {
        self.steps.iter().find(|r| r.step == step)
    }
}

impl<P: Serialize + for<'de> Deserialize<'de>> Journal<P> {
    /// Writes the next sequence number into the reserve at byte `at` of `dev`, and syncs.
    pub fn write(&mut self, dev: &dyn WriteAt, at: u64) -> Result<(), Error> {
        let fail = |m: String| Error::io(self.state.next_step().unwrap_or(Step::Finish), m).written(Written::Disk);
        self.seq += 1;
        let json = serde_json::to_vec(self).map_err(|e| fail(format!("encoding the journal: {e}")))?;
        let slot = reserve::encode(self.seq, &json).map_err(|e| fail(e.to_string()))?;
        dev.write_exact_at(at + reserve::slot_offset(self.seq), &slot).map_err(|e| fail(format!("writing the journal: {e}")))?;
        dev.sync().map_err(|e| fail(format!("syncing the journal: {e}")))
    }

    /// The journal in the reserve at byte `at` of `dev`, if one is there and valid.
    pub fn read(dev: &dyn ReadAt, at: u64) -> Result<Option<Self>, Error> {
        let mut buf = vec![0u8; reserve::RESERVE as usize];
        dev.read_exact_at(at, &mut buf).map_err(|e| Error::io(Step::Inspect, format!("reading the journal reserve at byte {at}: {e}")))?;
        let Some((_, payload)) = reserve::newest(&buf) else { return Ok(None) };
        serde_json::from_slice(payload)
            .map(Some)
            .map_err(|e| Error::damaged(Step::Inspect, format!("the journal at byte {at} cannot be read: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_survive_a_torn_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk");
        std::fs::write(&path, vec![0u8; 1 << 20]).unwrap();
        let dev = crate::disk::write::RwDevice::open(&path).unwrap();
        let at = 4096;
        assert_eq!(Journal::<String>::read(&dev, at).unwrap(), None);
        let mut j = Journal::new("ab".repeat(16), "lab".into(), DiskId::default(), "plan".to_string());
        j.write(&dev, at).unwrap();
        j.begin(Step::Carve, 10);
        j.write(&dev, at).unwrap();
        j.end(Step::Carve, 12, 2.0, 0);
        j.begin(Step::Capture, 12);
        j.write(&dev, at).unwrap();
        let back = Journal::<String>::read(&dev, at).unwrap().unwrap();
        assert_eq!(back, j);
        assert_eq!(back.state, State::Capturing);
        // The next write is cut short inside its payload: the reader sees the transition before.
        j.end(Step::Capture, 20, 8.0, 1234);
        j.seq += 1;
        let json = serde_json::to_vec(&j).unwrap();
        let mut slot = reserve::encode(j.seq, &json).unwrap();
        slot[100..].fill(0);
        dev.write_exact_at(at + reserve::slot_offset(j.seq), &slot).unwrap();
        let back = Journal::<String>::read(&dev, at).unwrap().unwrap();
        assert_eq!(back.state, State::Capturing);
        assert_eq!(back.step(Step::Carve).unwrap().secs, 2.0);
    }

    #[test]
    fn a_retried_step_counts_its_attempts_and_time() {
        let mut j = Journal::new("00".repeat(16), "x".into(), DiskId::default(), ());
        j.begin(Step::Capture, 1);
        j.begin(Step::Capture, 5);
        j.end(Step::Capture, 9, 4.0, 100);
        let r = j.step(Step::Capture).unwrap();
        assert_eq!((r.attempts, r.started, r.finished, r.bytes), (2, 1, Some(9), 100));
        assert_eq!(j.state, State::Captured);
    }
}
