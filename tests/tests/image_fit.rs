//! Images that fit any disk: a shrinkable image of an ESP + ext4 reference, and of an NTFS
//! reference, laid onto empty disks of 0.8×, 1×, 1.5× and 4× the reference and onto a disk
//! with a kept partition and a store. On each: the filesystem checks clean, fills its partition
//! (within one ext4 block group, one NTFS cluster), and every file has the reference's sha256.
//! A disk too small even for the shrunk filesystem, and a smaller disk for an image that is
//! not shrinkable, are refused before any write, with the room missing, and stay unchanged.
//! Needs root for the loop devices `resize2fs` and `ntfsresize` run on.

mod image_common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use image_common::*;
use inplace_tests::fixtures::{self, run, sparse};

/// The reference disks' size: ESP 64 MiB + root 334 MiB (or NTFS 398 MiB) + the GPT.
const REF_MIB: u64 = 400;
const FACTORS: [f64; 4] = [0.8, 1.0, 1.5, 4.0];

/// Files of many sizes, some compressible, some not: about 60 MiB (the shrunk root must fit
/// the kept-partition target's 160 MiB region).
fn tree(dir: &Path) -> PathBuf {
    let t = dir.join("tree");
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for d in 0..8 {
        let sub = t.join(format!("dir{d}/sub"));
        std::fs::create_dir_all(&sub).unwrap();
        for f in 0..30 {
            let len = (next() % (512 << 10)) as usize;
            let bytes: Vec<u8> = if f % 3 == 0 { (0..len).map(|i| (i / 7) as u8).collect() } else { (0..len / 8).flat_map(|_| next().to_le_bytes()).collect() };
            std::fs::write(sub.join(format!("f{f}.bin")), bytes).unwrap();
        }
    }
    std::fs::create_dir_all(t.join("etc")).unwrap();
    std::fs::write(t.join("etc/hostname"), "reference\n").unwrap();
    t
}

/// ESP + ext4 root with `tree`, the root filling the disk.
fn ext4_reference(dir: &Path, tree: &Path) -> PathBuf {
    let esp = fixtures::mkfs_fat(dir, "esp", 64 * MIB, "ESP", &["-F", "32"], true);
    let root = fixtures::mkfs_ext4(dir, "root", 334 * MIB, "root", Some(tree));
    let img = dir.join("ext4-ref.img");
    fixtures::gpt_image(&img, REF_MIB * MIB, &[(&esp, "ef00", "EFI System"), (&root, "8300", "root")]);
    img
}

/// One NTFS partition with `tree` copied in through ntfs-3g.
fn ntfs_reference(dir: &Path, tree: &Path) -> PathBuf {
    let fs = dir.join("win.ntfs");
    sparse(&fs, 398 * MIB);
    run(Command::new("mkntfs").args(["-q", "-F", "-f", "-L", "win"]).arg(&fs));
    let mnt = dir.join("ntfs-w");
    std::fs::create_dir_all(&mnt).unwrap();
    let m = fixtures::NtfsMount::mount(&fs, &mnt);
    run(Command::new("cp").arg("-r").arg(format!("{}/.", tree.display())).arg(&mnt));
    m.unmount();
    let img = dir.join("ntfs-ref.img");
    fixtures::gpt_image(&img, REF_MIB * MIB, &[(&fs, "0700", "win")]);
    img
}

fn create(reference: &Path, out: &Path, shrinkable: bool) -> serde_json::Value {
    let mut args = vec!["image", "create", "--from", reference.to_str().unwrap(), "--out", out.to_str().unwrap()];
    if shrinkable {
        args.push("--shrinkable");
    }
    let o = inplace(&args);
    assert!(o.status.success(), "{}", text(&o));
    let o = inplace(&["image", "info", "--json", out.to_str().unwrap()]);
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)))
}

/// `inplace image apply … --yes`, asserting success; returns its output.
fn apply(image: &Path, disk: &Path, keep: &[&str]) -> String {
    let mut args = vec!["image", "apply", image.to_str().unwrap(), "--disk", disk.to_str().unwrap(), "--yes"];
    args.extend_from_slice(keep);
    let o = inplace(&args);
    assert!(o.status.success(), "{}", text(&o));
    text(&o)
}

/// The last partition's extent, and its number.
fn last_part(disk: &Path) -> (u32, u64, u64) {
    let p = partitions(disk).into_iter().max_by_key(|p| p.1).unwrap();
    (p.0, p.1, p.2)
}

fn dumpe2fs(fs: &Path, key: &str) -> u64 {
    let out = run(Command::new("dumpe2fs").arg("-h").arg(fs));
    let line = out.lines().find(|l| l.starts_with(&format!("{key}:"))).unwrap_or_else(|| panic!("dumpe2fs has no {key}:\n{out}"));
    line.split(':').nth(1).unwrap().trim().parse().unwrap()
}

/// e2fsck clean, the filesystem within one block group of its partition's end, the files.
fn check_ext4(disk: &Path, number: u32, work: &Path, want: &BTreeMap<String, String>) {
    let (s, l) = part(disk, number);
    let fs = work.join("root.fs");
    extract(disk, s, l, &fs);
    fsck_ok(Command::new("e2fsck").arg("-fn").arg(&fs));
    let (blocks, bs, per_group) = (dumpe2fs(&fs, "Block count"), dumpe2fs(&fs, "Block size"), dumpe2fs(&fs, "Blocks per group"));
    assert!(blocks * bs <= l && l - blocks * bs < per_group * bs, "{}: ext4 of {} bytes in a partition of {l}", disk.display(), blocks * bs);
    let _ = std::fs::remove_dir_all(work.join("ext4-dump"));
    assert_eq!(&ext4_files(&fs, work), want, "{}: files differ", disk.display());
    std::fs::remove_file(&fs).unwrap();
}

