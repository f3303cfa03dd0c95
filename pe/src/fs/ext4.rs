//! ext2/3/4 through `ext4-view` (which replays the journal in memory and checks
//! `metadata_csum`). It refuses `inline_data`, `casefold`, `meta_bg` and encrypted directories;
//! those come back as [`FsError::Unsupported`].
//!
//! `ext4-view` exposes neither inode numbers nor link counts nor the change time. `metadata`
//! gets a regular file's inode number from the crate's `Debug` output of an open `File` (see
//! [`inode_of`]), and reads that inode's raw record through the group descriptors for the link
//! count and ctime, trusting it only where it agrees with what `ext4-view` read.

use std::io::{self, Write};

use ext4_view::{Ext4, Ext4Error};

use super::range::RangeReader;
use super::{DirEntry, EntryKind, FsError, FsReader, Metadata, Time};

pub struct Ext4Reader {
    fs: Ext4,
    fs_type: &'static str,
    /// Raw inode access for the link count and ctime; `None` when the superblock layout is not
    /// one this reads (or the journal needs replaying, so the raw inodes may be stale).
    raw: Option<RawInodes>,
}

impl Ext4Reader {
    /// Loads the superblock, group descriptors and journal of the filesystem on `range`.
    /// `fs_type` is what the signature said (`ext2`, `ext3` or `ext4`).
    pub fn open(range: RangeReader, fs_type: &str) -> Result<Self, FsError> {
        let fs_type = match fs_type {
            "ext2" => "ext2",
            "ext3" => "ext3",
            _ => "ext4",
        };
        let mut range = range;
        check_superblock(&mut range).map_err(|detail| FsError::Corrupt { path: "/".into(), fs: fs_type, detail })?;
        let raw = RawInodes::new(RangeReader::new(range.disk().clone(), range.start(), range.len()));
        let fs = Ext4::load(Box::new(range)).map_err(|e| map_err(fs_type, "/", e))?;
        Ok(Ext4Reader { fs, fs_type, raw })
    }
}

/// The inode number of an open file. `ext4-view` 1.0 has no public accessor, but its `Debug`
/// for `File` prints `File { inode: N, position: P, .. }` (src/file.rs), so it is read from
/// there; `inode_number_from_debug_output` in the tests pins that format against `debugfs`.
/// If a later version changes the format this returns `None` (no hard-link identity), never a
/// wrong number: the field must be a plain positive integer.
fn inode_of(file: &ext4_view::File) -> Option<u32> {
    let text = format!("{file:?}");
    let rest = text.split_once("inode: ")?.1;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let next = rest[digits.len()..].chars().next();
    if !matches!(next, Some(',') | Some(' ') | Some('}')) {
        return None;
    }
    digits.parse().ok().filter(|n| *n > 0)
}

/// Reads inodes straight from the inode tables, for the fields `ext4-view` keeps to itself.
struct RawInodes {
    io: RangeReader,
    block: u64,
    inodes_per_group: u64,
    inodes: u64,
    inode_size: u64,
    desc_size: u64,
    /// Byte offset of the group descriptor table.
    gdt_at: u64,
}

/// The raw fields of one inode that matter here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RawInode {
    mode: u16,
    uid: u32,
    gid: u32,
    size: u64,
    mtime_lo: u32,
    links: u16,
    ctime: Option<Time>,
}

const INCOMPAT_RECOVER: u32 = 0x4;
const INCOMPAT_META_BG: u32 = 0x10;
const INCOMPAT_64BIT: u32 = 0x80;

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// An ext4 timestamp: 32 signed seconds, and in the extra field 2 epoch bits and 30 bits of
/// nanoseconds.
fn ext_time(secs: u32, extra: Option<u32>) -> Option<Time> {
    let mut s = i64::from(secs as i32);
    let mut nanos = 0;
    if let Some(extra) = extra {
        s += i64::from(extra & 3) << 32;
        nanos = extra >> 2;
        if nanos >= 1_000_000_000 {
            return None;
        }
    }
    Some(Time { secs: s, nanos })
}

