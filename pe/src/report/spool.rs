//! The spool: what is not yet acknowledged, as files. `spool.jsonl` holds the unsent envelopes,
//! one a line; `state.json` the [`Numbering`]; `config.json` the `[report]` table (in the new
//! OS, where no preset is at hand). The job keeps the same two files in the store's journal
//! (`journal/report-spool.jsonl`, `journal/report-state.json`).

use std::path::Path;

use super::config::ReportConfig;
use super::envelope::Envelope;
use super::outbox::Numbering;

/// The file names, one definition with the Windows agent, which reads the same spool.
pub use inplace_agent::reporting::spool::{CONFIG, SPOOL, STATE};
/// In the store.
pub use inplace_agent::reporting::store::{SPOOL as STORE_SPOOL, STATE as STORE_STATE};
/// In the new OS.
pub const NEW_OS_DIR: &str = "var/lib/inplace/report";

pub fn encode_spool(unsent: &[Envelope]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in unsent {
        if let Ok(line) = serde_json::to_vec(e) {
            out.extend_from_slice(&line);
            out.push(b'\n');
        }
    }
    out
}

/// `state.json`: the numbering.
pub fn encode_state(n: &Numbering) -> Vec<u8> {
    serde_json::to_vec_pretty(n).unwrap_or_default()
}

/// The envelopes of a spool; a torn last line (a cut write) is skipped.
pub fn decode_spool(bytes: &[u8]) -> Vec<Envelope> {
    bytes.split(|&b| b == b'\n').filter_map(|l| serde_json::from_slice(l).ok()).collect()
}

/// A spool kept as files in `dir`.
pub struct SpoolDir<'a>(pub &'a Path);

impl SpoolDir<'_> {
    pub fn save(&self, n: &Numbering, unsent: &[Envelope]) -> std::io::Result<()> {
        std::fs::create_dir_all(self.0)?;
        crate::files::write_atomic(&self.0.join(SPOOL), &encode_spool(unsent))?;
        crate::files::write_atomic(&self.0.join(STATE), &encode_state(n))
    }

    pub fn save_config(&self, c: &ReportConfig) -> std::io::Result<()> {
        std::fs::create_dir_all(self.0)?;
        crate::files::write_atomic(&self.0.join(CONFIG), &serde_json::to_vec_pretty(c).unwrap_or_default())
    }

    /// The numbering, the unsent envelopes and the config, when the spool is there.
    pub fn load(&self) -> Option<(Numbering, Vec<Envelope>, ReportConfig)> {
        let n = serde_json::from_slice(&std::fs::read(self.0.join(STATE)).ok()?).ok()?;
        let c = serde_json::from_slice(&std::fs::read(self.0.join(CONFIG)).ok()?).ok()?;
        let unsent = std::fs::read(self.0.join(SPOOL)).map(|b| decode_spool(&b)).unwrap_or_default();
        Some((n, unsent, c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Event;
    use crate::report::envelope::Origin;
    use crate::report::outbox::Outbox;
    use std::time::{Duration, Instant};

    #[test]
    fn a_spool_round_trips_and_survives_a_torn_line() {
        let d = tempfile::tempdir().unwrap();
        let mut o = Outbox::new(Origin::Pe, Default::default(), Duration::from_secs(10));
        o.push(&Event::Job { job_id: "ab".into(), name: "n".into(), resumed: false }, Instant::now());
        o.push(&Event::log("one"), Instant::now());
        let dir = SpoolDir(d.path());
        dir.save(&o.numbering().unwrap(), o.unsent()).unwrap();
        dir.save_config(&ReportConfig { url: "http://x/".into(), ..Default::default() }).unwrap();
        let (n, unsent, c) = dir.load().unwrap();
        assert_eq!((n.next_seq, unsent.len(), c.url.as_str()), (3, 2, "http://x/"));
        let mut bytes = std::fs::read(d.path().join(SPOOL)).unwrap();
        bytes.truncate(bytes.len() - 10);
        assert_eq!(decode_spool(&bytes).len(), 1);
    }
}
