//! Round trips through a real FAT32 image with a generated source filesystem.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::*;
use crate::error::{Error, Kind as ErrorKind, Written};
use crate::fs::{DirEntry, EntryKind, FsError, FsReader, Metadata};
use crate::migrate::entry::{Entry, Kind, Skipped, Why};
use crate::migrate::job_info::JobInfo;
use crate::migrate::store::dir::{read_in, write_in};
use crate::migrate::store::format::{self, CAPTURE_DIR};
use crate::migrate::store::{
    manifest, verify, CaptureName, CaptureState, EntrySink, FileSink, Manifest, Store, StoreError, StoreKind,
};
use crate::migrate::testing::store_image as image;
use crate::progress::{Cancel, Silent};

/// What a generated file holds: a pure function of the position, so nothing big is kept.
#[derive(Debug, Clone, Copy)]
enum Content {
    Random {
        seed: u64,
        len: u64,
    },
    Text {
        len: u64,
    },
    /// Zeros except `data_len` random bytes at `data_at`.
    Sparse {
        len: u64,
        data_at: u64,
        data_len: u64,
    },
    /// Random data, but reading fails at byte `at`.
    FailAt {
        len: u64,
        at: u64,
    },
}

impl Content {
    fn len(&self) -> u64 {
        match *self {
            Content::Random { len, .. }
            | Content::Text { len }
            | Content::Sparse { len, .. }
            | Content::FailAt { len, .. } => len,
        }
    }

    fn fill(&self, at: u64, buf: &mut [u8]) {
        const TEXT: &[u8] = b"the quick brown fox jumps over the lazy dog 0123456789\n";
        match *self {
            Content::Random { seed, .. } => random_fill(seed, at, buf),
            Content::FailAt { .. } => random_fill(99, at, buf),
            Content::Text { .. } => {
                for (i, b) in buf.iter_mut().enumerate() {
                    *b = TEXT[((at + i as u64) % TEXT.len() as u64) as usize];
                }
            }
            Content::Sparse { data_at, data_len, .. } => {
                buf.fill(0);
                let (from, to) = (data_at.max(at), (data_at + data_len).min(at + buf.len() as u64));
                if from < to {
                    random_fill(7, from, &mut buf[(from - at) as usize..(to - at) as usize]);
                }
            }
        }
    }

    /// Whether `at .. at + len` is all zeros.
    fn zeros(&self, at: u64, len: u64) -> bool {
        match *self {
            Content::Sparse { data_at, data_len, .. } => at + len <= data_at || at >= data_at + data_len,
            _ => {
                let mut b = vec![0u8; len as usize];
                self.fill(at, &mut b);
                b.iter().all(|x| *x == 0)
            }
        }
    }
}

/// Checks what `read_entry` delivers against the generated content.
struct Compare {
    content: Content,
    next: u64,
    finished: bool,
}

impl EntrySink for Compare {
    fn data(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let mut want = vec![0u8; bytes.len()];
        self.content.fill(offset, &mut want);
        if offset != self.next || want != bytes {
            return Err(io::Error::other(format!("wrong data at {offset}")));
        }
        self.next += bytes.len() as u64;
        Ok(())
    }
    fn hole(&mut self, offset: u64, len: u64) -> io::Result<()> {
        if offset != self.next || !self.content.zeros(offset, len) {
            return Err(io::Error::other(format!("wrong hole at {offset}")));
        }
        self.next += len;
        Ok(())
    }
    fn finish(&mut self, size: u64) -> io::Result<()> {
        assert_eq!(size, self.content.len());
        self.finished = true;
        Ok(())
    }
}

/// Random bytes as a pure function of (seed, position).
fn random_fill(seed: u64, at: u64, buf: &mut [u8]) {
    let mut i = 0usize;
    while i < buf.len() {
        let p = at + i as u64;
        let word = random_word(seed, p / 8).to_le_bytes();
        let from = (p % 8) as usize;
        let n = (8 - from).min(buf.len() - i);
        buf[i..i + n].copy_from_slice(&word[from..from + n]);
        i += n;
    }
}

