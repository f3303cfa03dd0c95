//! Jobs with several sources, on real systems: the old Debian 12 machine with an NTFS data
//! partition holding Carol's Windows-like profile (`debian::old_machine_with_ntfs`: 1 = ESP,
//! 2 = ext4 root with alice and bob, 3 = NTFS `DATA` with `Users\Carol`, no Windows).
//!
//! - On the host, through the CLI: the plan, `inplace run` (the built PE's `inplace` as the
//!   restore agent) and the store it leaves — two captures, Carol's read back against the
//!   manifest — and a power cut in the second capture that `inplace resume` finishes without
//!   touching the first.
//! - Under QEMU (TCG): the PE from its ISO migrates the machine unattended, the new OS restores
//!   on its first boot, and the disk is checked: every file of alice, bob and Carol (in
//!   `/home/carol`), the data partition byte for byte, the new table keeping it.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use inplace::migrate::store::{CaptureName, CaptureState, EntrySink, Manifest, Store};
use inplace_tests::debian::{self, Kind};
use inplace_tests::e2e::{self, check_migrated, partitions, read_file, root_offset, stat};
use inplace_tests::qemu::{Controller, Vm};

const BOOT_LIMIT: Duration = Duration::from_secs(8 * 60);

fn second() -> CaptureName {
    CaptureName::nth(2).unwrap()
}

/// The built PE's static `inplace`, the restore agent a host run installs into the new OS.
fn agent() -> PathBuf {
    let p = inplace_tests::workspace().join("target/pe/inplace");
    assert!(p.exists(), "{} is missing: run scripts/build-pe", p.display());
    p
}

fn inplace(args: &[&str]) -> Output {
    Command::new(inplace_tests::inplace_bin()).args(args).output().expect("running inplace")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A preset on the host: the new OS image by its absolute path, pinned; `extra` appended.
fn host_preset(dir: &Path, name: &str, extra: &str) -> PathBuf {
    let (image, digest) = e2e::new_os_image();
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, e2e::preset(name, &image.display().to_string(), &digest, "keep", extra)).unwrap();
    p
}

/// `inplace run` of `preset` on `disk`, with more arguments.
fn run_job(disk: &Path, preset: &Path, more: &[&str]) -> Output {
    let (d, p, a) = (disk.display().to_string(), preset.display().to_string(), agent().display().to_string());
    let mut args = vec!["run", "--preset", &p, "--disk", &d, "--agent", &a];
    args.extend_from_slice(more);
    inplace(&args)
}

/// The bytes of partition `number` of the old machine, as a sha256.
fn partition_sha(disk: &Path, info: &debian::DebianDisk, number: u32) -> String {
    let p = info.partition(number);
    e2e::range_sha256(disk, p.start, p.size)
}

/// What an entry's data hashes to.
#[derive(Default)]
struct Sha(sha2::Sha256, u64);

impl EntrySink for Sha {
    fn data(&mut self, _offset: u64, bytes: &[u8]) -> std::io::Result<()> {
        sha2::Digest::update(&mut self.0, bytes);
        self.1 += bytes.len() as u64;
        Ok(())
    }
    fn hole(&mut self, _offset: u64, len: u64) -> std::io::Result<()> {
        let zeros = vec![0u8; 1 << 16];
        let mut left = len;
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            sha2::Digest::update(&mut self.0, &zeros[..n]);
            left -= n as u64;
        }
        self.1 += len;
        Ok(())
    }
    fn finish(&mut self, _size: u64) -> std::io::Result<()> {
        Ok(())
    }
}

