//! Capture from a Linux root (ext4, never mounted) into a store, verify it, restore it into a
//! new root, and compare everything with the manifest the fixture computed from the source:
//! every file's data, mode, owner and group by name, mtime, link targets, hard links, holes,
//! the items left out with their reasons, and the settings applied to the new OS.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use inplace_tests::fixtures::{image_fingerprint, run};
use inplace_tests::migrate_fixtures::{self as mf, assert_no_diffs, EKind, ExpectedEntry, MigrateFixture, TargetRoot, GIB, MIB};

/// Where restore writes its report inside the new OS (documented in `restore/report.rs`).
const REPORT_JSON: &str = "var/log/inplace/restore-report.json";
const REPORT_TEXT: &str = "var/log/inplace/restore-report.txt";

fn ok(args: &[&str]) -> std::process::Output {
    let o = mf::inplace(args);
    assert!(o.status.success(), "inplace {} failed ({}):\n{}", args.join(" "), o.status, mf::text(&o));
    o
}

/// The mode restore gives an ext4 entry: the source's, less setuid/setgid on files (restore
/// drops them: the store is untrusted; see `migrate/restore/mod.rs`).
fn ext4_mode(e: &ExpectedEntry) -> u32 {
    let m = e.mode.expect("ext4 entries have a mode");
    if e.kind == EKind::File { m & !0o6000 } else { m }
}

fn capture(fx: &MigrateFixture, store: &str, extra: &[&str]) -> serde_json::Value {
    let part = fx.part_str();
    let mut args = vec!["capture", "--disk", fx.disk_str(), "--partition", &part, "--store", store, "--json"];
    args.extend_from_slice(extra);
    mf::json(&ok(&args))
}

fn restore(store: &str, root: &TargetRoot, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["restore", "--store", store, "--root", root.path_str()];
    args.extend_from_slice(extra);
    ok(&args)
}

/// The profile entries of `user` plus the system ones, as references.
fn of_user<'a>(fx: &'a MigrateFixture, user: &str) -> Vec<&'a ExpectedEntry> {
    fx.user_entries(user).collect()
}

