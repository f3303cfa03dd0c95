//! Opening a store: a FAT32 volume given as an image file or partition device, or found on
//! a whole disk by its locator; mounting it with fatfs for each operation; small files.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::dir::{append_in, read_in, write_in, Dir};
use super::error::StoreError;
use super::fat::{Extent, Geometry};
use super::format::{self, CaptureName};
pub(crate) use super::io::VolumeIo;
use super::io::{Disk, IoCache, WriteBudget};
use super::manifest::{Manifest, MAX_MANIFEST_BYTES};
use crate::disk::device::{Access, DeviceError};
use crate::disk::write::RwDevice;

/// The mounted volume, borrowed from a [`Store`].
pub(crate) type Fs<'a> = fatfs::FileSystem<VolumeIo<'a>>;

/// A store opened for reading, or for reading and writing.
pub struct Store {
    file: File,
    path: PathBuf,
    /// Byte range of the FAT volume within `file`.
    start: u64,
    len: u64,
    writable: bool,
    kind: StoreKind,
    /// The capture that the capture-level calls act on ([`Store::select`]).
    capture: CaptureName,
    geometry: Geometry,
    budget: Option<WriteBudget>,
    /// FAT blocks and pending data writes, shared by the mounts of this store.
    cache: IoCache,
    /// Where each segment's bytes are, by segment number (filled on first read).
    pub(super) maps: HashMap<u32, SegmentMap>,
    /// Buffers and zstd context of [`Store::read_entry`], kept between calls.
    pub(super) scratch: Option<super::record::Scratch>,
    /// Volume offset of the first read through fatfs after a reset (one mount at a time):
    /// how the first cluster of a file or directory is learned.
    probe: AtomicU64,
}

/// How the store was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreKind {
    /// The path is the FAT32 volume itself (an image file or a partition device).
    Volume,
    /// The path is a whole disk; its store was found by the locator.
    Disk { store_start: u64, job_name: String },
}

/// Whether the store holds the selected capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureState {
    /// No data in the capture's directory.
    Empty,
    /// Started but not finished: a resume state (`progress.json`) and some segments.
    InProgress { segments_done: u32 },
    /// A manifest and its SHA-256 are present (not yet verified).
    Complete,
}

/// Where a segment file's bytes are in the volume.
pub(crate) struct SegmentMap {
    pub size: u64,
    extents: Vec<Extent>,
}

impl SegmentMap {
    /// Volume offset of segment byte `offset` (tests that damage a segment on purpose).
    #[cfg(test)]
    pub fn volume_offset(&self, offset: u64) -> Option<u64> {
        let e = self.extents.iter().find(|e| e.file_offset <= offset && offset < e.file_offset + e.len)?;
        Some(e.volume_offset + offset - e.file_offset)
    }

    /// Fills `buf` from byte `offset` of the segment.
    pub fn read_at(&self, file: &File, start: u64, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        if offset.checked_add(buf.len() as u64).is_none_or(|e| e > self.size) {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end of the segment"));
        }
        let mut done = 0usize;
        let first = self.extents.partition_point(|e| e.file_offset + e.len <= offset);
        for e in &self.extents[first..] {
            if done == buf.len() {
                break;
            }
            let at = offset + done as u64;
            let within = at - e.file_offset;
            let n = ((e.len - within) as usize).min(buf.len() - done);
            file.read_exact_at(&mut buf[done..done + n], start + e.volume_offset + within)?;
            done += n;
        }
        Ok(())
    }
}

fn io_at(store: &str, what: impl Into<String>) -> impl FnOnce(io::Error) -> StoreError + '_ {
    let what = what.into();
    move |source| StoreError::Io { store: store.to_string(), what, source }
}

impl Store {
    /// Opens `path`: a FAT32 volume (an image file or a partition device: a FAT32 boot
    /// sector at byte 0), or a whole disk whose store is found by its locator. With
    /// `writable`, a partition device is opened exclusively (it must not be mounted). The
    /// store opens on its first capture ([`Store::select`] another).
    pub fn open(path: &Path, writable: bool) -> crate::error::Result<Store> {
        Store::open_store(path, writable).map_err(|e| e.error(crate::step::Step::Inspect))
    }