impl RawInodes {
    fn new(mut io: RangeReader) -> Option<RawInodes> {
        let mut sb = [0u8; 1024];
        io.read_exact_at(1024, &mut sb).ok()?;
        let incompat = le32(&sb, 0x60);
        if le16(&sb, 0x38) != 0xEF53 || incompat & (INCOMPAT_RECOVER | INCOMPAT_META_BG) != 0 {
            return None;
        }
        let log = le32(&sb, 0x18);
        if log > 6 {
            return None;
        }
        let block = 1024u64 << log;
        let inode_size = if le32(&sb, 0x4C) == 0 { 128 } else { u64::from(le16(&sb, 0x58)) };
        let desc_size = if incompat & INCOMPAT_64BIT != 0 { u64::from(le16(&sb, 0xFE)).max(32) } else { 32 };
        let inodes_per_group = u64::from(le32(&sb, 0x28));
        if !(128..=block).contains(&inode_size) || !(32..=1024).contains(&desc_size) || inodes_per_group == 0 {
            return None;
        }
        let gdt_at = (u64::from(le32(&sb, 0x14)) + 1) * block;
        Some(RawInodes {
            io,
            block,
            inodes_per_group,
            inodes: u64::from(le32(&sb, 0x0)),
            inode_size,
            desc_size,
            gdt_at,
        })
    }

    fn inode(&mut self, ino: u32) -> Option<RawInode> {
        let ino = u64::from(ino);
        if ino == 0 || ino > self.inodes {
            return None;
        }
        let (group, index) = ((ino - 1) / self.inodes_per_group, (ino - 1) % self.inodes_per_group);
        let mut desc = vec![0u8; self.desc_size as usize];
        self.io.read_exact_at(self.gdt_at + group * self.desc_size, &mut desc).ok()?;
        let hi = if self.desc_size >= 64 { u64::from(le32(&desc, 0x28)) << 32 } else { 0 };
        let table = u64::from(le32(&desc, 0x8)) | hi;
        let mut raw = vec![0u8; self.inode_size.min(160) as usize];
        let at = table.checked_mul(self.block)?.checked_add(index * self.inode_size)?;
        self.io.read_exact_at(at, &mut raw).ok()?;
        // The extra fields exist when the inode is big enough and says it uses them.
        let extra_end = if raw.len() > 0x82 { 0x80 + usize::from(le16(&raw, 0x80)) } else { 0 };
        let ctime_extra = (extra_end >= 0x88 && raw.len() >= 0x88).then(|| le32(&raw, 0x84));
        Some(RawInode {
            mode: le16(&raw, 0),
            uid: u32::from(le16(&raw, 0x2)) | (u32::from(le16(&raw, 0x78)) << 16),
            gid: u32::from(le16(&raw, 0x18)) | (u32::from(le16(&raw, 0x7A)) << 16),
            size: u64::from(le32(&raw, 0x4)) | (u64::from(le32(&raw, 0x6C)) << 32),
            mtime_lo: le32(&raw, 0x10),
            links: le16(&raw, 0x1A),
            ctime: ext_time(le32(&raw, 0xC), ctime_extra),
        })
    }
}

/// Whether a raw inode is the one `ext4-view` described (same mode, owner, size and mtime).
fn raw_agrees(raw: &RawInode, m: &ext4_view::Metadata) -> bool {
    u32::from(raw.mode & 0o7777) == u32::from(m.mode())
        && raw.mode & 0xF000 == 0x8000
        && raw.uid == m.uid()
        && raw.gid == m.gid()
        && raw.size == m.len()
        && raw.mtime_lo == m.modified().seconds() as u32
}

fn time(t: ext4_view::Timestamp) -> Time {
    Time { secs: t.seconds(), nanos: t.nanoseconds() }
}

/// Most groups inplace will load descriptors for (4 Mi groups: 512 TiB with 4 KiB blocks).
const MAX_GROUPS: u64 = 1 << 22;

/// Sizes `ext4-view` trusts when it allocates: a garbage block count or group size would make
/// it allocate gigabytes, and an allocation failure aborts the process (no unwinding). Checks
/// them against the partition first, the way the kernel does at mount.
fn check_superblock(range: &mut RangeReader) -> Result<(), String> {
    let mut sb = [0u8; 1024];
    range.read_exact_at(1024, &mut sb).map_err(|e| format!("cannot read the superblock: {e}"))?;
    let le32 = |at: usize| u64::from(u32::from_le_bytes([sb[at], sb[at + 1], sb[at + 2], sb[at + 3]]));
    let log = le32(0x18);
    if log > 6 {
        return Err(format!("invalid block size (log {log})"));
    }
    let block = 1024u64 << log;
    // ext4-view takes the high half of the block count whether or not the 64bit feature is
    // set; check what it will use.
    let blocks = (le32(0x150) << 32) | le32(0x4);
    let per_group = le32(0x20);
    if per_group == 0 || per_group > 8 * block {
        return Err(format!("invalid blocks per group ({per_group})"));
    }
    let bytes = blocks.checked_mul(block).ok_or("the block count overflows")?;
    if bytes > range.len() {
        return Err(format!(
            "the filesystem claims {bytes} bytes but its partition holds {}; it is damaged, or \
             the partition or image was cut short",
            range.len()
        ));
    }
    let groups = blocks.div_ceil(per_group);
    if groups > MAX_GROUPS {
        return Err(format!("{groups} block groups is more than inplace reads"));
    }
    Ok(())
}

