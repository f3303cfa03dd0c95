//! End-to-end helpers: the new OS as an inplace image, presets, the PE's ISO with both, and
//! the check of a migrated disk against the old machine's manifest — read with debugfs, never
//! with inplace.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::debian::{self, DebianDisk, Kind, Manifest};

/// The new OS (a real Debian 12, [`debian::new_os_disk`]) as an inplace image, made once with
/// `inplace image create` and cached beside the disk. Returns the image and its digest.
pub fn new_os_image() -> (PathBuf, String) {
    static IMG: OnceLock<(PathBuf, String)> = OnceLock::new();
    IMG.get_or_init(|| {
        let disk = debian::new_os_disk();
        let out = disk.path.with_file_name("new-os.inplace");
        let digest_file = out.with_extension("sha256");
        if !(out.exists() && digest_file.exists()) {
            let tmp = out.with_extension("partial");
            let digest = image_create(&disk.path, &tmp);
            std::fs::rename(&tmp, &out).unwrap();
            std::fs::write(&digest_file, &digest).unwrap();
        }
        (out, std::fs::read_to_string(&digest_file).unwrap().trim().to_string())
    })
    .clone()
}

/// `inplace image create --from DISK --out OUT`; panics when it fails. Returns the image's
/// digest as it prints it.
pub fn image_create(disk: &Path, out: &Path) -> String {
    let o = Command::new(crate::inplace_bin())
        .args(["image", "create", "--from"])
        .arg(disk)
        .arg("--out")
        .arg(out)
        .output()
        .expect("running inplace image create");
    assert!(o.status.success(), "inplace image create --from {}: {}", disk.display(), String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("sha256 ").map(|d| d.trim().to_string()))
        .expect("image create prints the digest")
}

/// A preset for an unattended job: `image` is the preset's image source, pinned by `sha256`;
/// `extra` is appended (more tables).
pub fn preset(name: &str, image: &str, sha256: &str, after: &str, extra: &str) -> String {
    format!(
        "name = \"{name}\"\nconfirm = false\nfinish = \"poweroff\"\n\n[image]\nsource = \"{image}\"\nsha256 = \"{sha256}\"\n\n\
         [store]\nafter = \"{after}\"\n\n[restore]\ncreate_users = true\n{extra}"
    )
}

/// The PE's ISO (`scripts/build-iso`, from the built PE) with `preset` and the image at
/// `inplace/images/new-os.inplace`.
pub fn pe_iso(dir: &Path, preset: &str, image: &Path) -> PathBuf {
    let p = dir.join("preset.toml");
    std::fs::write(&p, preset).unwrap();
    let iso = dir.join("inplace.iso");
    let o = Command::new(crate::workspace().join("scripts/build-iso"))
        .arg("--preset")
        .arg(&p)
        .arg("--file")
        .arg(format!("{}=inplace/images/new-os.inplace", image.display()))
        .arg("--out")
        .arg(&iso)
        .output()
        .expect("running scripts/build-iso");
    assert!(o.status.success(), "build-iso: {}", String::from_utf8_lossy(&o.stderr));
    iso
}

/// The image's path as a preset on the ISO names it.
pub const ISO_IMAGE: &str = "inplace/images/new-os.inplace";

/// How long the PE may take for a whole job under TCG.
pub const PE_LIMIT: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// The PE's part of a job: its time from `inplace: ready` to the hand-off, and its serial log.
pub struct PeJob {
    pub job_secs: f64,
    pub serial: String,
}

/// Boots the PE from `iso` on UEFI with `disk` (virtio, 512-byte sectors, serial number
/// `serial`), waits for the job to reach the hand-off and the PE to power off. Panics with
/// the serial log's tail when the PE fails.
pub fn pe_job(iso: &Path, disk: &Path, serial: &str) -> PeJob {
    use crate::qemu::{Boot, Controller, Firmware, Vm};
    use std::time::Duration;
    let pe = Vm::new("").booting(Boot::Cdrom(iso.to_path_buf()), Firmware::Uefi).disk(disk, Controller::VirtioBlk, 512, serial);
    let mut s = pe.start();
    s.wait_for("inplace: ready", Duration::from_secs(180)).unwrap();
    let t0 = s.elapsed();
    let (which, _) = s.wait_for_any(&["handed-off", "inplace: FATAL"], PE_LIMIT).unwrap();
    assert_eq!(which, 0, "the PE failed:\n{}", s.tail(6000));
    let job_secs = (s.elapsed() - t0).as_secs_f64();
    let serial = s.wait_exit(Duration::from_secs(120)).unwrap().serial;
    PeJob { job_secs, serial }
}

