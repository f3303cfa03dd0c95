//! `inplace plan/carve/locate/rollback` on real GPT images (sgdisk, fdisk -b 4096, mkfs.ext4,
//! mkfs.fat, mkntfs + ntfs-3g): the table checked with sgdisk -v (fdisk's verify for 4Kn), the
//! store with fsck.fat -n, every untouched partition by sha256, and for a store taken from a
//! free tail, every file of the old filesystem read back through its original extent.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use inplace::disk::device::{Device, SharedDisk};
use inplace::fs::range::RangeReader;
use inplace_tests::carve_fixtures::{self as cf, inplace, sha_range, text, CarveDisk, Span, MIB};
use inplace_tests::fixtures::run;
use inplace_tests::sha256_file;
use sha2::{Digest, Sha256};

/// Every file of the fixture reads back with the same sha256 through our own reader over
/// the partition's original extent.
fn files_read_back(d: &CarveDisk, fs: &str, part: Span) {
    let disk: SharedDisk = Arc::new(Device::open(&d.path).unwrap());
    let mut reader = inplace::fs::open(fs, RangeReader::new(disk, part.start, part.size)).expect("a reader").expect("opens");
    for (name, data) in &d.files {
        let mut out = Vec::new();
        reader.read_file(name.as_bytes(), &mut out).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(Sha256::digest(&out), Sha256::digest(data), "{name}");
    }
}

fn untouched(d: &CarveDisk, before: &[(u32, String)], numbers: &[u32]) {
    for (n, sha) in before.iter().filter(|(n, _)| numbers.contains(n)) {
        let p = d.part(*n);
        assert_eq!(&sha_range(&d.path, p.start, p.size), sha, "partition {n} changed");
    }
}

