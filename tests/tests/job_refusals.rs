//! Refusals before any write: `inplace run` on disk image files refuses each of these with a
//! message that names the problem, and every disk it was given is byte for byte as before
//! (sha256 of each whole image): a disk selector that matches nothing, one that matches two
//! disks, a preset with a syntax error or a misspelt key (line and column), a missing image, a
//! remote image with neither sha256 nor key, an image that does not fit, a system encrypted
//! with BitLocker or LUKS, and a preset without `confirm = false` run without `--yes`, and, as
//! a PE built with a preset key (`--preset-key`), an unsigned image and one signed with another
//! key. Also: a dry run writes nothing and prints the plan `inplace preset check` prints.
//!
//! Small fixtures made with the real tools (`tests/src/job_fixtures.rs`); no QEMU.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use inplace_tests::http_server::Server;
use inplace_tests::job_fixtures::{self, bitlocker_disk, linux_disk, luks_disk, new_os_image_signed};
use inplace_tests::signing::keygen;
use inplace_tests::{inplace_bin, sha256_file};

/// A preset for an unattended job with the image at `source`, pinned by `sha256` when given;
/// `extra` goes at the end (more tables).
fn preset(source: &str, sha256: Option<&str>, extra: &str) -> String {
    let pin = sha256.map(|d| format!("sha256 = \"{d}\"\n")).unwrap_or_default();
    format!("name = \"refusals\"\nconfirm = false\n\n[image]\nsource = \"{source}\"\n{pin}\n[store]\nafter = \"delete\"\n{extra}")
}

struct Case {
    dir: tempfile::TempDir,
    image: PathBuf,
    digest: String,
}

