//! PXE as a lab runs it (`docs/lab.md`), booted for real under TCG: one nginx on 127.0.0.1
//! serves the tree that `scripts/build-pxe --http-base` writes and a survey preset, and QEMU's
//! user network stands in for dnsmasq (DHCP, and TFTP for the loaders). Each machine reaches
//! `inplace: ready`, reads the preset from nginx and powers off.
//!
//! - BIOS: the NIC's iPXE loads `boot.ipxe`, the kernel and the initramfs from nginx over HTTP.
//! - UEFI with Secure Boot enforced: the firmware's PXE loads shim over TFTP, shim loads
//!   Debian's signed network GRUB, GRUB reads `/grub/grub.cfg` and loads Debian's signed kernel
//!   and the initramfs over TFTP (that GRUB has no http module).

use std::path::Path;
use std::process::Command;

use inplace_tests::nginx::Nginx;
use inplace_tests::pcap::tftp_requests;
use inplace_tests::qemu::{Boot, Firmware, Vm};

/// A survey preset: no image, so the PE takes inventory, leaves its report and powers off.
fn preset(name: &str) -> String {
    format!("name = \"{name}\"\nfinish = \"poweroff\"\n")
}

/// Writes the PXE tree into `root` (which `nginx` serves) with the kernel, the initramfs and the
/// preset at the guest's URL of nginx.
/// The tree, with a preset per machine (`presets/${mac:hexhyp}.toml`, which the server does not
/// have) falling back to `preset.toml`.
fn build_pxe(root: &Path, nginx: &Nginx, preset_name: &str) {
    std::fs::write(root.join("preset.toml"), preset(preset_name)).unwrap();
    let base = nginx.guest_url("");
    let own = nginx.guest_url("presets/${mac:hexhyp}.toml");
    let preset_url = nginx.guest_url("preset.toml");
    let out = Command::new(inplace_tests::workspace().join("scripts/build-pxe"))
        .args(["--out", root.to_str().unwrap(), "--http-base", &base, "--preset-url", &own, "--preset-default", &preset_url])
        .output()
        .unwrap();
    assert!(out.status.success(), "scripts/build-pxe failed:\n{}", String::from_utf8_lossy(&out.stderr));
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).len()
}

#[test]
fn qemu_pxe_on_bios_loads_the_pe_from_nginx_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("srv");
    std::fs::create_dir(&root).unwrap();
    let nginx = Nginx::start(&root);
    build_pxe(&root, &nginx, "pxe-bios-http");
    // No TFTP at all: DHCP's boot file is boot.ipxe's URL, as dnsmasq's `dhcp-boot=tag:ipxe,http://…`.
    let boot = Boot::Network { tftp: None, bootfile: nginx.guest_url("boot.ipxe") };
    let run = Vm::new("").booting(boot, Firmware::Bios).run();
    eprintln!("BIOS PXE over HTTP: {:.1?} from power-on to power-off", run.elapsed);
    run.expect_ready(Firmware::Bios);
    assert!(run.has_line("inplace: preset pxe-bios-http"), "{}", run.serial);
    assert!(run.serial.contains(&format!("inplace: preset read from {}", nginx.guest_url("preset.toml"))), "{}", run.serial);
    assert!(run.exited, "the survey did not power off:\n{}", run.serial);

    let log = nginx.access_log();
    // iPXE asked for this machine's own preset first, and took the default when it was not there.
    assert!(log.iter().any(|a| a.path == "/presets/52-54-00-12-34-56.toml" && a.status == 404), "{log:#?}");
    let served = |path: &str| log.iter().find(|a| a.path == path && a.status == 200).map(|a| a.body_bytes);
    for (path, file) in [("/boot.ipxe", "boot.ipxe"), ("/vmlinuz", "vmlinuz"), ("/initramfs.img", "initramfs.img"), ("/preset.toml", "preset.toml")] {
        assert_eq!(served(path), Some(size(&root.join(file))), "{path} was not served whole over HTTP: {log:#?}");
    }
    for a in &log {
        eprintln!("  nginx: {} {} {} bytes in {:.3} s", a.status, a.path, a.body_bytes, a.request_time);
    }
}

#[test]
fn qemu_pxe_on_uefi_with_secure_boot_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("srv");
    std::fs::create_dir(&root).unwrap();
    let nginx = Nginx::start(&root);
    build_pxe(&root, &nginx, "pxe-uefi-secure");
    let pcap = dir.path().join("net.pcap");
    // dnsmasq's `dhcp-boot=tag:efi64,bootx64.efi` with the tree as the TFTP root.
    let boot = Boot::Network { tftp: Some(root.clone()), bootfile: "bootx64.efi".into() };
    let run = Vm::new("").booting(boot, Firmware::UefiSecureBoot).capturing(&pcap).run();
    eprintln!("UEFI Secure Boot PXE: {:.1?} from power-on to power-off", run.elapsed);
    run.expect_ready(Firmware::UefiSecureBoot);
    // Under lockdown only signed modules load; the drivers did.
    assert!(!run.serial.contains("did not load"), "{}", run.serial);
    assert!(run.has_line("inplace: preset pxe-uefi-secure"), "{}", run.serial);
    assert!(run.serial.contains(&format!("inplace: preset read from {}", nginx.guest_url("preset.toml"))), "{}", run.serial);
    assert!(run.exited, "the survey did not power off:\n{}", run.serial);

    // The chain, in order: shim, the GRUB beside it, GRUB's config under its built-in prefix
    // /grub, then the kernel and the initramfs from the TFTP root.
    let asked = tftp_requests(&pcap);
    eprintln!("  TFTP: {asked:?}");
    let mut from = 0;
    for want in ["bootx64.efi", "grubx64.efi", "/grub/grub.cfg", "/vmlinuz", "/initramfs.img"] {
        let at = asked[from..].iter().position(|f| f == want).unwrap_or_else(|| panic!("no TFTP request for {want} after {:?}: {asked:?}", &asked[..from]));
        from += at + 1;
    }
    // nginx served the preset; the loaders and the PE came over TFTP.
    let log = nginx.access_log();
    assert!(log.iter().any(|a| a.path == "/preset.toml" && a.status == 200), "{log:#?}");
    assert!(!log.iter().any(|a| a.path == "/vmlinuz" || a.path == "/initramfs.img"), "{log:#?}");
}
