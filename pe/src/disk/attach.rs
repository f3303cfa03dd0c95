//! A partition as a block device the kernel can mount or resize: its own node on a real disk
//! (found through sysfs), or a loop device over its bytes in an image file (`losetup`, on a
//! host; detached when dropped).

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A partition's block device; a loop device goes away with it.
#[derive(Debug)]
pub struct Attached {
    pub node: PathBuf,
    looped: bool,
}

impl Attached {
    /// Partition `number` (bytes `start .. start + size`) of `disk`, a block device or an image.
    pub fn partition(disk: &Path, number: u32, start: u64, size: u64) -> io::Result<Attached> {
        let meta = fs::metadata(disk).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", disk.display())))?;
        if meta.file_type().is_block_device() {
            let rdev = meta.rdev();
            let node = partition_node(nix::sys::stat::major(rdev) as u32, nix::sys::stat::minor(rdev) as u32, number)
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("the kernel lists no partition {number} on {}", disk.display())))?;
            return Ok(Attached { node, looped: false });
        }
        loop_attach(disk, start, size).map(|node| Attached { node, looped: true })
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        if self.looped {
            let _ = Command::new("losetup").arg("-d").arg(&self.node).output();
        }
    }
}

/// The device node of partition `number` of the disk `major:minor`.
pub fn partition_node(major: u32, minor: u32, number: u32) -> Option<PathBuf> {
    let disk = fs::canonicalize(format!("/sys/dev/block/{major}:{minor}")).ok()?;
    fs::read_dir(&disk).ok()?.flatten().find_map(|e| {
        let n = fs::read_to_string(e.path().join("partition")).ok()?;
        (n.trim() == number.to_string()).then(|| Path::new("/dev").join(e.file_name()))
    })
}

/// Drops a block device's clean pages from the page cache (nothing for a regular file). A
/// disk and its partition's node are cached apart: what one wrote, the other's cache may not
/// show. Call it before reading through one node what was written through the other.
pub fn drop_cached(file: &fs::File) {
    if file.metadata().is_ok_and(|m| m.file_type().is_block_device()) {
        let _ = nix::fcntl::posix_fadvise(file, 0, 0, nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED);
    }
}

/// Whether the block device `node` is mounted (by device number, in `/proc/self/mountinfo`).
pub fn is_mounted(node: &Path) -> bool {
    let Ok(meta) = fs::metadata(node) else { return false };
    let want = format!("{}:{}", nix::sys::stat::major(meta.rdev()), nix::sys::stat::minor(meta.rdev()));
    fs::read_to_string("/proc/self/mountinfo").is_ok_and(|m| m.lines().any(|l| l.split(' ').nth(2) == Some(want.as_str())))
}

/// Attaches bytes `offset .. offset + size` of `image` to a free loop device. Needs a working
/// `/dev/loop-control` (not there in many containers).
fn loop_attach(image: &Path, offset: u64, size: u64) -> io::Result<PathBuf> {
    fs::OpenOptions::new().read(true).write(true).open("/dev/loop-control").map_err(|e| io::Error::new(e.kind(), format!("/dev/loop-control: {e}")))?;
    let out = Command::new("losetup")
        .args(["--find", "--show", "--offset", &offset.to_string(), "--sizelimit", &size.to_string()])
        .arg(image)
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot run losetup: {e}")))?;
    let dev = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || !dev.starts_with("/dev/") {
        return Err(io::Error::other(format!("losetup failed: {}", String::from_utf8_lossy(&out.stderr).trim())));
    }
    Ok(PathBuf::from(dev))
}
