//! The PE built with a preset key, booted straight from its kernel (BIOS, TCG) with
//! `inplace.action=unattended inplace.preset=http://10.0.2.2:PORT/NAME` against an old
//! machine's disk: the initramfs is the built one with the key appended by
//! `scripts/add-preset-key` (what `scripts/build-pe --preset-key` runs), the presets and their
//! `.sig` files come from a folder served on 127.0.0.1.
//!
//! A preset changed after it was signed, one without a `.sig` (404) and one signed with another
//! key are each refused on the serial console with what was wrong, and the disk's sha256 is
//! the same afterwards; the machine is stopped as soon as the refusal is shown. A signed survey
//! preset (no image) runs: the PE says the signature verified, takes inventory and powers off.
//!
//! Needs the built PE (`scripts/build-pe`); `cargo test -p inplace-tests --features pe --test
//! preset_trust`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use inplace_tests::http_server::Server;
use inplace_tests::job_fixtures::linux_disk;
use inplace_tests::qemu::{pe_dir, Controller, Vm};
use inplace_tests::sha256_file;
use inplace_tests::signing::{keyed_initramfs, keygen, sign_preset, Keys};

const SERIAL: &str = "OLDBOX-1";
const WAIT: Duration = Duration::from_secs(240);

/// A job that would wipe the disk with serial `serial`; the image is never reached.
fn job_preset(serial: &str) -> String {
    format!(
        "name = \"lab B\"\nconfirm = false\nfinish = \"poweroff\"\n\n[disk]\nserial = \"{serial}\"\n\n[image]\n\
         source = \"http://10.0.2.2:9/new-os.inplace\"\nsha256 = \"{}\"\n",
        "6c".repeat(32)
    )
}

/// The keyed initramfs, the served folder, the old machine's disk.
struct Lab {
    dir: tempfile::TempDir,
    pe: Keys,
    other: Keys,
    www: PathBuf,
    server: Server,
    initrd: PathBuf,
    disk: PathBuf,
}

impl Lab {
    fn new() -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let (pe, other) = (keygen(dir.path(), "pe"), keygen(dir.path(), "other"));
        let initrd = dir.path().join("initramfs-keyed.img");
        keyed_initramfs(&pe, &pe_dir().join("initramfs.img"), &initrd);
        let www = dir.path().join("www");
        std::fs::create_dir(&www).unwrap();
        let disk = linux_disk(dir.path(), "old", 160);
        Lab { server: Server::start_dir(www.clone()), dir, pe, other, www, initrd, disk }
    }

    /// Serves `text` as `name`, with `NAME.sig` by `signer` over `signed` (the text as signed,
    /// which differs from `text` when someone changed it since).
    fn serve(&self, name: &str, text: &str, signed: Option<(&Keys, &str)>) {
        let file = self.www.join(name);
        if let Some((keys, signed_text)) = signed {
            std::fs::write(&file, signed_text).unwrap();
            sign_preset(keys, &file);
        }
        std::fs::write(&file, text).unwrap();
    }

    /// A copy of the old machine's disk for one boot (QEMU locks the image it writes).
    fn disk_copy(&self, name: &str) -> PathBuf {
        let copy = self.dir.path().join(format!("{name}.img"));
        let st = std::process::Command::new("cp").arg("--sparse=always").arg(&self.disk).arg(&copy).status().unwrap();
        assert!(st.success());
        copy
    }

    fn vm(&self, name: &str, disk: &Path) -> Vm {
        let url = format!("http://10.0.2.2:{}/{name}", self.server.port);
        Vm::new(&format!("inplace.action=unattended inplace.preset={url}"))
            .with_initrd(&self.initrd)
            .with_user_net()
            .disk(disk, Controller::VirtioBlk, 512, SERIAL)
    }

    /// Boots with the preset `name`; the PE must stop before changing any disk, saying each of
    /// `wants`. QEMU is stopped as soon as it has; the disk is as it was.
    fn refused(&self, name: &str, wants: &[&str]) {
        let disk = self.disk_copy(name);
        let before = sha256_file(&disk);
        let started = Instant::now();
        let mut s = self.vm(name, &disk).start();
        let stops = ["inplace: the PE stopped before changing any disk", "inplace: the PE stopped."];
        let (which, seen) = s.wait_for_any(&stops, WAIT).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        let at = started.elapsed();
        drop(s);
        assert_eq!(which, 0, "{name}: the PE stopped, but not before changing a disk:\n{seen}");
        let fatal = seen.lines().find(|l| l.contains("inplace: FATAL: ")).unwrap_or_else(|| panic!("{name}: no FATAL line:\n{seen}"));
        for w in wants.iter().chain(&["Sign the preset with `inplace preset sign`", "nothing was written"]) {
            assert!(fatal.contains(w), "{name}: the refusal does not say {w:?}:\n{fatal}");
        }
        assert_eq!(sha256_file(&disk), before, "{name}: the disk changed");
        eprintln!("{name}: refused after {at:.1?} of boot, disk unchanged:\n  {}", fatal.trim());
    }
}

#[test]
fn a_changed_preset_and_one_without_a_signature_are_refused() {
    let lab = Lab::new();
    // Someone on the wire points the wipe at this machine's disk: one byte.
    lab.serve("tampered.toml", &job_preset("OLDBOX-1"), Some((&lab.pe, &job_preset("OLDBOX-2"))));
    lab.refused("tampered.toml", &["does not verify against this PE's preset key", &lab.pe.hex, "changed after it was signed"]);
    lab.serve("unsigned.toml", &job_preset(SERIAL), None);
    let missing = format!("http://10.0.2.2:{}/unsigned.toml.sig answered HTTP 404 Not Found", lab.server.port);
    lab.refused("unsigned.toml", &[&missing]);
}

#[test]
fn a_preset_signed_with_another_key_is_refused_and_a_signed_survey_runs() {
    let lab = Lab::new();
    let text = job_preset(SERIAL);
    lab.serve("other.toml", &text, Some((&lab.other, &text)));
    lab.refused("other.toml", &["does not verify against this PE's preset key", &format!("names key {}", lab.other.hex)]);

    let survey = "name = \"lab B survey\"\nfinish = \"poweroff\"\n";
    lab.serve("survey.toml", survey, Some((&lab.pe, survey)));
    let disk = lab.disk_copy("survey");
    let before = sha256_file(&disk);
    let ended = lab.vm("survey.toml", &disk).start().wait_exit(WAIT).unwrap();
    let serial = ended.serial.replace('\r', "");
    for w in [
        format!("survey.toml.sig verified against this PE's preset key {}", lab.pe.hex),
        "inplace: preset lab B survey".to_string(),
        "the preset names no image: this run takes inventory".to_string(),
    ] {
        assert!(serial.contains(&w), "the survey does not say {w:?}:\n{serial}");
    }
    assert!(!serial.contains("FATAL"), "{serial}");
    assert_eq!(sha256_file(&disk), before, "the survey changed the disk");
    eprintln!("signed survey: ran and powered off after {:.1?}, disk unchanged", ended.elapsed);
}