fn random_word(seed: u64, w: u64) -> u64 {
    let mut z = w.wrapping_add(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[derive(Default)]
struct GenFs {
    files: BTreeMap<String, Content>,
}

impl FsReader for GenFs {
    fn fs_type(&self) -> &'static str {
        "gen"
    }
    fn label(&mut self) -> Option<String> {
        None
    }
    fn stat(&mut self, path: &[u8]) -> Result<DirEntry, FsError> {
        let path = std::str::from_utf8(path).unwrap_or("");
        let c = self.files.get(path).ok_or_else(|| FsError::NotFound { path: path.into() })?;
        Ok(DirEntry { name: path.rsplit('/').next().unwrap_or("").into(), kind: EntryKind::File, size: c.len() })
    }
    fn metadata(&mut self, path: &[u8]) -> Result<Metadata, FsError> {
        Err(FsError::NotFound { path: String::from_utf8_lossy(path).into() })
    }
    fn read_dir(&mut self, path: &[u8]) -> Result<Vec<DirEntry>, FsError> {
        Err(FsError::NotFound { path: String::from_utf8_lossy(path).into() })
    }
    fn read_file(&mut self, path: &[u8], out: &mut dyn Write) -> Result<u64, FsError> {
        let path = std::str::from_utf8(path).unwrap_or("");
        let c = *self.files.get(path).ok_or_else(|| FsError::NotFound { path: path.into() })?;
        // An odd block size, so chunks do not line up with reads.
        let mut buf = vec![0u8; 100_003];
        let mut at = 0u64;
        while at < c.len() {
            if let Content::FailAt { at: fail, .. } = c {
                if at >= fail {
                    return Err(FsError::Corrupt { path: path.into(), fs: "gen", detail: "a bad block".into() });
                }
            }
            let n = (c.len() - at).min(buf.len() as u64) as usize;
            c.fill(at, &mut buf[..n]);
            out.write_all(&buf[..n]).map_err(|source| FsError::Io { path: path.into(), source })?;
            at += n as u64;
        }
        Ok(at)
    }
}

fn entry(source: &str, kind: Kind, size: u64) -> Entry {
    Entry {
        source: source.into(),
        user: Some("carol".into()),
        path: source.trim_start_matches("/home/carol/").into(),
        kind,
        size,
        mode: Some(0o644),
        owner: Some("carol".into()),
        group: None,
        uid: Some(1000),
        gid: None,
        mtime: None,
        attributes: None,
        target: (kind == Kind::Symlink).then(|| "Documents".into()),
        xattrs: Vec::new(),
        acl: None,
        allocated: Some(size),
    }
}

/// A source and a plan over it: files of every kind, a directory and a link.
fn setup(files: &[(&str, Content)]) -> (GenFs, CapturePlan) {
    let mut fs = GenFs::default();
    let mut plan = CapturePlan {
        users: vec!["carol".into()],
        info: JobInfo { disk: "test".into(), family: "linux".into(), ..JobInfo::default() },
        skipped: vec![Skipped {
            source: "/home/carol/.cache".into(),
            size: 0,
            why: Why::Excluded { rule: ".cache/**".into() },
        }],
        ..CapturePlan::default()
    };
    plan.entries.push(entry("/home/carol/Documents", Kind::Dir, 0));
    for (path, c) in files {
        fs.files.insert(path.to_string(), *c);
        plan.entries.push(entry(path, Kind::File, c.len()));
    }
    plan.entries.push(entry("/home/carol/docs", Kind::Symlink, 0));
    (fs, plan)
}

fn opts(limit: u64) -> CaptureOptions {
    CaptureOptions { segment_limit: limit, workers: 2, reread_from_device: true, ..CaptureOptions::default() }
}

fn run(fs: &mut GenFs, plan: &CapturePlan, path: &Path, o: &CaptureOptions) -> Result<CaptureSummary, Error> {
    let mut store = Store::open(path, true).unwrap();
    capture(fs, plan, &mut store, o, &Silent, &Cancel::new())
}

fn verified(path: &Path) -> Result<verify::VerifyReport, Error> {
    verify(&Store::open(path, false).unwrap(), &Silent, &Cancel::new())
}

fn mixed() -> Vec<(&'static str, Content)> {
    vec![
        ("/home/carol/Documents/big.bin", Content::Random { seed: 1, len: 3 * (1 << 20) + 12345 }),
        ("/home/carol/Documents/notes.txt", Content::Text { len: 300_000 }),
        ("/home/carol/Documents/empty", Content::Text { len: 0 }),
        ("/home/carol/disk.vmdk", Content::Sparse { len: 40 << 20, data_at: (17 << 20) + 5, data_len: 70_000 }),
        ("/home/carol/small.bin", Content::Random { seed: 2, len: 1000 }),
    ]
}

/// Reads every entry back and compares it with the source.
fn check_contents(path: &Path, fs: &GenFs) -> Manifest {
    let mut store = Store::open(path, false).unwrap();
    let m = store.manifest().unwrap();
    for (i, e) in m.entries.iter().enumerate() {
        if e.entry.kind == Kind::File {
            let mut c = Compare { content: fs.files[&e.entry.source.to_string()], next: 0, finished: false };
            let n = store.read_entry(&m, i, &mut c).unwrap();
            assert!(c.finished && n == e.entry.size, "{}", e.entry.source);
        } else {
            assert_eq!(store.read_entry(&m, i, &mut Vec::new()).unwrap(), 0);
        }
    }
    m
}

#[test]
fn round_trip_with_segments_and_holes() {
    let (_d, path) = image(64);
    let (mut fs, plan) = setup(&mixed());
    let s = run(&mut fs, &plan, &path, &opts(1 << 20)).unwrap();
    assert_eq!(s.entries, 7);
    assert!(s.segments >= 4, "{} segments", s.segments);
    assert!(!s.already_complete);
    let m = check_contents(&path, &fs);
    assert_eq!(m.skipped.len(), 1);
    assert_eq!(m.info.family, "linux");
    // The 40 MiB sparse file takes little room: its zeros are holes.
    assert!(m.totals.hole_bytes >= 38 << 20, "{}", m.totals.hole_bytes);
    assert!(m.totals.stored_bytes < 6 << 20, "{}", m.totals.stored_bytes);
    // The 3 MiB random file spans segments.
    let big = m.entries.iter().find(|e| e.entry.source.ends_with(b"big.bin")).unwrap();
    assert!(big.data.unwrap().records >= 4);
    for seg in &m.segments {
        assert!(seg.bytes <= (1 << 20) + 64 * 1024, "{} is {} bytes", seg.name, seg.bytes);
    }
    let r = verified(&path).unwrap();
    assert_eq!(r.entries, 7);
    assert_eq!(r.bytes, m.totals.bytes);
    assert_eq!(r.segments as usize, m.segments.len());
    // No resume state is left.
    assert_eq!(Store::open(&path, false).unwrap().capture_state().unwrap(), CaptureState::Complete);
    // A file sink keeps holes sparse and sets the length.
    let mut store = Store::open(&path, false).unwrap();
    let i = m.entries.iter().position(|e| e.entry.source.ends_with(b"disk.vmdk")).unwrap();
    let out = tempfile::tempfile().unwrap();
    store.read_entry(&m, i, &mut FileSink(&out)).unwrap();
    assert_eq!(out.metadata().unwrap().len(), 40 << 20);
    let mut b = vec![0u8; 70_000];
    out.read_exact_at(&mut b, (17 << 20) + 5).unwrap();
    let mut want = vec![0u8; 70_000];
    fs.files["/home/carol/disk.vmdk"].fill((17 << 20) + 5, &mut want);
    assert_eq!(b, want);
}

#[test]
fn a_flipped_byte_is_found_and_named() {
    let (_d, path) = image(64);
    let (mut fs, plan) = setup(&mixed());
    run(&mut fs, &plan, &path, &opts(1 << 20)).unwrap();
    let store = Store::open(&path, false).unwrap();
    let m = store.manifest().unwrap();
    let e = m.entries.iter().find(|e| e.entry.source.ends_with(b"notes.txt")).unwrap();
    let loc = e.data.unwrap();
    let map = store.load_segment_map(loc.segment).unwrap();
    let at = map.volume_offset(loc.offset + format::RECORD_HEADER_LEN as u64 + 10).unwrap() + store.volume_start();
    drop(store);
    let f = OpenOptions::new().read(true).write(true).open(&path).unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, at).unwrap();
    f.write_all_at(&[b[0] ^ 0x40], at).unwrap();
    drop(f);
    let err = verified(&path).unwrap_err();
    let msg = err.to_string();
    assert_eq!((err.kind, err.written), (ErrorKind::Damaged, Written::Nothing), "{msg}");
    assert_eq!(err.hints[1], crate::error::Hint::CaptureAgain, "{err:?}");
    assert_eq!(msg.matches("is damaged").count(), 1, "{msg}");
    assert!(msg.contains("/home/carol/Documents/notes.txt"), "{msg}");
    assert!(msg.contains(&format::segment_name(loc.segment)), "{msg}");
    // Reading that entry fails too; the others still read.
    let mut store = Store::open(&path, false).unwrap();
    let i = m.entries.iter().position(|x| x.id == e.id).unwrap();
    assert!(store.read_entry(&m, i, &mut Vec::new()).is_err());
    let j = m.entries.iter().position(|x| x.entry.source.ends_with(b"small.bin")).unwrap();
    store.read_entry(&m, j, &mut Vec::new()).unwrap();
}