    fn open_store(path: &Path, writable: bool) -> Result<Store, StoreError> {
        let name = path.display().to_string();
        let fail = |detail: String| StoreError::Open { path: name.clone(), detail };
        let access = match writable {
            false => Access::ReadOnly,
            true => Access::Exclusive,
        };
        let (file, info) = crate::disk::device::open(path, access).map_err(|e| match e {
            DeviceError::Busy { .. } => fail("it is in use (mounted?)".into()),
            e => fail(e.to_string()),
        })?;
        let size = info.size;
        // The kernel may have written the volume through another node since this device's
        // pages were cached (the staged image, through the store partition's own node): read it
        // from the device, never from a stale cache.
        crate::disk::attach::drop_cached(&file);
        let mut boot = [0u8; 512];
        file.read_exact_at(&mut boot, 0).map_err(|e| fail(format!("cannot read its first sector: {e}")))?;
        let (start, len, kind, geometry) = match Geometry::parse(&boot) {
            Ok(g) => (0, size, StoreKind::Volume, g),
            Err(why_not_fat) => {
                let disk = RwDevice::from_file(file, path).map_err(|e| fail(e.to_string()))?;
                let found = crate::locator::locate(&disk).map_err(|e| {
                    fail(format!(
                        "not a store: byte 0 is not a FAT32 boot sector ({why_not_fat}), and as a whole disk: {e}"
                    ))
                })?;
                let l = found.locator;
                let file = disk.into_file();
                let g = Geometry::read(&file, l.store_start).map_err(|e| {
                    fail(format!(
                        "the locator puts the store at byte {}, but there is no FAT32 volume: {e}",
                        l.store_start
                    ))
                })?;
                let kind = StoreKind::Disk { store_start: l.store_start, job_name: l.job_name.clone() };
                return Store::finish(file, path, l.store_start, l.fs_len, writable, kind, g);
            }
        };
        Store::finish(file, path, start, len, writable, kind, geometry)
    }

    fn finish(
        file: File,
        path: &Path,
        start: u64,
        len: u64,
        writable: bool,
        kind: StoreKind,
        geometry: Geometry,
    ) -> Result<Store, StoreError> {
        let store = Store {
            file,
            path: path.to_owned(),
            start,
            len,
            writable,
            kind,
            capture: CaptureName::FIRST,
            geometry,
            budget: None,
            cache: IoCache::new((geometry.fat_start, geometry.data_start)),
            maps: HashMap::new(),
            scratch: None,
            probe: AtomicU64::new(u64::MAX),
        };
        // Let fatfs check the boot sector and FSInfo too.
        drop(store.mount()?);
        Ok(store)
    }

    /// Byte offset of the FAT volume within the opened file or device.
    pub fn volume_start(&self) -> u64 {
        self.start
    }

