//! Windows as the new OS, on a host: `inplace run` lays a generalized Windows-like image down
//! over the old Windows, stages Carol's and Dave's profiles into the new C: and writes the
//! agent, `job.json` and the setup scripts. Everything is checked by reading the new C:
//! through ntfs-3g, read-only.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use inplace_tests::e2e;
use inplace_tests::fixtures::{image_fingerprint, NtfsMount};
use inplace_tests::windows_fixtures::{old_windows_disk, windows_reference, ProfileFile, Reference};

const OEM_SCRIPT: &str = "@echo off\r\nreg import C:\\OEM\\oem.reg\r\nexit /b 0\r\n";

fn run(preset: &Path, disk: &Path, agent: Option<&Path>, extra: &[&str]) -> Output {
    let mut cmd = Command::new(inplace_tests::inplace_bin());
    cmd.args(["run", "--preset"]).arg(preset).arg("--disk").arg(disk).args(extra);
    if let Some(a) = agent {
        cmd.arg("--agent-windows").arg(a);
    }
    cmd.output().unwrap()
}

fn preset(dir: &Path, image: &Path, digest: &str) -> PathBuf {
    let p = dir.join("preset.toml");
    let extra = "initial_password = \"Change-me 1\"\nconflict = \"overwrite\"\n";
    fs::write(&p, e2e::preset("windows-refresh", &image.display().to_string(), digest, "keep", extra)).unwrap();
    p
}

/// The new C: of `disk`, copied out and mounted read-only with ntfs-3g.
struct NewC {
    mount: Option<NtfsMount>,
    dir: PathBuf,
}

