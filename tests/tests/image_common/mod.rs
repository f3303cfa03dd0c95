//! Shared by the image tests: the target disk (old partitions with stale bytes, a kept
//! partition, a FAT32 store with its locator), reading filesystems back with real tools, and
//! byte-range hashes.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use inplace::locator::{Locator, TableKind};
use inplace_tests::fixtures::{run, sparse};
use inplace_tests::inplace_bin;

pub const MIB: u64 = 1 << 20;

pub struct Target {
    pub path: PathBuf,
    /// `(number, start, size)` of the kept partition and of the store.
    pub kept: (u32, u64, u64),
    pub store: (u32, u64, u64),
}

/// GPT, `size_mib` MiB: 1 = old (80 MiB, stale bytes), 2 = data to keep (32 MiB of a
/// pattern), 3 = old (160 MiB, stale bytes), 4 = the store (64 MiB FAT32 with its locator).
pub fn target(dir: &Path, name: &str, size_mib: u64) -> Target {
    let path = dir.join(name);
    sparse(&path, size_mib * MIB);
    let parts: [(u64, u64, &str, &str); 4] =
        [(1, 80, "8300", "old-root"), (81, 32, "8300", "data"), (113, 160, "0700", "old-win"), (273, 64, "0700", "inplace store")];
    let mut cmd = Command::new("sgdisk");
    // Fixed GUIDs, so two targets made by this function are byte-identical.
    cmd.arg("-o").arg("-U").arg("11111111-2222-3333-4444-555555555555");
    for (i, (s, l, code, label)) in parts.iter().enumerate() {
        let n = i + 1;
        cmd.arg(format!("-n{n}:{}:{}", s * MIB / 512, (s + l) * MIB / 512 - 1)).arg(format!("-t{n}:{code}")).arg(format!("-c{n}:{label}"));
        cmd.arg(format!("-u{n}:aaaaaaaa-0000-0000-0000-00000000000{n}"));
    }
    run(cmd.arg(&path));
    let f = OpenOptions::new().write(true).open(&path).unwrap();
    // Stale bytes where the new partitions go, and a pattern in the kept partition.
    let stale = vec![0xA5u8; MIB as usize];
    for m in (1..81).chain(113..273).step_by(3) {
        f.write_all_at(&stale, m * MIB).unwrap();
    }
    let mut pat = vec![0u8; MIB as usize];
    for m in 81..113u64 {
        for (i, b) in pat.iter_mut().enumerate() {
            *b = (i as u64 * 7 + m) as u8;
        }
        f.write_all_at(&pat, m * MIB).unwrap();
    }
    // The store: FAT32 over its first 63 MiB and the locator at sector 2.
    let fat = dir.join(format!("{name}.store"));
    sparse(&fat, 63 * MIB);
    run(Command::new("mkfs.fat").args(["-F", "32", "-n", "INPLACE", "-i", "1234abcd", "--invariant"]).arg(&fat));
    inplace_tests::fixtures::place(&path, 273 * MIB, &fat);
    fs::remove_file(&fat).unwrap();
    let loc = Locator {
        job_id: [7; 16],
        created: 1_700_000_000,
        disk_bytes: size_mib * MIB,
        sector_size: 512,
        table: TableKind::Gpt,
        store_number: 4,
        store_start: 273 * MIB,
        store_len: 64 * MIB,
        fs_len: 63 * MIB,
        snapshot_offset: 63 * MIB,
        snapshot_len: 4096,
        snapshot_sha256: [1; 32],
        job_name: "image test".into(),
    };
    f.write_all_at(&loc.encode(), 273 * MIB + 1024).unwrap();
    f.sync_all().unwrap();
    Target { path, kept: (2, 81 * MIB, 32 * MIB), store: (4, 273 * MIB, 64 * MIB) }
}

pub fn range_sha(path: &Path, start: u64, len: u64) -> String {
    let mut f = File::open(path).unwrap();
    f.seek(SeekFrom::Start(start)).unwrap();
    let mut child = Command::new("sha256sum").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("sha256sum");
    std::io::copy(&mut f.take(len), child.stdin.as_mut().unwrap()).unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or_default().to_string()
}

/// Copies bytes `start .. start+len` of `img` into a new file.
pub fn extract(img: &Path, start: u64, len: u64, out: &Path) {
    let mut f = File::open(img).unwrap();
    f.seek(SeekFrom::Start(start)).unwrap();
    let mut o = File::create(out).unwrap();
    std::io::copy(&mut f.take(len), &mut o).unwrap();
}

/// `(number, start, size, type)` of every partition, read with inplace's own reader.
pub fn partitions(img: &Path) -> Vec<(u32, u64, u64, String)> {
    let inv = inplace::inventory::inspect_paths(&[img.to_path_buf()]);
    inv.disks[0].partitions.iter().map(|p| (p.number, p.start_bytes, p.size_bytes, p.part_type.clone())).collect()
}

