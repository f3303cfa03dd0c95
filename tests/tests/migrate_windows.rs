//! Capture from a Windows `C:` (NTFS, read by inplace's own reader, never mounted) into a
//! store, verify it, restore it into a Linux root, and compare with the manifest the fixture
//! computed through ntfs-3g: NTFS-compressed data decompressed, a 5 GiB sparse file kept
//! sparse past the FAT32 4 GiB limit, a path over 260 characters, unicode names, the
//! alternate data stream and the cloud placeholder reported, Temp/Cache/*.tmp excluded, and
//! the profile `Carol` owned by the account `carol`.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::MetadataExt;

use inplace_tests::fixtures::image_fingerprint;
use inplace_tests::migrate_fixtures::{self as mf, assert_no_diffs, EKind, ExpectedEntry, GIB, MIB};

const REPORT_JSON: &str = "var/log/inplace/restore-report.json";

/// The mode restore gives an NTFS entry (documented in `migrate/restore/mod.rs`): files 0644,
/// 0444 with FILE_ATTRIBUTE_READONLY; directories 0755.
fn ntfs_mode(e: &ExpectedEntry) -> u32 {
    match e.kind {
        EKind::Dir => 0o755,
        _ if e.attributes.is_some_and(|a| a & 1 != 0) => 0o444,
        _ => 0o644,
    }
}

fn ok(args: &[&str]) -> std::process::Output {
    let o = mf::inplace(args);
    assert!(o.status.success(), "inplace {} failed ({}):\n{}", args.join(" "), o.status, mf::text(&o));
    o
}

