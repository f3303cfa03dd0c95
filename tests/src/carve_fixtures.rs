//! Fixture disks for the carve tests, and the checks every carve outcome goes through.
//!
//! Each builder writes a fresh sparse image with the real tools (sgdisk, sfdisk, fdisk -b 4096,
//! mkfs.ext4, mkfs.fat, mkntfs + ntfs-3g) and returns a [`CarveDisk`]: the path, the sector
//! size and the partitions as the tools laid them out, plus the files put into the filesystem
//! the store may be carved from (so a test can read every one back afterwards).
//!
//! The disks are as small as the case allows: the store must hold a FAT32 volume (≥ 65,525
//! clusters, so about 34 MiB on 512-byte sectors and 259 MiB on 4096-byte sectors), and
//! everything else is a few MiB. Only the MBR case that must reach past 4 GiB is large, and it
//! is sparse.
//!
//! The checks: `sgdisk -v`, `sfdisk --verify`, `fdisk -b 4096` + `v` (sgdisk cannot read
//! 4Kn images), `fsck.fat -n` on the store's FAT volume (copied out to a file), sha256 of
//! byte ranges, and a walk of the MBR's EBR chain done here by hand.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

use crate::fixtures::{mkfs_ext4, mkfs_fat, place, run, run_input, sparse, NtfsMount};
use crate::inplace_bin;

pub const MIB: u64 = 1 << 20;

/// A partition of a fixture, in bytes, as the tool that made it laid it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub number: u32,
    pub start: u64,
    pub size: u64,
}

/// A fixture disk for a carve test.
#[derive(Debug, Clone)]
pub struct CarveDisk {
    pub path: PathBuf,
    pub sector_size: u32,
    pub parts: Vec<Span>,
    /// Files (path, contents) in the filesystem a store may come from.
    pub files: Vec<(String, Vec<u8>)>,
}

impl CarveDisk {
    pub fn disk(&self) -> &str {
        self.path.to_str().expect("fixture paths are UTF-8")
    }

    pub fn part(&self, number: u32) -> Span {
        *self.parts.iter().find(|p| p.number == number).unwrap_or_else(|| panic!("fixture has no partition {number}"))
    }

    /// sha256 of every partition, by number (the MBR extended container excluded by the
    /// builders, since its EBRs are table data).
    pub fn part_hashes(&self) -> Vec<(u32, String)> {
        self.parts.iter().map(|p| (p.number, sha_range(&self.path, p.start, p.size))).collect()
    }
}

/// A fresh directory for one test.
pub fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("inplace-carve-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap_or_else(|e| panic!("creating {}: {e}", d.display()));
    d
}

/// Runs the `inplace` CLI.
pub fn inplace(args: &[&str]) -> Output {
    Command::new(inplace_bin()).args(args).output().expect("running inplace")
}

/// stdout and stderr of a run.
pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Files with known contents: a few small ones and one of 3 MB, in subdirectories.
pub fn file_set(windows: bool) -> Vec<(String, Vec<u8>)> {
    let names: &[(&str, usize)] = if windows {
        &[
            ("Windows/System32/config/SOFTWARE", 70_000),
            ("Users/ana/Documents/report.docx", 3_000_000),
            ("Users/ana/Desktop/notes.txt", 5_000),
            ("Users/Public/shared.txt", 100),
        ]
    } else {
        &[("etc/os-release", 100), ("home/ana/big.bin", 3_000_000), ("home/ana/notes.txt", 5_000)]
    };
    names
        .iter()
        .map(|(name, n)| {
            let data: Vec<u8> = (0..*n).map(|i| ((i * 7 + name.len()) ^ (i >> 9)) as u8).collect();
            (name.to_string(), data)
        })
        .collect()
}

fn write_tree(root: &Path, files: &[(String, Vec<u8>)]) {
    for (name, data) in files {
        let p = root.join(name);
        fs::create_dir_all(p.parent().expect("files are in directories")).unwrap();
        fs::write(&p, data).unwrap_or_else(|e| panic!("writing {}: {e}", p.display()));
    }
}

