//! A real Debian reference (the new-OS disk of tests/src/debian.rs with its root partition and
//! ext4 made 1 GiB, as a shop's reference has room to spare) made into a shrinkable image and
//! laid onto empty disks of 0.8×, 1×, 1.5× and 4× its size and onto a disk whose data partition
//! is kept. On each: `e2fsck -fn` is clean, the ext4 fills its partition within one block group,
//! every file's sha256 equals the reference's (debugfs `rdump`), the kept partition is byte for
//! byte as it was, and the disk boots on OVMF (TCG) to the serial login prompt. Feature
//! `debian`; the boots are the bulk of the time: two run at a time, each measured.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use inplace_tests::debian::{self, DebianDisk};
use inplace_tests::fixtures::{place, run, sparse};
use inplace_tests::qemu::{Controller, Vm};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const BOOT_TIMEOUT: Duration = Duration::from_secs(300);

fn inplace(args: &[&str]) -> String {
    let o = Command::new(inplace_tests::inplace_bin()).args(args).output().expect("running inplace");
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "inplace {}:\n{text}", args.join(" "));
    text
}

/// sha256 of every regular file under `dir`, by relative path.
fn tree(dir: &Path) -> BTreeMap<String, String> {
    let out = run(Command::new("sh").arg("-c").arg("find . -type f -print0 | sort -z | xargs -0 -r sha256sum").current_dir(dir));
    out.lines().filter_map(|l| l.split_once("  ").map(|(h, p)| (p.to_string(), h.to_string()))).collect()
}

/// Every file of the ext4 image `fs`, read with debugfs.
fn files(fs: &Path, work: &Path) -> BTreeMap<String, String> {
    let out = work.join("rdump");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    run(Command::new("debugfs").arg("-R").arg(format!("rdump / {}", out.display())).arg(fs));
    let t = tree(&out);
    std::fs::remove_dir_all(&out).unwrap();
    t
}

fn dumpe2fs(fs: &Path, key: &str) -> u64 {
    let out = run(Command::new("dumpe2fs").arg("-h").arg(fs));
    let line = out.lines().find(|l| l.starts_with(&format!("{key}:"))).unwrap_or_else(|| panic!("no {key}:\n{out}"));
    line.split(':').nth(1).unwrap().trim().parse().unwrap()
}

/// `(number, start, size)` of every partition, from sfdisk.
fn table(disk: &Path) -> Vec<(u32, u64, u64)> {
    let json: serde_json::Value = serde_json::from_str(&run(Command::new("sfdisk").arg("--json").arg(disk))).unwrap();
    json["partitiontable"]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let node = p["node"].as_str().unwrap();
            let n: u32 = node.rsplit(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap();
            (n, p["start"].as_u64().unwrap() * 512, p["size"].as_u64().unwrap() * 512)
        })
        .collect()
}

fn range_sha(path: &Path, start: u64, len: u64) -> String {
    run(Command::new("sh").arg("-c").arg(format!("dd if='{}' bs=1M iflag=skip_bytes,count_bytes skip={start} count={len} status=none | sha256sum", path.display())))
}

/// The new-OS disk with its root partition and filesystem grown to 1 GiB: ESP 256 MiB + root.
fn reference(d: &DebianDisk, dir: &Path) -> PathBuf {
    let disk = d.copy_to(dir);
    let root = d.root();
    let size = root.start + GIB + MIB;
    std::fs::OpenOptions::new().write(true).open(&disk).unwrap().set_len(size).unwrap();
    let (first, last) = (root.start / 512, (root.start + GIB) / 512 - 1);
    run(Command::new("sgdisk").arg("-e").arg(format!("-d{}", root.number)).arg(format!("-n{}:{first}:{last}", root.number)).arg(format!("-t{}:8304", root.number)).arg(format!("-c{}:{}", root.number, root.name)).arg(&disk));
    let fs = dir.join("ref-root.ext4");
    debian::extract(&disk, root.start, root.size, &fs);
    std::fs::OpenOptions::new().write(true).open(&fs).unwrap().set_len(GIB).unwrap();
    run(Command::new("e2fsck").args(["-f", "-p"]).arg(&fs));
    run(Command::new("resize2fs").arg(&fs));
    place(&disk, root.start, &fs);
    std::fs::remove_file(&fs).unwrap();
    disk
}

/// Checks the laid-down root (partition `n` of `disk`): fsck, fill, files.
fn check_root(disk: &Path, n: u32, work: &Path, want: &BTreeMap<String, String>) {
    let (_, s, l) = table(disk).into_iter().find(|p| p.0 == n).unwrap();
    let fs = work.join("root.ext4");
    debian::extract(disk, s, l, &fs);
    run(Command::new("e2fsck").arg("-fn").arg(&fs));
    let (blocks, bs, per_group) = (dumpe2fs(&fs, "Block count"), dumpe2fs(&fs, "Block size"), dumpe2fs(&fs, "Blocks per group"));
    assert!(blocks * bs <= l && l - blocks * bs < per_group * bs, "{}: ext4 of {} bytes in a partition of {l}", disk.display(), blocks * bs);
    let got = files(&fs, work);
    std::fs::remove_file(&fs).unwrap();
    let differ: Vec<&String> = want.keys().filter(|k| got.get(*k) != want.get(*k)).chain(got.keys().filter(|k| !want.contains_key(*k))).collect();
    assert!(differ.is_empty(), "{}: {} files differ from the reference, e.g. {:?}", disk.display(), differ.len(), &differ[..differ.len().min(5)]);
}

