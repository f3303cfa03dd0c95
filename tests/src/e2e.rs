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
        // Several test processes may ask at once: one makes it, the others wait.
        let lock = std::fs::File::create(out.with_extension("lock")).expect("creating the image's lock");
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).expect("locking the image cache");
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
    image_create_signed(disk, out, None)
}

/// [`image_create`], signed with the secret key `sign_key` when given (`--sign-key`).
pub fn image_create_signed(disk: &Path, out: &Path, sign_key: Option<&Path>) -> String {
    let mut cmd = Command::new(crate::inplace_bin());
    cmd.args(["image", "create", "--from"]).arg(disk).arg("--out").arg(out);
    if let Some(k) = sign_key {
        cmd.arg("--sign-key").arg(k);
    }
    let o = cmd.output().expect("running inplace image create");
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
    let pe = Vm::new("").booting(Boot::Cdrom(iso.to_path_buf()), Firmware::Uefi).disk(disk, Controller::VirtioBlk, 512, serial).with_user_net();
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

// ---- the job's own record, read on the host ----------------------------------------------------

/// The job's journal on `disk`, as a resume or a rollback finds it (decoded by inplace's own
/// `job::rollback::find_job`): in the store partition's reserve, before the carve in the
/// reserve of the store the plan makes, or through the store's locator. `None` when there is
/// none (no job yet, a rollback cleared it, or the cleanup deleted the store).
pub fn journal(disk: &Path) -> Option<inplace::job::find::Record> {
    inplace::job::rollback::find_job(disk)
        .unwrap_or_else(|e| panic!("reading the job journal of {}: {e}", disk.display()))
        .map(|f| f.journal)
}

/// The journal's copy that the first boot keeps in the new OS (`/var/log/inplace/journal.json`
/// on the root), read with debugfs; `None` before the new OS's first boot wrote one. After a
/// power cut the root filesystem's own journal may hold what was last synced (debugfs does not
/// replay it): the copy is then read from the root partition copied out and replayed with
/// `e2fsck -E journal_only`, as the next mount would see it; the disk is not written.
pub fn journal_copy(disk: &Path) -> Option<serde_json::Value> {
    const COPY: &str = "/var/log/inplace/journal.json";
    let root = partitions(disk).into_iter().find(|p| p.3 == "8304" || p.3 == "8300")?;
    let bytes = if debugfs(disk, root.1, "stats").contains("needs_recovery") {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        let o = Command::new("dd")
            .arg(format!("if={}", disk.display()))
            .arg(format!("of={}", tmp.path().display()))
            .args(["bs=1M", "iflag=skip_bytes,count_bytes", "conv=sparse,notrunc", "status=none"])
            .arg(format!("skip={}", root.1))
            .arg(format!("count={}", root.2))
            .output()
            .expect("dd (coreutils)");
        assert!(o.status.success(), "copying the root partition out of {}: {}", disk.display(), String::from_utf8_lossy(&o.stderr));
        // Exit status 1: the journal was replayed (the filesystem was changed).
        let o = Command::new("e2fsck").args(["-E", "journal_only", "-p"]).arg(tmp.path()).output().expect("e2fsck (e2fsprogs)");
        assert!(matches!(o.status.code(), Some(0 | 1)), "replaying the root's journal: {}", String::from_utf8_lossy(&o.stderr));
        read_file(tmp.path(), 0, COPY)?
    } else {
        read_file(disk, root.1, COPY)?
    };
    serde_json::from_slice(&bytes).ok()
}

/// Where the job on `disk` is: the journal's state (`planned`, `capturing`, …), from the store's
/// reserve while there is a store, else from the copy in the new OS; `None` when neither holds
/// a job.
pub fn job_state(disk: &Path) -> Option<String> {
    match journal(disk) {
        Some(j) => Some(j.state.name().to_string()),
        None => journal_copy(disk).and_then(|j| j["state"].as_str().map(str::to_string)),
    }
}

/// `inplace rollback --disk DISK --yes` on the host; panics when it fails. Returns what it said.
pub fn roll_back(disk: &Path) -> String {
    let o = Command::new(crate::inplace_bin()).args(["rollback", "--yes", "--disk"]).arg(disk).output().expect("running inplace rollback");
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "inplace rollback --disk {} failed:\n{text}", disk.display());
    text
}

/// sha256 of the pristine old machine's whole image (the cached disk every test copies), once
/// per test process.
pub fn old_machine_sha256() -> String {
    static SHA: OnceLock<String> = OnceLock::new();
    SHA.get_or_init(|| crate::sha256_file(&debian::old_machine().disk.path)).clone()
}

// ---- a migrated disk, checked whole ------------------------------------------------------------

