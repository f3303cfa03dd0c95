//! The parts chained on real Debian 12 systems (tests/src/debian.rs) as a technician runs them,
//! through the `inplace` CLI: the store carved from the old root's free tail (the disk has no
//! unallocated space), that root captured into it, and the store restored into the new OS's
//! root tree (extracted from its disk with debugfs, so restore sees Debian's own passwd,
//! shadow, group, shells and libcrypt, and the host's `useradd --prefix` edits them). Feature
//! `debian`.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use inplace::migrate::store::{Manifest, Store};
use inplace_tests::debian::{self, Kind, ManifestEntry, OldMachine, ALICE_PASSWORD};
use inplace_tests::fixtures::{image_fingerprint, run};
use inplace_tests::migrate_fixtures as mf;

fn inplace_in(dir: Option<&Path>, args: &[&str]) -> Output {
    let mut cmd = Command::new(inplace_tests::inplace_bin());
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    cmd.args(args).output().expect("running inplace")
}

fn ok(args: &[&str]) -> Output {
    let o = inplace_in(None, args);
    assert!(o.status.success(), "inplace {} failed ({}):\n{}", args.join(" "), o.status, mf::text(&o));
    o
}

/// A copy of the old machine's disk in `dir`, its store carved from the root's free tail (the
/// image replaces partitions 1 and 2) and sized by the capture estimate, as a technician does.
fn carved(m: &OldMachine, dir: &Path) -> PathBuf {
    let disk = m.disk.copy_to(dir);
    let d = disk.to_str().unwrap();
    let o = ok(&["carve", "--disk", d, "--store-for", "2", "--replace", "1,2", "--yes"]);
    // The root gave up its tail: partition 2 now ends before the end of the disk.
    let json: serde_json::Value = serde_json::from_str(&run(Command::new("sfdisk").arg("--json").arg(&disk))).unwrap();
    let parts = json["partitiontable"]["partitions"].as_array().unwrap();
    let root = &m.disk.root();
    let size2 = parts[1]["size"].as_u64().unwrap() * 512;
    assert!(parts.len() == 3 && size2 < root.size, "partition 2 was not shrunk:\n{json}\n{}", mf::text(&o));
    disk
}