#[test]
fn a_shrinkable_debian_image_fits_and_boots_on_every_disk() {
    let d = debian::new_os_disk();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let work = dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let reference = reference(&d, dir);
    let ref_size = std::fs::metadata(&reference).unwrap().len();
    let root = d.root();
    let ref_fs = work.join("ref-root.ext4");
    debian::extract(&reference, root.start, GIB, &ref_fs);
    let want = files(&ref_fs, &work);
    std::fs::remove_file(&ref_fs).unwrap();
    assert!(want.contains_key("./etc/hostname") && want.len() > 1000, "{} files", want.len());

    let image = dir.join("debian.inplimg");
    let t = Instant::now();
    let log = inplace(&["image", "create", "--from", reference.to_str().unwrap(), "--out", image.to_str().unwrap(), "--shrinkable"]);
    eprintln!("image create --shrinkable: {:.1?}\n{}", t.elapsed(), log.lines().filter(|l| l.contains("shrunk")).collect::<Vec<_>>().join("\n"));
    std::fs::remove_file(&reference).unwrap();

    // Empty disks of each factor, and a disk with a data partition to keep.
    let mut disks: Vec<(String, PathBuf, Option<(u64, u64, String)>)> = Vec::new();
    for f in [0.8, 1.0, 1.5, 4.0] {
        let path = dir.join(format!("disk-{f}.img"));
        sparse(&path, ((ref_size as f64 * f) as u64) / MIB * MIB);
        disks.push((format!("{f}×"), path, None));
    }
    let kept = dir.join("disk-kept.img");
    sparse(&kept, 2 * GIB);
    run(Command::new("sgdisk").args(["-o", "-n1:2048:+1500M", "-t1:8300", "-n2:0:0", "-t2:8300", "-c2:data"]).arg(&kept));
    let (_, ks, kl) = table(&kept)[1];
    let data_tree = dir.join("data-tree");
    std::fs::create_dir_all(&data_tree).unwrap();
    std::fs::write(data_tree.join("notes.txt"), "kept across the lay-down\n".repeat(1000)).unwrap();
    let data = dir.join("data.ext4");
    sparse(&data, kl);
    run(Command::new("mkfs.ext4").args(["-q", "-F", "-L", "data", "-d"]).arg(&data_tree).arg(&data));
    place(&kept, ks, &data);
    std::fs::remove_file(&data).unwrap();
    disks.push(("kept data partition".into(), kept.clone(), Some((ks, kl, range_sha(&kept, ks, kl)))));

    for (name, disk, keep) in &disks {
        let mut args = vec!["image", "apply", image.to_str().unwrap(), "--disk", disk.to_str().unwrap(), "--yes"];
        if keep.is_some() {
            args.extend(["--keep", "2"]);
        }
        let t = Instant::now();
        let log = inplace(&args);
        let resized = log.lines().find(|l| l.starts_with("resized:")).unwrap_or_else(|| panic!("{name}: nothing was resized:\n{log}"));
        eprintln!("{name}: laid down in {:.1?}; {resized}", t.elapsed());
        if let Some((s, l, sha)) = keep {
            assert_eq!(&range_sha(disk, *s, *l), sha, "{name}: the kept partition changed");
        }
        let root_n = table(disk).into_iter().filter(|p| keep.as_ref().is_none_or(|k| p.1 != k.0)).max_by_key(|p| p.2).unwrap().0;
        check_root(disk, root_n, &work, &want);
    }

    // The boots, two at a time (one TCG vCPU each, on two cores).
    let queue = std::sync::Mutex::new(disks.iter().collect::<Vec<_>>());
    let boots = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| loop {
                let Some((name, disk, _)) = queue.lock().unwrap().pop() else { return };
                let mut s = Vm::installed(disk, Controller::VirtioBlk).start();
                let boot = s.wait_for_login_prompt(BOOT_TIMEOUT).unwrap_or_else(|e| panic!("{name}: {e:#}"));
                assert!(s.serial().contains("newbox login: "), "{name}: {}", s.tail(3000));
                s.cut();
                eprintln!("{name}: login prompt after {boot:.1?} (OVMF, TCG, two boots at a time)");
                boots.lock().unwrap().push((name.clone(), boot));
            });
        }
    });
    let boots = boots.into_inner().unwrap();
    assert_eq!(boots.len(), disks.len(), "every disk booted");
    eprintln!("boots: {boots:?}");
}
