//! Reporting a job to a collector (the preset's `[report]`), on a host: `inplace run` on a
//! small old machine with a real collector on 127.0.0.1 (test code only). Every envelope is
//! checked against `docs/reporting.schema.json`. With the collector down, the job runs as
//! fast and the events wait in the store's journal; `inplace report send` sends a spool once,
//! in order. The first boot's part, in the new OS, is in `job_e2e`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use inplace_tests::collector::{free_port, ordered, schema_errors, Collector};
use inplace_tests::job_fixtures::{linux_disk, new_os_image};
use inplace_tests::{inplace_bin, static_inplace};
use serde_json::Value;

const TOKEN: &str = "lab-7f3a";

fn preset(dir: &Path, name: &str, report_url: &str, extra: &str) -> PathBuf {
    let (image, digest) = new_os_image(dir);
    let p = dir.join(format!("{name}.toml"));
    let text = format!(
        "name = \"{name}\"\nconfirm = false\n{extra}\n[image]\nsource = \"{}\"\nsha256 = \"{digest}\"\n\n[report]\nurl = \"{report_url}\"\ntoken = \"{TOKEN}\"\ninterval = 1\n",
        image.display()
    );
    std::fs::write(&p, text).unwrap();
    p
}

fn run(preset: &Path, disk: &Path) -> Output {
    Command::new(inplace_bin()).args(["run", "--preset"]).arg(preset).arg("--disk").arg(disk).arg("--agent").arg(static_inplace()).output().unwrap()
}

fn kinds(envs: &[Value]) -> Vec<String> {
    envs.iter().map(|e| e["kind"].as_str().unwrap_or("?").to_string()).collect()
}

/// The steps that began, in order, from the `phase` envelopes.
fn steps_begun(envs: &[Value]) -> Vec<String> {
    envs.iter().filter(|e| e["event"]["event"] == "step").map(|e| e["event"]["step"].as_str().unwrap().to_string()).collect()
}

/// A file of the store partition (FAT32), read with mtools.
fn store_file(disk: &Path, path: &str) -> Option<Vec<u8>> {
    let parts = inplace_tests::e2e::partitions(disk);
    let store = parts.iter().find(|p| p.3 == "0700")?;
    let o = Command::new("mtype").args(["-i", &format!("{}@@{}", disk.display(), store.1), &format!("::/{path}")]).output().ok()?;
    o.status.success().then_some(o.stdout)
}

#[test]
fn a_job_reports_every_step_to_the_collector_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let disk = linux_disk(dir.path(), "old", 320);
    let collector = Collector::start();
    let p = preset(dir.path(), "reported", &format!("http://127.0.0.1:{}/events", collector.port), "");
    let o = run(&p, &disk);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "inplace run: {err}");
    let j = inplace::job::rollback::find_job(&disk).unwrap().expect("the journal").journal;

    let (envs, missing) = ordered(&collector.envelopes(), &j.job_id);
    assert!(missing.is_empty(), "sequence numbers missing: {missing:?}");
    assert!(err.contains(&format!("report: {} events sent to http://127.0.0.1:", envs.len())), "{err}");
    assert_eq!(collector.envelopes().len(), envs.len(), "an envelope was sent twice");
    assert_eq!(schema_errors(&envs), Vec::<String>::new());
    // start, every step, done; each with the machine and the job.
    assert_eq!(envs[0]["event"]["event"], "step", "the plan step comes first");
    let k = kinds(&envs);
    assert_eq!(k.iter().filter(|k| *k == "start").count(), 1, "{k:?}");
    assert_eq!(steps_begun(&envs), ["plan", "carve", "capture", "verify", "stage", "lay-down", "hand-off"]);
    let last = envs.last().unwrap();
    assert_eq!((last["kind"].as_str(), last["origin"].as_str()), (Some("done"), Some("pe")));
    assert_eq!(last["event"]["report"]["state"], "handed-off");
    assert_eq!(last["event"]["report"]["steps"].as_array().unwrap().len(), j.steps.len());
    assert!(k.contains(&"progress".to_string()), "no progress at a 1 s interval: {k:?}");
    assert!(envs.iter().all(|e| e["machine"].is_object() && e["job_id"] == j.job_id.as_str()));
    // Every request carried the token.
    let auth = collector.authorization();
    assert!(!auth.is_empty() && auth.iter().all(|a| a.as_deref() == Some(&format!("Bearer {TOKEN}"))), "{auth:?}");
    // The store's journal keeps nothing unsent, and the numbering for the first boot.
    let state: Value = serde_json::from_slice(&store_file(&disk, "journal/report-state.json").expect("the numbering in the store")).unwrap();
    assert_eq!(state["next_seq"].as_u64(), Some(envs.len() as u64 + 1));
    assert_eq!(store_file(&disk, "journal/report-spool.jsonl").unwrap_or_default(), b"");
}

