//! The demo behind `scripts/demo`: a real Debian 12 "old machine" migrated in place to a real
//! Debian 12 image by the PE booted from its ISO in QEMU, unattended; then the migrated disk
//! boots, the new OS restores the user's files on its first boot, and the demo prints the
//! report: users, files, bytes, what was left out and why, and the time of each phase.
//!
//! Everything is under `target/demo/`: the disks, the ISO, and the consoles' logs.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use inplace_tests::debian::{self, ALICE_PASSWORD};
use inplace_tests::e2e::{self, read_file, root_offset};
use inplace_tests::qemu::{Boot, Controller, Firmware, Vm};

fn say(s: &str) {
    eprintln!("==> {s}");
}

fn main() {
    let started = Instant::now();
    let work = inplace_tests::workspace().join("target/demo");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();

    say("building the old machine: a real Debian 12 (mmdebstrap, cached under target/debian) with users alice and bob, their files, a hostname and a NetworkManager connection; GPT with no free space");
    let old = debian::old_machine();
    let disk = old.disk.copy_to(&work);
    let old_users: Vec<&str> = old.manifest.accounts.iter().map(|a| a.name.as_str()).collect();
    say(&format!("old machine: {} ({}; users {})", disk.display(), old.manifest.hostname, old_users.join(", ")));
    run_inspect(&disk);

    say("building the new OS image: a real Debian 12 (systemd, linux-image-amd64, systemd-boot) made into an inplace image");
    let (image, digest) = e2e::new_os_image();
    say(&format!("new OS image: {} (sha256 {digest})", image.display()));

    let preset = e2e::preset("demo", e2e::ISO_IMAGE, &digest, "delete", "");
    say("the unattended preset on the ISO:");
    for l in preset.lines() {
        eprintln!("    {l}");
    }
    let iso = e2e::pe_iso(&work, &preset, &image);
    say(&format!("PE ISO with the preset and the image: {}", iso.display()));

    say("booting the PE from the ISO in QEMU (OVMF, TCG): it finds the disk, plans, carves the store, captures, lays the image down and hands off, then powers off");
    let t = Instant::now();
    let mut pe = Vm::new("").booting(Boot::Cdrom(iso), Firmware::Uefi).disk(&disk, Controller::VirtioBlk, 512, "DEMO-OLDBOX").start();
    let (which, _) = pe.wait_for_any(&["handed-off", "inplace: FATAL"], Duration::from_secs(20 * 60)).unwrap_or_else(|e| fail(&e.to_string()));
    let pe_log = pe.serial();
    let ended = pe.wait_exit(Duration::from_secs(300)).unwrap_or_else(|e| fail(&e.to_string()));
    std::fs::write(work.join("pe-console.log"), &ended.serial).unwrap();
    for l in pe_log.lines().filter(|l| l.starts_with("inplace: ") && !l.contains(" of ")) {
        eprintln!("    {l}");
    }
    if which != 0 {
        fail("the PE stopped with an error (above); its console is in target/demo/pe-console.log");
    }
    let pe_secs = t.elapsed().as_secs_f64();

    say("booting the migrated disk (OVMF): the new OS restores the user's files on its first boot, before the login prompt");
    let t = Instant::now();
    let mut os = Vm::installed(&disk, Controller::VirtioBlk).start();
    os.wait_for_login_prompt(Duration::from_secs(10 * 60)).unwrap_or_else(|e| fail(&e.to_string()));
    let boot_secs = t.elapsed().as_secs_f64();
    os.login("alice", ALICE_PASSWORD, Duration::from_secs(120)).unwrap_or_else(|e| fail(&e.to_string()));
    let id = os.run("id; hostname; ls ~/Documents", Duration::from_secs(60)).unwrap_or_else(|e| fail(&e.to_string()));
    let ended = os.poweroff(Duration::from_secs(180)).unwrap_or_else(|e| fail(&e.to_string()));
    std::fs::write(work.join("new-os-console.log"), &ended.serial).unwrap();
    say("alice logged in on the new OS with her old password:");
    for l in id.output.lines() {
        eprintln!("    {l}");
    }

    report(&disk, &old.manifest);
    let bad = e2e::check_migrated(&disk, &old.manifest);
    say(&format!(
        "checked against the old machine (sha256, owner, mode, mtime of every file): {}",
        if bad.is_empty() { "all match".to_string() } else { format!("{} differences: {}", bad.len(), bad.join("; ")) }
    ));
    say(&format!(
        "wall time: {:.0} s in all (PE boot and job {pe_secs:.0} s, first boot with the restore {boot_secs:.0} s)",
        started.elapsed().as_secs_f64()
    ));
    if !bad.is_empty() {
        std::process::exit(1);
    }
}

fn run_inspect(disk: &Path) {
    let out = std::process::Command::new(inplace_tests::inplace_bin()).arg("inspect").arg(disk).output().unwrap();
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        eprintln!("    {l}");
    }
}

/// The report the new OS keeps, the journal's time per phase, and what was left out and why.
fn report(disk: &Path, manifest: &debian::Manifest) {
    let off = root_offset(disk);
    let text = read_file(disk, off, "/var/log/inplace/restore-report.txt").map(|b| String::from_utf8_lossy(&b).into_owned());
    say("the restore report (/var/log/inplace/restore-report.txt on the new OS):");
    for l in text.unwrap_or_default().lines().take(40) {
        eprintln!("    {l}");
    }
    let json: serde_json::Value =
        read_file(disk, off, "/var/log/inplace/restore-report.json").and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
    let mut why: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for s in json["capture_skipped"].as_array().into_iter().flatten() {
        let reason = match s["kind"].as_str() {
            Some("excluded") => format!("excluded by the rule {}", s["rule"].as_str().unwrap_or("?")),
            Some(k) => k.to_string(),
            None => "?".into(),
        };
        let e = why.entry(reason).or_default();
        e.0 += 1;
        e.1 += s["size"].as_u64().unwrap_or(0);
    }
    say("left out by the capture, and why:");
    for (reason, (n, bytes)) in &why {
        eprintln!("    {n} item(s), {bytes} bytes: {reason}");
    }
    let journal: serde_json::Value =
        read_file(disk, off, "/var/log/inplace/journal.json").and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
    say(&format!("the job's journal (state {}): time of each phase", journal["state"].as_str().unwrap_or("?")));
    for s in journal["steps"].as_array().into_iter().flatten() {
        eprintln!(
            "    {:<9} {:>6.1} s  {:>12} bytes  (attempts {})",
            s["step"].as_str().unwrap_or("?"),
            s["secs"].as_f64().unwrap_or(0.0),
            s["bytes"].as_u64().unwrap_or(0),
            s["attempts"].as_u64().unwrap_or(0)
        );
    }
    let files = manifest.entries.iter().filter(|e| e.kind == debian::Kind::File).count();
    say(&format!("the old machine's manifest: {files} files to migrate"));
}

fn fail(msg: &str) -> ! {
    eprintln!("demo: {msg}");
    std::process::exit(1)
}