    /// How to name the store in messages: the path, and where in it the volume is.
    pub fn describe(&self) -> String {
        match &self.kind {
            StoreKind::Volume => self.path.display().to_string(),
            StoreKind::Disk { store_start, .. } => format!("{} (at byte {store_start})", self.path.display()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn kind(&self) -> &StoreKind {
        &self.kind
    }

    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// Free space in the FAT volume, in bytes.
    pub fn free_bytes(&self) -> Result<u64, StoreError> {
        self.flush_cache()?;
        let d = self.describe();
        self.geometry.free_bytes(&self.file, self.start).map_err(io_at(&d, "reading the FAT"))
    }

    /// Mounts the volume for one operation. Unmount it with [`Store::unmount`].
    pub(crate) fn mount(&self) -> Result<Fs<'_>, StoreError> {
        let io = VolumeIo { disk: self.disk(), cache: &self.cache, len: self.len, pos: 0, probe: Some(&self.probe) };
        fatfs::FileSystem::new(io, fatfs::FsOptions::new()).map_err(|e| StoreError::Open {
            path: self.describe(),
            detail: format!("the FAT32 volume cannot be mounted: {e}"),
        })
    }

    fn disk(&self) -> Disk<'_> {
        Disk { file: &self.file, start: self.start, budget: if self.writable { self.budget.as_ref() } else { None } }
    }

    /// Writes out what the I/O cache holds (before reading the volume around fatfs).
    pub(crate) fn flush_cache(&self) -> Result<(), StoreError> {
        let d = self.describe();
        self.cache.flush(&self.disk()).map_err(io_at(&d, "writing to the store"))
    }

    /// Unmounts (writing FSInfo and clearing the dirty flag) and syncs the store to disk.
    pub(crate) fn unmount(&self, fs: Fs<'_>) -> Result<(), StoreError> {
        let d = self.describe();
        if !self.writable {
            drop(fs);
            return Ok(());
        }
        fs.unmount().map_err(io_at(&d, "unmounting the FAT volume"))?;
        self.sync()
    }

    /// Flushes everything written so far to the device.
    pub(crate) fn sync(&self) -> Result<(), StoreError> {
        self.flush_cache()?;
        let d = self.describe();
        self.file.sync_data().map_err(io_at(&d, "syncing"))
    }

    /// Syncs, then drops the volume's pages from the page cache, so the next reads come
    /// from the device.
    pub(crate) fn drop_cache(&self) -> Result<(), StoreError> {
        self.sync()?;
        let (start, len) = (i64::try_from(self.start).unwrap_or(0), i64::try_from(self.len).unwrap_or(0));
        nix::fcntl::posix_fadvise(&self.file, start, len, nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED).map_err(
            |e| StoreError::Io { store: self.describe(), what: "dropping cached pages".into(), source: e.into() },
        )
    }

    /// Tests: simulate a power cut after `after` more bytes are written (see
    /// [`WriteBudget`]).
    pub(crate) fn simulate_cut(&mut self, after: u64, abort: bool) {
        self.budget = Some(WriteBudget { left: AtomicU64::new(after), abort });
    }

    pub(crate) fn check_writable(&self) -> Result<(), StoreError> {
        if self.writable {
            Ok(())
        } else {
            Err(StoreError::ReadOnly { store: self.describe() })
        }
    }

    /// Opens or creates directory `name` in `parent`. fatfs 0.3.6 writes long-name entries
    /// before the `.` and `..` entries of a new directory and points `..` at the root's
    /// cluster instead of 0; `fsck.fat` and Windows see a damaged directory. The new
    /// directory's first entries are rewritten to the plain `.` and `..` entries FAT wants.
    pub(crate) fn create_dir<'f, 's>(
        &self,
        parent: &Dir<'f, 's>,
        name: &str,
        parent_is_root: bool,
    ) -> io::Result<Dir<'f, 's>> {
        if let Ok(d) = parent.open_dir(name) {
            return Ok(d);
        }
        let dir = parent.create_dir(name)?;
        self.probe.store(u64::MAX, Ordering::Relaxed);
        // Reads the first entry, at the start of the directory's first cluster.
        let _ = dir.iter().next();
        let at = self.probe.load(Ordering::Relaxed);
        if self.geometry.cluster_at(at).is_none() {
            return Err(io::Error::other(format!("the new directory {name} does not start on a cluster (byte {at})")));
        }
        // The entries are patched in the file itself: push out what fatfs wrote first.
        self.cache.flush(&self.disk())?;
        let abs = self.start + at;
        let mut slots = [0u8; 128];
        self.file.read_exact_at(&mut slots, abs)?;
        // fatfs wrote: long name, ".", long name, "..".
        let (dot, dotdot) = (&slots[32..64], &slots[96..128]);
        if &dot[..11] != b".          " || &dotdot[..11] != b"..         " {
            // Already plain (a fixed fatfs): leave it.
            return Ok(dir);
        }
        let mut fixed = [0u8; 128];
        fixed[..32].copy_from_slice(dot);
        fixed[32..64].copy_from_slice(dotdot);
        if parent_is_root {
            // `..` of a directory in the root names cluster 0.
            fixed[32 + 20..32 + 22].fill(0);
            fixed[32 + 26..32 + 28].fill(0);
        }
        self.file.write_all_at(&fixed, abs)?;
        Ok(dir)
    }

    /// The capture that the capture-level calls act on: [`Store::capture_state`],
    /// [`Store::manifest`], [`Store::clear_capture`], [`Store::read_entry`], verification, and a
    /// capture into the store.
    pub fn selected(&self) -> CaptureName {
        self.capture
    }

    /// Makes `name` the capture the capture-level calls act on (see [`Store::selected`]).
    pub fn select(&mut self, name: CaptureName) {
        if name != self.capture {
            self.maps.clear();
            self.capture = name;
        }
    }

    /// The captures in the store, finished or not, in order (`capture`, `capture.2`, …): the
    /// directories of the volume's root that are a capture's and hold anything.
    pub fn captures(&self) -> Result<Vec<CaptureName>, StoreError> {
        let d = self.describe();
        let fs = self.mount()?;
        let found = (|| -> io::Result<Vec<CaptureName>> {
            let root = fs.root_dir();
            let mut v = Vec::new();
            for e in root.iter() {
                let e = e?;
                let Some(name) = CaptureName::parse(&e.file_name()).filter(|_| e.is_dir()) else { continue };
                let used = e.to_dir().iter().filter_map(|c| c.ok()).any(|c| c.file_name() != "." && c.file_name() != "..");
                if used {
                    v.push(name);
                }
            }
            v.sort();
            v.dedup();
            Ok(v)
        })()
        .map_err(io_at(&d, "listing the captures"));
        self.unmount(fs)?;
        found
    }

    /// Whether the store holds the selected capture, finished or not.
    pub fn capture_state(&self) -> Result<CaptureState, StoreError> {
        let dir_name = self.capture.dir();
        let fs = self.mount()?;
        let state = {
            let root = fs.root_dir();
            match root.open_dir(&dir_name) {
                Err(_) => CaptureState::Empty,
                Ok(dir) => {
                    let names: Vec<String> = dir.iter().filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
                    if names.iter().any(|n| n.eq_ignore_ascii_case(format::MANIFEST_SHA)) {
                        CaptureState::Complete
                    } else if names.iter().any(|n| n == format::PROGRESS || n == format::PROGRESS_NEW) {
                        let segments_done =
                            super::progress::load(&dir).ok().flatten().map_or(0, |p| p.segments.len() as u32);
                        CaptureState::InProgress { segments_done }
                    } else if names.iter().any(|n| n.starts_with("seg-")) {
                        CaptureState::InProgress { segments_done: 0 }
                    } else {
                        CaptureState::Empty
                    }
                }
            }
        };
        self.unmount(fs)?;
        Ok(state)
    }

    /// The manifest of the selected capture, finished, after checking its SHA-256 and its
    /// bounds. Does not read the segments: [`super::verify()`] does.
    pub fn manifest(&self) -> Result<Manifest, StoreError> {
        let store = self.describe();
        let capture = self.capture.dir();
        let fs = self.mount()?;
        let read = {
            let root = fs.root_dir();
            match root.open_dir(&capture) {
                Err(_) => None,
                Ok(dir) => Some((
                    read_in(&dir, format::MANIFEST, MAX_MANIFEST_BYTES),
                    read_in(&dir, format::MANIFEST_SHA, 4096),
                    // A resume state, or a segment begun before the first one closed.
                    dir.iter().filter_map(|e| e.ok()).any(|e| {
                        let n = e.file_name();
                        n.starts_with("progress") || n.starts_with("seg-")
                    }),
                )),
            }
        };
        self.unmount(fs)?;
        let bad = |detail: String| StoreError::BadManifest { store: store.clone(), capture: capture.clone(), detail };
        match read {
            None => Err(StoreError::NoCapture { store, capture }),
            Some((json, sha, progress)) => {
                let json = json.map_err(|e| bad(format!("reading it: {e}")))?;
                let sha = sha.map_err(|e| bad(format!("reading {capture}/manifest.sha256: {e}")))?;
                match (json, sha) {
                    (Some(json), Some(sha)) => {
                        let line = String::from_utf8(sha).map_err(|_| bad("manifest.sha256 is not text".into()))?;
                        Manifest::decode(&json, &line).map_err(bad)
                    }
                    _ if progress => Err(StoreError::Unfinished {
                        store,
                        capture,
                        detail: "the manifest is not written yet".into(),
                    }),
                    (None, None) => Err(StoreError::NoCapture { store, capture }),
                    (Some(_), None) => Err(bad(format!("{capture}/manifest.sha256 is missing"))),
                    (None, Some(_)) => Err(bad(format!("{capture}/manifest.json is missing"))),
                }
            }
        }
    }

    /// Where a message names the selected capture's file `name`: `capture.2/manifest.json`.
    pub(crate) fn capture_file(&self, name: &str) -> String {
        format!("{}/{name}", self.capture.dir())
    }

    /// Opens the selected capture's directory in a mounted volume.
    pub(crate) fn capture_dir<'f, 's>(&self, fs: &'f Fs<'s>) -> io::Result<Dir<'f, 's>> {
        fs.root_dir().open_dir(&self.capture.dir())
    }

    /// Writes a small file (a report, a mark) at `path` (`/`-separated, relative to the
    /// volume root; parent directories are made), replacing it. `capture/` is refused: only
    /// a capture writes there.
    pub fn write_file(&self, path: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.change_file(path, "writing", |dir, name| write_in(dir, name, bytes))
    }

    /// Appends `bytes` to the file at `path` (made with its directories when missing), as
    /// [`Store::write_file`] does.
    pub fn append_file(&self, path: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.change_file(path, "appending to", |dir, name| append_in(dir, name, bytes))
    }

    fn change_file(
        &self,
        path: &str,
        doing: &str,
        change: impl FnOnce(&Dir<'_, '_>, &str) -> io::Result<()>,
    ) -> Result<(), StoreError> {
        self.check_writable()?;
        let parts = check_path(path)?;
        if CaptureName::parse(parts[0]).is_some() {
            return Err(StoreError::BadPath { path: path.into(), why: format!("{}/ is written only by a capture", parts[0]) });
        }
        let d = self.describe();
        let fs = self.mount()?;
        let r = (|| {
            let mut dir = fs.root_dir();
            for (i, p) in parts[..parts.len() - 1].iter().enumerate() {
                dir = self.create_dir(&dir, p, i == 0)?;
            }
            change(&dir, parts[parts.len() - 1])
        })()
        .map_err(io_at(&d, format!("{doing} {path}")));
        self.unmount(fs)?;
        r
    }

    /// Reads the small file at `path`; `None` when it does not exist. Fails if it is larger
    /// than `cap` bytes.
    pub fn read_file(&self, path: &str, cap: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let parts = check_path(path)?;
        let d = self.describe();
        let fs = self.mount()?;
        let r = (|| {
            let mut dir = fs.root_dir();
            for p in &parts[..parts.len() - 1] {
                dir = match dir.open_dir(p) {
                    Ok(d) => d,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(e),
                };
            }
            read_in(&dir, parts[parts.len() - 1], cap)
        })()
        .map_err(io_at(&d, format!("reading {path}")));
        self.unmount(fs)?;
        r
    }

    /// Removes the file at `path`; `false` when it did not exist. `capture/` is refused (use
    /// [`Store::clear_capture`]).
    pub fn remove_file(&self, path: &str) -> Result<bool, StoreError> {
        self.check_writable()?;
        let parts = check_path(path)?;
        if CaptureName::parse(parts[0]).is_some() {
            return Err(StoreError::BadPath { path: path.into(), why: format!("use clear_capture for {}/", parts[0]) });
        }
        let d = self.describe();
        let fs = self.mount()?;
        let r = (|| {
            let mut dir = fs.root_dir();
            for p in &parts[..parts.len() - 1] {
                dir = match dir.open_dir(p) {
                    Ok(d) => d,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
                    Err(e) => return Err(e),
                };
            }
            match dir.remove(parts[parts.len() - 1]) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(e),
            }
        })()
        .map_err(io_at(&d, format!("removing {path}")));
        self.unmount(fs)?;
        r
    }