/// `ntfsresize --check` clean, the volume within one cluster of its partition's end, the files.
fn check_ntfs(disk: &Path, number: u32, work: &Path, want: &BTreeMap<String, String>) {
    let (s, l) = part(disk, number);
    let fs = work.join("win.fs");
    extract(disk, s, l, &fs);
    fsck_ok(Command::new("ntfsresize").args(["--check", "--no-progress-bar"]).arg(&fs));
    let info = run(Command::new("ntfsresize").args(["--info", "--force", "--no-progress-bar"]).arg(&fs));
    let field = |key: &str| -> u64 {
        let line = info.lines().find(|x| x.starts_with(key)).unwrap_or_else(|| panic!("no {key} in:\n{info}"));
        line[key.len()..].split_whitespace().next().unwrap().parse().unwrap()
    };
    let (vol, cluster) = (field("Current volume size:"), field("Cluster size       :"));
    // The volume ends one sector short of the partition (its backup boot sector).
    assert!(vol <= l && l - vol <= cluster + 512, "{}: NTFS of {vol} bytes in a partition of {l}", disk.display());
    let got = ntfs_files(&fs, work);
    assert_eq!(&got, want, "{}: files differ", disk.display());
    std::fs::remove_file(&fs).unwrap();
}

/// Lays `image` onto empty disks of each factor and onto a disk with a kept partition and a
/// store; `check` looks at the growable partition.
fn every_disk(d: &Path, name: &str, image: &Path, check: &dyn Fn(&Path, u32)) {
    for f in FACTORS {
        let disk = d.join(format!("{name}-{f}.img"));
        sparse(&disk, ((REF_MIB as f64 * f) as u64) * MIB);
        let o = inplace(&["image", "apply", image.to_str().unwrap(), "--disk", disk.to_str().unwrap()]);
        let plan = text(&o);
        let words = if f < 1.0 { "shrinks to" } else if f > 1.0 { "grows to" } else { "as on the reference" };
        assert!(o.status.success() && plan.contains(words), "{f}×: the plan does not say {words:?}:\n{plan}");
        let log = apply(image, &disk, &[]);
        assert!(log.contains("resized: partition") && log.contains("grown from"), "{log}");
        let (n, s, l) = last_part(&disk);
        let end = ((REF_MIB as f64 * f) as u64) * MIB - 33 * 512;
        assert!(s + l <= end && end - (s + l) < MIB, "{f}×: the partition ends at {} of {end}", s + l);
        check(&disk, n);
        std::fs::remove_file(&disk).unwrap();
    }
    // Beside a kept partition and the store (image_common's target).
    let t = target(d, &format!("{name}-kept.img"), REF_MIB);
    let (kept, store) = (range_sha(&t.path, t.kept.1, t.kept.2), range_sha(&t.path, t.store.1, t.store.2));
    apply(image, &t.path, &["--keep", "2"]);
    assert_eq!(range_sha(&t.path, t.kept.1, t.kept.2), kept, "the kept partition changed");
    assert_eq!(range_sha(&t.path, t.store.1, t.store.2), store, "the store changed");
    let grower = partitions(&t.path).into_iter().filter(|p| p.0 != 2 && p.0 != 4).max_by_key(|p| p.2).unwrap();
    check(&t.path, grower.0);
    std::fs::remove_file(&t.path).unwrap();
}

/// Lay-down onto `mib` MiB is refused, says how much room is missing, and writes nothing.
fn refused(d: &Path, image: &Path, mib: u64, also: &str) {
    let disk = d.join(format!("small-{mib}.img"));
    sparse(&disk, mib * MIB);
    run(Command::new("sgdisk").args(["-o", "-n1:2048:0", "-t1:8300"]).arg(&disk));
    let before = file_sha(&disk);
    let o = inplace(&["image", "apply", image.to_str().unwrap(), "--disk", disk.to_str().unwrap(), "--yes"]);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("does not fit") && out.contains("more room is needed") && out.contains("nothing was written") && out.contains(also), "{out}");
    assert_eq!(file_sha(&disk), before, "a refused lay-down wrote to the disk");
    std::fs::remove_file(&disk).unwrap();
}

#[test]
fn shrinkable_images_fit_smaller_and_larger_disks() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let work = d.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let tree = tree(d);
    let want = image_common::tree(&tree);

    // ext4.
    let reference = ext4_reference(d, &tree);
    let plain = d.join("ext4-plain.inplimg");
    let info = create(&reference, &plain, false);
    assert!(info["manifest"]["partitions"][1].get("shrunk_from").is_none());
    refused(d, &plain, 320, "shrinkable");
    let image = d.join("ext4.inplimg");
    let info = create(&reference, &image, true);
    let root = &info["manifest"]["partitions"][1];
    let (min, from) = (root["min_size"].as_u64().unwrap(), root["shrunk_from"].as_u64().unwrap());
    assert_eq!(from, 334 * MIB, "{root}");
    assert!(min < (REF_MIB as f64 * 0.8) as u64 * MIB - 66 * MIB, "the shrunk root ({min}) must fit the 0.8× disk beside the ESP");
    let check = |disk: &Path, n: u32| check_ext4(disk, n, &work, &want);
    every_disk(d, "ext4", &image, &check);
    refused(d, &image, (min / MIB) + 64, "");

    // NTFS.
    let reference = ntfs_reference(d, &tree);
    let image = d.join("ntfs.inplimg");
    let info = create(&reference, &image, true);
    let min = info["manifest"]["partitions"][0]["min_size"].as_u64().unwrap();
    let check = |disk: &Path, n: u32| check_ntfs(disk, n, &work, &want);
    every_disk(d, "ntfs", &image, &check);
    refused(d, &image, min / MIB, "");
}
