//! Damaged and hostile stores. A store is untrusted input: a flipped byte must be found by
//! `store verify` (naming the entry) and make restore refuse before writing anything; a store
//! hand-made to escape the restore root (`..`, absolute paths, a link followed by a file
//! through it, a 1 TiB claim, a hostile account name) must be refused as a whole, with nothing
//! written to the root and nothing changed outside it.
//!
//! The hostile stores are written here by a small writer of our own that follows
//! `docs/store-format.md` / `pe/src/migrate/store/{format,manifest}.rs` (segment and record
//! headers with their CRC-32s, zstd frames made of raw blocks, the manifest and its SHA-256),
//! not by inplace's writer, so it can write what inplace never would. A benign store from the
//! same writer restores, which shows the refusals come from the hostile content.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use inplace_tests::migrate_fixtures::{self as mf, GIB};
use serde_json::json;
use sha2::{Digest, Sha256};

// ---- a store writer of our own --------------------------------------------------------------

fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0xEDB8_8320 } else { c >> 1 };
        }
    }
    !c
}

/// A zstd frame holding `data` (at most 64 KiB) as one raw block.
fn zstd_raw_frame(data: &[u8]) -> Vec<u8> {
    assert!(data.len() <= 65_791);
    let mut f = vec![0x28, 0xB5, 0x2F, 0xFD];
    if data.len() < 256 {
        f.push(0x20); // single segment, 1-byte content size
        f.push(data.len() as u8);
    } else {
        f.push(0x60); // single segment, 2-byte content size (minus 256)
        f.extend_from_slice(&((data.len() - 256) as u16).to_le_bytes());
    }
    let block = ((data.len() as u32) << 3) | 1; // raw block, last
    f.extend_from_slice(&block.to_le_bytes()[..3]);
    f.extend_from_slice(data);
    f
}

/// One entry of a hand-made store.
#[derive(Clone)]
struct Hand {
    user: Option<String>,
    path: String,
    kind: &'static str,
    data: Option<Vec<u8>>,
    /// What the manifest claims as the size (default: the data's length).
    size: Option<u64>,
    target: Option<String>,
    mode: u32,
}

fn file(user: Option<&str>, path: &str, data: &[u8]) -> Hand {
    Hand { user: user.map(String::from), path: path.into(), kind: "file", data: Some(data.to_vec()), size: None, target: None, mode: 0o644 }
}

fn folder(user: Option<&str>, path: &str) -> Hand {
    Hand { user: user.map(String::from), path: path.into(), kind: "dir", data: None, size: None, target: None, mode: 0o755 }
}

fn link(user: Option<&str>, path: &str, kind: &'static str, target: &str) -> Hand {
    Hand { user: user.map(String::from), path: path.into(), kind, data: None, size: None, target: Some(target.into()), mode: 0o777 }
}

