//! Fixtures for the migration tests (capture → store → restore): an "old machine" disk with a
//! Linux root or a Windows `C:`, the manifest a capture of it must produce, a target root to
//! restore into, and store volumes.
//!
//! The expected manifest is computed from the source side with the real tools and the kernel,
//! never with inplace: the Linux tree is walked with `lstat` before `mkfs.ext4 -d` copies it
//! (which keeps modes, owners, whole-second mtimes, hard links and holes — checked with
//! `debugfs`), and the Windows tree is walked through a fresh ntfs-3g mount after it was
//! written (so the sha256 is of the decompressed data and the mtime is what ntfs-3g reports).
//! What rules exclude is declared where the fixture puts it ([`Fate`]); everything else under a
//! captured profile is expected in the store, so the manifest is the *full* list.
//!
//! Every builder writes a fresh sparse image into the given directory; nothing is cached.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

use crate::fixtures::{mkfs_ext4, mkfs_fat, place, run, sparse, NtfsMount};
use crate::inplace_bin;

pub const MIB: u64 = 1 << 20;
pub const GIB: u64 = 1 << 30;

/// One fixed point in time for "now" in the fixtures, so runs are comparable: 2024-03-01 12:00:00 UTC.
pub const T0: i64 = 1_709_294_400;

// ---- what a capture must produce ------------------------------------------------------------

/// What an entry is (kept apart from inplace's own `Kind`: the expectation must not come from
/// the code under test). Hard links are files that share a [`ExpectedEntry::link_group`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EKind {
    File,
    Dir,
    /// A symbolic link, or an NTFS junction.
    Symlink,
}

/// Why something on the old disk is not in the store, as the capture report must say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipKind {
    /// An exclude rule matched (report kind `excluded`).
    Excluded,
    /// The reader cannot read it (report kind `unreadable`).
    Unreadable,
    /// Readable but not carried: an alternate data stream, a device node (report kind
    /// `not-carried`).
    NotCarried,
}

impl SkipKind {
    /// The `kind` tag of the store's `Why` (kebab-case).
    pub fn tag(self) -> &'static str {
        match self {
            SkipKind::Excluded => "excluded",
            SkipKind::Unreadable => "unreadable",
            SkipKind::NotCarried => "not-carried",
        }
    }
}

/// One entry a capture must put into the store, as seen on the source.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpectedEntry {
    /// The absolute path on the old filesystem (`/home/alice/notes.md`,
    /// `/Users/Carol/Documents/report.txt`).
    pub source: String,
    /// The source account whose profile holds it; `None` for system entries (`etc/hostname`).
    pub user: Option<String>,
    /// Relative to the profile (user entries) or to the OS root (system entries).
    pub path: String,
    pub kind: EKind,
    /// Data length (files); 0 for directories; the target's length for symlinks.
    pub size: u64,
    /// sha256 of the data (files, except sparse ones: see `layout`).
    pub sha256: Option<String>,
    /// A sparse file's content: its non-zero runs `(offset, bytes)`; every other byte is zero.
    /// (Hashing 5 GiB of zeros costs seconds; comparing runs costs nothing.)
    pub layout: Option<Vec<(u64, Vec<u8>)>>,
    /// Permission bits (`0o7777` mask) on ext4. On NTFS `None`: the mode restore gives is the
    /// restore's documented choice, and the test supplies it.
    pub mode: Option<u32>,
    /// Owner and group by name on the old OS (NTFS: the profile's account, no group).
    pub owner: Option<String>,
    pub group: Option<String>,
    /// Whole seconds since the epoch, as the source reports it (ntfs-3g's `stat` on NTFS).
    pub mtime: i64,
    /// Symlink target as stored on the source: the raw ext4 link text, or the junction's print
    /// name (`C:\Users\Carol\Documents`).
    pub target: Option<String>,
    /// Names of one file share a group (the source inode number); `None` for single names.
    pub link_group: Option<u64>,
    /// Allocated bytes ≪ size on the source: must be restored sparse.
    pub sparse: bool,
    /// NTFS `FILE_ATTRIBUTE_*` bits (from ntfs-3g's `system.ntfs_attrib_be`).
    pub attributes: Option<u32>,
    /// NTFS named streams (name, size) the file has besides its data.
    pub streams: Vec<(String, u64)>,
}

/// An item the capture must leave out *and report* with the reason. `source` is the absolute
/// source path (a directory stands for its whole subtree); an alternate data stream is
/// `FILE:STREAM`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpectedSkip {
    pub source: String,
    pub kind: SkipKind,
}

/// Settings the restore applies to the new OS, as on the old one.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExpectedSettings {
    /// `/etc/hostname` content, trimmed.
    pub hostname: Option<String>,
    /// NetworkManager connections: file name and content.
    pub nm_connections: Vec<(String, Vec<u8>)>,
}

/// An old-machine disk and everything a capture of it must produce.
#[derive(Debug, Clone)]
pub struct MigrateFixture {
    pub name: &'static str,
    pub disk: PathBuf,
    /// The partition holding the OS (`--partition N`), with its byte extent.
    pub partition: u32,
    pub part_start: u64,
    pub part_size: u64,
    /// `ext4` or `ntfs`.
    pub fs: &'static str,
    /// Source accounts whose profiles are captured, as the old OS names them.
    pub users: Vec<String>,
    /// Every entry the default rules capture: profile entries and system entries.
    pub entries: Vec<ExpectedEntry>,
    /// Every item left out that the report must name with its reason.
    pub skipped: Vec<ExpectedSkip>,
    /// Source paths that must not be captured; the report may or may not name them (system
    /// accounts' homes, `/root`, `Windows\System32`, the Default profile).
    pub absent: Vec<String>,
    /// Entries only captured when an option asks for them (`/root` on Linux).
    pub optional: Vec<ExpectedEntry>,
    pub settings: ExpectedSettings,
}

impl MigrateFixture {
    pub fn disk_str(&self) -> &str {
        self.disk.to_str().expect("fixture paths are UTF-8")
    }

    pub fn part_str(&self) -> String {
        self.partition.to_string()
    }

    /// The profile entries of source user `user`.
    pub fn user_entries<'a>(&'a self, user: &str) -> impl Iterator<Item = &'a ExpectedEntry> + 'a {
        let user = user.to_string();
        self.entries.iter().filter(move |e| e.user.as_deref() == Some(user.as_str()))
    }

    /// The system entries (`user == None`), paths relative to the root.
    pub fn system_entries(&self) -> impl Iterator<Item = &ExpectedEntry> {
        self.entries.iter().filter(|e| e.user.is_none())
    }

    /// The entry at `path` of `user`'s profile.
    pub fn entry(&self, user: Option<&str>, path: &str) -> &ExpectedEntry {
        self.entries
            .iter()
            .find(|e| e.user.as_deref() == user && e.path == path)
            .unwrap_or_else(|| panic!("the fixture expects no entry {user:?} {path:?}"))
    }

    /// Regular files, each name once (a hard-linked file's names are all counted).
    pub fn file_count(&self) -> usize {
        self.entries.iter().filter(|e| e.kind == EKind::File).count()
    }

    /// Files with distinct data: hard links counted once.
    pub fn distinct_file_count(&self) -> usize {
        let groups: BTreeSet<u64> = self.entries.iter().filter_map(|e| e.link_group).collect();
        self.entries.iter().filter(|e| e.kind == EKind::File && e.link_group.is_none()).count() + groups.len()
    }

    /// Sum of file sizes, hard links counted once (logical sizes: a sparse file counts whole).
    pub fn distinct_file_bytes(&self) -> u64 {
        let mut seen = BTreeSet::new();
        self.entries
            .iter()
            .filter(|e| e.kind == EKind::File && e.link_group.is_none_or(|g| seen.insert(g)))
            .map(|e| e.size)
            .sum()
    }

    /// The number of entries of each kind; panics unless the fixture holds the special cases
    /// the tests rely on, so no test can pass on an empty expectation.
    pub fn assert_complete(&self) {
        let has = |pred: &dyn Fn(&ExpectedEntry) -> bool, what: &str| {
            assert!(self.entries.iter().any(pred), "fixture {}: no {what} in the expected manifest", self.name);
        };
        assert!(self.entries.len() >= 20, "fixture {}: only {} expected entries", self.name, self.entries.len());
        has(&|e| e.kind == EKind::Dir, "directory");
        has(&|e| e.kind == EKind::File && e.size == 0, "empty file");
        has(&|e| e.sparse && e.size > 4 * GIB, "sparse file over 4 GiB");
        has(&|e| !e.path.is_ascii(), "non-ASCII name");
        assert!(!self.skipped.is_empty() && !self.absent.is_empty(), "fixture {}: nothing excluded", self.name);
        if self.fs == "ext4" {
            has(&|e| e.link_group.is_some(), "hard link");
            has(&|e| e.kind == EKind::Symlink, "symlink");
            has(&|e| e.user.is_none(), "system entry");
            assert!(self.settings.hostname.is_some() && !self.settings.nm_connections.is_empty());
        } else {
            has(&|e| e.attributes.is_some_and(|a| a & 0x800 != 0), "NTFS-compressed file");
            has(&|e| !e.streams.is_empty(), "file with an alternate data stream");
            has(&|e| e.source.len() > 260, "path over 260 characters");
            assert!(self.optional.iter().any(|e| e.kind == EKind::Symlink), "fixture {}: no junction", self.name);
            assert!(self.skipped.iter().any(|s| s.kind == SkipKind::Unreadable), "fixture {}: nothing unreadable", self.name);
            assert!(self.skipped.iter().any(|s| s.kind == SkipKind::NotCarried), "fixture {}: no stream", self.name);
        }
    }
}

// ---- file content ----------------------------------------------------------------------------

/// How a generated file's bytes look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// Words and line breaks: compresses well.
    Text,
    /// Incompressible.
    Random,
}

/// `len` deterministic bytes for `seed` (a different seed gives different data).
pub fn content(seed: &str, len: usize, kind: Content) -> Vec<u8> {
    let mut s = seed.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3)) | 1;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let mut out = Vec::with_capacity(len);
    match kind {
        Content::Random => {
            while out.len() < len {
                out.extend_from_slice(&next().to_le_bytes());
            }
        }
        Content::Text => {
            const WORDS: &[&str] = &[
                "the", "migration", "store", "keeps", "every", "file", "of", "alice", "and", "bob", "report", "quarterly",
                "numbers", "were", "checked", "twice", "before", "lunch", "Überprüfung", "données", "καλημέρα", "данные",
            ];
            let mut col = 0;
            while out.len() < len {
                let w = WORDS[(next() % WORDS.len() as u64) as usize];
                out.extend_from_slice(w.as_bytes());
                col += w.len() + 1;
                if col > 72 {
                    out.push(b'\n');
                    col = 0;
                } else {
                    out.push(b' ');
                }
            }
        }
    }
    out.truncate(len);
    out
}

