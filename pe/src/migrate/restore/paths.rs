//! Path safety. Every path read from a store is untrusted: [`RelPath::parse`] accepts only
//! plain relative names (bytes: a name need not be UTF-8, and is created exactly as stored), and every directory restore writes into is opened one component at a
//! time with `O_NOFOLLOW` ([`walk`]), holding each directory open, so no symbolic link — one
//! the new OS already has, or one this store created a moment ago — is ever followed below the
//! point where the entry's base directory was opened.
//!
//! The base directory itself (a home from the new OS's `/etc/passwd`) is opened with
//! `openat2(RESOLVE_IN_ROOT)` ([`Root::open_abs`]), so links the new OS set up (`/home` →
//! `/var/home`) work but resolve as if the restore root were `/`; where `openat2` is missing the
//! walk falls back to refusing every link.

use std::fmt;
use std::io;

use crate::fs::bytes::show;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// The longest name (one component) Linux filesystems take, in bytes.
pub const NAME_MAX: usize = 255;
/// The longest path restore accepts, in bytes.
pub const PATH_MAX: usize = 4095;

/// A path from the store that restore refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path:?}: {why}")]
pub struct PathError {
    pub path: String,
    pub why: String,
}

fn bad(path: &[u8], why: impl Into<String>) -> PathError {
    PathError { path: show(path), why: why.into() }
}

/// A checked relative path: one or more plain names (bytes), none of them `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RelPath {
    parts: Vec<Vec<u8>>,
}

impl RelPath {
    /// Checks an entry path from a store: relative, `/`-separated, every component a plain
    /// name of at most [`NAME_MAX`] bytes.
    pub fn parse(path: &[u8]) -> Result<RelPath, PathError> {
        if path.is_empty() {
            return Err(bad(path, "empty path"));
        }
        if path.len() > PATH_MAX {
            return Err(bad(path, format!("longer than {PATH_MAX} bytes")));
        }
        if path.contains(&0) {
            return Err(bad(path, "contains a NUL byte"));
        }
        if path.starts_with(b"/") {
            return Err(bad(path, "absolute path; store paths must be relative"));
        }
        if path.starts_with(b"\\") {
            return Err(bad(path, "starts with a backslash (a Windows absolute or UNC path)"));
        }
        // `C:\x` is a Windows absolute path; `a:b` alone is an ordinary Linux name.
        let b = path;
        if b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && b[2] == b'\\' {
            return Err(bad(path, "starts with a Windows drive prefix"));
        }
        let mut parts = Vec::new();
        for c in path.split(|b| *b == b'/') {
            check_name(path, c)?;
            parts.push(c.to_vec());
        }
        Ok(RelPath { parts })
    }

    /// An absolute path inside the new OS (a home directory from its `/etc/passwd`), relative
    /// to its root; `/` gives the empty path.
    pub fn parse_abs(path: &str) -> Result<RelPath, PathError> {
        let raw = path.as_bytes();
        if !path.starts_with('/') {
            return Err(bad(raw, "not an absolute path"));
        }
        if path.len() > PATH_MAX || path.contains('\0') {
            return Err(bad(raw, "too long or contains a NUL byte"));
        }
        let mut parts = Vec::new();
        for c in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
            if c == ".." {
                return Err(bad(raw, "contains a `..` component"));
            }
            if c.len() > NAME_MAX {
                return Err(bad(raw, format!("a component is longer than {NAME_MAX} bytes")));
            }
            parts.push(c.as_bytes().to_vec());
        }
        Ok(RelPath { parts })
    }

    pub fn parts(&self) -> &[Vec<u8>] {
        &self.parts
    }

    /// Every component but the last.
    pub fn dirs(&self) -> &[Vec<u8>] {
        self.parts.split_last().map_or(&[], |(_, d)| d)
    }

    /// The last component (empty for the empty path).
    pub fn name(&self) -> &[u8] {
        self.parts.last().map_or(&[], Vec::as_slice)
    }

    /// The exact bytes, `/`-joined (what `openat` takes; [`fmt::Display`] shows it).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.parts.join(&b'/')
    }

    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Whether `self` lies strictly below `dir`.
    pub fn is_below(&self, dir: &RelPath) -> bool {
        self.parts.len() > dir.parts.len() && self.parts.starts_with(&dir.parts)
    }

    /// `self` followed by `other`.
    pub fn join(&self, other: &RelPath) -> RelPath {
        RelPath { parts: self.parts.iter().chain(&other.parts).cloned().collect() }
    }

    /// The same path with the last component replaced.
    pub fn with_name(&self, name: &[u8]) -> RelPath {
        let mut parts = self.parts.clone();
        if let Some(last) = parts.last_mut() {
            *last = name.to_vec();
        }
        RelPath { parts }
    }

    /// The path without its `n` first components.
    pub fn suffix(&self, n: usize) -> RelPath {
        RelPath { parts: self.parts[n.min(self.parts.len())..].to_vec() }
    }

    /// The path of the `n` first components.
    pub fn prefix(&self, n: usize) -> RelPath {
        RelPath { parts: self.parts[..n.min(self.parts.len())].to_vec() }
    }
}