#[test]
fn resume_after_a_cut_equals_an_uninterrupted_run() {
    let files = vec![
        ("/home/carol/a.bin", Content::Random { seed: 3, len: 2_500_000 }),
        ("/home/carol/b.txt", Content::Text { len: 2_000_000 }),
        ("/home/carol/c.img", Content::Sparse { len: 9 << 20, data_at: 4 << 20, data_len: 1_500_000 }),
        ("/home/carol/d.bin", Content::Random { seed: 4, len: 1_700_000 }),
    ];
    let (_d0, whole) = image(64);
    let (mut fs, plan) = setup(&files);
    let o = opts(1 << 20);
    run(&mut fs, &plan, &whole, &o).unwrap();
    let want = Store::open(&whole, false).unwrap().manifest().unwrap();
    assert!(want.segments.len() >= 5);
    let mut resumed_some = false;
    for cut in [300_000u64, 1_500_000, 2_600_000, 4_000_000] {
        let (_d, path) = image(64);
        let mut store = Store::open(&path, true).unwrap();
        store.simulate_cut(cut, false);
        let err = capture(&mut fs, &plan, &mut store, &o, &Silent, &Cancel::new()).unwrap_err();
        assert!(err.to_string().contains("simulated power cut"), "{err}");
        assert_eq!(err.written, Written::StoreOnly);
        drop(store);
        let state = Store::open(&path, false).unwrap().capture_state().unwrap();
        assert!(matches!(state, CaptureState::InProgress { .. }), "{state:?}");
        let s = run(&mut fs, &plan, &path, &o).unwrap();
        resumed_some |= s.resumed_segments > 0;
        let got = check_contents(&path, &fs);
        assert_eq!(got.entries, want.entries, "cut at {cut}");
        assert_eq!(got.segments, want.segments, "cut at {cut}");
        assert_eq!(got.plan_sha256, want.plan_sha256);
        assert_fsck_clean(&path, true);
    }
    assert!(resumed_some);
}

