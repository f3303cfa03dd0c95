//! Writing entries into the root: directories, files (streamed from the store, holes kept),
//! symbolic links (the target is link content, never followed) and hard links (to the file
//! this restore wrote earlier), with owner, mode and time, extended attributes and ACLs
//! ([`super::xattrs`]), under the conflict policy. Names are bytes, created exactly as stored.
//!
//! Every write goes through a directory opened with [`super::paths::walk`] (no link
//! followed) and `*at` calls on a single name. Files and links are made under a temporary
//! name (`.inplace-restore.<pid>.<n>`) with their metadata, then renamed into place
//! (`RENAME_NOREPLACE` unless replacing), so a crash never leaves a half-written file under a
//! real name. Directory modes and times are set at the end ([`Applier::finish`]), deepest
//! first, after their contents.
//!
//! Conflicts (the new OS already has something at the path):
//! - settings (entries outside the profiles) replace the new OS's file or link;
//! - `keep-new` keeps the new OS's and writes ours beside it as `<name>.restored` (then
//!   `.restored.2`, …; see [`super::paths::beside_name`]); a directory goes beside as well and
//!   its contents follow it;
//! - `overwrite` replaces files and links (never a directory: ours goes beside it);
//! - `skip` leaves it, and everything the store has below a skipped directory.
//!
//! A file already there with the same size and modification time, or a link with the same
//! target, counts as restored, and so does such a `.restored` copy beside a conflict: running
//! restore again after an interruption does not make `.restored` copies of its own earlier
//! work (the store's record of the run, `super::journal`, covers the rest).

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::rc::Rc;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, RenameFlags, Timespec, Timestamps, UTIME_OMIT};
use rustix::io::Errno;

use super::paths::{beside_name, walk, Missing, RelPath, WalkError};
use super::plan::{Base, Item};
use super::report::Outcome;
use super::xattrs::{self, Attrs};
use crate::fs::bytes::{show, unshow};
use crate::fs::Time;
use crate::migrate::entry::Kind;
use crate::migrate::store::EntrySink;
use crate::progress::Cancel;

/// What to do when the new OS already has something at a user entry's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Conflict {
    /// Keep the new OS's; write ours beside it as `<name>.restored`.
    #[default]
    KeepNew,
    /// Replace the new OS's file or link with ours.
    Overwrite,
    /// Keep the new OS's; do not restore ours.
    Skip,
}

impl Conflict {
    pub fn as_str(self) -> &'static str {
        match self {
            Conflict::KeepNew => "keep-new",
            Conflict::Overwrite => "overwrite",
            Conflict::Skip => "skip",
        }
    }

    pub fn parse(s: &str) -> Option<Conflict> {
        match s {
            "keep-new" => Some(Conflict::KeepNew),
            "overwrite" => Some(Conflict::Overwrite),
            "skip" => Some(Conflict::Skip),
            _ => None,
        }
    }
}

/// Owner, mode and time to give an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    pub mtime: Option<Time>,
}

/// Streams a file's data into the file it is given; returns the bytes written.
pub type DataFn<'a> = dyn FnMut(&File) -> Result<u64, String> + 'a;

/// What an entry should become, besides its path.
#[derive(Debug, Clone, Copy)]
pub struct Want<'a> {
    pub meta: Meta,
    /// Data size (files).
    pub size: u64,
    /// A setting: replaces what the new OS has.
    pub setting: bool,
    /// A symbolic link's target.
    pub link_target: Option<&'a [u8]>,
    /// Extended attributes and ACLs to set (files and directories).
    pub attrs: Option<&'a Attrs>,
}

/// What [`Applier::entry`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    pub outcome: Outcome,
    /// Where it went, as the new OS sees it.
    pub target: String,
    pub note: Option<String>,
}

/// A directory to finish (mode and time) at the end.
struct DirFinish {
    base: Base,
    rel: RelPath,
    meta: Meta,
    attrs: Option<Attrs>,
}

/// A base directory: where it is and, once open, its descriptor (`None` in a dry run when
/// it does not exist yet).
struct BaseDir {
    abs: RelPath,
    fd: Option<Rc<OwnedFd>>,
}

