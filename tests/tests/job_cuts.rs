//! Power cuts during the whole job, on the real Debian 12 old machine under QEMU (TCG). QEMU is
//! killed at a chosen console line (a power cut: what the guest had not handed to QEMU is
//! lost), the journal on the disk is read on the host to prove the cut hit the state it was
//! aimed at, and the machine is powered on again. Every machine's life ends either migrated
//! with every file checked (as `job_e2e` checks it), or rolled back with the whole disk
//! byte-identical to the old machine.
//!
//! The PE boots straight from its kernel and initramfs (BIOS, no boot loader: the fastest way
//! in under TCG); its preset and the new OS's image come over HTTP from 127.0.0.1 (10.0.2.2 in
//! the guest), the image pinned by its sha256, staged into the store and laid down from there.
//! The new OS boots from the disk on OVMF.
//!
//! A cut aimed "at" a step is made as soon as the step's `== STEP` line shows; one aimed at the
//! middle of a step waits for a progress line of that step's phase past a number of bytes,
//! with the disk slowed down (QEMU's block throttling) where the step would otherwise be over
//! between two progress lines. Where the next journal write would follow the aimed-at line
//! within microseconds (a step that does nothing yet), the disk's writes are throttled just
//! before, so that write waits its turn and the cut lands where it was aimed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use inplace_tests::debian::Manifest;
use inplace_tests::e2e::{self, Served};
use inplace_tests::qemu::{Controller, Session, Throttle, Vm};

/// Any wait for a console line.
const LINE: Duration = Duration::from_secs(5 * 60);
/// A journal write throttled to this many bytes a second waits about a second behind the one
/// before it (a slot is 32 KiB; the burst allowance is a tenth of a second's worth).
const SLOW_WRITES: Throttle = Throttle::Writes(32 << 10);
const MIB: u64 = 1 << 20;

/// One machine's life: its disk, the cuts made so far and what each found.
struct Life {
    disk: PathBuf,
    served: Served,
    cuts: Vec<String>,
    started: Instant,
}

/// Where a cut goes, once the machine is running: waits for the console line, and returns it.
type Aim<'a> = &'a dyn Fn(&mut Session) -> String;

impl Life {
    fn new(disk: PathBuf, name: &str) -> Life {
        Life { disk, served: Served::job(name, "delete"), cuts: Vec::new(), started: Instant::now() }
    }

    /// Boots the PE (it plans a new job, or resumes the unfinished one on the disk), cuts the
    /// power where `aim` returns, and checks that the journal is at `want`.
    fn pe_cut(&mut self, point: &str, want: &str, throttle: Option<Throttle>, aim: Aim) -> String {
        let mut vm = self.served.pe(&self.disk);
        if let Some(t) = throttle {
            vm = vm.throttled(t);
        }
        self.cut(vm, point, want, aim)
    }

    /// Boots the new OS from the disk, cuts the power where `aim` returns, and checks that the
    /// journal is at `want`.
    fn os_cut(&mut self, point: &str, want: &str, aim: Aim) -> String {
        self.cut(Vm::installed(&self.disk, Controller::VirtioBlk), point, want, aim)
    }

    fn cut(&mut self, vm: Vm, point: &str, want: &str, aim: Aim) -> String {
        let t = Instant::now();
        let mut s = vm.start();
        let at_line = aim(&mut s);
        let serial = s.cut();
        assert!(!serial.contains("inplace: FATAL"), "the machine failed before the cut {point}:\n{serial}");
        let found = e2e::job_state(&self.disk);
        assert_eq!(
            found.as_deref(),
            Some(want),
            "the cut {point} did not find the journal at {want} (in the store's reserve: {:?}; the new OS's copy: {:?}); console:\n{}",
            e2e::journal(&self.disk).map(|j| j.state.name().to_string()),
            e2e::journal_copy(&self.disk).map(|j| j["state"].clone()),
            tail(&serial)
        );
        let line = format!("cut {point:<36} journal at {want:<12} ({:>2.0} s)  at {:?}", t.elapsed().as_secs_f64(), at_line.trim());
        eprintln!("{line}");
        self.cuts.push(line);
        serial
    }

    /// The summary of the cuts, printed by the test.
    fn report(&self, outcome: &str) {
        eprintln!(
            "{} cut(s) on {}, {outcome}, in {:.0} s:\n  {}",
            self.cuts.len(),
            self.disk.file_name().unwrap_or_default().to_string_lossy(),
            self.started.elapsed().as_secs_f64(),
            self.cuts.join("\n  ")
        );
    }
}

fn tail(serial: &str) -> &str {
    let from = serial.len().saturating_sub(5000);
    let from = (from..serial.len()).find(|i| serial.is_char_boundary(*i)).unwrap_or(0);
    &serial[from..]
}

// ---- where the cuts go ------------------------------------------------------------------------

