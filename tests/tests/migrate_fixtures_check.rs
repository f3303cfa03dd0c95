//! The migration fixtures themselves, checked with the real tools and without inplace: the
//! expected manifest must match what debugfs and ntfscat read from the images, so a test that
//! compares a restore with it compares with the truth.

use std::process::Command;

use inplace_tests::fixtures::run;
use inplace_tests::migrate_fixtures::{self as mf, EKind, SkipKind};
use sha2::{Digest, Sha256};

/// The partition of a fixture, copied out to a file.
fn extract(fx: &mf::MigrateFixture, out: &std::path::Path) {
    run(Command::new("dd")
        .arg(format!("if={}", fx.disk.display()))
        .arg(format!("of={}", out.display()))
        .args(["bs=1M", "status=none", "conv=sparse"])
        .arg(format!("skip={}", fx.part_start / mf::MIB))
        .arg(format!("count={}", fx.part_size / mf::MIB)));
}

#[test]
fn linux_fixture_matches_debugfs() {
    let dir = mf::tmp("fx-linux");
    let t = std::time::Instant::now();
    let fx = mf::linux_disk(&dir);
    let took = t.elapsed();
    assert!(took.as_secs() < 30, "building the Linux fixture took {took:?}");
    let part = dir.join("root.ext4");
    extract(&fx, &part);
    // Every expected file with data under 64 MiB reads back with its sha256 through debugfs.
    let mut checked = 0;
    for e in fx.entries.iter().filter(|e| e.kind == EKind::File && e.size < 64 * mf::MIB) {
        let out = dir.join("dump");
        let _ = std::fs::remove_file(&out);
        run(Command::new("debugfs").arg("-R").arg(format!("dump -p \"{}\" {}", e.source, out.display())).arg(&part));
        assert_eq!(&inplace_tests::sha256_file(&out), e.sha256.as_ref().unwrap(), "{}", e.source);
        checked += 1;
    }
    assert!(checked > 20, "{checked}");
    // Owners, modes and times as debugfs sees them.
    let stat = run(Command::new("debugfs").arg("-R").arg("stat /home/bob/shared-from-alice.txt").arg(&part));
    assert!(stat.contains("User:  1000   Group:   100"), "{stat}");
    let e = fx.entry(Some("bob"), "shared-from-alice.txt");
    assert_eq!((e.owner.as_deref(), e.group.as_deref(), e.mode), (Some("alice"), Some("users"), Some(0o640)));
    let e = fx.entry(Some("alice"), "bin/setgid-tool");
    assert_eq!(e.mode, Some(0o2750));
    let stat = run(Command::new("debugfs").arg("-R").arg("stat /home/alice/bin/setgid-tool").arg(&part));
    assert!(stat.contains("Mode:  02750"), "{stat}");
    assert_eq!(fx.entry(Some("alice"), "docs").target.as_deref(), Some("Документы"));
    let h1 = fx.entry(Some("alice"), "report.txt").link_group;
    assert!(h1.is_some() && h1 == fx.entry(Some("alice"), "Documents/report (hard link).txt").link_group);
    let big = fx.entry(Some("alice"), "vm/disk.img");
    assert!(big.sparse && big.size == mf::LINUX_SPARSE_SIZE);
    // The sparse file's layout: debugfs lists two one-block extents, whose blocks hold the runs.
    let stat = run(Command::new("debugfs").arg("-R").arg("stat /home/alice/vm/disk.img").arg(&part));
    let extents: Vec<(u64, u64)> = stat
        .split("EXTENTS:")
        .nth(1)
        .unwrap_or_else(|| panic!("{stat}"))
        .split(',')
        .map(|x| {
            let (l, p) = x.trim().trim_start_matches('(').split_once("):").unwrap_or_else(|| panic!("{x} in {stat}"));
            (l.parse().unwrap(), p.trim().parse().unwrap())
        })
        .collect();
    let runs = big.layout.as_ref().expect("a layout for the sparse file");
    assert_eq!(runs, &vec![(2 * mf::GIB + 3, b"MIDDLE of the sparse file".to_vec()), (mf::LINUX_SPARSE_SIZE - 4, b"END!".to_vec())]);
    assert_eq!(extents.iter().map(|e| e.0).collect::<Vec<_>>(), runs.iter().map(|r| r.0 / 4096).collect::<Vec<_>>(), "{stat}");
    let f = std::fs::File::open(&part).unwrap();
    for ((_, phys), (off, bytes)) in extents.iter().zip(runs) {
        let mut block = vec![0u8; 4096];
        std::os::unix::fs::FileExt::read_exact_at(&f, &mut block, phys * 4096).unwrap();
        let at = (off % 4096) as usize;
        assert_eq!(&block[at..at + bytes.len()], &bytes[..]);
        assert!(block[..at].iter().chain(&block[at + bytes.len()..]).all(|b| *b == 0));
    }
    // Excluded, absent and optional parts.
    assert!(fx.skipped.iter().any(|s| s.source == "/home/alice/.cache" && s.kind == SkipKind::Excluded));
    assert!(!fx.entries.iter().any(|e| e.source.contains("/.cache") || e.source.starts_with("/var/") || e.source.starts_with("/root")));
    assert!(fx.optional.iter().any(|e| e.user.as_deref() == Some("root") && e.path == "admin-notes.txt"));
    assert!(fx.optional.iter().any(|e| e.user.is_none() && e.path == "etc/ssh/ssh_host_ed25519_key" && e.mode == Some(0o600)));
    assert_eq!(fx.entry(None, "etc/NetworkManager/system-connections/home.nmconnection").mode, Some(0o600));
    let inspect = mf::inplace(&["inspect", "--json", fx.disk_str()]);
    assert!(inspect.status.success(), "{}", mf::text(&inspect));
    let v = mf::json(&inspect);
    let p = &v["disks"][0]["partitions"][1];
    assert_eq!((p["number"].as_u64(), p["fs"].as_str()), (Some(2), Some("ext4")), "{v}");
    assert_eq!(p["os"]["users"], serde_json::json!(["alice", "bob"]), "{v}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn windows_fixture_matches_ntfscat() {
    let dir = mf::tmp("fx-windows");
    let t = std::time::Instant::now();
    let fx = mf::windows_disk(&dir);
    let took = t.elapsed();
    assert!(took.as_secs() < 30, "building the Windows fixture took {took:?}");
    let part = dir.join("c.ntfs");
    extract(&fx, &part);
    let mut checked = 0;
    for e in fx.entries.iter().filter(|e| e.kind == EKind::File && e.size < 64 * mf::MIB) {
        let o = Command::new("ntfscat").arg(&part).arg(&e.source).output().unwrap();
        assert!(o.status.success(), "ntfscat {}: {}", e.source, String::from_utf8_lossy(&o.stderr));
        assert_eq!(&format!("{:x}", Sha256::digest(&o.stdout)), e.sha256.as_ref().unwrap(), "{}", e.source);
        checked += 1;
    }
    assert!(checked >= 12, "{checked}");
    let o = Command::new("ntfscat").arg(&part).arg("/Users/Carol/Downloads/setup.exe").args(["-a", "0x80", "-n", "Zone.Identifier"]).output().unwrap();
    assert_eq!(o.stdout, mf::ZONE_IDENTIFIER, "{}", String::from_utf8_lossy(&o.stderr));
    let log = fx.entry(Some("Carol"), "Documents/Compressed/server.log");
    assert!(log.attributes.unwrap() & 0x800 != 0 && log.size == 8 * mf::MIB);
    let j = &fx.optional[0];
    assert_eq!((j.kind, j.target.as_deref()), (EKind::Symlink, Some(r"C:\Users\Carol\Documents")));
    let big = fx.entry(Some("Carol"), "Videos/capture.raw");
    assert!(big.sparse && big.size == mf::WINDOWS_SPARSE_SIZE);
    assert!(fx.skipped.iter().any(|s| s.source.ends_with("setup.exe:Zone.Identifier") && s.kind == SkipKind::NotCarried));
    assert!(fx.skipped.iter().any(|s| s.source.ends_with("Budget 2024.xlsx") && s.kind == SkipKind::Unreadable));
    assert!(fx.absent.contains(&"/Users/Carol/AppData/Local".to_string()));
    assert!(!fx.entries.iter().any(|e| e.source.contains("/Temp") || e.source.ends_with(".tmp") || e.source.contains("/Cache")));
    let o = Command::new("ntfsfix").arg("-n").arg(&part).output().unwrap();
    assert!(o.status.success(), "ntfsfix -n: {}", String::from_utf8_lossy(&o.stdout));
    let inspect = mf::inplace(&["inspect", "--json", fx.disk_str()]);
    assert!(inspect.status.success(), "{}", mf::text(&inspect));
    let v = mf::json(&inspect);
    let p = &v["disks"][0]["partitions"][2];
    assert_eq!((p["number"].as_u64(), p["fs"].as_str()), (Some(3), Some("ntfs")), "{v}");
    assert_eq!(p["os"]["family"], "windows", "{v}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn store_volume_and_fat_helpers() {
    let dir = mf::tmp("fx-store");
    let vol = mf::store_volume(&dir, "store.fat", mf::GIB);
    let v = vol.to_str().unwrap();
    let f = dir.join("seg");
    std::fs::write(&f, mf::content("seg", 100_000, mf::Content::Random)).unwrap();
    mf::fat_put(v, &f, "data/seg-00001.bin");
    std::fs::write(&f, b"{}").unwrap();
    mf::fat_put(v, &f, "manifest.json");
    let mut list = mf::fat_list(v);
    list.sort();
    assert_eq!(list, vec![("data/seg-00001.bin".to_string(), 100_000), ("manifest.json".to_string(), 2)]);
    let out = dir.join("back");
    mf::fat_get(v, "data/seg-00001.bin", &out);
    assert_eq!(std::fs::read(&out).unwrap(), mf::content("seg", 100_000, mf::Content::Random));
    let o = Command::new("fsck.fat").arg("-n").arg(&vol).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let root = mf::target_root(&dir, "root");
    assert_eq!(root.uid("Carol"), 2002);
    assert_eq!(root.home("alice"), dir.join("root/home/alice"));
    assert!(std::fs::read_to_string(root.path.join("etc/passwd")).unwrap().contains("alice:x:2001:2001:"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The restored-tree comparison itself: a faithful copy of a profile (made with debugfs, not
/// inplace) has no differences, and each kind of damage is reported.
#[test]
fn restored_tree_comparison_catches_each_difference() {
    use std::collections::BTreeSet;
    let dir = mf::tmp("fx-compare");
    let fx = mf::linux_edge_cases_disk(&dir);
    let part = dir.join("root.ext4");
    extract(&fx, &part);
    let root = mf::target_root_with(&dir, "root", &[("root", 0, "/root"), ("dave", 3000, "/home/dave")]);
    std::fs::remove_dir_all(root.path.join("home/dave")).unwrap();
    run(Command::new("debugfs").arg("-R").arg(format!("rdump /home/dave {}", root.path.join("home").display())).arg(&part));
    let home = root.home("dave");
    let expected: Vec<&mf::ExpectedEntry> = fx.entries.iter().collect();
    for e in &expected {
        let p = home.join(&e.path);
        std::os::unix::fs::lchown(&p, Some(3000), Some(3000)).unwrap();
        mf::set_mtime(&p, e.mtime);
    }
    let mode = |e: &mf::ExpectedEntry| e.mode.unwrap();
    let none = BTreeSet::new();
    mf::assert_no_diffs("a faithful copy", &mf::restored_diffs(&root, "dave", &expected, &mode, &none));

    std::fs::write(home.join("normal.txt"), b"an ordinary filf\n").unwrap();
    mf::set_mtime(&home.join("normal.txt"), mf::T0);
    std::fs::set_permissions(home.join("epoch.txt"), std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    mf::set_mtime(&home.join("y2038.txt"), 2_147_483_647);
    std::os::unix::fs::lchown(home.join("2100.txt"), Some(0), None).unwrap();
    std::fs::remove_file(home.join("moon-landing.txt")).unwrap();
    std::fs::write(home.join("stray.txt"), b"not from the store").unwrap();
    let diffs = mf::restored_diffs(&root, "dave", &expected, &mode, &none);
    let want = [
        "normal.txt: sha256",
        "epoch.txt: mode",
        "y2038.txt: mtime",
        "2100.txt: owner",
        "moon-landing.txt: not restored",
        "restored but not expected",
    ];
    for w in want {
        assert!(diffs.iter().any(|d| d.contains(w)), "{w:?} not reported in {diffs:#?}");
    }
    assert_eq!(diffs.len(), want.len(), "{diffs:#?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
