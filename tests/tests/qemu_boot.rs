//! Boots the real kernel and initramfs in QEMU (TCG) and checks what the PE does.

use std::time::Duration;

use inplace_tests::qemu::{Controller, Vm};

/// A fatal error is shown on the console with what to do, and a key reboots (QEMU exits
/// because of -no-reboot) — the PE never panics the kernel.
#[test]
fn qemu_fatal_error_waits_for_a_key_then_reboots() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("blank.img");
    std::fs::File::create(&disk).unwrap().set_len(64 << 20).unwrap();
    let mut vm = Vm::new("inplace.action=bogus").disk(&disk, Controller::VirtioBlk, 512, "blank");
    vm.serial_replies.push(("press any key to reboot".into(), "x".into()));
    vm.timeout = Duration::from_secs(180);
    let run = vm.run();
    assert!(run.serial.contains("inplace: FATAL: unknown inplace.action=\"bogus\""), "{}", run.serial);
    assert!(run.serial.contains("use inplace.action=tui, inplace.action=unattended or inplace.action=inspect"), "{}", run.serial);
    assert!(run.exited, "the PE did not reboot after the key: {}", run.serial);
    assert!(!run.serial.contains("Kernel panic"), "{}", run.serial);
}

/// The TUI runs on tty1 and takes keys from the keyboard: `p` powers off.
#[test]
fn qemu_tui_takes_keys_on_the_screen() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("blank.img");
    std::fs::File::create(&disk).unwrap().set_len(64 << 20).unwrap();
    let mut vm = Vm::new("").disk(&disk, Controller::VirtioBlk, 512, "blank");
    // Give the TUI a moment to start after `ready`, then press p on the PS/2 keyboard.
    vm.monitor_commands.push(("inplace: ready".into(), "sendkey p".into()));
    vm.timeout = Duration::from_secs(180);
    let run = vm.run();
    eprintln!("boot timing (kernel, TUI): {}", run.boot_timing());
    assert!(run.has_line("inplace: ready"), "{}", run.serial);
    assert!(run.exited, "the TUI did not power off on `p`: {}", run.serial);
    assert!(!run.serial.contains("FATAL"), "{}", run.serial);
}

mod inventory {
    use super::*;
    use inplace::inventory::Inventory;
    use inplace_tests::fixtures::{self, Fixture};

    /// Boots the PE with `inplace.action=inspect` and the standard fixtures on one controller.
    /// Checks: drivers load by modalias (the controller's driver, and no other controller's),
    /// the PE reaches `ready`, its inventory matches each fixture exactly and equals what
    /// `inplace inspect --json` says on the host, and no fixture byte changed.
    fn boot_and_compare(controller: Controller) {
        let dir = tempfile::tempdir().unwrap();
        let mut fixtures: Vec<Fixture> =
            vec![fixtures::gpt_multi_os(dir.path()), fixtures::mbr_extended(dir.path()), fixtures::blank(dir.path())];
        // QEMU's AHCI disks only have 512-byte sectors.
        if controller != Controller::Ahci {
            fixtures.push(fixtures::gpt_4k(dir.path()));
        }
        let before: Vec<String> = fixtures.iter().map(|f| inplace_tests::sha256_file(&f.path)).collect();
        let mut vm = Vm::new("inplace.action=inspect");
        for f in &fixtures {
            vm = vm.disk(&f.path, controller, f.expected.logical_sector_size, f.name);
        }
        let run = vm.run();
        let serial = &run.serial;
        assert!(run.has_line("inplace: ready"), "no ready line:\n{serial}");
        assert!(run.exited, "the PE did not power off after the inventory:\n{serial}");

        let loaded = serial.lines().find_map(|l| l.trim_end().strip_prefix("inplace: drivers loaded: ")).unwrap_or("");
        let loaded: Vec<&str> = loaded.split_whitespace().collect();
        let (want, not) = match controller {
            Controller::VirtioBlk => ("virtio_blk", ["ahci", "nvme"]),
            Controller::Ahci => ("ahci", ["virtio_blk", "nvme"]),
            Controller::Nvme => ("nvme", ["ahci", "virtio_blk"]),
        };
        assert!(loaded.contains(&want), "{want} was not loaded by modalias; loaded: {loaded:?}");
        for n in not {
            assert!(!loaded.contains(&n), "{n} loaded with no such controller present: {loaded:?}");
        }

        let json = run.between("inplace: inventory begin", "inplace: inventory end").unwrap_or_else(|| panic!("no inventory:\n{serial}"));
        let inventory: Inventory = serde_json::from_str(&json).unwrap_or_else(|e| panic!("inventory JSON: {e}\n{json}"));
        assert_eq!(inventory.disks.len(), fixtures.len(), "disks: {:#?}", inventory.disks);
        for f in &fixtures {
            let disk = inventory
                .disks
                .iter()
                .find(|d| d.serial.as_deref() == Some(f.name))
                .unwrap_or_else(|| panic!("no disk with serial {} in {:#?}", f.name, inventory.disks));
            f.expected.check(disk).unwrap_or_else(|e| panic!("{} on {controller:?}: {e}", f.name));

            let out = std::process::Command::new(inplace_tests::inplace_bin())
                .args(["inspect", "--json"])
                .arg(&f.path)
                .output()
                .unwrap();
            let host: Inventory = serde_json::from_slice(&out.stdout).unwrap();
            let h = &host.disks[0];
            assert_eq!((&h.table, &h.partitions), (&disk.table, &disk.partitions), "{}: host and PE disagree", f.name);
        }
        let after: Vec<String> = fixtures.iter().map(|f| inplace_tests::sha256_file(&f.path)).collect();
        assert_eq!(before, after, "the PE changed a disk while only inspecting");
        eprintln!("boot timing ({controller:?}): {}", run.boot_timing());
    }

    #[test]
    fn qemu_inventory_over_virtio_blk() {
        boot_and_compare(Controller::VirtioBlk);
    }

    #[test]
    fn qemu_inventory_over_ahci() {
        boot_and_compare(Controller::Ahci);
    }

    #[test]
    fn qemu_inventory_over_nvme() {
        boot_and_compare(Controller::Nvme);
    }
}