#[test]
fn a_resume_with_another_plan_is_refused() {
    let (_d, path) = image(64);
    let (mut fs, plan) = setup(&mixed());
    let o = opts(1 << 20);
    let mut store = Store::open(&path, true).unwrap();
    store.simulate_cut(2_000_000, false);
    capture(&mut fs, &plan, &mut store, &o, &Silent, &Cancel::new()).unwrap_err();
    drop(store);
    let mut other = plan.clone();
    other.entries.pop();
    let err = run(&mut fs, &other, &path, &o).unwrap_err();
    assert_eq!((err.kind, err.written), (ErrorKind::Refused, Written::Nothing), "{err}");
    assert!(err.problem.contains("unfinished capture of a different plan"), "{err}");
}

#[test]
fn a_finished_capture_is_not_overwritten() {
    let (_d, path) = image(64);
    let (mut fs, plan) = setup(&mixed());
    let o = opts(1 << 20);
    run(&mut fs, &plan, &path, &o).unwrap();
    let again = run(&mut fs, &plan, &path, &o).unwrap();
    assert!(again.already_complete);
    let mut other = plan.clone();
    other.entries.pop();
    let err = run(&mut fs, &other, &path, &o).unwrap_err();
    assert_eq!((err.kind, err.written), (ErrorKind::Refused, Written::Nothing), "{err}");
    assert!(err.to_string().contains("not overwritten"));
    // Clearing it (after a restore) frees the room; other files stay.
    let mut store = Store::open(&path, true).unwrap();
    store.write_file("restore/report.json", b"{}").unwrap();
    store.clear_capture().unwrap();
    assert_eq!(store.capture_state().unwrap(), CaptureState::Empty);
    assert_eq!(store.read_file("restore/report.json", 100).unwrap().unwrap(), b"{}");
    assert!(matches!(store.manifest(), Err(StoreError::NoCapture { .. })));
    drop(store);
    run(&mut fs, &other, &path, &o).unwrap();
}

