//! `inplace inspect --json` on fixture images made by the real tools: the inventory must match
//! each fixture exactly, malformed images must give their findings (exit 0, no panic), and no
//! image may change (sha256 of its data extents before and after; the full-file sha256 of the
//! 4.5 GiB sparse image would take minutes in a debug build).

use std::path::Path;
use std::process::Command;

use inplace::inventory::{Inventory, Severity};
use inplace_tests::fixtures::{self, image_fingerprint, Fixture};
use inplace_tests::inplace_bin;

struct Run {
    inventory: Inventory,
    json: serde_json::Value,
}

fn inspect(paths: &[&Path]) -> Run {
    let out = Command::new(inplace_bin()).arg("inspect").arg("--json").args(paths).output().expect("running inplace");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "inplace inspect exited with {}:\n{stderr}", out.status);
    assert!(!stderr.contains("panicked"), "inplace inspect panicked:\n{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("inspect printed no JSON ({e}):\n{stdout}"));
    let inventory = serde_json::from_value(json.clone()).expect("the JSON is an Inventory");
    Run { inventory, json }
}

/// Inspects the fixture, compares it with its expectation, and checks the image is unchanged.
fn check(f: Fixture) -> Run {
    let before = image_fingerprint(&f.path);
    let run = inspect(&[&f.path]);
    let inv = &run.inventory;
    assert!(inv.findings.is_empty(), "{}: unexpected inventory findings {:#?}", f.name, inv.findings);
    assert_eq!(inv.disks.len(), 1, "{}", f.name);
    let disk = &inv.disks[0];
    assert_eq!(disk.name, f.path.display().to_string());
    assert_eq!(disk.transport, "file");
    assert_eq!(disk.physical_sector_size, disk.logical_sector_size);
    assert!(disk.model.is_none() && disk.serial.is_none() && disk.wwn.is_none() && !disk.removable);
    if let Err(e) = f.expected.check(disk) {
        panic!("{}: {e}\nfull JSON:\n{}", f.name, serde_json::to_string_pretty(&run.json).unwrap());
    }
    assert_eq!(image_fingerprint(&f.path), before, "{}: inspect changed the image", f.name);
    assert!(f.find_in(inv).is_some());
    run
}

fn tmp() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("inplace-inspect-").tempdir().expect("temp dir")
}

#[test]
fn gpt_multi_os() {
    let dir = tmp();
    let run = check(fixtures::gpt_multi_os(dir.path()));
    // The JSON field names are part of the interface.
    let p = &run.json["disks"][0]["partitions"][2];
    assert_eq!(p["type"], "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7");
    assert_eq!(p["os"]["family"], "windows");
    assert_eq!(p["os"]["users"], serde_json::json!(["Carol", "Dave"]));
    assert_eq!(run.json["disks"][0]["partitions"][1]["os"]["users"], serde_json::json!(["alice", "bob"]));
}

#[test]
fn mbr_extended() {
    let dir = tmp();
    check(fixtures::mbr_extended(dir.path()));
}

#[test]
fn gpt_4k() {
    let dir = tmp();
    check(fixtures::gpt_4k(dir.path()));
}

#[test]
fn blank() {
    let dir = tmp();
    check(fixtures::blank(dir.path()));
}

#[test]
fn signatures() {
    let dir = tmp();
    check(fixtures::signatures(dir.path()));
}

#[test]
fn malformed_images_give_findings() {
    let dir = tmp();
    for f in [
        fixtures::gpt_truncated(dir.path()),
        fixtures::gpt_corrupt_primary(dir.path()),
        fixtures::mbr_overlap(dir.path()),
        fixtures::garbage_superblock(dir.path()),
        fixtures::zero_size(dir.path()),
    ] {
        check(f);
    }
}

