//! The restore of one user against a stand-in profile (`RootFolders`): on Linux, and under Wine.

mod common;

use common::{assert_file, mtime_ns, t, Fixture};
use inplace_agent::job::Conflict;
use inplace_agent::report::{Outcome, Report, Status};
use inplace_agent::transfer::Strategy;

fn outcome(r: &Report, path: &str) -> Outcome {
    r.entries.iter().find(|e| e.path == path).unwrap_or_else(|| panic!("{path} not in the report")).outcome
}

fn entry<'a>(r: &'a Report, path: &str) -> &'a inplace_agent::report::EntryReport {
    r.entries.iter().find(|e| e.path == path).unwrap()
}

fn carol() -> Fixture {
    let mut f = Fixture::new("Carol");
    f.dir("Documents", t(1))
        .dir("Documents/Taxes", t(2))
        .file("Documents/Taxes/2020.pdf", b"tax return 2020", t(3))
        .file("documents/notes.txt", b"lower-case first component", t(4))
        .file("Desktop/todo.txt", b"buy milk", t(5))
        .file("Pictures/2019/beach.jpg", &[0xff, 0xd8, 0xff, 0xe0, 1, 2, 3], t(6))
        .file("Downloads/setup.exe", b"MZ...", t(7))
        .file("Music/song.mp3", b"ID3", t(8))
        .file("Videos/clip.mp4", b"ftyp", t(9))
        .file("Favorites/Links/site.url", b"[InternetShortcut]", t(10))
        .dir("AppData", t(11))
        .dir("AppData/Roaming/App", t(12))
        .file("AppData/Roaming/App/settings.ini", b"[app]\nx=1\n", t(13));
    f
}

#[test]
fn moves_into_known_folders_keeps_times_and_removes_the_staged_copy() {
    let f = carol();
    let r = f.run();
    assert_eq!(r.status, Status::Complete, "{r:#?}");
    assert_file(&f.at("Documents/Taxes/2020.pdf"), b"tax return 2020", t(3));
    assert_file(&f.at("Documents/notes.txt"), b"lower-case first component", t(4));
    assert_file(&f.at("Desktop/todo.txt"), b"buy milk", t(5));
    assert_file(&f.at("Pictures/2019/beach.jpg"), &[0xff, 0xd8, 0xff, 0xe0, 1, 2, 3], t(6));
    assert_file(&f.at("Downloads/setup.exe"), b"MZ...", t(7));
    assert_file(&f.at("Music/song.mp3"), b"ID3", t(8));
    assert_file(&f.at("Videos/clip.mp4"), b"ftyp", t(9));
    assert_file(&f.at("Favorites/Links/site.url"), b"[InternetShortcut]", t(10));
    assert_file(&f.at("AppData/Roaming/App/settings.ini"), b"[app]\nx=1\n", t(13));
    // Folder times are set after their contents; a Known Folder itself keeps the new OS's time.
    assert_eq!(mtime_ns(&f.at("Documents/Taxes")), t(2));
    assert_eq!(mtime_ns(&f.at("AppData/Roaming/App")), t(12));
    assert_eq!(mtime_ns(&f.at("AppData")), t(11));
    assert_ne!(mtime_ns(&f.at("Documents")), t(1));
    assert_eq!(r.totals.entries, 13);
    assert_eq!(r.totals.restored, 13);
    assert_eq!(r.totals.failed + r.totals.warnings + r.totals.restored_beside, 0);
    assert_eq!(r.totals.bytes, 15 + 26 + 8 + 7 + 5 + 3 + 4 + 18 + 10);
    assert_eq!(entry(&r, "Desktop/todo.txt").destination.as_deref(), Some(f.at("Desktop/todo.txt").display().to_string().as_str()));
    assert!(r.staged_removed);
    assert!(!f.staged.join("Carol").exists(), "the staged folder is removed");
    assert!(!f.manifest_path().exists(), "the manifest is removed");
}