#[test]
fn unreadable_files_move_to_skipped() {
    let (_d, path) = image(64);
    let mut files = mixed();
    files.push(("/home/carol/bad.bin", Content::FailAt { len: 3 << 20, at: 2_200_000 }));
    files.push(("/home/carol/after.txt", Content::Text { len: 5000 }));
    let (mut fs, mut plan) = setup(&files);
    plan.entries.push(entry("/home/carol/gone.txt", Kind::File, 10));
    let s = run(&mut fs, &plan, &path, &opts(1 << 20)).unwrap();
    assert_eq!(s.unreadable.len(), 2, "{:?}", s.unreadable);
    assert!(s.unreadable.iter().all(|u| matches!(u.why, Why::Unreadable { .. })));
    // Records of bad.bin already sent to the writer stay as orphans; verification passes.
    assert!(s.verify.records > 0);
    let m = check_contents(&path, &fs);
    assert!(m.skipped.iter().any(|k| k.source == "/home/carol/bad.bin"));
    assert!(m.skipped.iter().any(|k| k.source == "/home/carol/gone.txt"));
    assert!(m.entries.iter().any(|e| e.entry.source == "/home/carol/after.txt"));
}

#[test]
fn a_full_store_stops_with_a_clear_error() {
    let (_d, path) = image(40);
    let (mut fs, plan) = setup(&[("/home/carol/huge.bin", Content::Random { seed: 5, len: 60 << 20 })]);
    let err = run(&mut fs, &plan, &path, &opts(8 << 20)).unwrap_err();
    let msg = err.to_string();
    assert_eq!((err.kind, err.written), (ErrorKind::Refused, Written::StoreOnly), "{msg}");
    assert!(msg.contains(&path.display().to_string()) && msg.contains("is full"), "{msg}");
    assert_fsck_clean(&path, false);
}

/// Replaces `capture/manifest.json` (and its SHA line when `fix_sha`).
fn tamper(path: &Path, edit: impl FnOnce(&mut serde_json::Value), fix_sha: bool) {
    let store = Store::open(path, true).unwrap();
    let fs = store.mount().unwrap();
    {
        let dir = fs.root_dir().open_dir(CAPTURE_DIR).unwrap();
        let json = read_in(&dir, format::MANIFEST, 1 << 30).unwrap().unwrap();
        let mut v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        edit(&mut v);
        let mut out = serde_json::to_vec_pretty(&v).unwrap();
        out.push(b'\n');
        write_in(&dir, format::MANIFEST, &out).unwrap();
        if fix_sha {
            use sha2::Digest;
            let line = format!("{}  manifest.json\n", manifest::hex(&sha2::Sha256::digest(&out)));
            write_in(&dir, format::MANIFEST_SHA, line.as_bytes()).unwrap();
        }
    }
    store.unmount(fs).unwrap();
}

#[test]
fn a_tampered_manifest_is_refused() {
    let (_d, path) = image(64);
    let (mut fs, plan) = setup(&mixed());
    run(&mut fs, &plan, &path, &opts(1 << 20)).unwrap();
    // Any change without a matching SHA-256.
    tamper(&path, |v| v["users"][0] = "mallory".into(), false);
    let err = Store::open(&path, false).unwrap().manifest().unwrap_err();
    assert!(matches!(err, StoreError::BadManifest { .. }) && err.to_string().contains("SHA-256"), "{err}");
    // A 1 TiB entry the segments cannot hold, with the SHA-256 recomputed.
    tamper(
        &path,
        |v| {
            v["users"][0] = "carol".into();
            let e = v["entries"].as_array_mut().unwrap().iter_mut().find(|e| e["size"].as_u64() > Some(0)).unwrap();
            e["size"] = (1u64 << 40).into();
        },
        true,
    );
    let err = Store::open(&path, false).unwrap().manifest().unwrap_err();
    assert!(matches!(err, StoreError::BadManifest { .. }), "{err}");
    assert!(verified(&path).is_err());
    // Absurd counts.
    tamper(&path, |v| v["segments"][0]["bytes"] = (1u64 << 50).into(), true);
    assert!(Store::open(&path, false).unwrap().manifest().is_err());
}

