//! Real Debian 12 systems for end-to-end tests: disk images made from one cached mmdebstrap root
//! (`scripts/build-debian`: systemd, Debian's kernel, systemd-boot, initramfs-tools) with the real
//! tools — `sgdisk`, `mkfs.fat` + mtools, `mkfs.ext4 -d`, `mkntfs` + ntfs-3g — never a loop
//! mount or a host disk.
//!
//! - [`new_os_disk`]: the new OS (hostname `newbox`, no users, root locked): GPT, an ESP with
//!   systemd-boot as the removable-media loader and one loader entry (`root=UUID=` of the ext4
//!   root, which a block copy keeps whatever partition GUIDs an image tool gives), and an ext4
//!   root sized to its content plus some headroom.
//! - [`old_machine`]: the machine to migrate (hostname `oldbox`): users alice (1000, in `sudo`
//!   and `audio`) and bob (1234) with yescrypt passwords set by `chpasswd`, a NetworkManager
//!   keyfile, homes with files of every kind; GPT with an ESP and the ext4 root filling the disk
//!   (no unallocated space: the store must come from the root's free tail).
//! - [`old_machine_with_ntfs`]: the same plus an NTFS data partition holding `Users\Carol`.
//! - [`old_machine_with_big_sparse`]: the old machine whose alice also has a 2 GiB sparse file
//!   (a VM disk, say) holding 256 KiB of data at its start and 4 bytes at its end: its apparent
//!   size is half the disk.
//!
//! Each old machine comes with the [`Manifest`] a migration must reproduce, computed from the
//! source tree (lstat, sha256, xattrs, the ACL xattr) before `mkfs.ext4 -d` copied it, never with
//! inplace.
//!
//! Images are cached under `target/debian/disks/<name>-<key>/`, the key covering the base root
//! (whose directory name carries its recipe key) and the source of these builders; tests take a
//! fresh sparse copy with [`DebianDisk::copy_to`]. Building needs root (chroot, chown).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::fixtures::{mkfs_ext4_with, place, run, run_input, sparse, NtfsMount};
use crate::migrate_fixtures::{content, nonzero_runs, set_mtime, Content, GIB, MIB, T0};

/// alice's password on the old machine.
pub const ALICE_PASSWORD: &str = "Wonderland-1865";
/// bob's password on the old machine.
pub const BOB_PASSWORD: &str = "CanWeFixIt-1998";
/// The kernel command line of every loader entry, after `root=UUID=… ro`.
pub const CONSOLE_ARGS: &str = "console=ttyS0,115200 console=tty0";

/// The ESP of every disk: FAT32, 256 MiB.
const ESP_SIZE: u64 = 256 * MIB;

// ---- the base root ------------------------------------------------------------------------------

/// The cached Debian 12 base root directory (`scripts/build-debian`, built once: about two
/// minutes the first time, instant afterwards). Panics when the build fails.
pub fn base_root() -> PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| build_debian(&[])).clone()
}

/// A cached fresh bookworm chroot as a CI machine image has it (`scripts/build-debian
/// --machine-image VARIANT`): `plain`, or `backports-qemu-utils` (qemu-utils from
/// bookworm-backports installed, the backports source removed again).
pub fn machine_image_root(variant: &str) -> PathBuf {
    build_debian(&["--machine-image", variant])
}

fn build_debian(args: &[&str]) -> PathBuf {
    let script = crate::workspace().join("scripts/build-debian");
    let out = Command::new(&script)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    assert!(out.status.success(), "{} {args:?} failed ({}); see its output above", script.display(), out.status);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let root = PathBuf::from(stdout.lines().last().unwrap_or("").trim());
    assert!(root.join("etc/os-release").exists(), "scripts/build-debian printed no root: {stdout:?}");
    root
}

/// The kernel release of a root (its one directory under `usr/lib/modules`).
pub fn kernel_release(root: &Path) -> String {
    let dir = root.join("usr/lib/modules");
    let releases: Vec<String> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(releases.len(), 1, "expected one kernel in {}: {releases:?}", dir.display());
    releases.into_iter().next().unwrap()
}

// ---- disks ----------------------------------------------------------------------------------------

/// One partition of a [`DebianDisk`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionInfo {
    pub number: u32,
    /// Byte offset and length.
    pub start: u64,
    pub size: u64,
    /// GPT partition name.
    pub name: String,
    /// `vfat`, `ext4` or `ntfs`.
    pub fs: String,
    /// Filesystem UUID as `blkid` shows it (`XXXX-XXXX` for FAT, 16 hex digits for NTFS).
    pub fs_uuid: String,
    pub label: String,
}

/// A cached pristine disk image and what is on it. Never write to [`DebianDisk::path`]: take a
/// copy with [`DebianDisk::copy_to`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DebianDisk {
    pub name: String,
    #[serde(skip)]
    pub path: PathBuf,
    pub size: u64,
    pub partitions: Vec<PartitionInfo>,
    pub hostname: String,
    pub kernel_release: String,
    /// The loader entry's kernel command line.
    pub cmdline: String,
}

impl DebianDisk {
    /// A sparse (or reflinked) copy of the pristine image at `dir/<name>.img`, for a test to
    /// scribble on.
    pub fn copy_to(&self, dir: &Path) -> PathBuf {
        let dest = dir.join(format!("{}.img", self.name));
        let _ = fs::remove_file(&dest);
        run(Command::new("cp").args(["--sparse=always", "--reflink=auto"]).arg(&self.path).arg(&dest));
        dest
    }

    pub fn partition(&self, number: u32) -> &PartitionInfo {
        self.partitions.iter().find(|p| p.number == number).unwrap_or_else(|| panic!("{}: no partition {number}", self.name))
    }

    /// The ESP.
    pub fn esp(&self) -> &PartitionInfo {
        self.partitions.iter().find(|p| p.fs == "vfat").expect("an ESP")
    }

    /// The ext4 root.
    pub fn root(&self) -> &PartitionInfo {
        self.partitions.iter().find(|p| p.fs == "ext4").expect("an ext4 root")
    }

    /// Copies partition `number` out of `image` (this disk or a copy of it) into `out`, sparse,
    /// for `debugfs`, `mdir -i` or `ntfsls`.
    pub fn extract_partition(&self, image: &Path, number: u32, out: &Path) {
        let p = self.partition(number);
        extract(image, p.start, p.size, out);
    }
}