/// At the console line holding `needle`.
fn at(needle: &'static str) -> impl Fn(&mut Session) -> String {
    move |s: &mut Session| {
        s.wait_for(needle, LINE).unwrap();
        needle.to_string()
    }
}

/// `(done, total)` of a progress line (`inplace: 62.2 MiB of 364.2 MiB (32.0 MiB/s, 9 s left)`),
/// in bytes and as the total is shown.
fn progress(line: &str) -> Option<(u64, String)> {
    let rest = line.strip_prefix("inplace: ")?;
    let (done, rest) = rest.split_once(" of ")?;
    let (total, _) = rest.split_once(" (")?;
    let done = inplace::units::parse_size(&done.replace(' ', "")).ok()?;
    Some((done, total.to_string()))
}

/// In the middle of phase `phase` (its `inplace: PHASE: TOTAL` line, then its progress lines):
/// at the first progress line past `min` bytes and short of the total. Fails when the step
/// ends first (the disk too fast for the cut to land in the middle).
fn mid(s: &mut Session, phase: &str, min: u64) -> String {
    let total = phase_total(s, phase);
    past(s, phase, &total, min)
}

/// Waits for the line that starts phase `phase` (`inplace: PHASE: TOTAL`); returns the total
/// as shown.
fn phase_total(s: &mut Session, phase: &str) -> String {
    let head = s.wait_for_line(|l| l.starts_with(&format!("inplace: {phase}: ")), LINE).unwrap();
    head.rsplit(": ").next().unwrap().to_string()
}

/// The first progress line of phase `phase` (of `total`, as shown) past `min` bytes and short
/// of the total.
fn past(s: &mut Session, phase: &str, total: &str, min: u64) -> String {
    let short_of_it = |(done, t): (u64, String)| t == total && done >= min && inplace::units::human_size(done) != t;
    let line = s.wait_for_line(|l| l.starts_with("inplace: == ") || progress(l).is_some_and(short_of_it), LINE).unwrap();
    assert!(
        !line.starts_with("inplace: == "),
        "{phase} ended before it had done {} of {total}: {line}; the console:\n{}",
        inplace::units::human_size(min),
        s.tail(3000)
    );
    line
}

/// In the middle of a resumed capture: the disk slowed to 1 MiB/s from the step's start (the
/// old machine's files hold about 6 MiB of data; the rest is a sparse file's holes), the cut
/// past 1 MiB of the files read.
fn mid_capture(s: &mut Session) -> String {
    s.wait_for("resuming", LINE).unwrap();
    s.wait_for("inplace: == capture", LINE).unwrap();
    s.throttle_disk(0, Some(Throttle::Total(MIB))).unwrap();
    mid(s, "capturing", MIB)
}

/// In the verify step's read-back (every capture read from the disk and checked against its
/// manifest before anything outside the store is written), with the writes slowed from its
/// first line on: the journal's `verified` cannot follow before the cut.
fn at_verify(s: &mut Session) -> String {
    let line = s.wait_for_line(|l| l.starts_with(&format!("inplace: {}", inplace::migrate::store::verify::PHASE)), LINE).unwrap();
    slow_writes(s);
    line
}

/// In the middle of the first-boot restore: at its first progress line, one entry in and the
/// others to come. The store's read-back just before brings the store into the page cache, so
/// the restore itself runs at memory speed and shows no line between its first and its last
/// (lines are at least 2 s apart). So the disk's writes are slowed from the store's discovery
/// on: the sync after the accounts are made (a few MiB since the boot, about 10 s at this
/// rate) holds the first entry's line well past the read-back's last, and the files' data
/// (synced before each record of entries done) is still waiting its turn when the power goes.
fn mid_restore(s: &mut Session) -> String {
    s.wait_for("inplace: the store is ", LINE).unwrap();
    s.throttle_disk(0, Some(Throttle::Writes(256 << 10))).unwrap();
    let total = phase_total(s, "restoring");
    past(s, "restoring", &total, 1)
}

/// At `== stage`, with the writes slowed from the capture's read-back on: the journal's
/// `staged` cannot follow `staging` before the cut.
fn at_stage(s: &mut Session) -> String {
    at_verify(s);
    s.wait_for("inplace: == stage", LINE).unwrap();
    "inplace: == stage".into()
}

/// Slows the disk's writes down from now on.
fn slow_writes(s: &Session) {
    s.throttle_disk(0, Some(SLOW_WRITES)).unwrap();
}

// ---- the tests ----------------------------------------------------------------------------------

