//! The pseudo-filesystems the PE needs, mounted once at start.

use anyhow::Context;
use rustix::mount::{mount, MountFlags};

const MOUNTS: &[(&str, &str, &str, MountFlags, &std::ffi::CStr)] = &[
    ("devtmpfs", "/dev", "devtmpfs", MountFlags::NOSUID, c"mode=0755"),
    ("proc", "/proc", "proc", MountFlags::NOSUID.union(MountFlags::NODEV).union(MountFlags::NOEXEC), c""),
    ("sysfs", "/sys", "sysfs", MountFlags::NOSUID.union(MountFlags::NODEV).union(MountFlags::NOEXEC), c""),
    ("tmpfs", "/run", "tmpfs", MountFlags::NOSUID.union(MountFlags::NODEV), c"mode=0755"),
    ("tmpfs", "/tmp", "tmpfs", MountFlags::NOSUID.union(MountFlags::NODEV), c"mode=1777"),
];

/// Mounts devtmpfs, proc, sysfs, /run and /tmp. An already mounted target is fine.
pub fn mount_all() -> anyhow::Result<()> {
    for (source, target, fstype, flags, data) in MOUNTS {
        std::fs::create_dir_all(target).with_context(|| format!("creating {target}"))?;
        match mount(*source, *target, *fstype, *flags, Some(*data)) {
            Ok(()) | Err(rustix::io::Errno::BUSY) => {}
            Err(e) => return Err(e).with_context(|| format!("mounting {fstype} on {target}")),
        }
    }
    Ok(())
}

/// Mounts a filesystem from a device; `read_only` for the boot medium.
pub fn mount_device(device: &std::path::Path, target: &std::path::Path, fstype: &str, read_only: bool) -> anyhow::Result<()> {
    std::fs::create_dir_all(target).with_context(|| format!("creating {}", target.display()))?;
    let flags = MountFlags::NOSUID | MountFlags::NODEV | if read_only { MountFlags::RDONLY } else { MountFlags::empty() };
    mount(device, target, fstype, flags, None::<&std::ffi::CStr>)
        .with_context(|| format!("mounting {} ({fstype}) on {}", device.display(), target.display()))
}