/// Shows the path with [`crate::fs::bytes::show`]: as it is when it is UTF-8 without a
/// backslash, escaped otherwise.
impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&show(&self.to_bytes()))
    }
}

fn check_name(path: &[u8], c: &[u8]) -> Result<(), PathError> {
    match c {
        b"" => return Err(bad(path, "has an empty component (`//` or a trailing `/`)")),
        b"." | b".." => return Err(bad(path, format!("has a `{}` component", show(c)))),
        _ => {}
    }
    if c.len() > NAME_MAX {
        return Err(bad(path, format!("a component is longer than {NAME_MAX} bytes")));
    }
    // A backslash is an ordinary character on Linux, but a name that a Windows tool would read
    // as `..\..\x` or `C:\x` is refused: it is a traversal attempt, not a file name.
    if c.contains(&b'\\') && c.split(|b| *b == b'\\').any(|p| p.is_empty() || p == b"." || p == b"..") {
        return Err(bad(path, "uses backslashes as separators (empty, `.` or `..` parts)"));
    }
    Ok(())
}

/// Checks a symbolic link's target: stored verbatim as link content and never followed, so
/// only its form is checked.
pub fn check_link_target(path: &[u8], target: &[u8]) -> Result<(), PathError> {
    if target.is_empty() {
        return Err(bad(path, "symbolic link with an empty target"));
    }
    if target.contains(&0) {
        return Err(bad(path, "symbolic link target contains a NUL byte"));
    }
    if target.len() > PATH_MAX {
        return Err(bad(path, format!("symbolic link target longer than {PATH_MAX} bytes")));
    }
    Ok(())
}

/// Why a directory below a base could not be opened.
#[derive(Debug)]
pub enum WalkError {
    /// The component is a symbolic link: restore does not follow it.
    Symlink(String),
    /// The component exists but is not a directory.
    NotDir(String),
    /// The component does not exist (only when not creating).
    Missing(String),
    Io(String, io::Error),
}

impl fmt::Display for WalkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WalkError::Symlink(p) => write!(
                f,
                "`{p}` is a symbolic link; restore never follows links inside the target (it could point \
                 outside it) — remove or rename the link and run restore again"
            ),
            WalkError::NotDir(p) => write!(f, "`{p}` exists and is not a directory"),
            WalkError::Missing(p) => write!(f, "`{p}` does not exist"),
            WalkError::Io(p, e) => write!(f, "`{p}`: {e}"),
        }
    }
}

impl std::error::Error for WalkError {}

/// Flags for a directory held open while walking.
fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// Opens the directory `name` in `dir` without following a link.
pub fn open_dir_nofollow(dir: BorrowedFd<'_>, name: &[u8]) -> Result<OwnedFd, Errno> {
    rustix::fs::openat(dir, name, dir_flags(), Mode::empty())
}