    /// Removes the selected capture (its directory and everything in it), finished or not,
    /// keeping the rest of the volume. The manifest's SHA-256 goes first, so a cut part-way
    /// leaves an unfinished capture, never a finished one with segments missing.
    pub fn clear_capture(&mut self) -> Result<(), StoreError> {
        self.check_writable()?;
        self.maps.clear();
        let d = self.describe();
        let capture = self.capture.dir();
        let fs = self.mount()?;
        let r = (|| {
            let root = fs.root_dir();
            let dir = match root.open_dir(&capture) {
                Ok(d) => d,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            };
            let mut names: Vec<String> =
                dir.iter().filter_map(|e| e.ok()).map(|e| e.file_name()).filter(|n| n != "." && n != "..").collect();
            names.sort_by_key(|n| (n != format::MANIFEST_SHA, n != format::MANIFEST, n.clone()));
            for n in names {
                dir.remove(&n)?;
            }
            root.remove(&capture)
        })()
        .map_err(io_at(&d, format!("removing {capture}/")));
        self.unmount(fs)?;
        r
    }

    /// The map of segment `number` (`size` bytes per the manifest), read once and kept.
    pub(crate) fn segment_map(&mut self, number: u32) -> Result<&SegmentMap, StoreError> {
        if !self.maps.contains_key(&number) {
            let map = self.load_segment_map(number)?;
            self.maps.insert(number, map);
        }
        Ok(&self.maps[&number])
    }

