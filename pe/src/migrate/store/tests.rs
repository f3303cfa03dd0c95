//! The store's small files and its event log, on a real FAT32 image. Captures into stores
//! are tested with the capture (`migrate::capture::tests`).

use super::*;
use crate::migrate::testing::store_image as image;
use crate::progress::{Event, Sink};

#[test]
fn small_files_and_paths() {
    let (_d, path) = image(64);
    let store = Store::open(&path, true).unwrap();
    store.write_file("journal/state.json", b"one").unwrap();
    store.write_file("journal/state.json", b"two!").unwrap();
    assert_eq!(store.read_file("journal/state.json", 10).unwrap().unwrap(), b"two!");
    assert!(store.read_file("journal/none", 10).unwrap().is_none());
    assert!(store.read_file("nodir/none", 10).unwrap().is_none());
    assert!(store.read_file("journal/state.json", 2).is_err());
    assert!(matches!(store.write_file("../x", b""), Err(StoreError::BadPath { .. })));
    assert!(matches!(store.write_file("capture/manifest.json", b""), Err(StoreError::BadPath { .. })));
    assert!(store.remove_file("journal/state.json").unwrap());
    assert!(!store.remove_file("journal/state.json").unwrap());
    let ro = Store::open(&path, false).unwrap();
    assert!(matches!(ro.write_file("a", b""), Err(StoreError::ReadOnly { .. })));
}

#[test]
fn the_event_log_appends_one_line_an_event() {
    let (_d, path) = image(64);
    let store = Store::open(&path, true).unwrap();
    for round in ["first", "second"] {
        let log = EventLog::new();
        log.log(&format!("{round} run"));
        log.event(&Event::Bytes { done: 1, total: 2, rate: 0.0, eta_secs: None });
        log.warn("careful");
        log.keep(&store).unwrap();
        log.keep(&store).unwrap();
    }
    let text = String::from_utf8(store.read_file(journal::EVENTS, 1 << 20).unwrap().unwrap()).unwrap();
    let events: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["log", "warning", "log", "warning"], "{text}");
    assert_eq!(events[2]["message"], "second run");
    assert!(events[0]["time"].as_str().is_some());
}