/// Whether `name` in `dir` is a symbolic link (without following it).
pub fn is_symlink_at(dir: BorrowedFd<'_>, name: &[u8]) -> bool {
    rustix::fs::statat(dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|s| rustix::fs::FileType::from_raw_mode(s.st_mode) == rustix::fs::FileType::Symlink)
}

/// How [`walk`] treats a missing directory.
pub enum Missing<'a> {
    /// Fail with [`WalkError::Missing`].
    Fail,
    /// Create it and let the callback set its owner and mode.
    Create(&'a mut dyn FnMut(BorrowedFd<'_>, &[u8]) -> io::Result<()>),
}

/// Opens `parts` below `base` one component at a time, never following a symbolic link.
/// `shown` prefixes the path in messages.
pub fn walk(base: BorrowedFd<'_>, shown: &str, parts: &[Vec<u8>], mut missing: Missing<'_>) -> Result<OwnedFd, WalkError> {
    let mut cur = rustix::io::dup(base).map_err(|e| WalkError::Io(shown.into(), e.into()))?;
    let mut here = shown.trim_end_matches('/').to_string();
    for name in parts {
        let name = name.as_slice();
        here = if here.is_empty() { show(name) } else { format!("{here}/{}", show(name)) };
        let next = match open_dir_nofollow(cur.as_fd(), name) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => match &mut missing {
                Missing::Fail => return Err(WalkError::Missing(here)),
                Missing::Create(init) => {
                    match rustix::fs::mkdirat(cur.as_fd(), name, Mode::from_raw_mode(0o700)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(WalkError::Io(here, e.into())),
                    }
                    let fd = open_dir_nofollow(cur.as_fd(), name).map_err(|e| classify(cur.as_fd(), name, &here, e))?;
                    init(cur.as_fd(), name).map_err(|e| WalkError::Io(here.clone(), e))?;
                    fd
                }
            },
            Err(e) => return Err(classify(cur.as_fd(), name, &here, e)),
        };
        cur = next;
    }
    Ok(cur)
}

fn classify(dir: BorrowedFd<'_>, name: &[u8], here: &str, e: Errno) -> WalkError {
    match e {
        Errno::LOOP => WalkError::Symlink(here.into()),
        Errno::NOTDIR if is_symlink_at(dir, name) => WalkError::Symlink(here.into()),
        Errno::NOTDIR => WalkError::NotDir(here.into()),
        Errno::NOENT => WalkError::Missing(here.into()),
        e => WalkError::Io(here.into(), e.into()),
    }
}

/// The restore target: a directory that stands for `/` of the new OS.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

impl Root {
    /// Opens `path` (which must be a directory) as the root.
    pub fn open(path: &Path) -> io::Result<Root> {
        let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).map_err(
            |e| io::Error::new(io::Error::from(e).kind(), format!("cannot open the restore root {}: {e}", path.display())),
        )?;
        Ok(Root { fd, path: path.to_owned() })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where `rel` is on the host, for messages and reports.
    pub fn show(&self, rel: &RelPath) -> String {
        let base = self.path.display().to_string();
        if rel.is_empty() {
            return base;
        }
        format!("{}/{rel}", base.trim_end_matches('/'))
    }

    /// Opens the directory at `abs` inside the root (a path as the new OS sees it), resolving
    /// the new OS's own links as if the root were `/`. `Ok(None)` if it does not exist.
    pub fn open_abs(&self, abs: &RelPath) -> Result<Option<OwnedFd>, WalkError> {
        if abs.is_empty() {
            return rustix::io::dup(self.fd()).map(Some).map_err(|e| WalkError::Io("/".into(), e.into()));
        }
        let shown = format!("/{abs}");
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
        match rustix::fs::openat2(self.fd(), abs.to_bytes(), flags, Mode::empty(), resolve) {
            Ok(fd) => Ok(Some(fd)),
            Err(Errno::NOENT) => Ok(None),
            Err(Errno::NOTDIR) => Err(WalkError::NotDir(shown)),
            // No openat2 (kernel < 5.6, or filtered): refuse every link instead.
            Err(Errno::NOSYS | Errno::PERM | Errno::AGAIN) => match walk(self.fd(), "", abs.parts(), Missing::Fail) {
                Ok(fd) => Ok(Some(fd)),
                Err(WalkError::Missing(_)) => Ok(None),
                Err(e) => Err(e),
            },
            Err(e) => Err(WalkError::Io(shown, e.into())),
        }
    }
}