#[test]
fn unreadable_paths_are_findings_and_others_still_listed() {
    let dir = tmp();
    let blank = fixtures::blank(dir.path());
    let missing = dir.path().join("no-such.img");
    let run = inspect(&[&missing, &blank.path, dir.path()]);
    let inv = run.inventory;
    assert_eq!(inv.disks.len(), 1);
    blank.expected.check(&inv.disks[0]).unwrap();
    assert_eq!(inv.findings.len(), 2, "{:#?}", inv.findings);
    assert_eq!(inv.findings[0].severity, Severity::Error);
    assert_eq!(inv.findings[0].subject, missing.display().to_string());
    assert!(inv.findings[0].message.contains("cannot open") && inv.findings[0].message.contains("No such file"));
    assert!(inv.findings[1].message.contains("neither a regular file nor a block device"));
}

#[test]
fn plain_output_works() {
    let dir = tmp();
    let f = fixtures::gpt_corrupt_primary(dir.path());
    let out = Command::new(inplace_bin()).arg("inspect").arg(&f.path).output().expect("running inplace");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("primary GPT header is corrupt"), "{text}");
}

/// Builds every fixture into `$INPLACE_FIXTURE_DIR` and keeps them (for poking at by hand):
/// `INPLACE_FIXTURE_DIR=/tmp/fx cargo test -p inplace-tests --test inspect -- --ignored keep_fixtures`
#[test]
#[ignore]
fn keep_fixtures() {
    let dir = std::path::PathBuf::from(std::env::var_os("INPLACE_FIXTURE_DIR").expect("set INPLACE_FIXTURE_DIR"));
    std::fs::create_dir_all(&dir).unwrap();
    for f in [
        fixtures::gpt_multi_os(&dir),
        fixtures::mbr_extended(&dir),
        fixtures::gpt_4k(&dir),
        fixtures::blank(&dir),
        fixtures::signatures(&dir),
        fixtures::gpt_truncated(&dir),
        fixtures::gpt_corrupt_primary(&dir),
        fixtures::mbr_overlap(&dir),
        fixtures::garbage_superblock(&dir),
        fixtures::zero_size(&dir),
    ] {
        eprintln!("{}: {}", f.name, f.path.display());
    }
}

/// Windows 11 23H2 with real hives (hivexregedit): ProductName still says "Windows 10", the
/// build says 11; accounts come from ProfileList and SAM — a local one on C:, a domain
/// profile, a local one whose profile is on D:, a local account that never logged on — and the
/// folder of no account is a finding.
#[test]
fn windows_11_from_its_registry() {
    let dir = tmp();
    let img = fixtures::windows_registry_disk(dir.path(), "win11-23h2", &["Carol", "carol.CONTOSO", "OldUser"], &["Dave"]);
    let run = inspect(&[&img]);
    let d = &run.json["disks"][0];
    let os = &d["partitions"][0]["os"];
    assert_eq!(os["family"], "windows");
    assert_eq!(os["version"], "Windows 11 Pro 23H2, build 22631.2861");
    assert_eq!(os["edition"], "Professional");
    assert_eq!(os["users_from"], "registry");
    // In ProfileList's order: the hive keeps subkeys sorted by SID.
    assert_eq!(os["users"], serde_json::json!(["carol.CONTOSO", "Carol", "Dave"]));
    let m = "S-1-5-21-3623811015-3361044348-30300820";
    assert_eq!(
        os["accounts"],
        serde_json::json!([
            {"name": "carol.CONTOSO", "sid": "S-1-5-21-1004336348-1177238915-682003330-1105", "profile": "C:\\Users\\carol.CONTOSO", "kind": "domain", "last_use": "2023-11-20T17:45:00Z"},
            {"name": "Carol", "sid": format!("{m}-1001"), "profile": "C:\\Users\\Carol", "kind": "local", "last_use": "2024-03-05T09:30:00Z"},
            {"name": "Dave", "sid": format!("{m}-1002"), "profile": "D:\\Users\\Dave", "kind": "local"},
        ])
    );
    let findings: Vec<&str> = run.inventory.disks[0].findings.iter().map(|f| f.message.as_str()).collect();
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert!(findings[0].contains("\\Users\\OldUser belongs to no account"), "{findings:#?}");
    // The data volume is no OS.
    assert!(d["partitions"][1]["os"].is_null());
}

