//! The whole job on real systems under QEMU (TCG): the PE booted from its ISO migrates a real
//! Debian 12 old machine to a real Debian 12 image unattended; the new OS restores on its first
//! boot; then the disk is checked byte by byte against the old machine's manifest and a
//! migrated user logs in with the old password.

use inplace_tests::e2e;

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
    // The PE grew the new root with the e2fsprogs it carries, before the hand-off.
    let grown = pe_log.lines().find(|l| l.contains("ext4 grown from")).unwrap_or_else(|| panic!("the PE did not grow the new root:\n{pe_log}"));
    eprintln!("in the PE: {}", grown.trim());

    // The new OS: restores before the login prompt, then alice logs in with her old password.
    let boot = e2e::boot_and_log_in(&disk, &manifest);
    eprintln!("job in the PE: {job_secs:.0} s; first boot to login: {:.0} s", boot.as_secs_f64());

    // The disk: every file, the settings, the store gone and the root grown, the report, the
    // journal at done, the ESP.
    let bad = e2e::check_done(&disk, &manifest);
    assert!(bad.is_empty(), "{} problems:\n  {}", bad.len(), bad.join("\n  "));
}
