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