impl NewC {
    fn open(disk: &Path, work: &Path) -> NewC {
        let inv = inplace::inventory::inspect_paths(&[disk.to_path_buf()]);
        let c = inv.disks[0]
            .partitions
            .iter()
            .find(|p| p.os.as_ref().is_some_and(|o| o.family == "windows"))
            .unwrap_or_else(|| panic!("no Windows on {} after the job: {:#?}", disk.display(), inv.disks[0].partitions));
        let copy = work.join("new-c.ntfs");
        let mut from = fs::File::open(disk).unwrap();
        from.seek(SeekFrom::Start(c.start_bytes)).unwrap();
        let copied = std::io::copy(&mut from.take(c.size_bytes), &mut fs::File::create(&copy).unwrap()).unwrap();
        assert_eq!(copied, c.size_bytes, "{} ends inside the new C:", disk.display());
        let dir = work.join("new-c.mnt");
        fs::create_dir_all(&dir).unwrap();
        NewC { mount: Some(NtfsMount::mount_read_only(&copy, &dir)), dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }
}

impl Drop for NewC {
    fn drop(&mut self) {
        if let Some(m) = self.mount.take() {
            m.unmount();
        }
    }
}

fn mtime(p: &Path) -> i64 {
    fs::metadata(p).unwrap().modified().unwrap().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[test]
fn a_windows_image_gets_the_profiles_staged_and_the_setup_scripts() {
    let dir = tempfile::tempdir().unwrap();
    let (disk, expected) = old_windows_disk(dir.path());
    let reference = windows_reference(dir.path(), "win11-ref", &Reference { generalized: true, setup_complete: Some(OEM_SCRIPT) });
    let image = dir.path().join("win11.inplace");
    let digest = e2e::image_create(&reference, &image);
    let preset = preset(dir.path(), &image, &digest);
    let agent = inplace_tests::windows_agent();

    let out = run(&preset, &disk, Some(&agent), &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "inplace run: {err}");
    assert!(!err.contains("not generalized"), "{err}");
    let j = e2e::journal(&disk).expect("the job's journal");
    assert_eq!(j.state, inplace::job::state::State::HandedOff, "{err}");
    assert_eq!(j.plan.new_os, "windows");

    assert!(err.contains("mounted the new Windows (partition 3, ntfs"), "{err}");
    check_new_c(&disk, dir.path(), &expected, &agent, &j.job_id);
}

/// The new C: of `disk` after the hand-off, read through ntfs-3g read-only: every profile file
/// staged with its bytes and time and listed for the agent, no profile folder made, the OEM's
/// `SetupComplete.cmd` kept with our block before its exit, the setup script, `job.json` and
/// the agent.
fn check_new_c(disk: &Path, work: &Path, expected: &[ProfileFile], agent: &Path, job_id: &str) {
    let c = NewC::open(disk, work);
    // Staged, byte for byte and with their times; the rules' leavings are not.
    for f in expected {
        let p = c.path(&format!("ProgramData/inplace/staged/{}/{}", f.user, f.path));
        assert!(p.is_file(), "{} is not staged ({})", f.path, p.display());
        assert_eq!(inplace_tests::sha256_file(&p), f.sha256, "{}/{}", f.user, f.path);
        assert_eq!(mtime(&p), f.mtime, "the time of {}/{}", f.user, f.path);
    }
    assert!(!c.path("ProgramData/inplace/staged/Carol/AppData/Local/Temp/setup.tmp").exists());
    assert!(!c.path("ProgramData/inplace/staged/Carol/Documents/desktop.ini").exists(), "a folder's view settings are not staged");
    // Each user's list, as the agent reads it.
    for user in ["Carol", "Dave"] {
        let m: serde_json::Value = serde_json::from_slice(&fs::read(c.path(&format!("ProgramData/inplace/staged/{user}.json"))).unwrap()).unwrap();
        assert_eq!(m["user"], user);
        let files: Vec<(String, String, i64)> = m["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "file")
            .map(|e| (e["path"].as_str().unwrap().to_string(), e["sha256"].as_str().unwrap().to_string(), e["mtime_ns"].as_i64().unwrap()))
            .collect();
        let mut want: Vec<(String, String, i64)> =
            expected.iter().filter(|f| f.user == user).map(|f| (f.path.to_string(), f.sha256.clone(), f.mtime * 1_000_000_000)).collect();
        let mut got = files.clone();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{user}.json");
    }
    // Windows makes the profiles itself at the first logon.
    let users: Vec<String> = fs::read_dir(c.path("Users")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(!users.iter().any(|u| u.eq_ignore_ascii_case("Carol") || u.eq_ignore_ascii_case("Dave")), "{users:?}");

    // The OEM's script is kept; ours is called before its exit.
    let sc = fs::read_to_string(c.path("Windows/Setup/Scripts/SetupComplete.cmd")).unwrap();
    assert_eq!(
        sc,
        "@echo off\r\nreg import C:\\OEM\\oem.reg\r\nrem inplace: begin\r\ncall \"%ProgramData%\\inplace\\setupcomplete.cmd\"\r\nrem inplace: end\r\nexit /b 0\r\n"
    );
    let script = fs::read_to_string(c.path("ProgramData/inplace/setupcomplete.cmd")).unwrap();
    for want in [
        r#"net user "Carol" >nul 2>&1 || net user "Carol" "Change-me 1" /add /logonpasswordchg:yes >> "%LOG%" 2>&1"#,
        r#"net user "Dave" >nul 2>&1 || net user "Dave" "Change-me 1" /add /logonpasswordchg:yes >> "%LOG%" 2>&1"#,
        r#"reg add "%KEY%" /v StubPath /t REG_EXPAND_SZ /d "\"%%ProgramData%%\inplace\inplace.exe\" restore --staged \"%%ProgramData%%\inplace\staged\" --user %%USERNAME%%" /f >> "%LOG%" 2>&1"#,
    ] {
        assert!(script.lines().any(|l| l == want), "setupcomplete.cmd lacks\n{want}\n{script}");
    }
    let job: serde_json::Value = serde_json::from_slice(&fs::read(c.path("ProgramData/inplace/job.json")).unwrap()).unwrap();
    assert_eq!(
        job,
        serde_json::json!({
            "version": 1,
            "job_id": job_id,
            "preset": "windows-refresh",
            "conflict": "overwrite",
            "create_users": true,
            "store_after": "keep",
            "users": [
                {"name": "Carol", "sid": null, "kind": "local"},
                {"name": "Dave", "sid": null, "kind": "local"},
            ],
        })
    );
    assert!(!String::from_utf8_lossy(&fs::read(c.path("ProgramData/inplace/job.json")).unwrap()).contains("Change-me"));
    assert_eq!(inplace_tests::sha256_file(&c.path("ProgramData/inplace/inplace.exe")), inplace_tests::sha256_file(agent));
}

#[test]
fn a_windows_image_is_refused_without_the_agent_or_over_linux_and_warned_of_when_not_generalized() {
    let dir = tempfile::tempdir().unwrap();
    let (disk, _) = old_windows_disk(dir.path());
    let reference = windows_reference(dir.path(), "win11-audit", &Reference { generalized: false, setup_complete: None });
    let image = dir.path().join("audit.inplace");
    let digest = e2e::image_create(&reference, &image);
    let preset = preset(dir.path(), &image, &digest);
    let before = image_fingerprint(&disk);

    let out = run(&preset, &disk, None, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("no Windows restore agent (inplace.exe)"), "{err}");
    assert_eq!(image_fingerprint(&disk), before, "a refused job wrote to the disk");

    let out = run(&preset, &disk, Some(&inplace_tests::windows_agent()), &["--dry-run"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("holds a Windows that was not generalized") && err.contains("IMAGE_STATE_COMPLETE"), "{err}");
    assert_eq!(image_fingerprint(&disk), before, "a dry run wrote to the disk");

    // A Linux system's files cannot go to Windows.
    let linux = inplace_tests::job_fixtures::linux_disk(dir.path(), "linux-old", 256);
    let before = image_fingerprint(&linux);
    let out = run(&preset, &linux, Some(&inplace_tests::windows_agent()), &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("holds Windows, and partition") && err.contains("can only be restored onto Linux"), "{err}");
    assert_eq!(image_fingerprint(&linux), before, "a refused job wrote to the disk");
}

/// A Windows job with a `[report]` whose collector is down for the whole run: the PE's events
/// wait in the store and in the spool it leaves in the new C:. Then the new Windows, played by
/// the real `inplace.exe` under Wine on a copy of `ProgramData\inplace`: its `report send`
/// takes the PE's last events from the store, adds its own (the machine is up, each user's
/// restore report after their logon) and the collector gets every envelope once, in order.
#[test]
fn a_windows_job_reports_and_the_new_windows_sends_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (disk, _) = old_windows_disk(dir.path());
    let reference = windows_reference(dir.path(), "win11-ref", &Reference { generalized: true, setup_complete: None });
    let image = dir.path().join("win11.inplace");
    let digest = e2e::image_create(&reference, &image);
    let port = inplace_tests::collector::free_port();
    let preset = preset(dir.path(), &image, &digest);
    let text = fs::read_to_string(&preset).unwrap();
    fs::write(&preset, format!("{text}\n[report]\nurl = \"http://127.0.0.1:{port}/in\"\ninterval = 1\n")).unwrap();
    let agent = inplace_tests::windows_agent();

    let out = run(&preset, &disk, Some(&agent), &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "inplace run: {err}");
    assert!(err.contains("report: 0 events sent"), "{err}");
    let j = e2e::journal(&disk).expect("the job's journal");

    // What the hand-off left in the new C:, copied out as the new Windows would see it.
    let base = dir.path().join("C/ProgramData/inplace");
    {
        let c = NewC::open(&disk, dir.path());
        fs::create_dir_all(base.parent().unwrap()).unwrap();
        let cp = Command::new("cp").arg("-r").arg(c.path("ProgramData/inplace")).arg(base.parent().unwrap()).status().unwrap();
        assert!(cp.success());
    }
    assert!(Command::new("chmod").args(["-R", "u+w"]).arg(&base).status().unwrap().success());
    let job: serde_json::Value = serde_json::from_slice(&fs::read(base.join("job.json")).unwrap()).unwrap();
    assert_eq!(job["report"], true);
    let spool = base.join("report").join(&j.job_id);
    let config: serde_json::Value = serde_json::from_slice(&fs::read(spool.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["url"], format!("http://127.0.0.1:{port}/in"));
    let script = fs::read_to_string(base.join("setupcomplete.cmd")).unwrap();
    assert!(script.contains("schtasks /create /tn inplace-report /sc minute /mo 2 /ru SYSTEM"), "{script}");
    let at_hand_off = fs::read_to_string(spool.join("spool.jsonl")).unwrap().lines().count();

    // The store, as the new Windows sees it by its drive letter: its journal's report files.
    let store_root = dir.path().join("E");
    fs::create_dir_all(store_root.join("journal")).unwrap();
    let store = inplace::migrate::store::Store::open(&disk, false).unwrap();
    for f in ["journal/report-state.json", "journal/report-spool.jsonl"] {
        let bytes = store.read_file(f, 64 << 20).unwrap().unwrap_or_else(|| panic!("the store has no {f}"));
        fs::write(store_root.join(f), bytes).unwrap();
    }
    let in_store = fs::read_to_string(store_root.join("journal/report-spool.jsonl")).unwrap().lines().count();
    assert!(in_store > at_hand_off, "the store holds the PE's events after the hand-off ({in_store} vs {at_hand_off})");
    drop(store);

    let collector = inplace_tests::collector::Collector::start_on(port);
    let staged = inplace_tests::wine::path(&base.join("staged"));
    let store_arg = inplace_tests::wine::path(&store_root);
    let send = || {
        let out = inplace_tests::wine::run(&agent, &["report", "send", "--staged", &staged, "--store", &store_arg]);
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "inplace.exe report send: {text}");
        text
    };
    let restore = |user: &str| {
        let profile = inplace_tests::wine::path(&dir.path().join("Users").join(user));
        let out = inplace_tests::wine::run(&agent, &["restore", "--staged", &staged, "--user", user, "--profile-root", &profile]);
        assert_eq!(out.status.code(), Some(0), "inplace.exe restore {user}: {}", String::from_utf8_lossy(&out.stdout));
    };

    // The first boot, before anyone logs on: the PE's events and "up".
    let first = send();
    assert!(first.contains(&format!("report: {} events sent, 0 unsent", in_store + 1)), "{first}");
    // Each user's logon, then the task's next run.
    restore("Carol");
    let second = send();
    assert!(second.contains("report: 1 events sent, 0 unsent"), "{second}");
    restore("Dave");
    let third = send();
    assert!(third.contains("report: 1 events sent, 0 unsent") && third.contains("everything is sent"), "{third}");
    assert!(send().contains("report: 0 events sent, 0 unsent"), "nothing is sent twice");

    let all = collector.envelopes();
    let (mine, missing) = inplace_tests::collector::ordered(&all, &j.job_id);
    assert_eq!(mine.len(), all.len(), "every envelope once");
    assert!(missing.is_empty(), "gaps in seq: {missing:?}");
    assert_eq!(inplace_tests::collector::schema_errors(&all), Vec::<String>::new());
    let pe: Vec<&serde_json::Value> = mine.iter().filter(|e| e["origin"] == "pe").collect();
    assert_eq!(pe.len(), in_store);
    assert_eq!(pe.last().unwrap()["kind"], "done", "the PE's part ends with its done");
    let first_boot: Vec<&serde_json::Value> = mine.iter().skip(pe.len()).collect();
    assert!(first_boot.iter().all(|e| e["origin"] == "first-boot"), "the first boot's come after the PE's");
    assert_eq!(first_boot.iter().map(|e| e["kind"].as_str().unwrap()).collect::<Vec<_>>(), ["log", "done", "done"]);
    assert!(first_boot[0]["event"]["message"].as_str().unwrap().contains("the new Windows is up"));
    for (e, user) in first_boot[1..].iter().zip(["Carol", "Dave"]) {
        let r = &e["event"]["report"];
        assert_eq!((r["user"].as_str(), r["restore"]["status"].as_str()), (Some(user), Some("complete")), "{e}");
        assert_eq!(r["restore"]["totals"]["failed"], 0);
    }
    assert!(mine.iter().all(|e| e["machine"] == mine[0]["machine"]), "one machine");
    let bytes: usize = all.iter().map(|e| e.to_string().len()).sum();
    eprintln!("envelopes: {} from the PE ({at_hand_off} in the hand-off's spool), {} from the first boot; {bytes} bytes of JSON", pe.len(), first_boot.len());
}

/// The same job in the PE, booted from its ISO under QEMU (UEFI): the new C: is mounted with
/// the kernel's ntfs3.
#[cfg(feature = "pe")]
#[test]
fn in_the_pe_the_profiles_are_staged_through_ntfs3() {
    let dir = tempfile::tempdir().unwrap();
    let (disk, expected) = old_windows_disk(dir.path());
    let reference = windows_reference(dir.path(), "win11-ref", &Reference { generalized: true, setup_complete: Some(OEM_SCRIPT) });
    let image = dir.path().join("win11.inplace");
    let digest = e2e::image_create(&reference, &image);
    let extra = "initial_password = \"Change-me 1\"\nconflict = \"overwrite\"\n";
    let iso = e2e::pe_iso(dir.path(), &e2e::preset("windows-refresh", e2e::ISO_IMAGE, &digest, "keep", extra), &image);
    let job = e2e::pe_job(&iso, &disk, "WINBOX-1");
    assert!(job.serial.contains("mounted the new Windows (partition 3, ntfs3)"), "{}", job.serial);
    let j = e2e::journal(&disk).expect("the job's journal");
    assert_eq!(j.state, inplace::job::state::State::HandedOff);
    check_new_c(&disk, dir.path(), &expected, &inplace_tests::windows_agent(), &j.job_id);
    eprintln!("the PE's job took {:.1} s from ready to the hand-off", job.job_secs);
}
