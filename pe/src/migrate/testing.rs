//! For unit tests of selection, capture and restore: an in-memory filesystem behind
//! [`FsReader`], and an empty store volume.

use std::collections::BTreeMap;
use std::io::Write;

use crate::fs::{DirEntry, EntryKind, FsError, FsReader, Metadata, Time};

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

/// Files, directories (implied by paths) and links, with metadata set by the test.
#[derive(Debug, Default, Clone)]
pub struct MemFs {
    nodes: BTreeMap<String, Node>,
    next_id: u64,
}

fn meta(kind: EntryKind, size: u64, uid: u32, gid: u32, id: u64) -> Metadata {
    Metadata {
        kind,
        size,
        mode: Some(if kind == EntryKind::Dir { 0o755 } else { 0o644 }),
        uid: Some(uid),
        gid: Some(gid),
        mtime: Some(Time { secs: 1_700_000_000 + id as i64, nanos: 0 }),
        atime: None,
        ctime: None,
        crtime: None,
        attributes: None,
        link_id: Some(id),
        nlink: Some(1),
        target: None,
        streams: Vec::new(),
        unreadable: None,
    }
}

impl MemFs {
    fn add(&mut self, path: &str, node: Node) {
        let mut dir = String::new();
        for part in path.trim_start_matches('/').split('/').collect::<Vec<_>>().split_last().unwrap().1 {
            dir = format!("{dir}/{part}");
            self.next_id += 1;
            let m = meta(EntryKind::Dir, 0, 0, 0, self.next_id);
            self.nodes.entry(dir.clone()).or_insert(Node { meta: m, data: Vec::new() });
        }
        self.nodes.insert(path.to_string(), node);
    }

    /// A regular file with `data`, owned by `uid`:`gid`.
    pub fn file(&mut self, path: &str, data: &[u8], uid: u32, gid: u32) {
        self.next_id += 1;
        let m = meta(EntryKind::File, data.len() as u64, uid, gid, self.next_id);
        self.add(path, Node { meta: m, data: data.to_vec() });
    }

    /// A second name for the file at `existing`.
    pub fn hard_link(&mut self, existing: &str, new: &str) {
        let node = self.nodes.get_mut(existing).expect("existing file");
        node.meta.nlink = Some(node.meta.nlink.unwrap_or(1) + 1);
        let node = node.clone();
        self.add(new, node);
    }

    pub fn symlink(&mut self, path: &str, target: &str, uid: u32, gid: u32) {
        self.next_id += 1;
        let mut m = meta(EntryKind::Symlink, 0, uid, gid, self.next_id);
        m.target = Some(target.to_string());
        self.add(path, Node { meta: m, data: Vec::new() });
    }

    /// Gives the file at `path` named data streams.
    pub fn streams(&mut self, path: &str, streams: &[(&str, u64)]) {
        let node = self.nodes.get_mut(path).expect("file");
        node.meta.streams = streams.iter().map(|(n, s)| (n.to_string(), *s)).collect();
    }

    /// A file whose data the reader cannot read, for `why`.
    pub fn unreadable(&mut self, path: &str, why: &str) {
        self.file(path, b"", 0, 0);
        self.nodes.get_mut(path).unwrap().meta.unreadable = Some(why.to_string());
    }

    /// Sets the modification time of `path`.
    pub fn set_mtime(&mut self, path: &str, secs: i64) {
        self.nodes.get_mut(path).expect("path").meta.mtime = Some(Time { secs, nanos: 0 });
    }

    fn norm(path: &str) -> String {
        let parts: Vec<&str> = crate::fs::components(path).collect();
        format!("/{}", parts.join("/"))
    }

    fn node(&self, path: &str) -> Result<&Node, FsError> {
        self.nodes.get(&Self::norm(path)).ok_or_else(|| FsError::NotFound { path: path.into() })
    }
}

impl FsReader for MemFs {
    fn fs_type(&self) -> &'static str {
        "memfs"
    }
    fn label(&mut self) -> Option<String> {
        None
    }
    fn stat(&mut self, path: &str) -> Result<DirEntry, FsError> {
        if Self::norm(path) == "/" {
            return Ok(DirEntry { name: "/".into(), kind: EntryKind::Dir, size: 0 });
        }
        let n = self.node(path)?;
        let name = crate::fs::components(path).last().unwrap_or("/").to_string();
        Ok(DirEntry { name, kind: n.meta.kind, size: n.meta.size })
    }
    fn metadata(&mut self, path: &str) -> Result<Metadata, FsError> {
        Ok(self.node(path)?.meta.clone())
    }
    fn read_dir(&mut self, path: &str) -> Result<Vec<DirEntry>, FsError> {
        let dir = Self::norm(path);
        if dir != "/" && self.node(path)?.meta.kind != EntryKind::Dir {
            return Err(FsError::NotADirectory { path: path.into() });
        }
        let prefix = if dir == "/" { "/".to_string() } else { format!("{dir}/") };
        Ok(self
            .nodes
            .iter()
            .filter_map(|(p, n)| {
                let rest = p.strip_prefix(&prefix)?;
                (!rest.is_empty() && !rest.contains('/')).then(|| DirEntry { name: rest.into(), kind: n.meta.kind, size: n.meta.size })
            })
            .collect())
    }
    fn read_file(&mut self, path: &str, out: &mut dyn Write) -> Result<u64, FsError> {
        let n = self.node(path)?;
        if n.meta.kind == EntryKind::Dir {
            return Err(FsError::IsADirectory { path: path.into() });
        }
        if let Some(why) = &n.meta.unreadable {
            return Err(FsError::Unsupported { path: path.into(), fs: "memfs", what: why.clone() });
        }
        out.write_all(&n.data).map_err(|source| FsError::Io { path: path.into(), source })?;
        Ok(n.data.len() as u64)
    }
}