/// Writes `entries` as a finished capture into a fresh FAT32 store volume.
fn hand_store(dir: &Path, name: &str, entries: &[Hand]) -> PathBuf {
    let plan = format!("{:x}", Sha256::digest(format!("hand-made store {name}")));
    let capture_id: Vec<u8> = (0..12).map(|i| u8::from_str_radix(&plan[2 * i..2 * i + 2], 16).unwrap()).collect();
    let mut seg = Vec::new();
    seg.extend_from_slice(b"INPLSEGM");
    seg.extend_from_slice(&1u16.to_le_bytes());
    seg.extend_from_slice(&32u16.to_le_bytes());
    seg.extend_from_slice(&1u32.to_le_bytes());
    seg.extend_from_slice(&capture_id);
    let c = crc32(&seg);
    seg.extend_from_slice(&c.to_le_bytes());
    let mut listed = Vec::new();
    let mut records = 0u32;
    let (mut files, mut dirs, mut links, mut bytes) = (0u64, 0u64, 0u64, 0u64);
    let users: BTreeSet<String> = entries.iter().filter_map(|e| e.user.clone()).collect();
    for (id, e) in entries.iter().enumerate() {
        let size = e.size.unwrap_or(e.data.as_ref().map_or(0, |d| d.len() as u64));
        bytes += size;
        match e.kind {
            "file" => files += 1,
            "dir" => dirs += 1,
            _ => links += 1,
        }
        let mut v = json!({
            "source": format!("/hand/{}", e.path), "path": e.path, "kind": e.kind, "size": size, "mode": e.mode,
            "mtime": { "secs": 1_700_000_000, "nanos": 0 }, "id": id, "crc32": 0,
        });
        if let Some(u) = &e.user {
            v["user"] = json!(u);
            v["owner"] = json!(u);
        }
        if let Some(t) = &e.target {
            v["target"] = json!(t);
        }
        if let Some(data) = e.data.as_ref().filter(|d| !d.is_empty()) {
            let at = seg.len();
            let frame = zstd_raw_frame(data);
            let crc = crc32(data);
            let mut h = Vec::new();
            h.extend_from_slice(b"INPR");
            h.extend_from_slice(&[0, 0]);
            h.extend_from_slice(&40u16.to_le_bytes());
            h.extend_from_slice(&(id as u32).to_le_bytes());
            h.extend_from_slice(&crc.to_le_bytes());
            h.extend_from_slice(&0u64.to_le_bytes());
            h.extend_from_slice(&(data.len() as u32).to_le_bytes());
            h.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            h.extend_from_slice(&crc.to_le_bytes());
            let hc = crc32(&h);
            h.extend_from_slice(&hc.to_le_bytes());
            seg.extend_from_slice(&h);
            seg.extend_from_slice(&frame);
            records += 1;
            v["crc32"] = json!(crc);
            v["data"] = json!({ "segment": 1, "offset": at, "records": 1 });
        }
        listed.push(v);
    }
    let seg_sha = format!("{:x}", Sha256::digest(&seg));
    let manifest = json!({
        "format": 1, "plan_sha256": plan, "started": 1_700_000_000u64, "finished": 1_700_000_100u64,
        "info": { "disk": "hand-made", "partition": 2, "family": "linux" },
        "users": users, "chunk_size": 1 << 20, "segment_limit": 1u64 << 30, "zstd_level": 3,
        "entries": listed, "skipped": [],
        "segments": [{ "name": "seg-00001.ipa", "bytes": seg.len(), "sha256": seg_sha, "records": records }],
        "totals": { "entries": entries.len(), "files": files, "dirs": dirs, "links": links, "bytes": bytes, "hole_bytes": 0,
                    "stored_bytes": seg.len(), "records": records, "skipped": 0 },
    });
    let mut mjson = serde_json::to_vec_pretty(&manifest).unwrap();
    mjson.push(b'\n');
    let work = dir.join(format!("{name}.parts"));
    fs::create_dir_all(&work).unwrap();
    fs::write(work.join("seg"), &seg).unwrap();
    fs::write(work.join("manifest.json"), &mjson).unwrap();
    fs::write(work.join("manifest.sha256"), format!("{:x}  manifest.json\n", Sha256::digest(&mjson))).unwrap();
    let store = mf::store_volume(dir, &format!("{name}.fat"), GIB);
    let v = store.to_str().unwrap();
    mf::fat_put(v, &work.join("seg"), "capture/seg-00001.ipa");
    mf::fat_put(v, &work.join("manifest.json"), "capture/manifest.json");
    mf::fat_put(v, &work.join("manifest.sha256"), "capture/manifest.sha256");
    store
}

/// A target root and, beside it, a directory outside it with a sentinel file.
fn root_and_outside(dir: &Path, name: &str) -> (mf::TargetRoot, PathBuf) {
    let root = mf::target_root(dir, &format!("{name}-root"));
    let outside = dir.join(format!("{name}-outside"));
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("sentinel"), "untouched\n").unwrap();
    (root, outside)
}

// ---- the tests -------------------------------------------------------------------------------

