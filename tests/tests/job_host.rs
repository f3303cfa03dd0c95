//! The job on a host (`inplace run` on a disk image), with real Debian systems: a remote image
//! is staged into the store before the lay-down and laid down from there (or, on a host whose
//! kernel cannot mount FAT32, streamed with each chunk checked), and the hand-off leaves the
//! restore agent and its unit in the new OS. Feature `pe` (the static agent).

use std::process::Command;

use inplace_tests::e2e::{self, debugfs, partitions};
use inplace_tests::http_server::Server;

#[test]
fn a_remote_image_is_staged_in_the_store_then_laid_down_from_the_copy() {
    let dir = tempfile::tempdir().unwrap();
    let (disk, _manifest, _) = e2e::old_machine_copy(dir.path(), false);
    let (image, digest) = e2e::new_os_image();
    let image_len = std::fs::metadata(&image).unwrap().len();
    let server = Server::start(image.clone());
    let preset = dir.path().join("preset.toml");
    std::fs::write(&preset, e2e::preset("staged", &server.url("new-os.inplace"), &digest, "keep", "")).unwrap();
    let agent = inplace_tests::qemu::pe_dir().join("inplace");
    let out = Command::new(inplace_tests::inplace_bin())
        .args(["run", "--preset"])
        .arg(&preset)
        .arg("--disk")
        .arg(&disk)
        .arg("--agent")
        .arg(&agent)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "inplace run: {err}");
    let vfat = std::fs::read_to_string("/proc/filesystems").unwrap_or_default().contains("vfat");
    let found = inplace::job::rollback::find_job(&disk).unwrap().expect("the job's journal");
    let j = found.journal;
    assert_eq!(j.state, inplace::job::state::State::HandedOff);
    assert!(j.plan.stage, "the plan made room for a copy of the image");
    // Either way the image crossed the network once.
    let served: u64 = server.ranges().iter().map(|r| r.map_or(image_len, |(a, b)| b - a + 1)).sum();
    assert!(served < image_len + (4 << 20), "{served} bytes served for a {image_len}-byte image");
    if vfat {
        assert!(err.contains("== stage") && err.contains("downloading"), "{err}");
        assert!(err.contains("laying down the copy staged in the store"), "{err}");
        assert_eq!(j.step(inplace::step::Step::Stage).unwrap().bytes, image_len);
    } else {
        assert!(err.contains("the image is streamed during the lay-down instead"), "{err}");
        assert!(err.contains("streaming without staging"), "{err}");
        assert_eq!(j.step(inplace::step::Step::Stage).unwrap().bytes, 0);
    }

    // The copy is gone from the store once laid down; the store holds the capture.
    let parts = partitions(&disk);
    let store = parts.iter().find(|p| p.3 == "0700").expect("the store partition");
    let listing = Command::new("mdir").args(["-b", "-i", &format!("{}@@{}", disk.display(), store.1), "::/"]).output().unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.contains("capture") && !listing.to_lowercase().contains("images/") || !listing.contains(".img"), "{listing}");
    let images = Command::new("mdir").args(["-b", "-i", &format!("{}@@{}", disk.display(), store.1), "::/images"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&images.stdout).contains(".img"), "the staged copy is still in the store");

    // The hand-off: the agent, the unit and its link in the new root.
    let root = parts.iter().find(|p| p.3 == "8304" || p.3 == "8300").unwrap();
    let ls = debugfs(&disk, root.1, "ls -l /etc/systemd/system/multi-user.target.wants");
    assert!(ls.contains("inplace-restore.service"), "{ls}");
    let agent_stat = debugfs(&disk, root.1, "stat /usr/local/lib/inplace/inplace");
    assert!(agent_stat.contains(&format!("Size: {}", std::fs::metadata(&agent).unwrap().len())), "{agent_stat}");
}

fn sha256(p: &std::path::Path) -> String {
    inplace_tests::sha256_file(p)
}

/// `--json` is the event stream as JSON lines on stdout, and a dry run writes nothing.
#[test]
fn a_dry_run_streams_its_events_as_json_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (disk, _manifest, _) = e2e::old_machine_copy(dir.path(), false);
    let (image, digest) = e2e::new_os_image();
    let preset = dir.path().join("preset.toml");
    std::fs::write(&preset, e2e::preset("json", &image.display().to_string(), &digest, "keep", "")).unwrap();
    let before = sha256(&disk);
    let out = Command::new(inplace_tests::inplace_bin())
        .args(["run", "--dry-run", "--json", "--preset"])
        .arg(&preset)
        .arg("--disk")
        .arg(&disk)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let events: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"))).collect();
    assert!(events.iter().all(|e| e["event"].is_string() && e["time"].is_string()), "{events:?}");
    assert!(events.iter().any(|e| e["event"] == "step" && e["step"] == "plan"), "{events:?}");
    assert!(events.iter().any(|e| e["event"] == "log" && e["message"].as_str().is_some_and(|m| m.starts_with("disk: "))), "{events:?}");
    assert_eq!(sha256(&disk), before, "a dry run wrote to the disk");
}

/// A store that cannot fit is refused before any write, and each way out is said once.
#[test]
fn a_store_that_does_not_fit_is_refused_with_each_advice_once() {
    let dir = tempfile::tempdir().unwrap();
    let (disk, _manifest, _) = e2e::old_machine_copy(dir.path(), false);
    let (image, digest) = e2e::new_os_image();
    let preset = dir.path().join("preset.toml");
    // Larger than the old root's free tail (about 3 GiB), smaller than the disk.
    let text = e2e::preset("too big", &image.display().to_string(), &digest, "keep", "").replace("[store]\n", "[store]\nmargin = \"3400M\"\n");
    std::fs::write(&preset, text).unwrap();
    let before = sha256(&disk);
    let out = Command::new(inplace_tests::inplace_bin()).args(["run", "--preset"]).arg(&preset).arg("--disk").arg(&disk).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert_eq!(sha256(&disk), before, "a refused job wrote to the disk");
    let last = &err[err.rfind("inplace: error:").unwrap_or_else(|| panic!("{err}"))..];
    assert!(last.contains("nothing was written") && !last.contains("--store-size"), "{last}");
    for advice in ["lower the preset's [store] margin", "external store"] {
        assert_eq!(last.matches(advice).count(), 1, "{advice:?} in: {last}");
    }
}