/// A partition of a disk image, as sgdisk lists it: (number, first byte, bytes, type code).
pub fn partitions(disk: &Path) -> Vec<(u32, u64, u64, String)> {
    let out = Command::new("sgdisk").arg("-p").arg(disk).output().expect("sgdisk");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let n: u32 = f.first()?.parse().ok()?;
            let first: u64 = f.get(1)?.parse().ok()?;
            let last: u64 = f.get(2)?.parse().ok()?;
            let code = f.get(5).map(|s| s.to_string()).unwrap_or_default();
            Some((n, first * 512, (last - first + 1) * 512, code))
        })
        .collect()
}

/// Runs one debugfs request on the filesystem at `offset` of `disk`, read-only.
pub fn debugfs(disk: &Path, offset: u64, request: &str) -> String {
    debugfs_raw(disk, offset, request.as_bytes())
}

/// [`debugfs`] with a request of raw bytes (a name that is not UTF-8).
pub fn debugfs_raw(disk: &Path, offset: u64, request: &[u8]) -> String {
    use std::os::unix::ffi::OsStrExt;
    let o = Command::new("debugfs")
        .arg("-R")
        .arg(std::ffi::OsStr::from_bytes(request))
        .arg(format!("{}?offset={offset}", disk.display()))
        .output()
        .expect("debugfs (e2fsprogs)");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The file at `path` of the ext4 at `offset`, or `None`.
pub fn read_file(disk: &Path, offset: u64, path: &str) -> Option<Vec<u8>> {
    read_file_raw(disk, offset, path.as_bytes())
}

/// [`read_file`] of a path of raw bytes.
pub fn read_file_raw(disk: &Path, offset: u64, path: &[u8]) -> Option<Vec<u8>> {
    let tmp = tempfile::NamedTempFile::new().unwrap();
    let _ = std::fs::remove_file(tmp.path());
    let req = [b"dump \"".as_slice(), path, format!("\" {}", tmp.path().display()).as_bytes()].concat();
    debugfs_raw(disk, offset, &req);
    std::fs::read(tmp.path()).ok()
}

/// What `debugfs stat` says of one inode.
#[derive(Debug, Default, Clone)]
pub struct Stat {
    pub kind: String,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: i64,
    pub links: u32,
    pub inode: u64,
}

/// `stat` of `path` through debugfs (the raw name bytes are quoted as debugfs takes them).
pub fn stat(disk: &Path, offset: u64, path: &[u8]) -> Option<Stat> {
    let text = debugfs_raw(disk, offset, &[b"stat \"".as_slice(), path, b"\""].concat());
    parse_stat(&text)
}

fn parse_stat(text: &str) -> Option<Stat> {
    let mut s = Stat::default();
    let mut seen = false;
    for line in text.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("Inode: ") {
            seen = true;
            let f: Vec<&str> = rest.split_whitespace().collect();
            s.inode = f.first().and_then(|x| x.parse().ok()).unwrap_or(0);
            if let Some(i) = f.iter().position(|x| *x == "Type:") {
                s.kind = f.get(i + 1).unwrap_or(&"").to_string();
            }
            if let Some(i) = f.iter().position(|x| *x == "Mode:") {
                s.mode = u32::from_str_radix(f.get(i + 1).unwrap_or(&"0"), 8).unwrap_or(0);
            }
        } else if let Some(rest) = t.strip_prefix("User: ") {
            let f: Vec<&str> = rest.split_whitespace().collect();
            s.uid = f.first().and_then(|x| x.parse().ok()).unwrap_or(0);
            if let Some(i) = f.iter().position(|x| *x == "Group:") {
                s.gid = f.get(i + 1).and_then(|x| x.parse().ok()).unwrap_or(0);
            }
            if let Some(i) = f.iter().position(|x| *x == "Size:") {
                s.size = f.get(i + 1).and_then(|x| x.parse().ok()).unwrap_or(0);
            }
        } else if t.starts_with("Links: ") {
            s.links = t.split_whitespace().nth(1).and_then(|x| x.parse().ok()).unwrap_or(0);
        } else if let Some(rest) = t.strip_prefix("mtime: ") {
            // `mtime: 0x65a1b2c3:00000000 -- Mon Jan ...`
            let hex = rest.split(':').next().unwrap_or("").trim_start_matches("0x");
            s.mtime = i64::from_str_radix(hex, 16).unwrap_or(0);
        }
    }
    seen.then_some(s)
}

/// name → id, from a passwd or group file's text.
fn ids(text: &str) -> BTreeMap<String, u32> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some((f.first()?.to_string(), f.get(2)?.parse().ok()?))
        })
        .collect()
}

fn sha256(b: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("{:x}", Sha256::digest(b))
}

/// The root filesystem of a migrated disk: the partition the new OS's fstab mounts at `/`.
pub fn root_offset(disk: &Path) -> u64 {
    partitions(disk).into_iter().find(|p| p.3 == "8304" || p.3 == "8300").map(|p| p.1).expect("a Linux root partition")
}