/// Copies `size` bytes at `start` of `image` into a new sparse file `out`, reading only the
/// image's data extents.
pub fn extract(image: &Path, start: u64, size: u64, out: &Path) {
    use rustix::fs::{seek, SeekFrom as RSeek};
    use std::os::unix::fs::FileExt;
    let _ = fs::remove_file(out);
    let src = File::open(image).unwrap_or_else(|e| panic!("opening {}: {e}", image.display()));
    let dst = File::create(out).unwrap_or_else(|e| panic!("creating {}: {e}", out.display()));
    dst.set_len(size).unwrap();
    let end = start + size;
    let mut buf = vec![0u8; MIB as usize];
    let mut pos = start;
    while pos < end {
        let Ok(data) = seek(&src, RSeek::Data(pos)) else { break };
        if data >= end {
            break;
        }
        let hole = seek(&src, RSeek::Hole(data)).unwrap_or(end).min(end);
        let mut at = data;
        while at < hole {
            let n = (hole - at).min(MIB) as usize;
            src.read_exact_at(&mut buf[..n], at).unwrap_or_else(|e| panic!("reading {} at {at}: {e}", image.display()));
            if buf[..n].iter().any(|b| *b != 0) {
                dst.write_all_at(&buf[..n], at - start).unwrap();
            }
            at += n as u64;
        }
        pos = hole;
    }
}

/// An old machine and what migrating it must give.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OldMachine {
    pub disk: DebianDisk,
    pub manifest: Manifest,
}

/// The new OS disk (cached): GPT, 1 = ESP (FAT32, 256 MiB, systemd-boot, kernel, initrd), 2 =
/// ext4 root (content plus headroom), hostname `newbox`, no users, root locked, empty
/// machine-id (a first boot makes one).
pub fn new_os_disk() -> DebianDisk {
    cached("new-os", |dir| {
        let d = build_new_os(dir);
        (d.clone(), d)
    })
    .0
}

/// The old machine (cached): 4 GiB GPT, 1 = ESP (256 MiB), 2 = ext4 root up to the last usable
/// sector (no unallocated space).
pub fn old_machine() -> OldMachine {
    let (disk, manifest) = cached("old-machine", |dir| build_old(dir, "old-machine", OldExtras::default()));
    OldMachine { disk, manifest }
}

/// The old machine with a data partition (cached): 4 GiB GPT, 1 = ESP, 2 = ext4 root (2.5 GiB),
/// 3 = NTFS `DATA` up to the last usable sector with a Windows-like `Users\Carol` profile.
pub fn old_machine_with_ntfs() -> OldMachine {
    let extras = OldExtras { ntfs: true, ..OldExtras::default() };
    let (disk, manifest) = cached("old-machine-ntfs", |dir| build_old(dir, "old-machine-ntfs", extras));
    OldMachine { disk, manifest }
}

/// Where alice's big sparse file is, in her home, on [`old_machine_with_big_sparse`].
pub const BIG_SPARSE: &str = "vm/big-sparse.img";
/// Its size: 2 GiB, of which the first 256 KiB (random, a boot area that does not compress) and
/// the last 4 bytes (`DATA`) are data.
pub const BIG_SPARSE_SIZE: u64 = 2 * GIB;

/// The old machine (cached) with [`BIG_SPARSE`] in alice's home: [`BIG_SPARSE_SIZE`] bytes of
/// which only the first 256 KiB and the last 4 bytes are written, so its filesystem stores
/// 65 blocks of it. Its head is what an estimate sampling the file's start would see.
pub fn old_machine_with_big_sparse() -> OldMachine {
    let extras = OldExtras { big_sparse: true, ..OldExtras::default() };
    let (disk, manifest) = cached("old-machine-big-sparse", |dir| build_old(dir, "old-machine-big-sparse", extras));
    OldMachine { disk, manifest }
}

/// What an old machine has besides the common content.
#[derive(Debug, Clone, Copy, Default)]
struct OldExtras {
    /// An NTFS data partition with Carol's profile.
    ntfs: bool,
    /// [`BIG_SPARSE`] in alice's home.
    big_sparse: bool,
}

// ---- the expected manifest -------------------------------------------------------------------------

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    File,
    Dir,
    Symlink,
}

/// One thing a migration must carry, as it is on the source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// The partition it lives on.
    pub partition: u32,
    /// The profile (`alice`, `Carol`); `None` for a setting outside the homes.
    pub user: Option<String>,
    /// Absolute path on the source filesystem, raw bytes (one name is not UTF-8).
    #[serde(with = "bytes_text")]
    pub source: Vec<u8>,
    /// Relative to the profile directory (settings: to the root).
    #[serde(with = "bytes_text")]
    pub path: Vec<u8>,
    pub kind: Kind,
    /// Files: data length; symlinks: target length; directories: 0.
    pub size: u64,
    /// sha256 of the whole data (files).
    pub sha256: Option<String>,
    /// Owner and group names on the source (NTFS: the profile's account, no group).
    pub owner: String,
    pub group: Option<String>,
    /// Permission bits (`0o7777`); `None` on NTFS.
    pub mode: Option<u32>,
    /// Whole seconds.
    pub mtime: i64,
    #[serde(with = "opt_bytes_text")]
    pub target: Option<Vec<u8>>,
    /// `user.*` extended attributes.
    pub xattrs: BTreeMap<String, Vec<u8>>,
    /// The extended POSIX access ACL in `getfacl` form with names (`user:bob:rw-`), all entries
    /// including `user::`, `group::`, `mask::` and `other::`; empty without one.
    pub acl: Vec<String>,
    /// A directory's default ACL, in the same form; empty without one.
    #[serde(default)]
    pub default_acl: Vec<String>,
    /// Names of one inode share a group (the source inode number).
    pub link_group: Option<u64>,
    /// A sparse file's non-zero runs `(offset, bytes)`; everything else reads as zeros.
    pub sparse_runs: Option<Vec<(u64, Vec<u8>)>>,
}

impl ManifestEntry {
    pub fn source_path(&self) -> &Path {
        Path::new(OsStr::from_bytes(&self.source))
    }

    pub fn rel_path(&self) -> &Path {
        Path::new(OsStr::from_bytes(&self.path))
    }

    /// The source path for messages (lossy).
    pub fn display(&self) -> String {
        String::from_utf8_lossy(&self.source).into_owned()
    }
}

/// Something on the source a migration must leave out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Excluded {
    pub partition: u32,
    /// Absolute source path; a directory stands for its subtree.
    #[serde(with = "bytes_text")]
    pub source: Vec<u8>,
    /// `excluded`: a built-in exclude rule matches it.
    pub reason: String,
}

/// An account of the old machine, as its passwd, shadow and group must show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// The GECOS field.
    pub gecos: String,
    pub home: String,
    pub shell: String,
    /// Supplementary groups.
    pub groups: Vec<String>,
    pub password: String,
}

/// Everything a migration of an old machine must reproduce, computed from the source tree.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Profile entries and settings, sorted by partition and source path.
    pub entries: Vec<ManifestEntry>,
    pub excluded: Vec<Excluded>,
    pub accounts: Vec<Account>,
    pub hostname: String,
}

impl Manifest {
    /// The entry at `path` (relative) of `user`'s profile (`None`: a setting).
    pub fn entry(&self, user: Option<&str>, path: &str) -> &ManifestEntry {
        self.entries
            .iter()
            .find(|e| e.user.as_deref() == user && e.path == path.as_bytes())
            .unwrap_or_else(|| panic!("the manifest has no entry {user:?} {path:?}"))
    }