#[test]
fn a_benign_hand_made_store_verifies_and_restores() {
    let dir = mf::tmp("bad-benign");
    let store = hand_store(
        &dir,
        "benign",
        &[
            folder(Some("bob"), "Documents"),
            file(Some("bob"), "Documents/a.txt", b"hello from a hand-made store\n"),
            file(Some("bob"), "big.txt", &mf::content("big", 60_000, mf::Content::Text)),
            link(Some("bob"), "a-link", "symlink", "Documents/a.txt"),
            link(Some("bob"), "a-hard", "hardlink", "Documents/a.txt"),
            file(None, "etc/hostname", b"handmade\n"),
        ],
    );
    let s = store.to_str().unwrap();
    let o = mf::inplace(&["store", "verify", "--store", s]);
    assert!(o.status.success(), "our writer is wrong, or verify is:\n{}", mf::text(&o));
    let (root, _) = root_and_outside(&dir, "benign");
    let o = mf::inplace(&["restore", "--store", s, "--root", root.path_str()]);
    assert!(o.status.success(), "{}", mf::text(&o));
    let h = root.home("bob");
    assert_eq!(fs::read(h.join("Documents/a.txt")).unwrap(), b"hello from a hand-made store\n");
    assert_eq!(fs::read(h.join("big.txt")).unwrap(), mf::content("big", 60_000, mf::Content::Text));
    assert_eq!(fs::read_link(h.join("a-link")).unwrap(), Path::new("Documents/a.txt"));
    use std::os::unix::fs::MetadataExt;
    assert_eq!(fs::metadata(h.join("a-hard")).unwrap().ino(), fs::metadata(h.join("Documents/a.txt")).unwrap().ino());
    assert_eq!(fs::read_to_string(root.path.join("etc/hostname")).unwrap(), "handmade\n");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn hostile_stores_are_refused_and_nothing_is_written() {
    let dir = mf::tmp("bad-hostile");
    let passwd = b"root::0:0:owned:/root:/bin/sh\n";
    let cases: Vec<(&str, Vec<Hand>, &str)> = vec![
        ("dotdot", vec![file(Some("bob"), "../../etc/passwd", passwd)], "../../etc/passwd"),
        ("dotdot-deep", vec![folder(Some("bob"), "Documents"), file(Some("bob"), "Documents/../../../../hostile-outside/sentinel", passwd)], "sentinel"),
        ("absolute", vec![file(Some("bob"), "/etc/passwd", passwd)], "/etc/passwd"),
        ("system-dotdot", vec![file(None, "../hostile-outside/sentinel", b"owned\n")], "sentinel"),
        ("backslash", vec![file(Some("bob"), "..\\..\\etc\\passwd", passwd)], "passwd"),
        (
            "link-then-file",
            vec![link(Some("bob"), "docs", "symlink", "../../../hostile-outside"), file(Some("bob"), "docs/pwned.txt", b"owned\n")],
            "docs/pwned.txt",
        ),
        (
            "file-then-link",
            vec![file(Some("bob"), "esc/pwned.txt", b"owned\n"), link(Some("bob"), "esc", "symlink", "/")],
            "pwned.txt",
        ),
        ("hardlink-out", vec![link(Some("bob"), "hl", "hardlink", "../../../hostile-outside/sentinel")], "hl"),
        ("user-dotdot", vec![file(Some("../../hostile-outside"), "sentinel", b"owned\n")], "hostile-outside"),
        (
            "one-tebibyte",
            vec![Hand { size: Some(1 << 40), ..file(Some("bob"), "huge.bin", b"ten bytes!") }],
            "huge.bin",
        ),
        ("duplicate", vec![file(Some("bob"), "a.txt", b"one\n"), file(Some("bob"), "a.txt", b"two\n")], "a.txt"),
    ];
    for (name, entries, named) in cases {
        let store = hand_store(&dir, name, &entries);
        let s = store.to_str().unwrap();
        // The outside directory sits where the hostile paths point: beside the root.
        let root = mf::target_root(&dir, "hostile-root");
        let outside = dir.join("hostile-outside");
        let _ = fs::remove_dir_all(&outside);
        fs::create_dir_all(&outside).unwrap();
        fs::write(outside.join("sentinel"), "untouched\n").unwrap();
        let root_before = mf::tree_fingerprint(&root.path);
        let outside_before = mf::tree_fingerprint(&outside);
        let store_before = inplace_tests::fixtures::image_fingerprint(&store);
        for extra in [&["--dry-run"][..], &[][..], &["--conflict", "overwrite", "--create-users"][..]] {
            let mut args = vec!["restore", "--store", s, "--root", root.path_str()];
            args.extend_from_slice(extra);
            let o = mf::inplace(&args);
            let t = mf::text(&o);
            assert_eq!(o.status.code(), Some(1), "{name} {extra:?}: not refused:\n{t}");
            assert!(t.contains(named), "{name} {extra:?}: the refusal does not name {named:?}:\n{t}");
            assert_eq!(mf::tree_fingerprint(&root.path), root_before, "{name} {extra:?}: the root changed:\n{t}");
            assert_eq!(mf::tree_fingerprint(&outside), outside_before, "{name} {extra:?}: outside the root changed:\n{t}");
        }
        // A refused store is not marked or changed either.
        assert_eq!(inplace_tests::fixtures::image_fingerprint(&store), store_before, "{name}: the store changed");
        fs::remove_file(&store).unwrap();
    }
    fs::remove_dir_all(&dir).unwrap();
}

/// A flipped byte inside a segment: `store verify` exits 1 naming the damaged entry, and
/// restore refuses with nothing written.
#[test]
fn a_flipped_byte_fails_verify_naming_the_entry_and_restore_writes_nothing() {
    let dir = mf::tmp("bad-flip");
    let fx = mf::linux_disk(&dir);
    let store = mf::store_volume(&dir, "store.fat", GIB);
    let s = store.to_str().unwrap();
    let part = fx.part_str();
    let o = mf::inplace(&["capture", "--disk", fx.disk_str(), "--partition", &part, "--users", "bob", "--store", s]);
    assert!(o.status.success(), "{}", mf::text(&o));
    assert!(mf::inplace(&["store", "verify", "--store", s]).status.success());
    let manifest = mf::store_manifest(s, &dir);
    let victim = manifest["entries"].as_array().unwrap().iter().find(|e| e["path"] == "Documents/budget.ods").cloned().unwrap();
    let seg_name = format!("capture/{}", manifest["segments"][victim["data"]["segment"].as_u64().unwrap() as usize - 1]["name"].as_str().unwrap());
    // Into the first record's payload: past its 40-byte header and the zstd frame header.
    let at = victim["data"]["offset"].as_u64().unwrap() + 40 + 5000;
    let seg = dir.join("seg");
    mf::fat_get(s, &seg_name, &seg);
    mf::flip_byte(&seg, at);
    mf::fat_put(s, &seg, &seg_name);

    let o = mf::inplace(&["store", "verify", "--store", s]);
    assert_eq!(o.status.code(), Some(1), "{}", mf::text(&o));
    assert!(mf::text(&o).contains("/home/bob/Documents/budget.ods"), "verify does not name the entry:\n{}", mf::text(&o));
    let v = mf::json(&mf::inplace(&["store", "verify", "--store", s, "--json"]));
    assert_eq!(v["ok"], false);
    assert!(v["error"].as_str().unwrap().contains("budget.ods"), "{v}");

    let (root, _) = root_and_outside(&dir, "flip");
    let before = mf::tree_fingerprint(&root.path);
    for extra in [&[][..], &["--dry-run"][..]] {
        let mut args = vec!["restore", "--store", s, "--root", root.path_str()];
        args.extend_from_slice(extra);
        let o = mf::inplace(&args);
        assert_eq!(o.status.code(), Some(1), "{extra:?}: {}", mf::text(&o));
        assert!(mf::text(&o).contains("budget.ods"), "{}", mf::text(&o));
        assert_eq!(mf::tree_fingerprint(&root.path), before, "{extra:?}: restore wrote into the root:\n{}", mf::text(&o));
    }
    fs::remove_dir_all(&dir).unwrap();
}

/// A segment missing from the store, or cut short: verify names it, restore refuses.
#[test]
fn a_missing_or_truncated_segment_is_refused() {
    let dir = mf::tmp("bad-segment");
    let entries = [folder(Some("bob"), "Documents"), file(Some("bob"), "Documents/a.txt", &mf::content("a", 20_000, mf::Content::Random))];
    for how in ["missing", "truncated"] {
        let store = hand_store(&dir, how, &entries);
        let s = store.to_str().unwrap();
        let seg = dir.join(format!("{how}.seg"));
        mf::fat_get(s, "capture/seg-00001.ipa", &seg);
        if how == "missing" {
            let o = std::process::Command::new("mdel").args(["-i", s, "::/capture/seg-00001.ipa"]).output().unwrap();
            assert!(o.status.success());
        } else {
            let data = fs::read(&seg).unwrap();
            fs::write(&seg, &data[..data.len() - 1000]).unwrap();
            mf::fat_put(s, &seg, "capture/seg-00001.ipa");
        }
        let o = mf::inplace(&["store", "verify", "--store", s]);
        assert_eq!(o.status.code(), Some(1), "{how}: {}", mf::text(&o));
        assert!(mf::text(&o).contains("seg-00001.ipa"), "{how}: {}", mf::text(&o));
        let (root, _) = root_and_outside(&dir, how);
        let before = mf::tree_fingerprint(&root.path);
        let o = mf::inplace(&["restore", "--store", s, "--root", root.path_str()]);
        assert_eq!(o.status.code(), Some(1), "{how}: {}", mf::text(&o));
        assert_eq!(mf::tree_fingerprint(&root.path), before);
    }
    fs::remove_dir_all(&dir).unwrap();
}

/// Links the new OS already has are never followed: a `Documents` link and a whole home that
/// is a link, both pointing outside the root, leave the outside unchanged.
#[test]
fn links_in_the_target_root_are_not_followed() {
    let dir = mf::tmp("bad-target-links");
    let store = hand_store(
        &dir,
        "plain",
        &[folder(Some("bob"), "Documents"), file(Some("bob"), "Documents/a.txt", b"ours\n"), file(Some("alice"), "notes.txt", b"alice's\n")],
    );
    let s = store.to_str().unwrap();
    let (root, outside) = root_and_outside(&dir, "links");
    let bob = root.home("bob");
    std::os::unix::fs::symlink(&outside, bob.join("Documents")).unwrap();
    let alice = root.home("alice");
    fs::remove_dir_all(&alice).unwrap();
    std::os::unix::fs::symlink(&outside, &alice).unwrap();
    let outside_before = mf::tree_fingerprint(&outside);
    let o = mf::inplace(&["restore", "--store", s, "--root", root.path_str()]);
    assert!(matches!(o.status.code(), Some(0) | Some(4)), "{}", mf::text(&o));
    assert_eq!(mf::tree_fingerprint(&outside), outside_before, "restore wrote through a link:\n{}", mf::text(&o));
    assert_eq!(fs::read_link(bob.join("Documents")).unwrap(), outside, "the new OS's link was replaced");
    // Ours went beside the link, as a real directory.
    assert_eq!(fs::read(bob.join("Documents.restored/a.txt")).unwrap(), b"ours\n");
    fs::remove_dir_all(&dir).unwrap();
}

/// A capture cut off by a power cut, before and after its first complete segment: the store
/// is "unfinished" (docs/store-format.md: a segment without `manifest.sha256`), so verify and
/// restore say to run the capture again, and restore writes nothing.
#[test]
fn an_unfinished_capture_is_reported_as_unfinished() {
    let dir = mf::tmp("bad-unfinished");
    let fx = mf::linux_disk(&dir);
    let part = fx.part_str();
    for (name, abort) in [("later", 1_500_000u64), ("early", 100_000)] {
        let store = mf::store_volume(&dir, &format!("{name}.fat"), GIB);
        let s = store.to_str().unwrap();
        let a = abort.to_string();
        let o = mf::inplace(&[
            "capture", "--disk", fx.disk_str(), "--partition", &part, "--users", "bob", "--store", s, "--segment-size", "1048576",
            "--abort-after", &a,
        ]);
        assert!(!o.status.success(), "{name}: {}", mf::text(&o));
        let files: Vec<String> = mf::fat_list(s).into_iter().map(|(p, _)| p).collect();
        assert!(files.iter().any(|f| f.starts_with("capture/seg-")), "{name}: no segment was started: {files:?}");
        let o = mf::inplace(&["store", "verify", "--store", s]);
        assert_eq!(o.status.code(), Some(1), "{name}: {}", mf::text(&o));
        assert!(mf::text(&o).contains("not finished"), "{name}: verify does not say the capture is unfinished:\n{}", mf::text(&o));
        let (root, _) = root_and_outside(&dir, name);
        let before = mf::tree_fingerprint(&root.path);
        let o = mf::inplace(&["restore", "--store", s, "--root", root.path_str()]);
        assert_eq!(o.status.code(), Some(1), "{name}: {}", mf::text(&o));
        assert!(mf::text(&o).contains("not finished"), "{name}: {}", mf::text(&o));
        assert_eq!(mf::tree_fingerprint(&root.path), before);
    }
    fs::remove_dir_all(&dir).unwrap();
}

/// A damaged store is named once: `store verify` and `restore` print the damage (store,
/// entry, segment, what is wrong) in one message, not repeated through an error chain, and
/// say what to do.
#[test]
fn a_damaged_store_is_reported_once() {
    let dir = mf::tmp("bad-once");
    let data = mf::content("a", 20_000, mf::Content::Random);
    let store = hand_store(&dir, "once", &[folder(Some("bob"), "Documents"), file(Some("bob"), "Documents/a.txt", &data)]);
    let s = store.to_str().unwrap();
    let seg = dir.join("once.seg");
    mf::fat_get(s, "capture/seg-00001.ipa", &seg);
    // Inside the record's data: past the segment header, the record header and the frame's.
    mf::flip_byte(&seg, 32 + 40 + 8 + 1000);
    mf::fat_put(s, &seg, "capture/seg-00001.ipa");
    let (root, _) = root_and_outside(&dir, "once");
    let runs = [vec!["store", "verify", "--store", s], vec!["restore", "--store", s, "--root", root.path_str()]];
    for args in runs {
        let o = mf::inplace(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", mf::text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        for once in ["is damaged", "/hand/Documents/a.txt", "seg-00001.ipa at byte", "CRC-32", s] {
            assert_eq!(err.matches(once).count(), 1, "{args:?}: {once:?} is not in stderr exactly once:\n{err}");
        }
        assert!(err.contains("capture again into a new store"), "{args:?}: no advice:\n{err}");
        assert!(err.contains("nothing was written"), "{args:?}:\n{err}");
    }
    fs::remove_dir_all(&dir).unwrap();
}