/// Capture `name` of the store on `disk`, its manifest.
fn manifest_of(disk: &Path, name: CaptureName) -> Manifest {
    let mut store = Store::open(disk, false).unwrap();
    store.select(name);
    store.manifest().unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Checks Carol's capture (capture.2 of the store on `disk`) against the old machine's
/// manifest: every file of partition 3 there with its size and sha256, her junk left out.
fn check_carol_capture(disk: &Path, want: &debian::Manifest) {
    let mut store = Store::open(disk, false).unwrap();
    store.select(second());
    let m = store.manifest().unwrap();
    assert_eq!((m.info.partition, m.info.fs.as_deref(), m.info.family.as_str()), (3, Some("ntfs"), "windows"));
    assert!(m.info.os.is_none(), "a data partition, no OS: {:?}", m.info.os);
    assert_eq!(m.users, ["Carol"]);
    let carol: Vec<&debian::ManifestEntry> = want.entries.iter().filter(|e| e.partition == 3).collect();
    assert!(carol.len() >= 10, "{} entries of Carol's", carol.len());
    for e in &carol {
        let (i, got) = m
            .entries
            .iter()
            .enumerate()
            .find(|(_, s)| s.entry.path.as_bytes() == e.path.as_slice())
            .unwrap_or_else(|| panic!("{}: not in capture.2", e.display()));
        assert_eq!(got.entry.user.as_deref(), Some("Carol"), "{}", e.display());
        if e.kind == Kind::File {
            let mut sha = Sha::default();
            store.read_entry(&m, i, &mut sha).unwrap();
            let hex = format!("{:x}", sha2::Digest::finalize(sha.0));
            assert_eq!((sha.1, Some(hex)), (e.size, e.sha256.clone()), "{}", e.display());
        }
    }
    assert!(!m.entries.iter().any(|s| s.entry.path.to_string().contains("Temp")), "the Temp junk is captured");
    assert!(
        m.skipped.iter().any(|s| s.source == "/Users/Carol/AppData/Local/Temp"),
        "Temp is reported as left out: {:?}",
        m.skipped
    );
    // The first capture is the old OS's, as ever.
    store.select(CaptureName::FIRST);
    let os = store.manifest().unwrap();
    assert_eq!((os.info.partition, os.users.clone()), (2, vec!["alice".to_string(), "bob".to_string()]));
}

#[test]
fn the_plan_takes_the_data_partition_with_the_windows_rules() {
    let dir = tempfile::tempdir().unwrap();
    let (disk, _, _) = e2e::old_machine_copy(dir.path(), true);
    let d = disk.display().to_string();
    let plan = |extra: &str| {
        let p = host_preset(dir.path(), "plan", extra);
        inplace(&["run", "--preset", p.to_str().unwrap(), "--disk", &d, "--dry-run"])
    };
    let o = plan("");
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    let captures: Vec<&str> = out.lines().filter(|l| l.starts_with("capture:")).collect();
    assert_eq!(captures.len(), 2, "{out}");
    assert!(captures[0].contains("partition 2 (ext4") && captures[0].contains("into capture/, users alice, bob"), "{out}");
    assert!(
        captures[1].contains("partition 3 (ntfs, data partition \"DATA\", windows rules) into capture.2/, users Carol"),
        "{out}"
    );
    assert!(out.contains("excluded by the rule AppData/Local/Temp/**"), "{out}");
    assert!(out.contains("keep: 3"), "the data partition is kept: {out}");

    // The preset picks: the OS alone; a partition without profiles is refused, by name.
    let o = plan("\n[migrate]\nsources = [2]\n");
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(text(&o).lines().filter(|l| l.starts_with("capture:")).count(), 1, "{}", text(&o));
    for (sources, says) in [("[2, 1]", "partition 1"), ("[2, 9]", "partition 9")] {
        let o = plan(&format!("\n[migrate]\nsources = {sources}\n"));
        assert!(!o.status.success() && text(&o).contains(says), "{sources}: {}", text(&o));
    }
    // A user named in the preset may be on the data partition.
    let o = plan("\n[migrate]\nusers = [\"Carol\"]\n");
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("into capture/, users none") && out.contains("into capture.2/, users Carol"), "{out}");
}