pub fn sha256_bytes(data: &[u8]) -> String {
    format!("{:x}", Sha256::digest(data))
}

/// The non-zero runs of a file, read through its data extents (`SEEK_DATA`/`SEEK_HOLE`), so a
/// sparse file costs what it allocates. `None` when more than `cap` bytes are allocated (then
/// it is not sparse, and reading it all is not worth it).
pub fn nonzero_runs(path: &Path, cap: u64) -> Option<Vec<(u64, Vec<u8>)>> {
    use rustix::fs::{seek, SeekFrom as RSeek};
    let f = File::open(path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    let m = f.metadata().unwrap();
    if m.blocks() * 512 > cap {
        return None;
    }
    let len = m.len();
    let mut runs: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut at = 0u64;
    let mut buf = vec![0u8; MIB as usize];
    while at < len {
        let Ok(data) = seek(&f, RSeek::Data(at)) else { break };
        let hole = seek(&f, RSeek::Hole(data)).unwrap_or(len).min(len);
        let mut pos = data;
        while pos < hole {
            let n = (hole - pos).min(MIB) as usize;
            f.read_exact_at(&mut buf[..n], pos).unwrap();
            for (i, b) in buf[..n].iter().enumerate() {
                if *b == 0 {
                    continue;
                }
                let off = pos + i as u64;
                match runs.last_mut() {
                    Some((start, bytes)) if *start + bytes.len() as u64 == off => bytes.push(*b),
                    _ => runs.push((off, vec![*b])),
                }
            }
            pos += n as u64;
        }
        at = hole;
    }
    Some(runs)
}

// ---- building a tree ---------------------------------------------------------------------------

/// What a fixture path is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Left out and reported with this reason (a directory: with everything under it).
    Skip(SkipKind),
    /// Left out because no include rule takes it; nothing needs to report it.
    Absent,
}

/// Writes files into a real directory (a host temp dir that `mkfs.ext4 -d` copies, or an
/// ntfs-3g mount) and remembers the times to set once the tree is complete.
struct Tree {
    root: PathBuf,
    /// (relative path, mtime): set bottom-up at the end, so writing children does not undo it.
    times: Vec<(String, i64)>,
    fates: BTreeMap<String, Fate>,
    /// Sparse files written, with their non-zero runs.
    layouts: BTreeMap<String, Vec<(u64, Vec<u8>)>>,
    /// Where the ext4 case sets owners (root can chown); NTFS ignores this.
    chown: bool,
}

impl Tree {
    fn new(root: &Path, chown: bool) -> Tree {
        fs::create_dir_all(root).unwrap_or_else(|e| panic!("creating {}: {e}", root.display()));
        Tree { root: root.to_path_buf(), times: Vec::new(), fates: BTreeMap::new(), layouts: BTreeMap::new(), chown }
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn own(&self, rel: &str, owner: Option<(u32, u32)>) {
        if let (true, Some((u, g))) = (self.chown, owner) {
            std::os::unix::fs::lchown(self.p(rel), Some(u), Some(g)).unwrap_or_else(|e| panic!("chown {rel}: {e}"));
        }
    }

    /// Sets the permission bits (after the owner: chown clears setuid/setgid).
    fn mode(&self, rel: &str, mode: u32) {
        if self.chown {
            fs::set_permissions(self.p(rel), fs::Permissions::from_mode(mode)).unwrap_or_else(|e| panic!("chmod {rel}: {e}"));
        }
    }

    fn dir(&mut self, rel: &str, mode: u32, owner: Option<(u32, u32)>, mtime: i64) {
        let p = self.p(rel);
        fs::create_dir_all(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
        self.own(rel, owner);
        self.mode(rel, mode);
        self.times.push((rel.to_string(), mtime));
    }

    fn file(&mut self, rel: &str, data: &[u8], mode: u32, owner: Option<(u32, u32)>, mtime: i64) {
        let p = self.p(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).unwrap_or_else(|e| panic!("mkdir {}: {e}", parent.display()));
        }
        fs::write(&p, data).unwrap_or_else(|e| panic!("writing {}: {e}", p.display()));
        self.own(rel, owner);
        self.mode(rel, mode);
        self.times.push((rel.to_string(), mtime));
    }

    /// A sparse file of `size` bytes with `patches` of data at their offsets.
    fn sparse_file(&mut self, rel: &str, size: u64, patches: &[(u64, &[u8])], owner: Option<(u32, u32)>, mtime: i64) {
        let p = self.p(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        let f = File::create(&p).unwrap_or_else(|e| panic!("creating {}: {e}", p.display()));
        f.set_len(size).unwrap_or_else(|e| panic!("sizing {}: {e}", p.display()));
        for (at, data) in patches {
            f.write_all_at(data, *at).unwrap_or_else(|e| panic!("writing {} at {at}: {e}", p.display()));
        }
        f.sync_all().unwrap();
        drop(f);
        self.layouts.insert(rel.to_string(), patches.iter().map(|(at, d)| (*at, d.to_vec())).collect());
        self.own(rel, owner);
        self.mode(rel, 0o644);
        self.times.push((rel.to_string(), mtime));
    }

    fn symlink(&mut self, rel: &str, target: &str, owner: Option<(u32, u32)>, mtime: i64) {
        let p = self.p(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, &p).unwrap_or_else(|e| panic!("ln -s {target} {}: {e}", p.display()));
        self.own(rel, owner);
        self.times.push((rel.to_string(), mtime));
    }

    fn hardlink(&mut self, rel: &str, existing: &str) {
        fs::hard_link(self.p(existing), self.p(rel)).unwrap_or_else(|e| panic!("ln {existing} {rel}: {e}"));
    }

    fn skip(&mut self, rel: &str, kind: SkipKind) {
        self.fates.insert(rel.to_string(), Fate::Skip(kind));
    }

    fn absent(&mut self, rel: &str) {
        self.fates.insert(rel.to_string(), Fate::Absent);
    }

    /// Sets every recorded mtime, deepest paths first, not following symlinks. An object whose
    /// time cannot be set (a junction on ntfs-3g) keeps what it has: the walk records that.
    fn set_times(&self) {
        let mut times = self.times.clone();
        times.sort_by_key(|(rel, _)| std::cmp::Reverse(rel.matches('/').count()));
        for (rel, t) in &times {
            set_mtime(&self.p(rel), *t);
        }
    }
}

/// Sets atime and mtime of `path` (not following a final symlink) to `secs`.
pub fn set_mtime(path: &Path, secs: i64) {
    use rustix::fs::{utimensat, AtFlags, Timespec, Timestamps, CWD};
    let ts = Timespec { tv_sec: secs, tv_nsec: 0 };
    let _ = utimensat(CWD, path, &Timestamps { last_access: ts, last_modification: ts }, AtFlags::SYMLINK_NOFOLLOW);
}

/// Reads ntfs-3g's `system.ntfs_attrib_be` (big-endian `FILE_ATTRIBUTE_*`) of `path`.
pub fn ntfs_attributes(path: &Path) -> Option<u32> {
    let mut buf = [0u8; 4];
    match rustix::fs::lgetxattr(path, "system.ntfs_attrib_be", &mut buf[..]) {
        Ok(4) => Some(u32::from_be_bytes(buf)),
        _ => None,
    }
}

/// The user xattrs of `path` (through ntfs-3g: its named data streams) with their sizes.
fn ntfs_streams(path: &Path) -> Vec<(String, u64)> {
    let mut list = vec![0u8; 4096];
    let Ok(n) = rustix::fs::llistxattr(path, &mut list[..]) else { return Vec::new() };
    list[..n]
        .split(|b| *b == 0)
        .filter_map(|name| std::str::from_utf8(name).ok())
        .filter_map(|name| name.strip_prefix("user."))
        .map(|stream| {
            let mut v = vec![0u8; 65536];
            let len = rustix::fs::lgetxattr(path, format!("user.{stream}").as_str(), &mut v[..]).unwrap_or(0);
            (stream.to_string(), len as u64)
        })
        .collect()
}

/// An NTFS mount-point reparse buffer (`IO_REPARSE_TAG_MOUNT_POINT`) for a junction to
/// `target` (`C:\Users\Carol\Documents`): substitute name `\??\<target>`, print name `<target>`.
pub fn junction_reparse_data(target: &str) -> Vec<u8> {
    let utf16 = |s: &str| s.encode_utf16().flat_map(u16::to_le_bytes).collect::<Vec<u8>>();
    let sub = utf16(&format!("\\??\\{target}"));
    let print = utf16(target);
    let mut body = Vec::new();
    for v in [0, sub.len(), sub.len() + 2, print.len()] {
        body.extend_from_slice(&(v as u16).to_le_bytes());
    }
    body.extend_from_slice(&sub);
    body.extend_from_slice(&[0, 0]);
    body.extend_from_slice(&print);
    body.extend_from_slice(&[0, 0]);
    let mut buf = Vec::new();
    buf.extend_from_slice(&0xA000_0003u32.to_le_bytes());
    buf.extend_from_slice(&(body.len() as u16).to_le_bytes());
    buf.extend_from_slice(&0u16.to_le_bytes());
    buf.extend_from_slice(&body);
    buf
}

/// Walks `root/profile` (a profile or system directory inside a built tree) and returns the
/// expected entries under it, leaving out what `fates` skips.
struct Walk<'a> {
    root: &'a Path,
    fates: &'a BTreeMap<String, Fate>,
    layouts: &'a BTreeMap<String, Vec<(u64, Vec<u8>)>>,
    users: &'a BTreeMap<u32, String>,
    groups: &'a BTreeMap<u32, String>,
    ntfs: bool,
    /// Junction print names by relative path (ntfs-3g shows them as absolute links into the
    /// mount point, which says nothing about the source).
    junctions: &'a BTreeMap<String, String>,
}

impl Walk<'_> {
    /// Entries under `base` (relative to the tree root), named relative to `base`; `user` is
    /// the profile's account; `system` names the OS-root-relative path instead.
    fn profile(&self, base: &str, user: Option<&str>, out: &mut Vec<ExpectedEntry>) {
        let mut stack = vec![String::new()];
        while let Some(sub) = stack.pop() {
            let dir = if sub.is_empty() { self.root.join(base) } else { self.root.join(base).join(&sub) };
            let mut names: Vec<_> = fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
                .map(|e| e.unwrap().file_name().into_string().expect("fixture names are UTF-8"))
                .collect();
            names.sort();
            for name in names {
                let rel = if sub.is_empty() { name.clone() } else { format!("{sub}/{name}") };
                let full_rel = format!("{base}/{rel}");
                if self.fates.contains_key(&full_rel) {
                    continue;
                }
                let e = self.entry(&full_rel, user, &rel);
                if e.kind == EKind::Dir {
                    stack.push(rel.clone());
                }
                out.push(e);
            }
        }
    }