/// A sink that writes an entry into a new file, refusing anything past the manifest's size;
/// it stops at the next record once `cancel` is raised.
pub struct CappedSink<'a> {
    pub file: &'a File,
    pub size: u64,
    pub cancel: &'a Cancel,
}

impl EntrySink for CappedSink<'_> {
    fn data(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        if self.cancel.is_cancelled() {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "stopped on request"));
        }
        if offset.checked_add(bytes.len() as u64).is_none_or(|end| end > self.size) {
            return Err(io::Error::other(format!("the store sends data past the {} bytes its manifest gives", self.size)));
        }
        std::os::unix::fs::FileExt::write_all_at(self.file, bytes, offset)
    }
    fn hole(&mut self, offset: u64, len: u64) -> io::Result<()> {
        if offset.checked_add(len).is_none_or(|end| end > self.size) {
            return Err(io::Error::other(format!("the store sends a hole past the {} bytes its manifest gives", self.size)));
        }
        Ok(())
    }
    fn finish(&mut self, size: u64) -> io::Result<()> {
        if size != self.size {
            return Err(io::Error::other(format!("{size} bytes arrived, the manifest gives {}", self.size)));
        }
        self.file.set_len(size)
    }
}

/// Writes entries under one root; see the module doc.
pub struct Applier {
    conflict: Conflict,
    dry_run: bool,
    /// Set owners (only root can).
    chown: bool,
    bases: HashMap<Base, BaseDir>,
    /// Logical directory → where it actually went (beside a conflicting file).
    remaps: HashMap<(Base, RelPath), RelPath>,
    /// Directories not restored: what their contents report.
    blocked: HashMap<(Base, RelPath), Outcome>,
    /// Files written, by plan item, for hard links: (base, actual path).
    placed: HashMap<usize, (Base, RelPath)>,
    dirs: Vec<DirFinish>,
    parent: Option<(Base, RelPath, Rc<OwnedFd>)>,
    tmp: u64,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn timespec(t: Option<Time>) -> Timespec {
    match t {
        Some(t) => Timespec { tv_sec: t.secs, tv_nsec: i64::from(t.nanos.min(999_999_999)) as _ },
        None => Timespec { tv_sec: 0, tv_nsec: UTIME_OMIT },
    }
}

/// `mtime` as `utimensat` takes it, the access time left as it is (and the modified time too
/// when `None`).
pub fn times(mtime: Option<Time>) -> Timestamps {
    Timestamps { last_access: Timespec { tv_sec: 0, tv_nsec: UTIME_OMIT }, last_modification: timespec(mtime) }
}

/// What is at a name now (not following a link).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Existing {
    None,
    Dir,
    File { size: u64, mtime: Time, ino: (u64, u64) },
    Link(Vec<u8>),
    Other,
}

fn existing(dir: BorrowedFd<'_>, name: &[u8]) -> Result<Existing, String> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Err(Errno::NOENT) => Ok(Existing::None),
        Err(e) => Err(format!("cannot look at it: {e}")),
        Ok(st) => Ok(match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => Existing::Dir,
            FileType::RegularFile => Existing::File {
                size: st.st_size as u64,
                mtime: Time { secs: st.st_mtime, nanos: st.st_mtime_nsec as u32 },
                ino: (st.st_dev, st.st_ino),
            },
            FileType::Symlink => Existing::Link(rustix::fs::readlinkat(dir, name, Vec::new()).map(|c| c.into_bytes()).unwrap_or_default()),
            _ => Existing::Other,
        }),
    }
}

impl Applier {
    pub fn new(conflict: Conflict, dry_run: bool) -> Applier {
        Applier {
            conflict,
            dry_run,
            chown: rustix::process::geteuid().is_root(),
            bases: HashMap::new(),
            remaps: HashMap::new(),
            blocked: HashMap::new(),
            placed: HashMap::new(),
            dirs: Vec::new(),
            parent: None,
            tmp: 0,
        }
    }

    /// Whether owners are set (only when running as root).
    pub fn sets_owners(&self) -> bool {
        self.chown
    }