#[test]
fn copy_then_delete_across_volumes_keeps_bytes_and_times() {
    let f = carol();
    let r = f.run_with(Strategy::Copy);
    assert_eq!(r.status, Status::Complete, "{r:#?}");
    assert_file(&f.at("Documents/Taxes/2020.pdf"), b"tax return 2020", t(3));
    assert_file(&f.at("AppData/Roaming/App/settings.ini"), b"[app]\nx=1\n", t(13));
    assert!(!f.staged.join("Carol").exists());
    assert!(!f.profile_tree().iter().any(|p| p.contains("inplace-partial")), "{:?}", f.profile_tree());
}

#[test]
fn keep_new_writes_ours_beside_theirs() {
    let mut f = Fixture::new("Carol");
    f.file("Documents/report.docx", b"ours", t(1)).file("Desktop/Makefile", b"ours too", t(2));
    let theirs = f.existing("Documents/report.docx", b"theirs");
    f.existing("Documents/report (restored).docx", b"an earlier different one");
    f.existing("Desktop/Makefile", b"theirs too");
    let r = f.run();
    assert_eq!(r.status, Status::Complete, "{r:#?}");
    assert_eq!(std::fs::read(&theirs).unwrap(), b"theirs");
    assert_eq!(std::fs::read(f.at("Documents/report (restored).docx")).unwrap(), b"an earlier different one");
    assert_file(&f.at("Documents/report (restored 2).docx"), b"ours", t(1));
    assert_file(&f.at("Desktop/Makefile (restored)"), b"ours too", t(2));
    assert_eq!(outcome(&r, "Documents/report.docx"), Outcome::RestoredBeside);
    assert!(entry(&r, "Documents/report.docx").destination.as_ref().unwrap().ends_with("report (restored 2).docx"));
    assert_eq!(r.totals.restored_beside, 2);
    assert!(!f.staged.join("Carol").exists());
}

#[test]
fn overwrite_replaces_theirs() {
    let mut f = Fixture::new("Carol");
    f.conflict = Conflict::Overwrite;
    f.file("Documents/report.docx", b"ours", t(1));
    f.existing("Documents/report.docx", b"theirs");
    let r = f.run();
    assert_eq!(r.status, Status::Complete);
    assert_eq!(outcome(&r, "Documents/report.docx"), Outcome::Restored);
    assert_file(&f.at("Documents/report.docx"), b"ours", t(1));
    assert_eq!(f.profile_tree(), ["Documents", "Documents/report.docx"]);
}

