//! Cancelling the image engine midway: each entry point stops within a second of the flag and
//! leaves either untouched bytes or a state that the next run completes. Checked on the bytes:
//! kept partitions and the store, the whole target against an uninterrupted lay-down, the
//! partial download against the image.

mod image_common;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use image_common::*;
use inplace::error::{Error, Kind, Written};
use inplace::image::apply::{self, Request};
use inplace::image::create::{self, CreateOptions};
use inplace::image::reader::Trust;
use inplace::image::stage;
use inplace::image::target::Expect;
use inplace::image::verify;
use inplace::net::http::HttpOptions;
use inplace::progress::{Cancel, Event, Silent, Sink};
use inplace::step::Step;
use inplace_tests::http_server::Server;

/// Raises its flag at the first `Bytes` event of phase `phase` that reports work done but not
/// all of it, and remembers when; keeps the log lines.
struct CancelAt {
    phase: &'static str,
    cancel: Cancel,
    state: Mutex<(bool, Option<Instant>, u64)>,
    log: Mutex<Vec<String>>,
}

impl CancelAt {
    fn new(phase: &'static str) -> CancelAt {
        CancelAt { phase, cancel: Cancel::new(), state: Mutex::new((false, None, 0)), log: Mutex::new(Vec::new()) }
    }

    /// When the flag went up, and how many bytes were done then.
    fn raised(&self) -> (Instant, u64) {
        let s = self.state.lock().unwrap();
        (s.1.unwrap_or_else(|| panic!("the flag was never raised in phase {:?}", self.phase)), s.2)
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Sink for CancelAt {
    fn event(&self, e: &Event) {
        let mut s = self.state.lock().unwrap();
        match e {
            Event::Phase { name, .. } => s.0 = name == self.phase,
            Event::Bytes { done, total, .. } if s.0 && s.1.is_none() && *done > 0 && done < total => {
                self.cancel.cancel();
                *s = (true, Some(Instant::now()), *done);
            }
            Event::Log { message } => self.log.lock().unwrap().push(message.clone()),
            _ => {}
        }
    }
}

/// Asserts that `e` is a cancellation of `step` that had written `written`, returned within a
/// second of the flag.
fn stopped(e: &Error, step: Step, written: Written, raised: Instant) {
    let late = raised.elapsed();
    assert_eq!((e.kind, e.step, e.written), (Kind::Cancelled, step, written), "{e:?}");
    assert!(late < Duration::from_secs(1), "{step} returned {late:?} after the flag was raised");
}

/// An image of a reference disk in small chunks (many units of work to stop between), with
/// pinned GUIDs so two lay-downs give the same bytes.
fn image(d: &Path) -> PathBuf {
    fixed_e2fsprogs_time();
    let reference = small_reference(d, 24);
    let out = d.join("img.img");
    create::create(&options(&reference, &out), &Silent, &Cancel::new()).unwrap();
    out
}

fn options(from: &Path, out: &Path) -> CreateOptions {
    CreateOptions {
        from: from.to_path_buf(),
        partitions: Vec::new(),
        out: out.to_path_buf(),
        chunk_size: 256 << 10,
        level: 1,
        workers: 2,
        grow: None,
        pin_guids: true,
        shrinkable: false,
        sign_key: None,
    }
}

fn request(image: &str, disk: &Path) -> Request {
    Request {
        image: image.to_string(),
        disk: disk.to_path_buf(),
        keep: vec![2],
        store: None,
        trust: Trust::default(),
        http: HttpOptions { timeout: Duration::from_secs(5), retries: 3, backoff: Duration::from_millis(50) },
        workers: 2,
        expect: Expect::default(),
        readback: true,
        efi_nvram: false,
    }
}

/// Lays `image` down on `disk` without interruption.
fn lay_down(image: &str, disk: &Path) {
    let p = apply::prepare(&request(image, disk), &Silent, &Cancel::new()).unwrap();
    apply::lay_down(p, &Silent, &Cancel::new()).unwrap();
}

/// sha256 of every partition and the partition table of `disk`.
fn partition_shas(disk: &Path) -> Vec<(u32, u64, u64, String)> {
    partitions(disk).into_iter().map(|(n, s, l, _)| (n, s, l, range_sha(disk, s, l))).collect()
}

#[test]
fn a_cancelled_lay_down_keeps_the_store_and_completes_when_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let img = image(d);
    let img = img.to_str().unwrap();
    let whole = target(d, "whole.img", 400);
    lay_down(img, &whole.path);
    let want = file_sha(&whole.path);

    let t = target(d, "cut.img", 400);
    let kept = range_sha(&t.path, t.kept.1, t.kept.2);
    let store = range_sha(&t.path, t.store.1, t.store.2);
    let sink = CancelAt::new("writing");
    let p = apply::prepare(&request(img, &t.path), &sink, &sink.cancel).unwrap();
    let e = apply::lay_down(p, &sink, &sink.cancel).unwrap_err();
    let (raised, at) = sink.raised();
    stopped(&e, Step::LayDown, Written::Disk, raised);
    assert!(!e.hints.is_empty(), "a cancelled lay-down says what to do: {e:?}");
    assert_eq!(range_sha(&t.path, t.kept.1, t.kept.2), kept, "the kept partition changed");
    assert_eq!(range_sha(&t.path, t.store.1, t.store.2), store, "the store changed");
    assert_ne!(file_sha(&t.path), want, "the lay-down was stopped after {at} bytes but the target is complete");

    // Laying the image down again completes the target: the same table and contents as an
    // uninterrupted lay-down, byte for byte.
    lay_down(img, &t.path);
    assert_eq!(partition_shas(&t.path), partition_shas(&whole.path));
    assert_eq!(file_sha(&t.path), want, "the completed target differs from an uninterrupted lay-down");
    assert_eq!(range_sha(&t.path, t.store.1, t.store.2), store);
}

#[test]
fn cancelling_before_the_first_write_leaves_the_target_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let img = image(d);
    let img = img.to_str().unwrap();
    let t = target(d, "untouched.img", 400);
    let before = file_sha(&t.path);

