//! Coldplug until the expected devices are there: load drivers for every device, again for the
//! devices those drivers create, and stop as soon as every controller has bound and produced its
//! disks — not after a fixed quiet time.
//!
//! Each round reads a [`Snapshot`] of sysfs; [`pending`] and [`decide`] are pure functions over
//! it. Between rounds the PE sleeps until the kernel sends a uevent (or a short poll ends).
//! `finit_module` returns only when the asynchronous probes it started are done (the kernel
//! runs `async_synchronize_full` after a module's init), so ATA and SCSI scans behind a freshly
//! loaded driver are complete when the load returns; what still comes later is checked here:
//! disks behind a bound disk driver, NVMe namespaces, USB enumeration and USB storage.

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use super::modules::{Loader, ModuleSink};

/// With something expected still missing and nothing changing for this long, the PE goes on
/// (a driver whose probe failed never binds).
const STALL: Duration = Duration::from_millis(1500);
/// USB enumeration has no end marker: with a USB host controller present, the set of USB
/// devices must be unchanged for this long.
const USB_QUIET: Duration = Duration::from_millis(1000);
/// How long a USB storage interface may take to show its disk (usb-storage waits `delay_use`,
/// 1 s, before it scans), counted from the start of settling.
const USB_STORAGE_WAIT: Duration = Duration::from_secs(10);
/// The longest sleep between two looks when no uevent comes.
const POLL: Duration = Duration::from_millis(100);

/// Drivers whose bound device carries its disk in a `block/` folder.
const DISK_DRIVERS: &[&str] = &["sd", "sr", "virtio_blk", "mmcblk"];
/// Buses whose devices are bound by the driver their modalias names.
const BOUND_BUSES: &[&str] = &["pci", "virtio", "scsi", "usb"];
const USB_STORAGE_DRIVERS: &[&str] = &["usb-storage", "uas"];

pub struct Settled {
    pub modules_loaded: usize,
    pub block_devices: Vec<String>,
    pub elapsed: Duration,
    pub stop: Stop,
    /// What was still missing when the wait ended (empty when settled).
    pub missing: Vec<Pending>,
}

/// Why settling ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Every expected driver bound and every disk behind it appeared.
    Settled,
    /// Something expected is missing and nothing changed for [`STALL`].
    Stalled,
    /// A USB storage interface showed no disk within [`USB_STORAGE_WAIT`].
    UsbStorageWait,
    /// The overall limit ended the wait.
    TimeLimit,
}

impl Stop {
    pub fn words(self) -> &'static str {
        match self {
            Stop::Settled => "settled: every driver bound and its disks appeared",
            Stop::Stalled => "stalled: something expected did not appear and nothing changed",
            Stop::UsbStorageWait => "USB storage showed no disk in time",
            Stop::TimeLimit => "time limit",
        }
    }
}

/// One device folder under `/sys/devices` with a modalias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Relative to `/sys/devices`.
    pub path: String,
    /// The `subsystem` link's name (`pci`, `virtio`, `scsi`, `usb`, …).
    pub bus: String,
    pub modalias: String,
    /// The `driver` link's name, when bound.
    pub driver: Option<String>,
    /// A loaded module matches the modalias.
    pub wanted: bool,
    /// Its `block/` folder holds a disk.
    pub has_block: bool,
    /// A disk (`block/`) is somewhere below it (for USB storage interfaces).
    pub block_below: bool,
}

/// An NVMe controller (`…/nvme/nvmeN`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nvme {
    pub path: String,
    pub state: String,
    pub namespaces: usize,
}

/// What settling looks at, read from sysfs in one walk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub devices: Vec<Device>,
    pub nvme: Vec<Nvme>,
    /// Names under `/sys/bus/usb/devices` (root hubs are `usbN`).
    pub usb: Vec<String>,
    /// Names under `/sys/block`.
    pub block: Vec<String>,
}

