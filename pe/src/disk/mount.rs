//! A partition mounted through the kernel (the new OS's root for the hand-off, the store's FAT
//! volume for staging), unmounted — which writes everything out — when done.

use std::path::{Path, PathBuf};

use rustix::mount::{mount, unmount, MountFlags, UnmountFlags};

use super::attach::Attached;

/// A mounted filesystem; unmounted (and its loop device detached) when dropped.
pub struct Mounted {
    pub dir: PathBuf,
    _device: Attached,
    mounted: bool,
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
        Ok(Mounted { dir, _device: device, mounted: true })
    }

    /// Unmounts, reporting a failure (a plain drop ignores it).
    pub fn finish(mut self) -> std::io::Result<()> {
        self.mounted = false;
        let r = unmount(&self.dir, UnmountFlags::empty())
            .map_err(|e| std::io::Error::new(std::io::Error::from(e).kind(), format!("unmounting {}: {e}", self.dir.display())));
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
    }
}