#[test]
fn linux_capture_verify_restore_matches_the_source() {
    let dir = mf::tmp("linux-full");
    let fx = mf::linux_disk(&dir);
    let before = image_fingerprint(&fx.disk);
    let store = mf::store_volume(&dir, "store.fat", 2 * GIB);
    let s = store.to_str().unwrap();

    let summary = capture(&fx, s, &[]);
    assert_eq!(image_fingerprint(&fx.disk), before, "the capture wrote to the source disk");
    assert_eq!(summary["files"].as_u64(), Some(fx.distinct_file_count() as u64), "{summary}");
    assert_eq!(summary["bytes"].as_u64(), Some(fx.distinct_file_bytes()), "{summary}");
    assert_eq!(summary["entries"].as_u64(), Some(fx.entries.len() as u64), "{summary}");
    // Holes are stored as holes: the store holds far less than the 5 GiB sparse file.
    let stored = summary["stored_bytes"].as_u64().unwrap();
    assert!(stored < 64 * MIB, "{stored} bytes stored: {summary}");

    let o = ok(&["store", "verify", "--store", s]);
    assert!(mf::text(&o).contains("good"), "{}", mf::text(&o));
    let v = mf::json(&ok(&["store", "verify", "--store", s, "--json"]));
    assert_eq!(v["ok"], true, "{v}");

    // The manifest is the full expected list, and the report names every item left out.
    let manifest = mf::store_manifest(s, &dir);
    let all: Vec<&ExpectedEntry> = fx.entries.iter().collect();
    assert_no_diffs("manifest vs source", &mf::manifest_diffs(&manifest, &all));
    assert_no_diffs("left-out items", &mf::skipped_diffs(&manifest["skipped"], &fx));
    assert_no_diffs("absent places", &mf::absent_diffs(&manifest, &fx));
    assert_eq!(manifest["users"], serde_json::json!(["alice", "bob"]));

    let root = mf::target_root(&dir, "newroot");
    let outside = dir.join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("sentinel"), "untouched").unwrap();
    let outside_before = mf::tree_fingerprint(&outside);
    restore(s, &root, &[]);
    for user in &fx.users {
        let diffs = mf::restored_diffs(&root, user, &of_user(&fx, user), &ext4_mode, &BTreeSet::new());
        assert_no_diffs(&format!("restored home of {user}"), &diffs);
    }
    let system: Vec<&ExpectedEntry> = fx.system_entries().collect();
    assert_no_diffs("settings", &mf::system_diffs(&root, &system));
    assert_eq!(fs::read_to_string(root.path.join("etc/hostname")).unwrap().trim(), fx.settings.hostname.as_deref().unwrap());
    let (nm_name, nm) = &fx.settings.nm_connections[0];
    let nm_path = root.path.join("etc/NetworkManager/system-connections").join(nm_name);
    assert_eq!(&fs::read(&nm_path).unwrap(), nm);
    assert_eq!(fs::metadata(&nm_path).unwrap().mode() & 0o777, 0o600);
    // The sparse file kept its holes.
    let big = root.home("alice").join("vm/disk.img");
    let m = fs::metadata(&big).unwrap();
    assert_eq!(m.len(), mf::LINUX_SPARSE_SIZE);
    assert!(m.blocks() * 512 < 16 * MIB, "vm/disk.img takes {} bytes after restore", m.blocks() * 512);
    // Hard links share an inode; symlinks kept their targets, dangling or absolute included.
    let h = root.home("alice");
    assert_eq!(fs::metadata(h.join("report.txt")).unwrap().ino(), fs::metadata(h.join("Documents/report (hard link).txt")).unwrap().ino());
    assert_eq!(fs::read_link(h.join("hosts-link")).unwrap(), Path::new("/etc/hostname"));
    assert_eq!(fs::read_link(h.join("dangling")).unwrap(), Path::new("no/such/file"));
    // The target's /etc/hostname link target (the new OS's) was not followed or written
    // through: restore wrote the setting, and nothing outside the root changed.
    assert_eq!(mf::tree_fingerprint(&outside), outside_before);

    // The report, in the new OS and in the store: every entry restored, the left-out items.
    let report: serde_json::Value = serde_json::from_slice(&mf::read(&root.path.join(REPORT_JSON))).unwrap();
    assert_eq!(report["totals"]["failed"], 0, "{}", report["totals"]);
    assert_eq!(report["totals"]["entries"].as_u64(), Some(fx.entries.len() as u64));
    assert_no_diffs("restore report: left-out items", &mf::skipped_diffs(&report["capture_skipped"], &fx));
    let users: Vec<(&str, &str)> =
        report["users"].as_array().unwrap().iter().map(|u| (u["profile"].as_str().unwrap(), u["status"].as_str().unwrap())).collect();
    assert_eq!(users, vec![("alice", "mapped"), ("bob", "mapped")]);
    let text = fs::read_to_string(root.path.join(REPORT_TEXT)).unwrap();
    assert!(text.contains(&format!("{} items were left out", fx.skipped.len())), "{text}");
    let files: Vec<String> = mf::fat_list(s).into_iter().map(|(p, _)| p).collect();
    assert!(files.iter().any(|f| f == "restore/report.json"), "{files:?}");

    // A second run finds the job done and writes nothing.
    let before = mf::tree_fingerprint(&root.path);
    let o = mf::inplace(&["restore", "--store", s, "--root", root.path_str()]);
    assert!(o.status.success(), "{}", mf::text(&o));
    assert_eq!(mf::tree_fingerprint(&root.path), before, "a second restore changed the root:\n{}", mf::text(&o));
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn linux_estimate_agrees_with_the_expected_manifest() {
    let dir = mf::tmp("linux-estimate");
    let fx = mf::linux_disk(&dir);
    let before = image_fingerprint(&fx.disk);
    let part = fx.part_str();
    let e = mf::json(&ok(&["capture", "--disk", fx.disk_str(), "--partition", &part, "--estimate", "--json"]));
    assert_eq!(image_fingerprint(&fx.disk), before);
    let count = |k: EKind| fx.entries.iter().filter(|x| x.kind == k).count() as u64;
    let hard_links = (fx.file_count() - fx.distinct_file_count()) as u64;
    assert_eq!(e["files"].as_u64(), Some(fx.distinct_file_count() as u64), "{e}");
    assert_eq!(e["bytes"].as_u64(), Some(fx.distinct_file_bytes()), "{e}");
    assert_eq!(e["dirs"].as_u64(), Some(count(EKind::Dir)), "{e}");
    assert_eq!(e["links"].as_u64(), Some(count(EKind::Symlink) + hard_links), "{e}");
    assert_eq!(e["skipped"].as_u64(), Some(fx.skipped.len() as u64), "{e}");
    for u in e["users"].as_array().unwrap() {
        let name = u["name"].as_str().unwrap();
        let mine: Vec<_> = fx.user_entries(name).filter(|x| x.kind == EKind::File).collect();
        let groups: BTreeSet<u64> = mine.iter().filter_map(|x| x.link_group).collect();
        let files = mine.iter().filter(|x| x.link_group.is_none()).count() + groups.len();
        assert_eq!(u["files"].as_u64(), Some(files as u64), "{name}: {u}");
    }
    // The expected store size covers the data actually stored, and is not absurd.
    let store_bytes = e["store_bytes"].as_u64().unwrap();
    assert!(store_bytes >= 30 * MIB && store_bytes <= fx.distinct_file_bytes() + 128 * MIB, "{e}");
    let text = mf::text(&ok(&["capture", "--disk", fx.disk_str(), "--partition", &part, "--estimate"]));
    assert!(text.contains(&fx.distinct_file_bytes().to_string()) && text.contains("alice"), "{text}");
    fs::remove_dir_all(&dir).unwrap();
}