    pub(crate) fn load_segment_map(&self, number: u32) -> Result<SegmentMap, StoreError> {
        let d = self.describe();
        let name = format::segment_name(number);
        let probe = &self.probe;
        let fs = self.mount()?;
        let r = (|| {
            let dir = self.capture_dir(&fs)?;
            let entry = dir
                .iter()
                .filter_map(|e| e.ok())
                .find(|e| e.is_file() && e.file_name().eq_ignore_ascii_case(&name))
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "the segment file is missing"))?;
            let size = entry.len();
            if size == 0 {
                return Ok(SegmentMap { size, extents: Vec::new() });
            }
            let mut f = entry.to_file();
            probe.store(u64::MAX, Ordering::Relaxed);
            let mut one = [0u8; 1];
            f.read_exact(&mut one)?;
            let at = probe.load(Ordering::Relaxed);
            let first = self.geometry.cluster_at(at).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, format!("its data starts at byte {at}, not on a cluster"))
            })?;
            self.cache.flush(&self.disk())?;
            let extents = self.geometry.extents(&self.file, self.start, first, size)?;
            Ok(SegmentMap { size, extents })
        })()
        .map_err(io_at(&d, format!("opening {}", self.capture_file(&name))));
        self.unmount(fs)?;
        r
    }

    /// Reads `buf.len()` bytes at `offset` of segment `number`.
    pub(crate) fn read_segment(&mut self, number: u32, offset: u64, buf: &mut [u8]) -> Result<(), StoreError> {
        if !self.maps.contains_key(&number) {
            self.segment_map(number)?;
        }
        let (file, start) = (&self.file, self.start);
        let d = self.describe();
        self.maps[&number]
            .read_at(file, start, offset, buf)
            .map_err(io_at(&d, format!("reading {} at byte {offset}", format::segment_name(number))))
    }
}