#[test]
fn with_the_collector_down_the_job_runs_and_the_spool_is_sent_later_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let disk = linux_disk(dir.path(), "old", 320);
    let port = free_port();
    let p = preset(dir.path(), "offline", &format!("http://127.0.0.1:{port}/events"), "");
    let o = run(&p, &disk);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "a dead collector stopped the job: {err}");
    assert!(err.contains("report: 0 events sent, ") && err.contains("not sent ("), "{err}");
    assert!(err.contains("sent again on the new OS's first boot"), "{err}");
    let j = inplace::job::rollback::find_job(&disk).unwrap().expect("the journal").journal;
    assert_eq!(j.state, inplace::job::state::State::HandedOff);

    // Everything is in the store's spool, numbered from 1, none acknowledged.
    let spool = store_file(&disk, "journal/report-spool.jsonl").expect("the spool in the store");
    let spooled: Vec<Value> = spool.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect();
    let seqs: Vec<u64> = spooled.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=spooled.len() as u64).collect::<Vec<_>>());
    assert_eq!(spooled.last().unwrap()["kind"], "done");
    assert_eq!(schema_errors(&spooled), Vec::<String>::new());
    let state = store_file(&disk, "journal/report-state.json").unwrap();
    let n: Value = serde_json::from_slice(&state).unwrap();
    assert_eq!((n["acked"].as_u64(), n["job_id"].as_str()), (Some(0), Some(j.job_id.as_str())));

    // The spool as the first boot keeps it, sent by `inplace report send` once the collector is up.
    let send_dir = dir.path().join("report");
    let job_dir = send_dir.join(&j.job_id);
    std::fs::create_dir_all(&job_dir).unwrap();
    std::fs::write(job_dir.join("spool.jsonl"), &spool).unwrap();
    std::fs::write(job_dir.join("state.json"), &state).unwrap();
    std::fs::write(job_dir.join("config.json"), serde_json::to_vec(&j.plan.preset.report).unwrap()).unwrap();
    let send = || Command::new(inplace_bin()).args(["report", "send", "--wait", "5", "--dir"]).arg(&send_dir).output().unwrap();
    let o = send();
    assert_eq!(o.status.code(), Some(1), "sent with no collector: {}", String::from_utf8_lossy(&o.stdout));
    let collector = Collector::start_on(port);
    let o = send();
    assert!(o.status.success(), "report send: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let got = collector.envelopes();
    assert_eq!(got.iter().map(|e| e["seq"].as_u64().unwrap()).collect::<Vec<_>>(), seqs, "not everything, or not in order, or twice");
    assert_eq!(got.iter().map(|e| e["id"].clone()).collect::<Vec<_>>(), spooled.iter().map(|e| e["id"].clone()).collect::<Vec<_>>());
    // Sent is sent: a second run sends nothing.
    assert!(send().status.success());
    assert_eq!(collector.envelopes().len(), got.len());
}

#[test]
fn a_refused_job_is_reported_as_failed() {
    let dir = tempfile::tempdir().unwrap();
    let disk = linux_disk(dir.path(), "old", 320);
    let before = inplace_tests::sha256_file(&disk);
    let collector = Collector::start();
    let url = format!("http://127.0.0.1:{}/events", collector.port);
    let p = preset(dir.path(), "wrong-disk", &url, "[disk]\nserial = \"NO-SUCH-SERIAL\"\n");
    let o = run(&p, &disk);
    assert!(!o.status.success());
    assert_eq!(inplace_tests::sha256_file(&disk), before, "a refused job wrote to the disk");
    let envs = collector.envelopes();
    let last = envs.last().expect("nothing reached the collector");
    assert_eq!(last["kind"], "failed");
    assert_eq!(last["event"]["error"]["kind"], "refused");
    assert!(last["event"]["error"]["problem"].as_str().unwrap().contains("NO-SUCH-SERIAL"), "{last}");
    let (_, missing) = ordered(&envs, last["job_id"].as_str().unwrap());
    assert!(missing.is_empty(), "{missing:?}");
    assert_eq!(schema_errors(&envs), Vec::<String>::new());
}

#[test]
fn the_schema_rejects_what_is_not_an_envelope() {
    let good = serde_json::json!({
        "version": 1, "id": "0123456789abcdef0123456789abcdef", "job_id": "0123456789abcdef0123456789abcdef",
        "machine": {"serial": null, "uuid": null, "mac": "52:54:00:12:34:56"}, "seq": 1, "time": "2026-12-02T08:00:00.000Z",
        "origin": "pe", "kind": "log", "event": {"event": "log", "message": "hello"}
    });
    assert_eq!(schema_errors(std::slice::from_ref(&good)), Vec::<String>::new());
    for (field, bad) in [("seq", serde_json::json!(0)), ("kind", serde_json::json!("phase")), ("event", serde_json::json!({"event": "log"}))] {
        let mut e = good.clone();
        e[field] = bad;
        assert!(!schema_errors(&[e]).is_empty(), "{field}");
    }
}