    /// The entries of one profile.
    pub fn user_entries<'a>(&'a self, user: &'a str) -> impl Iterator<Item = &'a ManifestEntry> + 'a {
        self.entries.iter().filter(move |e| e.user.as_deref() == Some(user))
    }

    pub fn account(&self, name: &str) -> &Account {
        self.accounts.iter().find(|a| a.name == name).unwrap_or_else(|| panic!("no account {name} in the manifest"))
    }
}

/// Raw bytes as JSON text: UTF-8 as is, `\` doubled, every other byte as `\xNN`.
mod bytes_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn encode(bytes: &[u8]) -> String {
        let mut s = String::new();
        for chunk in bytes.utf8_chunks() {
            s.push_str(&chunk.valid().replace('\\', "\\\\"));
            for b in chunk.invalid() {
                s.push_str(&format!("\\x{b:02x}"));
            }
        }
        s
    }

    pub fn decode(s: &str) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        let mut rest = s;
        while let Some(i) = rest.find('\\') {
            out.extend_from_slice(&rest.as_bytes()[..i]);
            let tail = &rest[i + 1..];
            if let Some(t) = tail.strip_prefix('\\') {
                out.push(b'\\');
                rest = t;
            } else if tail.starts_with('x') && tail.len() >= 3 {
                out.push(u8::from_str_radix(&tail[1..3], 16).map_err(|e| format!("{s:?}: {e}"))?);
                rest = &tail[3..];
            } else {
                return Err(format!("{s:?}: bad escape"));
            }
        }
        out.extend_from_slice(rest.as_bytes());
        Ok(out)
    }

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        decode(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

mod opt_bytes_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_some(&super::bytes_text::encode(b)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<String>::deserialize(d)?.map(|s| super::bytes_text::decode(&s).map_err(serde::de::Error::custom)).transpose()
    }
}

// ---- the cache ----------------------------------------------------------------------------------------

/// The source of the builders: part of every cache key, so changing how a disk is made rebuilds it.
const BUILDER_SOURCES: &[&str] = &[include_str!("debian.rs"), include_str!("fixtures.rs"), include_str!("migrate_fixtures.rs")];