/// Windows 10 22H2 Home with real hives: edition, version and build; its one account.
#[test]
fn windows_10_from_its_registry() {
    let dir = tmp();
    let img = fixtures::windows_registry_disk(dir.path(), "win10-22h2", &["Erin"], &[]);
    let run = inspect(&[&img]);
    let os = &run.json["disks"][0]["partitions"][0]["os"];
    assert_eq!(os["version"], "Windows 10 Home 22H2, build 19045.3803");
    assert_eq!(os["edition"], "Core");
    assert_eq!(os["users"], serde_json::json!(["Erin"]));
    assert_eq!(os["accounts"][0]["kind"], "local");
    assert!(run.inventory.disks[0].findings.is_empty(), "{:#?}", run.inventory.disks[0].findings);
}

fn inspect_with(args: &[&str], path: &Path) -> serde_json::Value {
    let out = Command::new(inplace_bin()).arg("inspect").arg("--json").args(args).arg(path).output().expect("running inplace");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("inspect's JSON")
}

/// A whole-disk filesystem is table "none" with one pseudo-partition 0 naming it; returns it.
fn whole_disk(json: &serde_json::Value, fs: &str) -> serde_json::Value {
    let d = &json["disks"][0];
    assert_eq!(d["table"], "none", "{json:#}");
    assert_eq!(d["partitions"].as_array().unwrap().len(), 1, "{json:#}");
    let p = d["partitions"][0].clone();
    assert_eq!((p["number"].as_u64(), p["type"].as_str(), p["fs"].as_str()), (Some(0), Some("whole-disk"), Some(fs)), "{json:#}");
    assert_eq!(p["start_bytes"].as_u64(), Some(0));
    assert_eq!(p["size_bytes"], d["size_bytes"]);
    assert!(d["findings"][0]["message"].as_str().unwrap().contains(&format!("the whole disk is one {fs} filesystem")), "{json:#}");
    p
}

/// FAT labels against blkid, which prints the raw OEM bytes: decoded by iconv from the code
/// page inspect was told (CP437 by default). Õ first (0xE5, stored as 0x05 in the directory
/// entry), non-ASCII bytes, and mkfs's "NO NAME" marker (no label), on whole-disk FAT32 and
/// FAT16 sticks.
#[test]
fn fat_labels_decode_like_blkid_in_the_code_page() {
    let dir = tmp();
    let d = dir.path();
    let o_first = fixtures::fat_superfloppy(d, "o-first", 64 * fixtures::MIB, &["-F", "32"], Some("ÕDELA"), 850);
    let raw = fixtures::blkid_value(&o_first, "LABEL").expect("blkid reads a label");
    assert_eq!(raw[0], 0xE5, "blkid gives 0xE5 for the 0x05 on disk");
    let p = whole_disk(&inspect_with(&["--codepage", "850"], &o_first), "vfat");
    assert_eq!(p["label"].as_str().unwrap(), fixtures::iconv_from("IBM850", &raw));
    assert_eq!(p["label"], "ÕDELA");
    // The same bytes in the default CP437.
    let p = whole_disk(&inspect_with(&[], &o_first), "vfat");
    assert_eq!(p["label"].as_str().unwrap(), fixtures::iconv_from("IBM437", &raw));

    let cafe = fixtures::fat_superfloppy(d, "cafe", 32 * fixtures::MIB, &["-F", "16"], Some("CAFÉ ÑU"), 850);
    let raw = fixtures::blkid_value(&cafe, "LABEL").unwrap();
    for (cp, iconv) in [("437", "IBM437"), ("850", "IBM850")] {
        let p = whole_disk(&inspect_with(&["--codepage", cp], &cafe), "vfat");
        assert_eq!(p["label"].as_str().unwrap(), fixtures::iconv_from(iconv, &raw), "code page {cp}");
    }

    let no_name = fixtures::fat_superfloppy(d, "no-name", 64 * fixtures::MIB, &["-F", "32"], None, 437);
    assert_eq!(fixtures::blkid_value(&no_name, "LABEL"), None);
    assert!(whole_disk(&inspect_with(&[], &no_name), "vfat")["label"].is_null());

    let out = Command::new(inplace_bin()).args(["inspect", "--codepage", "1252"]).arg(&cafe).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("code page 1252 is not known"));
}

