//! For unit tests of selection, capture and restore: an in-memory filesystem behind
//! [`FsReader`], and an empty store volume.

use std::collections::BTreeMap;
use std::io::Write;

use crate::fs::xattr::Xattrs;
use crate::fs::{Bytes, DirEntry, EntryKind, FsError, FsReader, Metadata, Time};

/// A sparse image file of `mib` MiB formatted FAT32 like a carved store, in a temp dir.
pub fn store_image(mib: u64) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.img");
    let f = std::fs::OpenOptions::new().create(true).truncate(true).read(true).write(true).open(&path).unwrap();
    f.set_len(mib << 20).unwrap();
    crate::carve::store::format(&f, 0, mib << 20, 512, 0x1234_5678).unwrap();
    (dir, path)
}

#[derive(Debug, Clone)]
struct Node {
    meta: Metadata,
    data: Vec<u8>,
}

/// Files, directories (implied by paths) and links, with metadata set by the test. Paths are
/// bytes, as on ext4.
#[derive(Debug, Default, Clone)]
pub struct MemFs {
    nodes: BTreeMap<Vec<u8>, Node>,
    next_id: u64,
}

fn meta(kind: EntryKind, size: u64, uid: u32, gid: u32, id: u64) -> Metadata {
    Metadata {
        size,
        allocated: (kind == EntryKind::File).then_some(size),
        mode: Some(if kind == EntryKind::Dir { 0o755 } else { 0o644 }),
        uid: Some(uid),
        gid: Some(gid),
        mtime: Some(Time { secs: 1_700_000_000 + id as i64, nanos: 0 }),
        link_id: Some(id),
        nlink: Some(1),
        ..Metadata::empty(kind)
    }
}

impl MemFs {
    fn add(&mut self, path: &[u8], node: Node) {
        let mut dir = Vec::new();
        let parts: Vec<&[u8]> = crate::fs::components(path).collect();
        for part in parts.split_last().unwrap().1 {
            dir.push(b'/');
            dir.extend_from_slice(part);
            self.next_id += 1;
            let m = meta(EntryKind::Dir, 0, 0, 0, self.next_id);
            self.nodes.entry(dir.clone()).or_insert(Node { meta: m, data: Vec::new() });
        }
        self.nodes.insert(Self::norm(path), node);
    }

    /// A regular file with `data`, owned by `uid`:`gid`.
    pub fn file(&mut self, path: impl AsRef<[u8]>, data: &[u8], uid: u32, gid: u32) {
        self.next_id += 1;
        let m = meta(EntryKind::File, data.len() as u64, uid, gid, self.next_id);
        self.add(path.as_ref(), Node { meta: m, data: data.to_vec() });
    }

    /// A second name for the file at `existing`.
    pub fn hard_link(&mut self, existing: impl AsRef<[u8]>, new: impl AsRef<[u8]>) {
        let node = self.nodes.get_mut(&Self::norm(existing.as_ref())).expect("existing file");
        node.meta.nlink = Some(node.meta.nlink.unwrap_or(1) + 1);
        let node = node.clone();
        self.add(new.as_ref(), node);
    }

    pub fn symlink(&mut self, path: impl AsRef<[u8]>, target: impl AsRef<[u8]>, uid: u32, gid: u32) {
        self.next_id += 1;
        let mut m = meta(EntryKind::Symlink, 0, uid, gid, self.next_id);
        m.target = Some(Bytes::from(target.as_ref()));
        self.add(path.as_ref(), Node { meta: m, data: Vec::new() });
    }

    /// Gives the file at `path` named data streams.
    pub fn streams(&mut self, path: &str, streams: &[(&str, u64)]) {
        let node = self.nodes.get_mut(&Self::norm(path.as_bytes())).expect("file");
        node.meta.streams = streams.iter().map(|(n, s)| (n.to_string(), *s)).collect();
    }

    /// A file whose data the reader cannot read, for `why`.
    pub fn unreadable(&mut self, path: &str, why: &str) {
        self.file(path, b"", 0, 0);
        self.nodes.get_mut(&Self::norm(path.as_bytes())).unwrap().meta.unreadable = Some(why.to_string());
    }

    /// Sets the modification time of `path`.
    pub fn set_mtime(&mut self, path: &str, secs: i64) {
        self.nodes.get_mut(&Self::norm(path.as_bytes())).expect("path").meta.mtime = Some(Time { secs, nanos: 0 });
    }