#[test]
fn gpt_unallocated_then_locate_and_rollback_after_zeroing() {
    let dir = cf::tmp("unalloc");
    let d = cf::gpt_ext4(&dir, 128, Some(32));
    let orig = dir.join("orig.img");
    std::fs::copy(&d.path, &orig).unwrap();
    let before = d.part_hashes();
    let whole = sha256_file(&d.path);

    // Plan and carve without --yes write nothing.
    let o = inplace(&["plan", "--disk", d.disk(), "--store-size", "40M"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("from unallocated space") && text(&o).contains("after:"), "{}", text(&o));
    let o = inplace(&["carve", "--disk", d.disk(), "--store-size", "40M"]);
    assert!(o.status.success() && text(&o).contains("nothing was written"), "{}", text(&o));
    assert_eq!(sha256_file(&d.path), whole);

    let o = inplace(&["carve", "--disk", d.disk(), "--store-size", "40M", "--yes", "--job-name", "lab-07"]);
    assert!(o.status.success(), "{}", text(&o));
    cf::sgdisk_verify(&d.path);
    let l = cf::fsck_store(&d.path, &dir);
    assert_eq!(l["job_name"], "lab-07");
    assert!(l["fs_len"].as_u64().unwrap() >= 40 * MIB);
    untouched(&d, &before, &[1, 2]);
    let info = run(Command::new("sgdisk").arg("-i3").arg(&d.path));
    assert!(info.contains("EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"), "{info}");
    // Partition 1 kept its unique GUID and its attributes.
    let info = run(Command::new("sgdisk").arg("-i1").arg(&d.path));
    assert!(info.contains("0FC63DAF-0000-4000-8000-000000000001") && info.contains("0000000000000001"), "{info}");

    // Zero both GPTs: the locator still finds the store, and rollback restores the original
    // table byte for byte.
    let size = 128 * MIB;
    let head = 34 * 512;
    let tail = size - 33 * 512;
    cf::write_at(&d.path, 0, &vec![0u8; head as usize]);
    cf::write_at(&d.path, tail, &vec![0u8; 33 * 512]);
    let o = inplace(&["locate", "--disk", d.disk()]);
    assert!(o.status.success() && text(&o).contains("lab-07"), "{}", text(&o));
    let o = inplace(&["rollback", "--disk", d.disk()]);
    assert!(o.status.success() && text(&o).contains("nothing was written"));
    let o = inplace(&["rollback", "--disk", d.disk(), "--yes"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(sha_range(&d.path, 0, head), sha_range(&orig, 0, head));
    assert_eq!(sha_range(&d.path, tail, 33 * 512), sha_range(&orig, tail, 33 * 512));
    cf::sgdisk_verify(&d.path);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Strategy (b) on a disk with no unallocated space; `fs` is the filesystem of partition 2.
fn free_tail_case(dir: &Path, d: &CarveDisk, fs: &str) {
    let root = d.part(2);
    let before = d.part_hashes();
    let whole = sha256_file(&d.path);

    // Kept: refused, naming the sizes and what to do; the disk is unchanged.
    let o = inplace(&["carve", "--disk", d.disk(), "--store-size", "40M", "--yes"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("41 MiB") && t.contains("kept") && t.contains("--replace 2") && t.contains("external store"), "{t}");
    assert_eq!(sha256_file(&d.path), whole);

    let o = inplace(&["carve", "--disk", d.disk(), "--store-size", "40M", "--replace", "2", "--yes"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("free tail of partition 2"), "{}", text(&o));
    cf::sgdisk_verify(&d.path);
    let l = cf::fsck_store(&d.path, dir);
    // The store lies inside the original extent of partition 2, whose entry shrank.
    let (s, n) = (l["store_start"].as_u64().unwrap(), l["store_len"].as_u64().unwrap());
    assert!(s > root.start && s + n <= root.start + root.size, "store {s}+{n} vs {root:?}");
    let info = run(Command::new("sgdisk").arg("-i2").arg(&d.path));
    assert!(info.contains(&format!("Last sector: {} ", s / 512 - 1)), "{info}");
    untouched(d, &before, &[1]);
    files_read_back(d, fs, root);
    let old = dir.join("old.fs");
    cf::extract(&d.path, root.start, root.size, &old);
    if fs == "ntfs" {
        // The NTFS tools agree: ntfscat reads every file, ntfsfix -n finds the volume sound
        // (including the backup boot sector at the end of the original extent).
        for (name, data) in &d.files {
            let o = Command::new("ntfscat").arg(&old).arg(name).output().unwrap();
            assert!(o.status.success(), "ntfscat {name}: {}", text(&o));
            assert_eq!(Sha256::digest(&o.stdout), Sha256::digest(data), "{name}");
        }
        let o = Command::new("ntfsfix").arg("-n").arg(&old).output().unwrap();
        assert!(o.status.success(), "ntfsfix -n: {}", text(&o));
    } else {
        let o = Command::new("e2fsck").arg("-fn").arg(&old).output().unwrap();
        assert!(o.status.success(), "e2fsck: {}", text(&o));
    }
}

#[test]
fn gpt_full_disk_uses_free_tail_of_replaced_ext4() {
    let dir = cf::tmp("tail-ext4");
    // The root stays under 128 MiB: one block group, so no backup superblock near its end.
    let d = cf::gpt_ext4(&dir, 144, None);
    free_tail_case(&dir, &d, "ext4");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn gpt_full_disk_uses_free_tail_of_replaced_ntfs() {
    let dir = cf::tmp("tail-ntfs");
    let d = cf::gpt_ntfs(&dir, 192);
    free_tail_case(&dir, &d, "ntfs");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn gpt_4kn_unallocated() {
    let dir = cf::tmp("4kn");
    let d = cf::gpt_4kn(&dir);
    let before = d.part_hashes();
    let o = inplace(&["carve", "--disk", d.disk(), "--store-size", "260M", "--yes"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("4096-byte sectors"), "{}", text(&o));
    let l = cf::fsck_store(&d.path, &dir);
    assert_eq!(l["sector_size"], 4096);
    let (s, n) = (l["store_start"].as_u64().unwrap(), l["store_len"].as_u64().unwrap());
    // fdisk (the tool that reads 4Kn images) agrees, and lists the store where we put it.
    let list = cf::fdisk_verify(&d.path, 4096);
    let row = format!("{} {} {}", s / 4096, (s + n) / 4096 - 1, n / 4096);
    let line = list.lines().find(|l| l.contains("img3")).unwrap_or_else(|| panic!("{list}"));
    assert!(line.split_whitespace().collect::<Vec<_>>().join(" ").contains(&row), "{line} vs {row}");
    assert!(line.contains("Microsoft basic data"), "{line}");
    // Our own reader: both GPT copies good, three partitions.
    let disk: SharedDisk = Arc::new(Device::open(&d.path).unwrap());
    let t = inplace::disk::write::gpt::load(&disk, 4096, false).expect("both GPT copies load");
    assert_eq!(t.primary.backup_lba, 512 * MIB / 4096 - 1);
    let o = inplace(&["inspect", "--json", d.disk()]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let disk = &v["disks"][0];
    assert_eq!(disk["logical_sector_size"], 4096);
    assert_eq!(disk["findings"].as_array().map(Vec::len), Some(0), "{disk}");
    let store = &disk["partitions"][2];
    assert_eq!((store["number"].as_u64(), store["start_bytes"].as_u64(), store["label"].as_str()), (Some(3), Some(s), Some("INPLACE")));
    untouched(&d, &before, &[1, 2]);
    files_read_back(&d, "ext4", d.part(2));
    std::fs::remove_dir_all(&dir).unwrap();
}