    fn entry(&self, full_rel: &str, user: Option<&str>, rel: &str) -> ExpectedEntry {
        let p = self.root.join(full_rel);
        let m = fs::symlink_metadata(&p).unwrap_or_else(|e| panic!("lstat {}: {e}", p.display()));
        let ft = m.file_type();
        let kind = if ft.is_symlink() {
            EKind::Symlink
        } else if ft.is_dir() {
            EKind::Dir
        } else {
            assert!(ft.is_file(), "{}: unexpected file type", p.display());
            EKind::File
        };
        let target = match kind {
            EKind::Symlink => Some(match self.junctions.get(full_rel) {
                Some(t) => t.clone(),
                None => fs::read_link(&p).unwrap().into_os_string().into_string().unwrap(),
            }),
            _ => None,
        };
        let layout = self.layouts.get(full_rel).cloned();
        let sha256 = (kind == EKind::File && layout.is_none()).then(|| crate::sha256_file(&p));
        let size = match kind {
            EKind::File => m.len(),
            EKind::Dir => 0,
            EKind::Symlink => target.as_ref().unwrap().len() as u64,
        };
        let (mode, owner, group) = if self.ntfs {
            (None, user.map(str::to_string), None)
        } else {
            let name = |map: &BTreeMap<u32, String>, id: u32| {
                map.get(&id).cloned().unwrap_or_else(|| panic!("{}: id {id} has no name in the fixture", p.display()))
            };
            (Some(m.mode() & 0o7777), Some(name(self.users, m.uid())), Some(name(self.groups, m.gid())))
        };
        ExpectedEntry {
            source: format!("/{full_rel}"),
            user: user.map(str::to_string),
            path: rel.to_string(),
            kind,
            size,
            sha256,
            layout,
            mode,
            owner,
            group,
            mtime: m.mtime(),
            target,
            link_group: (kind == EKind::File && m.nlink() > 1).then_some(m.ino()),
            sparse: kind == EKind::File && m.len() > 64 * MIB && m.blocks() * 512 < m.len() / 16,
            attributes: if self.ntfs { ntfs_attributes(&p) } else { None },
            streams: if self.ntfs && kind == EKind::File { ntfs_streams(&p) } else { Vec::new() },
        }
    }
}

fn skips(fates: &BTreeMap<String, Fate>) -> Vec<ExpectedSkip> {
    fates
        .iter()
        .filter_map(|(rel, f)| match f {
            Fate::Skip(kind) => Some(ExpectedSkip { source: format!("/{rel}"), kind: *kind }),
            Fate::Absent => None,
        })
        .collect()
}

fn absents(fates: &BTreeMap<String, Fate>, more: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = fates.iter().filter(|(_, f)| **f == Fate::Absent).map(|(rel, _)| format!("/{rel}")).collect();
    v.extend(more.iter().map(|m| m.to_string()));
    v.sort();
    v
}

// ---- the Linux disk ------------------------------------------------------------------------------

const ALICE: (u32, u32) = (1000, 1000);
const BOB: (u32, u32) = (1001, 1001);
const ROOT: (u32, u32) = (0, 0);
const POSTGRES: (u32, u32) = (114, 120);
/// Group `users`.
const USERS_GID: u32 = 100;

/// The 5 GiB sparse file: its size and where its data is.
pub const LINUX_SPARSE_SIZE: u64 = 5 * GIB;