/// `(first, last)` sector of GPT partition `n` according to sgdisk.
fn sgdisk_extent(img: &Path, n: u32) -> (u64, u64) {
    let info = run(Command::new("sgdisk").arg(format!("-i{n}")).arg(img));
    let field = |key: &str| -> u64 {
        let l = info.lines().find(|l| l.starts_with(key)).unwrap_or_else(|| panic!("sgdisk -i{n}: no {key:?} in\n{info}"));
        l[key.len()..].split_whitespace().next().and_then(|v| v.parse().ok()).expect("a sector number")
    };
    (field("First sector:"), field("Last sector:"))
}

/// GPT, 512-byte sectors: a 16 MiB FAT ESP at 1 MiB and an ext4 root (with [`file_set`])
/// right after it, `root_mib` long, or to the end of the disk when `None`.
pub fn gpt_ext4(dir: &Path, disk_mib: u64, root_mib: Option<u64>) -> CarveDisk {
    let img = dir.join("gpt_ext4.img");
    sparse(&img, disk_mib * MIB);
    let last = root_mib.map_or("0".to_string(), |m| format!("+{m}M"));
    run(Command::new("sgdisk")
        .args(["-o", "-n1:1M:+16M", "-t1:ef00", "-c1:EFI system", &format!("-n2:0:{last}"), "-t2:8300", "-c2:root"])
        .args(["-u1:0FC63DAF-0000-4000-8000-000000000001", "-A1:set:0"])
        .arg(&img));
    let work = dir.join("gpt_ext4.work");
    fs::create_dir_all(&work).unwrap();
    let esp = mkfs_fat(&work, "esp", 16 * MIB, "ESP", &[], true);
    place(&img, MIB, &esp);
    let (first, lastsec) = sgdisk_extent(&img, 2);
    let root = Span { number: 2, start: first * 512, size: (lastsec - first + 1) * 512 };
    let files = file_set(false);
    let tree = work.join("tree");
    write_tree(&tree, &files);
    let fs = mkfs_ext4(&work, "root", root.size, "root", Some(&tree));
    place(&img, root.start, &fs);
    let _ = fs::remove_dir_all(&work);
    CarveDisk { path: img, sector_size: 512, parts: vec![Span { number: 1, start: MIB, size: 16 * MIB }, root], files }
}

/// GPT, 512-byte sectors, no unallocated space: a 16 MiB ESP and an NTFS `C:` (mkntfs,
/// populated with [`file_set`] through an ntfs-3g mount) filling the rest of the disk.
pub fn gpt_ntfs(dir: &Path, disk_mib: u64) -> CarveDisk {
    let img = dir.join("gpt_ntfs.img");
    sparse(&img, disk_mib * MIB);
    run(Command::new("sgdisk")
        .args(["-o", "-n1:1M:+16M", "-t1:ef00", "-c1:EFI system partition", "-n2:0:0", "-t2:0700", "-c2:Basic data partition"])
        .arg(&img));
    let work = dir.join("gpt_ntfs.work");
    fs::create_dir_all(&work).unwrap();
    let esp = mkfs_fat(&work, "esp", 16 * MIB, "SYSTEM", &[], true);
    place(&img, MIB, &esp);
    let (first, last) = sgdisk_extent(&img, 2);
    let c = Span { number: 2, start: first * 512, size: (last - first + 1) * 512 };
    let vol = work.join("c.ntfs");
    sparse(&vol, c.size);
    run(Command::new("mkntfs").args(["-F", "-Q", "-L", "Windows", "-p", &first.to_string()]).arg(&vol));
    let mnt = work.join("c.mnt");
    fs::create_dir_all(&mnt).unwrap();
    let files = file_set(true);
    let m = NtfsMount::mount(&vol, &mnt);
    write_tree(&mnt, &files);
    m.unmount();
    place(&img, c.start, &vol);
    let _ = fs::remove_dir_all(&work);
    CarveDisk { path: img, sector_size: 512, parts: vec![Span { number: 1, start: MIB, size: 16 * MIB }, c], files }
}

