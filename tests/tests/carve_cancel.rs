//! Cancelling a carve and a rollback through the engine's entry points, on real GPT images
//! (sgdisk, mkfs.fat, mkfs.ext4): a cancel raised before the call writes no byte (the image's
//! sha256 is unchanged); a cancel raised while the store is being formatted stops within a
//! second, before the partition table is written, and leaves the table, every partition and
//! the disk's meaning as they were (no locator), so the same plan carves afterwards.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use inplace::carve::model::Request;
use inplace::carve::{self, CarveOptions, ReadOptions};
use inplace::error::{Kind, Written};
use inplace::locator::rollback;
use inplace::progress::{Cancel, Event, Silent, Sink};
use inplace_tests::carve_fixtures::{self as cf, sha_range, MIB};
use inplace_tests::sha256_file;

/// Raises `cancel` when phase `phase` begins, and notes when.
struct CancelAt {
    phase: &'static str,
    cancel: Cancel,
    raised: Mutex<Option<Instant>>,
}

impl Sink for CancelAt {
    fn event(&self, e: &Event) {
        if matches!(e, Event::Phase { name, .. } if name == self.phase) {
            self.cancel.cancel();
            *self.raised.lock().unwrap() = Some(Instant::now());
        }
    }
}

fn opts() -> CarveOptions {
    CarveOptions { job_name: "cancel".into(), job_id: None, repair_gpt: false }
}

/// sha256 of the primary and the backup GPT areas of a 128 MiB fixture.
fn table_shas(path: &std::path::Path) -> (String, String) {
    (sha_range(path, 0, 34 * 512), sha_range(path, 128 * MIB - 33 * 512, 33 * 512))
}

/// The fixture every case starts from, and a plan for a 40 MiB store in its free space.
fn fixture(name: &str) -> (std::path::PathBuf, cf::CarveDisk, carve::Prepared) {
    let dir = cf::tmp(name);
    let d = cf::gpt_ext4(&dir, 128, Some(32));
    let p = carve::prepare(&d.path, &Request { store_bytes: 40 * MIB, replace: vec![] }, ReadOptions::default()).unwrap();
    (dir, d, p)
}

#[test]
fn a_cancel_before_the_call_writes_nothing() {
    let (dir, d, p) = fixture("cancel-before");
    let before = sha256_file(&d.path);
    let cancel = Cancel::new();
    cancel.cancel();
    let e = carve::carve(&d.path, &p.plan, &opts(), &Silent, &cancel).unwrap_err();
    assert_eq!((e.kind, e.written), (Kind::Cancelled, Written::Nothing), "{e:?}");
    assert_eq!(sha256_file(&d.path), before, "a cancelled carve wrote to the disk");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_cancel_while_formatting_stops_before_the_table_and_the_plan_still_carves() {
    let (dir, d, p) = fixture("cancel-midway");
    let table_before = table_shas(&d.path);
    let parts = d.part_hashes();

    let sink = CancelAt { phase: "formatting the store", cancel: Cancel::new(), raised: Mutex::new(None) };
    let e = carve::carve(&d.path, &p.plan, &opts(), &sink, &sink.cancel).unwrap_err();
    let took = sink.raised.lock().unwrap().expect("the phase began").elapsed();
    assert_eq!((e.kind, e.written), (Kind::Cancelled, Written::StoreOnly), "{e:?}");
    assert!(took < Duration::from_secs(1), "stopped {took:?} after the cancel");

    // The table, every partition and the disk's meaning are as they were.
    assert_eq!(table_shas(&d.path), table_before);
    for (n, sha) in &parts {
        let s = d.part(*n);
        assert_eq!(&sha_range(&d.path, s.start, s.size), sha, "partition {n} changed");
    }
    let disk = inplace::disk::device::Device::open(&d.path).unwrap();
    assert!(inplace::locator::locate(&disk).is_err(), "no locator may be written before the table");
    cf::sgdisk_verify(&d.path);

    // Resumable: the plan made before still matches the disk, and carves.
    let out = carve::carve(&d.path, &p.plan, &opts(), &Silent, &Cancel::new()).unwrap();
    assert_eq!(out.locator.store_start, p.plan.store.start);
    cf::sgdisk_verify(&d.path);
    cf::fsck_store(&d.path, &dir);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_cancelled_rollback_writes_nothing_and_a_rollback_restores_the_table() {
    let (dir, d, p) = fixture("cancel-rollback");
    let table_before = table_shas(&d.path);
    carve::carve(&d.path, &p.plan, &opts(), &Silent, &Cancel::new()).unwrap();
    let carved = sha256_file(&d.path);

    let r = rollback::prepare(&d.path).unwrap();
    let cancel = Cancel::new();
    cancel.cancel();
    let e = rollback::roll_back(&r, &Silent, &cancel).unwrap_err();
    assert_eq!((e.kind, e.written), (Kind::Cancelled, Written::Nothing), "{e:?}");
    assert_eq!(sha256_file(&d.path), carved, "a cancelled rollback wrote to the disk");

    rollback::roll_back(&r, &Silent, &Cancel::new()).unwrap();
    assert_eq!(table_shas(&d.path), table_before);
    cf::sgdisk_verify(&d.path);
    std::fs::remove_dir_all(&dir).unwrap();
}