/// Everything a finished job with `after = "delete"` must leave on `disk`, read with debugfs,
/// sgdisk and mtools: every migrated entry as the manifest says ([`check_migrated`]), the
/// restored NetworkManager connection, the store partition gone and the root partition and
/// filesystem grown to the disk's end, the restore report with 0 failed, the journal's copy at
/// `done`, the restore unit no longer enabled, the ESP's fallback loader. Returns what is
/// wrong; empty when all is well.
pub fn check_done(disk: &Path, manifest: &Manifest) -> Vec<String> {
    let mut bad = check_migrated(disk, manifest);
    let parts = partitions(disk);
    if parts.len() != 2 {
        bad.push(format!("the store partition is not gone: {parts:?}"));
    }
    let Some(root) = parts.iter().find(|p| p.3 == "8304" || p.3 == "8300").cloned() else {
        bad.push(format!("no Linux root partition: {parts:?}"));
        return bad;
    };
    let size = std::fs::metadata(disk).map(|m| m.len()).unwrap_or(0);
    if root.1 + root.2 < size - (2 << 20) {
        bad.push(format!("the root partition does not reach the disk's end: {parts:?}"));
    }
    let off = root.1;
    let stats = debugfs(disk, off, "stats");
    let count: u64 = stats.lines().find_map(|l| l.strip_prefix("Block count:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    if count * 4096 < root.2 - (4 << 20) {
        bad.push(format!("the root filesystem does not fill its partition: {count} blocks for {} bytes", root.2));
    }
    let nm = "etc/NetworkManager/system-connections/office.nmconnection";
    if read_file(disk, off, &format!("/{nm}")).map(|b| sha256(&b)) != manifest.entry(None, nm).sha256 {
        bad.push(format!("/{nm} is missing or differs"));
    }
    match read_file(disk, off, "/var/log/inplace/restore-report.txt").map(|b| String::from_utf8_lossy(&b).into_owned()) {
        Some(r) if r.contains("0 failed") => {}
        Some(r) => bad.push(format!("the restore report does not say 0 failed:\n{r}")),
        None => bad.push("no restore report in /var/log/inplace".into()),
    }
    match journal_copy(disk) {
        Some(j) if j["state"] == "done" => {}
        other => bad.push(format!("the journal's copy in the new OS is not at done: {other:?}")),
    }
    if stat(disk, off, b"/etc/systemd/system/multi-user.target.wants/inplace-restore.service").is_some() {
        bad.push("the restore unit is still enabled (multi-user.target.wants/inplace-restore.service)".into());
    }
    match parts.iter().find(|p| p.3 == "EF00") {
        Some(esp) => {
            let o = Command::new("mdir").args(["-b", "-i", &format!("{}@@{}", disk.display(), esp.1), "::/EFI/BOOT"]).output().expect("mdir (mtools)");
            if !String::from_utf8_lossy(&o.stdout).to_uppercase().contains("BOOTX64.EFI") {
                bad.push("the ESP has no EFI/BOOT/BOOTX64.EFI".into());
            }
        }
        None => bad.push(format!("no ESP: {parts:?}")),
    }
    bad
}

// ---- the PE straight from its kernel, with the job over HTTP ----------------------------------

/// The preset and the new OS's image served over HTTP on 127.0.0.1 (the guest reaches them
/// as 10.0.2.2 through QEMU's user network); the image is pinned by its sha256, so the PE
/// checks it chunk by chunk (staged into the store when there is room, else streamed).
pub struct Served {
    pub preset: crate::http_server::Server,
    pub image: crate::http_server::Server,
    pub dir: tempfile::TempDir,
}

impl Served {
    /// An unattended preset named `name` (with `after` as its store's fate) and the new OS's
    /// image, each on a server of its own.
    pub fn job(name: &str, after: &str) -> Served {
        let (image_file, digest) = new_os_image();
        let image = crate::http_server::Server::start(image_file);
        let url = format!("http://10.0.2.2:{}/new-os.inplace", image.port);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("preset.toml");
        std::fs::write(&p, preset(name, &url, &digest, after, "")).unwrap();
        Served { preset: crate::http_server::Server::start(p), image, dir }
    }

    /// The PE booted straight from its kernel and initramfs (BIOS, no boot loader) with the
    /// unattended action and this preset, the old machine's `disk` on virtio.
    pub fn pe(&self, disk: &Path) -> crate::qemu::Vm {
        let url = format!("http://10.0.2.2:{}/preset.toml", self.preset.port);
        crate::qemu::Vm::new(&format!("inplace.action=unattended inplace.preset={url}"))
            .with_user_net()
            .disk(disk, crate::qemu::Controller::VirtioBlk, 512, "OLDBOX-1")
    }
}

/// Boots the migrated `disk` on OVMF until the login prompt (a first-boot restore still to do
/// runs before getty), logs alice in with her old password, checks her groups, the restored
/// hostname and that the restore unit is no longer enabled, and powers off cleanly (so the new
/// OS's writes are on the disk). Returns the time from power-on to the login prompt.
pub fn boot_and_log_in(disk: &Path, manifest: &Manifest) -> std::time::Duration {
    boot_and_log_in_then(disk, manifest, || ())
}

/// [`boot_and_log_in`] with QEMU's user network (the host is 10.0.2.2), and `then` run once
/// alice is logged in, before the power-off (to wait for what the new OS sends).
pub fn boot_and_log_in_then(disk: &Path, manifest: &Manifest, then: impl FnOnce()) -> std::time::Duration {
    use std::time::Duration;
    let mut vm = crate::qemu::Vm::installed(disk, crate::qemu::Controller::VirtioBlk).with_user_net().start();
    let boot = vm.wait_for_login_prompt(Duration::from_secs(8 * 60)).unwrap();
    vm.login("alice", debian::ALICE_PASSWORD, Duration::from_secs(120)).unwrap();
    let id = vm.run("id", Duration::from_secs(60)).unwrap();
    let host = vm.run("hostname", Duration::from_secs(60)).unwrap();
    let unit = vm.run("systemctl is-enabled inplace-restore.service; true", Duration::from_secs(60)).unwrap();
    then();
    vm.poweroff(Duration::from_secs(120)).unwrap();
    assert!(id.output.contains("(sudo)") && id.output.contains("(audio)"), "id: {}", id.output);
    assert_eq!(host.output.trim(), manifest.hostname);
    assert!(!unit.output.contains("enabled") || unit.output.contains("disabled"), "the unit is still enabled: {}", unit.output);
    boot
}
