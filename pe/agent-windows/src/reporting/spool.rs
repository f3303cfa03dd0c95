//! The spool in the new Windows, `C:\ProgramData\inplace\report\<job>\`, in the PE's format
//! (`docs/reporting.md`): `config.json` (the preset's `[report]`), `state.json` (the numbering),
//! `spool.jsonl` (the unsent envelopes, one a line), plus the agent's own `agent.json` (what it
//! has added).

use super::envelope::seq;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};

pub const CONFIG: &str = "config.json";
pub const STATE: &str = "state.json";
pub const SPOOL: &str = "spool.jsonl";
pub const AGENT: &str = "agent.json";
/// The folder of the spools, beside the staged folder.
pub const DIR: &str = "report";

/// The preset's `[report]` table: where and how a job's events are sent. The PE reads it from
/// the preset (`inplace::report::ReportConfig`) and writes it here as `config.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// An `http://` or `https://` URL that accepts `POST` with a JSON body.
    pub url: String,
    /// Sent as `Authorization: Bearer <token>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Seconds between progress events (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<u64>,
    /// A CA certificate (PEM) the collector's certificate must chain to, instead of the
    /// system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
}

/// Seconds between progress events when the preset does not say.
pub const DEFAULT_INTERVAL: u64 = 10;

impl Config {
    pub fn interval_secs(&self) -> u64 {
        self.interval.unwrap_or(DEFAULT_INTERVAL).max(1)
    }
}

/// Where numbering stands (the PE's `Numbering`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Numbering {
    pub job_id: String,
    pub machine: Value,
    /// The sequence number the next envelope gets.
    pub next_seq: u64,
    /// Every envelope up to this one is acknowledged.
    pub acked: u64,
}

/// What the agent has added to the spool.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Added {
    /// The PE's last numbering was taken from the store's journal: the first boot's envelopes
    /// can be numbered after it.
    pub store_adopted: bool,
    /// The "new Windows is up" envelope.
    pub booted: bool,
    /// The reports sent, as `<file>:<sha-256 prefix>` (a report that changes is sent again).
    pub reported: Vec<String>,
}

/// A job's spool, loaded.
#[derive(Debug, Clone)]
pub struct Spool {
    pub dir: PathBuf,
    pub config: Config,
    pub numbering: Numbering,
    /// Unsent, in order.
    pub unsent: Vec<Value>,
    pub added: Added,
}

/// The envelopes of a spool file; a torn last line (a cut write) is skipped.
pub fn decode(bytes: &[u8]) -> Vec<Value> {
    bytes.split(|&b| b == b'\n').filter_map(|l| serde_json::from_slice::<Value>(l).ok()).filter(|v| seq(v) > 0).collect()
}

fn encode(unsent: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in unsent {
        out.extend_from_slice(e.to_string().as_bytes());
        out.push(b'\n');
    }
    out
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{} is not valid: {e}", path.display()))
}

impl Spool {
    /// The spool in `dir`; `Ok(None)` when there is none (the preset has no `[report]`).
    pub fn load(dir: &Path) -> Result<Option<Spool>, String> {
        if !dir.join(CONFIG).exists() {
            return Ok(None);
        }
        let config: Config = read_json(&dir.join(CONFIG))?;
        let numbering: Numbering = read_json(&dir.join(STATE))?;
        let unsent = std::fs::read(dir.join(SPOOL)).map(|b| decode(&b)).unwrap_or_default();
        let added = read_json(&dir.join(AGENT)).unwrap_or_default();
        let mut s = Spool { dir: dir.to_path_buf(), config, numbering, unsent: Vec::new(), added };
        s.merge(None, unsent);
        Ok(Some(s))
    }

    pub fn save(&self) -> std::io::Result<()> {
        crate::files::write_atomic(&self.dir.join(SPOOL), &encode(&self.unsent))?;
        crate::files::write_atomic(&self.dir.join(STATE), &pretty(&self.numbering))?;
        crate::files::write_atomic(&self.dir.join(AGENT), &pretty(&self.added))
    }

