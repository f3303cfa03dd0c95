//! ext2/3/4 through `ext4-view` (which replays the journal in memory and checks
//! `metadata_csum`). It refuses `inline_data`, `casefold`, `meta_bg` and encrypted directories;
//! those come back as [`FsError::Unsupported`].
//!
//! `ext4-view` 1.0 keeps inode numbers, link counts, the change time, the block count and the
//! extended attributes to itself. The vendored copy (`pe/vendor/ext4-view`, see the workspace
//! `Cargo.toml`) hands out an inode's number and raw record, and raw blocks, through its own
//! journal replay and checksum checks; [`InodeFields`] reads those fields from the record, and
//! [`super::xattr`] the attributes (in the inode after `i_extra_isize`, and in the block
//! `i_file_acl` names). Names and link targets are bytes, exactly as on disk.
//!
//! Paths are resolved through a [`DirIndex`] of the inode numbers listings gave: a walk reads
//! each directory once and each inode by number. Only a path through a symbolic link goes
//! through `ext4-view`'s own resolution from the root.

use std::io::{self, Write};

use ext4_view::{Ext4, Ext4Error, RawInode};

use super::dir_index::{DirIndex, Listed, Resolved};
use super::range::RangeReader;
use super::xattr::{self, Xattrs};
use super::{shown, Bytes, DirEntry, EntryKind, FsError, FsReader, Metadata, Time};

pub struct Ext4Reader {
    fs: Ext4,
    fs_type: &'static str,
    /// The `huge_file` feature: block counts may be in filesystem blocks and use 48 bits.
    huge_file: bool,
    index: DirIndex,
}

/// The root directory's inode.
const ROOT_INODE: u64 = 2;

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
        let huge_file =
            check_superblock(&mut range).map_err(|detail| FsError::Corrupt { path: "/".into(), fs: fs_type, detail })?;
        let fs = Ext4::load(Box::new(range)).map_err(|e| map_err(fs_type, b"/", e))?;
        let index = DirIndex::new(ROOT_INODE, <[u8]>::to_vec);
        Ok(Ext4Reader { fs, fs_type, huge_file, index })
    }
}

const RO_COMPAT_HUGE_FILE: u32 = 0x8;
/// `EXT4_HUGE_FILE_FL`: this inode's block count is in filesystem blocks.
const HUGE_FILE_FL: u32 = 0x4_0000;
/// Size of the original (ext2) inode; the extra fields follow.
const GOOD_OLD_INODE_SIZE: usize = 128;

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

/// The fields of a raw inode record `ext4-view` does not give.
#[derive(Debug, Clone, PartialEq, Eq)]
struct InodeFields {
    links: u16,
    ctime: Option<Time>,
    /// Bytes of blocks the inode holds (data, extent tree, its xattr block).
    allocated: u64,
    /// The external xattr block, 0 for none.
    file_acl: u64,
    /// Where the in-inode xattr area starts in the record; `None` when there is none.
    xattr_at: Option<usize>,
    /// Why the extra fields are not usable, when they are not.
    damaged: Option<String>,
}

impl InodeFields {
    /// Reads them from `rec` (at least 128 bytes: ext4-view read `inode_size` bytes, at least
    /// 128), on a filesystem of `block` bytes per block.
    fn parse(rec: &[u8], huge_file: bool, block: u64) -> InodeFields {
        let flags = le32(rec, 0x20);
        let (lo, hi) = (u64::from(le32(rec, 0x1C)), u64::from(le16(rec, 0x74)));
        let allocated = match (huge_file, flags & HUGE_FILE_FL != 0) {
            (false, _) => lo * 512,
            (true, false) => (lo | hi << 32) * 512,
            (true, true) => (lo | hi << 32).saturating_mul(block),
        };
        let file_acl = u64::from(le32(rec, 0x68)) | u64::from(le16(rec, 0x76)) << 32;
        let mut f = InodeFields {
            links: le16(rec, 0x1A),
            ctime: ext_time(le32(rec, 0xC), None),
            allocated,
            file_acl,
            xattr_at: None,
            damaged: None,
        };
        if rec.len() > GOOD_OLD_INODE_SIZE + 2 {
            let extra = usize::from(le16(rec, 0x80));
            let end = GOOD_OLD_INODE_SIZE + extra;
            if extra % 4 != 0 || end > rec.len() {
                f.damaged = Some(format!("the inode's extra size {extra} does not fit its {}-byte record", rec.len()));
                return f;
            }
            if end >= 0x88 {
                f.ctime = ext_time(le32(rec, 0xC), Some(le32(rec, 0x84)));
            }
            f.xattr_at = (end + 4 <= rec.len()).then_some(end);
        }
        f
    }
}