fn map_err(fs: &'static str, path: &str, e: Ext4Error) -> FsError {
    let path = path.to_string();
    match e {
        Ext4Error::NotFound => FsError::NotFound { path },
        Ext4Error::NotADirectory => FsError::NotADirectory { path },
        Ext4Error::IsADirectory => FsError::IsADirectory { path },
        Ext4Error::Incompatible(i) => FsError::Unsupported { path, fs, what: format!("{i}") },
        Ext4Error::Encrypted => FsError::Unsupported { path, fs, what: "an encrypted file".into() },
        Ext4Error::IsASpecialFile => FsError::Unsupported { path, fs, what: "a special file".into() },
        Ext4Error::Io(source) => FsError::Io { path, source: io::Error::other(source) },
        other if other.to_string().contains("invalid timestamp") => FsError::Unsupported {
            path,
            fs,
            what: "an inode timestamp out of range".into(),
        },
        other => FsError::Corrupt { path, fs, detail: other.to_string() },
    }
}

fn kind(ft: ext4_view::FileType) -> EntryKind {
    if ft.is_dir() {
        EntryKind::Dir
    } else if ft.is_regular_file() {
        EntryKind::File
    } else if ft.is_symlink() {
        EntryKind::Symlink
    } else {
        EntryKind::Other
    }
}

/// ext4-view wants absolute paths.
fn absolute(path: &str) -> String {
    let joined: Vec<&str> = super::components(path).collect();
    format!("/{}", joined.join("/"))
}

