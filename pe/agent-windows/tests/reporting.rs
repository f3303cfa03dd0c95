//! `report send`'s logic over the files the PE and the agent leave: the spool in C:, the
//! store's journal found by its label (the stand-in volumes), the users' restore reports and
//! cleanup's. The POST is a function here; `winhttp.rs` tests the real one under Wine.

use inplace_agent::cleanup::locator::{parse_job_id, volume_head};
use inplace_agent::cleanup::DirMachine;
use inplace_agent::job::Job;
use inplace_agent::platform::PostError;
use inplace_agent::report::{Report, Status};
use inplace_agent::reporting::spool::Config;
use inplace_agent::reporting::store::Where;
use inplace_agent::reporting::{send, spool_dir, Outcome, Request};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::path::PathBuf;

const JOB: &str = "dad2c558c81849a99001b7402dfeabd1";

struct Machine {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    staged: PathBuf,
    volumes: DirMachine,
    /// Every envelope POSTed, in order.
    got: RefCell<Vec<Value>>,
}

fn envelope(seq: u64) -> Value {
    json!({"version": 1, "id": format!("{:032x}", seq), "job_id": JOB, "seq": seq, "origin": "pe", "kind": "log",
           "event": {"event": "log", "message": format!("pe {seq}")}})
}

fn lines(seqs: std::ops::RangeInclusive<u64>) -> String {
    seqs.map(|s| format!("{}\n", envelope(s))).collect()
}

fn state(next: u64, acked: u64) -> String {
    json!({"job_id": JOB, "machine": {"serial": null, "uuid": null, "mac": "52:54:00:12:34:56"}, "next_seq": next, "acked": acked}).to_string()
}