/// The store carved on the same disk (from unallocated space), found by its locator: the
/// capture writes into it and nowhere else.
#[test]
fn linux_capture_into_a_store_carved_on_the_same_disk() {
    let dir = mf::tmp("linux-carved");
    let fx = mf::linux_disk(&dir);
    let d = fx.disk_str();
    ok(&["carve", "--disk", d, "--store-size", "1G", "--yes"]);
    let range = |n: u32| {
        let info = run(Command::new("sgdisk").arg(format!("-i{n}")).arg(&fx.disk));
        let field = |k: &str| -> u64 {
            info.lines().find(|l| l.starts_with(k)).and_then(|l| l[k.len()..].split_whitespace().next()?.parse().ok()).unwrap()
        };
        (field("First sector:") * 512, (field("Last sector:") + 1) * 512)
    };
    let sha = |(a, b): (u64, u64)| {
        use std::io::{Read, Seek, SeekFrom};
        use sha2::{Digest, Sha256};
        let mut f = fs::File::open(&fx.disk).unwrap();
        f.seek(SeekFrom::Start(a)).unwrap();
        let mut h = Sha256::new();
        std::io::copy(&mut f.take(b - a), &mut h).unwrap();
        format!("{:x}", h.finalize())
    };
    let (esp, root) = (sha(range(1)), sha(range(2)));
    assert_eq!(range(2), (fx.part_start, fx.part_start + fx.part_size));
    let summary = capture(&fx, d, &["--users", "bob"]);
    assert_eq!((sha(range(1)), sha(range(2))), (esp, root), "the capture wrote outside the store");
    assert_eq!(summary["files"].as_u64(), Some(fx.user_entries("bob").filter(|e| e.kind == EKind::File).count() as u64 + 2));
    ok(&["store", "verify", "--store", d]);
    let (store_start, _) = range(3);
    let manifest = mf::store_manifest(&format!("{d}@@{store_start}"), &dir);
    let want: Vec<&ExpectedEntry> = fx.entries.iter().filter(|e| e.user.as_deref() != Some("alice")).collect();
    assert_no_diffs("manifest (bob only)", &mf::manifest_diffs(&manifest, &want));
    let root = mf::target_root(&dir, "newroot");
    restore(d, &root, &[]);
    assert_no_diffs("bob", &mf::restored_diffs(&root, "bob", &of_user(&fx, "bob"), &ext4_mode, &BTreeSet::new()));
    assert!(mf::observe(&root.home("alice")).is_empty(), "alice was not captured");
    fs::remove_dir_all(&dir).unwrap();
}