#[test]
fn skip_leaves_ours_staged_and_exits_zero() {
    let mut f = Fixture::new("Carol");
    f.conflict = Conflict::Skip;
    f.file("Documents/report.docx", b"ours", t(1)).file("Documents/other.txt", b"moves", t(2));
    f.existing("Documents/report.docx", b"theirs");
    let (code, out) = f.run_bin(&[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1 skipped (conflict)"), "{out}");
    let rep = f.report_file();
    assert_eq!(rep["status"], "complete-with-skips");
    assert_eq!(rep["totals"]["skipped_conflict"], 1);
    assert_eq!(std::fs::read(f.at("Documents/report.docx")).unwrap(), b"theirs");
    assert_file(&f.at("Documents/other.txt"), b"moves", t(2));
    assert_eq!(std::fs::read(f.staged_path("Documents/report.docx")).unwrap(), b"ours", "the skipped file stays staged");
    assert!(f.manifest_path().exists());
    assert_eq!(rep["staged_removed"], false);
}

#[test]
fn identical_destination_is_restored_with_nothing_written() {
    let mut f = Fixture::new("Carol");
    f.file("Documents/same.txt", b"same bytes", t(1));
    let theirs = f.existing("Documents/same.txt", b"same bytes");
    let before = mtime_ns(&theirs);
    let r = f.run();
    assert_eq!(r.status, Status::Complete);
    assert_eq!(outcome(&r, "Documents/same.txt"), Outcome::Restored);
    assert_eq!(mtime_ns(&theirs), before, "the identical file is not rewritten");
    assert_eq!(f.profile_tree(), ["Documents", "Documents/same.txt"]);
    assert!(!f.staged.join("Carol").exists());
}

#[test]
fn registry_hives_go_to_migrated_settings() {
    let mut f = Fixture::new("Carol");
    f.file("NTUSER.DAT", b"regf hive", t(1))
        .file("ntuser.dat.LOG1", b"log", t(2))
        .file("ntuser.ini", b"ini", t(3))
        .file("AppData/Local/Microsoft/Windows/UsrClass.dat", b"regf classes", t(4))
        .file("AppData/Local/Microsoft/Windows/other.dat", b"not a hive", t(5));
    let r = f.run();
    assert_eq!(r.status, Status::Complete, "{r:#?}");
    assert_file(&f.at("Documents/Migrated settings/NTUSER.DAT"), b"regf hive", t(1));
    assert_file(&f.at("Documents/Migrated settings/ntuser.dat.LOG1"), b"log", t(2));
    assert_file(&f.at("Documents/Migrated settings/ntuser.ini"), b"ini", t(3));
    assert_file(&f.at("Documents/Migrated settings/AppData/Local/Microsoft/Windows/UsrClass.dat"), b"regf classes", t(4));
    assert_file(&f.at("AppData/Local/Microsoft/Windows/other.dat"), b"not a hive", t(5));
    assert!(!f.at("NTUSER.DAT").exists());
    assert_eq!(outcome(&r, "NTUSER.DAT"), Outcome::MigratedSetting);
    assert_eq!(r.totals.migrated_setting, 4);
    assert_eq!(r.totals.restored, 1);
}

#[test]
fn a_file_in_the_way_fails_that_entry_keeps_its_staged_copy_and_a_rerun_finishes() {
    let mut f = carol();
    f.file("Documents/Projects/plan.txt", b"the plan", t(20));
    // The new OS has a file where our folder must go.
    f.existing("Documents/Projects", b"a file, not a folder");
    let (code, out) = f.run_bin(&[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("INCOMPLETE") && out.contains("1 failed"), "{out}");
    let rep = f.report_file();
    assert_eq!(rep["status"], "incomplete");
    let failed: Vec<_> = rep["entries"].as_array().unwrap().iter().filter(|e| e["outcome"] == "failed").collect();
    assert_eq!(failed.len(), 1, "{rep:#}");
    assert_eq!(failed[0]["path"], "Documents/Projects/plan.txt");
    assert!(failed[0]["reason"].as_str().unwrap().contains("Projects"), "{rep:#}");
    // What moved is gone from the staged folder; what did not stays, with the manifest.
    assert_eq!(std::fs::read(f.staged_path("Documents/Projects/plan.txt")).unwrap(), b"the plan");
    assert!(!f.staged_path("Documents/Taxes").exists(), "emptied folders are pruned");
    assert!(f.manifest_path().exists());
    assert_file(&f.at("Documents/Taxes/2020.pdf"), b"tax return 2020", t(3));

    // The technician moves the blocking file away; the same command finishes the job.
    std::fs::remove_file(f.at("Documents/Projects")).unwrap();
    let (code, out) = f.exec_bin(&[]);
    assert_eq!(code, 0, "{out}");
    let rep = f.report_file();
    assert_eq!(rep["status"], "complete");
    assert_eq!(rep["totals"]["restored"], 14);
    assert_file(&f.at("Documents/Projects/plan.txt"), b"the plan", t(20));
    assert_file(&f.at("Documents/Taxes/2020.pdf"), b"tax return 2020", t(3));
    assert!(!f.staged.join("Carol").exists() && !f.manifest_path().exists());

    // And once more: nothing staged any more, nothing to do.
    let (code, out) = f.exec_bin(&[]);
    assert_eq!(code, 0);
    assert!(out.contains("nothing staged"), "{out}");
}

#[test]
fn rerun_after_keep_new_finds_ours_beside() {
    let mut f = Fixture::new("Carol");
    f.file("Documents/a.txt", b"ours", t(1)).file("Documents/b.txt", b"bbb", t(2));
    f.existing("Documents/a.txt", b"theirs");
    f.existing("Documents/b", b"x");
    let r = f.run();
    assert_eq!(r.status, Status::Complete);
    // As if the first run stopped before removing the staged folder: the manifest is back,
    // the files are already at their destinations.
    f.write();
    std::fs::create_dir_all(f.staged.join("Carol")).unwrap();
    let r = f.run();
    assert_eq!(r.status, Status::Complete, "{r:#?}");
    assert_eq!(outcome(&r, "Documents/a.txt"), Outcome::RestoredBeside);
    assert_eq!(outcome(&r, "Documents/b.txt"), Outcome::Restored);
    assert_eq!(f.profile_tree(), ["Documents", "Documents/a (restored).txt", "Documents/a.txt", "Documents/b", "Documents/b.txt"]);
}

#[test]
fn a_staged_copy_that_does_not_match_the_manifest_is_kept() {
    let mut f = Fixture::new("Carol");
    f.file("Documents/good.txt", b"good", t(1)).file("Documents/bad.txt", b"original", t(2));
    std::fs::write(f.staged_path("Documents/bad.txt"), b"damaged!").unwrap();
    let r = f.run();
    assert_eq!(r.status, Status::Incomplete);
    assert_eq!(r.status.exit_code(), 1);
    assert_eq!(outcome(&r, "Documents/bad.txt"), Outcome::Failed);
    assert!(entry(&r, "Documents/bad.txt").reason.as_ref().unwrap().contains("does not match the manifest"));
    assert!(!f.at("Documents/bad.txt").exists());
    assert_eq!(std::fs::read(f.staged_path("Documents/bad.txt")).unwrap(), b"damaged!");
    assert_file(&f.at("Documents/good.txt"), b"good", t(1));
    assert!(f.manifest_path().exists());
}

#[test]
fn hostile_manifests_are_refused_with_nothing_written() {
    let hostile = [
        "/etc/passwd",
        "C:\\Windows\\System32\\evil.dll",
        "c:/Windows/evil.dll",
        "\\\\srv\\share\\evil",
        "Documents/../../../evil",
        "Documents/./a.txt",
        "Documents//a.txt",
        "Documents/a\\..\\..\\evil",
        "Documents/a.txt:hidden",
        "Documents/CON",
        "Documents/nul.txt",
        "Documents/COM1.log",
        "Documents/trailing.",
        "Documents/trailing ",
        "Documents/a.txt",
    ];
    for bad in hostile {
        let mut f = Fixture::new("Carol");
        f.file("Documents/a.txt", b"fine", t(1)).file("Desktop/b.txt", b"fine too", t(2));
        f.raw(bad, b"payload");
        let (code, out) = f.run_bin(&[]);
        assert_eq!(code, 2, "{bad}: {out}");
        let rep = f.report_file();
        assert_eq!(rep["status"], "refused", "{bad}");
        let msg = rep["message"].as_str().unwrap();
        assert!(msg.contains(&format!("{bad:?}")), "{bad}: the message names the path: {msg}");
        assert!(msg.contains("nothing was moved") && msg.contains("staged copy is kept"), "{msg}");
        assert!(out.contains("refused"), "{out}");
        assert!(f.profile_tree().is_empty(), "{bad}: wrote {:?}", f.profile_tree());
        assert_eq!(std::fs::read(f.staged_path("Documents/a.txt")).unwrap(), b"fine");
        assert!(f.manifest_path().exists());
    }
}

#[test]
fn a_manifest_for_another_user_or_without_digests_is_refused() {
    let mut f = Fixture::new("Carol");
    f.file("Documents/a.txt", b"fine", t(1));
    f.entries[0].sha256 = None;
    assert_eq!(f.run().status, Status::Refused);
    let mut f = Fixture::new("Carol");
    f.file("Documents/a.txt", b"fine", t(1));
    f.write();
    let m = std::fs::read_to_string(f.manifest_path()).unwrap().replace("\"Carol\"", "\"Mallory\"");
    std::fs::write(f.manifest_path(), m).unwrap();
    let folders = inplace_agent::folders::RootFolders { root: f.profile.clone() };
    let r = f.run_in(&folders, Strategy::RenameOrCopy);
    assert_eq!(r.status, Status::Refused);
    assert!(r.message.unwrap().contains("Mallory"));
    assert!(f.profile_tree().is_empty());
}

#[test]
fn a_user_with_nothing_staged_exits_zero() {
    let f = Fixture::new("Carol");
    std::fs::write(f.base.join("job.json"), serde_json::to_vec(&f.job()).unwrap()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_inplace-agent"))
        .args(["restore", "--user", "Dave", "--profile-root"])
        .arg(&f.profile)
        .arg("--staged")
        .arg(&f.staged)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Dave: nothing staged for this user; nothing to do"));
}

#[test]
fn a_missing_job_file_refuses() {
    let mut f = Fixture::new("Carol");
    f.file("Documents/a.txt", b"fine", t(1));
    f.write();
    std::fs::remove_file(f.base.join("job.json")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_inplace-agent"))
        .args(["restore", "--user", "Carol", "--profile-root"])
        .arg(&f.profile)
        .arg("--staged")
        .arg(&f.staged)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("cannot read the job file"));
    assert!(f.profile_tree().is_empty());
}

#[test]
fn report_lists_users_still_staged() {
    let mut f = Fixture::new("Carol");
    f.file("Documents/a.txt", b"12345", t(1)).file("Documents/b.txt", b"678", t(2));
    f.write();
    // Dave logged on and failed; Carol never logged on; Erin finished (no manifest left).
    std::fs::write(f.staged.join("Dave.json"), br#"{"version":1,"user":"Dave","entries":[{"path":"x","kind":"file","size":1,"sha256":"2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881","mtime_ns":0}]}"#).unwrap();
    std::fs::write(f.base.join("restore-Dave.json"), {
        let mut r = Report::new("Dave", &f.staged.join("Dave"), Status::Incomplete);
        r.job_id = Some("job-1".into());
        serde_json::to_vec(&r).unwrap()
    })
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_inplace-agent")).arg("report").arg("--staged").arg(&f.staged).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let users = v["users"].as_array().unwrap();
    assert_eq!(users.len(), 2, "{v:#}");
    assert_eq!(users[0]["user"], "Carol");
    assert_eq!(users[0]["state"], "never-logged-on");
    assert_eq!(users[0]["files"], 2);
    assert_eq!(users[0]["bytes"], 8);
    assert_eq!(users[1]["user"], "Dave");
    assert_eq!(users[1]["state"], "incomplete");
}

#[test]
fn a_user_name_that_is_not_a_plain_name_is_refused() {
    let f = carol();
    f.write();
    let folders = inplace_agent::folders::RootFolders { root: f.profile.clone() };
    for user in ["..", "../Carol", "Carol\\..\\x", "C:Carol", "CON"] {
        let req = inplace_agent::restore::Request { staged: &f.staged, user, job: Ok(f.job()), folders: &folders, strategy: Strategy::RenameOrCopy };
        let r = inplace_agent::restore::restore(&req);
        assert_eq!(r.status, Status::Refused, "{user}");
        assert!(r.message.unwrap().contains(&format!("{user:?}")), "{user}");
    }
    assert!(f.profile_tree().is_empty());
    assert!(f.staged_path("Documents/Taxes/2020.pdf").exists());
}