/// Something settling still waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    /// A loaded module matches the device, but no driver is bound.
    Unbound(String),
    /// A disk driver is bound, but its disk has not appeared.
    NoDisk(String),
    /// An NVMe controller that is not live or shows no namespace.
    Nvme(String),
    /// A USB storage interface with no disk below it yet.
    UsbStorage(String),
}

impl std::fmt::Display for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pending::Unbound(p) => write!(f, "{p} (no driver bound)"),
            Pending::NoDisk(p) => write!(f, "{p} (no disk yet)"),
            Pending::Nvme(p) => write!(f, "{p} (NVMe not live or no namespace)"),
            Pending::UsbStorage(p) => write!(f, "{p} (USB storage without a disk)"),
        }
    }
}

/// Times the loop measured, for [`decide`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Clock {
    pub elapsed: Duration,
    /// Since the snapshot last changed or a module last loaded.
    pub unchanged: Duration,
    /// Since the set of USB devices last changed.
    pub usb_unchanged: Duration,
}

impl Snapshot {
    /// Reads `sys` (normally `/sys`); `wanted` says whether a loaded module matches a modalias.
    pub fn read(sys: &Path, wanted: &dyn Fn(&str) -> bool) -> Snapshot {
        let mut snap = Snapshot { usb: names(&sys.join("bus/usb/devices")), block: names(&sys.join("block")), ..Snapshot::default() };
        let root = sys.join("devices");
        // Virtual devices (ttys, loop, lo, …) have no drivers to bind and are most of the tree.
        let mut stack: Vec<_> = std::fs::read_dir(&root)
            .map(|it| it.flatten().filter(|e| e.file_name() != "virtual").map(|e| e.path()).collect())
            .unwrap_or_default();
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            let mut modalias = None;
            for entry in entries.flatten() {
                let Ok(ft) = entry.file_type() else { continue };
                if ft.is_dir() {
                    stack.push(entry.path());
                } else if ft.is_file() && entry.file_name() == "modalias" {
                    modalias = std::fs::read_to_string(entry.path()).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
                }
            }
            let rel = dir.strip_prefix(&root).unwrap_or(&dir).to_string_lossy().into_owned();
            let bus = link_name(&dir.join("subsystem")).unwrap_or_default();
            if let Some(modalias) = modalias {
                snap.devices.push(Device {
                    bus,
                    wanted: wanted(&modalias),
                    modalias,
                    driver: link_name(&dir.join("driver")),
                    has_block: !names(&dir.join("block")).is_empty(),
                    block_below: false,
                    path: rel,
                });
            } else if bus == "nvme" {
                let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let namespaces = names(&dir)
                    .iter()
                    .filter(|n| n.strip_prefix(name.as_str()).is_some_and(|rest| rest.starts_with('n') || rest.starts_with('c')))
                    .count();
                let state = std::fs::read_to_string(dir.join("state")).unwrap_or_default().trim().to_string();
                snap.nvme.push(Nvme { path: rel, state, namespaces });
            }
        }
        snap.devices.sort_by(|a, b| a.path.cmp(&b.path));
        snap.nvme.sort_by(|a, b| a.path.cmp(&b.path));
        // A disk below a device: any device whose path is below it has a `block/` disk.
        let disks: Vec<String> = snap.devices.iter().filter(|d| d.has_block).map(|d| format!("{}/", d.path)).collect();
        for d in &mut snap.devices {
            let prefix = format!("{}/", d.path);
            d.block_below = disks.iter().any(|p| p.starts_with(&prefix));
        }
        snap
    }
}

/// What the snapshot still lacks (pure).
pub fn pending(snap: &Snapshot) -> Vec<Pending> {
    let mut out = Vec::new();
    for d in &snap.devices {
        match d.driver.as_deref() {
            None if d.wanted && BOUND_BUSES.contains(&d.bus.as_str()) => out.push(Pending::Unbound(d.path.clone())),
            Some(drv) if DISK_DRIVERS.contains(&drv) && !d.has_block => out.push(Pending::NoDisk(d.path.clone())),
            Some(drv) if USB_STORAGE_DRIVERS.contains(&drv) && !d.block_below => out.push(Pending::UsbStorage(d.path.clone())),
            _ => {}
        }
    }
    for n in &snap.nvme {
        if n.state != "live" || n.namespaces == 0 {
            out.push(Pending::Nvme(n.path.clone()));
        }
    }
    out
}