#[test]
fn open_finds_the_store_on_a_whole_disk_or_says_what_it_looked_for() {
    use crate::locator::{Locator, TableKind};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("disk.img");
    let disk = OpenOptions::new().create(true).truncate(true).read(true).write(true).open(&path).unwrap();
    let size = 100u64 << 20;
    disk.set_len(size).unwrap();
    let (start, len) = (16u64 << 20, 50u64 << 20);
    let fs_len = len - (1 << 20);
    crate::carve::store::format(&disk, start, fs_len, 512, 7).unwrap();
    let snapshot = vec![1u8; 512];
    disk.write_all_at(&snapshot, start + fs_len).unwrap();
    use sha2::Digest;
    let l = Locator {
        job_id: [9; 16],
        created: 1,
        disk_bytes: size,
        sector_size: 512,
        table: TableKind::Gpt,
        store_number: 3,
        store_start: start,
        store_len: len,
        fs_len,
        snapshot_offset: fs_len,
        snapshot_len: 512,
        snapshot_sha256: sha2::Sha256::digest(&snapshot).into(),
        job_name: "test".into(),
    };
    for at in l.copies() {
        disk.write_all_at(&l.encode(), at).unwrap();
    }
    drop(disk);
    let (mut fs, plan) = setup(&mixed());
    let mut store = Store::open(&path, true).unwrap();
    assert!(matches!(store.kind(), StoreKind::Disk { store_start, .. } if *store_start == start));
    capture(&mut fs, &plan, &mut store, &opts(4 << 20), &Silent, &Cancel::new()).unwrap();
    drop(store);
    check_contents(&path, &fs);
    // Not a store at all.
    let plain = dir.path().join("plain.img");
    std::fs::write(&plain, vec![0u8; 4 << 20]).unwrap();
    let err = Store::open(&plain, false).err().unwrap().to_string();
    assert!(err.contains("FAT32 boot sector") && err.contains("locator"), "{err}");
}

#[test]
fn the_verify_report_counts() {
    let (_d, path) = image(64);
    let (mut fs, plan) = setup(&mixed());
    run(&mut fs, &plan, &path, &opts(1 << 20)).unwrap();
    let r = verified(&path).unwrap();
    assert_eq!(r.files, 5);
    assert_eq!(r.skipped, 1);
    assert_eq!(r.entries, 7);
    assert!(r.hole_bytes > 0 && r.records > 0);
}

/// The child of `an_abort_mid_segment_resumes`: captures with `abort_after_bytes`, which
/// kills the process part-way (no flush, no unmount).
#[test]
#[ignore = "run by an_abort_mid_segment_resumes in a child process"]
fn abort_child() {
    let Ok(path) = std::env::var("INPLACE_ABORT_STORE") else { return };
    let (mut fs, plan) = setup(&mixed());
    let o = CaptureOptions { abort_after_bytes: Some(2_500_000), ..opts(1 << 20) };
    let _ = run(&mut fs, &plan, Path::new(&path), &o);
    unreachable!("the capture should have aborted the process");
}

#[test]
fn an_abort_mid_segment_resumes() {
    let (_d, path) = image(64);
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "migrate::capture::tests::abort_child", "--ignored", "--nocapture"])
        .env("INPLACE_ABORT_STORE", &path)
        .output()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(6), "the child should abort: {out:?}");
    let state = Store::open(&path, false).unwrap().capture_state().unwrap();
    assert!(matches!(state, CaptureState::InProgress { segments_done } if segments_done >= 1), "{state:?}");
    let (mut fs, plan) = setup(&mixed());
    let s = run(&mut fs, &plan, &path, &opts(1 << 20)).unwrap();
    assert!(s.resumed_segments >= 1);
    let (_d2, whole) = image(64);
    run(&mut fs, &plan, &whole, &opts(1 << 20)).unwrap();
    let want = Store::open(&whole, false).unwrap().manifest().unwrap();
    let got = check_contents(&path, &fs);
    assert_eq!(got.entries, want.entries);
    assert_eq!(got.segments, want.segments);
    assert_fsck_clean(&path, true);
}

/// `fsck.fat -n` finds nothing to fix (skipped where dosfstools is not installed). After a
/// cut, fatfs keeps the dirty bit it found (in the primary boot sector only): `after_cut`
/// accepts that.
fn assert_fsck_clean(path: &Path, after_cut: bool) {
    let Ok(out) = std::process::Command::new("fsck.fat").arg("-n").arg(path).output() else { return };
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let complaints: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("fsck.fat") && !l.contains("Free cluster summary") && !l.contains(" files, "))
        .filter(|l| !l.trim().is_empty() && !l.contains("Leaving filesystem unchanged"))
        .filter(|l| {
            !after_cut
                || ![
                    "boot sector and its backup",
                    "mostly harmless",
                    "65:01/00",
                    "Not automatically fixing",
                    "Dirty bit",
                    "removing dirty bit",
                ]
                .iter()
                .any(|k| l.contains(k))
        })
        .collect();
    assert!(complaints.is_empty() && (after_cut || out.status.success()), "fsck.fat: {text}");
}