/// GPT, 1.4 GiB sparse: 1 = ESP (FAT, 32 MiB), 2 = Debian 12 root (ext4, 192 MiB, made by
/// `mkfs.ext4 -d`, never mounted), then 1.2 GiB unallocated (room for `inplace carve` to put
/// a store).
///
/// The root holds `/etc` (passwd with alice 1000, bob 1001, postgres 114 whose home
/// `/var/lib/postgresql` must not be captured; group; hostname `oldbox`; a NetworkManager
/// connection 0600; ssh host keys; os-release), `/home/alice` and `/home/bob` (varied modes,
/// owners and mtimes, a relative symlink, a dangling one, a directory
/// symlink, a hard link, an empty file, a 5 GiB sparse file with data in the middle and at
/// the end, 24 MiB of incompressible video, unicode and FAT-hostile names, a `.cache` that is
/// excluded) and `/root` (captured only when asked).
pub fn linux_disk(dir: &Path) -> MigrateFixture {
    let work = dir.join("linux_disk.work");
    let _ = fs::remove_dir_all(&work);
    let mut t = Tree::new(&work.join("tree"), true);

    // /etc
    t.dir("etc", 0o755, Some(ROOT), T0 - 86400);
    t.file(
        "etc/passwd",
        b"root:x:0:0:root:/root:/bin/bash\n\
          daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
          postgres:x:114:120:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash\n\
          alice:x:1000:1000:Alice Example,,,:/home/alice:/bin/bash\n\
          bob:x:1001:1001:Bob Example,,,:/home/bob:/bin/zsh\n\
          nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
        0o644,
        Some(ROOT),
        T0 - 86400,
    );
    t.file(
        "etc/group",
        b"root:x:0:\ndaemon:x:1:\nusers:x:100:alice,bob\npostgres:x:120:\nalice:x:1000:\nbob:x:1001:\nnogroup:x:65534:\n",
        0o644,
        Some(ROOT),
        T0 - 86400,
    );
    t.file("etc/hostname", b"oldbox\n", 0o644, Some(ROOT), T0 - 86400 * 30);
    t.file(
        "etc/os-release",
        b"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\n\
          VERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n",
        0o644,
        Some(ROOT),
        T0 - 86400 * 300,
    );
    let nm = b"[connection]\nid=home\nuuid=5d3b2c8e-1111-4a2b-9c3d-0123456789ab\ntype=wifi\n\n\
               [wifi]\nmode=infrastructure\nssid=HomeNet\n\n[wifi-security]\nkey-mgmt=wpa-psk\npsk=correct horse battery staple\n\n\
               [ipv4]\nmethod=auto\n"
        .to_vec();
    t.dir("etc/NetworkManager", 0o755, Some(ROOT), T0 - 86400 * 20);
    t.dir("etc/NetworkManager/system-connections", 0o700, Some(ROOT), T0 - 86400 * 20);
    t.file("etc/NetworkManager/system-connections/home.nmconnection", &nm, 0o600, Some(ROOT), T0 - 86400 * 20);
    t.dir("etc/ssh", 0o755, Some(ROOT), T0 - 86400 * 300);
    t.file(
        "etc/ssh/ssh_host_ed25519_key",
        b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\nfixture-host-key\n-----END OPENSSH PRIVATE KEY-----\n",
        0o600,
        Some(ROOT),
        T0 - 86400 * 300,
    );
    t.file("etc/ssh/ssh_host_ed25519_key.pub", b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFixtureHostKey root@oldbox\n", 0o644, Some(ROOT), T0 - 86400 * 300);

    // A system account with a home: never captured.
    t.dir("var", 0o755, Some(ROOT), T0);
    t.dir("var/lib", 0o755, Some(ROOT), T0);
    t.dir("var/lib/postgresql", 0o755, Some(POSTGRES), T0);
    t.file("var/lib/postgresql/.psql_history", b"select 1;\n", 0o600, Some(POSTGRES), T0);
    t.file("var/lib/postgresql/15/main/PG_VERSION", b"15\n", 0o600, Some(POSTGRES), T0);

    // /root: only with an option.
    t.dir("root", 0o700, Some(ROOT), T0 - 3600);
    t.file("root/admin-notes.txt", b"root's notes\n", 0o600, Some(ROOT), T0 - 7200);

    // alice
    t.dir("home", 0o755, Some(ROOT), T0 - 86400 * 300);
    let a = Some(ALICE);
    t.dir("home/alice", 0o750, a, T0 - 60);
    t.file("home/alice/.bashrc", b"# ~/.bashrc\nexport EDITOR=vim\nalias ll='ls -l'\n", 0o644, a, T0 - 86400 * 200);
    t.file("home/alice/.profile", b"# ~/.profile\n", 0o644, a, T0 - 86400 * 200);
    t.dir("home/alice/.ssh", 0o700, a, T0 - 86400 * 50);
    t.file("home/alice/.ssh/id_ed25519", b"-----BEGIN OPENSSH PRIVATE KEY-----\nalice\n-----END OPENSSH PRIVATE KEY-----\n", 0o600, a, T0 - 86400 * 50);
    t.file("home/alice/.ssh/id_ed25519.pub", b"ssh-ed25519 AAAAalice alice@oldbox\n", 0o644, a, T0 - 86400 * 50);
    t.file("home/alice/.ssh/authorized_keys", b"ssh-ed25519 AAAAbob bob@laptop\n", 0o600, a, T0 - 86400 * 49);
    t.dir("home/alice/bin", 0o755, a, T0 - 86400);
    t.file("home/alice/bin/run.sh", b"#!/bin/sh\necho run\n", 0o755, a, T0 - 86400);
    t.file("home/alice/bin/setgid-tool", b"#!/bin/sh\n", 0o2750, a, T0 - 86400);
    t.dir("home/alice/Документы", 0o755, a, T0 - 86400 * 3);
    t.file("home/alice/Документы/résumé ✓.txt", "Alice — résumé\n".as_bytes(), 0o644, a, T0 - 86400 * 3);
    t.file("home/alice/Документы/📷 holiday.jpg", &content("holiday.jpg", 700_000, Content::Random), 0o644, a, T0 - 86400 * 90);
    t.file("home/alice/notes.md", &content("alice notes", 200_000, Content::Text), 0o640, a, T0 - 120);
    t.file("home/alice/readonly.txt", b"do not edit\n", 0o444, a, T0 - 86400 * 1000);
    t.file("home/alice/1999.txt", b"party\n", 0o644, a, 946_684_799);
    t.file("home/alice/empty", b"", 0o644, a, T0 - 5000);
    t.file("home/alice/draft: v2?*.txt", b"a FAT-hostile name\n", 0o644, a, T0 - 5001);
    t.file("home/alice/back\\slash.txt", b"a backslash is a name character on Linux\n", 0o644, a, T0 - 5002);
    t.file("home/alice/group-shared.txt", b"for the users group\n", 0o664, Some((ALICE.0, USERS_GID)), T0 - 5003);
    t.file("home/alice/report.txt", b"quarterly report, one inode, two names\n", 0o644, a, T0 - 5004);
    t.dir("home/alice/Documents", 0o755, a, T0 - 5005);
    t.hardlink("home/alice/Documents/report (hard link).txt", "home/alice/report.txt");
    t.symlink("home/alice/resume-link", "Документы/résumé ✓.txt", a, T0 - 5006);
    t.symlink("home/alice/docs", "Документы", a, T0 - 5007);
    t.symlink("home/alice/dangling", "no/such/file", a, T0 - 5008);
    t.symlink("home/alice/hosts-link", "/etc/hostname", a, T0 - 5009);
    t.dir("home/alice/Music", 0o755, a, T0 - 86400 * 40);
    t.file("home/alice/Music/song.ogg", &content("song.ogg", 1_500_000, Content::Random), 0o644, a, T0 - 86400 * 40);
    t.dir("home/alice/Videos", 0o755, a, T0 - 86400 * 41);
    t.file("home/alice/Videos/clip.mp4", &content("clip.mp4", 24 * MIB as usize + 12345, Content::Random), 0o644, a, T0 - 86400 * 41);
    t.dir("home/alice/vm", 0o755, a, T0 - 86400 * 7);
    t.sparse_file(
        "home/alice/vm/disk.img",
        LINUX_SPARSE_SIZE,
        &[(2 * GIB + 3, b"MIDDLE of the sparse file"), (LINUX_SPARSE_SIZE - 4, b"END!")],
        a,
        T0 - 86400 * 7,
    );
    t.dir("home/alice/.local", 0o755, a, T0 - 86400 * 60);
    t.dir("home/alice/.local/share", 0o755, a, T0 - 86400 * 60);
    t.file("home/alice/.local/share/recently-used.xbel", b"<?xml version=\"1.0\"?>\n<xbel/>\n", 0o600, a, T0 - 86400 * 60);
    t.dir("home/alice/.cache", 0o700, a, T0 - 10);
    t.file("home/alice/.cache/thumbnails/large/0a1b2c.png", &content("thumb", 30_000, Content::Random), 0o600, a, T0 - 10);
    t.file("home/alice/.cache/pip/http/cache.bin", &content("pip", 3_000, Content::Random), 0o600, a, T0 - 10);
    t.skip("home/alice/.cache", SkipKind::Excluded);

    // bob
    let b = Some(BOB);
    t.dir("home/bob", 0o700, b, T0 - 70);
    t.file("home/bob/.zshrc", b"setopt autocd\n", 0o644, b, T0 - 86400 * 100);
    t.dir("home/bob/Documents", 0o755, b, T0 - 86400 * 2);
    t.file("home/bob/Documents/budget.ods", &content("budget.ods", 300_000, Content::Random), 0o644, b, T0 - 86400 * 2);
    t.file("home/bob/Documents/archive.tar", &content("archive.tar", 9 * MIB as usize, Content::Text), 0o644, b, T0 - 86400 * 2);
    t.file("home/bob/shared-from-alice.txt", b"alice put this here\n", 0o640, Some((ALICE.0, USERS_GID)), T0 - 86400);
    t.dir("home/bob/.config", 0o755, b, T0 - 86400 * 5);
    t.file("home/bob/.config/app/settings.ini", b"[ui]\ntheme=dark\n", 0o644, b, T0 - 86400 * 5);
    t.dir("home/bob/.config/app", 0o755, b, T0 - 86400 * 5);
    t.file("home/bob/.cache/fontconfig/cache-1", &content("fc", 5_000, Content::Random), 0o644, b, T0);
    t.dir("home/bob/.cache", 0o700, b, T0);
    t.skip("home/bob/.cache", SkipKind::Excluded);
    t.set_times();

    let users: BTreeMap<u32, String> =
        [(0, "root"), (1, "daemon"), (114, "postgres"), (1000, "alice"), (1001, "bob")].map(|(i, n)| (i, n.to_string())).into();
    let groups: BTreeMap<u32, String> =
        [(0, "root"), (100, "users"), (120, "postgres"), (1000, "alice"), (1001, "bob")].map(|(i, n)| (i, n.to_string())).into();
    let junctions = BTreeMap::new();
    let walk = Walk { root: &t.root, fates: &t.fates, layouts: &t.layouts, users: &users, groups: &groups, ntfs: false, junctions: &junctions };
    let mut entries = Vec::new();
    for u in ["alice", "bob"] {
        walk.profile(&format!("home/{u}"), Some(u), &mut entries);
    }
    for sys in ["etc/hostname", "etc/NetworkManager/system-connections/home.nmconnection"] {
        entries.push(walk.entry(sys, None, sys));
    }
    // Only with options: /root as the profile of "root" (`include_root`), the ssh host keys
    // as settings (`ssh_host_keys`).
    let mut optional = Vec::new();
    walk.profile("root", Some("root"), &mut optional);
    for sys in ["etc/ssh/ssh_host_ed25519_key", "etc/ssh/ssh_host_ed25519_key.pub"] {
        optional.push(walk.entry(sys, None, sys));
    }

    // The ext4 image, and a check that mkfs.ext4 -d copied what the expectation assumes.
    let root_size = 192 * MIB;
    let fs_img = mkfs_ext4(&work, "root", root_size, "rootfs", Some(&t.root));
    let stat = run(Command::new("debugfs").arg("-R").arg("stat /home/alice/vm/disk.img").arg(&fs_img));
    assert!(stat.contains("Size: 5368709120") && !stat.contains("Blockcount: 0"), "{stat}");
    let blocks: u64 = stat.split("Blockcount: ").nth(1).and_then(|s| s.split_whitespace().next()?.parse().ok()).unwrap();
    assert!(blocks * 512 < MIB, "mkfs.ext4 -d did not keep the holes: {stat}");
    let stat = run(Command::new("debugfs").arg("-R").arg("stat \"/home/alice/Documents/report (hard link).txt\"").arg(&fs_img));
    assert!(stat.contains("Links: 2"), "{stat}");

    let disk = linux_gpt(dir, &work, "linux_disk.img", &fs_img, root_size, 1456 * MIB);
    let absent = absents(&t.fates, &["/etc/ssh", "/root", "/var/lib/postgresql"]);
    let fx = MigrateFixture {
        name: "linux_disk",
        disk,
        partition: 2,
        part_start: 33 * MIB,
        part_size: root_size,
        fs: "ext4",
        users: vec!["alice".into(), "bob".into()],
        entries,
        skipped: skips(&t.fates),
        absent,
        optional,
        settings: ExpectedSettings { hostname: Some("oldbox".into()), nm_connections: vec![("home.nmconnection".into(), nm)] },
    };
    let _ = fs::remove_dir_all(&work);
    fx.assert_complete();
    fx
}

/// GPT: 1 = ESP (FAT, 32 MiB), 2 = `root` (an ext4 image, at 33 MiB), the rest unallocated.
fn linux_gpt(dir: &Path, work: &Path, name: &str, root: &Path, root_size: u64, size: u64) -> PathBuf {
    let disk = dir.join(name);
    sparse(&disk, size);
    run(Command::new("sgdisk")
        .args(["-o", "-n1:2048:+32M", "-t1:ef00", "-c1:EFI System"])
        .arg(format!("-n2:{}:+{}M", 33 * MIB / 512, root_size / MIB))
        .args(["-t2:8300", "-c2:debian-root"])
        .arg(&disk));
    let esp = mkfs_fat(work, "esp", 32 * MIB, "ESP", &[], true);
    place(&disk, MIB, &esp);
    place(&disk, 33 * MIB, root);
    disk
}

/// Edge cases kept apart from [`linux_disk`] so one of them cannot hide the rest: modification
/// times ext4 holds that are easy to get wrong (before 1970: a negative 32-bit field; the
/// epoch itself; past 2038 and in 2100: the extra epoch bits of a 256-byte inode) and a file
/// name that looks like a Windows drive prefix (`c:drive-like.txt`, an ordinary Linux name).
/// GPT, 256 MiB: ESP and an ext4 root with one user, `dave`.
pub fn linux_edge_cases_disk(dir: &Path) -> MigrateFixture {
    let work = dir.join("edge_cases.work");
    let _ = fs::remove_dir_all(&work);
    let mut t = Tree::new(&work.join("tree"), true);
    t.dir("etc", 0o755, Some(ROOT), T0);
    t.file("etc/passwd", b"root:x:0:0:root:/root:/bin/bash\ndave:x:1000:1000:Dave:/home/dave:/bin/bash\n", 0o644, Some(ROOT), T0);
    t.file("etc/group", b"root:x:0:\ndave:x:1000:\n", 0o644, Some(ROOT), T0);
    t.file("etc/os-release", b"NAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n", 0o644, Some(ROOT), T0);
    t.dir("home", 0o755, Some(ROOT), T0);
    let d = Some((1000, 1000));
    t.dir("home/dave", 0o755, d, T0);
    t.file("home/dave/moon-landing.txt", b"before the epoch\n", 0o644, d, -14_182_940);
    t.file("home/dave/epoch.txt", b"the epoch itself\n", 0o644, d, 0);
    t.file("home/dave/y2038.txt", b"one second past 2^31\n", 0o644, d, 2_147_483_648);
    t.file("home/dave/2100.txt", b"next century\n", 0o644, d, 4_102_444_800);
    t.file("home/dave/normal.txt", b"an ordinary file\n", 0o644, d, T0);
    t.file("home/dave/c:drive-like.txt", b"a colon after one letter\n", 0o644, d, T0);
    t.set_times();
    let users: BTreeMap<u32, String> = [(0, "root".to_string()), (1000, "dave".to_string())].into();
    let walk = Walk { root: &t.root, fates: &t.fates, layouts: &t.layouts, users: &users, groups: &users, ntfs: false, junctions: &BTreeMap::new() };
    let mut entries = Vec::new();
    walk.profile("home/dave", Some("dave"), &mut entries);
    let root_size = 64 * MIB;
    let fs_img = mkfs_ext4(&work, "root", root_size, "oddroot", Some(&t.root));
    // mkfs.ext4 -d (e2fsprogs 1.47.0) drops the extra epoch bits, so a time past 2038 comes
    // out before 1970; debugfs sets them.
    for e in entries.iter().filter(|e| e.mtime >= 1 << 31) {
        run(Command::new("debugfs").arg("-w").arg("-R").arg(format!("sif {} mtime @{}", e.source, e.mtime)).arg(&fs_img));
    }
    let stat = run(Command::new("debugfs").arg("-R").arg("stat /home/dave/moon-landing.txt").arg(&fs_img));
    assert!(stat.contains("mtime: 0xff2795e4") && stat.contains("1969"), "mkfs.ext4 -d did not keep the 1969 mtime:\n{stat}");
    let stat = run(Command::new("debugfs").arg("-R").arg("stat /home/dave/2100.txt").arg(&fs_img));
    assert!(stat.contains("mtime: 0xf4865700:00000001"), "debugfs did not set the 2100 mtime:\n{stat}");
    let disk = linux_gpt(dir, &work, "edge_cases.img", &fs_img, root_size, 256 * MIB);
    let _ = fs::remove_dir_all(&work);
    assert_eq!(entries.len(), 6);
    MigrateFixture {
        name: "linux_edge_cases",
        disk,
        partition: 2,
        part_start: 33 * MIB,
        part_size: root_size,
        fs: "ext4",
        users: vec!["dave".into()],
        entries,
        skipped: Vec::new(),
        absent: Vec::new(),
        optional: Vec::new(),
        settings: ExpectedSettings::default(),
    }
}

/// What [`linux_scale_disk`] puts in `/home/erin`.
#[derive(Debug, Clone, Copy)]
pub enum Scale {
    /// This many small files (1 B to 16 KiB, distinct data), 1,000 to a directory.
    SmallFiles(usize),
    /// One directory holding this many subdirectories, one small file in every tenth.
    WideDirectory(usize),
}

/// GPT: ESP and an ext4 root with one user, `erin`, whose home has the many entries of
/// `scale`: what a photo library or a `node_modules` looks like to a reader. The root is
/// filled through a kernel mount of the image (`mkfs.ext4 -d` adds entries to a directory in
/// time linear in its size, so 65,000 of them take minutes), then unmounted: the reader under
/// test sees a filesystem the kernel wrote, as on a real machine.
pub fn linux_scale_disk(dir: &Path, scale: Scale) -> MigrateFixture {
    let work = dir.join("scale.work");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).unwrap();
    let (files, dirs) = match scale {
        Scale::SmallFiles(n) => (n as u64, n as u64 / 1000 + 1),
        Scale::WideDirectory(n) => (n as u64 / 10 + 1, n as u64),
    };
    // 4 KiB blocks: a block per small file and per directory, an inode each, and room.
    let root_size = ((files + dirs) * 12 * 1024 / MIB + 96) * MIB;
    let fs_img = crate::fixtures::mkfs_ext4_with(&work, "root", root_size, "scaleroot", None, &["-i", "8192"]);
    let mnt = work.join("mnt");
    fs::create_dir_all(&mnt).unwrap();
    let entries = {
        let _mounted = LoopMount::mount(&fs_img, &mnt);
        let mut t = Tree::new(&mnt, true);
        t.dir("etc", 0o755, Some(ROOT), T0);
        t.file("etc/passwd", b"root:x:0:0:root:/root:/bin/bash\nerin:x:1000:1000:Erin:/home/erin:/bin/bash\n", 0o644, Some(ROOT), T0);
        t.file("etc/group", b"root:x:0:\nerin:x:1000:\n", 0o644, Some(ROOT), T0);
        t.file("etc/os-release", b"NAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n", 0o644, Some(ROOT), T0);
        t.dir("home", 0o755, Some(ROOT), T0);
        let e = Some((1000, 1000));
        t.dir("home/erin", 0o755, e, T0);
        match scale {
            Scale::SmallFiles(n) => {
                for i in 0..n {
                    let d = format!("home/erin/photos-{:03}", i / 1000);
                    if i % 1000 == 0 {
                        t.dir(&d, 0o755, e, T0 - i as i64);
                    }
                    let data = content(&format!("scale {i}"), 1 + (i * 7919) % 4096, Content::Text);
                    t.file(&format!("{d}/IMG_{i:06}.txt"), &data, 0o644, e, T0 - 60 * i as i64);
                }
            }
            Scale::WideDirectory(n) => {
                t.dir("home/erin/node_modules", 0o755, e, T0);
                for i in 0..n {
                    let d = format!("home/erin/node_modules/pkg-{i:05}");
                    t.dir(&d, 0o755, e, T0 - i as i64);
                    if i % 10 == 0 {
                        t.file(&format!("{d}/index.js"), format!("module.exports = {i};\n").as_bytes(), 0o644, e, T0);
                    }
                }
            }
        }
        t.set_times();
        let users: BTreeMap<u32, String> = [(0, "root".to_string()), (1000, "erin".to_string())].into();
        let walk = Walk { root: &t.root, fates: &t.fates, layouts: &t.layouts, users: &users, groups: &users, ntfs: false, junctions: &BTreeMap::new() };
        let mut entries = Vec::new();
        walk.profile("home/erin", Some("erin"), &mut entries);
        entries
    };
    let disk = linux_gpt(dir, &work, "scale.img", &fs_img, root_size, root_size + 64 * MIB);
    let _ = fs::remove_dir_all(&work);
    MigrateFixture {
        name: "linux_scale",
        disk,
        partition: 2,
        part_start: 33 * MIB,
        part_size: root_size,
        fs: "ext4",
        users: vec!["erin".into()],
        entries,
        skipped: Vec::new(),
        absent: Vec::new(),
        optional: Vec::new(),
        settings: ExpectedSettings::default(),
    }
}

