//! Round trip: reference disks → `image create` → `image apply` onto a different disk that has
//! other partitions, a kept partition and a store. The filesystems must fsck clean, every
//! file must have the reference's sha256, and the store and kept partitions must be byte for
//! byte what they were.

mod image_common;

use std::process::Command;

use image_common::*;
use inplace_tests::fixtures;

#[test]
fn linux_and_windows_images_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let reference = fixtures::gpt_multi_os(d).path;
    let work = d.join("work");
    std::fs::create_dir_all(&work).unwrap();
    // Reference content, read with the real tools.
    extract(&reference, MIB, 64 * MIB, &work.join("ref-esp"));
    extract(&reference, 65 * MIB, 96 * MIB, &work.join("ref-root"));
    extract(&reference, 161 * MIB, 64 * MIB, &work.join("ref-win"));
    let ref_esp = fat_files(&work.join("ref-esp"), &work.join("r1"));
    let ref_root = ext4_files(&work.join("ref-root"), &work.join("r2"));
    let ref_win = ntfs_files(&work.join("ref-win"), &work.join("r3"));
    assert!(ref_root.contains_key("etc/passwd") && ref_win.keys().any(|k| k.ends_with("report.txt")), "{ref_root:?} {ref_win:?}");

    // ESP + ext4 root.
    let linux = d.join("linux.img");
    let o = inplace(&["image", "create", "--from", reference.to_str().unwrap(), "--partitions", "1,2", "--out", linux.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let o = inplace(&["image", "verify", linux.to_str().unwrap()]);
    assert!(o.status.success() && text(&o).contains("ok:"), "{}", text(&o));
    let o = inplace(&["image", "info", "--json", linux.to_str().unwrap()]);
    let info: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
    assert_eq!(info["manifest"]["boot"], "uefi");
    assert_eq!(info["manifest"]["partitions"][1]["grow"], true);
    assert_eq!(info["manifest"]["partitions"][1]["content"], "used-blocks");

    let t = target(d, "target-linux.img", 400);
    let kept_before = range_sha(&t.path, t.kept.1, t.kept.2);
    let store_before = range_sha(&t.path, t.store.1, t.store.2);
    // Without --yes nothing is written.
    let whole_before = file_sha(&t.path);
    let o = inplace(&["image", "apply", linux.to_str().unwrap(), "--disk", t.path.to_str().unwrap(), "--keep", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("dry run"), "{}", text(&o));
    assert_eq!(file_sha(&t.path), whole_before);

    let o = inplace(&["image", "apply", linux.to_str().unwrap(), "--disk", t.path.to_str().unwrap(), "--keep", "2", "--yes"]);
    assert!(o.status.success(), "{}", text(&o));
    let log = text(&o);
    assert!(log.contains("(store)"), "the store is found by its locator:\n{log}");
    let parts = partitions(&t.path);
    let nums: Vec<u32> = parts.iter().map(|p| p.0).collect();
    assert_eq!(nums, vec![1, 2, 3, 4], "{parts:?}");
    assert_eq!((parts[0].1, parts[0].2), (MIB, 64 * MIB), "ESP placed first");
    assert_eq!(parts[0].3, fixtures::GUID_ESP);
    assert_eq!((parts[2].1, parts[2].2), (113 * MIB, 160 * MIB), "root grew into the space up to the store");
    assert_eq!(range_sha(&t.path, t.kept.1, t.kept.2), kept_before, "kept partition changed");
    assert_eq!(range_sha(&t.path, t.store.1, t.store.2), store_before, "store partition changed");
    extract(&t.path, parts[0].1, parts[0].2, &work.join("new-esp"));
    extract(&t.path, parts[2].1, parts[2].2, &work.join("new-root"));
    fsck_ok(Command::new("fsck.fat").arg("-n").arg(work.join("new-esp")));
    fsck_ok(Command::new("e2fsck").arg("-fn").arg(work.join("new-root")));
    assert_eq!(fat_files(&work.join("new-esp"), &work.join("n1")), ref_esp);
    assert_eq!(ext4_files(&work.join("new-root"), &work.join("n2")), ref_root);
    // Fresh GUIDs: the disk GUID differs from the reference's.
    let guid = |p: &std::path::Path| fixtures::run(Command::new("sgdisk").arg("-p").arg(p)).lines().find(|l| l.contains("GUID")).map(str::to_string);
    assert_ne!(guid(&t.path), guid(&reference));

    // NTFS C:.
    let win = d.join("win.img");
    let o = inplace(&["image", "create", "--from", reference.to_str().unwrap(), "--partitions", "3", "--out", win.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let t = target(d, "target-win.img", 400);
    let kept_before = range_sha(&t.path, t.kept.1, t.kept.2);
    let store_before = range_sha(&t.path, t.store.1, t.store.2);
    let o = inplace(&["image", "apply", win.to_str().unwrap(), "--disk", t.path.to_str().unwrap(), "--keep", "2", "--yes"]);
    assert!(o.status.success(), "{}", text(&o));
    let (s, l) = part(&t.path, 3);
    assert_eq!((s, l), (MIB, 80 * MIB), "C: placed first and grown to the kept partition");
    assert_eq!(range_sha(&t.path, t.kept.1, t.kept.2), kept_before);
    assert_eq!(range_sha(&t.path, t.store.1, t.store.2), store_before);
    extract(&t.path, s, l, &work.join("new-win"));
    fsck_ok(Command::new("ntfsfix").arg("-n").arg(work.join("new-win")));
    assert_eq!(ntfs_files(&work.join("new-win"), &work.join("n3")), ref_win);
}
