//! Windows only (run under Wine by scripts/test-agent-wine): the real Known Folders of the
//! current user from `SHGetKnownFolderPath`, long paths, creation times and ACL resets.
#![cfg(windows)]

mod common;

use common::{assert_file, t, Fixture};
use inplace_agent::mapping::KnownFolder;
use inplace_agent::platform::user_folders;
use inplace_agent::report::Status;
use inplace_agent::transfer::Strategy;
use std::path::{Path, PathBuf};

/// A name no other test (or earlier run) uses.
fn unique(what: &str) -> String {
    let ns = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("inplace-agent-test-{what}-{}-{ns}", std::process::id())
}

fn shell(folder: KnownFolder) -> PathBuf {
    user_folders().unwrap().resolve(folder).unwrap()
}

/// Removes what a test put into the real profile, even when it fails.
struct Cleanup(Vec<PathBuf>);
impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_dir_all(p).or_else(|_| std::fs::remove_file(p));
        }
    }
}

#[test]
fn shell_folders_are_the_users_own() {
    let profile = shell(KnownFolder::Profile);
    let env = std::env::var("USERPROFILE").unwrap();
    assert!(profile.to_string_lossy().eq_ignore_ascii_case(&env), "{} vs {env}", profile.display());
    for (folder, _) in KnownFolder::MAPPED {
        let p = shell(folder);
        assert!(p.is_absolute() && p.is_dir(), "{folder:?}: {}", p.display());
    }
    assert_ne!(shell(KnownFolder::Documents), shell(KnownFolder::Desktop));
}

#[test]
fn moves_into_the_real_known_folders() {
    let tag = unique("lib");
    let mut f = Fixture::new("Carol");
    f.file(&format!("Documents/{tag}/report.txt"), b"in Documents", t(1))
        .file(&format!("desktop/{tag}.txt"), b"on the Desktop", t(2))
        .file(&format!("Pictures/{tag}/beach.jpg"), b"\xff\xd8 a picture", t(3))
        .file(&format!("Downloads/{tag}.bin"), b"downloaded", t(4))
        .file(&format!("Music/{tag}.mp3"), b"ID3", t(5))
        .file(&format!("Videos/{tag}.mp4"), b"ftyp", t(6))
        .file(&format!("Favorites/{tag}.url"), b"[InternetShortcut]", t(7))
        .file(&format!("{tag}/profile.txt"), b"at the profile root", t(8));
    let _cleanup = Cleanup(vec![
        shell(KnownFolder::Documents).join(&tag),
        shell(KnownFolder::Desktop).join(format!("{tag}.txt")),
        shell(KnownFolder::Pictures).join(&tag),
        shell(KnownFolder::Downloads).join(format!("{tag}.bin")),
        shell(KnownFolder::Music).join(format!("{tag}.mp3")),
        shell(KnownFolder::Videos).join(format!("{tag}.mp4")),
        shell(KnownFolder::Favorites).join(format!("{tag}.url")),
        shell(KnownFolder::Profile).join(&tag),
    ]);
    f.write();
    let folders = user_folders().unwrap();
    let r = f.run_in(folders.as_ref(), Strategy::RenameOrCopy);
    assert_eq!(r.status, Status::Complete, "{r:#?}");
    assert_eq!(r.totals.warnings, 0, "times and ACL resets: {r:#?}");
    assert_file(&shell(KnownFolder::Documents).join(&tag).join("report.txt"), b"in Documents", t(1));
    assert_file(&shell(KnownFolder::Desktop).join(format!("{tag}.txt")), b"on the Desktop", t(2));
    assert_file(&shell(KnownFolder::Pictures).join(&tag).join("beach.jpg"), b"\xff\xd8 a picture", t(3));
    assert_file(&shell(KnownFolder::Downloads).join(format!("{tag}.bin")), b"downloaded", t(4));
    assert_file(&shell(KnownFolder::Music).join(format!("{tag}.mp3")), b"ID3", t(5));
    assert_file(&shell(KnownFolder::Videos).join(format!("{tag}.mp4")), b"ftyp", t(6));
    assert_file(&shell(KnownFolder::Favorites).join(format!("{tag}.url")), b"[InternetShortcut]", t(7));
    assert_file(&shell(KnownFolder::Profile).join(&tag).join("profile.txt"), b"at the profile root", t(8));
    let dest = r.entries.iter().find(|e| e.path.starts_with("desktop/")).unwrap().destination.clone().unwrap();
    assert!(Path::new(&dest).starts_with(shell(KnownFolder::Desktop)), "{dest}");
    assert!(!f.staged.join("Carol").exists());
}