#[test]
fn directories_made_in_the_store_pass_fsck() {
    let (_d, path) = image(64);
    let store = Store::open(&path, true).unwrap();
    store.write_file("journal/sub/state.json", b"x").unwrap();
    store.write_file("restore/report.json", b"y").unwrap();
    drop(store);
    assert_fsck_clean(&path, false);
    let (mut fs, plan) = setup(&mixed());
    run(&mut fs, &plan, &path, &opts(1 << 20)).unwrap();
    assert_fsck_clean(&path, false);
    let mut store = Store::open(&path, true).unwrap();
    store.clear_capture().unwrap();
    drop(store);
    assert_fsck_clean(&path, false);
}

#[test]
fn a_volume_made_by_mkfs_fat_works_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mkfs.img");
    std::fs::File::create(&path).unwrap().set_len(64 << 20).unwrap();
    let Ok(st) = std::process::Command::new("mkfs.fat").args(["-F", "32", "-n", "INPLACE"]).arg(&path).output() else {
        return; // dosfstools not installed
    };
    assert!(st.status.success(), "{st:?}");
    let (mut fs, plan) = setup(&mixed());
    run(&mut fs, &plan, &path, &opts(2 << 20)).unwrap();
    check_contents(&path, &fs);
    assert_fsck_clean(&path, false);
}

/// Reads capture `name` of the store at `path` back and compares it with the source.
fn check_capture(path: &Path, name: CaptureName, fs: &GenFs) -> Manifest {
    let mut store = Store::open(path, false).unwrap();
    store.select(name);
    let m = store.manifest().unwrap();
    for (i, e) in m.entries.iter().enumerate().filter(|(_, e)| e.entry.kind == Kind::File) {
        let mut c = Compare { content: fs.files[&e.entry.source.to_string()], next: 0, finished: false };
        assert_eq!(store.read_entry(&m, i, &mut c).unwrap(), e.entry.size, "{name}: {}", e.entry.source);
        assert!(c.finished);
    }
    verify(&store, &Silent, &Cancel::new()).unwrap();
    m
}

/// The bytes of every file of the capture directory `dir` in the store volume at `path`.
fn capture_files(path: &Path, dir: &str) -> BTreeMap<String, Vec<u8>> {
    let store = Store::open(path, false).unwrap();
    let fs = store.mount().unwrap();
    let mut out = BTreeMap::new();
    {
        let d = fs.root_dir().open_dir(dir).unwrap();
        for e in d.iter().map(Result::unwrap).filter(|e| e.is_file()) {
            let mut bytes = Vec::new();
            io::Read::read_to_end(&mut e.to_file(), &mut bytes).unwrap();
            out.insert(e.file_name(), bytes);
        }
    }
    store.unmount(fs).unwrap();
    out
}

/// A second source: Windows-like, another user.
fn second_source() -> (GenFs, CapturePlan) {
    let (mut fs, mut plan) = setup(&[
        ("/home/carol/Documents/report.docx", Content::Random { seed: 11, len: 1_800_000 }),
        ("/home/carol/Pictures/beach.jpg", Content::Random { seed: 12, len: 2_300_000 }),
    ]);
    plan.info = JobInfo { disk: "test".into(), partition: 3, fs: Some("ntfs".into()), family: "windows".into(), ..JobInfo::default() };
    for e in &mut plan.entries {
        e.user = Some("Carol".into());
    }
    plan.users = vec!["Carol".into()];
    fs.files.insert("/unused".into(), Content::Text { len: 1 });
    (fs, plan)
}