/// The name a restored file gets beside a conflicting one: `<name>.restored`, then
/// `<name>.restored.2`, `.3`, … (`n` counts from 1). The suffix goes at the very end so a
/// configuration directory's `*.conf` glob never picks the restored copy up.
pub fn beside_name(name: &[u8], n: u32) -> Option<Vec<u8>> {
    let suffix = if n <= 1 { ".restored".to_string() } else { format!(".restored.{n}") };
    let s = [name, suffix.as_bytes()].concat();
    (s.len() <= NAME_MAX).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_relative_paths() {
        for p in ["a", "Documents/report.txt", ".bashrc", "..hidden", "a..b/c", "x/y z/ü.txt", "a\\b", "dir/a:b", "…"] {
            let r = RelPath::parse(p.as_bytes()).unwrap_or_else(|e| panic!("{p}: {e}"));
            assert_eq!(r.to_bytes(), p.as_bytes());
            // Shown as it is, but for the backslash, which is shown doubled (see `show`).
            assert_eq!(r.to_string(), p.replace('\\', "\\\\"));
        }
        assert_eq!(RelPath::parse(b"a/b/c").unwrap().dirs(), [b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(RelPath::parse(b"a/b/c").unwrap().name(), b"c");
        // Names are bytes: a Latin-1 name is kept exactly, and shown escaped.
        let latin1 = RelPath::parse(b"Documents/na\xefve.txt").unwrap();
        assert_eq!(latin1.name(), b"na\xefve.txt");
        assert_eq!(latin1.to_string(), "Documents/na\\xefve.txt");
        assert!(RelPath::parse(b"a/\xff/..").is_err());
    }

    #[test]
    fn refuses_every_escape_and_trick() {
        let long = "x".repeat(256);
        let deep = "a/".repeat(2100) + "a";
        let cases = [
            "",
            "/etc/passwd",
            "../etc/passwd",
            "../../etc/passwd",
            "a/../../etc",
            "a/..",
            "..",
            ".",
            "./a",
            "a/./b",
            "a//b",
            "a/",
            "a\0b",
            "C:\\Windows",
            "\\\\server\\share",
            "\\etc\\passwd",
            "a\\..\\..\\etc",
            "..\\x",
            "a\\\\b",
            long.as_str(),
            deep.as_str(),
        ];
        for p in cases {
            assert!(RelPath::parse(p.as_bytes()).is_err(), "{p:?} was accepted");
        }
        assert!(RelPath::parse(b"/x").unwrap_err().to_string().contains("absolute"));
    }

    #[test]
    fn home_paths_and_link_targets() {
        assert_eq!(RelPath::parse_abs("/home/carol/").unwrap().parts(), [b"home".to_vec(), b"carol".to_vec()]);
        assert!(RelPath::parse_abs("/").unwrap().is_empty());
        assert!(RelPath::parse_abs("/home/../etc").is_err());
        assert!(RelPath::parse_abs("home").is_err());
        assert!(check_link_target(b"l", b"/etc/passwd").is_ok(), "absolute targets are link content");
        assert!(check_link_target(b"l", b"../../x").is_ok());
        assert!(check_link_target(b"l", b"na\xefve").is_ok(), "targets are bytes");
        assert!(check_link_target(b"l", b"").is_err());
        assert!(check_link_target(b"l", b"a\0").is_err());
    }

    #[test]
    fn relations() {
        let a = RelPath::parse(b"a/b").unwrap();
        assert!(RelPath::parse(b"a/b/c").unwrap().is_below(&a));
        assert!(!a.is_below(&a));
        assert!(!RelPath::parse(b"a/bc").unwrap().is_below(&a));
        assert_eq!(a.with_name(b"z").to_string(), "a/z");
        assert_eq!(a.prefix(1).to_string(), "a");
        assert_eq!(a.suffix(1).to_string(), "b");
    }

    #[test]
    fn beside_names() {
        assert_eq!(beside_name(b"x.conf", 1).unwrap(), b"x.conf.restored");
        assert_eq!(beside_name(b"x.conf", 3).unwrap(), b"x.conf.restored.3");
        assert_eq!(beside_name(b"na\xef", 1).unwrap(), b"na\xef.restored");
        assert!(beside_name("y".repeat(250).as_bytes(), 1).is_none());
    }

    /// A root inside a temp dir, with a sentinel sibling that must stay empty.
    fn sandbox() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        let outside = t.path().join("outside");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        (t, root, outside)
    }

    #[test]
    fn walk_never_follows_links() {
        let (_t, root, outside) = sandbox();
        std::fs::create_dir_all(root.join("home/carol")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("home/carol/out")).unwrap();
        std::os::unix::fs::symlink("../..", root.join("home/carol/up")).unwrap();
        std::fs::write(root.join("home/carol/file"), b"x").unwrap();
        let r = Root::open(&root).unwrap();
        let home = r.open_abs(&RelPath::parse_abs("/home/carol").unwrap()).unwrap().unwrap();
        let parts = |p: &str| RelPath::parse(p.as_bytes()).unwrap().parts().to_vec();
        let mut made = 0;
        let mut init = |_: BorrowedFd<'_>, _: &[u8]| {
            made += 1;
            Ok(())
        };
        for p in ["out/x", "up/x", "out"] {
            let e = walk(home.as_fd(), "~", &parts(p), Missing::Create(&mut init)).unwrap_err();
            assert!(matches!(e, WalkError::Symlink(_)), "{p}: {e}");
        }
        assert!(matches!(walk(home.as_fd(), "~", &parts("file/x"), Missing::Fail), Err(WalkError::NotDir(_))));
        assert!(matches!(walk(home.as_fd(), "~", &parts("new"), Missing::Fail), Err(WalkError::Missing(_))));
        walk(home.as_fd(), "~", &parts("new/deeper"), Missing::Create(&mut init)).unwrap();
        assert_eq!(made, 2);
        assert!(root.join("home/carol/new/deeper").is_dir());
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    }

    #[test]
    fn open_abs_keeps_the_new_os_links_inside_the_root() {
        let (_t, root, outside) = sandbox();
        std::fs::create_dir_all(root.join("var/home/carol")).unwrap();
        // An absolute link of the new OS: resolved inside the root, not on the host.
        std::os::unix::fs::symlink("/var/home", root.join("home")).unwrap();
        std::os::unix::fs::symlink("../../../outside", root.join("var/home/escape")).unwrap();
        let r = Root::open(&root).unwrap();
        let fd = r.open_abs(&RelPath::parse_abs("/home/carol").unwrap()).unwrap().unwrap();
        rustix::fs::mkdirat(&fd, "marker", Mode::from_raw_mode(0o755)).unwrap();
        assert!(root.join("var/home/carol/marker").is_dir());
        // `..` past the root is clamped to the root: the link lands on <root>/outside.
        std::fs::create_dir(root.join("outside")).unwrap();
        let fd = r.open_abs(&RelPath::parse_abs("/var/home/escape").unwrap()).unwrap().unwrap();
        rustix::fs::mkdirat(&fd, "clamped", Mode::from_raw_mode(0o755)).unwrap();
        assert!(root.join("outside/clamped").is_dir());
        assert!(r.open_abs(&RelPath::parse_abs("/nope").unwrap()).unwrap().is_none());
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    }
}