#[test]
fn windows_capture_verify_restore_matches_the_source() {
    let dir = mf::tmp("windows-full");
    let fx = mf::windows_disk(&dir);
    let before = image_fingerprint(&fx.disk);
    let store = mf::store_volume(&dir, "store.fat", GIB);
    let s = store.to_str().unwrap();
    let part = fx.part_str();
    let summary = mf::json(&ok(&["capture", "--disk", fx.disk_str(), "--partition", &part, "--store", s, "--json"]));
    assert_eq!(image_fingerprint(&fx.disk), before, "the capture wrote to the source disk");
    assert_eq!(summary["files"].as_u64(), Some(fx.distinct_file_count() as u64), "{summary}");
    assert_eq!(summary["bytes"].as_u64(), Some(fx.distinct_file_bytes()), "{summary}");
    assert!(summary["stored_bytes"].as_u64().unwrap() < 64 * MIB, "{summary}");
    assert_eq!(summary["skipped"].as_u64(), Some(fx.skipped.len() as u64), "{summary}");

    let o = ok(&["store", "verify", "--store", s]);
    assert!(mf::text(&o).contains("good"), "{}", mf::text(&o));
    let manifest = mf::store_manifest(s, &dir);
    let all: Vec<&ExpectedEntry> = fx.entries.iter().collect();
    assert_no_diffs("manifest vs source", &mf::manifest_diffs(&manifest, &all));
    assert_no_diffs("left-out items", &mf::skipped_diffs(&manifest["skipped"], &fx));
    assert_no_diffs("absent places", &mf::absent_diffs(&manifest, &fx));
    assert_eq!(manifest["users"], serde_json::json!(["Carol"]));
    // The segments are FAT32 files: none reaches 4 GiB although one entry is 5 GiB.
    for (name, size) in mf::fat_list(s) {
        assert!(size < 4 * GIB, "{name}: {size} bytes");
    }

    let root = mf::target_root(&dir, "newroot");
    let o = ok(&["restore", "--store", s, "--root", root.path_str()]);
    let diffs = mf::restored_diffs(&root, "Carol", &all, &ntfs_mode, &BTreeSet::new());
    assert_no_diffs(&format!("restored profile of Carol\n{}", mf::text(&o)), &diffs);
    let home = root.home("Carol");
    assert_eq!(home, root.path.join("home/carol"));
    // The compressed file came back as its plain text, the long path exists, the big sparse
    // file is sparse.
    let log = fx.entry(Some("Carol"), "Documents/Compressed/server.log");
    assert_eq!(&inplace_tests::sha256_file(&home.join(&log.path)), log.sha256.as_ref().unwrap());
    let deep = fx.entries.iter().find(|e| e.source.len() > 260 && e.kind == EKind::File).unwrap();
    assert!(home.join(&deep.path).is_file(), "{}", deep.path);
    let raw = fs::metadata(home.join("Videos/capture.raw")).unwrap();
    assert_eq!(raw.len(), mf::WINDOWS_SPARSE_SIZE);
    assert!(raw.blocks() * 512 < 16 * MIB, "capture.raw: {} bytes allocated", raw.blocks() * 512);
    assert_eq!(fs::metadata(home.join("Documents/readonly.txt")).unwrap().mode() & 0o777, 0o444);
    assert_eq!(raw.uid(), root.uid("carol"));

    let report: serde_json::Value = serde_json::from_slice(&mf::read(&root.path.join(REPORT_JSON))).unwrap();
    assert_eq!(report["totals"]["failed"], 0, "{}", report["totals"]);
    assert_no_diffs("restore report: left-out items", &mf::skipped_diffs(&report["capture_skipped"], &fx));
    let carol = &report["users"][0];
    assert_eq!((carol["profile"].as_str(), carol["account"].as_str(), carol["status"].as_str()), (Some("Carol"), Some("carol"), Some("mapped")));
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn windows_estimate_agrees_with_the_expected_manifest() {
    let dir = mf::tmp("windows-estimate");
    let fx = mf::windows_disk(&dir);
    let part = fx.part_str();
    let e = mf::json(&ok(&["capture", "--disk", fx.disk_str(), "--partition", &part, "--estimate", "--json"]));
    let dirs = fx.entries.iter().filter(|x| x.kind == EKind::Dir).count() as u64;
    assert_eq!(e["files"].as_u64(), Some(fx.distinct_file_count() as u64), "{e}");
    assert_eq!(e["bytes"].as_u64(), Some(fx.distinct_file_bytes()), "{e}");
    assert_eq!(e["dirs"].as_u64(), Some(dirs), "{e}");
    assert_eq!(e["links"].as_u64(), Some(0), "{e}");
    assert_eq!(e["skipped"].as_u64(), Some(fx.skipped.len() as u64), "{e}");
    let skipped_bytes: u64 = 100_000 + 70_000 + 4 + 7 + 11 + mf::ZONE_IDENTIFIER.len() as u64;
    assert_eq!(e["skipped_bytes"].as_u64(), Some(skipped_bytes), "{e}");
    assert_eq!(e["users"][0]["name"], "Carol");
    fs::remove_dir_all(&dir).unwrap();
}

/// With the rules taking `My Documents` (a preset adds it), the junction to
/// `C:\Users\Carol\Documents` comes back as a link that resolves to the restored Documents.
#[test]
fn windows_junction_into_the_profile_restores_as_a_working_link() {
    let dir = mf::tmp("windows-junction");
    let fx = mf::windows_disk(&dir);
    let preset = dir.join("preset.toml");
    fs::write(&preset, "name = \"junctions\"\n[migrate.all]\ninclude = [\"My Documents\"]\nexclude = [\"Videos/**\"]\n").unwrap();
    let store = mf::store_volume(&dir, "store.fat", GIB);
    let s = store.to_str().unwrap();
    let part = fx.part_str();
    ok(&["capture", "--disk", fx.disk_str(), "--partition", &part, "--preset", preset.to_str().unwrap(), "--store", s]);
    let manifest = mf::store_manifest(s, &dir);
    let j = manifest["entries"].as_array().unwrap().iter().find(|e| e["path"] == "My Documents").cloned();
    let j = j.unwrap_or_else(|| panic!("the junction was not captured: {}", manifest["entries"]));
    assert_eq!(j["kind"], "symlink", "{j}");
    let root = mf::target_root(&dir, "newroot");
    ok(&["restore", "--store", s, "--root", root.path_str()]);
    let home = root.home("Carol");
    let link = home.join("My Documents");
    assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert_eq!(fs::canonicalize(&link).unwrap(), fs::canonicalize(home.join("Documents")).unwrap());
    assert!(link.join("report.txt").is_file());
    // Everything else as without the preset (the videos left out).
    let rest: Vec<&ExpectedEntry> = fx.entries.iter().filter(|e| !e.path.starts_with("Videos")).collect();
    let pre: BTreeSet<String> = ["My Documents".to_string()].into();
    assert_no_diffs("Carol with the junction", &mf::restored_diffs(&root, "Carol", &rest, &ntfs_mode, &pre));
    fs::remove_dir_all(&dir).unwrap();
}

/// On a Windows 11 23H2 `C:` with real hives, the rules take the profiles of the registry's
/// accounts (the local Carol and the domain profile carol.CONTOSO), not the folders: the
/// orphaned `Users\OldUser` is left out with its reason unless the users are named, and Dave's
/// profile on `D:` is not looked for on `C:`. `D:` alone has no hives: its profiles are its
/// folders under `Users\`.
#[test]
fn windows_profiles_come_from_the_registry() {
    let dir = mf::tmp("windows-registry");
    let img = inplace_tests::fixtures::windows_registry_disk(&dir, "win11-23h2", &["Carol", "carol.CONTOSO", "OldUser"], &["Dave"]);
    let disk = img.to_str().unwrap();
    let names = |e: &serde_json::Value| -> Vec<String> {
        e["users"].as_array().unwrap().iter().map(|u| u["name"].as_str().unwrap().to_string()).collect()
    };
    let e = mf::json(&ok(&["capture", "--disk", disk, "--partition", "1", "--estimate", "--json"]));
    assert_eq!(names(&e), ["Carol", "carol.CONTOSO"], "{e}");
    assert_eq!(e["skipped"].as_u64(), Some(1), "{e}");
    assert_eq!(e["skipped_bytes"].as_u64(), Some("report of OldUser\r\n".len() as u64), "{e}");
    let e = mf::json(&ok(&["capture", "--disk", disk, "--partition", "1", "--users", "Carol,OldUser", "--estimate", "--json"]));
    assert_eq!(names(&e), ["Carol", "OldUser"], "{e}");
    assert_eq!(e["skipped"].as_u64(), Some(0), "{e}");
    let e = mf::json(&ok(&["capture", "--disk", disk, "--partition", "2", "--rules", "windows", "--estimate", "--json"]));
    assert_eq!(names(&e), ["Dave"], "{e}");
    fs::remove_dir_all(&dir).unwrap();
}

/// In a job, the data partition `D:` beside a Windows OS with its registry: its profiles are
/// those ProfileList puts on another volume (Dave's `D:\Users\Dave`), found by path; a folder
/// there of no account is left out with its reason.
#[test]
fn a_data_partition_takes_the_profiles_the_registry_puts_on_it() {
    use inplace::migrate::rules::{Family, Rules};
    use inplace::migrate::select::{select_as, Role};
    use inplace::progress::{Cancel, Silent};
    let dir = mf::tmp("windows-registry-data");
    let img = inplace_tests::fixtures::windows_registry_disk(&dir, "win11-23h2", &["Carol"], &["Dave", "Ghost"]);
    let mut c = inplace::migrate::source::open(&img, 1, &Silent).unwrap();
    let mut d = inplace::migrate::source::open(&img, 2, &Silent).unwrap();
    let rules = Rules::builtin(Family::Windows);
    let sel = select_as(d.reader.as_mut(), &rules, Role::Data { accounts: Some(c.reader.as_mut()) }, &Silent, &Cancel::new()).unwrap();
    let users: Vec<(&str, &str)> = sel.users.iter().map(|u| (u.name.as_str(), u.home.as_str())).collect();
    assert_eq!(users, [("Dave", "/Users/Dave")]);
    let skipped: Vec<String> = sel.skipped.iter().map(|s| s.source.to_string()).collect();
    assert_eq!(skipped, ["/Users/Ghost"]);
    // The OS's own partition does not take Dave, whose profile is not on it.
    let sel = select_as(c.reader.as_mut(), &rules, Role::Os, &Silent, &Cancel::new()).unwrap();
    assert_eq!(sel.users.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(), ["Carol"]);
    fs::remove_dir_all(&dir).unwrap();
}
