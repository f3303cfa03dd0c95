//! `scripts/setup` on a fresh Debian 12: its apt part (`--apt-only --simulate`) resolves inside
//! cached bookworm chroots made by mmdebstrap (`scripts/build-debian --machine-image`), both a
//! plain one and one like the CI machine image (qemu-utils from bookworm-backports installed,
//! only bookworm and bookworm-security in its sources), and takes qemu-system-x86 from
//! backports. Without the QEMU pin the machine-image case does not resolve, which shows the test
//! can fail. Feature `debian`; needs root (chroot) and deb.debian.org.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use inplace_tests::debian::machine_image_root;
use inplace_tests::fixtures::run;

/// A throwaway copy of a cached chroot with setup (and lib.sh) at /opt/inplace/scripts and the
/// host's resolver.
fn chroot_copy(variant: &str, dir: &Path) -> PathBuf {
    let src = machine_image_root(variant);
    let root = dir.join(variant);
    run(Command::new("cp").args(["-a", "--reflink=auto"]).arg(&src).arg(&root));
    let scripts = root.join("opt/inplace/scripts");
    std::fs::create_dir_all(&scripts).unwrap();
    for f in ["setup", "lib.sh"] {
        std::fs::copy(inplace_tests::workspace().join("scripts").join(f), scripts.join(f)).unwrap();
    }
    std::fs::copy("/etc/resolv.conf", root.join("etc/resolv.conf")).expect("the host's /etc/resolv.conf");
    root
}

fn setup_simulate(root: &Path, no_pin: bool) -> (Output, String) {
    let mut cmd = Command::new("chroot");
    cmd.arg(root).args(["/opt/inplace/scripts/setup", "--apt-only", "--simulate"]).env_remove("INPLACE_SETUP_NO_PIN");
    if no_pin {
        cmd.env("INPLACE_SETUP_NO_PIN", "1");
    }
    let t = std::time::Instant::now();
    let out = cmd.output().expect("chroot (run the tests as root)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("setup --apt-only --simulate in {} (no_pin={no_pin}): {} in {:.1?}", root.display(), out.status, t.elapsed());
    (out, text)
}

/// apt's simulated plan installs qemu-system-x86 and its family from bookworm-backports.
fn assert_resolves_from_backports(variant: &str, out: &Output, text: &str) {
    assert!(out.status.success(), "{variant}: setup's apt part did not resolve:\n{text}");
    let inst = |pkg: &str| text.lines().find(|l| l.starts_with(&format!("Inst {pkg} "))).map(str::to_string);
    let qemu = inst("qemu-system-x86").unwrap_or_else(|| panic!("{variant}: qemu-system-x86 not in the plan:\n{text}"));
    assert!(qemu.contains("Backports") && qemu.contains("~bpo12"), "{variant}: {qemu}");
    let common = inst("qemu-system-common").unwrap_or_else(|| panic!("{variant}: no qemu-system-common:\n{text}"));
    assert!(common.contains("~bpo12"), "{variant}: {common}");
    for pkg in ["ovmf", "mmdebstrap", "shim-signed", "partclone", "libwin-hivex-perl", "exfatprogs", "busybox-static", "nginx-light", "gcc-mingw-w64-x86-64", "wine64"] {
        assert!(inst(pkg).is_some(), "{variant}: {pkg} not in the plan:\n{text}");
    }
    // Setup wrote its pin and the backports source into the chroot, nothing else happened.
    assert!(text.contains("pinning the QEMU family to bookworm-backports"), "{text}");
    assert!(!text.contains("rustup"), "{text}");
}

#[test]
fn setup_resolves_on_a_plain_bookworm() {
    let dir = tempfile::tempdir().unwrap();
    let root = chroot_copy("plain", dir.path());
    let (out, text) = setup_simulate(&root, false);
    assert_resolves_from_backports("plain", &out, &text);
    assert!(root.join("etc/apt/preferences.d/inplace-qemu").exists());
    assert!(root.join("etc/apt/sources.list.d/inplace-backports.sources").exists());
    // Nothing was installed.
    let status = run(Command::new("chroot").arg(&root).args(["dpkg-query", "-W", "-f", "${Package}\\n"]));
    assert!(!status.lines().any(|p| p == "qemu-system-x86" || p == "mmdebstrap"), "the simulation installed packages");
}

#[test]
fn setup_resolves_with_backports_qemu_utils_installed() {
    let dir = tempfile::tempdir().unwrap();
    let root = chroot_copy("backports-qemu-utils", dir.path());
    let version = run(Command::new("chroot").arg(&root).args(["dpkg-query", "-W", "-f", "${Version}", "qemu-utils"]));
    assert!(version.contains("~bpo12"), "the machine-image chroot has qemu-utils {version}, not from backports");
    let sources = run(Command::new("chroot").arg(&root).args(["sh", "-c", "cat /etc/apt/sources.list.d/* /etc/apt/sources.list 2>/dev/null || true"]));
    assert!(!sources.contains("backports"), "backports is still configured:\n{sources}");
    let (out, text) = setup_simulate(&root, false);
    assert_resolves_from_backports("backports-qemu-utils", &out, &text);
}

/// The same machine-image state without the pin: apt cannot resolve (the backports qemu-utils
/// Breaks bookworm's qemu-system-common), so the test above would catch a missing pin.
#[test]
fn setup_without_the_pin_fails_with_backports_qemu_utils() {
    let dir = tempfile::tempdir().unwrap();
    let root = chroot_copy("backports-qemu-utils", dir.path());
    let (out, text) = setup_simulate(&root, true);
    assert!(!out.status.success(), "apt resolved without the pin; the test cannot tell a pin from none:\n{text}");
    assert!(text.contains("leaving /etc/apt/preferences.d/inplace-qemu out"), "{text}");
    assert!(text.contains("unmet dependencies") && text.contains("qemu-utils : Breaks: qemu-system-common"), "{text}");
    assert!(!root.join("etc/apt/preferences.d/inplace-qemu").exists());
}
