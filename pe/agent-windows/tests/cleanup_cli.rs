//! `inplace.exe cleanup` as a process on the host, its volumes described by
//! `$INPLACE_AGENT_VOLUMES` (the Linux stand-in): exit codes, stdout and cleanup.json.
#![cfg(not(windows))]

use inplace_agent::cleanup::locator::{parse_job_id, volume_head};
use inplace_agent::cleanup::DirMachine;
use inplace_agent::report::{Report, Status};
use std::path::Path;
use std::process::{Command, Output};

const JOB: &str = "dad2c558c81849a99001b7402dfeabd1";

fn setup(tmp: &Path) -> DirMachine {
    let base = tmp.join("inplace");
    std::fs::create_dir_all(base.join("staged")).unwrap();
    let job = serde_json::json!({"version": 1, "job_id": JOB, "store_after": "delete", "users": [{"name": "Carol", "sid": null}]});
    std::fs::write(base.join("job.json"), job.to_string()).unwrap();
    let machine = DirMachine { dir: tmp.join("machine") };
    machine.add_volume('E', "INPLACE", "FAT32", &volume_head(parse_job_id(JOB).unwrap(), 512)).unwrap();
    machine
}

fn cleanup(tmp: &Path, extra: &[&str]) -> (Output, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_inplace-agent"))
        .args(["cleanup", "--staged"])
        .arg(tmp.join("inplace/staged"))
        .args(extra)
        .env("INPLACE_AGENT_VOLUMES", tmp.join("machine"))
        .output()
        .unwrap();
    let report = std::fs::read(tmp.join("inplace/cleanup.json")).unwrap();
    (out, serde_json::from_slice(&report).unwrap())
}

#[test]
fn waits_with_exit_4_then_dry_runs_then_deletes() {
    let tmp = tempfile::tempdir().unwrap();
    let machine = setup(tmp.path());

    let (out, json) = cleanup(tmp.path(), &["--task", "inplace-cleanup"]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("waiting for Carol (never logged on)"), "{stdout}");
    assert_eq!(json["status"], "waiting");
    assert_eq!(json["pending"], serde_json::json!([{"user": "Carol", "why": "never logged on"}]));
    assert_eq!(json["store_volume"], serde_json::Value::Null);

    let mut r = Report::new("Carol", &tmp.path().join("inplace/staged/Carol"), Status::Complete);
    r.job_id = Some(JOB.into());
    r.write(&tmp.path().join("inplace/restore-Carol.json")).unwrap();

    let (out, json) = cleanup(tmp.path(), &["--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("store volume: E:") && stdout.contains("  delete volume\n"), "{stdout}");
    assert_eq!(json["status"], "dry-run");
    assert_eq!(json["script"][0], "select volume E");
    assert!(!machine.dir.join("commands.log").exists());

    let (out, json) = cleanup(tmp.path(), &["--task", "inplace-cleanup"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    for key in ["status", "job_id", "store_after", "pending", "store_volume", "script", "output", "message"] {
        assert!(json.get(key).is_some(), "cleanup.json lacks {key}: {json}");
    }
    assert_eq!(json["status"], "deleted");
    assert_eq!(json["job_id"], JOB);
    assert_eq!(json["store_after"], "delete");
    assert_eq!(json["store_volume"], "E:");
    assert!(json["output"].as_str().unwrap().contains("delete volume: done"), "{json}");
    assert!(tmp.path().join("inplace/cleanup.log").exists());

    let (out, json) = cleanup(tmp.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "the store is gone: {out:?}");
    assert_eq!(json["status"], "failed");
}

#[test]
fn usage_errors_exit_3() {
    let out = Command::new(env!("CARGO_BIN_EXE_inplace-agent")).args(["cleanup", "--task"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
}
