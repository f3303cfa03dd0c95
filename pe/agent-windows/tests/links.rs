//! Links (reparse points: symlinks, junctions) in the staged folder are never followed.
//!
//! On Linux these are symlinks. On Windows they are symlinks made with `CreateSymbolicLinkW`
//! (std's `symlink_file`/`symlink_dir`), which `FILE_ATTRIBUTE_REPARSE_POINT` reports.
//! Wine 8 (Debian 12) cannot make a reparse point at all: `CreateSymbolicLinkW` is a stub that
//! succeeds and creates nothing, there is no `FSCTL_SET_REPARSE_POINT`, and a Unix symlink in
//! the prefix shows as a plain file or folder. There these tests say so and stop early.

mod common;

use common::{sha, t, Fixture};
use inplace_agent::manifest::{Entry, Kind};
use inplace_agent::report::{Outcome, Status};
use std::path::Path;

#[cfg(unix)]
fn link(target: &Path, link: &Path, _dir: bool) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(windows)]
fn link(target: &Path, link: &Path, dir: bool) -> std::io::Result<()> {
    if dir {
        std::os::windows::fs::symlink_dir(target, link)
    } else {
        std::os::windows::fs::symlink_file(target, link)
    }
}

/// Makes a link; false (with a note) where the OS cannot make one that reads as a reparse point.
fn try_link(target: &Path, at: &Path, dir: bool) -> bool {
    let made = link(target, at, dir).and_then(|()| std::fs::symlink_metadata(at));
    match made {
        Ok(m) if inplace_agent::platform::is_reparse_point(&m) => true,
        other => {
            if !cfg!(windows) {
                panic!("a symlink must be possible here: {other:?}");
            }
            eprintln!("cannot make a reparse point here (Wine 8 cannot): {other:?}; the link case is not exercised");
            false
        }
    }
}

fn listed(f: &mut Fixture, path: &str, bytes: &[u8]) {
    f.entries.push(Entry { path: path.into(), kind: Kind::File, size: Some(bytes.len() as u64), sha256: Some(sha(bytes)), mtime_ns: Some(t(0)), created_ns: None });
}

#[test]
fn a_linked_file_or_folder_is_not_followed_and_stays_staged() {
    let mut f = Fixture::new("Carol");
    f.file("Documents/plain.txt", b"plain", t(1));
    let outside = f.tmp.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), b"secret").unwrap();
    // A manifest that matches the linked-to bytes, as a hostile one would.
    if !try_link(&outside.join("secret.txt"), &f.staged_path("Documents/link.txt"), false) {
        return;
    }
    listed(&mut f, "Documents/link.txt", b"secret");
    assert!(try_link(&outside, &f.staged_path("Documents/linkdir"), true));
    listed(&mut f, "Documents/linkdir/secret.txt", b"secret");

    let r = f.run();
    assert_eq!(r.status, Status::Incomplete, "{r:#?}");
    for p in ["Documents/link.txt", "Documents/linkdir/secret.txt"] {
        let e = r.entries.iter().find(|e| e.path == p).unwrap();
        assert_eq!(e.outcome, Outcome::Failed, "{p}");
        assert!(e.reason.as_ref().unwrap().contains("reparse point"), "{e:?}");
        assert!(!f.at(p).exists(), "{p} was written");
    }
    assert_eq!(std::fs::read(f.at("Documents/plain.txt")).unwrap(), b"plain");
    // The links stay in the staged folder; what they point to is untouched.
    assert!(std::fs::symlink_metadata(f.staged_path("Documents/link.txt")).is_ok());
    assert!(std::fs::symlink_metadata(f.staged_path("Documents/linkdir")).is_ok());
    assert_eq!(std::fs::read(outside.join("secret.txt")).unwrap(), b"secret");
}

#[test]
fn removing_the_staged_copy_does_not_follow_a_link() {
    let mut f = Fixture::new("Carol");
    f.file("Documents/plain.txt", b"plain", t(1));
    let outside = f.tmp.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("keep.txt"), b"keep").unwrap();
    // A link the manifest does not list.
    if !try_link(&outside, &f.staged_path("Documents/unlisted"), true) {
        return;
    }
    let r = f.run();
    assert_eq!(r.status, Status::Complete, "{r:#?}");
    assert!(!f.staged.join("Carol").exists());
    assert_eq!(std::fs::read(outside.join("keep.txt")).unwrap(), b"keep");
}