/// GPT on 4096-byte logical sectors (made with `fdisk -b 4096`), 512 MiB: a 16 MiB FAT ESP
/// with 4 KiB sectors at 1 MiB, a 32 MiB ext4 root after it, the rest unallocated.
pub fn gpt_4kn(dir: &Path) -> CarveDisk {
    let img = dir.join("gpt_4kn.img");
    sparse(&img, 512 * MIB);
    // 256 sectors = 1 MiB.
    run_input(Command::new("fdisk").args(["-b", "4096"]).arg(&img), "g\nn\n1\n256\n4351\nn\n2\n4352\n12543\nt\n1\nuefi\nw\n");
    let mut sig = [0u8; 8];
    File::open(&img).and_then(|f| f.read_exact_at(&mut sig, 4096)).expect("reading the GPT header");
    assert_eq!(&sig, b"EFI PART", "fdisk -b 4096 did not put the GPT header at byte 4096");
    let work = dir.join("gpt_4kn.work");
    fs::create_dir_all(&work).unwrap();
    let esp = mkfs_fat(&work, "esp", 16 * MIB, "ESP4K", &["-S", "4096"], false);
    place(&img, MIB, &esp);
    let files = file_set(false);
    let tree = work.join("tree");
    write_tree(&tree, &files);
    let root = mkfs_ext4(&work, "root", 32 * MIB, "root4k", Some(&tree));
    place(&img, 17 * MIB, &root);
    let _ = fs::remove_dir_all(&work);
    CarveDisk {
        path: img,
        sector_size: 4096,
        parts: vec![Span { number: 1, start: MIB, size: 16 * MIB }, Span { number: 2, start: 17 * MIB, size: 32 * MIB }],
        files,
    }
}

/// Recognisable boot code in the first 440 bytes of sector 0, which every carve must keep.
fn boot_code(img: &Path) {
    let code: Vec<u8> = (0..440u32).map(|i| (i * 13 + 5) as u8).collect();
    OpenOptions::new().write(true).open(img).and_then(|f| f.write_all_at(&code, 0)).expect("writing boot code");
}

fn sfdisk(img: &Path, script: &str) {
    run_input(Command::new("sfdisk").args(["--no-reread", "--no-tell-kernel"]).arg(img), script);
}

/// Fills the partitions of an MBR fixture: ext4 with [`file_set`] in the first, FAT in the
/// others.
fn fill(dir: &Path, img: &Path, parts: &[Span]) -> Vec<(String, Vec<u8>)> {
    let work = dir.join("mbr.work");
    fs::create_dir_all(&work).unwrap();
    let files = file_set(false);
    let tree = work.join("tree");
    write_tree(&tree, &files);
    for (i, p) in parts.iter().enumerate() {
        let fs = if i == 0 {
            mkfs_ext4(&work, &format!("p{}", p.number), p.size, &format!("part{}", p.number), Some(&tree))
        } else {
            mkfs_fat(&work, &format!("p{}", p.number), p.size, &format!("PART{}", p.number), &[], false)
        };
        place(img, p.start, &fs);
        fs::remove_file(fs).unwrap();
    }
    let _ = fs::remove_dir_all(&work);
    files
}

/// MBR, 128 MiB: four primaries of 16 MiB from 1 MiB on (ext4, FAT, FAT, FAT) and 63 MiB
/// unallocated after them, which no new entry can describe.
pub fn mbr_four_primaries(dir: &Path) -> CarveDisk {
    let img = dir.join("mbr_four.img");
    sparse(&img, 128 * MIB);
    let s = |mib: u64| mib * MIB / 512;
    let parts: Vec<Span> = (0..4).map(|i| Span { number: i + 1, start: (1 + 16 * u64::from(i)) * MIB, size: 16 * MIB }).collect();
    let mut script = String::from("label: dos\nlabel-id: 0x1f2e3d4c\nunit: sectors\n\n");
    for p in &parts {
        script.push_str(&format!("start={}, size={}, type={}\n", s(p.start / MIB), s(p.size / MIB), if p.number == 1 { "83" } else { "c" }));
    }
    sfdisk(&img, &script);
    boot_code(&img);
    let files = fill(dir, &img, &parts);
    CarveDisk { path: img, sector_size: 512, parts, files }
}