/// A power cut during the capture (twice, at different points, with 8 MiB segments), then a
/// run to completion, gives the same store as one uninterrupted capture: same entries with the
/// same CRC-32s, same segments with the same SHA-256s.
#[test]
fn linux_interrupted_capture_resumes_to_the_same_store() {
    let dir = mf::tmp("linux-resume");
    let fx = mf::linux_disk(&dir);
    // The sparse 5 GiB file is left out here (a rules file given with --rules), so the
    // segments are all real data.
    let rules = dir.join("rules.toml");
    fs::write(
        &rules,
        "family = \"linux\"\ninclude = [\"**\"]\nexclude = [\".cache/**\", \"vm/**\"]\n\
         settings = [\"etc/hostname\", \"etc/NetworkManager/system-connections/*\"]\n[profiles]\nmin_uid = 1000\n",
    )
    .unwrap();
    let r = rules.to_str().unwrap();
    let shown = mf::text(&ok(&["rules", "show", "--rules", r]));
    assert!(shown.contains("vm/**") && shown.contains("family = \"linux\""), "{shown}");
    let seg = (8 * MIB).to_string();
    let part = fx.part_str();
    let run_capture = |store: &str, abort: Option<u64>| {
        let mut args = vec!["capture", "--disk", fx.disk_str(), "--partition", &part, "--rules", r, "--store", store, "--segment-size", &seg, "--json"];
        let a = abort.map(|a| a.to_string());
        if let Some(a) = &a {
            args.extend_from_slice(&["--abort-after", a]);
        }
        mf::inplace(&args)
    };

    let fresh = mf::store_volume(&dir, "fresh.fat", GIB);
    let fresh = fresh.to_str().unwrap();
    let o = run_capture(fresh, None);
    assert!(o.status.success(), "{}", mf::text(&o));
    let want = mf::store_manifest(fresh, &dir);
    let segments = want["segments"].as_array().unwrap().len();
    assert!(segments >= 3, "only {segments} segments: the test needs several");

    let resumed = mf::store_volume(&dir, "resumed.fat", GIB);
    let resumed = resumed.to_str().unwrap();
    for abort in [5 * MIB + 12345, 20 * MIB + 777] {
        let o = run_capture(resumed, Some(abort));
        assert!(!o.status.success(), "the capture did not stop at --abort-after {abort}:\n{}", mf::text(&o));
        let names: Vec<String> = mf::fat_list(resumed).into_iter().map(|(p, _)| p).collect();
        assert!(!names.iter().any(|n| n.ends_with("manifest.sha256")), "an interrupted capture left a manifest: {names:?}");
        let v = mf::inplace(&["store", "verify", "--store", resumed]);
        assert_eq!(v.status.code(), Some(1), "verify of an unfinished capture: {}", mf::text(&v));
        assert!(mf::text(&v).contains("resumed.fat"), "{}", mf::text(&v));
        let root = mf::target_root(&dir, "refused");
        let before = mf::tree_fingerprint(&root.path);
        let o = mf::inplace(&["restore", "--store", resumed, "--root", root.path_str()]);
        assert!(!o.status.success(), "restore from an unfinished capture: {}", mf::text(&o));
        assert_eq!(mf::tree_fingerprint(&root.path), before);
    }
    let o = run_capture(resumed, None);
    assert!(o.status.success(), "{}", mf::text(&o));
    let summary = mf::json(&o);
    assert!(summary["resumed_segments"].as_u64().unwrap() >= 1, "nothing was resumed: {summary}");
    ok(&["store", "verify", "--store", resumed]);
    let got = mf::store_manifest(resumed, &dir);
    let pick = |m: &serde_json::Value| -> Vec<String> {
        m["entries"].as_array().unwrap().iter().map(|e| format!("{} {} {} {} {}", e["id"], e["source"], e["size"], e["crc32"], e["data"])).collect()
    };
    assert_eq!(pick(&got), pick(&want), "entries differ from an uninterrupted capture");
    assert_eq!(got["segments"], want["segments"], "segments differ from an uninterrupted capture");
    assert_eq!(got["plan_sha256"], want["plan_sha256"]);
    let expected: Vec<&ExpectedEntry> = fx.entries.iter().filter(|e| !e.path.starts_with("vm")).collect();
    assert_no_diffs("resumed manifest vs source", &mf::manifest_diffs(&got, &expected));
    fs::remove_dir_all(&dir).unwrap();
}