/// The hand-off's spool (the PE's events 1..=3) and, when `store`, the store on E: whose
/// journal holds the PE's events up to 5.
fn machine(store_after: &str, store: bool) -> Machine {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("inplace");
    let staged = base.join("staged");
    std::fs::create_dir_all(&staged).unwrap();
    let job = json!({"version": 1, "job_id": JOB, "store_after": store_after, "report": true, "users": [{"name": "Carol", "sid": null}]});
    std::fs::write(base.join("job.json"), job.to_string()).unwrap();
    std::fs::write(staged.join("Carol.json"), "{}").unwrap();
    let spool = spool_dir(&base, JOB);
    std::fs::create_dir_all(&spool).unwrap();
    std::fs::write(spool.join("config.json"), r#"{"url": "http://127.0.0.1:9/in"}"#).unwrap();
    std::fs::write(spool.join("state.json"), state(4, 0)).unwrap();
    std::fs::write(spool.join("spool.jsonl"), lines(1..=3)).unwrap();
    let volumes = DirMachine { dir: tmp.path().join("machine") };
    volumes.add_volume('C', "Windows", "NTFS", &[0u8; 16384]).unwrap();
    if store {
        volumes.add_volume('E', "INPLACE", "FAT32", &volume_head(parse_job_id(JOB).unwrap(), 512)).unwrap();
        let journal = volumes.dir.join("volumes/E/files/journal");
        std::fs::create_dir_all(&journal).unwrap();
        std::fs::write(journal.join("report-state.json"), state(6, 0)).unwrap();
        std::fs::write(journal.join("report-spool.jsonl"), lines(1..=5)).unwrap();
    }
    Machine { _tmp: tmp, base, staged, volumes, got: RefCell::new(Vec::new()) }
}

impl Machine {
    fn job(&self) -> Job {
        Job::load(&self.base.join("job.json")).unwrap()
    }

    fn send_with(&self, answer: &dyn Fn() -> Result<u16, PostError>) -> Outcome {
        let job = self.job();
        let req = Request { base: &self.base, staged: &self.staged, job: &job, store: Where::Find(&self.volumes) };
        let post = |c: &Config, body: &[u8]| {
            assert_eq!(c.url, "http://127.0.0.1:9/in");
            let r = answer();
            if r.is_ok() {
                self.got.borrow_mut().extend(serde_json::from_slice::<Vec<Value>>(body).unwrap());
            }
            r
        };
        send(&req, &post).unwrap()
    }

    fn send(&self) -> Outcome {
        self.send_with(&|| Ok(200))
    }

    fn restored(&self, status: Status) {
        let mut r = Report::new("Carol", &self.staged.join("Carol"), status);
        r.job_id = Some(JOB.into());
        r.write(&self.base.join("restore-Carol.json")).unwrap();
        if status == Status::Complete {
            let _ = std::fs::remove_file(self.staged.join("Carol.json"));
        }
    }

    fn seqs(&self) -> Vec<u64> {
        self.got.borrow().iter().map(|e| e["seq"].as_u64().unwrap()).collect()
    }

    fn kinds_after(&self, seq: u64) -> Vec<String> {
        self.got.borrow().iter().filter(|e| e["seq"].as_u64().unwrap() > seq).map(|e| e["kind"].as_str().unwrap().to_string()).collect()
    }
}

#[test]
fn the_store_is_found_by_its_label_and_the_first_boot_goes_on_after_the_pes_last_event() {
    let m = machine("keep", true);
    let out = m.send();
    assert_eq!((out.sent, out.unsent, out.finished), (6, 0, false), "{:?}", out.notes);
    assert_eq!(m.seqs(), [1, 2, 3, 4, 5, 6]);
    let up = m.got.borrow()[5].clone();
    assert_eq!((up["origin"].as_str(), up["kind"].as_str()), (Some("first-boot"), Some("log")));
    assert!(up["event"]["message"].as_str().unwrap().contains("Carol"));
    assert_eq!(up["machine"]["mac"], "52:54:00:12:34:56", "the PE's identity of the machine");
    assert_eq!(up["id"].as_str().unwrap().len(), 32);

    // Carol's restore did not complete: failed, then her report; the task stays.
    m.restored(Status::Incomplete);
    let out = m.send();
    assert_eq!((out.sent, out.finished), (2, false));
    assert_eq!(m.kinds_after(6), ["failed", "done"]);
    let failed = m.got.borrow()[6].clone();
    assert_eq!(failed["event"]["error"]["step"], "restore");
    assert!(failed["event"]["error"]["problem"].as_str().unwrap().contains("restore-Carol.json"), "{failed}");

    // Run again and complete: the changed report goes, then nothing is left to do.
    m.restored(Status::Complete);
    let out = m.send();
    assert_eq!((out.sent, out.unsent, out.finished), (1, 0, true));
    assert_eq!(m.got.borrow()[8]["event"]["report"]["restore"]["status"], "complete");
    let out = m.send();
    assert_eq!((out.sent, out.finished), (0, true));
    assert_eq!(m.seqs(), (1..=9).collect::<Vec<_>>(), "every envelope once, in order");
}

#[test]
fn a_collector_that_is_down_loses_nothing_and_gets_nothing_twice() {
    let m = machine("keep", true);
    let out = m.send_with(&|| Err(PostError::Later("cannot connect to the collector".into())));
    assert_eq!((out.sent, out.unsent), (0, 6));
    assert!(matches!(out.error, Some(PostError::Later(_))));
    m.restored(Status::Complete);
    let refused = m.send_with(&|| Err(PostError::Refused("HTTP 403".into())));
    assert_eq!((refused.sent, refused.unsent, refused.finished), (0, 7, false));
    let out = m.send();
    assert_eq!((out.sent, out.unsent, out.finished), (7, 0, true));
    assert_eq!(m.seqs(), (1..=7).collect::<Vec<_>>());
}

#[test]
fn without_the_store_the_pes_events_go_and_the_first_boots_wait_for_it() {
    let m = machine("keep", false);
    m.restored(Status::Complete);
    let out = m.send();
    assert_eq!((out.sent, out.finished), (3, false));
    assert!(out.notes.iter().any(|n| n.contains("Give the INPLACE partition a drive letter")), "{:?}", out.notes);
    assert_eq!(m.seqs(), [1, 2, 3]);
    // The store gets its letter: the PE's last events, then the first boot's.
    let again = machine("keep", true);
    std::fs::rename(again.volumes.dir.join("volumes/E"), m.volumes.dir.join("volumes/E")).unwrap();
    let out = m.send();
    assert_eq!((out.sent, out.finished), (4, true));
    assert_eq!(m.seqs(), [1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(m.kinds_after(5), ["log", "done"]);
}

/// `inplace.exe cleanup` as a process, its volumes the stand-in (`$INPLACE_AGENT_VOLUMES`).
#[cfg(not(windows))]
#[test]
fn cleanup_keeps_the_stores_events_in_c_before_it_deletes_the_store() {
    let m = machine("delete", true);
    m.restored(Status::Complete);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_inplace-agent"))
        .args(["cleanup", "--staged"])
        .arg(&m.staged)
        .env("INPLACE_AGENT_VOLUMES", &m.volumes.dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(!m.volumes.dir.join("volumes/E").exists(), "the store is gone");
    let log = std::fs::read_to_string(m.base.join("cleanup.log")).unwrap();
    assert!(log.contains("the store's events are kept"), "{log}");

    let out = m.send();
    assert_eq!((out.sent, out.unsent, out.finished), (8, 0, true), "{:?}", out.notes);
    assert_eq!(m.seqs(), (1..=8).collect::<Vec<_>>());
    assert_eq!(m.kinds_after(5), ["log", "done", "done"]);
    assert_eq!(m.got.borrow()[7]["event"]["report"]["cleanup"]["status"], "deleted");
}

/// Once `report send` has taken the store's events, cleanup leaves the spool alone.
#[cfg(not(windows))]
#[test]
fn cleanup_after_report_send_leaves_the_spool_to_it() {
    let m = machine("delete", true);
    m.restored(Status::Complete);
    assert_eq!(m.send().sent, 7);
    let spool = std::fs::read(spool_dir(&m.base, JOB).join("state.json")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_inplace-agent"))
        .args(["cleanup", "--staged"])
        .arg(&m.staged)
        .env("INPLACE_AGENT_VOLUMES", &m.volumes.dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let log = std::fs::read_to_string(m.base.join("cleanup.log")).unwrap();
    assert!(!log.contains("report spool"), "{log}");
    assert_eq!(std::fs::read(spool_dir(&m.base, JOB).join("state.json")).unwrap(), spool, "the spool is unchanged");
    let out = m.send();
    assert_eq!((out.sent, out.finished), (1, true));
    assert_eq!(m.seqs(), (1..=8).collect::<Vec<_>>());
}

#[test]
fn no_report_table_no_spool_nothing_to_do() {
    let m = machine("keep", true);
    std::fs::remove_dir_all(spool_dir(&m.base, JOB)).unwrap();
    let out = m.send();
    assert_eq!((out.sent, out.finished), (0, true));
    assert!(m.got.borrow().is_empty());
}
