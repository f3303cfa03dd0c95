//! The whole job on real systems under QEMU (TCG): the PE booted from its ISO migrates a real
//! Debian 12 old machine to a real Debian 12 image unattended; the new OS restores on its first
//! boot; then the disk is checked byte by byte against the old machine's manifest and a
//! migrated user logs in with the old password.

use std::time::Duration;

use inplace_tests::debian::{self, ALICE_PASSWORD};
use inplace_tests::e2e::{self, check_migrated, partitions, read_file, root_offset};
use inplace_tests::qemu::{Controller, Vm};

const BOOT_LIMIT: Duration = Duration::from_secs(8 * 60);

#[test]
fn linux_to_linux_from_the_iso_unattended() {
    let dir = tempfile::tempdir().unwrap();
    let (disk, manifest, _) = e2e::old_machine_copy(dir.path(), false);
    let (image, digest) = e2e::new_os_image();
    let preset = e2e::preset("e2e from the ISO", e2e::ISO_IMAGE, &digest, "delete", "");
    let iso = e2e::pe_iso(dir.path(), &preset, &image);

    // The PE: boots from the ISO on UEFI, runs the job, powers off.
    let e2e::PeJob { job_secs, serial: pe_log } = e2e::pe_job(&iso, &disk, "OLDBOX-1");
    for step in ["== carve", "== capture", "== lay-down", "== hand-off"] {
        assert!(pe_log.contains(step), "the PE did not run {step}:\n{pe_log}");
    }

    // The new OS: restores before the login prompt, then alice logs in with her old password.
    let mut vm = Vm::installed(&disk, Controller::VirtioBlk).start();
    let boot = vm.wait_for_login_prompt(BOOT_LIMIT).unwrap();
    vm.login("alice", ALICE_PASSWORD, Duration::from_secs(120)).unwrap();
    let id = vm.run("id", Duration::from_secs(60)).unwrap();
    let host = vm.run("hostname", Duration::from_secs(60)).unwrap();
    let unit = vm.run("systemctl is-enabled inplace-restore.service; true", Duration::from_secs(60)).unwrap();
    vm.poweroff(Duration::from_secs(120)).unwrap();
    eprintln!("job in the PE: {job_secs:.0} s; first boot to login: {:.0} s", boot.as_secs_f64());
    assert!(id.output.contains("(sudo)") && id.output.contains("(audio)"), "id: {}", id.output);
    assert_eq!(host.output.trim(), manifest.hostname);
    assert!(!unit.output.contains("enabled") || unit.output.contains("disabled"), "the unit is still enabled: {}", unit.output);

    // The disk: every file, the settings, the store gone and the root grown, the report, the
    // journal at done, the ESP.
    let bad = check_migrated(&disk, &manifest);
    assert!(bad.is_empty(), "{} differences:\n  {}", bad.len(), bad.join("\n  "));
    let parts = partitions(&disk);
    assert_eq!(parts.len(), 2, "the store partition is gone: {parts:?}");
    let root = parts.iter().find(|p| p.3 == "8304" || p.3 == "8300").unwrap();
    let size = std::fs::metadata(&disk).unwrap().len();
    assert!(root.1 + root.2 >= size - (2 << 20), "the root partition reaches the disk's end: {parts:?}");
    let off = root_offset(&disk);
    let blocks = e2e::debugfs(&disk, off, "stats");
    let count: u64 = blocks.lines().find_map(|l| l.strip_prefix("Block count:")).and_then(|v| v.trim().parse().ok()).unwrap();
    assert!(count * 4096 >= root.2 - (4 << 20), "the root filesystem fills its partition: {count} blocks for {} bytes", root.2);
    let nm = read_file(&disk, off, "/etc/NetworkManager/system-connections/office.nmconnection").expect("the NM connection");
    assert_eq!(Some(e2e_sha(&nm)), manifest.entry(None, "etc/NetworkManager/system-connections/office.nmconnection").sha256);
    let report = String::from_utf8(read_file(&disk, off, "/var/log/inplace/restore-report.txt").expect("the restore report")).unwrap();
    assert!(report.contains("0 failed"), "{report}");
    let journal: serde_json::Value = serde_json::from_slice(&read_file(&disk, off, "/var/log/inplace/journal.json").unwrap()).unwrap();
    assert_eq!(journal["state"], "done", "{journal}");
    let esp = parts.iter().find(|p| p.3 == "EF00").expect("an ESP");
    let loader = std::process::Command::new("mdir")
        .args(["-b", "-i", &format!("{}@@{}", disk.display(), esp.1), "::/EFI/BOOT"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&loader.stdout).to_uppercase().contains("BOOTX64.EFI"));
    let _ = debian::ALICE_PASSWORD;
}

fn e2e_sha(b: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("{:x}", Sha256::digest(b))
}