/// MBR, 6 GiB sparse: primaries 1 (ext4, 32 MiB), 2 (FAT, 16 MiB), 3 (FAT, 16 MiB), and
/// extended partition 4 from 4100 MiB to 4300 MiB holding logical 5 (FAT, 16 MiB at
/// 4101 MiB) and logical 6 (FAT, 16 MiB at 4150 MiB): every EBR and logical partition lies
/// beyond 4 GiB, where mbrman 0.6.1 computes EBR offsets wrongly. 134 MiB are free inside
/// the extended partition after logical 6, and 1844 MiB after the extended partition.
pub fn mbr_logicals_past_4g(dir: &Path) -> CarveDisk {
    let img = dir.join("mbr_4g.img");
    sparse(&img, 6144 * MIB);
    let sp = |number: u32, start_mib: u64, size_mib: u64| Span { number, start: start_mib * MIB, size: size_mib * MIB };
    let parts = vec![sp(1, 1, 32), sp(2, 33, 16), sp(3, 49, 16), sp(5, 4101, 16), sp(6, 4150, 16)];
    let s = |bytes: u64| bytes / 512;
    let mut script = String::from("label: dos\nlabel-id: 0x5a5a0001\nunit: sectors\n\n");
    for p in &parts[..3] {
        script.push_str(&format!("start={}, size={}, type={}\n", s(p.start), s(p.size), if p.number == 1 { "83" } else { "c" }));
    }
    script.push_str(&format!("start={}, size={}, type=5\n", s(4100 * MIB), s(200 * MIB)));
    for p in &parts[3..] {
        script.push_str(&format!("start={}, size={}, type=c\n", s(p.start), s(p.size)));
    }
    sfdisk(&img, &script);
    let dump = run(Command::new("sfdisk").arg("--dump").arg(&img));
    for p in &parts {
        let want = format!("start={:>12}, size={:>12}", s(p.start), s(p.size));
        assert!(dump.contains(&want), "sfdisk laid out the MBR differently (no {want:?}):\n{dump}");
    }
    let chain = ebr_chain(&img);
    assert!(chain.len() == 2 && chain.iter().all(|e| e.lba * 512 > 4 << 30), "{chain:?}");
    boot_code(&img);
    let files = fill(dir, &img, &parts);
    CarveDisk { path: img, sector_size: 512, parts, files }
}

/// sha256 (hex) of bytes `start .. start + len` of a file.
pub fn sha_range(path: &Path, start: u64, len: u64) -> String {
    let f = File::open(path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 4 * MIB as usize];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(buf.len() as u64) as usize;
        f.read_exact_at(&mut buf[..n], start + done).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        h.update(&buf[..n]);
        done += n as u64;
    }
    format!("{:x}", h.finalize())
}

/// Copies bytes `start .. start + len` of `path` into a new sparse file `to`.
pub fn extract(path: &Path, start: u64, len: u64, to: &Path) {
    let from = File::open(path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    let out = File::create(to).unwrap_or_else(|e| panic!("creating {}: {e}", to.display()));
    out.set_len(len).unwrap();
    let mut buf = vec![0u8; MIB as usize];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(buf.len() as u64) as usize;
        from.read_exact_at(&mut buf[..n], start + done).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        if buf[..n].iter().any(|b| *b != 0) {
            out.write_all_at(&buf[..n], done).unwrap();
        }
        done += n as u64;
    }
}

/// Writes `bytes` at `at` into a file.
pub fn write_at(path: &Path, at: u64, bytes: &[u8]) {
    OpenOptions::new().write(true).open(path).and_then(|f| f.write_all_at(bytes, at)).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

pub fn read_at(path: &Path, at: u64, len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len];
    File::open(path).and_then(|f| f.read_exact_at(&mut b, at)).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    b
}

/// `sgdisk -v` finds no problem (512-byte-sector GPT images only).
pub fn sgdisk_verify(img: &Path) {
    let out = run(Command::new("sgdisk").arg("-v").arg(img));
    assert!(out.contains("No problems found"), "sgdisk -v {}: {out}", img.display());
}

/// `sfdisk --verify` is clean (MBR).
pub fn sfdisk_verify(img: &Path) {
    let o = Command::new("sfdisk").arg("--verify").arg(img).output().expect("running sfdisk");
    let t = text(&o);
    assert!(o.status.success() && !t.contains("overlap") && !t.contains("not aligned") && !t.contains("exceeds"), "sfdisk --verify {}: {t}", img.display());
}

/// fdisk's own verify (`v`) on an image with `ss`-byte sectors: the tool that reads 4Kn GPT
/// images. Returns `fdisk -l` for further checks.
pub fn fdisk_verify(img: &Path, ss: u32) -> String {
    let ssz = ss.to_string();
    let v = run_input(Command::new("fdisk").args(["-b", &ssz]).arg(img), "v\nq\n");
    assert!(v.contains("No errors detected"), "fdisk -b {ss} (v) {}: {v}", img.display());
    let l = run(Command::new("fdisk").args(["-b", &ssz, "-l"]).arg(img));
    assert!(!l.contains("mismatch") && !l.contains("corrupt"), "fdisk -b {ss} -l: {l}");
    l
}