#[test]
fn the_binary_restores_the_logged_on_user_into_the_shell_folders() {
    let tag = unique("bin");
    let user = std::env::var("USERNAME").unwrap();
    let mut f = Fixture::new(&user);
    f.file(&format!("Documents/{tag}/a.txt"), b"via inplace.exe", t(1));
    let _cleanup = Cleanup(vec![shell(KnownFolder::Documents).join(&tag)]);
    f.write();
    // As Active Setup runs it: no --profile-root.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_inplace-agent"))
        .arg("restore")
        .arg("--staged")
        .arg(&f.staged)
        .arg("--user")
        .arg(&user)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("complete: 1 restored"), "{stdout}");
    assert_file(&shell(KnownFolder::Documents).join(&tag).join("a.txt"), b"via inplace.exe", t(1));
    assert_eq!(f.report_file()["status"], "complete");
}

#[test]
fn long_paths_and_creation_times() {
    let mut f = Fixture::new("Carol");
    let deep: Vec<String> = (0..6).map(|i| format!("{i}-{}", "x".repeat(60))).collect();
    let path = format!("Documents/{}/file.txt", deep.join("/"));
    f.file(&path, b"deep", t(1));
    f.entries[0].created_ns = Some(t(-100));
    let r = f.run();
    assert_eq!(r.status, Status::Complete, "{r:#?}");
    let dest = f.at(&path);
    assert!(dest.as_os_str().len() > 260, "{}", dest.as_os_str().len());
    assert_file(&dest, b"deep", t(1));
    assert_eq!(r.totals.warnings, 0, "{r:#?}");
    // Wine 8 keeps no creation time of its own on a Unix filesystem (it reports the modified
    // time): check it only where a probe file keeps one.
    let probe = f.tmp.path().join("probe");
    std::fs::write(&probe, b"").unwrap();
    inplace_agent::times::set(&probe, Some(t(5)), Some(t(-5))).unwrap();
    let created_of = |p: &Path| inplace_agent::times::to_ns(std::fs::metadata(p).unwrap().created().unwrap());
    if created_of(&probe) == t(-5) {
        assert_eq!(created_of(&dest), t(-100));
    } else {
        eprintln!("this filesystem keeps no creation time (Wine): not checked");
    }
}

/// Cleanup on Wine's own drives: the real enumeration (GetLogicalDriveStringsW,
/// GetVolumeInformationW) runs, finds no INPLACE store and changes nothing.
#[test]
fn cleanup_finds_no_store_among_the_real_drives() {
    use inplace_agent::cleanup::Status as CleanupStatus;
    let machine = inplace_agent::platform::machine().unwrap();
    let volumes = machine.volumes().unwrap();
    assert!(volumes.iter().any(|v| v.letter == 'C'), "{volumes:?}");
    assert!(volumes.iter().all(|v| !v.label.eq_ignore_ascii_case("INPLACE")), "{volumes:?}");
    assert_eq!(machine.system_drive().unwrap(), 'C');

    let tmp = tempfile::tempdir().unwrap();
    let staged = tmp.path().join("staged");
    std::fs::create_dir_all(&staged).unwrap();
    let job = r#"{"version":1,"job_id":"dad2c558c81849a99001b7402dfeabd1","store_after":"delete","users":[]}"#;
    std::fs::write(tmp.path().join("job.json"), job).unwrap();
    let args: Vec<std::ffi::OsString> = vec!["cleanup".into(), "--staged".into(), staged.clone().into_os_string(), "--task".into(), "inplace-test-none".into()];
    assert_eq!(inplace_agent::cli::main(args), 1);
    let report: inplace_agent::cleanup::CleanupReport = serde_json::from_slice(&std::fs::read(tmp.path().join("cleanup.json")).unwrap()).unwrap();
    assert_eq!(report.status, CleanupStatus::Failed, "{report:#?}");
    assert!(report.message.contains("no store of job dad2c558c81849a99001b7402dfeabd1 was found"), "{}", report.message);
    assert_eq!(report.script, None);
}