    /// Registers a base directory at `abs` (as the new OS sees it), open as `fd`; `None` for
    /// one a dry run would create.
    pub fn add_base(&mut self, base: Base, abs: RelPath, fd: Option<OwnedFd>) {
        self.bases.insert(base, BaseDir { abs, fd: fd.map(Rc::new) });
    }

    /// Where `rel` under `base` is, as the new OS sees it.
    pub fn target(&self, base: &Base, rel: &RelPath) -> String {
        match self.bases.get(base) {
            Some(b) => format!("/{}", b.abs.join(rel)),
            None => match base {
                Base::Root => format!("/{rel}"),
                Base::Home(u) => format!("~{u}/{rel}"),
            },
        }
    }

    /// The actual path of `rel` after directories that went beside conflicts.
    fn actual(&self, base: &Base, rel: &RelPath) -> RelPath {
        if !self.remaps.is_empty() {
            for n in (1..rel.parts().len()).rev() {
                if let Some(to) = self.remaps.get(&(base.clone(), rel.prefix(n))) {
                    return to.join(&rel.suffix(n));
                }
            }
        }
        rel.clone()
    }

    fn blocked_by(&self, base: &Base, rel: &RelPath) -> Option<Outcome> {
        if self.blocked.is_empty() {
            return None;
        }
        (1..rel.parts().len()).rev().find_map(|n| self.blocked.get(&(base.clone(), rel.prefix(n))).cloned())
    }