/// Finds the store through `inplace locate --json`, copies its FAT volume out and checks it
/// with `fsck.fat -n` and its label. Returns the locator.
pub fn fsck_store(img: &Path, dir: &Path) -> serde_json::Value {
    let o = inplace(&["locate", "--disk", img.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("locate --json");
    let l = v["locator"].clone();
    assert_eq!(v["valid_at"].as_array().map(Vec::len), Some(2), "both locator copies: {v}");
    let (start, fs_len) = (l["store_start"].as_u64().unwrap(), l["fs_len"].as_u64().unwrap());
    let store = dir.join("store.fat");
    extract(img, start, fs_len, &store);
    let out = Command::new("fsck.fat").arg("-n").arg(&store).output().expect("running fsck.fat");
    assert!(out.status.success(), "fsck.fat -n: {}", text(&out));
    let label = run(Command::new("fatlabel").arg(&store));
    assert_eq!(label.trim(), "INPLACE");
    let _ = fs::remove_file(store);
    l
}

/// One EBR of an MBR's logical chain, read by hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EbrInfo {
    pub lba: u64,
    /// Absolute first LBA, sectors and type of its logical partition.
    pub logical: (u64, u64, u8),
    /// Entry 1: link (relative to the extended start) and its size, if any.
    pub link: Option<(u64, u64)>,
}

fn entry(sector: &[u8], i: usize) -> (u8, u64, u64) {
    let at = 446 + i * 16;
    let u = |o: usize| u64::from(u32::from_le_bytes(sector[at + o..at + o + 4].try_into().unwrap()));
    (sector[at + 4], u(8), u(12))
}

/// The extended partition of an MBR image: `(first LBA, sectors)`.
pub fn extended(img: &Path) -> Option<(u64, u64)> {
    let s0 = read_at(img, 0, 512);
    (0..4).map(|i| entry(&s0, i)).find(|(t, _, n)| matches!(t, 0x05 | 0x0f | 0x85) && *n > 0).map(|(_, st, n)| (st, n))
}

/// Walks the EBR chain of a 512-byte-sector MBR image and checks its shape: every EBR has
/// the boot signature, sits inside the extended partition before its own logical partition
/// and after the previous logical partition, entries 2 and 3 are empty, and every link
/// points forwards and covers the next EBR through the end of its logical partition.
pub fn ebr_chain(img: &Path) -> Vec<EbrInfo> {
    let Some((ext, ext_len)) = extended(img) else { return Vec::new() };
    let mut out = Vec::new();
    let mut lba = ext;
    let mut prev_end = ext;
    loop {
        assert!(out.len() < 64, "the EBR chain loops");
        let sec = read_at(img, lba * 512, 512);
        assert_eq!(&sec[510..], &[0x55, 0xAA], "EBR at LBA {lba} has no boot signature");
        assert!(entry(&sec, 2).0 == 0 && entry(&sec, 3).0 == 0, "EBR at LBA {lba}: entries 2/3 used");
        let (t, rel, n) = entry(&sec, 0);
        let first = lba + rel;
        assert!(rel > 0 && first + n <= ext + ext_len && lba >= prev_end, "EBR at LBA {lba}: logical {first}+{n} outside the extended partition or overlapping");
        let (lt, lrel, ln) = entry(&sec, 1);
        let link = (lt != 0).then_some((lrel, ln));
        out.push(EbrInfo { lba, logical: (first, n, t), link });
        prev_end = first + n;
        let Some((lrel, ln)) = link else { break };
        assert!(matches!(lt, 0x05 | 0x0f), "EBR at LBA {lba}: link type {lt:#x}");
        let next = ext + lrel;
        assert!(next >= prev_end && next < ext + ext_len, "EBR at LBA {lba} links to {next}, not forwards inside the extended partition");
        let nsec = read_at(img, next * 512, 512);
        let (_, nrel, nn) = entry(&nsec, 0);
        assert_eq!(ln, nrel + nn, "EBR at LBA {lba}: the link size does not cover the next EBR through its logical partition");
        lba = next;
    }
    out
}
