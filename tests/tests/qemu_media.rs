//! The boot media, booted for real under TCG: the hybrid ISO as a CD (BIOS, UEFI, UEFI with
//! Secure Boot enforced), the USB image as a usb-storage stick (BIOS, UEFI), and PXE through
//! iPXE with the preset fetched over HTTP.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use inplace_tests::http_server::Server;
use inplace_tests::qemu::{Boot, Controller, Firmware, Run, Vm};

fn script(name: &str, args: &[&str]) {
    let out = Command::new(inplace_tests::workspace().join("scripts").join(name)).args(args).output().unwrap();
    assert!(out.status.success(), "scripts/{name} {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
}

fn write_preset(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("preset.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn iso(dir: &Path, preset: Option<&str>, extra: &[&str]) -> PathBuf {
    let out = dir.join("inplace.iso");
    let mut args = vec!["--out", out.to_str().unwrap()];
    let p;
    if let Some(text) = preset {
        p = write_preset(dir, text);
        args.extend(["--preset", p.to_str().unwrap()]);
    }
    args.extend(extra);
    script("build-iso", &args);
    out
}

fn usb(dir: &Path, stick_preset: &str) -> PathBuf {
    let out = dir.join("inplace-usb.img");
    let p = write_preset(dir, stick_preset);
    script("build-usb", &["--out", out.to_str().unwrap(), "--preset", p.to_str().unwrap()]);
    out
}

fn expect_ready(run: &Run, firmware: &str) {
    eprintln!("boot timing ({firmware}): {}", run.boot_timing());
    assert!(run.has_line(&format!("inplace: {firmware}")), "no `inplace: {firmware}` line:\n{}", run.serial);
    assert!(run.has_line("inplace: ready"), "no ready line:\n{}", run.serial);
    let fw = run.serial.find(&format!("inplace: {firmware}")).unwrap();
    assert!(fw < run.serial.find("inplace: ready").unwrap(), "firmware line must come before ready");
}

/// A survey preset: no image, so the PE takes inventory, leaves its report and powers off.
const POWEROFF_PRESET: &str = "name = \"NAME\"\nfinish = \"poweroff\"\n";

#[test]
fn qemu_iso_cd_on_bios_runs_its_preset() {
    let dir = tempfile::tempdir().unwrap();
    let iso = iso(dir.path(), Some(&POWEROFF_PRESET.replace("NAME", "cd-bios")), &[]);
    let run = Vm::new("").booting(Boot::Cdrom(iso), Firmware::Bios).run();
    expect_ready(&run, "firmware bios secure-boot off");
    assert!(run.has_line("inplace: preset cd-bios"), "{}", run.serial);
    assert!(run.exited, "the unattended run did not power off:\n{}", run.serial);
}

#[test]
fn qemu_iso_cd_on_uefi_starts_the_tui() {
    let dir = tempfile::tempdir().unwrap();
    let iso = iso(dir.path(), None, &[]);
    let mut vm = Vm::new("").booting(Boot::Cdrom(iso), Firmware::Uefi);
    vm.monitor_commands.push(("inplace: ready".into(), "sendkey p".into()));
    let run = vm.run();
    expect_ready(&run, "firmware uefi secure-boot off");
    assert!(!run.serial.contains("inplace: preset"), "no preset was given:\n{}", run.serial);
    assert!(run.exited, "the TUI did not power off on `p`:\n{}", run.serial);
}

#[test]
fn qemu_iso_cd_on_uefi_with_secure_boot_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let iso = iso(dir.path(), Some(&POWEROFF_PRESET.replace("NAME", "cd-secure")), &[]);
    let run = Vm::new("").booting(Boot::Cdrom(iso), Firmware::UefiSecureBoot).run();
    expect_ready(&run, "firmware uefi secure-boot on");
    assert!(run.has_line("inplace: preset cd-secure"), "{}", run.serial);
    // Under lockdown only signed modules load; the drivers did.
    assert!(!run.serial.contains("did not load"), "{}", run.serial);
}

/// The same ISO with a plain (unsigned) GRUB where the signed shim was is refused by the
/// firmware: nothing of the PE ever runs.
#[test]
fn qemu_secure_boot_refuses_an_unsigned_bootloader() {
    let dir = tempfile::tempdir().unwrap();
    let iso = iso(dir.path(), Some(&POWEROFF_PRESET.replace("NAME", "cd-unsigned")), &["--unsigned-bootloader"]);
    let mut vm = Vm::new("").booting(Boot::Cdrom(iso.clone()), Firmware::UefiSecureBoot);
    vm.timeout = Duration::from_secs(90);
    let run = vm.run();
    assert!(!run.serial.contains("inplace:"), "the PE started although its loader is unsigned:\n{}", run.serial);
    assert!(run.serial.contains("Access Denied") || run.serial.contains("Security Violation"), "no refusal shown:\n{}", run.serial);
    // The firmware, not a broken image, refused it: the same ISO boots with Secure Boot off.
    let run = Vm::new("").booting(Boot::Cdrom(iso), Firmware::Uefi).run();
    expect_ready(&run, "firmware uefi secure-boot off");
}

/// Two runs from one stick: each leaves a report folder on INPLACE, the second sees the first,
/// and the host reads both with mtools.
#[test]
fn qemu_usb_stick_on_bios_collects_reports() {
    let dir = tempfile::tempdir().unwrap();
    let stick = usb(dir.path(), &POWEROFF_PRESET.replace("NAME", "usb-lab"));
    for round in 0..2 {
        let run = Vm::new("").booting(Boot::UsbStick(stick.clone()), Firmware::Bios).run();
        expect_ready(&run, "firmware bios secure-boot off");
        assert!(run.has_line("inplace: preset usb-lab"), "{}", run.serial);
        assert!(run.exited, "{}", run.serial);
        if round == 1 {
            assert!(run.serial.contains("inplace: this stick holds 1 earlier report(s)"), "{}", run.serial);
        }
    }
    let part = format!("{}@@{}", stick.display(), partition_offset(&stick, 3));
    let out = Command::new("mdir").args(["-b", "-i", &part, "::/reports"]).output().unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    let folders: Vec<&str> = listing.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(folders.len(), 2, "report folders: {listing}");
    for f in folders {
        let folder = f.trim().trim_start_matches("::").trim_end_matches('/');
        let report = Command::new("mtype").args(["-i", &part, &format!("::{folder}/report.json")]).output().unwrap();
        let report: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap_or_else(|e| panic!("{folder}/report.json: {e}"));
        assert_eq!(report["run"]["preset"]["name"], "usb-lab");
        assert_eq!(report["result"], "surveyed", "a preset with no image only surveys");
        let events = Command::new("mtype").args(["-i", &part, &format!("::{folder}/events.jsonl")]).output().unwrap();
        let events = String::from_utf8_lossy(&events.stdout);
        let drivers = events.lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()).find(|v| {
            v["event"] == "log" && v["message"].as_str().is_some_and(|m| m.starts_with("drivers: ")) && v["time"].is_string()
        });
        assert!(drivers.is_some(), "no driver event in {folder}/events.jsonl: {events}");
    }
}