/// Whether settling is over, and why (pure). `None`: wait for the next change.
pub fn decide(snap: &Snapshot, clock: Clock, limit: Duration) -> Option<Stop> {
    let missing = pending(snap);
    let usb_host = snap.usb.iter().any(|n| n.starts_with("usb"));
    let usb_enumerating = usb_host && clock.usb_unchanged < USB_QUIET;
    let (usb_storage, other): (Vec<&Pending>, Vec<&Pending>) = missing.iter().partition(|p| matches!(p, Pending::UsbStorage(_)));
    if missing.is_empty() && !usb_enumerating {
        return Some(Stop::Settled);
    }
    if clock.elapsed >= limit {
        return Some(Stop::TimeLimit);
    }
    if !other.is_empty() && clock.unchanged >= STALL {
        return Some(Stop::Stalled);
    }
    if other.is_empty() && !usb_storage.is_empty() && !usb_enumerating && clock.elapsed >= USB_STORAGE_WAIT {
        return Some(Stop::UsbStorageWait);
    }
    None
}

/// Loads drivers until [`decide`] says the devices settled, or `limit` passes.
pub fn settle<S: ModuleSink>(loader: &mut Loader<S>, sys: &Path, dev: &Path, limit: Duration) -> Settled {
    let start = Instant::now();
    let events = uevents::Listener::open();
    let mut modules_loaded = 0;
    let mut last: Option<Snapshot> = None;
    let mut changed = Instant::now();
    let mut usb_changed = Instant::now();
    loop {
        let snap = Snapshot::read(sys, &|m| loader.matches_loaded(m));
        let devices = sys.join("devices");
        let loaded: usize = snap
            .devices
            .iter()
            .map(|d| {
                let driver = devices.join(&d.path).join("driver");
                loader.coldplug_device(&d.modalias, &|| driver.exists())
            })
            .sum();
        if loaded > 0 {
            // New drivers made new devices: look again before deciding.
            modules_loaded += loaded;
            changed = Instant::now();
            continue;
        }
        if last.as_ref().is_none_or(|l| l.usb != snap.usb) {
            usb_changed = Instant::now();
        }
        if last.as_ref() != Some(&snap) {
            changed = Instant::now();
        }
        let clock = Clock { elapsed: start.elapsed(), unchanged: changed.elapsed(), usb_unchanged: usb_changed.elapsed() };
        if let Some(stop) = decide(&snap, clock, limit) {
            let missing = if stop == Stop::Settled { Vec::new() } else { pending(&snap) };
            finish_partition_scans(sys, dev, &snap.block);
            return Settled { modules_loaded, block_devices: names(&sys.join("block")), elapsed: start.elapsed(), stop, missing };
        }
        last = Some(snap);
        match &events {
            Some(l) => l.wait(POLL),
            None => std::thread::sleep(POLL),
        }
    }
}

/// A disk shows in sysfs before the kernel has read its partition table; opening it waits for
/// that scan (it holds the disk's open lock), so the partitions are there for the boot medium
/// lookup. Only disks of a device (not loop or ram) are opened.
fn finish_partition_scans(sys: &Path, dev: &Path, disks: &[String]) {
    for name in disks {
        if sys.join("block").join(name).join("device").exists() {
            let _ = std::fs::OpenOptions::new().read(true).custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32).open(dev.join(name));
        }
    }
}

/// Names in a folder, sorted (none when it is missing).
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|it| it.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// The last component of a symlink's target (`driver` → `ahci`).
fn link_name(link: &Path) -> Option<String> {
    let target = std::fs::read_link(link).ok()?;
    target.file_name().map(|n| n.to_string_lossy().into_owned())
}