/// Most groups inplace will load descriptors for (4 Mi groups: 512 TiB with 4 KiB blocks).
const MAX_GROUPS: u64 = 1 << 22;

/// Sizes `ext4-view` trusts when it allocates: a garbage block count or group size would make
/// it allocate gigabytes, and an allocation failure aborts the process (no unwinding). Checks
/// them against the partition first, the way the kernel does at mount. Returns whether the
/// `huge_file` feature is on.
fn check_superblock(range: &mut RangeReader) -> Result<bool, String> {
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
    Ok(le32(0x64) as u32 & RO_COMPAT_HUGE_FILE != 0)
}

fn map_err(fs: &'static str, path: &[u8], e: Ext4Error) -> FsError {
    let path = shown(path);
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
fn absolute(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len() + 1);
    for c in super::components(path) {
        out.push(b'/');
        out.extend_from_slice(c);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

impl Ext4Reader {
    /// The extended attributes of the inode whose record is `rec`.
    fn xattrs(&self, rec: &[u8], fields: &InodeFields) -> Xattrs {
        let mut raw = Vec::new();
        let mut problems = Vec::new();
        if let Some(why) = &fields.damaged {
            problems.push(why.clone());
        }
        if let Some(at) = fields.xattr_at {
            match xattr::parse_ibody(&rec[at..]) {
                Ok(v) => raw.extend(v),
                Err(e) => problems.push(e.0),
            }
        }
        if fields.file_acl != 0 {
            match self.fs.read_raw_block(fields.file_acl) {
                Ok(block) => match xattr::parse_block(&block) {
                    Ok(v) => raw.extend(v),
                    Err(e) => problems.push(e.0),
                },
                Err(e) => problems.push(format!("the attribute block {} cannot be read: {e}", fields.file_acl)),
            }
        }
        let mut x = Xattrs::from_ext4(raw);
        x.unreadable.extend(problems);
        x
    }

    /// The inode of `path`, not following a final symbolic link.
    fn inode_at(&mut self, path: &[u8]) -> Result<RawInode, FsError> {
        let (fs, fs_type) = (&self.fs, self.fs_type);
        let comps: Vec<&[u8]> = super::components(path).collect();
        let found = self.index.resolve(&comps, |dir, number| {
            let listing = list(fs, number).map_err(|e| map_err(fs_type, &absolute(&dir.join(&b'/')), e))?;
            Ok(listing.into_iter().map(|(name, number, kind)| listed(name, number, kind)).collect())
        })?;
        let number = match found {
            Resolved::Id(n) => u32::try_from(n).map_err(|_| FsError::NotFound { path: shown(path) })?,
            Resolved::Missing => return Err(FsError::NotFound { path: shown(path) }),
            Resolved::Through => {
                let abs = absolute(path);
                self.fs.inode_record(abs.as_slice()).map_err(|e| map_err(fs_type, path, e))?.0
            }
        };
        self.fs.inode(number).map_err(|e| map_err(fs_type, path, e))
    }

    /// `path`'s inode, or when it is a symbolic link, the inode it leads to.
    fn followed(&mut self, path: &[u8], inode: RawInode) -> Result<RawInode, FsError> {
        if !inode.metadata().is_symlink() {
            return Ok(inode);
        }
        let abs = absolute(path);
        let canon = self.fs.canonicalize(abs.as_slice()).map_err(|e| map_err(self.fs_type, path, e))?;
        self.inode_at(canon.as_ref())
    }
}

/// The entries of directory inode `number` with their inode numbers and kinds, `.` and `..`
/// left out.
fn list(fs: &Ext4, number: u64) -> Result<Vec<(Vec<u8>, u32, EntryKind)>, Ext4Error> {
    let dir = fs.inode(u32::try_from(number).map_err(|_| Ext4Error::NotFound)?)?;
    let mut out = Vec::new();
    for entry in fs.read_dir_inode(&dir, ext4_view::PathBuf::empty())? {
        let entry = entry?;
        let name = entry.file_name();
        let name: &[u8] = name.as_ref();
        if name == b"." || name == b".." {
            continue;
        }
        out.push((name.to_vec(), entry.inode_number(), kind(entry.file_type()?)));
    }
    Ok(out)
}

fn listed(name: Vec<u8>, number: u32, kind: EntryKind) -> Listed {
    Listed { name, id: u64::from(number), is_dir: kind == EntryKind::Dir }
}

impl FsReader for Ext4Reader {
    fn fs_type(&self) -> &'static str {
        self.fs_type
    }

    fn label(&mut self) -> Option<String> {
        self.fs.label().to_str().ok().map(|s| s.trim_end().to_string()).filter(|s| !s.is_empty())
    }

    fn stat(&mut self, path: &[u8]) -> Result<DirEntry, FsError> {
        let inode = self.inode_at(path)?;
        let m = if inode.metadata().is_symlink() {
            let abs = absolute(path);
            self.fs.metadata(abs.as_slice()).map_err(|e| map_err(self.fs_type, path, e))?
        } else {
            inode.metadata().clone()
        };
        let name = Bytes::from(super::components(path).last().unwrap_or(b"/"));
        let kind = kind(m.file_type());
        Ok(DirEntry { name, kind, size: if kind == EntryKind::File { m.len() } else { 0 } })
    }

    fn metadata(&mut self, path: &[u8]) -> Result<Metadata, FsError> {
        let fs_type = self.fs_type;
        let inode = self.inode_at(path)?;
        let m = inode.metadata();
        let kind = kind(m.file_type());
        let target = if kind == EntryKind::Symlink {
            let t = self.fs.read_link_inode(&inode).map_err(|e| map_err(fs_type, path, e))?;
            Some(Bytes::from(t.as_ref()))
        } else {
            None
        };
        let rec = inode.record();
        let fields = InodeFields::parse(rec, self.huge_file, u64::from(self.fs.block_size()));
        let xattrs = self.xattrs(rec, &fields);
        let size = if kind == EntryKind::File { m.len() } else { 0 };
        Ok(Metadata {
            kind,
            size,
            allocated: (kind == EntryKind::File).then_some(fields.allocated),
            mode: Some(u32::from(m.mode())),
            uid: Some(m.uid()),
            gid: Some(m.gid()),
            mtime: Some(time(m.modified())),
            atime: Some(time(m.accessed())),
            ctime: fields.ctime,
            crtime: m.created().map(time),
            attributes: None,
            link_id: Some(u64::from(inode.number())),
            nlink: Some(u32::from(fields.links)),
            target,
            streams: Vec::new(),
            unreadable: None,
            xattrs,
        })
    }

    fn read_dir(&mut self, path: &[u8]) -> Result<Vec<DirEntry>, FsError> {
        let inode = self.inode_at(path)?;
        let through_link = inode.metadata().is_symlink();
        let dir = self.followed(path, inode)?;
        let found = list(&self.fs, u64::from(dir.number())).map_err(|e| map_err(self.fs_type, path, e))?;
        let mut out = Vec::with_capacity(found.len());
        for (name, number, kind) in &found {
            let size = if *kind == EntryKind::File {
                // One inode the reader cannot decode must not hide its directory: `metadata`
                // of that entry reports why.
                self.fs.inode(*number).map(|i| i.metadata().len()).unwrap_or(0)
            } else {
                0
            };
            out.push(DirEntry { name: Bytes::from(name.as_slice()), kind: *kind, size });
        }
        if !through_link {
            let comps: Vec<&[u8]> = super::components(path).collect();
            let listing: Vec<Listed> = found.into_iter().map(|(name, number, kind)| listed(name, number, kind)).collect();
            self.index.listed(&comps, u64::from(dir.number()), &listing);
        }
        Ok(out)
    }

    fn read_file(&mut self, path: &[u8], out: &mut dyn Write) -> Result<u64, FsError> {
        let inode = self.inode_at(path)?;
        let inode = self.followed(path, inode)?;
        let mut file = self.fs.open_inode(&inode).map_err(|e| map_err(self.fs_type, path, e))?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            let n = match file.read_bytes(&mut buf) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) => return Err(map_err(self.fs_type, path, e)),
            };
            out.write_all(&buf[..n]).map_err(|source| FsError::Io { path: shown(path), source })?;
            total += n as u64;
        }
    }

    fn data_position(&mut self, path: &[u8]) -> Option<u64> {
        let inode = self.inode_at(path).ok()?;
        let block = self.fs.first_data_block(&inode).ok()??;
        block.checked_mul(u64::from(self.fs.block_size()))
    }
}