#[test]
fn qemu_usb_stick_on_uefi() {
    let dir = tempfile::tempdir().unwrap();
    let stick = usb(dir.path(), &POWEROFF_PRESET.replace("NAME", "usb-uefi"));
    let run = Vm::new("").booting(Boot::UsbStick(stick), Firmware::Uefi).run();
    expect_ready(&run, "firmware uefi secure-boot off");
    assert!(run.has_line("inplace: preset usb-uefi"), "{}", run.serial);
    assert!(run.exited, "{}", run.serial);
}

/// PXE on BIOS: iPXE loads the PE over QEMU's TFTP; the PE brings its NIC up with its own DHCP
/// client and fetches the preset from an HTTP server on the host's loopback (10.0.2.2).
#[test]
fn qemu_pxe_on_bios_fetches_the_preset_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let preset = write_preset(dir.path(), &POWEROFF_PRESET.replace("NAME", "pxe-lab"));
    let server = Server::start(preset);
    let tftp = dir.path().join("pxe");
    let url = format!("http://10.0.2.2:{}/preset.toml", server.port);
    script("build-pxe", &["--out", tftp.to_str().unwrap(), "--preset-url", &url]);
    let run = Vm::new("").booting(Boot::Pxe(tftp), Firmware::Bios).run();
    expect_ready(&run, "firmware bios secure-boot off");
    assert!(run.serial.contains("inplace: network: eth0 is 10.0.2.15/255.255.255.0 via DHCP from 10.0.2.2"), "{}", run.serial);
    assert!(run.has_line("inplace: preset pxe-lab"), "{}", run.serial);
    assert!(run.serial.contains(&format!("inplace: preset read from {url}")), "{}", run.serial);
    assert!(!server.ranges().is_empty(), "the server saw no request");
    assert!(run.exited, "{}", run.serial);
}

/// A preset with a syntax error stops the run with the file, line and message, and the disk
/// in the machine is not touched.
#[test]
fn qemu_preset_syntax_error_stops_before_any_write() {
    let dir = tempfile::tempdir().unwrap();
    let disk = inplace_tests::fixtures::gpt_multi_os(dir.path());
    let before = inplace_tests::sha256_file(&disk.path);
    let iso = iso(dir.path(), Some("name = \"broken\"\nconfirm = flase\n"), &[]);
    let mut vm = Vm::new("").booting(Boot::Cdrom(iso), Firmware::Bios).disk(&disk.path, Controller::VirtioBlk, 512, "target");
    vm.serial_replies.push(("press any key to reboot".into(), "x".into()));
    let run = vm.run();
    assert!(
        run.serial.contains("inplace: FATAL: the preset could not be used, so nothing was written to any disk; fix the preset and boot again: preset /inplace/preset.toml on the boot medium, line 2, column 11: "),
        "{}",
        run.serial
    );
    assert!(!run.serial.contains("inplace: ready"), "{}", run.serial);
    assert!(run.exited, "a key did not reboot:\n{}", run.serial);
    assert_eq!(inplace_tests::sha256_file(&disk.path), before, "the disk changed");
}

/// The byte offset of MBR partition `n` (1–4) of an image.
fn partition_offset(image: &Path, n: usize) -> u64 {
    let mut mbr = [0u8; 512];
    std::io::Read::read_exact(&mut std::fs::File::open(image).unwrap(), &mut mbr).unwrap();
    let e = 446 + (n - 1) * 16;
    u64::from(u32::from_le_bytes(mbr[e + 8..e + 12].try_into().unwrap())) * 512
}