/// The kernel's uevents, only as a wake-up: what changed is read from sysfs.
mod uevents {
    use std::os::fd::OwnedFd;
    use std::time::Duration;

    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    use rustix::net::netlink::{self, SocketAddrNetlink};
    use rustix::net::{bind, recv, socket_with, AddressFamily, RecvFlags, SocketFlags, SocketType};

    pub struct Listener(OwnedFd);

    impl Listener {
        /// `None` when the socket cannot be opened; the caller then polls.
        pub fn open() -> Option<Listener> {
            let fd = socket_with(AddressFamily::NETLINK, SocketType::RAW, SocketFlags::CLOEXEC | SocketFlags::NONBLOCK, Some(netlink::KOBJECT_UEVENT)).ok()?;
            // Group 1: the kernel's own broadcasts.
            bind(&fd, &SocketAddrNetlink::new(0, 1)).ok()?;
            Some(Listener(fd))
        }

        /// Returns after a uevent (all queued ones read) or `timeout`.
        pub fn wait(&self, timeout: Duration) {
            let ts = Timespec { tv_sec: timeout.as_secs() as _, tv_nsec: timeout.subsec_nanos() as _ };
            let mut fds = [PollFd::new(&self.0, PollFlags::IN)];
            if !matches!(poll(&mut fds, Some(&ts)), Ok(n) if n > 0) {
                return;
            }
            let mut buf = [0u8; 8192];
            while matches!(recv(&self.0, &mut buf[..], RecvFlags::DONTWAIT), Ok((n, _)) if n > 0) {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::path::PathBuf;

    /// A fake sysfs in a tempdir.
    struct Sys(tempfile::TempDir);

    impl Sys {
        fn new() -> Sys {
            let s = Sys(tempfile::tempdir().unwrap());
            for d in ["devices", "block", "bus/usb/devices", "bus/pci", "bus/virtio", "bus/scsi", "bus/usb", "class/nvme"] {
                std::fs::create_dir_all(s.root().join(d)).unwrap();
            }
            s
        }
        fn root(&self) -> PathBuf {
            self.0.path().to_path_buf()
        }
        /// A device at `path` under devices/ on `bus` with `modalias`.
        fn device(&self, path: &str, bus: &str, modalias: &str) -> &Self {
            let d = self.root().join("devices").join(path);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("modalias"), format!("{modalias}\n")).unwrap();
            let sub = if bus == "nvme" { "class/nvme" } else { &format!("bus/{bus}") };
            symlink(self.root().join(sub), d.join("subsystem")).unwrap();
            self
        }
        fn bind(&self, path: &str, driver: &str) -> &Self {
            let drv = self.root().join("bus/drivers").join(driver);
            std::fs::create_dir_all(&drv).unwrap();
            symlink(drv, self.root().join("devices").join(path).join("driver")).unwrap();
            self
        }
        fn disk(&self, path: &str, name: &str) -> &Self {
            std::fs::create_dir_all(self.root().join("devices").join(path).join("block").join(name)).unwrap();
            std::fs::create_dir_all(self.root().join("block").join(name)).unwrap();
            self
        }
        fn nvme(&self, pci: &str, ctrl: &str, state: &str, namespaces: &[&str]) -> &Self {
            let d = self.root().join("devices").join(pci).join("nvme").join(ctrl);
            std::fs::create_dir_all(&d).unwrap();
            if !d.join("subsystem").exists() {
                symlink(self.root().join("class/nvme"), d.join("subsystem")).unwrap();
            }
            std::fs::write(d.join("state"), format!("{state}\n")).unwrap();
            for n in namespaces {
                std::fs::create_dir_all(d.join(n)).unwrap();
            }
            self
        }
        fn usb(&self, name: &str) -> &Self {
            std::fs::create_dir_all(self.root().join("bus/usb/devices").join(name)).unwrap();
            self
        }
        fn snapshot(&self, loaded: &[&str]) -> Snapshot {
            // A modalias is "wanted" when it starts with one of `loaded`.
            Snapshot::read(&self.root(), &|m| loaded.iter().any(|l| m.starts_with(l)))
        }
    }

    const PIIX: &str = "pci0000:00/0000:00:01.1";
    const CD: &str = "pci0000:00/0000:00:01.1/ata2/host1/target1:0:0/1:0:0:0";
    const VIRTIO: &str = "pci0000:00/0000:00:04.0";
    const VDA: &str = "pci0000:00/0000:00:04.0/virtio1";
    const XHCI: &str = "pci0000:00/0000:00:05.0";
    const STICK: &str = "pci0000:00/0000:00:05.0/usb1/1-1/1-1:1.0";
    const STICK_DISK: &str = "pci0000:00/0000:00:05.0/usb1/1-1/1-1:1.0/host2/target2:0:0/2:0:0:0";

    fn clock(elapsed_ms: u64, unchanged_ms: u64) -> Clock {
        Clock {
            elapsed: Duration::from_millis(elapsed_ms),
            unchanged: Duration::from_millis(unchanged_ms),
            usb_unchanged: Duration::from_millis(unchanged_ms),
        }
    }
    const LIMIT: Duration = Duration::from_secs(30);

    #[test]
    fn a_cd_behind_ata_settles_once_sr_shows_its_disk() {
        let sys = Sys::new();
        sys.device(PIIX, "pci", "pci:v00008086d00007010bc01sc01").bind(PIIX, "ata_piix").device(CD, "scsi", "scsi:t-0x05");
        // sr_mod not loaded yet: nothing wants the CD, and the controller is bound.
        assert_eq!(pending(&sys.snapshot(&["pci:"])), vec![]);
        // sr_mod loaded, not bound yet.
        let snap = sys.snapshot(&["pci:", "scsi:t-0x05"]);
        assert_eq!(pending(&snap), vec![Pending::Unbound(CD.into())]);
        assert_eq!(decide(&snap, clock(200, 0), LIMIT), None);
        // Bound, its disk being added.
        sys.bind(CD, "sr");
        let snap = sys.snapshot(&["pci:", "scsi:t-0x05"]);
        assert_eq!(pending(&snap), vec![Pending::NoDisk(CD.into())]);
        sys.disk(CD, "sr0");
        let snap = sys.snapshot(&["pci:", "scsi:t-0x05"]);
        assert_eq!(snap.block, ["sr0"]);
        // Settled at once: no quiet window.
        assert_eq!(decide(&snap, clock(300, 0), LIMIT), Some(Stop::Settled));
    }

    #[test]
    fn virtio_blk_settles_when_bound_with_its_disk() {
        let sys = Sys::new();
        sys.device(VIRTIO, "pci", "pci:v00001AF4d00001001").bind(VIRTIO, "virtio-pci").device(VDA, "virtio", "virtio:d00000002v00001AF4");
        assert_eq!(pending(&sys.snapshot(&["pci:", "virtio:"])), vec![Pending::Unbound(VDA.into())]);
        sys.bind(VDA, "virtio_blk");
        assert_eq!(pending(&sys.snapshot(&["pci:", "virtio:"])), vec![Pending::NoDisk(VDA.into())]);
        sys.disk(VDA, "vda");
        assert_eq!(decide(&sys.snapshot(&["pci:", "virtio:"]), clock(100, 0), LIMIT), Some(Stop::Settled));
    }

    #[test]
    fn nvme_waits_for_a_live_controller_with_a_namespace() {
        let sys = Sys::new();
        let pci = "pci0000:00/0000:00:06.0";
        sys.device(pci, "pci", "pci:v00001B36d00000010bc01sc08i02").bind(pci, "nvme");
        sys.nvme(pci, "nvme0", "connecting", &[]);
        let snap = sys.snapshot(&["pci:"]);
        assert_eq!(pending(&snap), vec![Pending::Nvme(format!("{pci}/nvme/nvme0"))]);
        assert_eq!(decide(&snap, clock(500, 100), LIMIT), None);
        std::fs::write(sys.root().join("devices").join(pci).join("nvme/nvme0/state"), "live\n").unwrap();
        assert_eq!(pending(&sys.snapshot(&["pci:"])).len(), 1, "live, but no namespace yet");
        sys.nvme(pci, "nvme0", "live", &["nvme0n1"]);
        assert_eq!(decide(&sys.snapshot(&["pci:"]), clock(600, 0), LIMIT), Some(Stop::Settled));
    }

    #[test]
    fn usb_waits_for_enumeration_and_for_the_sticks_disk() {
        let sys = Sys::new();
        sys.device(XHCI, "pci", "pci:v00001B36d0000000Dbc0Csc03i30").bind(XHCI, "xhci_hcd").usb("usb1").usb("1-0:1.0");
        let snap = sys.snapshot(&["pci:", "usb:"]);
        assert_eq!(pending(&snap), vec![]);
        // A host controller: the USB devices must hold still first.
        assert_eq!(decide(&snap, clock(300, 300), LIMIT), None);
        assert_eq!(decide(&snap, clock(1200, 1000), LIMIT), Some(Stop::Settled), "no stick: one quiet second");
        // A stick: usb-storage bound, its disk comes after delay_use.
        sys.usb("1-1").usb("1-1:1.0").device(STICK, "usb", "usb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00").bind(STICK, "usb-storage");
        let snap = sys.snapshot(&["pci:", "usb:"]);
        assert_eq!(pending(&snap), vec![Pending::UsbStorage(STICK.into())]);
        assert_eq!(decide(&snap, clock(2000, 1600), LIMIT), None, "no stall for USB storage");
        assert_eq!(decide(&snap, clock(10_000, 5000), LIMIT), Some(Stop::UsbStorageWait));
        sys.device(STICK_DISK, "scsi", "scsi:t-0x00").bind(STICK_DISK, "sd").disk(STICK_DISK, "sda");
        let snap = sys.snapshot(&["pci:", "usb:", "scsi:"]);
        assert_eq!(pending(&snap), vec![]);
        assert_eq!(decide(&snap, clock(2500, 1000), LIMIT), Some(Stop::Settled));
    }

    #[test]
    fn a_driver_that_never_binds_stalls_and_the_limit_ends_everything() {
        let sys = Sys::new();
        let nic = "pci0000:00/0000:00:03.0";
        sys.device(nic, "pci", "pci:v00008086d0000100Ebc02sc00");
        let snap = sys.snapshot(&["pci:"]);
        assert_eq!(decide(&snap, clock(1000, 1000), LIMIT), None);
        assert_eq!(decide(&snap, clock(2000, 1500), LIMIT), Some(Stop::Stalled));
        assert_eq!(decide(&snap, clock(30_000, 0), LIMIT), Some(Stop::TimeLimit));
        // A device on a bus that binds through another device (ACPI) is not waited for.
        let sys = Sys::new();
        sys.device("LNXSYSTM:00/PNP0A03:00", "acpi", "acpi:PNP0A03:");
        assert_eq!(decide(&sys.snapshot(&["acpi:"]), clock(0, 0), LIMIT), Some(Stop::Settled));
    }

    #[test]
    fn every_device_but_the_virtual_ones_is_read() {
        let sys = Sys::new();
        sys.device(PIIX, "pci", "pci:a").device(CD, "scsi", "scsi:t-0x05").device("virtual/misc/x", "misc", "misc:x");
        let snap = sys.snapshot(&[]);
        let found: Vec<&str> = snap.devices.iter().map(|d| d.modalias.as_str()).collect();
        // Sorted by path: the controller before the devices behind it.
        assert_eq!(found, ["pci:a", "scsi:t-0x05"]);
    }
}