pub fn part(img: &Path, number: u32) -> (u64, u64) {
    let p = partitions(img).into_iter().find(|p| p.0 == number).unwrap_or_else(|| panic!("{} has no partition {number}", img.display()));
    (p.1, p.2)
}

/// Runs inplace. The lay-down grows ext4 with e2fsck and resize2fs, which stamp the time into
/// its superblock: they run at one fixed time, so two lay-downs compare byte for byte.
pub fn inplace(args: &[&str]) -> Output {
    Command::new(inplace_bin())
        .args(args)
        .env("E2FSPROGS_FAKE_TIME", FIXED_TIME)
        .env("E2FSCK_TIME", FIXED_TIME)
        .stdin(Stdio::null())
        .output()
        .expect("running inplace")
}

/// The time e2fsprogs stamps in the tests' lay-downs.
pub const FIXED_TIME: &str = "1700000000";

/// The same fixed time for lay-downs run in this process.
pub fn fixed_e2fsprogs_time() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::env::set_var("E2FSPROGS_FAKE_TIME", FIXED_TIME);
        std::env::set_var("E2FSCK_TIME", FIXED_TIME);
    });
}

pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// sha256 of every regular file under `dir`, by relative path.
pub fn tree(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let ft = e.file_type().unwrap();
            let p = e.path();
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file() {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.insert(rel, inplace_tests::sha256_file(&p));
            }
        }
    }
    out
}

/// Every file of an ext4 filesystem image, by `debugfs rdump`.
pub fn ext4_files(fs_img: &Path, work: &Path) -> BTreeMap<String, String> {
    let out = work.join("ext4-dump");
    fs::create_dir_all(&out).unwrap();
    run(Command::new("debugfs").arg("-R").arg(format!("rdump / {}", out.display())).arg(fs_img));
    tree(&out)
}

/// Every file of a FAT filesystem image, by `mcopy -s`.
pub fn fat_files(fs_img: &Path, work: &Path) -> BTreeMap<String, String> {
    let out = work.join("fat-dump");
    fs::create_dir_all(&out).unwrap();
    run(Command::new("mcopy").arg("-s").arg("-n").arg("-i").arg(fs_img).arg("::/").arg(&out));
    tree(&out)
}

/// Every file of an NTFS image, through a read-only ntfs-3g mount.
pub fn ntfs_files(fs_img: &Path, work: &Path) -> BTreeMap<String, String> {
    let mnt = work.join("ntfs-mnt");
    fs::create_dir_all(&mnt).unwrap();
    run(Command::new("ntfs-3g").args(["-o", "ro"]).arg(fs_img).arg(&mnt));
    let t = std::panic::catch_unwind(|| tree(&mnt));
    let _ = Command::new("fusermount").arg("-u").arg(&mnt).status();
    t.unwrap()
}

pub fn fsck_ok(cmd: &mut Command) {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(o.status.success(), "{cmd:?} failed ({}):\n{}{}", o.status, String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
}

pub fn write_byte_xor(path: &Path, at: u64) {
    let f = OpenOptions::new().read(true).write(true).open(path).unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, at).unwrap();
    f.write_all_at(&[b[0] ^ 0x5a], at).unwrap();
}

pub fn flush(f: &mut File) {
    f.flush().unwrap();
}

/// A small reference disk: GPT, 128 MiB, one 100 MiB ext4 (Linux root) holding `random_mib`
/// MiB of random data plus compressible files.
pub fn small_reference(dir: &Path, random_mib: usize) -> PathBuf {
    let tree = dir.join("small-tree");
    fs::create_dir_all(tree.join("etc")).unwrap();
    fs::write(tree.join("etc/hostname"), "reference\n").unwrap();
    fs::write(tree.join("etc/text"), "inplace ".repeat(200_000)).unwrap();
    let mut rnd = vec![0u8; random_mib << 20];
    File::open("/dev/urandom").unwrap().read_exact(&mut rnd).unwrap();
    fs::write(tree.join("random.bin"), &rnd).unwrap();
    let fsimg = dir.join("small.ext4");
    sparse(&fsimg, 100 * MIB);
    run(Command::new("mkfs.ext4").args(["-q", "-F", "-b", "4096", "-L", "root", "-d"]).arg(&tree).arg(&fsimg));
    let img = dir.join("small-ref.img");
    sparse(&img, 128 * MIB);
    run(Command::new("sgdisk").args(["-o", "-n1:2048:206847", "-t1:8300", "-c1:root"]).arg(&img));
    inplace_tests::fixtures::place(&img, MIB, &fsimg);
    fs::remove_file(&fsimg).unwrap();
    img
}

/// `data_end` from an image header.
pub fn data_end(img: &Path) -> u64 {
    let mut b = [0u8; 8];
    File::open(img).unwrap().read_exact_at(&mut b, 72).unwrap();
    u64::from_le_bytes(b)
}

/// sha256 of a whole file with coreutils (fast even when the tests are built without
/// optimisation).
pub fn file_sha(path: &Path) -> String {
    let out = run(Command::new("sha256sum").arg(path));
    out.split_whitespace().next().unwrap_or_default().to_string()
}
