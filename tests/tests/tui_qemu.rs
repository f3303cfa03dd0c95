//! The TUI in the PE, driven as a technician drives it: the ISO booted on BIOS (an 80x25 text
//! console), the interactive entry chosen in the boot menu, every key typed with QEMU's
//! `sendkey`. The serial console follows the screens (`inplace: tui: …`) and the job's steps.
//! Enter alone on the confirm screen starts nothing and leaves the disk as it was; the serial's
//! last 4 characters start the job; the migrated disk then boots the new OS, which restores,
//! as in the unattended end-to-end test.

use std::time::Duration;

use inplace_tests::e2e;
use inplace_tests::qemu::{Boot, Controller, Firmware, Session, Vm};

const SERIAL: &str = "TUI00042";
const SCREEN: Duration = Duration::from_secs(240);

/// Presses one key (QEMU's key names: `ret`, `down`, `0`, `p`, …).
fn press(s: &Session, key: &str) {
    s.monitor(&format!("sendkey {key}")).unwrap_or_else(|e| panic!("sendkey {key}: {e:#}"));
    std::thread::sleep(Duration::from_millis(200));
}

/// Types `text` key by key.
fn type_text(s: &Session, text: &str) {
    for c in text.chars() {
        let key = match c {
            'a'..='z' | '0'..='9' => c.to_string(),
            'A'..='Z' => format!("shift-{}", c.to_ascii_lowercase()),
            ' ' => "spc".into(),
            '-' => "minus".into(),
            '/' => "slash".into(),
            '.' => "dot".into(),
            '>' => "shift-dot".into(),
            '\n' => "ret".into(),
            other => panic!("no key for {other:?}"),
        };
        press(s, &key);
    }
}

/// Waits for the TUI's serial line that starts with `screen` and holds every one of `wanted`.
fn screen(s: &mut Session, screen: &str, wanted: &[&str], timeout: Duration) -> String {
    let prefix = format!("inplace: tui: {screen}");
    s.wait_for_line(|l| l.contains(&prefix) && wanted.iter().all(|w| l.contains(w)), timeout)
        .unwrap_or_else(|e| panic!("waiting for the TUI's {screen} {wanted:?}: {e:#}\n{}", s.tail(4000)))
}

#[test]
fn a_technician_migrates_through_the_tui_from_the_iso_on_bios() {
    let dir = tempfile::tempdir().unwrap();
    let (disk, manifest, _) = e2e::old_machine_copy(dir.path(), false);
    let (image, digest) = e2e::new_os_image();
    let preset = format!(
        "name = \"front desk\"\n\n[[images]]\nname = \"Debian 12 desktop\"\nsource = \"{}\"\nsha256 = \"{digest}\"\n\n\
         [store]\nafter = \"delete\"\n\n[restore]\ncreate_users = true\n",
        e2e::ISO_IMAGE
    );
    let iso = e2e::pe_iso(dir.path(), &preset, &image);
    let before = e2e::old_machine_sha256();

    let vm = Vm::new("").booting(Boot::Cdrom(iso), Firmware::Bios).disk(&disk, Controller::VirtioBlk, 512, SERIAL);
    let mut s = vm.start();
    // With a preset on the ISO the menu's default is the unattended entry; a person picks the
    // interactive one below it before the countdown ends.
    s.wait_for("inplace: interactive", Duration::from_secs(180)).unwrap();
    press(&s, "down");
    press(&s, "ret");
    s.wait_for("inplace: ready", Duration::from_secs(180)).unwrap();
    eprintln!("PE ready after {:.0?}", s.elapsed());

    // Home: the one disk (the CD is the boot medium, not a candidate); Enter chooses.
    screen(&mut s, "home", &["1 disk(s)"], SCREEN);
    press(&s, "ret");
    // Choose: the disk with the OS preselected, the preset's image, both users kept.
    screen(&mut s, "choose", &["disk vda", "image Debian 12 desktop", "users ready, keeping alice, bob"], SCREEN);
    press(&s, "ret");
    let plan = screen(&mut s, "plan: ready", &[], SCREEN);
    assert!(s.serial().contains("inplace: tui: plan: "), "the plan's lines on the serial console:\n{plan}");
    press(&s, "ret");
    screen(&mut s, "confirm", &["vda", "the last 4 characters of its serial"], SCREEN);

    // Enter alone: refused, nothing started, the disk as it was.
    press(&s, "ret");
    screen(&mut s, "confirm", &["Enter alone did not start the job"], SCREEN);
    std::thread::sleep(Duration::from_secs(3));
    assert!(!s.serial().contains("== carve"), "Enter alone started the job:\n{}", s.tail(3000));
    assert_eq!(inplace_tests::sha256_file(&disk), before, "Enter alone changed the disk");

    eprintln!("confirm screen after {:.0?}", s.elapsed());
    // The serial's last 4 characters, then Enter: the job runs in the engine.
    for k in ["0", "0", "4", "2"] {
        press(&s, k);
    }
    screen(&mut s, "confirm", &["4 typed"], SCREEN);
    press(&s, "ret");
    let t_job = s.elapsed();
    let result = screen(&mut s, "result", &[], e2e::PE_LIMIT);
    eprintln!("job in the PE: {:.0?}", s.elapsed() - t_job);
    assert!(result.contains("handed-off"), "the job did not hand off: {result}\n{}", s.tail(6000));
    let log = s.serial();
    for step in ["== carve", "== capture", "== verify", "== lay-down", "== hand-off"] {
        assert!(log.contains(step), "the PE did not run {step}:\n{log}");
    }
    // The shell key: busybox's sh on the screen; what it runs reaches the serial console; exit
    // goes back to the result screen.
    press(&s, "s");
    s.wait_for("inplace: a shell on the screen", SCREEN).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    type_text(&s, "echo shell-on-tty1 > /dev/ttyS0\n");
    s.wait_for("shell-on-tty1", SCREEN).unwrap();
    type_text(&s, "exit\n");
    screen(&mut s, "result", &["handed-off"], SCREEN);
    press(&s, "p");
    let serial = s.wait_exit(Duration::from_secs(120)).unwrap().serial;
    let screens: Vec<&str> = serial.lines().filter(|l| l.contains("inplace: tui: ")).collect();
    eprintln!("the TUI's screens on the serial console:\n{}", screens.join("\n"));

    // The new OS: restores before the login prompt; alice logs in with her old password; every
    // file is checked.
    let boot = e2e::boot_and_log_in(&disk, &manifest);
    eprintln!("first boot to login: {:.0} s", boot.as_secs_f64());
    let bad = e2e::check_done(&disk, &manifest);
    assert!(bad.is_empty(), "{} problems:\n  {}", bad.len(), bad.join("\n  "));
}