/// A preset's `[migrate]` table adds /root and the ssh host keys (and drops the sparse file
/// for speed); `rules show` prints the effective rules; both arrive in the new root.
#[test]
fn linux_preset_adds_root_and_ssh_host_keys() {
    let dir = mf::tmp("linux-preset");
    let fx = mf::linux_disk(&dir);
    let preset = dir.join("preset.toml");
    fs::write(&preset, "name = \"lab\"\n[migrate]\ninclude_root = true\nssh_host_keys = true\n[migrate.all]\nexclude = [\"vm/**\"]\n").unwrap();
    let p = preset.to_str().unwrap();
    let shown = mf::text(&ok(&["rules", "show", "--rules", "linux", "--preset", p]));
    assert!(shown.contains("include_root = true") && shown.contains("ssh_host_keys = true") && shown.contains("vm/**"), "{shown}");
    let store = mf::store_volume(&dir, "store.fat", GIB);
    let s = store.to_str().unwrap();
    capture(&fx, s, &["--preset", p]);
    let manifest = mf::store_manifest(s, &dir);
    let want: Vec<&ExpectedEntry> = fx.entries.iter().chain(&fx.optional).filter(|e| !e.path.starts_with("vm")).collect();
    assert_no_diffs("manifest with the preset", &mf::manifest_diffs(&manifest, &want));
    let root = mf::target_root(&dir, "newroot");
    restore(s, &root, &[]);
    let root_entries: Vec<&ExpectedEntry> = fx.optional.iter().filter(|e| e.user.as_deref() == Some("root")).collect();
    assert!(!root_entries.is_empty());
    assert_no_diffs("/root", &mf::restored_diffs(&root, "root", &root_entries, &ext4_mode, &BTreeSet::new()));
    let keys: Vec<&ExpectedEntry> = fx.optional.iter().filter(|e| e.user.is_none()).collect();
    assert_eq!(keys.len(), 2);
    assert_no_diffs("ssh host keys", &mf::system_diffs(&root, &keys));
    fs::remove_dir_all(&dir).unwrap();
}

