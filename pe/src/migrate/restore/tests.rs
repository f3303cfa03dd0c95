//! Restore through real stores: a capture of an in-memory filesystem into a FAT32 image,
//! then a restore into a root inside a temp dir, next to a sentinel directory that must stay
//! untouched.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::users::tests::{os_root, FakeUseradd};
use super::*;
use crate::error::Written;
use crate::migrate::capture::{capture, CaptureOptions, CapturePlan};
use crate::fs::Bytes;
use crate::migrate::entry::{Entry, Kind};
use crate::migrate::job_info::{JobInfo, RestoreChoices};
use crate::migrate::store::CaptureName;
use crate::migrate::testing::MemFs;
use crate::progress::Silent;

/// A temp dir holding `root/` (a small new OS), `outside/` (the sentinel) and `store.img`.
struct World {
    _t: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
    img: PathBuf,
}

fn world() -> World {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    let outside = t.path().join("outside");
    os_root(&root);
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("keep"), b"sentinel").unwrap();
    fs::write(root.join("etc/hostname"), b"debian\n").unwrap();
    let img = t.path().join("store.img");
    let f = fs::OpenOptions::new().read(true).write(true).create_new(true).open(&img).unwrap();
    f.set_len(40 << 20).unwrap();
    crate::carve::store::format(&f, 0, 40 << 20, 512, 7).unwrap();
    World { _t: t, root, outside, img }
}

fn entry(user: Option<&str>, path: &str, kind: Kind, size: u64) -> Entry {
    Entry {
        source: match user {
            Some(u) => format!("/Users/{u}/{path}").into(),
            None => format!("/{path}").into(),
        },
        user: user.map(String::from),
        path: path.into(),
        kind,
        size,
        mode: None,
        owner: None,
        group: None,
        uid: None,
        gid: None,
        mtime: Some(crate::fs::Time { secs: 1_600_000_000, nanos: 5 }),
        attributes: None,
        target: None,
        xattrs: Vec::new(),
        acl: None,
        allocated: None,
    }
}

/// Adds a file entry and its data to the memfs.
fn file(fs_: &mut MemFs, entries: &mut Vec<Entry>, user: Option<&str>, path: &str, data: &[u8]) {
    let e = entry(user, path, Kind::File, data.len() as u64);
    fs_.file(&e.source, data, 0, 0);
    entries.push(e);
}

fn capture_into(img: &Path, fs_: &mut MemFs, entries: Vec<Entry>, info: JobInfo) {
    let users: Vec<String> = entries.iter().filter_map(|e| e.user.clone()).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    let plan = CapturePlan { entries, skipped: Vec::new(), users, info };
    let mut store = Store::open(img, true).unwrap();
    let opts = CaptureOptions { workers: 2, reread_from_device: false, ..CaptureOptions::default() };
    capture(fs_, &plan, &mut store, &opts, &Silent, &Cancel::new()).unwrap();
}

/// Every path under `dir` with what it is: type, size, mode, owner, content or target.
fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let m = fs::symlink_metadata(&p).unwrap();
            let what = if m.file_type().is_symlink() {
                format!("link {:?}", fs::read_link(&p).unwrap())
            } else if m.is_dir() {
                stack.push(p.clone());
                format!("dir {:o} {}", m.mode(), m.uid())
            } else {
                format!("file {:o} {} {:?}", m.mode(), m.uid(), fs::read(&p).unwrap())
            };
            out.insert(p.strip_prefix(dir).unwrap().display().to_string(), what);
        }
    }
    out
}

fn opts(root: &Path) -> Options {
    Options { root: root.to_path_buf(), ..Options::default() }
}

fn run(img: &Path, o: &Options) -> Result<Finished, Error> {
    let store = Store::open(img, !o.dry_run).unwrap();
    restore(store, o, &mut FakeUseradd(3000), &Silent, &Cancel::new())
}

/// The report of a run that restored, complete or not.
fn done(r: Result<Finished, Error>) -> Report {
    match r.unwrap() {
        Finished::Done(r) | Finished::Incomplete(r) => *r,
        Finished::AlreadyRestored(s) => panic!("already restored: {s:?}"),
    }
}

/// The report of a run that got everything in.
fn complete(r: Result<Finished, Error>) -> Report {
    match r.unwrap() {
        Finished::Done(r) => *r,
        other => panic!("not complete: {other:?}"),
    }
}

fn outcome<'a>(r: &'a Report, source_end: &str) -> &'a EntryReport {
    r.entries.iter().find(|e| e.source.ends_with(source_end)).unwrap_or_else(|| panic!("no entry {source_end}"))
}

/// A Windows-style capture of Carol's profile and some Linux settings.
fn sample(w: &World) {
    let mut m = MemFs::default();
    let mut es = Vec::new();
    es.push(entry(Some("Carol"), "Documents", Kind::Dir, 0));
    file(&mut m, &mut es, Some("Carol"), "Documents/report.txt", b"quarterly numbers");
    let mut ro = entry(Some("Carol"), "Documents/readonly.txt", Kind::File, 2);
    ro.attributes = Some(0x21);
    m.file(&ro.source, b"ro", 0, 0);
    es.push(ro);
    let mut link = entry(Some("Carol"), "Documents/passwd-link", Kind::Symlink, 0);
    link.target = Some("/etc/passwd".into());
    es.push(link);
    let mut hl = entry(Some("Carol"), "Documents/report-copy.txt", Kind::HardLink, 0);
    hl.target = Some("Documents/report.txt".into());
    es.push(hl);
    // 6 MiB, zeros but for the last bytes: stored with holes, restored sparse.
    let mut sparse = vec![0u8; 6 << 20];
    sparse[(6 << 20) - 4..].copy_from_slice(b"tail");
    file(&mut m, &mut es, Some("Carol"), "disk.img", &sparse);
    file(&mut m, &mut es, None, "etc/hostname", b"carols-pc\n");
    let mut nm = entry(None, "etc/NetworkManager/system-connections/home.nmconnection", Kind::File, 10);
    nm.mode = Some(0o600);
    nm.owner = Some("root".into());
    m.file(&nm.source, b"[wifi]\npsk", 0, 0);
    es.push(nm);
    file(&mut m, &mut es, None, "etc/passwd", b"root:x:0:0::/root:/bin/sh\n");
    let keep = RestoreChoices { cleanup: Some("keep".into()), ..RestoreChoices::default() };
    capture_into(&w.img, &mut m, es, JobInfo { restore: keep, ..JobInfo::default() });
}