    /// Opens the parent directory of `rel`, creating missing ones (owned by `owner`) unless
    /// this is a dry run; `Ok(None)` when a dry run would create it.
    fn parent_dir(&mut self, base: &Base, rel: &RelPath, owner: (u32, u32)) -> Result<Option<Rc<OwnedFd>>, String> {
        let dirs = rel.prefix(rel.parts().len() - 1);
        if let Some((b, r, fd)) = &self.parent {
            if b == base && *r == dirs {
                return Ok(Some(fd.clone()));
            }
        }
        let b = self.bases.get(base).ok_or("its base directory is not available")?;
        let Some(bfd) = b.fd.clone() else { return Ok(None) };
        let shown = format!("/{}", b.abs);
        let chown = self.chown;
        let mut init = |dir: BorrowedFd<'_>, name: &[u8]| -> io::Result<()> {
            if chown {
                rustix::fs::chownat(dir, name, uid(owner.0), gid(owner.1), AtFlags::SYMLINK_NOFOLLOW)?;
            }
            rustix::fs::chmodat(dir, name, Mode::from_raw_mode(0o755), AtFlags::empty())?;
            Ok(())
        };
        let missing = if self.dry_run { Missing::Fail } else { Missing::Create(&mut init) };
        match walk(bfd.as_fd(), &shown, dirs.parts(), missing) {
            Ok(fd) => {
                let fd = Rc::new(fd);
                self.parent = Some((base.clone(), dirs, fd.clone()));
                Ok(Some(fd))
            }
            Err(WalkError::Missing(_)) if self.dry_run => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Directories waiting for their mode and time (see [`Applier::finish`]).
    pub fn dirs_pending(&self) -> usize {
        self.dirs.len()
    }

    /// Takes up what an earlier run did for this entry (recorded as `outcome`; `finish_dir`:
    /// it made the directory), so the entries after it go where they went then: a directory
    /// put beside a conflict keeps its contents, hard links find their file, skipped
    /// directories keep their contents out, and directories made then get their mode and
    /// time at the end.
    pub fn replay(&mut self, item_no: usize, item: &Item, outcome: &Outcome, finish_dir: bool, want: Want<'_>) {
        let actual = self.actual(&item.base, &item.rel);
        let placed = match outcome {
            Outcome::RestoredBeside { name } => actual.with_name(&beside_bytes(name)),
            _ => actual.clone(),
        };
        let key = (item.base.clone(), item.rel.clone());
        match (item.kind, outcome) {
            (Kind::Dir, Outcome::SkippedConflict | Outcome::Failed { .. }) => {
                self.blocked.insert(key, outcome.clone());
            }
            (Kind::Dir, Outcome::RestoredBeside { .. }) => {
                self.remaps.insert(key, placed.clone());
            }
            (Kind::File | Kind::HardLink, Outcome::Restored | Outcome::RestoredBeside { .. }) => {
                self.placed.insert(item_no, (item.base.clone(), placed.clone()));
            }
            _ => {}
        }
        if item.kind == Kind::Dir && finish_dir && !self.dry_run {
            self.dirs.push(DirFinish { base: item.base.clone(), rel: placed, meta: want.meta, attrs: want.attrs.cloned() });
        }
    }

    /// Restores one checked entry. `data` streams a file's content (it is called only when
    /// the file is written).
    pub fn entry(&mut self, item_no: usize, item: &Item, want: Want<'_>, data: &mut DataFn<'_>) -> Done {
        let (meta, setting) = (want.meta, want.setting);
        let actual = self.actual(&item.base, &item.rel);
        let target = self.target(&item.base, &actual);
        let done = |outcome, note: Option<String>| Done { outcome, target: target.clone(), note };
        if let Some(o) = self.blocked_by(&item.base, &item.rel) {
            return done(o, Some("its directory was not restored".into()));
        }
        let owner = match &item.base {
            Base::Root => (0, 0),
            Base::Home(_) => (meta.uid, meta.gid),
        };
        let parent = match self.parent_dir(&item.base, &actual, owner) {
            Ok(p) => p,
            Err(why) => {
                let o = Outcome::Failed { reason: why };
                if item.kind == Kind::Dir {
                    self.blocked.insert((item.base.clone(), item.rel.clone()), o.clone());
                }
                return done(o, None);
            }
        };
        let name = actual.name().to_vec();
        let now = match &parent {
            Some(p) => match existing(p.as_fd(), &name) {
                Ok(e) => e,
                Err(why) => return done(Outcome::Failed { reason: why }, None),
            },
            None => Existing::None,
        };
        let r = match item.kind {
            Kind::Dir => self.dir(item, &actual, parent.as_deref(), &now, want),
            Kind::File => self.file(item_no, item, &actual, parent.as_deref(), &now, want, data),
            Kind::Symlink => self.symlink(&actual, parent.as_deref(), &now, meta, setting, want.link_target.unwrap_or_default()),
            Kind::HardLink => self.hard_link(item_no, item, &actual, parent.as_deref(), &now, setting),
        };
        match r {
            Ok((outcome, note)) => {
                let target = match &outcome {
                    Outcome::RestoredBeside { name } => self.target(&item.base, &actual.with_name(&beside_bytes(name))),
                    _ => target.clone(),
                };
                Done { outcome, target, note }
            }
            Err(reason) => {
                let o = Outcome::Failed { reason };
                if item.kind == Kind::Dir {
                    self.blocked.insert((item.base.clone(), item.rel.clone()), o.clone());
                }
                done(o, None)
            }
        }
    }

    fn next_tmp(&mut self) -> String {
        self.tmp += 1;
        format!(".inplace-restore.{}.{}", std::process::id(), self.tmp)
    }

    /// The conflict decision for a non-directory entry over `now`.
    fn decide(&self, now: &Existing, setting: bool) -> Place {
        match (now, setting, self.conflict) {
            (Existing::None, ..) => Place::New,
            (Existing::Dir, true, _) => Place::Refuse("a directory is where this setting goes; it was left as it is".into()),
            (_, true, _) => Place::Replace,
            (_, false, Conflict::Skip) => Place::Skip,
            (Existing::Dir, false, _) => Place::Beside,
            (_, false, Conflict::KeepNew) => Place::Beside,
            (_, false, Conflict::Overwrite) => Place::Replace,
        }
    }

    /// Moves `tmp` into place as decided; returns the outcome.
    fn put(&self, dir: &OwnedFd, tmp: &str, name: &[u8], place: &Place) -> Result<Outcome, String> {
        match place {
            Place::New => match rename_noreplace(dir, tmp.as_bytes(), name) {
                Ok(()) => Ok(Outcome::Restored),
                // Appeared meanwhile: keep it, as for any conflict.
                Err(Errno::EXIST) => self.put_beside(dir, tmp, name),
                Err(e) => Err(format!("renaming into place: {e}")),
            },
            Place::Replace => rustix::fs::renameat(dir, tmp, dir, name).map(|()| Outcome::Restored).map_err(|e| format!("replacing: {e}")),
            Place::Beside => self.put_beside(dir, tmp, name),
            Place::Skip | Place::Refuse(_) => Err("internal: nothing to put".into()),
        }
    }

    fn put_beside(&self, dir: &OwnedFd, tmp: &str, name: &[u8]) -> Result<Outcome, String> {
        for n in 1..=1000 {
            let b = beside_name(name, n).ok_or("the name is too long for a `.restored` copy beside it")?;
            match rename_noreplace(dir, tmp.as_bytes(), &b) {
                Ok(()) => return Ok(Outcome::RestoredBeside { name: show(&b) }),
                Err(Errno::EXIST) => continue,
                Err(e) => return Err(format!("renaming beside the existing one: {e}")),
            }
        }
        Err("1000 `.restored` copies exist already".into())
    }

    /// The outcome a dry run reports for `place`.
    fn would(&self, dir: Option<&OwnedFd>, name: &[u8], place: &Place) -> Result<Outcome, String> {
        match place {
            Place::New | Place::Replace => Ok(Outcome::Restored),
            Place::Beside => {
                for n in 1..=1000 {
                    let b = beside_name(name, n).ok_or("the name is too long for a `.restored` copy beside it")?;
                    if dir.is_none_or(|d| matches!(existing(d.as_fd(), &b), Ok(Existing::None))) {
                        return Ok(Outcome::RestoredBeside { name: show(&b) });
                    }
                }
                Err("1000 `.restored` copies exist already".into())
            }
            Place::Skip => Ok(Outcome::SkippedConflict),
            Place::Refuse(why) => Err(why.clone()),
        }
    }

    fn dir(&mut self, item: &Item, actual: &RelPath, parent: Option<&OwnedFd>, now: &Existing, want: Want<'_>) -> Result<(Outcome, Option<String>), String> {
        let (meta, setting) = (want.meta, want.setting);
        let finish = |rel: &RelPath| DirFinish { base: item.base.clone(), rel: rel.clone(), meta, attrs: want.attrs.cloned() };
        let name = actual.name();
        let key = (item.base.clone(), item.rel.clone());
        match now {
            Existing::Dir => {
                // Merge. The new OS's directory keeps its mode and owner unless told to overwrite.
                if !setting && self.conflict == Conflict::Overwrite {
                    self.dirs.push(finish(actual));
                }
                Ok((Outcome::Restored, Some("merged into the existing directory".into())))
            }
            Existing::None => {
                if let Some(p) = parent.filter(|_| !self.dry_run) {
                    self.mkdir(p, name, meta)?;
                    self.dirs.push(finish(actual));
                }
                Ok((Outcome::Restored, None))
            }
            _ if setting => Err("a file or link of the new OS is where this directory goes; it was left as it is".into()),
            _ => match self.conflict {
                Conflict::Skip => {
                    self.blocked.insert(key, Outcome::SkippedConflict);
                    Ok((Outcome::SkippedConflict, None))
                }
                Conflict::Overwrite => {
                    if let Some(p) = parent.filter(|_| !self.dry_run) {
                        rustix::fs::unlinkat(p, name, AtFlags::empty()).map_err(|e| format!("removing the file in its place: {e}"))?;
                        self.mkdir(p, name, meta)?;
                        self.dirs.push(finish(actual));
                    }
                    Ok((Outcome::Restored, Some("replaced a file of the new OS".into())))
                }
                Conflict::KeepNew => {
                    let mut chosen = None;
                    for n in 1..=1000 {
                        let b = beside_name(name, n).ok_or("the name is too long for a `.restored` directory beside it")?;
                        match parent {
                            Some(p) if !self.dry_run => match rustix::fs::mkdirat(p, b.as_slice(), Mode::from_raw_mode(0o700)) {
                                Ok(()) => {
                                    self.own(p, &b, meta)?;
                                    chosen = Some(b);
                                    break;
                                }
                                Err(Errno::EXIST) => continue,
                                Err(e) => return Err(format!("creating {}: {e}", show(&b))),
                            },
                            Some(p) => {
                                if matches!(existing(p.as_fd(), &b), Ok(Existing::None)) {
                                    chosen = Some(b);
                                    break;
                                }
                            }
                            None => {
                                chosen = Some(b);
                                break;
                            }
                        }
                    }
                    let b = chosen.ok_or("1000 `.restored` directories exist already")?;
                    let to = actual.with_name(&b);
                    if !self.dry_run {
                        self.dirs.push(finish(&to));
                    }
                    self.remaps.insert(key, to);
                    Ok((Outcome::RestoredBeside { name: show(&b) }, None))
                }
            },
        }
    }

    fn mkdir(&self, p: &OwnedFd, name: &[u8], meta: Meta) -> Result<(), String> {
        rustix::fs::mkdirat(p, name, Mode::from_raw_mode(0o700)).map_err(|e| format!("creating the directory: {e}"))?;
        self.own(p, name, meta)
    }

    fn own(&self, p: &OwnedFd, name: &[u8], meta: Meta) -> Result<(), String> {
        if self.chown {
            rustix::fs::chownat(p, name, uid(meta.uid), gid(meta.gid), AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| format!("setting the owner: {e}"))?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn file(
        &mut self,
        item_no: usize,
        item: &Item,
        actual: &RelPath,
        parent: Option<&OwnedFd>,
        now: &Existing,
        want: Want<'_>,
        data: &mut DataFn<'_>,
    ) -> Result<(Outcome, Option<String>), String> {
        let (meta, setting) = (want.meta, want.setting);
        let name = actual.name();
        let place = self.decide(now, setting);
        let same = |e: &Existing| matches!((e, meta.mtime), (Existing::File { size, mtime, .. }, Some(t)) if *mtime == t && *size == want.size);
        if same(now) {
            self.placed.insert(item_no, (item.base.clone(), actual.clone()));
            return Ok((Outcome::Restored, Some("already there (same size and time)".into())));
        }
        if let Some(b) = parent.filter(|_| place == Place::Beside).and_then(|p| earlier_beside(p, name, &same)) {
            self.placed.insert(item_no, (item.base.clone(), actual.with_name(&b)));
            return Ok((Outcome::RestoredBeside { name: show(&b) }, Some("already there (same size and time)".into())));
        }
        let (Some(dir), false) = (parent, self.dry_run) else {
            let o = self.would(parent, name, &place)?;
            return Ok((o, None));
        };
        if matches!(place, Place::Skip) {
            return Ok((Outcome::SkippedConflict, None));
        }
        if let Place::Refuse(why) = &place {
            return Err(why.clone());
        }
        let tmp = self.next_tmp();
        let fd = rustix::fs::openat(dir, tmp.as_str(), OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::from_raw_mode(0o600))
            .map_err(|e| format!("creating a temporary file: {e}"))?;
        let file = File::from(fd);
        let mut attr_problems = Vec::new();
        let r = data(&file)
            .and_then(|_| self.set_meta_fd(&file, meta))
            .map(|()| attr_problems = want.attrs.map(|a| xattrs::apply(file.as_fd(), a)).unwrap_or_default())
            .and_then(|()| self.put(dir, &tmp, name, &place));
        if r.is_err() {
            let _ = rustix::fs::unlinkat(dir, tmp.as_str(), AtFlags::empty());
        }
        let o = r?;
        let placed = match &o {
            Outcome::RestoredBeside { name } => actual.with_name(&beside_bytes(name)),
            _ => actual.clone(),
        };
        self.placed.insert(item_no, (item.base.clone(), placed));
        let replaced = setting.then(|| "a setting: replaces the new OS's file".to_string()).filter(|_| *now != Existing::None);
        let note = match (replaced, xattrs::note(&attr_problems)) {
            (Some(a), Some(b)) => Some(format!("{a}; {b}")),
            (a, b) => a.or(b),
        };
        Ok((o, note))
    }

    fn set_meta_fd(&self, file: &File, meta: Meta) -> Result<(), String> {
        if self.chown {
            rustix::fs::fchown(file, uid(meta.uid), gid(meta.gid)).map_err(|e| format!("setting the owner: {e}"))?;
        }
        rustix::fs::fchmod(file, Mode::from_raw_mode(meta.mode)).map_err(|e| format!("setting the mode: {e}"))?;
        if meta.mtime.is_some() {
            rustix::fs::futimens(file, &times(meta.mtime)).map_err(|e| format!("setting the time: {e}"))?;
        }
        Ok(())
    }

    fn symlink(&mut self, actual: &RelPath, parent: Option<&OwnedFd>, now: &Existing, meta: Meta, setting: bool, to: &[u8]) -> Result<(Outcome, Option<String>), String> {
        let name = actual.name().to_vec();
        if let Existing::Link(t) = now {
            if t.as_slice() == to {
                return Ok((Outcome::Restored, Some("already there (same target)".into())));
            }
        }
        let place = self.decide(now, setting);
        let same = |e: &Existing| matches!(e, Existing::Link(t) if t.as_slice() == to);
        if let Some(b) = parent.filter(|_| place == Place::Beside).and_then(|p| earlier_beside(p, &name, &same)) {
            return Ok((Outcome::RestoredBeside { name: show(&b) }, Some("already there (same target)".into())));
        }
        let (Some(dir), false) = (parent, self.dry_run) else {
            return Ok((self.would(parent, &name, &place)?, None));
        };
        if matches!(place, Place::Skip) {
            return Ok((Outcome::SkippedConflict, None));
        }
        if let Place::Refuse(why) = &place {
            return Err(why.clone());
        }
        let tmp = self.next_tmp();
        rustix::fs::symlinkat(to, dir, tmp.as_str()).map_err(|e| format!("creating the link: {e}"))?;
        let r = (|| {
            if self.chown {
                rustix::fs::chownat(dir, tmp.as_str(), uid(meta.uid), gid(meta.gid), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| format!("setting the link's owner: {e}"))?;
            }
            if meta.mtime.is_some() {
                rustix::fs::utimensat(dir, tmp.as_str(), &times(meta.mtime), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| format!("setting the link's time: {e}"))?;
            }
            self.put(dir, &tmp, &name, &place)
        })();
        if r.is_err() {
            let _ = rustix::fs::unlinkat(dir, tmp.as_str(), AtFlags::empty());
        }
        Ok((r?, None))
    }

    fn hard_link(&mut self, item_no: usize, item: &Item, actual: &RelPath, parent: Option<&OwnedFd>, now: &Existing, setting: bool) -> Result<(Outcome, Option<String>), String> {
        let name = actual.name();
        let orig = item.link_to.and_then(|i| self.placed.get(&i).cloned());
        if self.dry_run {
            let place = self.decide(now, setting);
            return Ok((self.would(parent, name, &place)?, None));
        }
        let (obase, orel) = orig.ok_or("the file it is another name of was not restored")?;
        let dir = parent.ok_or("no directory")?;
        let ob = self.bases.get(&obase).and_then(|b| b.fd.clone()).ok_or("the original's base is not open")?;
        let odir = walk(ob.as_fd(), "", orel.dirs(), Missing::Fail).map_err(|e| format!("finding the original: {e}"))?;
        if let (Existing::File { ino, .. }, Ok(Existing::File { ino: o, .. })) = (now, existing(odir.as_fd(), orel.name())) {
            if *ino == o {
                return Ok((Outcome::Restored, Some("already there (the same file)".into())));
            }
        }
        let place = self.decide(now, setting);
        if matches!(place, Place::Skip) {
            return Ok((Outcome::SkippedConflict, None));
        }
        if let Place::Refuse(why) = &place {
            return Err(why.clone());
        }
        let tmp = self.next_tmp();
        rustix::fs::linkat(&odir, orel.name(), dir, tmp.as_str(), AtFlags::empty()).map_err(|e| format!("making the hard link: {e}"))?;
        let r = self.put(dir, &tmp, name, &place);
        if r.is_err() {
            let _ = rustix::fs::unlinkat(dir, tmp.as_str(), AtFlags::empty());
        }
        let o = r?;
        let placed = match &o {
            Outcome::RestoredBeside { name } => actual.with_name(&beside_bytes(name)),
            _ => actual.clone(),
        };
        self.placed.insert(item_no, (item.base.clone(), placed));
        Ok((o, None))
    }

    /// Sets the mode and time of every directory this restore made (deepest first), then
    /// syncs each base's filesystem. Returns problems, one line each.
    pub fn finish(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut dirs = std::mem::take(&mut self.dirs);
        dirs.sort_by_key(|d| std::cmp::Reverse(d.rel.parts().len()));
        self.parent = None;
        for d in dirs {
            let Some(b) = self.bases.get(&d.base).and_then(|b| b.fd.clone()) else { continue };
            let shown = self.target(&d.base, &d.rel);
            let r = walk(b.as_fd(), "", d.rel.parts(), Missing::Fail).map_err(err).and_then(|fd| {
                rustix::fs::fchmod(&fd, Mode::from_raw_mode(d.meta.mode)).map_err(err)?;
                if let Some(note) = d.attrs.as_ref().and_then(|a| xattrs::note(&xattrs::apply(fd.as_fd(), a))) {
                    problems.push(format!("{shown}: {note}"));
                }
                if d.meta.mtime.is_some() {
                    rustix::fs::futimens(&fd, &times(d.meta.mtime)).map_err(err)?;
                }
                Ok(())
            });
            if let Err(e) = r {
                problems.push(format!("{shown}: setting the directory's mode and time: {e}"));
            }
        }
        problems.extend(self.sync());
        problems
    }

    /// Syncs each base's filesystem: what was written so far is on the disk. Returns problems,
    /// one line each.
    pub fn sync(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for b in self.bases.values() {
            if let Some(fd) = &b.fd {
                if let Err(e) = rustix::fs::syncfs(fd.as_fd()) {
                    problems.push(format!("/{}: sync: {e}", b.abs));
                }
            }
        }
        problems
    }
}

/// Where a non-directory entry goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Place {
    New,
    Replace,
    Beside,
    Skip,
    Refuse(String),
}

/// The `.restored` copy beside `name` that an earlier run wrote, recognised by `same`: the
/// copies are looked at in order up to the first free name.
fn earlier_beside(dir: &OwnedFd, name: &[u8], same: &dyn Fn(&Existing) -> bool) -> Option<Vec<u8>> {
    for n in 1..=1000 {
        let b = beside_name(name, n)?;
        match existing(dir.as_fd(), &b) {
            Ok(e) if same(&e) => return Some(b),
            Ok(Existing::None) | Err(_) => return None,
            Ok(_) => {}
        }
    }
    None
}

fn rename_noreplace(dir: &OwnedFd, from: &[u8], to: &[u8]) -> Result<(), Errno> {
    match rustix::fs::renameat_with(dir, from, dir, to, RenameFlags::NOREPLACE) {
        // Filesystems without RENAME_NOREPLACE: check, then rename.
        Err(Errno::INVAL) => match rustix::fs::statat(dir, to, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(_) => Err(Errno::EXIST),
            Err(Errno::NOENT) => rustix::fs::renameat(dir, from, dir, to),
            Err(e) => Err(e),
        },
        r => r,
    }
}

/// The name a report's [`Outcome::RestoredBeside`] shows, as bytes again.
fn beside_bytes(shown: &str) -> Vec<u8> {
    unshow(shown).unwrap_or_else(|| shown.as_bytes().to_vec())
}

/// A uid for chown; `None` (leave unchanged) for -1, which means "no change" to the kernel.
fn uid(n: u32) -> Option<rustix::fs::Uid> {
    (n != u32::MAX).then(|| rustix::fs::Uid::from_raw(n))
}

fn gid(n: u32) -> Option<rustix::fs::Gid> {
    (n != u32::MAX).then(|| rustix::fs::Gid::from_raw(n))
}