/// exFAT's UTF-16 label and NTFS's, on whole-disk volumes, as blkid reads them.
#[test]
fn exfat_and_ntfs_superfloppies_are_named_with_their_labels() {
    let dir = tmp();
    let exfat = fixtures::exfat_superfloppy(dir.path(), "exfat", 64 * fixtures::MIB, "Łódź Daten");
    let p = whole_disk(&inspect_with(&[], &exfat), "exfat");
    assert_eq!(p["label"].as_str().unwrap().as_bytes(), fixtures::blkid_value(&exfat, "LABEL").unwrap());
    assert_eq!(p["label"], "Łódź Daten");
    let ntfs = fixtures::ntfs_superfloppy(dir.path(), "ntfs", 64 * fixtures::MIB, "Sauvegarde");
    let p = whole_disk(&inspect_with(&[], &ntfs), "ntfs");
    assert_eq!(p["label"].as_str().unwrap().as_bytes(), fixtures::blkid_value(&ntfs, "LABEL").unwrap());
}

/// The `ntfs` crate's own test volume (made by mkntfs with 512-byte clusters and filled
/// through ntfs-3g by its script): inspect names it and its label as blkid does, and inplace's
/// NTFS reader walks it without a panic, reading every file it reaches. Some of the 512
/// subdirectories' MFT records cannot be read (the ntfs crate reads a 1024-byte record as one
/// piece, and on this volume's grown $MFT a record may straddle two runs of 512-byte
/// clusters): each is a clear "damaged" error naming the path, never a panic or wrong data.
#[test]
fn the_ntfs_crates_test_volume_parses_and_gives_its_label() {
    let dir = tmp();
    let img = dir.path().join("testfs1");
    let z = fixtures::data_path("ntfs-crate/testfs1.zst");
    fixtures::run(Command::new("zstd").args(["-d", "-q", "-f"]).arg(&z).arg("-o").arg(&img));
    let p = whole_disk(&inspect_with(&[], &img), "ntfs");
    assert_eq!(p["label"], "mylabel");
    assert_eq!(p["label"].as_str().unwrap().as_bytes(), fixtures::blkid_value(&img, "LABEL").unwrap());

    let disk: inplace::disk::device::SharedDisk = std::sync::Arc::new(inplace::disk::device::Device::open(&img).unwrap());
    let mut fs = inplace::fs::open("ntfs", inplace::fs::range::RangeReader::whole(disk)).unwrap().unwrap();
    let (mut files, mut bytes, mut damaged) = (0, 0u64, Vec::new());
    let dirs = walk(fs.as_mut(), &mut |fs, path, kind| {
        if kind != inplace::fs::EntryKind::Dir {
            files += 1;
            bytes += fs.read_file(path, &mut std::io::sink()).unwrap_or_else(|e| panic!("{}: {e}", String::from_utf8_lossy(path)));
        }
    }, &mut |dir, e| {
        let shown = String::from_utf8_lossy(dir).into_owned();
        let msg = e.to_string();
        assert!(msg.contains(&shown) && msg.contains("damaged"), "{msg}");
        damaged.push(shown);
    });
    eprintln!("read {dirs} directories, {files} files, {bytes} bytes; damaged records: {}", damaged.len());
    // The root, $Extend, many_subdirs and its 512 subdirectories; empty-file,
    // file-with-12345, 1000-bytes-file and sparse-file (500005 bytes).
    assert_eq!(dirs + damaged.len(), 515, "{damaged:?}");
    assert!(damaged.iter().all(|d| d.starts_with("/many_subdirs/")), "{damaged:?}");
    assert_eq!((files, bytes), (4, 5 + 1000 + 500_005));
    assert_eq!(fs.read_small(b"/file-with-12345", 16).unwrap(), b"12345");
}