/// The new OS already has files where the store's go: by default its own are kept and ours
/// are written beside them (`<name>.restored`); `overwrite` replaces them; `skip` keeps them
/// and writes nothing for them.
#[test]
fn linux_conflicts_keep_new_by_default_overwrite_and_skip() {
    let dir = mf::tmp("linux-conflict");
    let fx = mf::linux_disk(&dir);
    let store = mf::store_volume(&dir, "store.fat", GIB);
    let s = store.to_str().unwrap();
    capture(&fx, s, &["--users", "bob"]);
    let ours = fx.entry(Some("bob"), ".zshrc");
    let ours_doc = fx.entry(Some("bob"), "Documents/budget.ods");
    let theirs: &[u8] = b"# the new OS's own zshrc\n";
    let setup = |name: &str| {
        let root = mf::target_root(&dir, name);
        let h = root.home("bob");
        fs::write(h.join(".zshrc"), theirs).unwrap();
        fs::create_dir_all(h.join("Documents")).unwrap();
        fs::write(h.join("Documents/budget.ods"), theirs).unwrap();
        root
    };
    let pre: BTreeSet<String> = ["Documents", ".zshrc", "Documents/budget.ods"].map(String::from).into();

    // Default: keep-new.
    let root = setup("keep-new");
    restore(s, &root, &[]);
    let h = root.home("bob");
    assert_eq!(fs::read(h.join(".zshrc")).unwrap(), theirs);
    assert_eq!(mf::sha256_bytes(&fs::read(h.join(".zshrc.restored")).unwrap()), *ours.sha256.as_ref().unwrap());
    assert_eq!(fs::read(h.join("Documents/budget.ods")).unwrap(), theirs);
    assert_eq!(mf::sha256_bytes(&fs::read(h.join("Documents/budget.ods.restored")).unwrap()), *ours_doc.sha256.as_ref().unwrap());
    let report: serde_json::Value = serde_json::from_slice(&mf::read(&root.path.join(REPORT_JSON))).unwrap();
    let beside: Vec<&str> = report["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["outcome"] == "restored-beside")
        .map(|e| e["source"].as_str().unwrap())
        .collect();
    assert_eq!(beside, vec!["/home/bob/.zshrc", "/home/bob/Documents/budget.ods"], "{}", report["entries"]);
    // Everything else of bob's is there as expected (the renamed copies aside).
    let rest: Vec<&ExpectedEntry> = fx.user_entries("bob").filter(|e| e.path != ".zshrc" && e.path != "Documents/budget.ods").collect();
    let mut pre_and_beside = pre.clone();
    pre_and_beside.extend([".zshrc.restored".to_string(), "Documents/budget.ods.restored".to_string()]);
    let diffs: Vec<String> = mf::restored_diffs(&root, "bob", &rest, &ext4_mode, &pre_and_beside)
        .into_iter()
        .filter(|d| !d.starts_with("/home/bob/Documents:"))
        .collect();
    assert_no_diffs("bob beside the conflicts", &diffs);

    // overwrite: ours replace theirs.
    let root = setup("overwrite");
    // (--again: the store is marked restored by the run before.)
    restore(s, &root, &["--conflict", "overwrite", "--again"]);
    let h = root.home("bob");
    assert_eq!(mf::sha256_bytes(&fs::read(h.join(".zshrc")).unwrap()), *ours.sha256.as_ref().unwrap());
    assert!(!h.join(".zshrc.restored").exists());
    assert_eq!(mf::sha256_bytes(&fs::read(h.join("Documents/budget.ods")).unwrap()), *ours_doc.sha256.as_ref().unwrap());

    // skip: theirs stay, ours are not written.
    let root = setup("skip");
    restore(s, &root, &["--conflict", "skip", "--again"]);
    let h = root.home("bob");
    assert_eq!(fs::read(h.join(".zshrc")).unwrap(), theirs);
    assert!(!h.join(".zshrc.restored").exists());
    assert_eq!(fs::read(h.join("Documents/budget.ods")).unwrap(), theirs);
    assert!(h.join("Documents/archive.tar").exists(), "entries without a conflict are restored");
    fs::remove_dir_all(&dir).unwrap();
}

/// Accounts the new OS lacks: without `--create-users` their files are not restored (and the
/// report says so), the others are; with it, the account is made (useradd on the root) and
/// owns the files.
#[test]
fn linux_missing_accounts_and_create_users() {
    let dir = mf::tmp("linux-users");
    let fx = mf::linux_disk(&dir);
    let store = mf::store_volume(&dir, "store.fat", GIB);
    let s = store.to_str().unwrap();
    capture(&fx, s, &["--users", "bob"]);
    let accounts: Vec<(&str, u32, &str)> = mf::TARGET_ACCOUNTS.iter().copied().filter(|a| a.0 != "bob").collect();

    let root = mf::target_root_with(&dir, "no-bob", &accounts);
    let o = mf::inplace(&["restore", "--store", s, "--root", root.path_str()]);
    assert_eq!(o.status.code(), Some(4), "a user without an account: exit 4\n{}", mf::text(&o));
    let report: serde_json::Value = serde_json::from_slice(&mf::read(&root.path.join(REPORT_JSON)))
        .unwrap_or_else(|e| panic!("no report ({e}):\n{}", mf::text(&o)));
    let bob = report["users"].as_array().unwrap().iter().find(|u| u["profile"] == "bob").cloned().unwrap();
    assert_eq!(bob["status"], "missing", "{bob}");
    assert!(bob["reason"].as_str().unwrap().contains("no account named \"bob\""), "{bob}");
    // The report carries what to do as data; the CLI says it with its flag.
    assert_eq!(bob["hint"]["do"], "create-users", "{bob}");
    assert!(mf::text(&o).contains("--create-users"), "the CLI does not say how:\n{}", mf::text(&o));
    assert!(!root.path.join("home/bob").exists());
    // The settings were still applied.
    assert_eq!(fs::read_to_string(root.path.join("etc/hostname")).unwrap().trim(), "oldbox");

    let root = mf::target_root_with(&dir, "create", &accounts);
    // The partial restore above left the store unmarked: the next run, allowed to create the
    // account, restores bob, and then the store is marked. The root is given relative to the
    // working directory: useradd gets it absolute.
    let o = Command::new(inplace_tests::inplace_bin())
        .current_dir(&dir)
        .args(["restore", "--store", s, "--root", "create", "--create-users"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", mf::text(&o));
    let o = mf::inplace(&["restore", "--store", s, "--root", root.path_str(), "--create-users"]);
    assert!(o.status.success() && mf::text(&o).contains("--again"), "marked once complete:\n{}", mf::text(&o));
    let passwd = fs::read_to_string(root.path.join("etc/passwd")).unwrap();
    let line = passwd.lines().find(|l| l.starts_with("bob:")).unwrap_or_else(|| panic!("no bob in\n{passwd}"));
    let f: Vec<&str> = line.split(':').collect();
    let created = mf::TargetRoot {
        path: root.path.clone(),
        accounts: vec![mf::Account { name: "bob".into(), uid: f[2].parse().unwrap(), gid: f[3].parse().unwrap(), home: f[5].into() }],
        groups: root.groups.clone(),
    };
    let mut accounts = root.accounts.clone();
    accounts.extend(created.accounts.clone());
    let created = mf::TargetRoot { accounts, ..created };
    // useradd -m copied a skeleton into the new home before the restore wrote into it (from
    // the host's /etc/skel: shadow's useradd --prefix does not prefix the skeleton).
    let skel: BTreeSet<String> = [Path::new("/etc/skel"), &root.path.join("etc/skel")]
        .iter()
        .flat_map(|d| fs::read_dir(d).into_iter().flatten())
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_no_diffs("bob, created", &mf::restored_diffs(&created, "bob", &of_user(&fx, "bob"), &ext4_mode, &skel));
    fs::remove_dir_all(&dir).unwrap();
}

/// Modification times before 1970, at the epoch, past 2038 and in 2100 come back exactly, and
/// a name like `c:drive-like.txt` (ordinary on Linux) is captured and restored.
#[test]
fn linux_edge_cases_round_trip() {
    let dir = mf::tmp("linux-edge");
    let fx = mf::linux_edge_cases_disk(&dir);
    let store = mf::store_volume(&dir, "store.fat", GIB);
    let s = store.to_str().unwrap();
    capture(&fx, s, &[]);
    let manifest = mf::store_manifest(s, &dir);
    let all: Vec<&ExpectedEntry> = fx.entries.iter().collect();
    assert_no_diffs("manifest", &mf::manifest_diffs(&manifest, &all));
    assert_no_diffs("left-out items", &mf::skipped_diffs(&manifest["skipped"], &fx));
    let root = mf::target_root_with(&dir, "newroot", &[("root", 0, "/root"), ("dave", 3000, "/home/dave")]);
    restore(s, &root, &[]);
    assert_no_diffs("dave", &mf::restored_diffs(&root, "dave", &all, &ext4_mode, &BTreeSet::new()));
    fs::remove_dir_all(&dir).unwrap();
}