#[test]
fn a_store_holds_several_captures_each_on_its_own() {
    let (_d, path) = image(64);
    let (mut fs1, plan1) = setup(&mixed());
    let (mut fs2, plan2) = second_source();
    let o = opts(1 << 20);
    let second = CaptureName::nth(2).unwrap();
    assert_eq!(Store::open(&path, false).unwrap().captures().unwrap(), []);
    run(&mut fs1, &plan1, &path, &o).unwrap();
    // A store with one capture is as before: `capture/`, the first, what a store opens on.
    let store = Store::open(&path, false).unwrap();
    assert_eq!((store.captures().unwrap(), store.selected()), (vec![CaptureName::FIRST], CaptureName::FIRST));
    drop(store);
    let before = capture_files(&path, "capture");

    let mut store = Store::open(&path, true).unwrap();
    store.select(second);
    assert_eq!(store.capture_state().unwrap(), CaptureState::Empty);
    assert!(matches!(store.manifest(), Err(StoreError::NoCapture { capture, .. }) if capture == "capture.2"));
    let s = capture(&mut fs2, &plan2, &mut store, &o, &Silent, &Cancel::new()).unwrap();
    assert!(!s.already_complete && s.segments >= 3, "{s:?}");
    assert_eq!(store.captures().unwrap(), [CaptureName::FIRST, second]);
    // A capture of another plan into a finished capture is refused there, not in the other.
    let mut other = plan1.clone();
    other.entries.pop();
    let err = capture(&mut fs1, &other, &mut store, &o, &Silent, &Cancel::new()).unwrap_err();
    assert!(err.problem.contains("not overwritten"), "{err}");
    drop(store);

    let m1 = check_capture(&path, CaptureName::FIRST, &fs1);
    let m2 = check_capture(&path, second, &fs2);
    assert_ne!(m1.plan_sha256, m2.plan_sha256);
    assert_eq!((m2.info.partition, m2.users.clone()), (3, vec!["Carol".to_string()]));
    assert_eq!(capture_files(&path, "capture"), before, "the first capture is untouched");
    let second_files = capture_files(&path, "capture.2");
    assert!(second_files.contains_key("manifest.sha256") && second_files.contains_key("seg-00001.ipa"), "{:?}", second_files.keys());
    assert_fsck_clean(&path, false);

    // The capture's files are not the small-file calls' to write; clearing one leaves the other.
    let mut store = Store::open(&path, true).unwrap();
    assert!(matches!(store.write_file("capture.2/x", b""), Err(StoreError::BadPath { .. })));
    assert!(matches!(store.remove_file("CAPTURE.2/manifest.json"), Err(StoreError::BadPath { .. })));
    store.write_file("capture.x/fine", b"not a capture").unwrap();
    store.select(second);
    store.clear_capture().unwrap();
    assert_eq!(store.captures().unwrap(), [CaptureName::FIRST]);
    drop(store);
    assert_eq!(capture_files(&path, "capture"), before);
    check_capture(&path, CaptureName::FIRST, &fs1);
    assert_fsck_clean(&path, false);
}

#[test]
fn a_cut_in_the_second_capture_resumes_it_and_leaves_the_first() {
    let (mut fs1, plan1) = setup(&mixed());
    let (mut fs2, plan2) = second_source();
    let o = opts(1 << 20);
    let second = CaptureName::nth(2).unwrap();
    // What an uninterrupted run gives.
    let (_d0, whole) = image(64);
    run(&mut fs1, &plan1, &whole, &o).unwrap();
    let mut store = Store::open(&whole, true).unwrap();
    store.select(second);
    capture(&mut fs2, &plan2, &mut store, &o, &Silent, &Cancel::new()).unwrap();
    drop(store);
    let want = check_capture(&whole, second, &fs2);

    let mut resumed_some = false;
    for cut in [200_000u64, 1_300_000, 2_600_000] {
        let (_d, path) = image(64);
        run(&mut fs1, &plan1, &path, &o).unwrap();
        let first = capture_files(&path, "capture");
        let mut store = Store::open(&path, true).unwrap();
        store.select(second);
        store.simulate_cut(cut, false);
        let err = capture(&mut fs2, &plan2, &mut store, &o, &Silent, &Cancel::new()).unwrap_err();
        assert!(err.to_string().contains("simulated power cut"), "{err}");
        drop(store);
        let mut store = Store::open(&path, false).unwrap();
        assert_eq!(store.capture_state().unwrap(), CaptureState::Complete, "the first capture is finished");
        store.select(second);
        assert!(matches!(store.capture_state().unwrap(), CaptureState::InProgress { .. }), "cut at {cut}");
        drop(store);
        let mut store = Store::open(&path, true).unwrap();
        store.select(second);
        let s = capture(&mut fs2, &plan2, &mut store, &o, &Silent, &Cancel::new()).unwrap();
        resumed_some |= s.resumed_segments > 0;
        drop(store);
        let got = check_capture(&path, second, &fs2);
        assert_eq!((got.entries, got.segments), (want.entries.clone(), want.segments.clone()), "cut at {cut}");
        assert_eq!(capture_files(&path, "capture"), first, "cut at {cut}: the first capture is untouched");
        assert_fsck_clean(&path, true);
    }
    assert!(resumed_some);
}