#[test]
fn a_host_run_keeps_carol_in_a_second_capture_and_a_cut_there_resumes_it() {
    let dir = tempfile::tempdir().unwrap();
    let (disk, manifest, info) = e2e::old_machine_copy(dir.path(), true);
    let data_before = partition_sha(&disk, &info, 3);
    let preset = host_preset(dir.path(), "multi on the host", "");

    let t = Instant::now();
    let o = run_job(&disk, &preset, &[]);
    let run_secs = t.elapsed().as_secs_f64();
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("handed-off"), "{}", text(&o));
    let store = Store::open(&disk, false).unwrap();
    assert_eq!(store.captures().unwrap(), [CaptureName::FIRST, second()]);
    drop(store);
    check_carol_capture(&disk, &manifest);
    let v: serde_json::Value = serde_json::from_slice(&inplace(&["store", "verify", "--store", disk.to_str().unwrap(), "--json"]).stdout).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    let names: Vec<&str> = v["captures"].as_array().unwrap().iter().map(|c| c["capture"].as_str().unwrap()).collect();
    assert_eq!(names, ["capture", "capture.2"], "{v}");
    assert_eq!(partition_sha(&disk, &info, 3), data_before, "the data partition is read, never written");
    let whole = manifest_of(&disk, second());

    // A power cut while capturing Carol: the first capture is finished and recorded.
    let cut = dir.path().join("cut");
    std::fs::create_dir(&cut).unwrap();
    let (disk, _, _) = e2e::old_machine_copy(&cut, true);
    let o = run_job(&disk, &preset, &["--cut-capture", "capture.2:400000"]);
    assert_eq!(o.status.signal(), Some(6), "the run should abort in capture.2: {}", text(&o));
    let found = inplace::job::rollback::find_job(&disk).unwrap().expect("the job's journal");
    assert_eq!(found.journal.state.to_string(), "capturing");
    assert_eq!(found.journal.captured, [CaptureName::FIRST]);
    let mut store = Store::open(&disk, false).unwrap();
    assert_eq!(store.capture_state().unwrap(), CaptureState::Complete);
    let first_json = store.read_file("capture/manifest.json", 64 << 20).unwrap().unwrap();
    let first = store.manifest().unwrap();
    store.select(second());
    assert!(matches!(store.capture_state().unwrap(), CaptureState::InProgress { .. }), "{:?}", store.capture_state());
    drop(store);

    // The resume finishes Carol's capture and leaves the first as it was.
    let (d, a) = (disk.display().to_string(), agent().display().to_string());
    let o = inplace(&["resume", "--disk", &d, "--agent", &a]);
    let out = text(&o);
    assert!(o.status.success() && out.contains("handed-off"), "{out}");
    assert!(out.contains("captured into capture/ before: kept as it is"), "{out}");
    assert!(out.contains("capture/ read back and verified") && out.contains("capture.2/ read back and verified"), "{out}");
    let store = Store::open(&disk, false).unwrap();
    assert_eq!(store.read_file("capture/manifest.json", 64 << 20).unwrap().unwrap(), first_json, "the first capture is not written again");
    drop(store);
    let resumed = manifest_of(&disk, second());
    assert_eq!((resumed.plan_sha256.clone(), resumed.segments.clone()), (whole.plan_sha256.clone(), whole.segments.clone()));
    assert_eq!(resumed.entries, whole.entries);
    assert_eq!(manifest_of(&disk, CaptureName::FIRST).segments, first.segments);
    check_carol_capture(&disk, &manifest);
    let v: serde_json::Value = serde_json::from_slice(&inplace(&["store", "verify", "--store", &d, "--json"]).stdout).unwrap();
    assert_eq!((v["ok"].as_bool(), v["captures"].as_array().map(Vec::len)), (Some(true), Some(2)), "{v}");
    eprintln!("host run with two captures: {run_secs:.0} s");
}