/// Sends one event through a reporter to `url`, trusting `ca`; the status after a flush.
fn send_one(url: &str, ca: Option<String>) -> (inplace::report::reporter::Status, Vec<String>) {
    use inplace::progress::{Event, Sink};
    let notes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let n = notes.clone();
    let config = inplace::report::ReportConfig { url: url.into(), ca, ..Default::default() };
    let r = inplace::report::Reporter::start(
        &config,
        Default::default(),
        inplace::report::envelope::Origin::Pe,
        None,
        Box::new(move |m: &str| n.lock().unwrap().push(m.to_string())),
    )
    .unwrap();
    r.event(&Event::Job { job_id: "ab".repeat(16), name: "tls".into(), resumed: false });
    let status = r.flush(std::time::Duration::from_secs(10));
    let notes = notes.lock().unwrap().clone();
    (status, notes)
}

#[test]
fn a_collector_with_an_untrusted_certificate_is_refused_unless_its_ca_is_pinned() {
    let (collector, ca) = Collector::start_tls();
    let url = format!("https://localhost:{}/events", collector.port);
    let (status, notes) = send_one(&url, None);
    assert!(status.refused && status.unsent == 1 && status.sent == 0, "{status:?}");
    let note = notes.join("\n");
    assert!(note.contains(&format!("the collector {url}: TLS error")) && note.contains("UnknownIssuer"), "{note}");
    assert!(note.contains("pin its CA with ca in the preset's [report] table") && note.contains("kept in the spool"), "{note}");
    assert!(collector.envelopes().is_empty());
    let (status, _) = send_one(&url, Some(ca));
    assert_eq!((status.sent, status.unsent, status.refused), (1, 0, false), "{status:?}");
    assert_eq!(collector.envelopes().len(), 1);
}

#[test]
fn a_collector_that_comes_back_gets_everything_kept_meanwhile_and_the_spool_folder_shrinks() {
    use inplace::progress::{Event, Sink};
    let port = free_port();
    let spool = tempfile::tempdir().unwrap();
    let config = inplace::report::ReportConfig { url: format!("http://127.0.0.1:{port}/events"), ..Default::default() };
    let r = inplace::report::Reporter::start(&config, Default::default(), inplace::report::envelope::Origin::Pe, Some(spool.path().to_path_buf()), Box::new(|_| {}))
        .unwrap();
    let job = "cd".repeat(16);
    r.event(&Event::Job { job_id: job.clone(), name: "backoff".into(), resumed: false });
    for i in 0..5 {
        r.event(&Event::log(format!("line {i}")));
    }
    // Nothing listens: the envelopes wait, in memory and in the spool folder (the stick's).
    let status = r.flush(std::time::Duration::from_secs(2));
    assert_eq!((status.sent, status.unsent, status.refused), (0, 6, false), "{status:?}");
    assert!(status.last_error.as_deref().unwrap_or("").contains(&format!("the collector http://127.0.0.1:{port}/events")), "{status:?}");
    let kept = std::fs::read_to_string(spool.path().join(&job).join("spool.jsonl")).unwrap();
    assert_eq!(kept.lines().count(), 6);
    // The collector comes up: the next try (a flush tries at once) sends all six, in order, once.
    let collector = Collector::start_on(port);
    let status = r.flush(std::time::Duration::from_secs(40));
    assert_eq!((status.sent, status.unsent), (6, 0), "{status:?}");
    let seqs: Vec<u64> = collector.envelopes().iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
    assert_eq!(std::fs::read_to_string(spool.path().join(&job).join("spool.jsonl")).unwrap(), "");
}

#[test]
fn every_kind_of_event_validates_against_the_schema() {
    use inplace::error::{Error, Hint};
    use inplace::progress::Event;
    use inplace::step::Step;
    let error = Error::refused(Step::Plan, "no disk matches").hint(Hint::FixPreset).advice("check the serial");
    let events = [
        Event::Job { job_id: "ef".repeat(16), name: "every".into(), resumed: true },
        Event::Step { step: Step::LayDown },
        Event::Phase { name: "writing".into(), total: 7 },
        Event::Bytes { done: 1, total: 7, rate: 1.5, eta_secs: None },
        Event::Entries { done: 1, total: 0, current: "/home/alice".into() },
        Event::log("a line"),
        Event::warning("careful"),
        Event::Resized { number: 2, fs: "ext4".into(), before: 1, after: 2, secs: 0.5 },
        Event::StepDone { step: Step::LayDown, secs: 1.0, bytes: 7 },
        Event::Failed { error },
        Event::Done { report: serde_json::json!({"state": "handed-off"}) },
    ];
    let mut o = inplace::report::outbox::Outbox::new(inplace::report::envelope::Origin::FirstBoot, Default::default(), std::time::Duration::ZERO);
    for e in &events {
        o.push(e, std::time::Instant::now());
    }
    let envs: Vec<Value> = o.batch(100).iter().map(|e| serde_json::to_value(e).unwrap()).collect();
    assert_eq!(envs.len(), events.len());
    assert_eq!(schema_errors(&envs), Vec::<String>::new());
    assert_eq!(kinds(&envs), ["start", "phase", "phase", "progress", "progress", "log", "warning", "log", "phase", "failed", "done"]);
}