impl Case {
    fn new() -> Case {
        let dir = tempfile::tempdir().unwrap();
        let (image, digest) = job_fixtures::new_os_image(dir.path());
        Case { dir, image, digest }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The preset of a job that would run, with `extra` appended.
    fn good_preset(&self, extra: &str) -> String {
        preset(&self.image.display().to_string(), Some(&self.digest), extra)
    }

    /// Writes `preset` and runs `inplace ARGS --preset P --disk D…`.
    fn inplace(&self, args: &[&str], preset: &str, disks: &[&Path]) -> Output {
        let p = self.path().join("preset.toml");
        std::fs::write(&p, preset).unwrap();
        let mut cmd = Command::new(inplace_bin());
        cmd.args(args).arg("--preset").arg(&p);
        for d in disks {
            cmd.arg("--disk").arg(d);
        }
        cmd.output().expect("running inplace")
    }

    /// `inplace run` must fail, saying each of `wants`, and leave every disk as it was.
    /// Returns what it said.
    fn refused(&self, preset: &str, disks: &[&Path], wants: &[&str]) -> String {
        self.refused_with(&[], preset, disks, wants)
    }

    /// [`Case::refused`], with `args` after `inplace run`.
    fn refused_with(&self, args: &[&str], preset: &str, disks: &[&Path], wants: &[&str]) -> String {
        let before: Vec<String> = disks.iter().map(|d| sha256_file(d)).collect();
        let o = self.inplace(&[&["run"], args].concat(), preset, disks);
        let said = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert!(!o.status.success(), "inplace run was not refused:\n{said}");
        for w in wants {
            assert!(said.contains(w), "the refusal does not say {w:?}:\n{said}");
        }
        let after: Vec<String> = disks.iter().map(|d| sha256_file(d)).collect();
        assert_eq!(after, before, "a refused run wrote to a disk:\n{said}");
        eprintln!("refused, every disk as before:\n{said}");
        said
    }
}

#[test]
fn a_serial_that_matches_no_disk_is_refused() {
    let c = Case::new();
    let disk = linux_disk(c.path(), "old", 320);
    let said = c.refused(&c.good_preset("\n[disk]\nserial = \"NO-SUCH-DISK\"\n"), &[&disk], &["no disk matches", "serial = \"NO-SUCH-DISK\""]);
    assert!(said.contains(&disk.display().to_string()), "the refusal lists the disks seen:\n{said}");
}

#[test]
fn the_os_disk_is_ambiguous_when_two_disks_hold_an_os() {
    let c = Case::new();
    let a = linux_disk(c.path(), "first", 320);
    let b = linux_disk(c.path(), "second", 320);
    let said = c.refused(&c.good_preset(""), &[&a, &b], &["2 disks match", "disk = \"os\""]);
    for d in [&a, &b] {
        assert!(said.contains(&d.display().to_string()), "the refusal names both disks:\n{said}");
    }
}

#[test]
fn preset_errors_name_the_line_and_column() {
    let c = Case::new();
    let disk = linux_disk(c.path(), "old", 320);
    let p = c.path().join("preset.toml").display().to_string();
    // A value that is not TOML: line 2, where `flase` begins.
    c.refused("name = \"broken\"\nconfirm = flase\n", &[&disk], &[&p, "line 2, column 11"]);
    // A misspelt key is an error too, not a default: line 5, where `sourse` begins.
    let misspelt = c.good_preset("").replace("source = ", "sourse = ");
    let said = c.refused(&misspelt, &[&disk], &[&p, "line 5, column 1", "sourse"]);
    assert!(!said.contains("panicked"), "{said}");
}

#[test]
fn a_missing_image_is_refused() {
    let c = Case::new();
    let disk = linux_disk(c.path(), "old", 320);
    let gone = c.path().join("images/not-there.inplace").display().to_string();
    c.refused(&preset(&gone, Some(&c.digest), ""), &[&disk], &[&gone, "does not exist"]);
    // A relative path is looked for beside the preset, and the refusal says where it looked.
    c.refused(&preset("images/not-there.inplace", Some(&c.digest), ""), &[&disk], &["images/not-there.inplace", "is not on", &c.path().display().to_string()]);
}

#[test]
fn a_remote_image_without_sha256_or_key_is_refused_before_it_is_fetched() {
    let c = Case::new();
    let disk = linux_disk(c.path(), "old", 320);
    let server = Server::start(c.image.clone());
    let url = server.url("new-os.inplace");
    c.refused(&preset(&url, None, ""), &[&disk], &[&url, "neither its sha256 nor a signing key"]);
    assert!(server.ranges().is_empty(), "the unpinned image was fetched: {:?}", server.ranges());
}

/// A PE built with a preset key (here `inplace run --preset-key`, which gives the job the same
/// `Env`) lays down only signed images: an unsigned image and one signed with another key are
/// refused at plan time, every disk as before. The image signed with the PE's key plans, pinned
/// by that key alone (remote too, with no sha256); a preset that pins another key takes the
/// image signed with that one.
#[test]
fn a_preset_key_takes_only_images_signed_with_it_or_with_the_key_the_preset_pins() {
    let c = Case::new();
    let disk = linux_disk(c.path(), "old", 320);
    let (pe, other) = (keygen(c.path(), "pe"), keygen(c.path(), "other"));
    let with_key = ["--preset-key", pe.public.to_str().unwrap()];
    let signed = |name: &str, keys: &inplace_tests::signing::Keys| {
        let dir = c.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        new_os_image_signed(&dir, Some(&keys.secret))
    };
    let unsigned = c.image.display().to_string();
    c.refused_with(&with_key, &preset(&unsigned, Some(&c.digest), ""), &[&disk], &[&unsigned, "is not signed", "lays down only images signed with it", "--sign-key"]);
    let (by_other, other_digest) = signed("by-other", &other);
    let by_other = by_other.display().to_string();
    let other_key = format!("signed by key {}, not by this PE's preset key {}", other.hex, pe.hex);
    c.refused_with(&with_key, &preset(&by_other, Some(&other_digest), ""), &[&disk], &[&by_other, &other_key, "--sign-key"]);

    let before = sha256_file(&disk);
    let plans = |preset: &str, wants: &str| {
        let o = c.inplace(&["run", "--dry-run", "--preset-key", pe.public.to_str().unwrap()], preset, &[&disk]);
        let said = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert!(o.status.success() && said.contains(wants), "expected a plan saying {wants:?}:\n{said}");
    };
    let (by_pe, _) = signed("by-pe", &pe);
    plans(&preset(&by_pe.display().to_string(), None, ""), "pinned by the PE's preset key)");
    let server = Server::start(by_pe.clone());
    plans(&preset(&server.url("by-pe.inplace"), None, ""), "pinned by the PE's preset key)");
    let pins_other = preset(&by_other, None, "").replace("\n[store]", &format!("key = \"{}\"\n\n[store]", other.hex));
    plans(&pins_other, "pinned by key)");
    assert_eq!(sha256_file(&disk), before, "a dry run wrote to the disk");
}

#[test]
fn an_image_that_does_not_fit_is_refused() {
    let c = Case::new();
    // 160 MiB: once the store is carved, less than the image's 128 MiB ESP and its root.
    let disk = linux_disk(c.path(), "small", 160);
    c.refused(&c.good_preset(""), &[&disk], &["does not fit", &c.image.display().to_string(), "partition 1 alone"]);
}

#[test]
fn a_system_encrypted_with_bitlocker_is_refused() {
    let c = Case::new();
    let disk = bitlocker_disk(c.path());
    c.refused(&c.good_preset(""), &[&disk], &["encrypted with BitLocker", "partition 2"]);
}

#[test]
fn a_system_encrypted_with_luks_is_refused() {
    let c = Case::new();
    let disk = luks_disk(c.path());
    c.refused(&c.good_preset(""), &[&disk], &["encrypted with LUKS", "partition 3"]);
}

#[test]
fn a_preset_without_confirm_false_writes_nothing_without_yes() {
    let c = Case::new();
    let disk = linux_disk(c.path(), "old", 320);
    let asking = c.good_preset("").replace("confirm = false\n", "");
    c.refused(&asking, &[&disk], &["does not say confirm = false", "--yes"]);
    // `confirm = true` (or anything but false) asks too.
    c.refused(&asking.replace("name = ", "confirm = true\nname = "), &[&disk], &["does not say confirm = false"]);
}

#[test]
fn a_dry_run_writes_nothing_and_prints_the_plan_that_preset_check_prints() {
    let c = Case::new();
    let disk = linux_disk(c.path(), "old", 320);
    let preset = c.good_preset("");
    let before = sha256_file(&disk);
    let dry = c.inplace(&["run", "--dry-run"], &preset, &[&disk]);
    assert!(dry.status.success(), "{}", String::from_utf8_lossy(&dry.stderr));
    assert_eq!(sha256_file(&disk), before, "the dry run wrote to the disk");
    let p = c.path().join("preset.toml");
    let check = Command::new(inplace_bin()).args(["preset", "check"]).arg(&p).arg("--disk").arg(&disk).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    assert_eq!(sha256_file(&disk), before, "preset check wrote to the disk");
    let dry = String::from_utf8_lossy(&dry.stdout).into_owned();
    let check = String::from_utf8_lossy(&check.stdout).into_owned();
    let plan = dry.strip_suffix("dry run: nothing was written\n").unwrap_or_else(|| panic!("the dry run does not end by saying so:\n{dry}"));
    assert_eq!(plan, check, "the dry run and preset check print different plans");
    // A plan worth comparing: the capture, the store, the image and the partitions after.
    for want in ["capture: partition 2 (ext4, Debian GNU/Linux) into capture/, users alice, bob", "store: ", "from the free tail of partition 2", "pinned by sha256", "partitions after the lay-down:", "store (INPLACE)"] {
        assert!(plan.contains(want), "the plan does not say {want:?}:\n{plan}");
    }
}

/// A FAT32 stick, an NTFS and an exFAT disk without a partition table (superfloppies): the
/// plan names the filesystem over the whole disk and refuses to carve on it.
#[test]
fn a_disk_without_a_partition_table_is_refused() {
    let c = Case::new();
    let mib = inplace_tests::fixtures::MIB;
    let disks = [
        (inplace_tests::fixtures::fat_superfloppy(c.path(), "stick", 320 * mib, &["-F", "32"], Some("STICK"), 437), "vfat"),
        (inplace_tests::fixtures::ntfs_superfloppy(c.path(), "ntfs", 320 * mib, "Data"), "ntfs"),
        (inplace_tests::fixtures::exfat_superfloppy(c.path(), "exfat", 320 * mib, "Data"), "exfat"),
    ];
    for (disk, fs) in &disks {
        let one = format!("the whole disk is one {fs} filesystem");
        c.refused(&c.good_preset("\n[disk]\nsize = \"320M\"\n"), &[disk], &["has no partition table", &one, "partition the disk"]);
    }
}

/// `inplace capture` of a BitLocker or LUKS partition is refused with what to do, before the
/// store or the disk is written.
#[test]
fn capture_refuses_an_encrypted_partition_before_any_write() {
    let c = Case::new();
    let store = inplace_tests::migrate_fixtures::store_volume(c.path(), "store.fat", 64 * inplace_tests::fixtures::MIB);
    for (disk, n, what, advice) in [(bitlocker_disk(c.path()), "2", "BitLocker", "manage-bde -off"), (luks_disk(c.path()), "3", "LUKS", "turn LUKS off")] {
        let before = (sha256_file(&disk), sha256_file(&store));
        let o = Command::new(inplace_bin()).args(["capture", "--disk"]).arg(&disk).args(["--partition", n, "--store"]).arg(&store).output().unwrap();
        let said = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert!(!o.status.success(), "{said}");
        assert!(said.contains(&format!("encrypted with {what}")) && said.contains(advice), "{said}");
        assert_eq!((sha256_file(&disk), sha256_file(&store)), before, "{said}");
    }
}