    // A flag raised before the call: prepare stops at once.
    let cancel = Cancel::new();
    cancel.cancel();
    let raised = Instant::now();
    let e = apply::prepare(&request(img, &t.path), &Silent, &cancel).err().expect("a cancelled prepare fails");
    stopped(&e, Step::LayDown, Written::Nothing, raised);

    // Midway through the check of every stored chunk that precedes the first write.
    let sink = CancelAt::new("verifying");
    let p = apply::prepare(&request(img, &t.path), &sink, &sink.cancel).unwrap();
    let e = apply::lay_down(p, &sink, &sink.cancel).unwrap_err();
    stopped(&e, Step::LayDown, Written::Nothing, sink.raised().0);
    assert_eq!(file_sha(&t.path), before, "the target changed before the first write");

    // Midway through `image verify`.
    let sink = CancelAt::new("verifying");
    let e = verify::verify(img, &Trust::default(), &HttpOptions::default(), 2, &sink, &sink.cancel).unwrap_err();
    stopped(&e, Step::Image, Written::Nothing, sink.raised().0);
    assert_eq!(file_sha(&t.path), before);
}

#[test]
fn a_cancelled_create_leaves_no_image() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let reference = small_reference(d, 24);
    let out = d.join("cut.img");
    let sink = CancelAt::new("reading and compressing");
    let e = create::create(&options(&reference, &out), &sink, &sink.cancel).unwrap_err();
    stopped(&e, Step::Image, Written::Nothing, sink.raised().0);
    let left: Vec<_> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(!out.exists(), "a cancelled create left {}", out.display());
    assert!(left.iter().all(|n| n.starts_with("small")), "a cancelled create left files: {left:?}");
    // The same options then make a complete image.
    create::create(&options(&reference, &out), &Silent, &Cancel::new()).unwrap();
    verify::verify(out.to_str().unwrap(), &Trust::default(), &HttpOptions::default(), 2, &Silent, &Cancel::new()).unwrap();
}

#[test]
fn a_cancelled_download_is_kept_and_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let img = image(d);
    let local = target(d, "local.img", 400);
    lay_down(img.to_str().unwrap(), &local.path);
    let want = file_sha(&local.path);

    let server = Server::start(img.clone());
    let url = server.url("img.img");
    // About 6 MiB/s, so the download is still running when the flag goes up.
    server.behaviour.pace_ms.store(10, Ordering::SeqCst);
    let t = target(d, "staged.img", 400);
    let before = file_sha(&t.path);
    let staging = d.join("stage");
    let sink = CancelAt::new("downloading");
    let mut p = apply::prepare(&request(&url, &t.path), &sink, &sink.cancel).unwrap();
    let e = stage::stage(&mut p, &staging, &sink, &sink.cancel).unwrap_err();
    stopped(&e, Step::Stage, Written::StoreOnly, sink.raised().0);
    assert!(p.is_remote() && !p.verified, "a cancelled staging left the prepared image as it was");
    assert_eq!(file_sha(&t.path), before, "staging wrote to the target");
    let files: Vec<PathBuf> = std::fs::read_dir(&staging).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].to_string_lossy().ends_with(".img.partial"), "{files:?}");
    let kept = std::fs::metadata(&files[0]).unwrap().len();
    let len = std::fs::metadata(&img).unwrap().len();
    assert!(kept > 0 && kept < len, "the partial download holds {kept} of {len} bytes");
    assert_eq!(range_sha(&files[0], 0, kept), range_sha(&img, 0, kept), "the partial download is not the image's first bytes");

    // Staging again resumes at the first byte not kept, and the lay-down from the staged copy
    // gives the same disk as a local one.
    server.behaviour.pace_ms.store(0, Ordering::SeqCst);
    server.log.lock().unwrap().clear();
    let sink = CancelAt::new("none");
    stage::stage(&mut p, &staging, &sink, &Cancel::new()).unwrap();
    let log = sink.log();
    assert!(log.iter().any(|l| l.contains(&format!("resuming the staged download at byte {kept}"))), "{log:#?}");
    let starts: Vec<u64> = server.ranges().into_iter().flatten().filter(|(a, z)| z > a).map(|(a, _)| a).collect();
    assert_eq!(starts, vec![kept], "the download restarted instead of resuming");
    assert!(!p.is_remote() && p.verified);
    let staged = staging.join(files[0].file_name().unwrap().to_string_lossy().trim_end_matches(".partial"));
    assert_eq!(file_sha(&staged), file_sha(&img));
    apply::lay_down(p, &Silent, &Cancel::new()).unwrap();
    assert_eq!(file_sha(&t.path), want, "the staged lay-down differs from the local one");
}