/// An ext4 image mounted read-write through a loop device; unmounted when dropped.
struct LoopMount {
    dir: PathBuf,
}

impl LoopMount {
    fn mount(image: &Path, dir: &Path) -> LoopMount {
        run(Command::new("mount").args(["-t", "ext4", "-o", "loop"]).arg(image).arg(dir));
        LoopMount { dir: dir.to_path_buf() }
    }
}

impl Drop for LoopMount {
    fn drop(&mut self) {
        let ok = Command::new("umount").arg(&self.dir).status().is_ok_and(|s| s.success());
        if !ok && !std::thread::panicking() {
            panic!("umount {} failed", self.dir.display());
        }
    }
}

// ---- the Windows disk ----------------------------------------------------------------------------

/// The >4 GiB sparse file on the NTFS volume.
pub const WINDOWS_SPARSE_SIZE: u64 = 5 * GIB + 12345;

/// The Zone.Identifier stream put on the downloaded file.
pub const ZONE_IDENTIFIER: &[u8] = b"[ZoneTransfer]\r\nZoneId=3\r\nHostUrl=https://example.com/setup.exe\r\n";

/// GPT, 1.5 GiB sparse, as Windows lays it out: 1 = ESP (FAT, 32 MiB), 2 = MSR (16 MiB, no
/// filesystem), 3 = `C:` (NTFS, 256 MiB, made by mkntfs and filled through ntfs-3g), then
/// unallocated space for a store.
///
/// `C:` holds `Windows\System32\config\SOFTWARE`, `Users\Default`, `Users\Public`, the
/// `All Users` link and the profile `Users\Carol`: Desktop, Documents (with an NTFS-compressed
/// directory holding 8 MiB of text, a read-only file, a path over 260 characters), Downloads (a
/// file with a `Zone.Identifier` alternate data stream), Pictures, Music, Videos (a 5 GiB
/// sparse file), Favorites, `AppData\Roaming` (kept), `AppData\Local\Temp` and a browser
/// `Cache` (excluded), an `x.tmp` (excluded), a OneDrive placeholder (a cloud reparse point:
/// unreadable), `NTUSER.DAT`, unicode names, and the junction `My Documents` →
/// `C:\Users\Carol\Documents` as Windows has it (the built-in rules do not take it: it is in
/// `optional`, for a test whose rules include it).
pub fn windows_disk(dir: &Path) -> MigrateFixture {
    let work = dir.join("windows_disk.work");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).unwrap();
    let c_size = 256 * MIB;
    let c_start = 49 * MIB;
    let vol = work.join("c.ntfs");
    sparse(&vol, c_size);
    run(Command::new("mkntfs").args(["-F", "-Q", "-L", "Windows", "-p", &(c_start / 512).to_string()]).arg(&vol));
    let mnt = work.join("c.mnt");
    fs::create_dir_all(&mnt).unwrap();
    let m = NtfsMount::mount(&vol, &mnt);
    let mut t = Tree::new(&mnt, false);
    let old = T0 - 86400 * 400;
    t.file("Windows/System32/config/SOFTWARE", b"regf fixture software hive", 0, None, old);
    t.file("Windows/System32/config/SYSTEM", b"regf fixture system hive", 0, None, old);
    t.file("Windows/System32/drivers/etc/hosts", b"127.0.0.1 localhost\r\n", 0, None, old);
    t.file("Users/Default/NTUSER.DAT", b"regf default", 0, None, old);
    t.file("Users/Default/AppData/Roaming/Microsoft/Windows/Start Menu/Programs/x.lnk", b"L\0\0\0", 0, None, old);
    t.file("Users/Public/Documents/shared.txt", b"shared\r\n", 0, None, old);
    t.file("Users/desktop.ini", b"[.ShellClassInfo]\r\n", 0, None, old);
    t.dir("ProgramData", 0, None, old);
    std::os::unix::fs::symlink("../ProgramData", mnt.join("Users/All Users")).expect("ln -s on ntfs-3g");

    let c = "Users/Carol";
    let day = 86400;
    t.dir(c, 0, None, T0 - 100);
    t.file(&format!("{c}/NTUSER.DAT"), &content("ntuser", 256 * 1024, Content::Random), 0, None, T0 - 200);
    t.dir(&format!("{c}/Desktop"), 0, None, T0 - day);
    t.file(&format!("{c}/Desktop/todo.txt"), b"buy milk\r\n", 0, None, T0 - day);
    t.file(&format!("{c}/Desktop/x.tmp"), b"scratch", 0, None, T0 - day);
    t.skip(&format!("{c}/Desktop/x.tmp"), SkipKind::Excluded);
    t.dir(&format!("{c}/Documents"), 0, None, T0 - 2 * day);
    t.file(&format!("{c}/Documents/report.txt"), b"report of Carol\r\n", 0, None, T0 - 2 * day);
    t.file(&format!("{c}/Documents/Lebenslauf – Jürgen.docx"), &content("lebenslauf", 40_000, Content::Random), 0, None, T0 - 3 * day);
    t.file(&format!("{c}/Documents/報告書.txt"), "四半期報告\r\n".as_bytes(), 0, None, T0 - 4 * day);
    t.file(&format!("{c}/Documents/empty.txt"), b"", 0, None, T0 - 5 * day);
    t.file(&format!("{c}/Documents/readonly.txt"), b"read only\r\n", 0, None, T0 - 6 * day);
    // A path over 260 characters.
    let mut deep = format!("{c}/Documents/Projects");
    for i in 0..4 {
        deep.push_str(&format!("/level {i} of a deeply nested project folder with a long name"));
    }
    t.dir(&deep, 0, None, T0 - 7 * day);
    t.file(&format!("{deep}/final version (really final).txt"), b"deep\r\n", 0, None, T0 - 7 * day);
    for d in deep.match_indices('/').map(|(i, _)| &deep[..i]).filter(|d| d.len() > format!("{c}/Documents").len()) {
        t.dir(d, 0, None, T0 - 7 * day);
    }
    // NTFS compression: a directory marked compressed; files written into it are compressed.
    let comp = format!("{c}/Documents/Compressed");
    t.dir(&comp, 0, None, T0 - 8 * day);
    rustix::fs::setxattr(mnt.join(&comp).as_path(), "system.ntfs_attrib_be", &0x0000_0810u32.to_be_bytes(), rustix::fs::XattrFlags::empty())
        .expect("marking a directory compressed through ntfs-3g");
    t.file(&format!("{comp}/server.log"), &content("server.log", 8 * MIB as usize, Content::Text), 0, None, T0 - 8 * day);
    t.dir(&format!("{c}/Downloads"), 0, None, T0 - 9 * day);
    t.file(&format!("{c}/Downloads/setup.exe"), &content("setup.exe", 150_000, Content::Random), 0, None, T0 - 9 * day);
    rustix::fs::setxattr(
        mnt.join(format!("{c}/Downloads/setup.exe")).as_path(),
        "user.Zone.Identifier",
        ZONE_IDENTIFIER,
        rustix::fs::XattrFlags::empty(),
    )
    .expect("an alternate data stream through ntfs-3g");
    t.skip(&format!("{c}/Downloads/setup.exe:Zone.Identifier"), SkipKind::NotCarried);
    t.dir(&format!("{c}/Pictures"), 0, None, T0 - 10 * day);
    t.file(&format!("{c}/Pictures/Urlaub 🏖.jpg"), &content("urlaub", 900_000, Content::Random), 0, None, T0 - 10 * day);
    t.dir(&format!("{c}/Music"), 0, None, T0 - 11 * day);
    t.file(&format!("{c}/Music/track01.mp3"), &content("track01", 2 * MIB as usize, Content::Random), 0, None, T0 - 11 * day);
    t.dir(&format!("{c}/Videos"), 0, None, T0 - 12 * day);
    t.sparse_file(
        &format!("{c}/Videos/capture.raw"),
        WINDOWS_SPARSE_SIZE,
        &[(0, b"RIFF head"), (4 * GIB + 7, b"past 4 GiB"), (WINDOWS_SPARSE_SIZE - 3, b"end")],
        None,
        T0 - 12 * day,
    );
    t.dir(&format!("{c}/Favorites"), 0, None, T0 - 13 * day);
    t.file(&format!("{c}/Favorites/Example.url"), b"[InternetShortcut]\r\nURL=https://example.com/\r\n", 0, None, T0 - 13 * day);
    t.dir(&format!("{c}/AppData"), 0, None, T0 - 14 * day);
    t.dir(&format!("{c}/AppData/Roaming"), 0, None, T0 - 14 * day);
    t.dir(&format!("{c}/AppData/Roaming/Notepad++"), 0, None, T0 - 14 * day);
    t.file(&format!("{c}/AppData/Roaming/Notepad++/config.xml"), b"<NotepadPlus><GUIConfigs/></NotepadPlus>\r\n", 0, None, T0 - 14 * day);
    t.dir(&format!("{c}/AppData/Local"), 0, None, T0 - 15 * day);
    // No include rule takes AppData\Local; its Temp and the browser cache are still reported.
    t.absent(&format!("{c}/AppData/Local"));
    t.file(&format!("{c}/AppData/Local/Temp/junk.dat"), &content("junk", 70_000, Content::Random), 0, None, T0);
    t.file(&format!("{c}/AppData/Local/Temp/~DF1234.tmp"), b"junk", 0, None, T0);
    t.skip(&format!("{c}/AppData/Local/Temp"), SkipKind::Excluded);
    let chrome = format!("{c}/AppData/Local/Google/Chrome/User Data/Default");
    t.file(&format!("{chrome}/Bookmarks"), b"{\"roots\":{}}\r\n", 0, None, T0 - 16 * day);
    t.file(&format!("{chrome}/Cache/Cache_Data/data_0"), &content("chrome cache", 100_000, Content::Random), 0, None, T0);
    t.skip(&format!("{chrome}/Cache"), SkipKind::Excluded);
    for d in ["AppData/Local/Google", "AppData/Local/Google/Chrome", "AppData/Local/Google/Chrome/User Data", "AppData/Local/Google/Chrome/User Data/Default"] {
        t.dir(&format!("{c}/{d}"), 0, None, T0 - 16 * day);
    }
    // The legacy junction every Windows profile has; made from an empty directory.
    let junction = format!("{c}/My Documents");
    let junction_target = r"C:\Users\Carol\Documents";
    t.dir(&junction, 0, None, T0 - 100);
    t.absent(&junction);
    set_mtime(&mnt.join(&junction), T0 - 100);
    rustix::fs::setxattr(
        mnt.join(&junction).as_path(),
        "system.ntfs_reparse_data",
        &junction_reparse_data(junction_target),
        rustix::fs::XattrFlags::empty(),
    )
    .expect("a junction through ntfs-3g");
    t.times.retain(|(rel, _)| *rel != junction);
    // A OneDrive Files On-Demand placeholder: a reparse point no reader can read.
    let cloud = format!("{c}/Documents/OneDrive/Budget 2024.xlsx");
    t.dir(&format!("{c}/Documents/OneDrive"), 0, None, T0 - 17 * day);
    t.file(&cloud, b"placeholder", 0, None, T0 - 17 * day);
    let mut cloud_rp = 0x9000_601Au32.to_le_bytes().to_vec();
    cloud_rp.extend_from_slice(&8u16.to_le_bytes());
    cloud_rp.extend_from_slice(&[0, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
    rustix::fs::setxattr(mnt.join(&cloud).as_path(), "system.ntfs_reparse_data", &cloud_rp, rustix::fs::XattrFlags::empty())
        .expect("a cloud placeholder reparse point through ntfs-3g");
    t.skip(&cloud, SkipKind::Unreadable);
    t.times.retain(|(rel, _)| *rel != cloud);
    t.set_times();
    // The read-only attribute, set after the times (ntfs-3g refuses utimens on read-only files).
    let ro = mnt.join(format!("{c}/Documents/readonly.txt"));
    rustix::fs::setxattr(ro.as_path(), "system.ntfs_attrib_be", &0x21u32.to_be_bytes(), rustix::fs::XattrFlags::empty())
        .expect("setting FILE_ATTRIBUTE_READONLY");
    m.unmount();

    // Walk a fresh mount: what is on the volume now, with ntfs-3g's view of it.
    let m = NtfsMount::mount(&vol, &mnt);
    let junctions: BTreeMap<String, String> = [(junction.clone(), junction_target.to_string())].into();
    let users = BTreeMap::new();
    let walk = Walk { root: &mnt, fates: &t.fates, layouts: &t.layouts, users: &users, groups: &users, ntfs: true, junctions: &junctions };
    let mut entries = Vec::new();
    walk.profile(c, Some("Carol"), &mut entries);
    // The junction, captured only when the rules include it.
    let optional = vec![walk.entry(&junction, Some("Carol"), "My Documents")];
    // ntfs-3g's own view of the special cases, so a broken fixture fails here.
    let e = |p: &str| entries.iter().find(|e| e.path == p).unwrap_or_else(|| panic!("{p} missing from the walk"));
    let log = e("Documents/Compressed/server.log");
    assert!(log.attributes.is_some_and(|a| a & 0x800 != 0), "server.log is not NTFS-compressed: {log:?}");
    let alloc = fs::metadata(mnt.join(&comp).join("server.log")).unwrap().blocks() * 512;
    assert!(alloc < 4 * MIB, "server.log takes {alloc} bytes: not compressed");
    assert_eq!(e("Downloads/setup.exe").streams, vec![("Zone.Identifier".to_string(), ZONE_IDENTIFIER.len() as u64)]);
    let j = &optional[0];
    assert!(j.kind == EKind::Symlink && j.attributes.is_some_and(|a| a & 0x400 != 0), "junction: {j:?}");
    assert!(e("Videos/capture.raw").sparse, "capture.raw is not sparse on the volume");
    assert!(e("Documents/readonly.txt").attributes.is_some_and(|a| a & 1 != 0));
    m.unmount();

    let disk = dir.join("windows_disk.img");
    let size = 1536 * MIB;
    sparse(&disk, size);
    run(Command::new("sgdisk")
        .args(["-o", "-n1:2048:+32M", "-t1:ef00", "-c1:EFI system partition", "-n2:0:+16M", "-t2:0c01", "-c2:Microsoft reserved partition"])
        .arg(format!("-n3:{}:+{}M", c_start / 512, c_size / MIB))
        .args(["-t3:0700", "-c3:Basic data partition"])
        .arg(&disk));
    let esp = mkfs_fat(&work, "esp", 32 * MIB, "SYSTEM", &[], true);
    place(&disk, MIB, &esp);
    place(&disk, c_start, &vol);
    let fx = MigrateFixture {
        name: "windows_disk",
        disk,
        partition: 3,
        part_start: c_start,
        part_size: c_size,
        fs: "ntfs",
        users: vec!["Carol".into()],
        entries,
        skipped: skips(&t.fates),
        absent: absents(&t.fates, &["/ProgramData", "/Users/All Users", "/Users/Default", "/Users/Public", "/Windows/System32"]),
        optional,
        settings: ExpectedSettings::default(),
    };
    let _ = fs::remove_dir_all(&work);
    fx.assert_complete();
    fx
}

// ---- where restores go -------------------------------------------------------------------------

/// An account of the target root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// As in passwd (`/home/alice`).
    pub home: String,
}