/// Returns the cached `(disk, extra)` named `name`, building it with `build(dir)` (which writes
/// `dir/disk.img`) under a lock the first time.
fn cached<T>(name: &str, build: impl FnOnce(&Path) -> (DebianDisk, T)) -> (DebianDisk, T)
where
    T: Serialize + serde::de::DeserializeOwned,
{
    use sha2::{Digest, Sha256};
    let base = base_root();
    let mut h = Sha256::new();
    h.update(base.to_string_lossy().as_bytes());
    for s in BUILDER_SOURCES {
        h.update((s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    }
    let key = format!("{:x}", h.finalize());
    let top = crate::workspace().join("target/debian/disks");
    fs::create_dir_all(&top).unwrap();
    let dir = top.join(format!("{name}-{}", &key[..16]));
    let lock = File::create(top.join(format!(".lock-{name}"))).expect("creating the fixture lock");
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).expect("locking the fixture cache");

    let meta = dir.join("fixture.json");
    if !meta.exists() {
        let tmp = top.join(format!("{name}-{}.tmp", &key[..16]));
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(&tmp).unwrap();
        let started = std::time::Instant::now();
        let built = build(&tmp);
        let json = serde_json::to_vec_pretty(&built).expect("serializing the fixture");
        fs::write(tmp.join("fixture.json"), json).unwrap();
        fs::rename(&tmp, &dir).unwrap_or_else(|e| panic!("moving {} into place: {e}", tmp.display()));
        eprintln!("debian fixture {name}: built in {:.1?} at {}", started.elapsed(), dir.display());
        // Older builds of this fixture are stale.
        for e in fs::read_dir(&top).unwrap().map_while(Result::ok) {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with(&format!("{name}-")) && e.path() != dir && n.len() == name.len() + 17 {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
    let (mut disk, extra): (DebianDisk, T) =
        serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", meta.display()));
    disk.path = dir.join("disk.img");
    assert!(disk.path.exists(), "{} is missing: remove {} to rebuild", disk.path.display(), dir.display());
    (disk, extra)
}

// ---- building -------------------------------------------------------------------------------------------

/// A UUID derived from `seed` (stable across builds, distinct per fixture).
fn uuid_for(seed: &str) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(seed.as_bytes());
    let mut b: [u8; 16] = h[..16].try_into().unwrap();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x: String = b.iter().map(|v| format!("{v:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &x[..8], &x[8..12], &x[12..16], &x[16..20], &x[20..])
}

/// A FAT volume id derived from `seed`.
fn volume_id_for(seed: &str) -> u32 {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(seed.as_bytes());
    u32::from_le_bytes(h[..4].try_into().unwrap())
}

fn fat_uuid(id: u32) -> String {
    format!("{:04X}-{:04X}", id >> 16, id & 0xffff)
}

/// A copy of the base root at `dest` (`cp -a`, holes kept).
fn copy_base(dest: &Path) {
    let _ = fs::remove_dir_all(dest);
    run(Command::new("cp").args(["-a", "--sparse=always"]).arg(base_root()).arg(dest));
}

/// Hostname, hosts, fstab (root and ESP by filesystem UUID), machine-id.
fn customize_system(root: &Path, hostname: &str, root_uuid: &str, esp_uuid: &str, machine_id: &str) {
    fs::write(root.join("etc/hostname"), format!("{hostname}\n")).unwrap();
    fs::write(root.join("etc/hosts"), format!("127.0.0.1\tlocalhost\n127.0.1.1\t{hostname}\n::1\t\tlocalhost ip6-localhost ip6-loopback\n"))
        .unwrap();
    fs::write(
        root.join("etc/fstab"),
        format!(
            "# <file system> <mount point> <type> <options> <dump> <pass>\n\
             UUID={root_uuid} / ext4 errors=remount-ro 0 1\n\
             UUID={esp_uuid} /boot/efi vfat umask=0077 0 1\n"
        ),
    )
    .unwrap();
    fs::create_dir_all(root.join("boot/efi")).unwrap();
    fs::write(root.join("etc/machine-id"), machine_id).unwrap();
}

/// The wired network by DHCP with systemd-networkd (part of Debian's systemd), as
/// `systemctl enable systemd-networkd` leaves it, so `network-online.target` means an address.
fn enable_dhcp(root: &Path) {
    let net = root.join("etc/systemd/network");
    fs::create_dir_all(&net).unwrap();
    fs::write(net.join("20-wired.network"), "[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n").unwrap();
    for (wants, unit) in [
        ("multi-user.target.wants", "systemd-networkd.service"),
        ("sockets.target.wants", "systemd-networkd.socket"),
        ("network-online.target.wants", "systemd-networkd-wait-online.service"),
    ] {
        let dir = root.join("etc/systemd/system").join(wants);
        fs::create_dir_all(&dir).unwrap();
        let _ = fs::remove_file(dir.join(unit));
        std::os::unix::fs::symlink(format!("/lib/systemd/system/{unit}"), dir.join(unit)).unwrap();
    }
}

/// A FAT32 ESP of [`ESP_SIZE`] with systemd-boot as `EFI/BOOT/BOOTX64.EFI` and
/// `EFI/systemd/systemd-bootx64.efi`, `loader/loader.conf` and one entry booting the root's
/// kernel and initrd with `root=UUID=<root_uuid>`.
fn make_esp(work: &Path, root: &Path, volume_id: u32, root_uuid: &str, title: &str) -> (PathBuf, String) {
    let img = work.join("esp.fat");
    sparse(&img, ESP_SIZE);
    run(Command::new("mkfs.fat").args(["-F", "32", "-n", "ESP", "-i", &format!("{volume_id:08X}")]).arg(&img));
    let krel = kernel_release(root);
    let cmdline = format!("root=UUID={root_uuid} ro {CONSOLE_ARGS}");
    let i = img.to_str().unwrap();
    run(Command::new("mmd").args(["-i", i, "::/EFI", "::/EFI/BOOT", "::/EFI/systemd", "::/loader", "::/loader/entries", "::/debian"]));
    let sdboot = root.join("usr/lib/systemd/boot/efi/systemd-bootx64.efi");
    let put = |src: &Path, dest: &str| run(Command::new("mcopy").args(["-i", i]).arg(src).arg(format!("::{dest}")));
    put(&sdboot, "/EFI/BOOT/BOOTX64.EFI");
    put(&sdboot, "/EFI/systemd/systemd-bootx64.efi");
    put(&root.join(format!("boot/vmlinuz-{krel}")), &format!("/debian/vmlinuz-{krel}"));
    put(&root.join(format!("boot/initrd.img-{krel}")), &format!("/debian/initrd.img-{krel}"));
    let loader = work.join("loader.conf");
    fs::write(&loader, "default debian.conf\ntimeout 0\neditor no\n").unwrap();
    put(&loader, "/loader/loader.conf");
    let entry = work.join("debian.conf");
    fs::write(
        &entry,
        format!("title {title}\nversion {krel}\nlinux /debian/vmlinuz-{krel}\ninitrd /debian/initrd.img-{krel}\noptions {cmdline}\n"),
    )
    .unwrap();
    put(&entry, "/loader/entries/debian.conf");
    (img, cmdline)
}

/// A sparse `disk` of `size` with a fresh GPT (`sgdisk -o`) and partitions `(first sector, last
/// sector, type code, name)`.
fn gpt(disk: &Path, size: u64, parts: &[(u64, u64, &str, &str)]) {
    sparse(disk, size);
    let mut cmd = Command::new("sgdisk");
    cmd.arg("-o");
    for (i, (first, last, code, name)) in parts.iter().enumerate() {
        let n = i + 1;
        cmd.arg(format!("-n{n}:{first}:{last}")).arg(format!("-t{n}:{code}")).arg(format!("-c{n}:{name}"));
    }
    run(cmd.arg(disk));
}

/// The last usable LBA of a GPT on a disk of `size` bytes (512-byte sectors, 128 entries).
pub fn last_usable_lba(size: u64) -> u64 {
    size / 512 - 34
}

fn blkid_uuid(img: &Path) -> String {
    run(Command::new("blkid").args(["-p", "-s", "UUID", "-o", "value"]).arg(img)).trim().to_string()
}

fn build_new_os(dir: &Path) -> DebianDisk {
    let work = dir.join("work");
    fs::create_dir_all(&work).unwrap();
    let root = work.join("root");
    copy_base(&root);
    let root_uuid = uuid_for("inplace new-os root");
    let esp_id = volume_id_for("inplace new-os esp");
    // A first boot: systemd makes the machine-id.
    customize_system(&root, "newbox", &root_uuid, &fat_uuid(esp_id), "");
    enable_dhcp(&root);
    let (esp, cmdline) = make_esp(&work, &root, esp_id, &root_uuid, "Debian GNU/Linux 12 (newbox)");
    // Content plus a quarter and 64 MiB for the journal, inode tables and first-boot writes.
    let used: u64 = run(Command::new("du").args(["-s", "-B1"]).arg(&root)).split_whitespace().next().unwrap().parse().unwrap();
    let root_size = (used + used / 4 + 64 * MIB).div_ceil(16 * MIB) * 16 * MIB;
    let fs_img = mkfs_ext4_with(&work, "root", root_size, "newroot", Some(&root), &["-U", &root_uuid]);
    let start2 = MIB + ESP_SIZE;
    let size = start2 + root_size + MIB;
    let disk = dir.join("disk.img");
    gpt(&disk, size, &[(MIB / 512, (MIB + ESP_SIZE) / 512 - 1, "ef00", "EFI System Partition"), (start2 / 512, (start2 + root_size) / 512 - 1, "8304", "newbox-root")]);
    place(&disk, MIB, &esp);
    place(&disk, start2, &fs_img);
    let krel = kernel_release(&root);
    let _ = fs::remove_dir_all(&work);
    DebianDisk {
        name: "new-os".into(),
        path: disk,
        size,
        partitions: vec![
            PartitionInfo { number: 1, start: MIB, size: ESP_SIZE, name: "EFI System Partition".into(), fs: "vfat".into(), fs_uuid: fat_uuid(esp_id), label: "ESP".into() },
            PartitionInfo { number: 2, start: start2, size: root_size, name: "newbox-root".into(), fs: "ext4".into(), fs_uuid: root_uuid, label: "newroot".into() },
        ],
        hostname: "newbox".into(),
        kernel_release: krel,
        cmdline,
    }
}

const OLD_DISK_SIZE: u64 = 4 * GIB;

fn build_old(dir: &Path, name: &str, extras: OldExtras) -> (DebianDisk, Manifest) {
    let with_ntfs = extras.ntfs;
    let work = dir.join("work");
    fs::create_dir_all(&work).unwrap();
    let root = work.join("root");
    copy_base(&root);
    let root_uuid = uuid_for(&format!("inplace {name} root"));
    let esp_id = volume_id_for(&format!("inplace {name} esp"));
    let machine_id: String = uuid_for(&format!("inplace {name} machine-id")).replace('-', "");
    customize_system(&root, "oldbox", &root_uuid, &fat_uuid(esp_id), &format!("{machine_id}\n"));

    // Accounts, made by the old system's own tools.
    let accounts = vec![
        Account {
            name: "alice".into(),
            uid: 1000,
            gid: 1000,
            gecos: "Alice Liddell,,,".into(),
            home: "/home/alice".into(),
            shell: "/bin/bash".into(),
            groups: vec!["audio".into(), "sudo".into()],
            password: ALICE_PASSWORD.into(),
        },
        Account {
            name: "bob".into(),
            uid: 1234,
            gid: 1234,
            gecos: "Bob Builder,,,".into(),
            home: "/home/bob".into(),
            shell: "/bin/bash".into(),
            groups: vec![],
            password: BOB_PASSWORD.into(),
        },
    ];
    let mut chpasswd = String::new();
    for a in &accounts {
        run(Command::new("chroot").arg(&root).args(["groupadd", "-g", &a.gid.to_string(), &a.name]));
        let mut cmd = Command::new("chroot");
        cmd.arg(&root).args(["useradd", "-m", "-u", &a.uid.to_string(), "-g", &a.name, "-c", &a.gecos, "-s", &a.shell]);
        if !a.groups.is_empty() {
            cmd.args(["-G", &a.groups.join(",")]);
        }
        run(cmd.arg(&a.name));
        chpasswd.push_str(&format!("{}:{}\n", a.name, a.password));
    }
    run_input(Command::new("chroot").arg(&root).arg("chpasswd"), &chpasswd);

    // Settings.
    let nm_dir = root.join("etc/NetworkManager/system-connections");
    fs::create_dir_all(&nm_dir).unwrap();
    fs::set_permissions(&nm_dir, fs::Permissions::from_mode(0o700)).unwrap();
    let nm = nm_dir.join("office.nmconnection");
    fs::write(
        &nm,
        "[connection]\nid=office\nuuid=8c1f3a52-7d4e-4b19-a0c6-2f5e9d8b1a73\ntype=ethernet\nautoconnect=true\n\n\
         [ethernet]\n\n[ipv4]\nmethod=manual\naddress1=192.168.40.17/24,192.168.40.1\ndns=192.168.40.1;\n\n\
         [ipv6]\nmethod=auto\n",
    )
    .unwrap();
    fs::set_permissions(&nm, fs::Permissions::from_mode(0o600)).unwrap();
    set_mtime(&nm, T0 - 86400 * 20);
    set_mtime(&root.join("etc/hostname"), T0 - 86400 * 30);

    // Homes.
    let mut excluded = Vec::new();
    populate_alice(&root, &mut excluded, extras.big_sparse);
    populate_bob(&root, &mut excluded);
    let excluded: Vec<Excluded> =
        excluded.into_iter().map(|p: String| Excluded { partition: 2, source: p.into_bytes(), reason: "excluded".into() }).collect();

    // The manifest, from the tree mkfs.ext4 -d is about to copy.
    let users = id_names(&root.join("etc/passwd"));
    let groups = id_names(&root.join("etc/group"));
    let mut entries = Vec::new();
    for a in &accounts {
        walk_profile(&root, &a.home, &a.name, 2, &users, &groups, &excluded, &mut entries);
    }
    for setting in ["etc/hostname", "etc/NetworkManager/system-connections/office.nmconnection"] {
        entries.push(entry_of(&root.join(setting), None, setting.as_bytes(), 2, &Owners::Ids(&users, &groups), None));
    }

    let (esp, cmdline) = make_esp(&work, &root, esp_id, &root_uuid, "Debian GNU/Linux 12 (oldbox)");
    let last = last_usable_lba(OLD_DISK_SIZE);
    let root_start = MIB + ESP_SIZE;
    let (root_last, ntfs_start) = if with_ntfs {
        let end = root_start + 2560 * MIB;
        (end / 512 - 1, Some(end))
    } else {
        (last, None)
    };
    let root_size = (root_last + 1) * 512 - root_start;
    let fs_img = mkfs_ext4_with(&work, "root", root_size, "oldroot", Some(&root), &["-U", &root_uuid]);
    let krel = kernel_release(&root);
    let disk = dir.join("disk.img");
    let mut parts = vec![
        (MIB / 512, (MIB + ESP_SIZE) / 512 - 1, "ef00", "EFI System Partition"),
        (root_start / 512, root_last, "8304", "debian-root"),
    ];
    let mut infos = vec![
        PartitionInfo { number: 1, start: MIB, size: ESP_SIZE, name: "EFI System Partition".into(), fs: "vfat".into(), fs_uuid: fat_uuid(esp_id), label: "ESP".into() },
        PartitionInfo { number: 2, start: root_start, size: root_size, name: "debian-root".into(), fs: "ext4".into(), fs_uuid: root_uuid, label: "oldroot".into() },
    ];
    let mut ntfs = None;
    if let Some(start) = ntfs_start {
        let size = (last + 1) * 512 - start;
        let (vol, carol, carol_excluded) = build_ntfs(&work, start, size);
        entries.extend(carol);
        let mut all = excluded.clone();
        all.extend(carol_excluded);
        parts.push((start / 512, last, "0700", "data"));
        infos.push(PartitionInfo { number: 3, start, size, name: "data".into(), fs: "ntfs".into(), fs_uuid: blkid_uuid(&vol), label: "DATA".into() });
        ntfs = Some((vol, start, all));
    }
    gpt(&disk, OLD_DISK_SIZE, &parts);
    place(&disk, MIB, &esp);
    place(&disk, root_start, &fs_img);
    let excluded = match ntfs {
        Some((vol, start, all)) => {
            place(&disk, start, &vol);
            all
        }
        None => excluded,
    };
    let _ = fs::remove_dir_all(&work);
    entries.sort_by(|a, b| (a.partition, &a.source).cmp(&(b.partition, &b.source)));
    let disk = DebianDisk {
        name: name.into(),
        path: disk,
        size: OLD_DISK_SIZE,
        partitions: infos,
        hostname: "oldbox".into(),
        kernel_release: krel,
        cmdline,
    };
    (disk, Manifest { entries, excluded, accounts, hostname: "oldbox".into() })
}

/// Writes files into a tree and remembers the times to set when it is complete (deepest first,
/// so writing children does not undo a directory's time). Paths are raw bytes.
struct Writer {
    root: PathBuf,
    owner: (u32, u32),
    times: Vec<(Vec<u8>, i64)>,
}

impl Writer {
    fn p(&self, rel: &[u8]) -> PathBuf {
        self.root.join(OsStr::from_bytes(rel))
    }

    fn chown(&self, rel: &[u8]) {
        let (u, g) = self.owner;
        std::os::unix::fs::lchown(self.p(rel), Some(u), Some(g)).unwrap_or_else(|e| panic!("chown {:?}: {e}", self.p(rel)));
    }

    fn dir(&mut self, rel: &str, mode: u32, mtime: i64) {
        let p = self.p(rel.as_bytes());
        fs::create_dir_all(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
        self.chown(rel.as_bytes());
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        self.times.push((rel.as_bytes().to_vec(), mtime));
    }

    fn file(&mut self, rel: impl AsRef<[u8]>, data: &[u8], mode: u32, mtime: i64) {
        let rel = rel.as_ref();
        let p = self.p(rel);
        fs::write(&p, data).unwrap_or_else(|e| panic!("writing {}: {e}", p.display()));
        self.chown(rel);
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        self.times.push((rel.to_vec(), mtime));
    }

    fn sparse_file(&mut self, rel: &str, size: u64, patches: &[(u64, &[u8])], mtime: i64) {
        use std::os::unix::fs::FileExt;
        let p = self.p(rel.as_bytes());
        let f = File::create(&p).unwrap();
        f.set_len(size).unwrap();
        for (at, data) in patches {
            f.write_all_at(data, *at).unwrap();
        }
        f.sync_all().unwrap();
        self.chown(rel.as_bytes());
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        self.times.push((rel.as_bytes().to_vec(), mtime));
    }

    fn symlink(&mut self, rel: &str, target: &str, mtime: i64) {
        std::os::unix::fs::symlink(target, self.p(rel.as_bytes())).unwrap();
        self.chown(rel.as_bytes());
        self.times.push((rel.as_bytes().to_vec(), mtime));
    }

    fn hardlink(&mut self, rel: &str, existing: &str) {
        fs::hard_link(self.p(existing.as_bytes()), self.p(rel.as_bytes())).unwrap();
    }

    fn xattr(&self, rel: &str, name: &str, value: &[u8]) {
        rustix::fs::lsetxattr(self.p(rel.as_bytes()).as_path(), name, value, rustix::fs::XattrFlags::empty())
            .unwrap_or_else(|e| panic!("setting {name} on {rel}: {e} (the build tree's filesystem needs user xattrs)"));
    }

    fn acl(&self, rel: &str, spec: &str) {
        run(Command::new("setfacl").args(["-m", spec]).arg(self.p(rel.as_bytes())));
    }

    fn default_acl(&self, rel: &str, spec: &str) {
        run(Command::new("setfacl").args(["-d", "-m", spec]).arg(self.p(rel.as_bytes())));
    }

    fn set_times(&mut self) {
        self.times.sort_by_key(|(rel, _)| std::cmp::Reverse(rel.iter().filter(|b| **b == b'/').count()));
        for (rel, t) in &self.times {
            set_mtime(&self.p(rel), *t);
        }
    }
}

/// alice's home: documents of every kind, about 6 MiB (and [`BIG_SPARSE`] with `big_sparse`).
fn populate_alice(root: &Path, excluded: &mut Vec<String>, big_sparse: bool) {
    let mut w = Writer { root: root.join("home/alice"), owner: (1000, 1000), times: Vec::new() };
    let day = 86400;
    w.dir("Documents", 0o755, T0 - 2 * day);
    w.file("Documents/notes.txt", &content("alice notes", 60_000, Content::Text), 0o644, T0 - 3600);
    w.file("Documents/report.txt", b"quarterly report: one inode, two names\n", 0o644, T0 - 5 * day);
    w.hardlink("Documents/report (hard link).txt", "Documents/report.txt");
    w.file("Documents/private.txt", b"for alice only\n", 0o600, T0 - 6 * day);
    w.file("Documents/empty.txt", b"", 0o644, T0 - 7 * day);
    w.file("Documents/tagged.txt", b"a file with extended attributes\n", 0o644, T0 - 8 * day);
    w.xattr("Documents/tagged.txt", "user.xdg.comment", b"quarterly figures, checked twice");
    w.xattr("Documents/tagged.txt", "user.inplace.binary", &[0, 1, 2, 0xfe, 0xff]);
    w.file("Documents/shared-with-bob.txt", b"bob may edit this\n", 0o664, T0 - 9 * day);
    w.acl("Documents/shared-with-bob.txt", "u:1234:rw-");
    w.dir("Documents/Übersicht ✓", 0o755, T0 - 10 * day);
    w.file("Documents/Übersicht ✓/Résumé — 2024.txt", "Alice Liddell — résumé\n".as_bytes(), 0o644, T0 - 10 * day);
    w.file("Documents/Übersicht ✓/日本語のメモ.txt", "四半期報告\n".as_bytes(), 0o644, T0 - 11 * day);
    // A Latin-1 name: not valid UTF-8.
    w.file(b"Documents/na\xefve-latin1.txt".as_slice(), b"written by an old Latin-1 system\n", 0o644, T0 - 400 * day);
    w.dir("Documents/projects", 0o755, T0 - 20 * day);
    w.dir("Documents/projects/alpha", 0o755, T0 - 20 * day);
    w.dir("Documents/projects/alpha/src", 0o755, T0 - 21 * day);
    w.file("Documents/projects/alpha/src/main.rs", b"fn main() {\n    println!(\"alpha\");\n}\n", 0o644, T0 - 21 * day);
    w.file("Documents/projects/alpha/README.md", &content("alpha readme", 4_000, Content::Text), 0o644, T0 - 22 * day);
    w.dir("Pictures", 0o755, T0 - 30 * day);
    w.file("Pictures/holiday.jpg", &content("holiday.jpg", 3 * MIB as usize + 4321, Content::Random), 0o644, T0 - 30 * day);
    w.dir("Music", 0o755, T0 - 40 * day);
    w.file("Music/song.ogg", &content("song.ogg", 1_500_000, Content::Random), 0o644, T0 - 40 * day);
    w.dir("bin", 0o755, T0 - 50 * day);
    w.file("bin/backup.sh", b"#!/bin/sh\nset -e\ntar -C \"$HOME\" -cf /tmp/backup.tar Documents\n", 0o755, T0 - 50 * day);
    w.symlink("notes-link", "Documents/notes.txt", T0 - 60 * day);
    w.dir("vm", 0o755, T0 - 70 * day);
    w.sparse_file("vm/disk.img", 64 * MIB, &[(0, b"SPARSE head"), (40 * MIB + 7, b"middle of the sparse file"), (64 * MIB - 4, b"END!")], T0 - 70 * day);
    if big_sparse {
        let head = content("big sparse head", 256 * 1024, Content::Random);
        w.sparse_file(BIG_SPARSE, BIG_SPARSE_SIZE, &[(0, &head), (BIG_SPARSE_SIZE - 4, b"DATA")], T0 - 71 * day);
    }
    // Excluded by the built-in rules.
    w.dir(".cache", 0o700, T0 - 10);
    w.dir(".cache/thumbnails", 0o700, T0 - 10);
    w.file(".cache/thumbnails/0a1b2c.png", &content("thumbnail", 40_000, Content::Random), 0o600, T0 - 10);
    w.file(".cache/recent.bin", &content("recent", 3_000, Content::Random), 0o600, T0 - 10);
    w.dir(".local", 0o755, T0 - 80 * day);
    w.dir(".local/share", 0o755, T0 - 80 * day);
    w.file(".local/share/recently-used.xbel", b"<?xml version=\"1.0\"?>\n<xbel/>\n", 0o600, T0 - 80 * day);
    w.dir(".local/share/Trash", 0o700, T0 - 81 * day);
    w.dir(".local/share/Trash/files", 0o700, T0 - 81 * day);
    w.file(".local/share/Trash/files/old draft.txt", b"thrown away\n", 0o644, T0 - 81 * day);
    w.dir(".ssh", 0o700, T0 - 90 * day);
    w.file(".ssh/authorized_keys", b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFixture bob@laptop\n", 0o600, T0 - 90 * day);
    // Set last, so nothing written above inherits it: a default ACL (bob may read what is made
    // in projects/ from now on) and an attribute on the directory itself.
    w.default_acl("Documents/projects", "u:1234:r-x");
    w.xattr("Documents/projects", "user.xdg.origin.url", b"https://example.com/projects");
    w.times.push((Vec::new(), T0 - 60));
    w.set_times();
    excluded.extend(["/home/alice/.cache".to_string(), "/home/alice/.local/share/Trash".to_string()]);
}

/// bob's home: a few files, about 1 MiB.
fn populate_bob(root: &Path, excluded: &mut Vec<String>) {
    let mut w = Writer { root: root.join("home/bob"), owner: (1234, 1234), times: Vec::new() };
    let day = 86400;
    w.dir("Documents", 0o755, T0 - 2 * day);
    w.file("Documents/budget.ods", &content("budget.ods", 700_000, Content::Random), 0o644, T0 - 2 * day);
    w.file("Documents/plan.txt", &content("bob plan", 20_000, Content::Text), 0o640, T0 - 3 * day);
    w.dir(".config", 0o755, T0 - 5 * day);
    w.dir(".config/app", 0o755, T0 - 5 * day);
    w.file(".config/app/settings.ini", b"[ui]\ntheme=dark\n", 0o644, T0 - 5 * day);
    w.dir(".cache", 0o700, T0);
    w.dir(".cache/fontconfig", 0o755, T0);
    w.file(".cache/fontconfig/cache-1", &content("fontconfig", 5_000, Content::Random), 0o644, T0);
    w.times.push((Vec::new(), T0 - 70));
    w.set_times();
    excluded.push("/home/bob/.cache".to_string());
}

/// `id → name` from a passwd or group file.
fn id_names(path: &Path) -> BTreeMap<u32, String> {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some((f.get(2)?.parse().ok()?, f[0].to_string()))
        })
        .collect()
}

/// Every entry under `root/home` (the profile of `user`), except the excluded subtrees.
#[allow(clippy::too_many_arguments)]
fn walk_profile(
    root: &Path,
    home: &str,
    user: &str,
    partition: u32,
    users: &BTreeMap<u32, String>,
    groups: &BTreeMap<u32, String>,
    excluded: &[Excluded],
    out: &mut Vec<ManifestEntry>,
) {
    let base = root.join(home.trim_start_matches('/'));
    let mut stack: Vec<Vec<u8>> = vec![Vec::new()];
    while let Some(sub) = stack.pop() {
        let dir = base.join(OsStr::from_bytes(&sub));
        let mut names: Vec<Vec<u8>> =
            fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().as_bytes().to_vec()).collect();
        names.sort();
        for name in names {
            let rel = if sub.is_empty() { name } else { [sub.as_slice(), b"/", name.as_slice()].concat() };
            let source = [home.as_bytes(), b"/", rel.as_slice()].concat();
            if excluded.iter().any(|x| x.source == source) {
                continue;
            }
            let e = entry_of(&base.join(OsStr::from_bytes(&rel)), Some(user), &rel, partition, &Owners::Ids(users, groups), Some(&source));
            if e.kind == Kind::Dir {
                stack.push(rel.clone());
            }
            out.push(e);
        }
    }
}

/// How owners are named: by the source's passwd and group (`id → name`), or (NTFS) as the
/// profile's account with no group and no mode.
enum Owners<'a> {
    Ids(&'a BTreeMap<u32, String>, &'a BTreeMap<u32, String>),
    Profile(&'a str),
}

/// The manifest entry of `p` as it is on the source tree. `source` defaults to `/rel`.
fn entry_of(p: &Path, user: Option<&str>, rel: &[u8], partition: u32, owners: &Owners, source: Option<&[u8]>) -> ManifestEntry {
    let m = fs::symlink_metadata(p).unwrap_or_else(|e| panic!("lstat {}: {e}", p.display()));
    let ft = m.file_type();
    let kind = if ft.is_symlink() {
        Kind::Symlink
    } else if ft.is_dir() {
        Kind::Dir
    } else {
        assert!(ft.is_file(), "{}: unexpected file type", p.display());
        Kind::File
    };
    let target = (kind == Kind::Symlink).then(|| fs::read_link(p).unwrap().as_os_str().as_bytes().to_vec());
    let is_sparse = kind == Kind::File && m.blocks() * 512 < m.len() / 4;
    let name = |map: &BTreeMap<u32, String>, id: u32| map.get(&id).cloned().unwrap_or_else(|| panic!("{}: id {id} has no name", p.display()));
    let (owner, group, mode, (xattrs, acl, default_acl)) = match owners {
        Owners::Ids(users, groups) => (
            name(users, m.uid()),
            Some(name(groups, m.gid())),
            Some(m.mode() & 0o7777),
            if kind == Kind::Symlink { (BTreeMap::new(), Vec::new(), Vec::new()) } else { xattrs_of(p, users, groups) },
        ),
        Owners::Profile(account) => (account.to_string(), None, None, (BTreeMap::new(), Vec::new(), Vec::new())),
    };
    ManifestEntry {
        partition,
        user: user.map(str::to_string),
        source: source.map(<[u8]>::to_vec).unwrap_or_else(|| [b"/".as_slice(), rel].concat()),
        path: rel.to_vec(),
        kind,
        size: match kind {
            Kind::File => m.len(),
            Kind::Dir => 0,
            Kind::Symlink => target.as_ref().unwrap().len() as u64,
        },
        sha256: (kind == Kind::File).then(|| crate::sha256_file(p)),
        owner,
        group,
        mode,
        mtime: m.mtime(),
        target,
        xattrs,
        acl,
        default_acl,
        link_group: (kind == Kind::File && m.nlink() > 1).then_some(m.ino()),
        sparse_runs: if is_sparse { nonzero_runs(p, 16 * MIB) } else { None },
    }
}

/// The `user.*` xattrs of `p`, and its access and default ACLs decoded from
/// `system.posix_acl_access` and `system.posix_acl_default`.
#[allow(clippy::type_complexity)]
fn xattrs_of(p: &Path, users: &BTreeMap<u32, String>, groups: &BTreeMap<u32, String>) -> (BTreeMap<String, Vec<u8>>, Vec<String>, Vec<String>) {
    let mut list = vec![0u8; 4096];
    let n = rustix::fs::llistxattr(p, &mut list[..]).unwrap_or(0);
    let mut xattrs = BTreeMap::new();
    let mut acl = Vec::new();
    let mut default_acl = Vec::new();
    for name in list[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        let mut v = vec![0u8; 65536];
        let len = rustix::fs::lgetxattr(p, name.as_str(), &mut v[..]).unwrap_or_else(|e| panic!("{}: {name}: {e}", p.display()));
        v.truncate(len);
        if name.starts_with("user.") {
            xattrs.insert(name, v);
        } else if name == "system.posix_acl_access" {
            acl = decode_acl(&v, users, groups);
        } else if name == "system.posix_acl_default" {
            default_acl = decode_acl(&v, users, groups);
        }
    }
    (xattrs, acl, default_acl)
}

/// A POSIX ACL xattr (version 2: `{tag u16, perm u16, id u32}` entries) in `getfacl` form.
pub fn decode_acl(v: &[u8], users: &BTreeMap<u32, String>, groups: &BTreeMap<u32, String>) -> Vec<String> {
    assert!(v.len() >= 4 && u32::from_le_bytes(v[..4].try_into().unwrap()) == 2, "not a version 2 ACL: {v:?}");
    v[4..]
        .chunks(8)
        .map(|e| {
            let tag = u16::from_le_bytes([e[0], e[1]]);
            let perm = u16::from_le_bytes([e[2], e[3]]);
            let id = u32::from_le_bytes(e[4..8].try_into().unwrap());
            let rwx: String = [(4, 'r'), (2, 'w'), (1, 'x')].iter().map(|(b, c)| if perm & b != 0 { *c } else { '-' }).collect();
            let who = |m: &BTreeMap<u32, String>| m.get(&id).cloned().unwrap_or(id.to_string());
            match tag {
                0x01 => format!("user::{rwx}"),
                0x02 => format!("user:{}:{rwx}", who(users)),
                0x04 => format!("group::{rwx}"),
                0x08 => format!("group:{}:{rwx}", who(groups)),
                0x10 => format!("mask::{rwx}"),
                0x20 => format!("other::{rwx}"),
                t => panic!("unknown ACL tag {t:#x}"),
            }
        })
        .collect()
}

/// The NTFS data partition: mkntfs on a sparse file (its boot sector told where it starts),
/// `Users\Carol` written through an ntfs-3g mount, then walked on a fresh mount (ntfs-3g's
/// view: sha256 of the data, whole-second mtimes). Returns the volume, Carol's entries and
/// what the Windows rules exclude.
fn build_ntfs(work: &Path, start: u64, size: u64) -> (PathBuf, Vec<ManifestEntry>, Vec<Excluded>) {
    let vol = work.join("data.ntfs");
    sparse(&vol, size);
    run(Command::new("mkntfs").args(["-F", "-Q", "-L", "DATA", "-p", &(start / 512).to_string()]).arg(&vol));
    let mnt = work.join("data.mnt");
    fs::create_dir_all(&mnt).unwrap();
    let m = NtfsMount::mount(&vol, &mnt);
    let c = "Users/Carol";
    let day = 86400;
    let mut times: Vec<(String, i64)> = Vec::new();
    let mut w = |rel: &str, data: Option<&[u8]>, mtime: i64| {
        let p = mnt.join(rel);
        match data {
            Some(d) => {
                fs::create_dir_all(p.parent().unwrap()).unwrap();
                fs::write(&p, d).unwrap_or_else(|e| panic!("writing {}: {e}", p.display()));
            }
            None => fs::create_dir_all(&p).unwrap(),
        }
        times.push((rel.to_string(), mtime));
    };
    w(c, None, T0 - 100);
    w(&format!("{c}/NTUSER.DAT"), Some(&content("carol ntuser", 128 * 1024, Content::Random)), T0 - 200);
    w(&format!("{c}/Desktop"), None, T0 - day);
    w(&format!("{c}/Desktop/todo.txt"), Some(b"call the bank\r\nrenew passport\r\n"), T0 - day);
    w(&format!("{c}/Desktop/Example.url"), Some(b"[InternetShortcut]\r\nURL=https://example.com/\r\n"), T0 - day);
    w(&format!("{c}/Documents"), None, T0 - 2 * day);
    w(&format!("{c}/Documents/Bericht 2024.docx"), Some(&content("bericht", 200_000, Content::Random)), T0 - 2 * day);
    w(&format!("{c}/Documents/notes.txt"), Some(&content("carol notes", 30_000, Content::Text)), T0 - 3 * day);
    w(&format!("{c}/Documents/報告書.txt"), Some("四半期報告\r\n".as_bytes()), T0 - 4 * day);
    w(&format!("{c}/Documents/empty.txt"), Some(b""), T0 - 5 * day);
    w(&format!("{c}/Pictures"), None, T0 - 10 * day);
    w(&format!("{c}/Pictures/Urlaub 🏖.jpg"), Some(&content("urlaub", MIB as usize, Content::Random)), T0 - 10 * day);
    w(&format!("{c}/Pictures/Screenshots"), None, T0 - 11 * day);
    w(&format!("{c}/Pictures/Screenshots/shot 1.png"), Some(&content("shot", 90_000, Content::Random)), T0 - 11 * day);
    w(&format!("{c}/AppData"), None, T0 - 14 * day);
    w(&format!("{c}/AppData/Local"), None, T0 - 15 * day);
    w(&format!("{c}/AppData/Local/Temp"), None, T0);
    w(&format!("{c}/AppData/Local/Temp/junk.dat"), Some(&content("junk", 70_000, Content::Random)), T0);
    w(&format!("{c}/AppData/Local/Temp/~DF1234.tmp"), Some(b"junk"), T0);
    times.sort_by_key(|(rel, _)| std::cmp::Reverse(rel.matches('/').count()));
    for (rel, t) in &times {
        set_mtime(&mnt.join(rel), *t);
    }
    m.unmount();

    // Walk a fresh mount. Windows rules: the known folders and NTUSER.DAT; AppData\Local is not
    // taken, and its Temp is excluded by name.
    let m = NtfsMount::mount(&vol, &mnt);
    let mut entries = Vec::new();
    let mut stack = vec![String::new()];
    while let Some(sub) = stack.pop() {
        let dir = mnt.join(c).join(&sub);
        let mut names: Vec<String> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        for name in names {
            let rel = if sub.is_empty() { name } else { format!("{sub}/{name}") };
            if rel == "AppData" || rel.starts_with("AppData/") {
                continue;
            }
            let p = mnt.join(c).join(&rel);
            let e = entry_of(&p, Some("Carol"), rel.as_bytes(), 3, &Owners::Profile("Carol"), Some(format!("/{c}/{rel}").as_bytes()));
            if e.kind == Kind::Dir {
                stack.push(rel.clone());
            }
            entries.push(e);
        }
    }
    m.unmount();
    let excluded = vec![Excluded { partition: 3, source: format!("/{c}/AppData/Local/Temp").into_bytes(), reason: "excluded".into() }];
    (vol, entries, excluded)
}
