//! A partition mounted through the kernel (the new OS's root for the hand-off, the store's FAT
//! volume for staging), unmounted — which writes everything out — when done. NTFS is mounted
//! with the kernel's ntfs3, or through ntfs-3g (FUSE) on a host whose kernel has no ntfs3.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::mount::{mount, unmount, MountFlags, UnmountFlags};

use super::attach::Attached;

/// A mounted filesystem; unmounted (and its loop device detached) when dropped.
pub struct Mounted {
    pub dir: PathBuf,
    /// What mounted it: the kernel's filesystem type, or `ntfs-3g`.
    pub driver: String,
    _device: Attached,
    mounted: bool,
    /// The ntfs-3g process serving the mount, which writes out when it exits.
    fuse: Option<Child>,
}

impl Mounted {
    /// Mounts `device` as `fstype` on a new directory `name` under `under`.
    pub fn new(device: Attached, fstype: &str, under: &Path, name: &str) -> std::io::Result<Mounted> {
        let dir = under.join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| std::io::Error::new(e.kind(), format!("creating {}: {e}", dir.display())))?;
        mount(&device.node, &dir, fstype, MountFlags::NOSUID | MountFlags::NODEV, None::<&std::ffi::CStr>)
            .map_err(|e| {
                let e = std::io::Error::from(e);
                let seen = std::fs::read_to_string("/proc/partitions").unwrap_or_default().split_whitespace().last().map(str::to_string);
                std::io::Error::new(e.kind(), format!(
                    "mounting {} ({fstype}) on {}: {e} (the node {}; the kernel's last partition: {})",
                    device.node.display(),
                    dir.display(),
                    if device.node.exists() { "exists" } else { "is missing" },
                    seen.unwrap_or_default()
                ))
            })?;
        Ok(Mounted { dir, driver: fstype.to_string(), _device: device, mounted: true, fuse: None })
    }

    /// Mounts `device`'s NTFS read-write: ntfs3 when the kernel has it, else ntfs-3g.
    pub fn ntfs(device: Attached, under: &Path, name: &str) -> std::io::Result<Mounted> {
        let kernel = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
        if kernel.lines().any(|l| l.split_whitespace().next_back() == Some("ntfs3")) {
            return Mounted::new(device, "ntfs3", under, name);
        }
        let dir = under.join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| std::io::Error::new(e.kind(), format!("creating {}: {e}", dir.display())))?;
        // windows_names: no name Windows could not open is created.
        let child = Command::new("ntfs-3g")
            .args(["-o", "no_detach,windows_names"])
            .arg(&device.node)
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| std::io::Error::new(e.kind(), format!("the kernel has no ntfs3 and ntfs-3g cannot run: {e}")))?;
        let mut m = Mounted { dir, driver: "ntfs-3g".into(), _device: device, mounted: true, fuse: Some(child) };
        let canonical = std::fs::canonicalize(&m.dir)?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
            if mounts.lines().any(|l| l.split(' ').nth(4).map(Path::new) == Some(canonical.as_path())) {
                return Ok(m);
            }
            let exited = m.fuse.as_mut().and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() > deadline {
                m.mounted = false;
                return Err(std::io::Error::other(format!("ntfs-3g could not mount {} ({})", m._device.node.display(), exited.map_or("timed out".into(), |s| s.to_string()))));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Unmounts, reporting a failure (a plain drop ignores it).
    pub fn finish(mut self) -> std::io::Result<()> {
        self.mounted = false;
        let r = unmount(&self.dir, UnmountFlags::empty())
            .map_err(|e| std::io::Error::new(std::io::Error::from(e).kind(), format!("unmounting {}: {e}", self.dir.display())));
        if let Some(mut child) = self.fuse.take() {
            // ntfs-3g writes everything out before it exits.
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir(&self.dir);
        r
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if self.mounted {
            let _ = unmount(&self.dir, UnmountFlags::DETACH);
            let _ = std::fs::remove_dir(&self.dir);
        }
        if let Some(mut child) = self.fuse.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