/// One machine's life with a cut at every phase boundary and in the middle of the capture, the
/// lay-down and the first-boot restore; after each the PE resumes the job on its own (or the
/// new OS carries on), and in the end the disk is migrated.
#[test]
fn cuts_everywhere_in_one_life_resume_to_a_migrated_disk() {
    let dir = tempfile::tempdir().unwrap();
    let (disk, manifest, _) = e2e::old_machine_copy(dir.path(), false);
    let mut life = Life::new(disk.clone(), "power cuts");

    // A new job: the cut comes once the plan is in the journal, before the carve's first write.
    life.pe_cut("after the plan is recorded", "planned", Some(SLOW_WRITES), &at("recorded in the journal"));
    life.pe_cut("at == carve", "carving", None, &at("inplace: == carve"));
    life.pe_cut("at == capture", "capturing", None, &at("inplace: == capture"));
    life.pe_cut("mid-capture (resumed)", "capturing", None, &mid_capture);
    life.pe_cut("at == verify (its read-back)", "verifying", None, &at_verify);
    life.pe_cut("at == stage (capture verified)", "staging", None, &at_stage);
    life.pe_cut("at == lay-down", "laying-down", None, &at("inplace: == lay-down"));
    life.pe_cut("mid-lay-down", "laying-down", None, &|s| mid(s, "writing", 100 * MIB));
    // The old OS is gone: the journal refuses a rollback now, and the refusal writes nothing.
    let o = std::process::Command::new(inplace_tests::inplace_bin()).args(["rollback", "--yes", "--disk"]).arg(&disk).output().unwrap();
    assert!(!o.status.success(), "a rollback during the lay-down was not refused");
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot come back"), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(e2e::job_state(&disk).as_deref(), Some("laying-down"));
    life.pe_cut("at == hand-off", "handing-off", None, &at("inplace: == hand-off"));
    life.pe_cut("after handed-off, before power-off", "handed-off", None, &at(": handed-off"));

    // The PE booted again has nothing left to do and says so.
    let ended = life.served.pe(&disk).start().wait_exit(LINE).unwrap();
    assert!(ended.serial.contains("the new OS finishes the job"), "{}", tail(&ended.serial));
    assert_eq!(e2e::job_state(&disk).as_deref(), Some("handed-off"));

    // The new OS's first boots.
    life.os_cut("at == restore", "restoring", &at("inplace: == restore"));
    life.os_cut("mid-restore", "restoring", &mid_restore);
    life.os_cut("at == cleanup", "cleaning-up", &at("inplace: == cleanup"));
    // The store is gone: the job is found through its copy in the new OS.
    life.os_cut("at done, before the login prompt", "done", &at("inplace: == cleanup done"));

    // The last boot: nothing left to do before the login prompt; a clean power-off.
    let mut vm = Vm::installed(&disk, Controller::VirtioBlk).start();
    let boot = vm.wait_for_login_prompt(LINE).unwrap();
    let ended = vm.poweroff(LINE).unwrap();
    assert!(!ended.serial.contains("inplace: FATAL") && !ended.serial.contains("restore failed"), "{}", tail(&ended.serial));
    eprintln!("the last boot to the login prompt: {:.0} s", boot.as_secs_f64());
    migrated(&disk, &manifest);
    life.report("then migrated");
}

/// Cuts before the capture is verified (and one after it, before the lay-down), each rolled
/// back on the host with `inplace rollback`: the whole disk is then byte for byte the old
/// machine again, so the next boot of the PE starts a new job on it.
#[test]
fn cuts_before_the_lay_down_roll_back_to_the_old_disk_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let (disk, _, _) = e2e::old_machine_copy(dir.path(), false);
    let pristine = e2e::old_machine_sha256();
    let mut life = Life::new(disk.clone(), "cuts rolled back");
    let rolled = |life: &mut Life, point: &str| {
        let said = e2e::roll_back(&disk);
        assert!(e2e::journal(&disk).is_none(), "the journal outlived the rollback after the cut {point}:\n{said}");
        assert_eq!(inplace_tests::sha256_file(&disk), pristine, "the disk is not the old machine's after the cut {point} and the rollback:\n{said}");
        life.cuts.last_mut().unwrap().push_str(", rolled back: disk byte-identical");
    };

    life.pe_cut("after the plan is recorded", "planned", Some(SLOW_WRITES), &at("recorded in the journal"));
    rolled(&mut life, "after the plan");
    life.pe_cut("at == carve", "carving", None, &at("inplace: == carve"));
    rolled(&mut life, "at == carve");
    // Two cuts in the capture, the second in a resumed one (whose reads reach the disk: no plan
    // read the files into the page cache first), then the rollback.
    life.pe_cut("at == capture", "capturing", None, &at("inplace: == capture"));
    life.pe_cut("mid-capture (resumed)", "capturing", None, &mid_capture);
    rolled(&mut life, "mid-capture");
    life.pe_cut("at == verify (its read-back)", "verifying", None, &at_verify);
    rolled(&mut life, "at == verify");
    life.pe_cut("at == stage (capture verified)", "staging", None, &at_stage);
    rolled(&mut life, "at == stage");
    life.report("each rolled back");
}

fn migrated(disk: &Path, manifest: &Manifest) {
    let bad = e2e::check_done(disk, manifest);
    assert!(bad.is_empty(), "{} problems:\n  {}", bad.len(), bad.join("\n  "));
}