/// `inplace capture` of the old root into `store`, with the extra arguments.
fn capture(disk: &Path, store: &Path, extra: &[&str]) -> (serde_json::Value, String) {
    let mut args = vec!["capture", "--disk", disk.to_str().unwrap(), "--partition", "2", "--store", store.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let o = ok(&args);
    (mf::json(&o), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// The new OS's root tree under `dir/name`, extracted from its disk without mounting.
fn new_os_root(dir: &Path, name: &str) -> PathBuf {
    let new = debian::new_os_disk();
    let fs_img = dir.join(format!("{name}.ext4"));
    new.extract_partition(&new.path, new.root().number, &fs_img);
    let root = dir.join(name);
    fs::create_dir_all(&root).unwrap();
    run(Command::new("debugfs").arg("-R").arg(format!("rdump / {}", root.display())).arg(&fs_img));
    fs::remove_file(&fs_img).unwrap();
    assert!(root.join("etc/passwd").is_file() && root.join("etc/shadow").is_file(), "rdump left no /etc");
    root
}

/// The data of entry `index` of the store's capture.
fn entry_data(store: &mut Store, m: &Manifest, index: usize) -> Vec<u8> {
    let mut data = Vec::new();
    store.read_entry(m, index, &mut data).unwrap_or_else(|e| panic!("{}: {e}", m.entries[index].entry.source));
    data
}

fn sha256(b: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("{:x}", Sha256::digest(b))
}

/// The capture in `store` against the manifest computed from the old root: every entry with
/// its kind, size, mode, owner, group, mtime, link target and data; nothing else; and the
/// excluded trees listed as left out. Names are compared as bytes (one is not UTF-8).
fn assert_capture_matches(m: &OldMachine, store: &Path) {
    let mut s = Store::open(store, false).unwrap();
    let man = s.manifest().unwrap();
    let by_source: BTreeMap<&[u8], usize> = man.entries.iter().enumerate().map(|(i, e)| (e.entry.source.as_bytes(), i)).collect();
    let mut diffs = Vec::new();
    let mut link_files: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
    let expected: Vec<&ManifestEntry> = m.manifest.entries.iter().filter(|e| e.partition == 2).collect();
    for e in &expected {
        let source = String::from_utf8_lossy(&e.source);
        let Some(&i) = by_source.get(e.source.as_slice()) else {
            diffs.push(format!("{source}: not captured"));
            continue;
        };
        let got = &man.entries[i].entry;
        let kind = format!("{:?}", got.kind).to_lowercase();
        let want_kind = match e.kind {
            Kind::File if e.link_group.is_some() => "file or hardlink",
            Kind::File => "file",
            Kind::Dir => "dir",
            Kind::Symlink => "symlink",
        };
        if !want_kind.split(" or ").any(|k| k == kind) {
            diffs.push(format!("{source}: a {kind}, expected {want_kind}"));
        }
        if let Some(g) = e.link_group {
            link_files.entry(g).or_default().push(if kind == "file" { "file" } else { "link" });
        }
        if got.mode.map(|m| m & 0o7777) != e.mode && e.kind != Kind::Symlink {
            diffs.push(format!("{source}: mode {:?}, expected {:?}", got.mode, e.mode));
        }
        if got.owner.as_deref() != Some(e.owner.as_str()) || got.group != e.group {
            diffs.push(format!("{source}: owner {:?}:{:?}, expected {}:{:?}", got.owner, got.group, e.owner, e.group));
        }
        if got.mtime.map(|t| t.secs) != Some(e.mtime) {
            diffs.push(format!("{source}: mtime {:?}, expected {}", got.mtime, e.mtime));
        }
        match e.kind {
            Kind::Symlink if got.target.as_ref().map(|t| t.as_bytes()) != e.target.as_deref() => {
                diffs.push(format!("{source}: target {:?}, expected {:?}", got.target, e.target));
            }
            Kind::File if kind == "file" => {
                let data = entry_data(&mut s, &man, i);
                if data.len() as u64 != e.size || Some(sha256(&data)) != e.sha256 {
                    diffs.push(format!("{source}: {} bytes of other data than the source's {}", data.len(), e.size));
                }
            }
            _ => {}
        }
    }
    for (g, kinds) in &link_files {
        if kinds.iter().filter(|k| **k == "file").count() != 1 {
            diffs.push(format!("hard-link group {g}: {kinds:?}, expected one file and the others links"));
        }
    }
    let profile_or_setting = |src: &[u8]| src.starts_with(b"/home/") || src.starts_with(b"/etc/");
    for x in man.entries.iter().filter(|x| profile_or_setting(x.entry.source.as_bytes())) {
        if !expected.iter().any(|e| e.source == x.entry.source.as_bytes()) {
            diffs.push(format!("{}: captured but not on the source", x.entry.source));
        }
    }
    for x in m.manifest.excluded.iter().filter(|x| x.partition == 2) {
        let src = String::from_utf8_lossy(&x.source);
        if !man.skipped.iter().any(|k| k.source.as_bytes() == x.source.as_slice()) {
            diffs.push(format!("{src}: excluded on the source, not listed as left out"));
        }
    }
    assert!(diffs.is_empty(), "the capture differs from the old root:\n  {}", diffs.join("\n  "));
    assert_eq!(man.users, ["alice", "bob"]);
}

#[test]
fn the_root_whose_tail_became_the_store_is_captured_whole() {
    let m = debian::old_machine();
    let dir = mf::tmp("debian-carve-capture");
    let disk = carved(&m, &dir);
    let d = disk.to_str().unwrap();

    // The estimate and the capture read the root through its extent from before the carve.
    let e = mf::json(&ok(&["capture", "--disk", d, "--partition", "2", "--estimate", "--json"]));
    assert!(e["files"].as_u64().unwrap() >= 20, "{e}");
    let (summary, log) = capture(&disk, &disk, &[]);
    assert!(log.contains("extent before the carve") && log.contains("read-only"), "{log}");
    assert_eq!(summary["files"], e["files"], "{summary}");
    assert_capture_matches(&m, &disk);
    let v = mf::json(&ok(&["store", "verify", "--store", d, "--json"]));
    assert_eq!(v["ok"], true, "{v}");

    // Reading it wrote nothing outside the store: the root, up to where the store begins, is
    // byte for byte what it was before the carve.
    let root = m.disk.root();
    let store_start = Store::open(&disk, false).unwrap().volume_start();
    let (before, after) = (dir.join("before.ext4"), dir.join("after.ext4"));
    debian::extract(&m.disk.path, root.start, store_start - root.start, &before);
    debian::extract(&disk, root.start, store_start - root.start, &after);
    assert_eq!(image_fingerprint(&before), image_fingerprint(&after), "the old root changed below the store");
    let _ = fs::remove_dir_all(&dir);
}

/// The old machine captured into a store carved on (a copy of) its disk, with the preset's
/// `[restore]` table `restore` (TOML lines).
fn captured(dir: &Path, restore: &str) -> (OldMachine, PathBuf) {
    let m = debian::old_machine();
    let disk = carved(&m, dir);
    let preset = dir.join("preset.toml");
    fs::write(&preset, format!("name = \"debian test\"\n[restore]\n{restore}")).unwrap();
    capture(&disk, &disk, &["--preset", preset.to_str().unwrap()]);
    (m, disk)
}

/// The restored mark of the store on `disk`.
fn mark(disk: &Path) -> Option<serde_json::Value> {
    let s = Store::open(disk, false).unwrap();
    s.read_file("restore/state.json", 1 << 16).unwrap().map(|b| serde_json::from_slice(&b).unwrap())
}

#[test]
fn a_restore_with_failures_stays_restorable_until_everything_is_in() {
    let dir = mf::tmp("debian-restore-retry");
    let (_m, disk) = captured(&dir, "create_users = true\n");
    let root = new_os_root(&dir, "newroot");
    let d = disk.to_str().unwrap();
    // A real failure: the new OS has a file where the store's NetworkManager settings need a
    // directory.
    fs::write(root.join("etc/NetworkManager"), b"not a directory\n").unwrap();

    // Relative to the working directory, as a technician may type it.
    let args = ["restore", "--store", d, "--root", "newroot"];
    let o = inplace_in(Some(&dir), &args);
    let out = mf::text(&o);
    assert_eq!(o.status.code(), Some(4), "{out}");
    assert!(out.contains("failed: /etc/NetworkManager/system-connections/office.nmconnection"), "{out}");
    assert!(out.contains("not marked restored"), "{out}");
    assert_eq!(mark(&disk), None, "a run with failures left the store marked");
    // The relative root did not keep the accounts out: useradd got the absolute path.
    let passwd = fs::read_to_string(root.join("etc/passwd")).unwrap();
    assert!(passwd.contains("\nalice:x:1000:") && passwd.contains("\nbob:x:1234:"), "{passwd}");
    let notes = root.join("home/alice/Documents/notes.txt");
    assert!(notes.is_file(), "{out}");
    let ino = fs::metadata(&notes).unwrap().ino();
    let report: serde_json::Value = serde_json::from_slice(&fs::read(root.join("var/log/inplace/restore-report.json")).unwrap()).unwrap();
    assert_eq!(report["totals"]["failed"], 1, "{report}");
    assert_eq!(report["root"], fs::canonicalize(&root).unwrap().display().to_string());

    // Fixed: the next run retries what is not in, marks the store and says so.
    fs::remove_file(root.join("etc/NetworkManager")).unwrap();
    let o = inplace_in(Some(&dir), &args);
    let out = mf::text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains(" 0 failed"), "{out}");
    assert!(out.contains("restored by an earlier, interrupted run"), "{out}");
    assert_eq!(fs::metadata(&notes).unwrap().ino(), ino, "a file of the first run was written again");
    assert!(root.join("etc/NetworkManager/system-connections/office.nmconnection").is_file());
    assert!(!root.join("home/alice/Documents/notes.txt.restored").exists(), "no copies of its own earlier work");
    let st = mark(&disk).expect("marked restored");
    assert_eq!(st["complete"], true, "{st}");

    // And then it is done.
    let o = inplace_in(Some(&dir), &args);
    assert_eq!(o.status.code(), Some(0), "{}", mf::text(&o));
    assert!(mf::text(&o).contains("already restored"), "{}", mf::text(&o));
    let _ = fs::remove_dir_all(&dir);
}

/// A passwd, shadow or group line of `name`, split.
fn line_of(file: &Path, name: &str) -> Vec<String> {
    let text = fs::read_to_string(file).unwrap();
    text.lines()
        .find(|l| l.starts_with(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in {}:\n{text}", file.display()))
        .split(':')
        .map(String::from)
        .collect()
}

/// `crypt(password, setting)` by the host's libcrypt (libxcrypt: yescrypt too), through perl.
fn crypt(password: &str, setting: &str) -> String {
    run(Command::new("perl").args(["-e", "print crypt($ARGV[0], $ARGV[1])", password, setting]))
}

#[test]
fn accounts_come_whole_with_their_password() {
    let dir = mf::tmp("debian-accounts");
    let (m, disk) = captured(&dir, "create_users = true\n");
    let root = new_os_root(&dir, "newroot");
    let o = ok(&["restore", "--store", disk.to_str().unwrap(), "--root", root.to_str().unwrap()]);
    let out = mf::text(&o);

    let alice = m.manifest.account("alice");
    let pw = line_of(&root.join("etc/passwd"), "alice");
    assert_eq!((pw[2].as_str(), pw[4].as_str(), pw[5].as_str(), pw[6].as_str()), ("1000", alice.gecos.as_str(), "/home/alice", "/bin/bash"), "{pw:?}");
    let sh = line_of(&root.join("etc/shadow"), "alice");
    assert!(sh[1].starts_with("$y$"), "not the yescrypt hash: {sh:?}");
    assert_eq!(crypt(ALICE_PASSWORD, &sh[1]), sh[1], "the hash does not check alice's password");
    assert_ne!(crypt("not her password", &sh[1]), sh[1]);
    assert_ne!(sh[2], "0", "no forced change when the password came over: {sh:?}");
    for g in &alice.groups {
        let members = line_of(&root.join("etc/group"), g)[3].clone();
        assert!(members.split(',').any(|u| u == "alice"), "alice is not in {g}: {members}");
    }
    let bob = line_of(&root.join("etc/passwd"), "bob");
    assert_eq!((bob[2].as_str(), bob[4].as_str(), bob[6].as_str()), ("1234", "Bob Builder,,,", "/bin/bash"), "{bob:?}");
    assert!(line_of(&root.join("etc/shadow"), "bob")[1].starts_with("$y$"));
    // Her files are hers, and the report says what came over without showing the hash.
    let uid: u32 = pw[2].parse().unwrap();
    assert_eq!(fs::metadata(root.join("home/alice/Documents/notes.txt")).unwrap().uid(), uid);
    assert!(out.contains("password: the old one (yescrypt"), "{out}");
    let report = fs::read_to_string(root.join("var/log/inplace/restore-report.json")).unwrap();
    assert!(!report.contains(&sh[1]) && !out.contains(&sh[1]), "a password hash in the report");
    // The store is marked: every entry is in (nothing failed).
    assert_eq!(mark(&disk).expect("marked")["complete"], true);

    // With the preset's `passwords = false`: created, with a password to set at first login.
    let dir2 = mf::tmp("debian-accounts-nopw");
    let (_, disk2) = captured(&dir2, "create_users = true\npasswords = false\n");
    let root2 = new_os_root(&dir2, "newroot");
    let o = ok(&["restore", "--store", disk2.to_str().unwrap(), "--root", root2.to_str().unwrap()]);
    let sh = line_of(&root2.join("etc/shadow"), "alice");
    assert_eq!((sh[1].as_str(), sh[2].as_str()), ("", "0"), "not a forced change: {sh:?}");
    assert_eq!(line_of(&root2.join("etc/passwd"), "alice")[6], "/bin/bash");
    assert!(mf::text(&o).contains("first login must set a new one"), "{}", mf::text(&o));
    let _ = fs::remove_dir_all(&dir);
    let _ = fs::remove_dir_all(&dir2);
}