impl FsReader for Ext4Reader {
    fn fs_type(&self) -> &'static str {
        self.fs_type
    }

    fn label(&mut self) -> Option<String> {
        self.fs.label().to_str().ok().map(|s| s.trim_end().to_string()).filter(|s| !s.is_empty())
    }

    fn stat(&mut self, path: &str) -> Result<DirEntry, FsError> {
        let abs = absolute(path);
        let m = self.fs.metadata(abs.as_str()).map_err(|e| map_err(self.fs_type, path, e))?;
        let name = super::components(path).last().unwrap_or("/").to_string();
        let kind = kind(m.file_type());
        Ok(DirEntry { name, kind, size: if kind == EntryKind::File { m.len() } else { 0 } })
    }

    fn metadata(&mut self, path: &str) -> Result<Metadata, FsError> {
        let abs = absolute(path);
        let fs_type = self.fs_type;
        let m = self.fs.symlink_metadata(abs.as_str()).map_err(|e| map_err(fs_type, path, e))?;
        let kind = kind(m.file_type());
        let target = if kind == EntryKind::Symlink {
            let t = self.fs.read_link(abs.as_str()).map_err(|e| map_err(fs_type, path, e))?;
            Some(String::from_utf8_lossy(t.as_ref()).into_owned())
        } else {
            None
        };
        // Only regular files can be opened (and only they matter for hard links in practice).
        let ino =
            if kind == EntryKind::File { self.fs.open(abs.as_str()).ok().as_ref().and_then(inode_of) } else { None };
        let raw = ino.and_then(|i| self.raw.as_mut()?.inode(i)).filter(|r| raw_agrees(r, &m));
        Ok(Metadata {
            kind,
            size: if kind == EntryKind::File { m.len() } else { 0 },
            mode: Some(u32::from(m.mode())),
            uid: Some(m.uid()),
            gid: Some(m.gid()),
            mtime: Some(time(m.modified())),
            atime: Some(time(m.accessed())),
            ctime: raw.and_then(|r| r.ctime),
            crtime: m.created().map(time),
            attributes: None,
            link_id: ino.map(u64::from),
            nlink: raw.map(|r| u32::from(r.links)),
            target,
            streams: Vec::new(),
            unreadable: None,
        })
    }

    fn read_dir(&mut self, path: &str) -> Result<Vec<DirEntry>, FsError> {
        let abs = absolute(path);
        let fs_type = self.fs_type;
        let iter = self.fs.read_dir(abs.as_str()).map_err(|e| map_err(fs_type, path, e))?;
        let mut out = Vec::new();
        for entry in iter {
            let entry = entry.map_err(|e| map_err(fs_type, path, e))?;
            let name = entry.file_name();
            let name = String::from_utf8_lossy(name.as_ref()).into_owned();
            if name == "." || name == ".." {
                continue;
            }
            let kind = entry.file_type().map(kind).map_err(|e| map_err(fs_type, path, e))?;
            let size = if kind == EntryKind::File {
                // One inode the reader cannot decode must not hide its directory: `metadata`
                // of that entry reports why.
                entry.metadata().map(|m| m.len()).unwrap_or(0)
            } else {
                0
            };
            out.push(DirEntry { name, kind, size });
        }
        Ok(out)
    }

    fn read_file(&mut self, path: &str, out: &mut dyn Write) -> Result<u64, FsError> {
        let abs = absolute(path);
        let mut file = self.fs.open(abs.as_str()).map_err(|e| map_err(self.fs_type, path, e))?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            let n = match file.read_bytes(&mut buf) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) => return Err(map_err(self.fs_type, path, e)),
            };
            out.write_all(&buf[..n]).map_err(|source| FsError::Io { path: path.into(), source })?;
            total += n as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::fs;
    use std::os::unix::fs::MetadataExt;
    use std::path::PathBuf;
    use std::process::Command;
    use std::sync::OnceLock;

    use super::*;
    use crate::fs::testimg;

    /// An ext4 image built with `mkfs.ext4 -d` from a tree with owners, modes, times, a symlink,
    /// a hard link and a FIFO; plus what `stat` said about the tree and `debugfs` about the
    /// image's inode numbers.
    struct Fixture {
        _dir: tempfile::TempDir,
        image: PathBuf,
        tree: PathBuf,
        inodes: HashMap<String, u32>,
    }

    fn fixture() -> &'static Fixture {
        static F: OnceLock<Fixture> = OnceLock::new();
        F.get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let tree = dir.path().join("tree");
            fs::create_dir_all(tree.join("sub")).unwrap();
            fs::write(tree.join("a.txt"), "hello\n").unwrap();
            fs::hard_link(tree.join("a.txt"), tree.join("sub/hard.txt")).unwrap();
            fs::write(tree.join("Ünïcødé_文件.txt"), "unicode").unwrap();
            std::os::unix::fs::symlink("a.txt", tree.join("link")).unwrap();
            testimg::run(Command::new("mkfifo").arg(tree.join("fifo")));
            testimg::run(Command::new("chown").arg("1234:5678").arg(tree.join("a.txt")));
            testimg::run(Command::new("chmod").arg("4750").arg(tree.join("a.txt")));
            testimg::run(Command::new("chmod").arg("700").arg(tree.join("sub")));
            testimg::run(
                Command::new("touch")
                    .args(["-h", "-d", "2020-01-02 03:04:05"])
                    .arg(tree.join("a.txt"))
                    .arg(tree.join("link")),
            );
            let image = dir.path().join("ext4.img");
            testimg::mkext4(&image, 16 << 20, &tree, "EXTFIX");
            // `debugfs -R "ls -l DIR"`: inode number first, name last.
            let mut inodes = HashMap::new();
            for d in ["/", "/sub"] {
                let out = testimg::run(Command::new("debugfs").args(["-R", &format!("ls -l {d}")]).arg(&image));
                for line in out.lines() {
                    let words: Vec<&str> = line.split_whitespace().collect();
                    if let (Some(ino), Some(name)) = (words.first().and_then(|w| w.parse().ok()), words.last()) {
                        inodes.insert(format!("{}/{}", d.trim_end_matches('/'), unescape(name)), ino);
                    }
                }
            }
            Fixture { _dir: dir, image, tree, inodes }
        })
    }

    /// debugfs prints non-ASCII bytes of names as `\xHH`.
    fn unescape(name: &str) -> String {
        let b = name.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            let hex = b.get(i + 2..i + 4).and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
            match hex {
                Some(v) if b[i] == b'\\' && b[i + 1] == b'x' => {
                    out.push(v);
                    i += 4;
                }
                _ => {
                    out.push(b[i]);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    fn reader(f: &Fixture) -> Box<dyn FsReader> {
        testimg::open(&f.image, "ext4")
    }

    fn src_stat(f: &Fixture, rel: &str) -> fs::Metadata {
        fs::symlink_metadata(f.tree.join(rel)).unwrap()
    }

    #[test]
    fn inode_number_from_debug_output() {
        // Pins the `Debug` format of ext4-view's `File` that `inode_of` relies on.
        let f = fixture();
        let range = RangeReader::whole(std::sync::Arc::new(crate::disk::device::Device::open(&f.image).unwrap()));
        let fs = Ext4::load(Box::new(range)).unwrap();
        for p in ["/a.txt", "/sub/hard.txt", "/Ünïcødé_文件.txt"] {
            let file = fs.open(p).unwrap();
            assert!(format!("{file:?}").starts_with("File { inode: "), "{file:?}");
            assert_eq!(inode_of(&file), f.inodes.get(p).copied(), "{p}: {file:?} vs {:?}", f.inodes);
        }
    }

    #[test]
    fn metadata_matches_the_source_tree() {
        let f = fixture();
        let mut r = reader(f);
        let a = r.metadata("/a.txt").unwrap();
        let st = src_stat(f, "a.txt");
        assert_eq!((a.kind, a.size), (EntryKind::File, 6));
        assert_eq!((a.mode, a.uid, a.gid), (Some(0o4750), Some(1234), Some(5678)));
        // mkfs.ext4 -d copies whole seconds.
        assert_eq!(a.mtime, Some(Time { secs: st.mtime(), nanos: 0 }));
        assert_eq!(a.mtime.unwrap().secs, 1_577_934_245);
        // (The source's atime moved when mkfs read it.)
        assert_eq!(a.atime.map(|t| t.secs), Some(1_577_934_245));
        assert_eq!(a.ctime.map(|t| t.secs), Some(st.ctime()));
        assert!(a.crtime.is_some());
        assert_eq!(a.link_id, Some(u64::from(f.inodes["/a.txt"])));
        assert_eq!(a.nlink, Some(2));
        assert_eq!((a.attributes, a.target.as_ref(), a.unreadable.as_ref()), (None, None, None));
        assert!(a.streams.is_empty());

        let h = r.metadata("/sub/hard.txt").unwrap();
        assert_eq!((h.link_id, h.nlink), (a.link_id, Some(2)));
        let u = r.metadata("/Ünïcødé_文件.txt").unwrap();
        assert_eq!((u.nlink, u.size), (Some(1), 7));
        assert_ne!(u.link_id, a.link_id);

        let l = r.metadata("/link").unwrap();
        assert_eq!((l.kind, l.target.as_deref(), l.size), (EntryKind::Symlink, Some("a.txt"), 0));
        assert_eq!(l.mode, Some(0o777));
        assert_eq!(l.mtime.map(|t| t.secs), Some(src_stat(f, "link").mtime()));
        // stat() follows the link; metadata() does not.
        assert_eq!(r.stat("/link").unwrap().kind, EntryKind::File);

        let d = r.metadata("/sub").unwrap();
        assert_eq!((d.kind, d.mode, d.size), (EntryKind::Dir, Some(0o700), 0));
        assert_eq!(r.metadata("/fifo").unwrap().kind, EntryKind::Other);
        assert_eq!(r.metadata("/").unwrap().kind, EntryKind::Dir);
        assert!(matches!(r.metadata("/nope"), Err(FsError::NotFound { .. })));
    }

    #[test]
    fn raw_inode_must_agree_with_ext4_view() {
        let f = fixture();
        let range = RangeReader::whole(std::sync::Arc::new(crate::disk::device::Device::open(&f.image).unwrap()));
        let mut raw = RawInodes::new(range).unwrap();
        let ino = f.inodes["/a.txt"];
        let r = raw.inode(ino).unwrap();
        assert_eq!((r.mode, r.uid, r.gid, r.size, r.links), (0o104750, 1234, 5678, 6, 2));
        assert_eq!(raw.inode(0), None);
        assert_eq!(raw.inode(u32::MAX), None);
        let fs = Ext4::load(Box::new(RangeReader::whole(std::sync::Arc::new(
            crate::disk::device::Device::open(&f.image).unwrap(),
        ))))
        .unwrap();
        let m = fs.symlink_metadata("/a.txt").unwrap();
        assert!(raw_agrees(&r, &m));
        let other = raw.inode(f.inodes["/Ünïcødé_文件.txt"]).unwrap();
        assert!(!raw_agrees(&other, &m));
    }

    #[test]
    fn ext_times() {
        assert_eq!(ext_time(0xFFFF_FFFF, None), Some(Time { secs: -1, nanos: 0 }));
        assert_eq!(ext_time(5, Some((7 << 2) | 1)), Some(Time { secs: 5 + (1 << 32), nanos: 7 }));
        assert_eq!(ext_time(5, Some(0xFFFF_FFFC)), None);
    }
}