    /// A sparse file of `size` bytes: `head`, then zeros the volume does not store.
    pub fn sparse(&mut self, path: &str, head: &[u8], size: u64, uid: u32, gid: u32) {
        self.file(path, head, uid, gid);
        let m = &mut self.nodes.get_mut(&Self::norm(path.as_bytes())).expect("path").meta;
        m.size = size;
        m.allocated = Some(head.len().div_ceil(4096) as u64 * 4096);
    }

    /// Says the file at `path` keeps only `allocated` bytes of data on the volume (a sparse
    /// file: the rest reads as zeros).
    pub fn set_allocated(&mut self, path: &str, allocated: u64) {
        self.nodes.get_mut(&Self::norm(path.as_bytes())).expect("path").meta.allocated = Some(allocated);
    }

    /// The extended attributes and ACLs of `path`.
    pub fn xattrs(&mut self, path: impl AsRef<[u8]>) -> &mut Xattrs {
        &mut self.nodes.get_mut(&Self::norm(path.as_ref())).expect("path").meta.xattrs
    }

    fn norm(path: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for c in crate::fs::components(path) {
            out.push(b'/');
            out.extend_from_slice(c);
        }
        if out.is_empty() {
            out.push(b'/');
        }
        out
    }

    fn node(&self, path: &[u8]) -> Result<&Node, FsError> {
        self.nodes.get(&Self::norm(path)).ok_or_else(|| FsError::NotFound { path: crate::fs::bytes::show(path) })
    }
}

impl FsReader for MemFs {
    fn fs_type(&self) -> &'static str {
        "memfs"
    }
    fn label(&mut self) -> Option<String> {
        None
    }
    fn stat(&mut self, path: &[u8]) -> Result<DirEntry, FsError> {
        if Self::norm(path) == b"/" {
            return Ok(DirEntry { name: Bytes::from("/"), kind: EntryKind::Dir, size: 0 });
        }
        let n = self.node(path)?;
        let name = Bytes::from(crate::fs::components(path).last().unwrap_or(b"/"));
        Ok(DirEntry { name, kind: n.meta.kind, size: n.meta.size })
    }
    fn metadata(&mut self, path: &[u8]) -> Result<Metadata, FsError> {
        Ok(self.node(path)?.meta.clone())
    }
    fn read_dir(&mut self, path: &[u8]) -> Result<Vec<DirEntry>, FsError> {
        let dir = Self::norm(path);
        if dir != b"/" && self.node(path)?.meta.kind != EntryKind::Dir {
            return Err(FsError::NotADirectory { path: crate::fs::bytes::show(path) });
        }
        let prefix = if dir == b"/" { b"/".to_vec() } else { [dir.as_slice(), b"/"].concat() };
        Ok(self
            .nodes
            .iter()
            .filter_map(|(p, n)| {
                let rest = p.strip_prefix(prefix.as_slice())?;
                (!rest.is_empty() && !rest.contains(&b'/'))
                    .then(|| DirEntry { name: Bytes::from(rest), kind: n.meta.kind, size: n.meta.size })
            })
            .collect())
    }
    fn read_file(&mut self, path: &[u8], out: &mut dyn Write) -> Result<u64, FsError> {
        let shown = crate::fs::bytes::show(path);
        let n = self.node(path)?;
        if n.meta.kind == EntryKind::Dir {
            return Err(FsError::IsADirectory { path: shown });
        }
        if let Some(why) = &n.meta.unreadable {
            return Err(FsError::Unsupported { path: shown, fs: "memfs", what: why.clone() });
        }
        if n.data.len() as u64 != n.meta.size {
            // A sparse file made by `sparse`: zeros up to its size after the data.
            out.write_all(&n.data).map_err(|source| FsError::Io { path: shown.clone(), source })?;
            let zeros = vec![0u8; 1 << 20];
            let mut left = n.meta.size - n.data.len() as u64;
            while left > 0 {
                let k = left.min(zeros.len() as u64) as usize;
                out.write_all(&zeros[..k]).map_err(|source| FsError::Io { path: shown.clone(), source })?;
                left -= k as u64;
            }
            return Ok(n.meta.size);
        }
        out.write_all(&n.data).map_err(|source| FsError::Io { path: shown, source })?;
        Ok(n.data.len() as u64)
    }
}