/// Checks every migrated entry of `manifest` on the disk's new root: data (sha256), kind,
/// owner and group by name (through the new OS's passwd and group), mode and mtime, link
/// targets, hard links sharing an inode. Returns what differs; empty when everything matches.
pub fn check_migrated(disk: &Path, manifest: &Manifest) -> Vec<String> {
    let off = root_offset(disk);
    let passwd = ids(&String::from_utf8_lossy(&read_file(disk, off, "/etc/passwd").unwrap_or_default()));
    let group = ids(&String::from_utf8_lossy(&read_file(disk, off, "/etc/group").unwrap_or_default()));
    let mut bad = Vec::new();
    let mut inodes: BTreeMap<u64, u64> = BTreeMap::new();
    for e in &manifest.entries {
        let target: Vec<u8> = match &e.user {
            Some(u) => {
                let home = format!("/home/{}/", u.to_lowercase());
                [home.as_bytes(), &e.path].concat()
            }
            None => [b"/".as_slice(), &e.path].concat(),
        };
        let shown = String::from_utf8_lossy(&target).into_owned();
        let Some(st) = stat(disk, off, &target) else {
            bad.push(format!("{shown}: missing"));
            continue;
        };
        let want_kind = match e.kind {
            Kind::File => "regular",
            Kind::Dir => "directory",
            Kind::Symlink => "symlink",
        };
        if st.kind != want_kind {
            bad.push(format!("{shown}: a {} (want {want_kind})", st.kind));
            continue;
        }
        if let Some(m) = e.mode {
            if st.mode & 0o7777 != m & 0o7777 && e.user.is_some() {
                bad.push(format!("{shown}: mode {:o} (want {m:o})", st.mode & 0o7777));
            }
        }
        if e.user.is_some() {
            // As restore maps a profile: the account of its name, else of its lowercase name
            // (an NTFS profile `Carol` is the account `carol`).
            let uid = passwd.get(&e.owner).or_else(|| passwd.get(&e.owner.to_lowercase()));
            if uid != Some(&st.uid) {
                bad.push(format!("{shown}: uid {} (want {}'s, {uid:?})", st.uid, e.owner));
            }
            if let Some(g) = &e.group {
                if group.get(g) != Some(&st.gid) {
                    bad.push(format!("{shown}: gid {} (want {g}'s, {:?})", st.gid, group.get(g)));
                }
            }
        }
        if e.kind != Kind::Dir && st.mtime != e.mtime {
            bad.push(format!("{shown}: mtime {} (want {})", st.mtime, e.mtime));
        }
        match e.kind {
            Kind::File => {
                let data = read_file_raw(disk, off, &target).unwrap_or_default();
                if Some(sha256(&data)) != e.sha256 {
                    bad.push(format!("{shown}: content differs ({} bytes, want {})", data.len(), e.size));
                }
            }
            Kind::Symlink => {
                let text = debugfs_raw(disk, off, &[b"stat \"".as_slice(), &target, b"\""].concat());
                let want = String::from_utf8_lossy(e.target.as_deref().unwrap_or_default()).into_owned();
                if !text.contains(&format!("Fast link dest: \"{want}\"")) && !text.contains(&want) {
                    bad.push(format!("{shown}: link target is not {want:?}"));
                }
            }
            Kind::Dir => {}
        }
        if let Some(g) = e.link_group {
            match inodes.get(&g) {
                Some(first) if *first != st.inode => {
                    bad.push(format!("{shown}: not the same inode as the other names of its hard-link group"))
                }
                Some(_) => {}
                None => {
                    inodes.insert(g, st.inode);
                }
            }
        }
    }
    bad
}

/// sha256 of bytes `start .. start + len` of `disk` (a partition's bytes, to show it untouched).
pub fn range_sha256(disk: &Path, start: u64, len: u64) -> String {
    use sha2::{Digest, Sha256};
    use std::io::{Read, Seek};
    let mut f = std::fs::File::open(disk).unwrap_or_else(|e| panic!("opening {}: {e}", disk.display()));
    f.seek(std::io::SeekFrom::Start(start)).unwrap();
    let mut h = Sha256::new();
    let n = std::io::copy(&mut f.take(len), &mut h).unwrap();
    assert_eq!(n, len, "{} ends before byte {}", disk.display(), start + len);
    format!("{:x}", h.finalize())
}

/// The disk the old machine test starts from: a fresh copy of the cached one.
pub fn old_machine_copy(dir: &Path, with_ntfs: bool) -> (PathBuf, Manifest, DebianDisk) {
    let m = if with_ntfs { debian::old_machine_with_ntfs() } else { debian::old_machine() };
    (m.disk.copy_to(dir), m.manifest, m.disk)
}