#[test]
fn windows_like_profile_on_an_ntfs_data_partition_to_debian() {
    let dir = tempfile::tempdir().unwrap();
    let (disk, manifest, info) = e2e::old_machine_copy(dir.path(), true);
    let data = info.partition(3).clone();
    let data_before = partition_sha(&disk, &info, 3);
    let (image, digest) = e2e::new_os_image();
    let preset = e2e::preset("e2e with a data partition", e2e::ISO_IMAGE, &digest, "delete", "");
    let iso = e2e::pe_iso(dir.path(), &preset, &image);

    // The PE: boots from the ISO on UEFI, runs the job, powers off.
    let started = Instant::now();
    let e2e::PeJob { job_secs, serial: pe_log } = e2e::pe_job(&iso, &disk, "OLDBOX-2");
    assert!(pe_log.contains("into capture.2/, users Carol"), "the plan takes Carol's partition:\n{pe_log}");
    assert!(pe_log.contains("partition 3: captured"), "{pe_log}");

    // The new OS: restores before the login prompt; carol exists, her files are hers.
    let mut vm = Vm::installed(&disk, Controller::VirtioBlk).start();
    let boot = vm.wait_for_login_prompt(BOOT_LIMIT).unwrap();
    vm.login("alice", debian::ALICE_PASSWORD, Duration::from_secs(120)).unwrap();
    let carol = vm.run("id carol; ls /home/carol/Documents", Duration::from_secs(60)).unwrap();
    vm.poweroff(Duration::from_secs(120)).unwrap();
    let total = started.elapsed().as_secs_f64();
    eprintln!("job in the PE: {job_secs:.0} s; first boot to login: {:.0} s; whole test: {total:.0} s", boot.as_secs_f64());
    assert!(carol.output.contains("uid=") && carol.output.contains("notes.txt"), "{}", carol.output);

    // Every file of alice, bob and Carol, with owners by name (Carol's are carol's).
    let bad = check_migrated(&disk, &manifest);
    assert!(bad.is_empty(), "{} differences:\n  {}", bad.len(), bad.join("\n  "));
    let off = root_offset(&disk);
    let passwd = String::from_utf8(read_file(&disk, off, "/etc/passwd").unwrap()).unwrap();
    let carol_uid: u32 = passwd.lines().find_map(|l| l.strip_prefix("carol:x:")).and_then(|r| r.split(':').next()).and_then(|u| u.parse().ok()).expect("carol in passwd");
    let carol_entries: Vec<_> = manifest.entries.iter().filter(|e| e.partition == 3).collect();
    assert!(carol_entries.iter().any(|e| e.path == b"Documents/notes.txt"));
    for e in carol_entries {
        let target = [b"/home/carol/".as_slice(), &e.path].concat();
        let st = stat(&disk, off, &target).unwrap_or_else(|| panic!("{}: missing", e.display()));
        assert_eq!(st.uid, carol_uid, "{} belongs to carol", e.display());
    }
    for junk in ["/home/carol/AppData/Local/Temp", "/home/carol/AppData/Local/Temp/junk.dat", "/home/carol/AppData/Local"] {
        assert!(stat(&disk, off, junk.as_bytes()).is_none(), "{junk} is restored");
    }

    // The data partition: byte for byte as before, in the new table at its place.
    let parts = partitions(&disk);
    let kept = parts.iter().find(|p| p.1 == data.start).unwrap_or_else(|| panic!("no partition at byte {}: {parts:?}", data.start));
    assert_eq!((kept.0, kept.2, kept.3.as_str()), (3, data.size, "0700"), "{parts:?}");
    assert_eq!(partition_sha(&disk, &info, 3), data_before, "the data partition is untouched");
    assert!(!parts.iter().any(|p| p.3 == "0700" && p.1 != data.start), "the store is gone: {parts:?}");

    // The report covers both captures; the job is done.
    let report = String::from_utf8(read_file(&disk, off, "/var/log/inplace/restore-report.txt").expect("the restore report")).unwrap();
    assert!(report.contains("(2 captures)") && report.contains("capture.2/: partition 3"), "{report}");
    assert!(report.contains("0 failed") && report.contains("user Carol → carol (created)"), "{report}");
    let journal: serde_json::Value = serde_json::from_slice(&read_file(&disk, off, "/var/log/inplace/journal.json").unwrap()).unwrap();
    assert_eq!(journal["state"], "done", "{journal}");
    assert_eq!(journal["captured"], serde_json::json!(["capture", "capture.2"]), "{journal}");
}
