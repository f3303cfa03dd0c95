//! Stopping a capture, a store verification and a restore midway through the engine's cancel
//! flag, raised by the sink on a progress event: each returns within a second, and what it
//! leaves is checked on the bytes. A cancelled capture leaves the source disk as it was and a
//! store that a second run completes into exactly the store of an uninterrupted run; a
//! cancelled restore leaves the store unmarked, and a second run completes the tree with no
//! `.restored` copies of the first run's own work.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use inplace::error::{Hint, Kind, Written};
use inplace::migrate::capture::{capture, CaptureOptions, CapturePlan};
use inplace::migrate::job_info::JobInfo;
use inplace::migrate::restore::users::Useradd;
use inplace::migrate::restore::{self, Finished, Options};
use inplace::migrate::rules::{self, Overrides};
use inplace::migrate::store::{self, CaptureState, Manifest, Store};
use inplace::migrate::{select, source};
use inplace::progress::{Cancel, Event, Silent, Sink};
use inplace_tests::fixtures::image_fingerprint;
use inplace_tests::migrate_fixtures::{self as mf, assert_no_diffs, EKind, ExpectedEntry, GIB, MIB};

/// Longer than the engine's shortest time between two progress events, so each progress
/// call of the engine becomes an event while the sink paces it.
const PACE: Duration = Duration::from_millis(260);
/// The longest a cancelled call may take to return once the flag is up.
const PROMPT: Duration = Duration::from_secs(1);

type Pick = Box<dyn Fn(&Event) -> bool + Send + Sync>;

/// Raises `cancel` at the first event `when` picks, and notes when. Until then it holds up
/// the engine for [`PACE`] at each event `pace` picks, so a point midway can be picked.
struct StopWhen {
    cancel: Cancel,
    when: Pick,
    pace: Pick,
    raised: Mutex<Option<Instant>>,
}

impl StopWhen {
    fn new(when: Pick, pace: Pick) -> StopWhen {
        StopWhen { cancel: Cancel::new(), when, pace, raised: Mutex::new(None) }
    }

    /// How long the call took to return after the flag went up.
    fn stopped_within(&self, returned: Instant) -> Duration {
        let raised = self.raised.lock().unwrap().expect("the flag was never raised");
        returned.duration_since(raised)
    }
}

impl Sink for StopWhen {
    fn event(&self, e: &Event) {
        let mut raised = self.raised.lock().unwrap();
        if raised.is_some() {
            return;
        }
        if (self.when)(e) {
            self.cancel.cancel();
            *raised = Some(Instant::now());
        } else if (self.pace)(e) {
            std::thread::sleep(PACE);
        }
    }
}

fn bytes_at_least(n: u64) -> Pick {
    Box::new(move |e| matches!(e, Event::Bytes { done, .. } if *done >= n))
}

fn is_bytes() -> Pick {
    Box::new(|e| matches!(e, Event::Bytes { .. }))
}

/// Rules without the sparse 5 GiB file, so the segments are all real data.
fn rules_file(dir: &Path) -> String {
    let rules = dir.join("rules.toml");
    fs::write(
        &rules,
        "family = \"linux\"\ninclude = [\"**\"]\nexclude = [\".cache/**\", \"vm/**\"]\n\
         settings = [\"etc/hostname\", \"etc/NetworkManager/system-connections/*\"]\n[profiles]\nmin_uid = 1000\n",
    )
    .unwrap();
    rules.to_str().unwrap().to_string()
}

/// The source opened and the plan selected, as `inplace capture` makes them.
fn plan(fx: &mf::MigrateFixture, rules: &str) -> (source::Source, CapturePlan) {
    let mut src = source::open(&fx.disk, fx.partition, &Silent).unwrap();
    let r = rules::effective(Some(rules), src.family(), &Overrides::default()).unwrap();
    let sel = select::select(src.reader.as_mut(), &r, &Silent, &Cancel::new()).unwrap();
    let info = JobInfo { disk: fx.disk_str().into(), partition: fx.partition, family: "linux".into(), ..JobInfo::default() };
    (src, CapturePlan::new(sel, info))
}

fn manifest(path: &Path) -> Manifest {
    Store::open(path, false).unwrap().manifest().unwrap()
}