/// A new-OS root to restore into: `etc/passwd`, `etc/group`, `etc/hostname` (`newbox`) and
/// empty homes, with ids that differ from the old OS's (alice 2001, bob 2000, carol 2002,
/// group users 150), so owners prove to be mapped by name.
#[derive(Debug, Clone)]
pub struct TargetRoot {
    pub path: PathBuf,
    pub accounts: Vec<Account>,
    pub groups: Vec<(String, u32)>,
}

impl TargetRoot {
    pub fn path_str(&self) -> &str {
        self.path.to_str().expect("fixture paths are UTF-8")
    }

    /// The account a source user maps to (by name, ignoring case: `Carol` → `carol`).
    pub fn account(&self, source_user: &str) -> &Account {
        self.accounts
            .iter()
            .find(|a| a.name == source_user)
            .or_else(|| self.accounts.iter().find(|a| a.name.eq_ignore_ascii_case(source_user)))
            .unwrap_or_else(|| panic!("the target root has no account for {source_user}"))
    }

    /// The home of `source_user`'s account inside the target root.
    pub fn home(&self, source_user: &str) -> PathBuf {
        self.inside(&self.account(source_user).home)
    }

    /// `abs` (an absolute path on the new OS) inside the target root.
    pub fn inside(&self, abs: &str) -> PathBuf {
        self.path.join(abs.trim_start_matches('/'))
    }

    pub fn uid(&self, name: &str) -> u32 {
        self.account(name).uid
    }

    pub fn gid(&self, group: &str) -> u32 {
        self.groups.iter().find(|(g, _)| g == group).unwrap_or_else(|| panic!("the target root has no group {group}")).1
    }
}