/// Sequential `Read` over a segment's bytes, straight from the volume.
pub(crate) struct MapReader<'a> {
    file: &'a File,
    start: u64,
    map: &'a SegmentMap,
    pos: u64,
    /// Segment offset up to which the kernel was asked to read ahead.
    advised: u64,
}

/// How far ahead a sequential segment read asks the kernel to fetch, so reading from the
/// device overlaps with checking.
const READ_AHEAD: u64 = 32 << 20;

impl Read for MapReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.map.size || buf.is_empty() {
            return Ok(0);
        }
        let i = self.map.extents.partition_point(|e| e.file_offset + e.len <= self.pos);
        let e = self.map.extents.get(i).ok_or_else(|| io::Error::other("no extent for a segment offset"))?;
        let within = self.pos - e.file_offset;
        if self.advised < self.pos + READ_AHEAD / 2 {
            // Within this extent; a hint only, so its failure does not matter.
            let from = self.advised.max(self.pos);
            let to = (self.pos + READ_AHEAD).min(e.file_offset + e.len);
            if to > from {
                let at = self.start + e.volume_offset + (from - e.file_offset);
                let _ = nix::fcntl::posix_fadvise(
                    self.file,
                    i64::try_from(at).unwrap_or(0),
                    i64::try_from(to - from).unwrap_or(0),
                    nix::fcntl::PosixFadviseAdvice::POSIX_FADV_WILLNEED,
                );
            }
            self.advised = to;
        }
        let n = ((e.len - within) as usize).min(buf.len());
        self.file.read_exact_at(&mut buf[..n], self.start + e.volume_offset + within)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Store {
    /// Reads the segment that `map` describes from its start.
    pub(crate) fn map_reader<'a>(&'a self, map: &'a SegmentMap) -> MapReader<'a> {
        MapReader { file: &self.file, start: self.start, map, pos: 0, advised: 0 }
    }
}

/// Splits and checks a volume path: components that FAT can hold, no `.`/`..`.
fn check_path(path: &str) -> Result<Vec<&str>, StoreError> {
    let bad = |why: &str| StoreError::BadPath { path: path.into(), why: why.into() };
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        return Err(bad("it is empty"));
    }
    for p in &parts {
        if *p == "." || *p == ".." {
            return Err(bad("it has a . or .. component"));
        }
        if p.len() > 255 || p.chars().any(|c| c.is_control() || "\\:*?\"<>|".contains(c)) {
            return Err(bad("a component is too long or has a character FAT cannot hold"));
        }
    }
    Ok(parts)
}