#[test]
fn a_cancelled_capture_stops_within_a_second_and_resumes_to_the_same_store() {
    let dir = mf::tmp("cancel-capture");
    let fx = mf::linux_disk(&dir);
    let before = image_fingerprint(&fx.disk);
    let rules = rules_file(&dir);
    let opts = CaptureOptions { segment_limit: 8 * MIB, ..CaptureOptions::default() };

    let whole = mf::store_volume(&dir, "whole.fat", GIB);
    let (mut src, p) = plan(&fx, &rules);
    let mut store = Store::open(&whole, true).unwrap();
    capture(src.reader.as_mut(), &p, &mut store, &opts, &Silent, &Cancel::new()).unwrap();
    drop(store);
    let want = manifest(&whole);
    assert!(want.segments.len() >= 3, "only {} segments: the test needs several", want.segments.len());

    let cut = mf::store_volume(&dir, "cut.fat", GIB);
    let mut store = Store::open(&cut, true).unwrap();
    // Past the first 8 MiB segments, before the last.
    let sink = StopWhen::new(bytes_at_least(20 * MIB), is_bytes());
    let err = capture(src.reader.as_mut(), &p, &mut store, &opts, &sink, &sink.cancel).unwrap_err();
    let took = sink.stopped_within(Instant::now());
    assert!(took < PROMPT, "the capture took {took:?} to stop");
    assert_eq!((err.kind, err.written), (Kind::Cancelled, Written::StoreOnly), "{err:?}");
    assert_eq!(err.hints, [Hint::RunAgain]);
    assert!(matches!(store.capture_state().unwrap(), CaptureState::InProgress { segments_done } if segments_done >= 1));
    assert!(store.manifest().is_err(), "a cancelled capture left a manifest");
    drop(store);
    assert_eq!(image_fingerprint(&fx.disk), before, "the capture wrote to the source disk");
    let journal = Store::open(&cut, false).unwrap().read_file(store::journal::EVENTS, 1 << 20).unwrap().unwrap();
    let journal = String::from_utf8(journal).unwrap();
    assert!(journal.lines().any(|l| l.contains("\"failed\"") && l.contains("\"cancelled\"")), "{journal}");

    let mut store = Store::open(&cut, true).unwrap();
    let s = capture(src.reader.as_mut(), &p, &mut store, &opts, &Silent, &Cancel::new()).unwrap();
    drop(store);
    assert!(s.resumed_segments >= 1, "nothing was resumed: {s:?}");
    let got = manifest(&cut);
    assert_eq!(got.entries, want.entries, "entries (ids, sizes, CRC-32s, records) differ from an uninterrupted run");
    assert_eq!(got.segments, want.segments, "segments (sizes, SHA-256s) differ from an uninterrupted run");
    assert_eq!(got.plan_sha256, want.plan_sha256);
    store::verify(&Store::open(&cut, false).unwrap(), &Silent, &Cancel::new()).unwrap();
    assert_eq!(image_fingerprint(&fx.disk), before, "the capture wrote to the source disk");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_cancelled_verify_stops_within_a_second_and_changes_nothing() {
    let dir = mf::tmp("cancel-verify");
    let fx = mf::linux_disk(&dir);
    let store_path = mf::store_volume(&dir, "store.fat", GIB);
    let (mut src, p) = plan(&fx, &rules_file(&dir));
    let mut store = Store::open(&store_path, true).unwrap();
    capture(src.reader.as_mut(), &p, &mut store, &CaptureOptions::default(), &Silent, &Cancel::new()).unwrap();
    drop(store);
    let before = image_fingerprint(&store_path);
    let sink = StopWhen::new(bytes_at_least(MIB), is_bytes());
    let err = store::verify(&Store::open(&store_path, false).unwrap(), &sink, &sink.cancel).unwrap_err();
    let took = sink.stopped_within(Instant::now());
    assert!(took < PROMPT, "verify took {took:?} to stop");
    assert_eq!((err.kind, err.written), (Kind::Cancelled, Written::Nothing), "{err:?}");
    assert_eq!(image_fingerprint(&store_path), before);
    store::verify(&Store::open(&store_path, false).unwrap(), &Silent, &Cancel::new()).unwrap();
    fs::remove_dir_all(&dir).unwrap();
}

fn ext4_mode(e: &ExpectedEntry) -> u32 {
    let m = e.mode.expect("ext4 entries have a mode");
    if e.kind == EKind::File { m & !0o6000 } else { m }
}

fn restore_into(store: &Path, root: &mf::TargetRoot, sink: &dyn Sink, cancel: &Cancel) -> inplace::error::Result<Finished> {
    let opts = Options { root: root.path.clone(), ..Options::default() };
    restore::restore(Store::open(store, true).unwrap(), &opts, &mut Useradd, sink, cancel)
}

/// Bob's profile and the settings captured (by the CLI) into a store, and a new root.
fn bob_captured(dir: &Path) -> (mf::MigrateFixture, PathBuf, mf::TargetRoot) {
    let fx = mf::linux_disk(dir);
    let store_path = mf::store_volume(dir, "store.fat", GIB);
    let part = fx.part_str();
    let args = ["capture", "--disk", fx.disk_str(), "--partition", &part, "--users", "bob", "--store", store_path.to_str().unwrap()];
    let o = mf::inplace(&args);
    assert!(o.status.success(), "{}", mf::text(&o));
    let root = mf::target_root(dir, "newroot");
    (fx, store_path, root)
}

/// Every path under `dir` whose name has a second `.restored` copy (`x.restored.2`).
fn second_copies(dir: &Path) -> Vec<String> {
    mf::observe(dir).into_keys().filter(|p| p.contains(".restored.")).collect()
}

/// Restores into `root`, cancelled right after the entry whose source ends with `last`
/// (entries are paced so each gets its event); checks it stopped within a second, left the
/// store unmarked and its record in it.
fn cancelled_restore(store: &Path, root: &mf::TargetRoot, last: &'static str) {
    let when: Pick = Box::new(move |e| matches!(e, Event::Entries { current, .. } if current.ends_with(last)));
    let sink = StopWhen::new(when, Box::new(|e| matches!(e, Event::Entries { .. })));
    let err = match restore_into(store, root, &sink, &sink.cancel) {
        Err(e) => e,
        Ok(_) => panic!("the restore was not stopped after {last}"),
    };
    let took = sink.stopped_within(Instant::now());
    assert!(took < PROMPT, "the restore took {took:?} to stop");
    assert_eq!((err.kind, err.written), (Kind::Cancelled, Written::Disk), "{err:?}");
    assert_eq!(err.hints, [Hint::RunAgain]);
    let files: Vec<String> = mf::fat_list(store.to_str().unwrap()).into_iter().map(|(p, _)| p).collect();
    assert!(!files.iter().any(|f| f == "restore/state.json"), "a cancelled restore marked the store: {files:?}");
    assert!(files.iter().any(|f| f == "restore/progress.jsonl"), "no record of the cancelled run: {files:?}");
}

/// Cancelled twice, then run to the end: the tree is what one run makes. The new OS has a
/// file where the store has the directory `.config` and its own `.zshrc` and `budget.ods`,
/// so keep-new puts ours beside them; a rerun must go on into the same `.config.restored`,
/// make no second copies, and give the directories the first run made their modes and times.
#[test]
fn a_cancelled_restore_stops_within_a_second_and_reruns_complete_it_without_copies() {
    let dir = mf::tmp("cancel-restore");
    let (fx, store_path, root) = bob_captured(&dir);
    let s = store_path.to_str().unwrap();
    let h = root.home("bob");
    let theirs: &[u8] = b"# the new OS's own\n";
    fs::write(h.join(".config"), theirs).unwrap();
    fs::write(h.join(".zshrc"), theirs).unwrap();
    fs::create_dir_all(h.join("Documents")).unwrap();
    fs::write(h.join("Documents/budget.ods"), theirs).unwrap();

    // Entries come in name order: .config, .config/app, .config/app/settings.ini, .zshrc,
    // Documents, Documents/archive.tar, Documents/budget.ods, …
    cancelled_restore(&store_path, &root, "/.config/app");
    assert!(h.join(".config.restored/app").is_dir() && !h.join(".config.restored/app/settings.ini").exists());
    cancelled_restore(&store_path, &root, "Documents/archive.tar");
    let ours = |p: &str| fx.entry(Some("bob"), p).sha256.clone().unwrap();
    assert_eq!(mf::sha256_bytes(&fs::read(h.join(".zshrc.restored")).unwrap()), ours(".zshrc"));
    assert!(!h.join("Documents/budget.ods.restored").exists(), "the restore did not stop before budget.ods");

    let done = match restore_into(&store_path, &root, &Silent, &Cancel::new()).unwrap() {
        Finished::Done(r) => r,
        Finished::Incomplete(r) => panic!("not complete: {}", r.text()),
        Finished::AlreadyRestored(st) => panic!("the cancelled restore was marked: {st:?}"),
    };
    assert!(done.complete(), "{}", done.text());
    assert_eq!(second_copies(&h), Vec::<String>::new(), "a rerun copied an earlier run's work again");
    let beside: Vec<&str> =
        done.entries.iter().filter(|e| matches!(e.outcome, restore::report::Outcome::RestoredBeside { .. })).map(|e| e.source.as_str()).collect();
    assert_eq!(beside, ["/home/bob/.config", "/home/bob/.zshrc", "/home/bob/Documents/budget.ods"]);
    for theirs_at in [".config", ".zshrc", "Documents/budget.ods"] {
        assert_eq!(fs::read(h.join(theirs_at)).unwrap(), theirs, "{theirs_at} of the new OS was changed");
    }
    assert_eq!(mf::sha256_bytes(&fs::read(h.join("Documents/budget.ods.restored")).unwrap()), ours("Documents/budget.ods"));
    // Everything else where an uninterrupted run puts it: `.config` and what it holds beside.
    let moved: Vec<ExpectedEntry> = fx
        .user_entries("bob")
        .filter(|e| e.path != ".zshrc" && e.path != "Documents/budget.ods")
        .map(|e| match e.path.strip_prefix(".config") {
            Some(rest) => ExpectedEntry { path: format!(".config.restored{rest}"), ..e.clone() },
            None => e.clone(),
        })
        .collect();
    let rest: Vec<&ExpectedEntry> = moved.iter().collect();
    let pre: BTreeSet<String> = [".config", ".zshrc", "Documents", "Documents/budget.ods", ".zshrc.restored", "Documents/budget.ods.restored"]
        .map(String::from)
        .into();
    let diffs: Vec<String> = mf::restored_diffs(&root, "bob", &rest, &ext4_mode, &pre)
        .into_iter()
        .filter(|d| !d.starts_with("/home/bob/Documents:"))
        .collect();
    assert_no_diffs("bob after the reruns", &diffs);
    let files: Vec<String> = mf::fat_list(s).into_iter().map(|(p, _)| p).collect();
    assert!(files.iter().any(|f| f == "restore/state.json"), "{files:?}");
    assert!(!files.iter().any(|f| f == "restore/progress.jsonl"), "the record outlived the restore: {files:?}");
    fs::remove_dir_all(&dir).unwrap();
}

/// A power cut can lose the last second of the record: with no record at all, a rerun still
/// recognises the copies the first run put beside the new OS's files.
#[test]
fn a_rerun_without_the_record_recognises_its_copies() {
    let dir = mf::tmp("cancel-norecord");
    let (_, store_path, root) = bob_captured(&dir);
    let s = store_path.to_str().unwrap();
    let h = root.home("bob");
    fs::write(h.join(".zshrc"), b"theirs\n").unwrap();
    let after_zshrc: Pick = Box::new(|e| matches!(e, Event::Entries { current, .. } if current.ends_with(".zshrc")));
    let sink = StopWhen::new(after_zshrc, Box::new(|e| matches!(e, Event::Entries { .. })));
    assert!(restore_into(&store_path, &root, &sink, &sink.cancel).is_err());
    assert!(h.join(".zshrc.restored").exists());
    let o = std::process::Command::new("mdel").args(["-i", s, "::/restore/progress.jsonl"]).output().unwrap();
    assert!(o.status.success(), "{o:?}");
    let Finished::Done(r) = restore_into(&store_path, &root, &Silent, &Cancel::new()).unwrap() else { panic!("marked") };
    assert_eq!(second_copies(&h), Vec::<String>::new());
    let z = r.entries.iter().find(|e| e.source == "/home/bob/.zshrc").unwrap();
    assert_eq!(z.outcome, restore::report::Outcome::RestoredBeside { name: ".zshrc.restored".into() }, "{z:?}");
    fs::remove_dir_all(&dir).unwrap();
}