/// The standard accounts of a target root: `(name, uid = gid, home)`.
pub const TARGET_ACCOUNTS: &[(&str, u32, &str)] =
    &[("root", 0, "/root"), ("bob", 2000, "/home/bob"), ("alice", 2001, "/home/alice"), ("carol", 2002, "/home/carol")];

/// A target root in `dir/name` with the standard accounts (see [`TargetRoot`]).
pub fn target_root(dir: &Path, name: &str) -> TargetRoot {
    target_root_with(dir, name, TARGET_ACCOUNTS)
}

/// A target root with these accounts (each with a group of its name and id), the group
/// `users` (150), `etc/shadow` and `etc/gshadow` (so `useradd --prefix` works on it),
/// `etc/hostname` `newbox`; the homes exist, empty, owned by their accounts.
pub fn target_root_with(dir: &Path, name: &str, accounts: &[(&str, u32, &str)]) -> TargetRoot {
    let path = dir.join(name);
    let _ = fs::remove_dir_all(&path);
    fs::create_dir_all(path.join("etc")).unwrap();
    let accounts: Vec<Account> =
        accounts.iter().map(|(n, id, h)| Account { name: n.to_string(), uid: *id, gid: *id, home: h.to_string() }).collect();
    let mut groups: Vec<(String, u32)> = accounts.iter().map(|a| (a.name.clone(), a.gid)).collect();
    groups.push(("users".into(), 150));
    let mut passwd = String::new();
    let mut shadow = String::new();
    for a in &accounts {
        passwd.push_str(&format!("{}:x:{}:{}:{}:{}:/bin/bash\n", a.name, a.uid, a.gid, a.name, a.home));
        shadow.push_str(&format!("{}:!:19800:0:99999:7:::\n", a.name));
        if a.name == "root" {
            passwd.push_str("systemd-network:x:998:998:systemd Network Management:/:/usr/sbin/nologin\n");
        }
    }
    passwd.push_str("nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n");
    let group: String = groups.iter().map(|(n, g)| format!("{n}:x:{g}:\n")).collect::<String>() + "nogroup:x:65534:\n";
    let gshadow: String = groups.iter().map(|(n, _)| format!("{n}:!::\n")).collect();
    fs::write(path.join("etc/passwd"), passwd).unwrap();
    fs::write(path.join("etc/group"), group).unwrap();
    fs::write(path.join("etc/shadow"), shadow).unwrap();
    fs::write(path.join("etc/gshadow"), gshadow).unwrap();
    fs::write(path.join("etc/hostname"), "newbox\n").unwrap();
    fs::create_dir_all(path.join("etc/NetworkManager/system-connections")).unwrap();
    let tr = TargetRoot { path, accounts, groups };
    for a in &tr.accounts {
        let h = tr.inside(&a.home);
        fs::create_dir_all(&h).unwrap();
        std::os::unix::fs::chown(&h, Some(a.uid), Some(a.gid)).unwrap();
        fs::set_permissions(&h, fs::Permissions::from_mode(0o700)).unwrap();
    }
    tr
}

// ---- stores ----------------------------------------------------------------------------------------

/// A FAT32 volume image labelled `INPLACE` of `size` bytes (sparse), for `--store FILE`.
pub fn store_volume(dir: &Path, name: &str, size: u64) -> PathBuf {
    let path = dir.join(name);
    sparse(&path, size);
    run(Command::new("mkfs.fat").args(["-F", "32", "-n", "INPLACE"]).arg(&path));
    path
}

/// The files of a FAT volume (an image file, or `image@@offset`), recursively, as
/// `(path from the root without a leading slash, size)`; directories left out.
pub fn fat_list(volume: &str) -> Vec<(String, u64)> {
    let out = run(Command::new("mdir").args(["-i", volume, "-/", "-b", "-a"]).arg("::/"));
    let mut files = Vec::new();
    for line in out.lines().map(str::trim).filter(|l| !l.is_empty() && !l.ends_with('/')) {
        let rel = line.trim_start_matches("::").trim_start_matches('/').to_string();
        let size = fat_size(volume, &rel);
        if let Some(size) = size {
            files.push((rel, size));
        }
    }
    files
}

/// Size of a file on a FAT volume; `None` for a directory.
fn fat_size(volume: &str, rel: &str) -> Option<u64> {
    let o = Command::new("mdir").args(["-i", volume, "-a"]).arg(format!("::/{rel}")).output().ok()?;
    let text = String::from_utf8_lossy(&o.stdout);
    if text.contains("<DIR>") {
        return None;
    }
    // mdir prints "NAME EXT  SIZE date time LONGNAME"; take the first numeric column.
    text.lines()
        .filter(|l| !l.starts_with(' ') && !l.is_empty() && !l.starts_with("Directory"))
        .flat_map(|l| l.split_whitespace())
        .find_map(|w| w.parse::<u64>().ok())
}

/// Copies `rel` out of a FAT volume.
pub fn fat_get(volume: &str, rel: &str, out: &Path) {
    run(Command::new("mcopy").args(["-n", "-o", "-i", volume]).arg(format!("::/{rel}")).arg(out));
}

/// Copies `file` into a FAT volume at `rel`, replacing what is there (directories made).
pub fn fat_put(volume: &str, file: &Path, rel: &str) {
    let mut at = String::new();
    for part in rel.split('/').collect::<Vec<_>>().iter().rev().skip(1).rev() {
        at.push('/');
        at.push_str(part);
        let _ = Command::new("mmd").args(["-i", volume]).arg(format!("::{at}")).output();
    }
    run(Command::new("mcopy").args(["-n", "-o", "-i", volume]).arg(file).arg(format!("::/{rel}")));
}

/// Flips one byte of `path` at `offset`.
pub fn flip_byte(path: &Path, offset: u64) {
    let f = OpenOptions::new().read(true).write(true).open(path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, offset).unwrap();
    f.write_all_at(&[b[0] ^ 0x55], offset).unwrap();
}

// ---- looking at a restored tree -----------------------------------------------------------------

/// What is at one path of a restored tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub kind: EKind,
    pub size: u64,
    /// sha256 of files up to [`OBSERVE_HASH_MAX`] bytes.
    pub sha256: Option<String>,
    /// Non-zero runs of larger files, when they are sparse (see [`nonzero_runs`]).
    pub layout: Option<Vec<(u64, Vec<u8>)>>,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub target: Option<String>,
    pub dev_ino: (u64, u64),
    /// Bytes allocated on disk.
    pub allocated: u64,
}

/// Files larger than this are compared by their non-zero runs, not hashed.
pub const OBSERVE_HASH_MAX: u64 = GIB;

/// Every path under `dir` (relative, `/`-separated, not following symlinks) with what is there.
/// Other file types (fifos, devices) panic: restore must never make them.
pub fn observe(dir: &Path) -> BTreeMap<String, Observed> {
    let mut out = BTreeMap::new();
    let mut stack = vec![String::new()];
    while let Some(sub) = stack.pop() {
        let d = if sub.is_empty() { dir.to_path_buf() } else { dir.join(&sub) };
        for ent in fs::read_dir(&d).unwrap_or_else(|e| panic!("listing {}: {e}", d.display())) {
            let ent = ent.unwrap();
            let name = ent.file_name().into_string().unwrap_or_else(|n| panic!("non-UTF-8 name {n:?} in {}", d.display()));
            let rel = if sub.is_empty() { name } else { format!("{sub}/{name}") };
            let p = dir.join(&rel);
            let m = fs::symlink_metadata(&p).unwrap();
            let ft = m.file_type();
            let kind = if ft.is_symlink() {
                EKind::Symlink
            } else if ft.is_dir() {
                EKind::Dir
            } else if ft.is_file() {
                EKind::File
            } else {
                panic!("{}: restore made a special file ({ft:?})", p.display())
            };
            if kind == EKind::Dir {
                stack.push(rel.clone());
            }
            out.insert(
                rel,
                Observed {
                    kind,
                    size: m.len(),
                    sha256: (kind == EKind::File && m.len() <= OBSERVE_HASH_MAX).then(|| crate::sha256_file(&p)),
                    layout: (kind == EKind::File && m.len() > OBSERVE_HASH_MAX).then(|| nonzero_runs(&p, 64 * MIB)).flatten(),
                    mode: m.mode() & 0o7777,
                    uid: m.uid(),
                    gid: m.gid(),
                    mtime: m.mtime(),
                    target: (kind == EKind::Symlink).then(|| fs::read_link(&p).unwrap().to_string_lossy().into_owned()),
                    dev_ino: (m.dev(), m.ino()),
                    allocated: m.blocks() * 512,
                },
            );
        }
    }
    out
}

/// A fingerprint of every path under `dir` (kind, size, data, mode, owner, mtime, link target),
/// to prove a tree unchanged.
pub fn tree_fingerprint(dir: &Path) -> BTreeMap<String, String> {
    observe(dir)
        .into_iter()
        .map(|(k, o)| {
            let v = format!("{:?} {} {:?} {:o} {}:{} {} {:?}", o.kind, o.size, o.sha256, o.mode, o.uid, o.gid, o.mtime, o.target);
            (k, v)
        })
        .collect()
}

// ---- running inplace ------------------------------------------------------------------------------

/// Runs the `inplace` CLI.
pub fn inplace(args: &[&str]) -> Output {
    Command::new(inplace_bin()).args(args).output().expect("running inplace")
}

/// stdout and stderr of a run.
pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Parses stdout of a `--json` run.
pub fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", text(o)))
}

/// A fresh directory for one test (under the system temp dir, removed by the caller when the
/// test passes, kept for a look when it fails).
pub fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("inplace-migrate-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap_or_else(|e| panic!("creating {}: {e}", d.display()));
    d
}

/// Reads a whole file.
pub fn read(path: &Path) -> Vec<u8> {
    let mut v = Vec::new();
    File::open(path).and_then(|mut f| f.read_to_end(&mut v)).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    v
}

// ---- checking a capture and a restore against the expectation --------------------------------

/// The capture's manifest (`capture/manifest.json`) out of a store volume (an image file, or
/// `disk@@offset` for mtools).
pub fn store_manifest(volume: &str, scratch: &Path) -> serde_json::Value {
    let out = scratch.join("manifest.json");
    fat_get(volume, "capture/manifest.json", &out);
    serde_json::from_slice(&read(&out)).unwrap_or_else(|e| panic!("{volume}: manifest.json is not JSON: {e}"))
}

fn kind_tag(k: EKind) -> &'static str {
    match k {
        EKind::File => "file",
        EKind::Dir => "dir",
        EKind::Symlink => "symlink",
    }
}

fn differ(diffs: &mut Vec<String>, source: &str, verb: &str, what: &str, got: String, want: String) {
    if got != want {
        diffs.push(format!("{source}: {what}: {verb} {got}, expected {want}"));
    }
}

