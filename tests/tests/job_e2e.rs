//! The whole job on real systems under QEMU (TCG): the PE booted from its ISO migrates a real
//! Debian 12 old machine to a real Debian 12 image unattended; the new OS restores on its first
//! boot; then the disk is checked byte by byte against the old machine's manifest and a
//! migrated user logs in with the old password.
//!
//! The preset reports to a collector that is down for the whole PE run: the PE's events wait in
//! the store's journal, and the new OS sends them on its first boot, with its own restore
//! report, each once and in order.

use std::time::Duration;

use inplace_tests::collector::{free_port, ordered, schema_errors, Collector};
use inplace_tests::e2e;

#[test]
fn linux_to_linux_from_the_iso_unattended() {
    let dir = tempfile::tempdir().unwrap();
    let (disk, manifest, _) = e2e::old_machine_copy(dir.path(), false);
    let (image, digest) = e2e::new_os_image();
    let port = free_port();
    let report = format!("\n[report]\nurl = \"http://10.0.2.2:{port}/events\"\n");
    let preset = e2e::preset("e2e from the ISO", e2e::ISO_IMAGE, &digest, "delete", &report);
    let iso = e2e::pe_iso(dir.path(), &preset, &image);

    // The PE: boots from the ISO on UEFI, runs the job, powers off.
    let e2e::PeJob { job_secs, serial: pe_log } = e2e::pe_job(&iso, &disk, "OLDBOX-1");
    for step in ["== carve", "== capture", "== lay-down", "== hand-off"] {
        assert!(pe_log.contains(step), "the PE did not run {step}:\n{pe_log}");
    }
    // The PE grew the new root with the e2fsprogs it carries, before the hand-off.
    let grown = pe_log.lines().find(|l| l.contains("ext4 grown from")).unwrap_or_else(|| panic!("the PE did not grow the new root:\n{pe_log}"));
    eprintln!("in the PE: {}", grown.trim());

    assert!(pe_log.contains("report: 0 events sent, "), "the PE did not say its events wait:\n{pe_log}");

    // The new OS: restores before the login prompt, then alice logs in with her old password;
    // the collector is up now, and the new OS sends the PE's events and its own.
    let collector = Collector::start_on(port);
    let first_boot_done = |envs: &[serde_json::Value]| envs.iter().any(|e| e["origin"] == "first-boot" && e["kind"] == "done");
    let boot = e2e::boot_and_log_in_then(&disk, &manifest, || {
        assert!(collector.wait_until(Duration::from_secs(300), first_boot_done), "the first boot sent no report: {:?}", collector.envelopes().len());
    });
    eprintln!("job in the PE: {job_secs:.0} s; first boot to login: {:.0} s", boot.as_secs_f64());

    // The disk: every file, the settings, the store gone and the root grown, the report, the
    // journal at done, the ESP.
    let bad = e2e::check_done(&disk, &manifest);
    assert!(bad.is_empty(), "{} problems:\n  {}", bad.len(), bad.join("\n  "));

    // The collector: every envelope of the job once, in order, from start to the first boot's
    // done with its restore report.
    let got = collector.envelopes();
    let job_id = e2e::journal_copy(&disk).unwrap()["job_id"].as_str().unwrap().to_string();
    let (envs, missing) = ordered(&got, &job_id);
    assert!(missing.is_empty(), "sequence numbers missing: {missing:?}");
    assert_eq!(got.len(), envs.len(), "some envelopes came twice");
    let seqs: Vec<u64> = got.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "not sent in order: {seqs:?}");
    assert_eq!(schema_errors(&envs), Vec::<String>::new());
    let begun: Vec<&str> = envs.iter().filter(|e| e["event"]["event"] == "step").map(|e| e["event"]["step"].as_str().unwrap()).collect();
    assert_eq!(begun, ["plan", "carve", "capture", "verify", "stage", "lay-down", "hand-off", "restore", "cleanup"]);
    assert_eq!(envs.iter().filter(|e| e["kind"] == "start").count(), 1);
    let pe_done = envs.iter().find(|e| e["kind"] == "done" && e["origin"] == "pe").expect("the PE's done");
    assert_eq!(pe_done["event"]["report"]["state"], "handed-off");
    let last = envs.last().unwrap();
    assert_eq!((last["kind"].as_str(), last["origin"].as_str()), (Some("done"), Some("first-boot")));
    assert_eq!(last["event"]["report"]["restore"]["totals"]["failed"], 0, "{}", last["event"]["report"]);
    assert_eq!(last["event"]["report"]["journal"]["state"], "done");
    eprintln!("report: {} envelopes, {} from the PE", envs.len(), envs.iter().filter(|e| e["origin"] == "pe").count());
}
