//! Capture at scale: 80,000 small files, and one directory of 65,000 subdirectories. The
//! readers walk by inode, so neither is quadratic; these tests pin that the result is still
//! exact: the manifest equals the source, entry by entry, and the restored files equal it
//! byte for byte. Timing is measured by `scripts/bench`, not here.

use std::collections::BTreeSet;

use inplace_tests::migrate_fixtures::{self as mf, assert_no_diffs, ExpectedEntry, Scale, GIB};

fn ok(args: &[&str]) -> std::process::Output {
    let o = mf::inplace(args);
    assert!(o.status.success(), "inplace {} failed ({}):\n{}", args.join(" "), o.status, mf::text(&o));
    o
}

/// Captures `erin`'s home, checks the manifest and the store, restores, and checks every file.
fn capture_and_restore(name: &str, scale: Scale) {
    let dir = mf::tmp(name);
    let t = std::time::Instant::now();
    let fx = mf::linux_scale_disk(&dir, scale);
    eprintln!("{name}: the disk took {:.1} s", t.elapsed().as_secs_f64());
    let t = std::time::Instant::now();
    let store = mf::store_volume(&dir, "store.fat", 2 * GIB);
    let s = store.to_str().unwrap();
    let part = fx.part_str();
    let summary = mf::json(&ok(&["capture", "--disk", fx.disk_str(), "--partition", &part, "--store", s, "--json"]));
    assert_eq!(summary["entries"].as_u64(), Some(fx.entries.len() as u64), "{summary}");
    assert_eq!(summary["files"].as_u64(), Some(fx.distinct_file_count() as u64), "{summary}");
    assert_eq!(summary["bytes"].as_u64(), Some(fx.distinct_file_bytes()), "{summary}");

    eprintln!("{name}: the capture took {:.1} s", t.elapsed().as_secs_f64());
    let t = std::time::Instant::now();
    let manifest = mf::store_manifest(s, &dir);
    let all: Vec<&ExpectedEntry> = fx.entries.iter().collect();
    assert_no_diffs("manifest vs source", &mf::manifest_diffs(&manifest, &all));

    let root = mf::target_root_with(&dir, "newroot", &[("root", 0, "/root"), ("erin", 1000, "/home/erin")]);
    ok(&["restore", "--store", s, "--root", root.path_str()]);
    let mode = |e: &ExpectedEntry| e.mode.expect("ext4 entries have a mode");
    assert_no_diffs("restored home", &mf::restored_diffs(&root, "erin", &all, &mode, &BTreeSet::new()));
    eprintln!("{name}: checks and the restore took {:.1} s", t.elapsed().as_secs_f64());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn eighty_thousand_small_files_are_captured_exactly() {
    capture_and_restore("scale-files", Scale::SmallFiles(80_000));
}

#[test]
fn a_directory_of_65000_subdirectories_is_captured_exactly() {
    capture_and_restore("scale-dirs", Scale::WideDirectory(65_000));
}