#[test]
fn restores_a_profile_and_settings() {
    let w = world();
    sample(&w);
    let r = complete(run(&w.img, &opts(&w.root)));
    assert_eq!((r.totals.failed, r.totals.left_out), (0, 1), "{}", r.text());
    let Outcome::LeftOut { reason } = &outcome(&r, "etc/passwd").outcome else { panic!() };
    assert!(reason.contains("never replaces"));
    assert!(r.text().contains("left out by policy: /etc/passwd"), "{}", r.text());
    assert_eq!(fs::read_to_string(w.root.join("etc/passwd")).unwrap(), super::users::tests::PASSWD);
    let home = w.root.join("home/carol");
    assert_eq!(fs::read(home.join("Documents/report.txt")).unwrap(), b"quarterly numbers");
    let m = fs::metadata(home.join("Documents/report.txt")).unwrap();
    assert_eq!(m.permissions().mode() & 0o7777, 0o644);
    assert_eq!(m.mtime(), 1_600_000_000);
    assert_eq!(m.mtime_nsec(), 5);
    if rustix::process::geteuid().is_root() {
        assert_eq!((m.uid(), m.gid()), (1000, 1000), "owned by carol by name");
    }
    assert_eq!(fs::metadata(home.join("Documents/readonly.txt")).unwrap().permissions().mode() & 0o777, 0o444);
    assert_eq!(fs::metadata(home.join("Documents")).unwrap().permissions().mode() & 0o777, 0o755);
    assert_eq!(fs::metadata(home.join("Documents")).unwrap().mtime(), 1_600_000_000, "dir time set after its contents");
    assert_eq!(fs::read_link(home.join("Documents/passwd-link")).unwrap(), Path::new("/etc/passwd"));
    assert_eq!(fs::metadata(home.join("Documents/report-copy.txt")).unwrap().ino(), m.ino());
    let sp = fs::metadata(home.join("disk.img")).unwrap();
    assert_eq!(sp.len(), 6 << 20);
    // Only the last 1 MiB chunk (the one holding data) is allocated.
    assert!(sp.blocks() * 512 <= 1 << 20, "sparse: {} blocks", sp.blocks());
    assert_eq!(&fs::read(home.join("disk.img")).unwrap()[(6 << 20) - 4..], b"tail");
    // Settings replace the new OS's files.
    assert_eq!(fs::read(w.root.join("etc/hostname")).unwrap(), b"carols-pc\n");
    let nm = w.root.join("etc/NetworkManager/system-connections/home.nmconnection");
    assert_eq!(fs::metadata(&nm).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(r.settings_applied.len(), 2, "{:?}", r.settings_applied);
    assert_eq!(outcome(&r, "etc/hostname").target, "/etc/hostname");
    // Reports in the new OS and in the store, and the mark.
    let json: serde_json::Value = serde_json::from_slice(&fs::read(w.root.join("var/log/inplace/restore-report.json")).unwrap()).unwrap();
    assert_eq!(json["users"][0]["account"], "carol");
    assert_eq!(json["cleanup"]["mode"], "keep");
    assert!(fs::read_to_string(w.root.join("var/log/inplace/restore-report.txt")).unwrap().contains("user Carol → carol"));
    let store = Store::open(&w.img, false).unwrap();
    assert!(store.read_file(report::STORE_JSON, 1 << 20).unwrap().is_some());
    assert_eq!(state::read(&store).unwrap().unwrap().state, "restored");
    drop(store);
    assert_eq!(snapshot(&w.outside).len(), 1);

    // A second run says so and writes nothing.
    let before = snapshot(&w.root);
    let img_before = fs::read(&w.img).unwrap();
    assert!(matches!(run(&w.img, &opts(&w.root)).unwrap(), Finished::AlreadyRestored(_)));
    assert_eq!(snapshot(&w.root), before);
    assert!(fs::read(&w.img).unwrap() == img_before);

    // --again finds everything already there: no `.restored` copies.
    let r = done(run(&w.img, &Options { again: true, ..opts(&w.root) }));
    assert_eq!(r.totals.restored_beside, 0, "{}", r.text());
    assert!(outcome(&r, "report.txt").note.as_deref().unwrap_or("").contains("already there"));
}

#[test]
fn dry_run_writes_nothing_anywhere() {
    let w = world();
    sample(&w);
    let before = snapshot(&w.root);
    let img_before = fs::read(&w.img).unwrap();
    let r = done(run(&w.img, &Options { dry_run: true, cleanup: Some(Cleanup::Empty), ..opts(&w.root) }));
    assert!(r.dry_run);
    assert_eq!((r.totals.failed, r.totals.left_out), (0, 1), "only the protected etc/passwd is left out: {}", r.text());
    assert_eq!(r.totals.restored, r.totals.entries - 1);
    assert!(r.text().contains("dry run"));
    assert!(!r.cleanup.as_ref().unwrap().done);
    assert_eq!(snapshot(&w.root), before);
    assert!(fs::read(&w.img).unwrap() == img_before, "the store is unchanged");
}

fn conflict_world(policy: Conflict) -> (World, Report) {
    let w = world();
    let mut m = MemFs::default();
    let mut es = Vec::new();
    file(&mut m, &mut es, Some("Carol"), ".bashrc", b"ours");
    es.push(entry(Some("Carol"), "Music", Kind::Dir, 0));
    file(&mut m, &mut es, Some("Carol"), "Music/song.ogg", b"la");
    capture_into(&w.img, &mut m, es, JobInfo::default());
    fs::write(w.root.join("home/carol/.bashrc"), b"new os").unwrap();
    fs::write(w.root.join("home/carol/Music"), b"a file where a dir goes").unwrap();
    let r = done(run(&w.img, &Options { conflict: Some(policy), ..opts(&w.root) }));
    (w, r)
}

#[test]
fn conflicts_keep_new() {
    let (w, r) = conflict_world(Conflict::KeepNew);
    let home = w.root.join("home/carol");
    assert_eq!(fs::read(home.join(".bashrc")).unwrap(), b"new os");
    assert_eq!(fs::read(home.join(".bashrc.restored")).unwrap(), b"ours");
    assert_eq!(outcome(&r, ".bashrc").outcome, Outcome::RestoredBeside { name: ".bashrc.restored".into() });
    assert_eq!(outcome(&r, ".bashrc").target, "/home/carol/.bashrc.restored");
    assert_eq!(fs::read(home.join("Music.restored/song.ogg")).unwrap(), b"la", "contents follow their directory");
    assert_eq!(outcome(&r, "song.ogg").target, "/home/carol/Music.restored/song.ogg");
}

#[test]
fn conflicts_overwrite() {
    let (w, r) = conflict_world(Conflict::Overwrite);
    let home = w.root.join("home/carol");
    assert_eq!(fs::read(home.join(".bashrc")).unwrap(), b"ours");
    assert!(!home.join(".bashrc.restored").exists());
    assert_eq!(fs::read(home.join("Music/song.ogg")).unwrap(), b"la");
    assert!(r.complete());
}

#[test]
fn conflicts_skip() {
    let (w, r) = conflict_world(Conflict::Skip);
    let home = w.root.join("home/carol");
    assert_eq!(fs::read(home.join(".bashrc")).unwrap(), b"new os");
    assert_eq!(outcome(&r, ".bashrc").outcome, Outcome::SkippedConflict);
    assert_eq!(outcome(&r, "song.ogg").outcome, Outcome::SkippedConflict);
    assert!(home.join("Music").is_file());
}

#[test]
fn missing_users_and_created_users() {
    let w = world();
    let mut m = MemFs::default();
    let mut es = Vec::new();
    file(&mut m, &mut es, Some("Erin"), "notes.txt", b"erin");
    capture_into(&w.img, &mut m, es, JobInfo::default());
    let r = done(run(&w.img, &opts(&w.root)));
    assert_eq!(r.users[0].status, UserStatus::Missing);
    let Outcome::Failed { reason } = &outcome(&r, "notes.txt").outcome else { panic!() };
    assert!(reason.contains("no account named \"Erin\""), "{reason}");
    assert_eq!(r.users[0].hint, Some(Hint::CreateUsers));
    assert!(!r.complete());

    let w = world();
    let mut m = MemFs::default();
    let mut es = Vec::new();
    file(&mut m, &mut es, Some("Erin"), "notes.txt", b"erin");
    // The store's recorded option allows creating accounts.
    let info = JobInfo { restore: RestoreChoices { create_users: Some(true), ..RestoreChoices::default() }, ..JobInfo::default() };
    capture_into(&w.img, &mut m, es, info);
    let r = done(run(&w.img, &opts(&w.root)));
    assert_eq!(r.users[0].status, UserStatus::Created);
    assert_eq!(fs::read(w.root.join("home/erin/notes.txt")).unwrap(), b"erin");
    if rustix::process::geteuid().is_root() {
        assert_eq!(fs::metadata(w.root.join("home/erin/notes.txt")).unwrap().uid(), 3000);
    }
}

#[test]
fn an_empty_root_is_refused_clearly() {
    let w = world();
    let mut m = MemFs::default();
    let mut es = Vec::new();
    file(&mut m, &mut es, Some("Carol"), "a", b"a");
    capture_into(&w.img, &mut m, es, JobInfo::default());
    let empty = w.root.parent().unwrap().join("empty");
    fs::create_dir(&empty).unwrap();
    let err = run(&w.img, &opts(&empty)).unwrap_err();
    let e = err.to_string();
    assert!(e.contains("has no etc/passwd") && e.contains("creating users is not allowed"), "{e}");
    assert_eq!((err.written, err.kind), (Written::Nothing, crate::error::Kind::Refused));
    assert_eq!(fs::read_dir(&empty).unwrap().count(), 0);
}

/// Rewrites the store's manifest (and its SHA-256) with `edit`.
fn tamper(img: &Path, edit: impl FnOnce(&mut Manifest)) {
    let mut m = Store::open(img, false).unwrap().manifest().unwrap();
    edit(&mut m);
    let (json, line) = m.encode().unwrap();
    let f = fs::OpenOptions::new().read(true).write(true).open(img).unwrap();
    let fat = fatfs::FileSystem::new(f, fatfs::FsOptions::new()).unwrap();
    {
        let dir = fat.root_dir().open_dir("capture").unwrap();
        for (name, bytes) in [("manifest.json", json), ("manifest.sha256", line.into_bytes())] {
            let mut f = dir.create_file(name).unwrap();
            f.truncate().unwrap();
            std::io::Write::write_all(&mut f, &bytes).unwrap();
        }
    }
    fat.unmount().unwrap();
}

fn assert_refused(w: &World, want: &str) {
    let before = snapshot(&w.root);
    let err = run(&w.img, &opts(&w.root)).unwrap_err();
    let e = err.to_string();
    assert!(e.contains(want), "{e}");
    assert_eq!((err.written, err.kind), (Written::Nothing, crate::error::Kind::Damaged), "{e}");
    assert!(!err.hints.is_empty(), "{err:?}");
    assert_eq!(snapshot(&w.root), before, "nothing written into the root");
    assert_eq!(snapshot(&w.outside).len(), 1, "nothing written outside");
    assert_eq!(fs::read(w.outside.join("keep")).unwrap(), b"sentinel");
}

#[test]
fn hostile_paths_are_refused_before_any_write() {
    for bad in ["../../etc/passwd", "../../outside/evil", "/etc/passwd", "a/../../x", "C:\\Windows\\x"] {
        let w = world();
        let mut m = MemFs::default();
        let mut es = Vec::new();
        file(&mut m, &mut es, Some("Carol"), "fine.txt", b"ok");
        let mut e = entry(Some("Carol"), "x", Kind::File, 4);
        m.file(&e.source, b"evil", 0, 0);
        e.path = bad.into();
        es.push(e);
        capture_into(&w.img, &mut m, es, JobInfo::default());
        assert_refused(&w, "unsafe or inconsistent");
    }
}

#[test]
fn a_file_through_the_stores_own_link_is_refused() {
    let w = world();
    let mut m = MemFs::default();
    let mut es = Vec::new();
    let mut l = entry(Some("Carol"), "esc", Kind::Symlink, 0);
    l.target = Some("../../../outside".into());
    m.symlink(&l.source, "../../../outside", 0, 0);
    es.push(l);
    file(&mut m, &mut es, Some("Carol"), "esc/evil", b"evil");
    capture_into(&w.img, &mut m, es, JobInfo::default());
    assert_refused(&w, "lies below esc");
}

#[test]
fn a_one_tib_claim_is_refused() {
    let w = world();
    let mut m = MemFs::default();
    let mut es = Vec::new();
    file(&mut m, &mut es, Some("Carol"), "big", b"small really");
    capture_into(&w.img, &mut m, es, JobInfo::default());
    tamper(&w.img, |m| {
        m.entries[0].entry.size = 1 << 40;
        m.totals.bytes = 1 << 40;
    });
    assert_refused(&w, "cannot be trusted");
}

#[test]
fn a_damaged_store_is_refused() {
    let w = world();
    let mut m = MemFs::default();
    let mut es = Vec::new();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    file(&mut m, &mut es, Some("Carol"), "data.bin", &data);
    capture_into(&w.img, &mut m, es, JobInfo::default());
    // Flip a byte inside the segment's data (found by its magic).
    let mut img = fs::read(&w.img).unwrap();
    let at = img.windows(8).position(|x| x == b"INPLSEGM").unwrap() + 32 + 40 + 100;
    img[at] ^= 0xFF;
    fs::write(&w.img, img).unwrap();
    assert_refused(&w, "failed verification");
}

#[test]
fn links_already_in_the_new_os_are_never_followed() {
    let w = world();
    let mut m = MemFs::default();
    let mut es = Vec::new();
    file(&mut m, &mut es, Some("Carol"), "Documents/a.txt", b"a");
    file(&mut m, &mut es, Some("Carol"), "b.txt", b"b");
    capture_into(&w.img, &mut m, es, JobInfo::default());
    std::os::unix::fs::symlink(&w.outside, w.root.join("home/carol/Documents")).unwrap();
    let r = done(run(&w.img, &opts(&w.root)));
    let Outcome::Failed { reason } = &outcome(&r, "a.txt").outcome else { panic!("{}", r.text()) };
    assert!(reason.contains("symbolic link"), "{reason}");
    assert_eq!(outcome(&r, "b.txt").outcome, Outcome::Restored);
    assert_eq!(snapshot(&w.outside).len(), 1);
}

#[test]
fn cleanup_empty_clears_the_capture_and_stays_restored() {
    let w = world();
    sample(&w);
    let r = done(run(&w.img, &Options { cleanup: Some(Cleanup::Empty), ..opts(&w.root) }));
    assert!(r.cleanup.as_ref().unwrap().done, "{:?}", r.cleanup);
    let store = Store::open(&w.img, false).unwrap();
    assert!(store.manifest().is_err());
    drop(store);
    assert!(matches!(run(&w.img, &opts(&w.root)).unwrap(), Finished::AlreadyRestored(_)));
}

#[test]
fn modes_and_recorded_choices() {
    let mut e = entry(None, "x", Kind::File, 0);
    e.mode = Some(0o4755);
    assert_eq!(mode_of(&e), (0o755, Some("setuid/setgid bits dropped".into())));
    e.kind = Kind::Dir;
    e.mode = Some(0o2775);
    assert_eq!(mode_of(&e).0, 0o2775);
    e.mode = None;
    e.attributes = Some(1);
    assert_eq!(mode_of(&e).0, 0o755, "READONLY is ignored on folders");
    let mut m = plan::tests::manifest(Vec::new());
    m.info.restore = RestoreChoices {
        conflict: Some("overwrite".into()),
        cleanup: Some("bogus".into()),
        create_users: Some(true),
        passwords: Some(false),
        initial_password: None,
    };
    let mut notes = Vec::new();
    let c = choices(&Options::default(), &m, &mut notes);
    assert_eq!(c, Choices { conflict: Conflict::Overwrite, create_users: true, passwords: false, cleanup: Cleanup::Keep });
    assert!(notes[0].contains("bogus"));
    let c = choices(&Options { conflict: Some(Conflict::Skip), passwords: Some(true), ..Options::default() }, &m, &mut notes);
    assert_eq!((c.conflict, c.passwords), (Conflict::Skip, true), "the command line wins");
    m.info.restore = RestoreChoices::default();
    assert!(choices(&Options::default(), &m, &mut notes).passwords, "passwords are carried by default");
}

fn have(tool: &str) -> bool {
    std::process::Command::new(tool).arg("-V").output().is_ok()
}

#[test]
fn cleanup_delete_on_a_gpt_image_grows_the_os_partition() {
    delete_on_image("gpt");
}

#[test]
fn cleanup_delete_on_an_mbr_image_grows_the_os_partition() {
    delete_on_image("dos");
}

/// `delete` on a disk image: an ext4 OS partition and a carved store after it.
fn delete_on_image(label: &str) {
    if !(have("sfdisk") && have("mkfs.ext4") && have("resize2fs") && have("dumpe2fs")) {
        eprintln!("skipped: sfdisk, mkfs.ext4, resize2fs or dumpe2fs missing");
        return;
    }
    use crate::carve::{layout, model::Request, plan as carve_plan, CarveOptions};
    let w = world();
    let disk = w.root.parent().unwrap().join("disk.img");
    fs::File::create(&disk).unwrap().set_len(128 << 20).unwrap();
    let sh = |cmd: &str| {
        let o = std::process::Command::new("sh").arg("-c").arg(cmd).output().unwrap();
        assert!(o.status.success(), "{cmd}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let d = disk.display();
    sh(&format!("printf 'label: {label}\\nstart=2048, size=81920, type=L\\n' | sfdisk -q {d}"));
    // mke2fs would cut an image file to the filesystem's end: make it apart, copy it in.
    let fsimg = w.root.parent().unwrap().join("fs.img");
    sh(&format!("mkfs.ext4 -q -F {} 40M && dd if={} of={d} bs=1M seek=1 conv=notrunc status=none", fsimg.display(), fsimg.display()));
    let shared: crate::disk::device::SharedDisk = std::sync::Arc::new(crate::disk::device::Device::open(&disk).unwrap());
    let state = layout::read(&shared, "disk", None, false).unwrap();
    let plan = carve_plan::plan(&state.layout, &state.tails, &Request { store_bytes: 36 << 20, replace: vec![] }).unwrap();
    let carve_opts = CarveOptions { job_name: "test".into(), job_id: None, repair_gpt: false };
    crate::carve::carve(&disk, &plan, &carve_opts, &crate::progress::Silent, &crate::progress::Cancel::new()).unwrap();
    let mut m = MemFs::default();
    let mut es = Vec::new();
    file(&mut m, &mut es, Some("Carol"), "a.txt", b"a");
    capture_into(&disk, &mut m, es, JobInfo::default());

    let r = done(run(&disk, &Options { cleanup: Some(Cleanup::Delete), ..opts(&w.root) }));
    let c = r.cleanup.clone().unwrap();
    assert!(c.done, "{c:?}");
    let grown = c.detail.iter().any(|d| d.contains("grew the ext4 filesystem"));
    let loop_ok = fs::OpenOptions::new().read(true).write(true).open("/dev/loop-control").is_ok();
    assert!(grown || (!loop_ok && c.detail.iter().any(|d| d.contains("needs a loop device"))), "{c:?}");
    let shared: crate::disk::device::SharedDisk = std::sync::Arc::new(crate::disk::device::Device::open(&disk).unwrap());
    let after = layout::read(&shared, "disk", None, false).unwrap();
    assert_eq!(after.layout.parts.len(), 1, "{:?}", after.layout.parts);
    let p1 = &after.layout.parts[0];
    assert_eq!(p1.end(), plan.store.end(), "the OS partition now ends where the store ended");
    sh(&format!("dd if={d} of={} bs=1M skip=1 count={} status=none", fsimg.display(), p1.size >> 20));
    let out = sh(&format!("dumpe2fs -h {} 2>/dev/null", fsimg.display()));
    let blocks: u64 = out.lines().find(|l| l.starts_with("Block count:")).unwrap().split_whitespace().last().unwrap().parse().unwrap();
    let bsize: u64 = out.lines().find(|l| l.starts_with("Block size:")).unwrap().split_whitespace().last().unwrap().parse().unwrap();
    assert_eq!(disk.metadata().unwrap().len(), 128 << 20, "the image keeps its length");
    if grown {
        assert_eq!(blocks * bsize, p1.size);
    }
    assert!(crate::locator::locate(shared.as_ref()).is_err(), "no stale locator left");
    // Nor the store's last MiB (the saved table, the job's journal reserve, the tail copy).
    let mut tail = vec![0xffu8; 1 << 20];
    crate::disk::device::ReadAt::read_exact_at(shared.as_ref(), plan.store.end() - (1 << 20), &mut tail).unwrap();
    assert!(tail.iter().all(|b| *b == 0), "the store's last MiB is left on the disk");
    // The report in the new OS says so too.
    assert!(fs::read_to_string(w.root.join("var/log/inplace/restore-report.txt")).unwrap().contains("cleanup delete: done"));
}

/// The value of xattr `name` of `p` (not following a link), if it has one.
fn xattr_of(p: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 64 << 10];
    let n = rustix::fs::lgetxattr(p, name, &mut buf[..]).ok()?;
    buf.truncate(n);
    Some(buf)
}

#[test]
fn names_that_are_not_utf8_xattrs_and_acls_come_back_exactly() {
    use crate::fs::xattr::{acl_text, parse_vfs_acl, AclEntry, AclTag};
    use crate::migrate::entry::{Acls, Xattr};
    let ace = |tag, perm, id: Option<u32>, name: Option<&str>| AclEntry { tag, perm, id, name: name.map(str::to_string) };
    let w = world();
    let mut m = MemFs::default();
    let mut es = Vec::new();
    let mut dir = entry(Some("Carol"), "Shared", Kind::Dir, 0);
    dir.mode = Some(0o770);
    let base = vec![ace(AclTag::UserObj, 7, None, None), ace(AclTag::GroupObj, 7, None, None), ace(AclTag::Other, 0, None, None)];
    let mut default = base.clone();
    default.insert(1, ace(AclTag::User, 5, Some(4242), Some("Dave")));
    default.push(ace(AclTag::Mask, 7, None, None));
    dir.acl = Some(Acls { access: None, default: Some(default) });
    dir.xattrs = vec![Xattr { name: "user.folder".into(), value: Bytes::from("blue") }];
    es.push(dir);
    // A Latin-1 name, with attributes and an ACL naming Dave (1001 on the new OS) and a ghost.
    let mut latin1 = entry(Some("Carol"), "Shared/x", Kind::File, 6);
    latin1.path = Bytes::new(b"Shared/na\xefve.txt".to_vec());
    latin1.source = Bytes::new(b"/Users/Carol/Shared/na\xefve.txt".to_vec());
    latin1.mode = Some(0o660);
    latin1.xattrs = vec![
        Xattr { name: "user.comment".into(), value: Bytes::from("checked") },
        Xattr { name: "user.binary".into(), value: Bytes::new(vec![0, 0xfe, 0xff]) },
    ];
    let access = vec![
        ace(AclTag::UserObj, 6, None, None),
        ace(AclTag::User, 6, Some(4242), Some("Dave")),
        ace(AclTag::User, 4, Some(4343), Some("ghost")),
        ace(AclTag::GroupObj, 6, None, None),
        ace(AclTag::Mask, 6, None, None),
        ace(AclTag::Other, 0, None, None),
    ];
    latin1.acl = Some(Acls { access: Some(access), default: None });
    m.file(&latin1.source, b"latin1", 0, 0);
    es.push(latin1);
    // Made inside the directory with the default ACL: restore sets that ACL only at the end,
    // so this file does not inherit it.
    file(&mut m, &mut es, Some("Carol"), "Shared/plain.txt", b"plain");
    capture_into(&w.img, &mut m, es, JobInfo::default());

    // The manifest keeps the name's bytes as hex.
    let store = Store::open(&w.img, false).unwrap();
    let manifest = store.read_file("capture/manifest.json", 1 << 20).unwrap().unwrap();
    let text = String::from_utf8(manifest).unwrap();
    assert!(text.contains(r#""path": {
        "hex": "5368617265642f6e61ef76652e747874"
      }"#), "{text}");
    drop(store);

    let r = done(run(&w.img, &opts(&w.root)));
    assert_eq!(r.totals.failed, 0, "{}", r.text());
    let shared = w.root.join("home/carol/Shared");
    let p = shared.join(std::ffi::OsStr::from_bytes(b"na\xefve.txt"));
    assert_eq!(fs::read(&p).unwrap(), b"latin1");
    let e = outcome(&r, "na\\xefve.txt");
    assert_eq!(e.source, "/Users/Carol/Shared/na\\xefve.txt", "reports show the name escaped");
    assert_eq!(xattr_of(&p, "user.comment").as_deref(), Some(b"checked".as_slice()));
    assert_eq!(xattr_of(&p, "user.binary").as_deref(), Some([0, 0xfe, 0xff].as_slice()));
    let acl: Vec<String> = parse_vfs_acl(&xattr_of(&p, "system.posix_acl_access").unwrap()).unwrap().iter().map(acl_text).collect();
    assert_eq!(acl, ["user::rw-", "user:1001:rw-", "group::rw-", "mask::rw-", "other::---"]);
    let note = e.note.as_deref().unwrap_or("");
    assert!(note.contains("user:ghost:r--") && note.contains("no user \"ghost\""), "{note}");
    // The directory: its attribute and default ACL, set after its contents.
    assert_eq!(xattr_of(&shared, "user.folder").as_deref(), Some(b"blue".as_slice()));
    let default: Vec<String> = parse_vfs_acl(&xattr_of(&shared, "system.posix_acl_default").unwrap()).unwrap().iter().map(acl_text).collect();
    assert_eq!(default, ["user::rwx", "user:1001:r-x", "group::rwx", "mask::rwx", "other::---"]);
    assert_eq!(xattr_of(&shared.join("plain.txt"), "system.posix_acl_access"), None, "nothing inherited");
    assert_eq!(fs::metadata(&shared).unwrap().permissions().mode() & 0o777, 0o770);
}

/// The store's mark and its record of a restore in progress.
fn marks(img: &Path) -> (Option<state::State>, bool) {
    let store = Store::open(img, false).unwrap();
    (state::read(&store).unwrap(), store.read_file(journal::PROGRESS, 1 << 20).unwrap().is_some())
}

#[test]
fn a_run_with_failures_leaves_the_store_restorable_and_a_rerun_completes_it() {
    let w = world();
    let mut m = MemFs::default();
    let mut es = Vec::new();
    file(&mut m, &mut es, Some("Carol"), "Documents/a.txt", b"a");
    file(&mut m, &mut es, Some("Carol"), "b.txt", b"b");
    file(&mut m, &mut es, None, "etc/fstab", b"UUID=old / ext4 defaults 0 1\n");
    capture_into(&w.img, &mut m, es, JobInfo::default());
    // A real cause: the new OS has a link where Carol's Documents go.
    let documents = w.root.join("home/carol/Documents");
    std::os::unix::fs::symlink(&w.outside, &documents).unwrap();
    let empty = Options { cleanup: Some(Cleanup::Empty), ..opts(&w.root) };

    let first = run(&w.img, &empty).unwrap();
    let Finished::Incomplete(r) = first else { panic!("a run with a failure is not complete: {first:?}") };
    assert_eq!((r.totals.failed, r.totals.left_out, r.totals.restored), (1, 1, 1), "{}", r.text());
    let c = r.cleanup.as_ref().unwrap();
    assert!(!c.done && c.detail[0].contains("not everything is restored"), "{c:?}");
    assert!(r.notes.iter().any(|n| n.contains("not marked restored")), "{:?}", r.notes);
    let (mark, record) = marks(&w.img);
    assert_eq!((mark, record), (None, true), "unmarked, with its record of what is in");
    assert!(Store::open(&w.img, false).unwrap().manifest().is_ok(), "the capture is not emptied");
    let text = fs::read_to_string(w.root.join("var/log/inplace/restore-report.txt")).unwrap();
    assert!(text.contains("failed: /Users/Carol/Documents/a.txt"), "{text}");
    let b_ino = fs::metadata(w.root.join("home/carol/b.txt")).unwrap().ino();

    // Running again before fixing anything: still not complete, still not marked.
    assert!(matches!(run(&w.img, &empty).unwrap(), Finished::Incomplete(_)));
    assert_eq!(marks(&w.img).0, None);

    // Fixed: the rerun writes only what is missing, marks the store and cleans up.
    fs::remove_file(&documents).unwrap();
    let r = complete(run(&w.img, &empty));
    assert_eq!((r.totals.failed, r.totals.restored, r.totals.left_out), (0, 2, 1), "{}", r.text());
    assert!(r.notes.iter().any(|n| n.contains("earlier, interrupted run")), "{:?}", r.notes);
    assert_eq!(fs::read(documents.join("a.txt")).unwrap(), b"a");
    assert_eq!(fs::metadata(w.root.join("home/carol/b.txt")).unwrap().ino(), b_ino, "not written again");
    assert!(r.cleanup.as_ref().unwrap().done);
    let (mark, record) = marks(&w.img);
    assert!(mark.is_some_and(|m| m.complete) && !record, "marked, record removed");
    assert!(matches!(run(&w.img, &opts(&w.root)).unwrap(), Finished::AlreadyRestored(_)));
    assert_eq!(snapshot(&w.outside).len(), 1);
}

#[test]
fn a_mark_with_failures_from_an_older_run_is_not_taken_as_restored() {
    let w = world();
    let mut m = MemFs::default();
    let mut es = Vec::new();
    file(&mut m, &mut es, Some("Carol"), "Documents/a.txt", b"a");
    capture_into(&w.img, &mut m, es, JobInfo::default());
    let plan_sha256 = Store::open(&w.img, false).unwrap().manifest().unwrap().plan_sha256;
    let old = state::State {
        state: "restored".into(),
        plan_sha256,
        captures: Vec::new(),
        finished: 1,
        root: w.root.display().to_string(),
        complete: false,
        report: report::STORE_JSON.into(),
    };
    state::mark(&Store::open(&w.img, true).unwrap(), &old).unwrap();
    // Still failing: the stale mark goes.
    let documents = w.root.join("home/carol/Documents");
    std::os::unix::fs::symlink(&w.outside, &documents).unwrap();
    assert!(matches!(run(&w.img, &opts(&w.root)).unwrap(), Finished::Incomplete(_)));
    assert_eq!(marks(&w.img).0, None);
    fs::remove_file(&documents).unwrap();
    let r = complete(run(&w.img, &opts(&w.root)));
    assert_eq!(r.totals.restored, 1);
    assert!(marks(&w.img).0.is_some_and(|m| m.complete && m.finished > 1));

    // Restoring again (into another root) with a failure keeps the earlier complete mark.
    let other = w.root.parent().unwrap().join("other");
    os_root(&other);
    std::os::unix::fs::symlink(&w.outside, other.join("home/carol/Documents")).unwrap();
    assert!(matches!(run(&w.img, &Options { again: true, ..opts(&other) }).unwrap(), Finished::Incomplete(_)));
    assert!(marks(&w.img).0.is_some_and(|m| m.complete && m.root == w.root.display().to_string()));
}

#[test]
fn created_accounts_carry_the_old_password_shell_and_full_name() {
    use crate::migrate::accounts;
    let w = world();
    // The new OS: a libxcrypt with yescrypt, bash as a login shell, a shadow file.
    fs::create_dir_all(w.root.join("usr/lib/x86_64-linux-gnu")).unwrap();
    fs::write(w.root.join("usr/lib/x86_64-linux-gnu/libcrypt.so.1"), b"XCRYPT_2.0\0$y$\0$6$\0").unwrap();
    fs::create_dir_all(w.root.join("bin")).unwrap();
    fs::write(w.root.join("bin/bash"), b"#!").unwrap();
    fs::set_permissions(w.root.join("bin/bash"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(w.root.join("etc/shells"), "/bin/sh\n/bin/bash\n").unwrap();
    fs::write(w.root.join("etc/shadow"), "root:*:19000:0:99999:7:::\n").unwrap();
    let records = accounts::parse(
        "erin:x:1500:1500:Erin Example,,,:/home/erin:/bin/bash\nfred:x:1501:1501::/home/fred:/bin/bash\n",
        "erin:$y$j9T$salt$hash:19700:0:99999:7:::\nfred:$1$salt$md5:19700:0:99999:7:::\n",
        "erin:x:1500:\nfred:x:1501:\nstaff:x:50:erin\n",
        &["erin", "fred"],
    );
    let capture_with = |w: &World, passwords: Option<bool>| {
        let mut m = MemFs::default();
        let mut es = Vec::new();
        file(&mut m, &mut es, Some("erin"), "notes.txt", b"erin");
        file(&mut m, &mut es, Some("fred"), "notes.txt", b"fred");
        let restore = RestoreChoices { create_users: Some(true), passwords, ..RestoreChoices::default() };
        capture_into(&w.img, &mut m, es, JobInfo { restore, accounts: records.clone(), ..JobInfo::default() });
    };
    capture_with(&w, None);
    let r = complete(run(&w.img, &opts(&w.root)));
    let passwd = fs::read_to_string(w.root.join("etc/passwd")).unwrap();
    assert!(passwd.contains("erin:x:1500:1500:Erin Example,,,:/home/erin:/bin/bash\n"), "{passwd}");
    let shadow = fs::read_to_string(w.root.join("etc/shadow")).unwrap();
    assert!(shadow.contains("erin:$y$j9T$salt$hash:19700:0:99999:7:::\n"), "{shadow}");
    // md5crypt is not in this libcrypt: an empty password to change at the first login.
    assert!(shadow.contains("fred::0:0:99999:7:::\n"), "{shadow}");
    let erin = r.users.iter().find(|u| u.profile == "erin").unwrap();
    assert_eq!(erin.status, UserStatus::Created);
    assert!(erin.notes.iter().any(|n| n.contains("yescrypt")), "{:?}", erin.notes);
    let fred = &r.users.iter().find(|u| u.profile == "fred").unwrap().notes.join("\n");
    assert!(fred.contains("md5crypt") && fred.contains("first login must set a new one"), "{fred}");
    assert!(!String::from_utf8_lossy(&r.json()).contains("$y$"), "no hash in the report");

    // The store's restore choices say passwords = false.
    let w = world();
    fs::write(w.root.join("etc/shadow"), "root:*:19000:0:99999:7:::\n").unwrap();
    capture_with(&w, Some(false));
    complete(run(&w.img, &opts(&w.root)));
    let shadow = fs::read_to_string(w.root.join("etc/shadow")).unwrap();
    assert!(shadow.contains("erin::0:0:99999:7:::\n"), "{shadow}");
}

/// Captures `entries` of `fs_` into capture `name` of the store.
fn capture_into_as(img: &Path, name: CaptureName, fs_: &mut MemFs, entries: Vec<Entry>, info: JobInfo) {
    let users: Vec<String> = entries.iter().filter_map(|e| e.user.clone()).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    let plan = CapturePlan { entries, skipped: Vec::new(), users, info };
    let mut store = Store::open(img, true).unwrap();
    store.select(name);
    let opts = CaptureOptions { workers: 2, reread_from_device: false, ..CaptureOptions::default() };
    capture(fs_, &plan, &mut store, &opts, &Silent, &Cancel::new()).unwrap();
}

/// The store's records of restores in progress, by capture.
fn records(img: &Path) -> Vec<String> {
    let store = Store::open(img, false).unwrap();
    [CaptureName::FIRST, CaptureName::nth(2).unwrap()]
        .into_iter()
        .filter(|n| store.read_file(&journal::progress_path(*n), 1 << 20).unwrap().is_some())
        .map(|n| n.dir())
        .collect()
}

#[test]
fn every_capture_is_restored_and_the_store_marked_only_when_all_are_in() {
    let w = world();
    let second = CaptureName::nth(2).unwrap();
    // The old OS: Erin (who the new OS lacks) and a setting; a data partition: Carol's profile.
    let mut os = MemFs::default();
    let mut es = Vec::new();
    file(&mut os, &mut es, Some("erin"), "notes.txt", b"erin's notes");
    file(&mut os, &mut es, None, "etc/hostname", b"oldbox\n");
    let info = |partition, family: &str| JobInfo {
        disk: "/dev/vda".into(),
        partition,
        family: family.into(),
        restore: RestoreChoices { create_users: Some(true), cleanup: Some("empty".into()), ..Default::default() },
        ..JobInfo::default()
    };
    capture_into(&w.img, &mut os, es, info(2, "linux"));
    let mut data = MemFs::default();
    let mut es = Vec::new();
    file(&mut data, &mut es, Some("Carol"), "Documents/report.docx", b"quarterly");
    file(&mut data, &mut es, Some("Carol"), "Desktop/todo.txt", b"call the bank");
    capture_into_as(&w.img, second, &mut data, es, info(3, "windows"));

    // A cause of failure in the second capture only.
    let documents = w.root.join("home/carol/Documents");
    std::os::unix::fs::symlink(&w.outside, &documents).unwrap();
    let r = done(run(&w.img, &opts(&w.root)));
    assert!(!r.complete(), "{}", r.text());
    assert_eq!(r.captures.iter().map(|c| (c.capture, c.partition, c.failed)).collect::<Vec<_>>(), [(CaptureName::FIRST, 2, 0), (second, 3, 1)]);
    assert_eq!(fs::read(w.root.join("home/erin/notes.txt")).unwrap(), b"erin's notes", "the first capture is in");
    assert_eq!(fs::read_to_string(w.root.join("etc/hostname")).unwrap(), "oldbox\n");
    assert_eq!(marks(&w.img).0, None, "not marked: the second capture is not all in");
    assert_eq!(records(&w.img), ["capture", "capture.2"], "both records kept for the next run");
    let store = Store::open(&w.img, false).unwrap();
    assert_eq!(store.captures().unwrap(), [CaptureName::FIRST, second], "nothing cleaned up");
    drop(store);
    let erin_ino = fs::metadata(w.root.join("home/erin/notes.txt")).unwrap().ino();

    // Fixed: the rerun writes what is missing, marks the store for both captures, cleans up.
    fs::remove_file(&documents).unwrap();
    let r = complete(run(&w.img, &opts(&w.root)));
    assert_eq!(r.captures.len(), 2);
    assert_eq!(fs::read(documents.join("report.docx")).unwrap(), b"quarterly");
    assert_eq!(fs::read(w.root.join("home/carol/Desktop/todo.txt")).unwrap(), b"call the bank");
    assert_eq!(fs::metadata(w.root.join("home/erin/notes.txt")).unwrap().ino(), erin_ino, "not written again");
    let users: Vec<(&str, UserStatus)> = r.users.iter().map(|u| (u.profile.as_str(), u.status)).collect();
    assert_eq!(users, [("erin", UserStatus::Mapped), ("Carol", UserStatus::Mapped)], "erin was created by the first run");
    let report_docx = outcome(&r, "report.docx");
    assert_eq!(report_docx.capture, Some(second));
    assert_eq!(outcome(&r, "erin/notes.txt").capture, None);
    let (mark, _) = marks(&w.img);
    let mark = mark.expect("marked");
    assert!(mark.complete);
    assert_eq!(mark.captures.iter().map(|m| m.capture).collect::<Vec<_>>(), [CaptureName::FIRST, second]);
    assert_eq!(records(&w.img), Vec::<String>::new(), "the records go with the mark");
    let c = r.cleanup.as_ref().unwrap();
    assert!(c.done && c.mode == "empty", "{c:?}");
    assert_eq!(Store::open(&w.img, false).unwrap().captures().unwrap(), [], "empty: every capture removed");
    let text = fs::read_to_string(w.root.join("var/log/inplace/restore-report.txt")).unwrap();
    assert!(text.contains("(2 captures)") && text.contains("capture.2/: partition 3 of /dev/vda"), "{text}");
    assert!(matches!(run(&w.img, &opts(&w.root)).unwrap(), Finished::AlreadyRestored(_)));
    assert_eq!(snapshot(&w.outside).len(), 1);
}

#[test]
fn a_mark_for_the_first_capture_alone_does_not_cover_a_second() {
    let w = world();
    let mut m = MemFs::default();
    let mut es = Vec::new();
    file(&mut m, &mut es, Some("Carol"), "Documents/a.txt", b"a");
    capture_into(&w.img, &mut m, es, JobInfo::default());
    complete(run(&w.img, &opts(&w.root)));
    assert!(matches!(run(&w.img, &opts(&w.root)).unwrap(), Finished::AlreadyRestored(_)));
    // A capture added after the mark was written (as an older version marks: the first alone).
    let mut st = marks(&w.img).0.unwrap();
    st.captures.clear();
    state::mark(&Store::open(&w.img, true).unwrap(), &st).unwrap();
    let mut d = MemFs::default();
    let mut es = Vec::new();
    file(&mut d, &mut es, Some("Carol"), "Pictures/b.jpg", b"b");
    capture_into_as(&w.img, CaptureName::nth(2).unwrap(), &mut d, es, JobInfo::default());
    let r = complete(run(&w.img, &opts(&w.root)));
    assert_eq!(fs::read(w.root.join("home/carol/Pictures/b.jpg")).unwrap(), b"b");
    assert_eq!(outcome(&r, "Documents/a.txt").outcome, report::Outcome::Restored, "already there, identical");
    assert_eq!(marks(&w.img).0.unwrap().captures.len(), 2);
}