    /// Takes in a numbering of the same job and its unsent envelopes (the store's journal, kept
    /// by the PE after the hand-off wrote this spool): what either side acknowledged is dropped,
    /// an envelope both hold is kept once, numbering goes on after the later one.
    pub fn merge(&mut self, other: Option<Numbering>, unsent: Vec<Value>) {
        if let Some(n) = other {
            self.numbering.acked = self.numbering.acked.max(n.acked);
            self.numbering.next_seq = self.numbering.next_seq.max(n.next_seq);
        }
        let acked = self.numbering.acked;
        let mut all: Vec<Value> = std::mem::take(&mut self.unsent);
        all.extend(unsent);
        all.retain(|e| seq(e) > acked);
        all.sort_by_key(seq);
        all.dedup_by_key(|e| seq(e));
        let last = all.last().map_or(0, seq);
        self.numbering.next_seq = self.numbering.next_seq.max(last + 1).max(acked + 1);
        self.unsent = all;
    }

    /// Numbers `event` after everything there is, as an unsent envelope.
    pub fn push(&mut self, kind: &str, event: Value) {
        let n = &mut self.numbering;
        let e = super::envelope::first_boot(&n.job_id, &n.machine, n.next_seq, kind, event, std::time::SystemTime::now());
        n.next_seq += 1;
        self.unsent.push(e);
    }

    /// The collector has everything up to `seq`.
    pub fn ack(&mut self, seq_: u64) {
        self.numbering.acked = self.numbering.acked.max(seq_);
        self.unsent.retain(|e| seq(e) > seq_);
    }
}

fn pretty<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec_pretty(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(seq: u64) -> Value {
        json!({"seq": seq, "id": format!("pe-{seq}"), "origin": "pe"})
    }

    fn spool(dir: &Path, next: u64, acked: u64, unsent: &[u64]) -> Spool {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(CONFIG), r#"{"url":"http://127.0.0.1:9/in","token":"t"}"#).unwrap();
        std::fs::write(dir.join(STATE), json!({"job_id": "ab", "machine": {"mac": null}, "next_seq": next, "acked": acked}).to_string()).unwrap();
        let lines: Vec<Value> = unsent.iter().map(|&s| env(s)).collect();
        std::fs::write(dir.join(SPOOL), encode(&lines)).unwrap();
        Spool::load(dir).unwrap().unwrap()
    }

    #[test]
    fn no_config_is_no_spool() {
        let d = tempfile::tempdir().unwrap();
        assert!(Spool::load(d.path()).unwrap().is_none());
    }

    #[test]
    fn the_stores_later_numbering_is_taken_in_and_nothing_sent_twice() {
        let d = tempfile::tempdir().unwrap();
        // The hand-off's copy: 1..=3 acknowledged, 4..=6 unsent.
        let mut s = spool(d.path(), 7, 3, &[4, 5, 6]);
        s.ack(4);
        // The store's: the PE sent up to 5 at its end and numbered up to 9.
        s.merge(Some(Numbering { job_id: "ab".into(), machine: json!({}), next_seq: 10, acked: 5 }), vec![env(6), env(7), env(8), env(9)]);
        assert_eq!(s.unsent.iter().map(seq).collect::<Vec<_>>(), [6, 7, 8, 9]);
        s.push("log", json!({"event": "log", "message": "up"}));
        assert_eq!(seq(s.unsent.last().unwrap()), 10);
        s.save().unwrap();
        let again = Spool::load(d.path()).unwrap().unwrap();
        assert_eq!(again.unsent.iter().map(seq).collect::<Vec<_>>(), [6, 7, 8, 9, 10]);
        assert_eq!((again.numbering.next_seq, again.numbering.acked), (11, 5));
        assert_eq!(again.config.token.as_deref(), Some("t"));
    }

    #[test]
    fn a_torn_line_is_skipped() {
        let mut bytes = encode(&[env(1), env(2)]);
        bytes.truncate(bytes.len() - 5);
        assert_eq!(decode(&bytes).len(), 1);
    }
}