fn time(t: ext4_view::Timestamp) -> Time {
    Time { secs: t.seconds(), nanos: t.nanoseconds() }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::fs;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;
    use std::path::PathBuf;
    use std::process::Command;
    use std::sync::OnceLock;

    use super::*;
    use crate::fs::testimg;
    use crate::fs::xattr::acl_text;

    /// A Latin-1 name: not UTF-8.
    const LATIN1: &[u8] = b"na\xefve-latin1.txt";
    const SPARSE_LEN: u64 = 3 << 30;

    /// An ext4 image built with `mkfs.ext4 -d` from a tree with owners, modes, times, a symlink,
    /// a hard link, a FIFO, a Latin-1 name, a sparse file, xattrs (one too big for the inode)
    /// and ACLs; plus what `stat` said about the tree and `debugfs` about the image's inode
    /// numbers.
    struct Fixture {
        _dir: tempfile::TempDir,
        image: PathBuf,
        tree: PathBuf,
        inodes: HashMap<Vec<u8>, u32>,
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
            fs::write(tree.join(std::ffi::OsStr::from_bytes(LATIN1)), "latin-1").unwrap();
            std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(b"na\xefve"), tree.join("latin-link")).unwrap();
            std::os::unix::fs::symlink("a.txt", tree.join("link")).unwrap();
            std::os::unix::fs::symlink("sub", tree.join("dirlink")).unwrap();
            let sparse = fs::File::create(tree.join("sparse.bin")).unwrap();
            sparse.set_len(SPARSE_LEN).unwrap();
            std::os::unix::fs::FileExt::write_all_at(&sparse, b"DATA", SPARSE_LEN - 4).unwrap();
            drop(sparse);
            testimg::run(Command::new("mkfifo").arg(tree.join("fifo")));
            testimg::run(Command::new("chown").arg("1234:5678").arg(tree.join("a.txt")));
            testimg::run(Command::new("chmod").arg("4750").arg(tree.join("a.txt")));
            testimg::run(Command::new("chmod").arg("700").arg(tree.join("sub")));
            fs::write(tree.join("tagged.txt"), "tagged").unwrap();
            testimg::setfattr(&tree.join("tagged.txt"), "user.comment", "checked");
            testimg::setfattr(&tree.join("tagged.txt"), "user.big", &"x".repeat(300));
            testimg::run(Command::new("chmod").arg("750").arg(tree.join("tagged.txt")));
            testimg::run(Command::new("setfacl").args(["-m", "u:4321:rw-,g:99:r--"]).arg(tree.join("tagged.txt")));
            testimg::run(Command::new("setfacl").args(["-d", "-m", "u:4321:r-x"]).arg(tree.join("sub")));
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
                        let mut p = format!("{}/", d.trim_end_matches('/')).into_bytes();
                        p.extend_from_slice(&unescape(name));
                        inodes.insert(p, ino);
                    }
                }
            }
            Fixture { _dir: dir, image, tree, inodes }
        })
    }

    /// debugfs prints non-ASCII bytes of names as `\xHH` (and `M-` forms for some).
    fn unescape(name: &str) -> Vec<u8> {
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
        out
    }

    fn reader(f: &Fixture) -> Box<dyn FsReader> {
        testimg::open(&f.image, "ext4")
    }

    fn src_stat(f: &Fixture, rel: &str) -> fs::Metadata {
        fs::symlink_metadata(f.tree.join(rel)).unwrap()
    }

    #[test]
    fn inode_numbers_are_the_ones_debugfs_shows() {
        let f = fixture();
        let mut r = reader(f);
        let mut checked = 0;
        for (p, ino) in &f.inodes {
            if p.ends_with(b"/.") || p.ends_with(b"/..") {
                continue;
            }
            assert_eq!(r.metadata(p).unwrap().link_id, Some(u64::from(*ino)), "{}", String::from_utf8_lossy(p));
            checked += 1;
        }
        assert!(checked >= 8, "{:?}", f.inodes);
        assert_eq!(r.metadata(b"/").unwrap().link_id, Some(2));
    }

    #[test]
    fn metadata_matches_the_source_tree() {
        let f = fixture();
        let mut r = reader(f);
        let a = r.metadata(b"/a.txt").unwrap();
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
        assert_eq!(a.link_id, Some(u64::from(f.inodes[b"/a.txt".as_slice()])));
        assert_eq!(a.nlink, Some(2));
        assert_eq!((a.attributes, a.target.as_ref(), a.unreadable.as_ref()), (None, None, None));
        assert!(a.streams.is_empty());

        let h = r.metadata(b"/sub/hard.txt").unwrap();
        assert_eq!((h.link_id, h.nlink), (a.link_id, Some(2)));
        let u = r.metadata("/Ünïcødé_文件.txt".as_bytes()).unwrap();
        assert_eq!((u.nlink, u.size), (Some(1), 7));
        assert_ne!(u.link_id, a.link_id);

        let l = r.metadata(b"/link").unwrap();
        assert_eq!((l.kind, l.target.as_ref().map(Bytes::as_bytes), l.size), (EntryKind::Symlink, Some(b"a.txt".as_slice()), 0));
        assert_eq!(l.mode, Some(0o777));
        assert_eq!(l.mtime.map(|t| t.secs), Some(src_stat(f, "link").mtime()));
        // stat() follows the link; metadata() does not.
        assert_eq!(r.stat(b"/link").unwrap().kind, EntryKind::File);

        let d = r.metadata(b"/sub").unwrap();
        assert_eq!((d.kind, d.mode, d.size), (EntryKind::Dir, Some(0o700), 0));
        assert_eq!(r.metadata(b"/fifo").unwrap().kind, EntryKind::Other);
        assert_eq!(r.metadata(b"/").unwrap().kind, EntryKind::Dir);
        assert!(matches!(r.metadata(b"/nope"), Err(FsError::NotFound { .. })));
    }

    #[test]
    fn paths_through_links_and_dot_dot_resolve_as_the_kernel_would() {
        let f = fixture();
        let mut r = reader(f);
        // A final link: `stat` and `read_file` follow it, `metadata` does not.
        assert_eq!(r.stat(b"/link").unwrap().kind, EntryKind::File);
        assert_eq!(r.metadata(b"/link").unwrap().kind, EntryKind::Symlink);
        assert_eq!(r.read_small(b"/link", 100).unwrap(), b"hello\n");
        // A link to a directory in the middle of a path, and as the directory listed.
        assert_eq!(r.read_small(b"/dirlink/hard.txt", 100).unwrap(), b"hello\n");
        let names: Vec<Bytes> = r.read_dir(b"/dirlink").unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(names, vec![Bytes::from("hard.txt")]);
        // `..` and a missing name under a listed directory.
        assert_eq!(r.read_small(b"/sub/../a.txt", 100).unwrap(), b"hello\n");
        assert!(matches!(r.metadata(b"/sub/nothing"), Err(FsError::NotFound { .. })));
        assert!(matches!(r.read_dir(b"/a.txt"), Err(FsError::NotADirectory { .. })));
        assert!(matches!(r.metadata(b"/a.txt/x"), Err(FsError::NotADirectory { .. } | FsError::NotFound { .. })));
    }

    #[test]
    fn names_and_link_targets_are_exact_bytes() {
        let f = fixture();
        let mut r = reader(f);
        let names: Vec<Bytes> = r.read_dir(b"/").unwrap().into_iter().map(|e| e.name).collect();
        assert!(names.iter().any(|n| n.as_bytes() == LATIN1), "{names:?}");
        let path = [b"/".as_slice(), LATIN1].concat();
        let m = r.metadata(&path).unwrap();
        assert_eq!((m.kind, m.size), (EntryKind::File, 7));
        assert_eq!(r.read_small(&path, 100).unwrap(), b"latin-1");
        assert_eq!(r.metadata(b"/latin-link").unwrap().target.unwrap().as_bytes(), b"na\xefve");
        // The lossy form of the name is another name, which does not exist.
        let lossy = format!("/{}", String::from_utf8_lossy(LATIN1));
        let e = r.metadata(lossy.as_bytes()).unwrap_err();
        assert!(matches!(e, FsError::NotFound { .. }), "{e}");
        let e = r.read_file(b"/na\xefve-missing", &mut Vec::new()).unwrap_err();
        assert!(e.to_string().contains("na\\xefve-missing"), "shown escaped: {e}");
    }

    #[test]
    fn sparse_files_report_their_allocated_blocks() {
        let f = fixture();
        let mut r = reader(f);
        // debugfs's `Blockcount` is in 512-byte units.
        let blockcount = |p: &str| -> u64 {
            let st = testimg::run(Command::new("debugfs").args(["-R", &format!("stat {p}")]).arg(&f.image));
            st.split("Blockcount: ").nth(1).unwrap().split_whitespace().next().unwrap().parse::<u64>().unwrap() * 512
        };
        let s = r.metadata(b"/sparse.bin").unwrap();
        assert_eq!(s.size, SPARSE_LEN);
        let allocated = s.allocated.unwrap();
        assert_eq!(allocated, blockcount("/sparse.bin"));
        assert!(allocated > 0 && allocated <= 64 << 10, "{allocated} bytes allocated");
        let a = r.metadata(b"/a.txt").unwrap();
        assert_eq!(a.allocated, Some(blockcount("/a.txt")));
        let t = r.metadata(b"/tagged.txt").unwrap();
        // One data block and the external attribute block (user.big does not fit the inode).
        assert_eq!(t.allocated, Some(blockcount("/tagged.txt")));
        assert_eq!(t.allocated, Some(2 * a.allocated.unwrap()), "{:?}", t.allocated);
        assert_eq!(r.metadata(b"/sub").unwrap().allocated, None);
    }

    #[test]
    fn xattrs_and_acls_from_the_inode_and_the_attribute_block() {
        let f = fixture();
        let mut r = reader(f);
        let a = r.metadata(b"/tagged.txt").unwrap();
        let x = &a.xattrs;
        assert!(x.unreadable.is_empty(), "{x:?}");
        assert_eq!(a.mode, Some(0o770), "the mask is the group bits");
        let get = |n: &str| x.attrs.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        assert_eq!(get("user.comment").as_deref(), Some(b"checked".as_slice()));
        assert_eq!(get("user.big"), Some(vec![b'x'; 300]));
        let access: Vec<String> = x.acl_access.as_ref().unwrap().iter().map(acl_text).collect();
        assert_eq!(access, ["user::rwx", "user:4321:rw-", "group::r-x", "group:99:r--", "mask::rwx", "other::---"]);
        assert_eq!(x.acl_default, None);
        let d = r.metadata(b"/sub").unwrap();
        let default: Vec<String> = d.xattrs.acl_default.as_ref().unwrap().iter().map(acl_text).collect();
        assert_eq!(default, ["user::rwx", "user:4321:r-x", "group::---", "mask::r-x", "other::---"]);
        assert!(r.metadata("/Ünïcødé_文件.txt".as_bytes()).unwrap().xattrs.is_empty());
        assert!(r.metadata(b"/a.txt").unwrap().xattrs.is_empty());
    }

    #[test]
    fn inode_record_fields() {
        let mut rec = vec![0u8; 256];
        rec[0x1A] = 3;
        rec[0x1C..0x20].copy_from_slice(&16u32.to_le_bytes());
        rec[0x74..0x76].copy_from_slice(&1u16.to_le_bytes());
        rec[0x68..0x6C].copy_from_slice(&77u32.to_le_bytes());
        rec[0x80..0x82].copy_from_slice(&32u16.to_le_bytes());
        let f = InodeFields::parse(&rec, false, 4096);
        assert_eq!((f.links, f.allocated, f.file_acl, f.xattr_at, f.damaged), (3, 16 * 512, 77, Some(160), None));
        assert_eq!(InodeFields::parse(&rec, true, 4096).allocated, ((1u64 << 32) | 16) * 512);
        rec[0x20..0x24].copy_from_slice(&HUGE_FILE_FL.to_le_bytes());
        assert_eq!(InodeFields::parse(&rec, true, 4096).allocated, ((1u64 << 32) | 16) * 4096);
        rec[0x80..0x82].copy_from_slice(&200u16.to_le_bytes());
        assert!(InodeFields::parse(&rec, false, 4096).damaged.is_some());
        assert_eq!(InodeFields::parse(&rec[..128], false, 4096).xattr_at, None);
    }

    #[test]
    fn ext_times() {
        assert_eq!(ext_time(0xFFFF_FFFF, None), Some(Time { secs: -1, nanos: 0 }));
        assert_eq!(ext_time(5, Some((7 << 2) | 1)), Some(Time { secs: 5 + (1 << 32), nanos: 7 }));
        assert_eq!(ext_time(5, Some(0xFFFF_FFFC)), None);
    }
}