/// An NTFS disk that Windows 10 partitioned and formatted (tests/data/ntfs-windows): inspect
/// names its MBR partition and label as blkid does, and inplace's NTFS reader reads every file
/// Windows left on it byte for byte as ntfs-3g reads them.
#[test]
fn a_windows_made_ntfs_parses_and_reads_as_ntfs_3g_reads_it() {
    let dir = tmp();
    let img = dir.path().join("windows.raw");
    let z = fixtures::data_path("ntfs-windows/ntfs-lastaccess.raw.zst");
    fixtures::run(Command::new("zstd").args(["-d", "-q", "-f"]).arg(&z).arg("-o").arg(&img));
    let json = inspect_with(&[], &img);
    let d = &json["disks"][0];
    assert_eq!(d["table"], "mbr", "{json:#}");
    let p = &d["partitions"][0];
    assert_eq!((p["number"].as_u64(), p["fs"].as_str(), p["label"].as_str()), (Some(1), Some("ntfs"), Some("Last access")), "{json:#}");
    let (start, len) = (p["start_bytes"].as_u64().unwrap(), p["size_bytes"].as_u64().unwrap());

    // ntfs-3g's view of the partition: every regular file and its sha256.
    let part = dir.path().join("part.raw");
    fixtures::run(Command::new("dd").arg(format!("if={}", img.display())).arg(format!("of={}", part.display()))
        .args(["bs=512", &format!("skip={}", start / 512), &format!("count={}", len / 512), "status=none"]));
    assert_eq!(p["label"].as_str().unwrap().as_bytes(), fixtures::blkid_value(&part, "LABEL").unwrap());
    let mnt = dir.path().join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    fixtures::run(Command::new("ntfs-3g").args(["-o", "ro"]).arg(&part).arg(&mnt));
    let listed = Command::new("sh").arg("-c").arg("find . -type f -print0 | sort -z | xargs -0 -r sha256sum").current_dir(&mnt).output();
    let _ = Command::new("umount").arg(&mnt).status();
    let listed = String::from_utf8(listed.unwrap().stdout).unwrap();
    let want: std::collections::BTreeMap<String, String> =
        listed.lines().filter_map(|l| l.split_once("  ")).map(|(h, p)| (p.trim_start_matches('.').to_string(), h.to_string())).collect();
    assert!(want.contains_key("/test/1.txt") && want.len() >= 4, "{want:?}");

    let disk: inplace::disk::device::SharedDisk = std::sync::Arc::new(inplace::disk::device::Device::open(&img).unwrap());
    let mut fs = inplace::fs::open("ntfs", inplace::fs::range::RangeReader::new(disk, start, len)).unwrap().unwrap();
    let mut got = std::collections::BTreeMap::new();
    walk(fs.as_mut(), &mut |fs, path, kind| {
        if kind == inplace::fs::EntryKind::File {
            let mut data = Vec::new();
            fs.read_file(path, &mut data).unwrap_or_else(|e| panic!("{}: {e}", String::from_utf8_lossy(path)));
            got.insert(String::from_utf8_lossy(path).into_owned(), inplace_tests::migrate_fixtures::sha256_bytes(&data));
        }
    }, &mut |dir, e| panic!("{}: {e}", String::from_utf8_lossy(dir)));
    assert_eq!(got, want, "inplace's reader and ntfs-3g differ");
}

/// Walks `fs` from the root: `entry` gets every entry but directories' own and NTFS metadata
/// (`$…`) with its kind, `unreadable` each directory that cannot be listed; returns the number
/// of directories listed.
fn walk(
    fs: &mut dyn inplace::fs::FsReader,
    entry: &mut dyn FnMut(&mut dyn inplace::fs::FsReader, &[u8], inplace::fs::EntryKind),
    unreadable: &mut dyn FnMut(&[u8], inplace::fs::FsError),
) -> usize {
    let mut dirs = 0;
    let mut stack = vec![b"/".to_vec()];
    while let Some(d) = stack.pop() {
        let entries = match fs.read_dir(&d) {
            Ok(e) => e,
            Err(e) => {
                unreadable(&d, e);
                continue;
            }
        };
        dirs += 1;
        for e in entries {
            let mut path = d.clone();
            if path != b"/" {
                path.push(b'/');
            }
            path.extend_from_slice(e.name.as_bytes());
            match e.kind {
                inplace::fs::EntryKind::Dir => stack.push(path),
                _ if e.name.as_bytes().starts_with(b"$") => {}
                kind => entry(fs, &path, kind),
            }
        }
    }
    dirs
}