/// Compares a manifest's entries with `expected` (profile and system entries), field by field:
/// the set of `(user, path)` must be equal, and kind, size, mode, owner, group, whole-second
/// mtime, link target and NTFS attributes must agree. Of each hard-link group exactly one name
/// is a `file` and the others are `hardlink`s naming it. Returns every difference.
pub fn manifest_diffs(manifest: &serde_json::Value, expected: &[&ExpectedEntry]) -> Vec<String> {
    let mut diffs = Vec::new();
    let got: BTreeMap<(Option<String>, String), &serde_json::Value> = manifest["entries"]
        .as_array()
        .expect("manifest entries")
        .iter()
        .map(|e| ((e["user"].as_str().map(String::from), e["path"].as_str().unwrap_or("").to_string()), e))
        .collect();
    let want: BTreeMap<(Option<String>, String), &ExpectedEntry> =
        expected.iter().map(|e| ((e.user.clone(), e.path.clone()), *e)).collect();
    for k in got.keys().filter(|k| !want.contains_key(k)) {
        diffs.push(format!("captured but not expected: {k:?} ({})", got[k]["source"]));
    }
    // The name of each link group captured as a file.
    let mut group_file: BTreeMap<u64, String> = BTreeMap::new();
    for (k, e) in &want {
        let Some(m) = got.get(k) else {
            diffs.push(format!("expected but not captured: {} ({:?})", e.source, e.kind));
            continue;
        };
        let src = e.source.as_str();
        let kind = m["kind"].as_str().unwrap_or("?");
        if e.link_group.is_some() && kind == "hardlink" {
            differ(&mut diffs, src, "captured", "size", m["size"].to_string(), "0".into());
        } else {
            differ(&mut diffs, src, "captured", "kind", kind.into(), kind_tag(e.kind).into());
            if e.kind == EKind::File {
                differ(&mut diffs, src, "captured", "size", m["size"].to_string(), e.size.to_string());
            }
        }
        if let (Some(g), "file") = (e.link_group, kind) {
            if let Some(prev) = group_file.insert(g, e.path.clone()) {
                diffs.push(format!("{src}: a second full copy of the file at {prev} (not a hard link)"));
            }
        }
        differ(&mut diffs, src, "captured", "source", m["source"].as_str().unwrap_or("").into(), e.source.clone());
        differ(&mut diffs, src, "captured", "mode", format!("{:?}", m["mode"].as_u64()), format!("{:?}", e.mode.map(u64::from)));
        differ(&mut diffs, src, "captured", "owner", format!("{:?}", m["owner"].as_str()), format!("{:?}", e.owner.as_deref()));
        differ(&mut diffs, src, "captured", "group", format!("{:?}", m["group"].as_str()), format!("{:?}", e.group.as_deref()));
        differ(&mut diffs, src, "captured", "mtime", format!("{:?}", m["mtime"]["secs"].as_i64()), format!("{:?}", Some(e.mtime)));
        if e.kind == EKind::Symlink && e.attributes.is_none() {
            differ(&mut diffs, src, "captured", "target", format!("{:?}", m["target"].as_str()), format!("{:?}", e.target.as_deref()));
        }
        if let Some(a) = e.attributes {
            differ(&mut diffs, src, "captured", "attributes", format!("{:?}", m["attributes"].as_u64()), format!("{:?}", Some(u64::from(a))));
        }
    }
    // Every hard link names the file of its group, and every group has its file.
    for (k, e) in &want {
        let (Some(g), Some(m)) = (e.link_group, got.get(k)) else { continue };
        if m["kind"] == "hardlink" && m["target"].as_str() != group_file.get(&g).map(String::as_str) {
            diffs.push(format!("{}: hard link to {:?}, expected {:?}", e.source, m["target"], group_file.get(&g)));
        }
    }
    let groups: BTreeSet<u64> = want.values().filter_map(|e| e.link_group).collect();
    if group_file.len() != groups.len() {
        diffs.push(format!("{} hard-link groups, {} of them with a file entry", groups.len(), group_file.len()));
    }
    diffs
}

/// Checks a capture report's list of left-out items (the manifest's `skipped`, the restore
/// report's `capture_skipped`): every expected item is there with its reason kind, and nothing
/// the fixture expects captured is listed.
pub fn skipped_diffs(skipped: &serde_json::Value, fx: &MigrateFixture) -> Vec<String> {
    let list = skipped.as_array().cloned().unwrap_or_default();
    let mut diffs = Vec::new();
    for s in &fx.skipped {
        match list.iter().find(|x| x["source"].as_str() == Some(&s.source)) {
            None => diffs.push(format!("not reported as left out: {} ({})", s.source, s.kind.tag())),
            Some(x) if x["kind"].as_str() != Some(s.kind.tag()) => {
                diffs.push(format!("{}: reported as {}, expected {}", s.source, x["kind"], s.kind.tag()))
            }
            Some(_) => {}
        }
    }
    for x in &list {
        let src = x["source"].as_str().unwrap_or("");
        if fx.entries.iter().any(|e| e.source == src) {
            diffs.push(format!("{src}: reported as left out ({}) but expected in the store", x["kind"]));
        }
    }
    diffs
}

/// Manifest entries that come from a place never to be captured (absent or skipped).
pub fn absent_diffs(manifest: &serde_json::Value, fx: &MigrateFixture) -> Vec<String> {
    let mut diffs = Vec::new();
    for e in manifest["entries"].as_array().expect("manifest entries") {
        let src = e["source"].as_str().unwrap_or("");
        for a in fx.absent.iter().chain(fx.skipped.iter().map(|s| &s.source)) {
            if src == a || src.starts_with(&format!("{a}/")) {
                diffs.push(format!("{src} was captured, but {a} must not be"));
            }
        }
    }
    diffs
}

/// Compares the restored home of source user `user` in `root` with `expected` (that user's
/// entries): the full tree, so anything restored that is not expected is a difference too
/// (paths in `preexisting` excepted). `mode_of` gives the mode each entry must have (from the
/// source on ext4; restore's documented choice on NTFS). Owners and groups are checked by name
/// through the target root's passwd and group; a profile's own name maps to its account.
pub fn restored_diffs(
    root: &TargetRoot,
    user: &str,
    expected: &[&ExpectedEntry],
    mode_of: &dyn Fn(&ExpectedEntry) -> u32,
    preexisting: &BTreeSet<String>,
) -> Vec<String> {
    let home = root.home(user);
    let account = root.account(user).clone();
    let seen = observe(&home);
    let mut diffs = Vec::new();
    let mut inodes: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for e in expected {
        let src = e.source.as_str();
        let Some(o) = seen.get(&e.path) else {
            diffs.push(format!("{src}: not restored at {}", home.join(&e.path).display()));
            continue;
        };
        differ(&mut diffs, src, "restored", "kind", format!("{:?}", o.kind), format!("{:?}", e.kind));
        if o.kind != e.kind {
            continue;
        }
        if e.kind == EKind::File {
            differ(&mut diffs, src, "restored", "size", o.size.to_string(), e.size.to_string());
            if let Some(sha) = &e.sha256 {
                differ(&mut diffs, src, "restored", "sha256", format!("{:?}", o.sha256), format!("{:?}", Some(sha)));
            }
            if let Some(layout) = &e.layout {
                match &o.layout {
                    None => diffs.push(format!("{src}: not sparse after restore ({} bytes allocated)", o.allocated)),
                    Some(l) if l != layout => diffs.push(format!(
                        "{src}: data differs: non-zero runs at {:?}, expected at {:?}",
                        l.iter().map(|r| (r.0, r.1.len())).collect::<Vec<_>>(),
                        layout.iter().map(|r| (r.0, r.1.len())).collect::<Vec<_>>()
                    )),
                    Some(_) => {}
                }
            }
            if e.sparse && o.allocated > 16 * MIB {
                diffs.push(format!("{src}: {} bytes allocated for a sparse file of {}", o.allocated, e.size));
            }
            if let Some(g) = e.link_group {
                if inodes.insert(g, o.dev_ino).is_some_and(|prev| prev != o.dev_ino) {
                    diffs.push(format!("{src}: not the same inode as the other names of its file"));
                }
            }
        }
        if e.kind == EKind::Symlink && e.attributes.is_none() {
            differ(&mut diffs, src, "restored", "link target", format!("{:?}", o.target), format!("{:?}", e.target));
        }
        if e.kind != EKind::Symlink {
            differ(&mut diffs, src, "restored", "mode", format!("{:o}", o.mode), format!("{:o}", mode_of(e)));
        }
        let want_uid = match e.owner.as_deref() {
            Some(o) if o == user => account.uid,
            Some(o) => root.accounts.iter().find(|a| a.name == o).map_or(u32::MAX, |a| a.uid),
            None => account.uid,
        };
        let want_gid = match e.group.as_deref() {
            Some(g) if g == user => account.gid,
            Some(g) => root.groups.iter().find(|(n, _)| n == g).map_or(u32::MAX, |(_, id)| *id),
            None => account.gid,
        };
        differ(&mut diffs, src, "restored", "owner", o.uid.to_string(), want_uid.to_string());
        differ(&mut diffs, src, "restored", "group", o.gid.to_string(), want_gid.to_string());
        differ(&mut diffs, src, "restored", "mtime", o.mtime.to_string(), e.mtime.to_string());
    }
    let want: BTreeSet<&str> = expected.iter().map(|e| e.path.as_str()).collect();
    for p in seen.keys().filter(|p| !want.contains(p.as_str()) && !preexisting.contains(*p)) {
        diffs.push(format!("restored but not expected: {}", home.join(p).display()));
    }
    diffs
}

/// Compares restored settings (entries outside the profiles) with the expectation: content,
/// mode, owner root.
pub fn system_diffs(root: &TargetRoot, expected: &[&ExpectedEntry]) -> Vec<String> {
    let mut diffs = Vec::new();
    for e in expected {
        let p = root.path.join(&e.path);
        let Ok(m) = fs::symlink_metadata(&p) else {
            diffs.push(format!("{}: not restored at {}", e.source, p.display()));
            continue;
        };
        if crate::sha256_file(&p) != *e.sha256.as_ref().expect("settings are small files") {
            diffs.push(format!("{}: content differs", e.source));
        }
        let want = e.mode.expect("settings come from ext4");
        if m.mode() & 0o7777 != want {
            diffs.push(format!("{}: mode {:o}, expected {want:o}", e.source, m.mode() & 0o7777));
        }
        if (m.uid(), m.gid()) != (0, 0) {
            diffs.push(format!("{}: owned by {}:{}, expected root", e.source, m.uid(), m.gid()));
        }
    }
    diffs
}

/// Panics with every difference, one per line.
pub fn assert_no_diffs(what: &str, diffs: &[String]) {
    assert!(diffs.is_empty(), "{what}: {} difference(s):\n  {}", diffs.len(), diffs.join("\n  "));
}
