//! Boots the built PE (`target/pe/vmlinuz` + `initramfs.img`) in QEMU under TCG with disks on a
//! chosen controller, and collects what it prints on the serial console.
//!
//! It also boots installed systems: [`Vm::installed`] starts a disk on OVMF (q35, TCG) through
//! its own boot loader, and [`Vm::start`] gives a [`Session`] on the serial console, to wait for
//! the login prompt, log in, run commands and power off.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// The built PE: `$INPLACE_PE_DIR` or `target/pe`. Fails with what to run when it is missing.
pub fn pe_dir() -> PathBuf {
    let dir = std::env::var_os("INPLACE_PE_DIR").map(PathBuf::from).unwrap_or_else(|| crate::workspace().join("target/pe"));
    for f in ["vmlinuz", "initramfs.img", "inplace"] {
        assert!(dir.join(f).exists(), "{} is missing: run scripts/build-pe first", dir.join(f).display());
    }
    dir
}

/// The PE's default kernel command line, as the boot media use it (`kernel-config/cmdline`).
pub fn default_cmdline() -> String {
    let path = crate::workspace().join("kernel-config/cmdline");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display())).trim().to_string()
}

/// The storage controller a disk hangs off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Controller {
    VirtioBlk,
    Ahci,
    Nvme,
}

#[derive(Debug, Clone)]
pub struct Disk {
    pub path: PathBuf,
    pub controller: Controller,
    pub logical_sector_size: u32,
    /// Reported by the device; tests find their disk in the inventory by it.
    pub serial: String,
    /// A limit on its reads and writes from power-on (`None`: as fast as the host goes).
    pub throttle: Option<Throttle>,
}

/// A limit on a disk's I/O, in bytes a second (QEMU's block throttling: a burst of a tenth of
/// a second's worth passes at once, then requests wait their turn). It slows a step down so a
/// test can stop the machine in its middle, or makes each journal write wait so a step that
/// takes no time cannot run past the point where a test stops the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttle {
    /// Reads and writes together.
    Total(u64),
    /// Writes only; reads go at full speed.
    Writes(u64),
}

impl Throttle {
    fn drive_option(self) -> String {
        match self {
            Throttle::Total(b) => format!(",throttling.bps-total={b}"),
            Throttle::Writes(b) => format!(",throttling.bps-write={b}"),
        }
    }

    /// `bps bps_rd bps_wr iops iops_rd iops_wr` of HMP's `block_set_io_throttle`.
    fn hmp_args(this: Option<Self>) -> String {
        match this {
            Some(Throttle::Total(b)) => format!("{b} 0 0 0 0 0"),
            Some(Throttle::Writes(b)) => format!("0 0 {b} 0 0 0"),
            None => "0 0 0 0 0 0".into(),
        }
    }
}

/// What the machine boots.
#[derive(Debug, Clone, PartialEq)]
pub enum Boot {
    /// `target/pe/vmlinuz` + `initramfs.img` through QEMU's loader, with `Vm::append`.
    Kernel,
    /// An ISO as a CD.
    Cdrom(PathBuf),
    /// An image as a USB stick (xHCI, usb-storage).
    UsbStick(PathBuf),
    /// PXE through the NIC's iPXE ROM; QEMU's TFTP serves the directory, its `boot.ipxe` first.
    Pxe(PathBuf),
    /// PXE as a lab's DHCP server would start it: QEMU's user network hands out `bootfile`,
    /// and its TFTP serves `tftp` when given. On SeaBIOS the NIC's iPXE ROM boots, so `bootfile`
    /// may be an `http://` URL (a `boot.ipxe` on a web server). On OVMF the firmware's own PXE
    /// client boots, as on a real machine: the NIC has no option ROM (the iPXE of Debian's
    /// `ipxe-qemu` hands shim a wrong file size for `grubx64.efi`, which shim then refuses).
    Network { tftp: Option<PathBuf>, bootfile: String },
    /// The first attached disk, through the firmware's own boot path (an installed OS: on OVMF,
    /// its ESP's `EFI/BOOT/BOOTX64.EFI`).
    Disk,
}

/// The machine's firmware.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    /// SeaBIOS on an i440fx `pc`.
    Bios,
    /// OVMF on `q35`, Secure Boot off.
    Uefi,
    /// OVMF with Secure Boot enforced (SMM, Microsoft keys enrolled).
    UefiSecureBoot,
}

impl Firmware {
    /// What the PE prints of it after `inplace: ` (`firmware uefi secure-boot on`).
    pub fn pe_line(self) -> &'static str {
        match self {
            Firmware::Bios => "firmware bios secure-boot off",
            Firmware::Uefi => "firmware uefi secure-boot off",
            Firmware::UefiSecureBoot => "firmware uefi secure-boot on",
        }
    }
}

/// The firmware a PE's serial output reports (its `inplace: firmware …` line), if any.
pub fn reported_firmware(serial: &str) -> Option<Firmware> {
    let line = serial.lines().map(|l| l.trim_end_matches('\r')).find(|l| l.starts_with("inplace: firmware "))?;
    [Firmware::Bios, Firmware::Uefi, Firmware::UefiSecureBoot].into_iter().find(|f| line == format!("inplace: {}", f.pe_line()))
}

/// One PE boot.
#[derive(Debug, Clone)]
pub struct Vm {
    pub boot: Boot,
    pub firmware: Firmware,
    /// Kernel parameters after the defaults (only for `Boot::Kernel`).
    pub append: String,
    /// The initramfs for `Boot::Kernel`; `None`: the built PE's `initramfs.img`.
    pub initrd: Option<PathBuf>,
    pub disks: Vec<Disk>,
    pub memory_mib: u32,
    pub timeout: Duration,
    /// Lines to type on the serial console after a line containing the key appears.
    pub serial_replies: Vec<(String, String)>,
    /// HMP monitor commands (e.g. `sendkey p`) to send after a serial line containing the key.
    pub monitor_commands: Vec<(String, String)>,
    /// A virtio NIC on QEMU's user network: the guest reaches the host's loopback as 10.0.2.2
    /// (DHCP from QEMU). `Boot::Pxe` and `Boot::Network` have one anyway.
    pub user_net: bool,
    /// Records the NIC's traffic to this file (pcap; QEMU's `filter-dump`), e.g. to read the
    /// TFTP requests back with [`crate::pcap::tftp_requests`].
    pub capture: Option<PathBuf>,
    /// The NIC's MAC (QEMU's default 52:54:00:12:34:56 when `None`).
    pub mac: Option<String>,
}

/// What a boot printed and how it ended.
#[derive(Debug)]
pub struct Run {
    pub serial: String,
    /// False when the time limit killed QEMU.
    pub exited: bool,
    pub elapsed: Duration,
}

impl Run {
    /// The lines between two marker lines (exclusive), e.g. the inventory JSON.
    pub fn between(&self, begin: &str, end: &str) -> Option<String> {
        let mut out = Vec::new();
        let mut inside = false;
        for line in self.serial.lines() {
            let line = line.trim_end_matches('\r');
            if line == begin {
                inside = true;
            } else if line == end && inside {
                return Some(out.join("\n"));
            } else if inside {
                out.push(line);
            }
        }
        None
    }

    pub fn has_line(&self, wanted: &str) -> bool {
        self.serial.lines().any(|l| l.trim_end_matches('\r') == wanted)
    }

    /// The firmware the PE reported (`inplace: firmware uefi secure-boot on`).
    pub fn firmware(&self) -> Option<Firmware> {
        reported_firmware(&self.serial)
    }

    /// Asserts that the PE reported `firmware` and then reached `inplace: ready`, and prints its
    /// boot timing.
    pub fn expect_ready(&self, firmware: Firmware) {
        eprintln!("boot timing ({firmware:?}): {}", self.boot_timing());
        let line = format!("inplace: {}", firmware.pe_line());
        let at = self.serial.find(&line).unwrap_or_else(|| panic!("no `{line}` line (it said {:?}):\n{}", self.firmware(), self.serial));
        let ready = self.serial.find("inplace: ready").unwrap_or_else(|| panic!("no ready line:\n{}", self.serial));
        assert!(at < ready, "the firmware line must come before ready:\n{}", self.serial);
    }

    /// The PE's own boot timing, for the test's output (never for pass or fail): when `/init`
    /// started, how long settling the drivers took and why it stopped, and when it was ready,
    /// each from the PE's lines.
    pub fn boot_timing(&self) -> String {
        let lines: Vec<&str> = self.serial.lines().filter_map(|l| l.trim().strip_prefix("inplace: ")).collect();
        let start = lines.iter().find(|l| l.contains(" starting on kernel ")).map(|l| format!("started: {l}"));
        let settle = lines.iter().find(|l| l.starts_with("settle: ")).map(|l| l.to_string());
        // `inplace: 6.46 s since kernel start`, printed just before `inplace: ready`.
        let ready = lines
            .iter()
            .find(|l| l.ends_with(" s since kernel start") && !l.contains(" starting on kernel "))
            .map(|l| format!("ready {l}"));
        [start, settle, ready].into_iter().flatten().collect::<Vec<_>>().join(" | ")
    }
}

impl Vm {
    pub fn new(append: &str) -> Vm {
        Vm {
            boot: Boot::Kernel,
            firmware: Firmware::Bios,
            append: append.to_string(),
            initrd: None,
            disks: Vec::new(),
            memory_mib: 1024,
            timeout: Duration::from_secs(240),
            serial_replies: Vec::new(),
            monitor_commands: Vec::new(),
            user_net: false,
            capture: None,
            mac: None,
        }
    }

    /// Boots the PE's kernel with this initramfs instead of the built one (e.g. one with a
    /// preset key baked in).
    pub fn with_initrd(mut self, initrd: &Path) -> Vm {
        self.initrd = Some(initrd.to_path_buf());
        self
    }

    /// Gives the NIC this MAC (a lab's machines tell themselves apart by it).
    pub fn with_mac(mut self, mac: &str) -> Vm {
        self.mac = Some(mac.to_string());
        self
    }

    /// Records the NIC's traffic to `pcap` (see [`Vm::capture`]).
    pub fn capturing(mut self, pcap: &Path) -> Vm {
        self.capture = Some(pcap.to_path_buf());
        self
    }

    /// Adds a virtio NIC on QEMU's user network (the host's loopback is 10.0.2.2).
    pub fn with_user_net(mut self) -> Vm {
        self.user_net = true;
        self
    }

    pub fn disk(mut self, path: &Path, controller: Controller, logical_sector_size: u32, serial: &str) -> Vm {
        self.disks.push(Disk { path: path.to_path_buf(), controller, logical_sector_size, serial: serial.to_string(), throttle: None });
        self
    }

    /// Limits the I/O of the last disk added from power-on.
    pub fn throttled(mut self, throttle: Throttle) -> Vm {
        self.disks.last_mut().expect("throttled() after disk()").throttle = Some(throttle);
        self
    }

    /// Boots `boot` on `firmware` instead of the kernel directly.
    pub fn booting(mut self, boot: Boot, firmware: Firmware) -> Vm {
        self.boot = boot;
        self.firmware = firmware;
        self
    }

    /// An installed disk booting on OVMF (q35, TCG, Secure Boot off, fresh variables), 1 GiB of
    /// memory, no kernel parameters of ours: the disk's boot loader decides.
    pub fn installed(disk: &Path, controller: Controller) -> Vm {
        Vm::new("").booting(Boot::Disk, Firmware::Uefi).disk(disk, controller, 512, "installed")
    }

    fn args(&self, tmp: &Path) -> Vec<String> {
        let mut a: Vec<String> = Vec::new();
        let mut push = |items: &[&str]| a.extend(items.iter().map(|s| s.to_string()));
        let machine = match self.firmware {
            Firmware::Bios => "pc",
            Firmware::Uefi => "q35",
            Firmware::UefiSecureBoot => "q35,smm=on",
        };
        push(&["-machine", machine, "-accel", "tcg", "-nodefaults", "-no-reboot", "-display", "none", "-device", "VGA"]);
        push(&["-serial", "stdio", "-m", &self.memory_mib.to_string()]);
        push(&["-monitor", &format!("unix:{},server=on,wait=off", tmp.join("monitor.sock").display())]);
        if self.firmware != Firmware::Bios {
            let (code, vars) = match self.firmware {
                Firmware::UefiSecureBoot => ("OVMF_CODE_4M.secboot.fd", "OVMF_VARS_4M.ms.fd"),
                _ => ("OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd"),
            };
            let vars_copy = tmp.join("vars.fd");
            std::fs::copy(Path::new("/usr/share/OVMF").join(vars), &vars_copy).expect("copying the OVMF variables (scripts/setup installs ovmf)");
            if self.firmware == Firmware::UefiSecureBoot {
                push(&["-global", "driver=cfi.pflash01,property=secure,value=on"]);
            }
            push(&["-drive", &format!("if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/{code}")]);
            push(&["-drive", &format!("if=pflash,format=raw,unit=1,file={}", vars_copy.display())]);
        }
        let mac = self.mac.as_ref().map(|m| format!(",mac={m}")).unwrap_or_default();
        match &self.boot {
            Boot::Kernel => {
                let pe = pe_dir();
                push(&["-kernel", &pe.join("vmlinuz").display().to_string()]);
                let initrd = self.initrd.clone().unwrap_or_else(|| pe.join("initramfs.img"));
                push(&["-initrd", &initrd.display().to_string()]);
                push(&["-append", &format!("{} {}", default_cmdline(), self.append)]);
            }
            Boot::Cdrom(iso) => {
                push(&["-drive", &format!("file={},if=none,id=cd,format=raw,media=cdrom,readonly=on", iso.display())]);
                let bus = if self.firmware == Firmware::Bios { "ide.1" } else { "ide.2" };
                push(&["-device", &format!("ide-cd,drive=cd,bus={bus},bootindex=0")]);
            }
            Boot::UsbStick(img) => {
                push(&["-device", "qemu-xhci,id=xhci"]);
                push(&["-drive", &format!("file={},if=none,id=stick,format=raw", img.display())]);
                push(&["-device", "usb-storage,bus=xhci.0,drive=stick,bootindex=0"]);
            }
            Boot::Pxe(dir) => {
                push(&["-netdev", &format!("user,id=net0,tftp={},bootfile=boot.ipxe", dir.display())]);
                push(&["-device", &format!("virtio-net-pci,netdev=net0,bootindex=0{mac}")]);
            }
            Boot::Network { tftp, bootfile } => {
                assert!(!bootfile.contains(','), "QEMU's -netdev takes no comma in bootfile: {bootfile}");
                let tftp = tftp.as_ref().map(|d| format!(",tftp={}", d.display())).unwrap_or_default();
                push(&["-netdev", &format!("user,id=net0{tftp},bootfile={bootfile}")]);
                let rom = if self.firmware == Firmware::Bios { "" } else { ",romfile=" };
                push(&["-device", &format!("virtio-net-pci,netdev=net0,bootindex=0{rom}{mac}")]);
            }
            Boot::Disk => assert!(!self.disks.is_empty(), "Boot::Disk needs a disk"),
        }
        if self.user_net && !matches!(self.boot, Boot::Pxe(_) | Boot::Network { .. }) {
            push(&["-netdev", "user,id=net0", "-device", &format!("virtio-net-pci,netdev=net0{mac}")]);
        }
        if let Some(pcap) = &self.capture {
            assert!(
                self.user_net || matches!(self.boot, Boot::Pxe(_) | Boot::Network { .. }),
                "capturing needs a NIC: with_user_net() or a network boot"
            );
            push(&["-object", &format!("filter-dump,id=capture,netdev=net0,file={}", pcap.display())]);
        }
        if self.disks.iter().any(|d| d.controller == Controller::Ahci) {
            push(&["-device", "ich9-ahci,id=ahci"]);
        }
        for (i, d) in self.disks.iter().enumerate() {
            let limit = d.throttle.map(Throttle::drive_option).unwrap_or_default();
            push(&["-drive", &format!("file={},if=none,id=d{i},format=raw{limit}", d.path.display())]);
            let sectors = format!("logical_block_size={0},physical_block_size={0}", d.logical_sector_size);
            let boot = if self.boot == Boot::Disk && i == 0 { ",bootindex=0" } else { "" };
            let dev = match d.controller {
                Controller::VirtioBlk => format!("virtio-blk-pci,drive=d{i},serial={},{sectors}", d.serial),
                Controller::Ahci => {
                    assert_eq!(d.logical_sector_size, 512, "QEMU's AHCI disks have 512-byte sectors only");
                    format!("ide-hd,drive=d{i},bus=ahci.{i},serial={}", d.serial)
                }
                Controller::Nvme => format!("nvme,drive=d{i},serial={},{sectors}", d.serial),
            };
            push(&["-device", &format!("{dev}{boot}")]);
        }
        a
    }

    /// Starts QEMU with piped stdio; its monitor socket is in the returned temporary folder.
    fn spawn(&self) -> (tempfile::TempDir, PathBuf, Child) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let monitor = tmp.path().join("monitor.sock");
        let child = Command::new("qemu-system-x86_64")
            .args(self.args(tmp.path()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting qemu-system-x86_64 (scripts/setup installs it)");
        (tmp, monitor, child)
    }

    /// Boots and returns when QEMU exits (power off, reboot) or the time limit passes.
    pub fn run(&self) -> Run {
        let (_tmp, monitor, mut child) = self.spawn();
        let start = Instant::now();
        let stdout = child.stdout.take().expect("qemu stdout");
        let mut stdin = child.stdin.take().expect("qemu stdin");
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).split(b'\n').map_while(Result::ok) {
                if tx.send(String::from_utf8_lossy(&line).into_owned()).is_err() {
                    break;
                }
            }
        });
        let mut serial = String::new();
        let mut replies = self.serial_replies.clone();
        let mut commands = self.monitor_commands.clone();
        let exited = loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    if std::env::var_os("INPLACE_TEST_VERBOSE").is_some() {
                        eprintln!("serial: {line}");
                    }
                    for (_, text) in take_matching(&mut replies, &line) {
                        let _ = stdin.write_all(text.as_bytes());
                        let _ = stdin.flush();
                    }
                    for (_, cmd) in take_matching(&mut commands, &line) {
                        monitor_command(&monitor, &cmd);
                    }
                    serial.push_str(&line);
                    serial.push('\n');
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break true,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            if start.elapsed() > self.timeout {
                let _ = child.kill();
                break false;
            }
        };
        let _ = child.wait();
        if !exited {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            serial.push_str(&format!("\n[qemu killed after {:?}; stderr: {err}]\n", self.timeout));
        }
        Run { serial, exited, elapsed: start.elapsed() }
    }
}

fn take_matching(list: &mut Vec<(String, String)>, line: &str) -> Vec<(String, String)> {
    let (hit, keep): (Vec<_>, Vec<_>) = list.drain(..).partition(|(key, _)| line.contains(key.as_str()));
    *list = keep;
    hit
}

/// Sends one HMP command. A short pause first lets the guest finish what the trigger line began.
fn monitor_command(socket: &Path, cmd: &str) {
    std::thread::sleep(Duration::from_secs(3));
    hmp(socket, cmd).unwrap_or_else(|e| panic!("QEMU monitor command {cmd:?}: {e:#}"));
}

/// Sends one HMP command on the monitor's socket and returns as soon as QEMU has run it (its
/// prompt is back), with what it answered.
fn hmp(socket: &Path, cmd: &str) -> anyhow::Result<String> {
    use std::os::unix::net::UnixStream;
    let mut s = UnixStream::connect(socket).context("connecting to the QEMU monitor")?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut seen = Vec::new();
    let prompt = |s: &mut UnixStream, seen: &mut Vec<u8>| -> anyhow::Result<()> {
        let from = seen.len();
        let mut buf = [0u8; 1024];
        while find(&seen[from..], b"(qemu) ").is_none() {
            let n = s.read(&mut buf).context("reading from the QEMU monitor")?;
            if n == 0 {
                bail!("the QEMU monitor closed");
            }
            seen.extend_from_slice(&buf[..n]);
        }
        Ok(())
    };
    prompt(&mut s, &mut seen)?;
    let from = seen.len();
    s.write_all(format!("{cmd}\n").as_bytes()).context("writing to the QEMU monitor")?;
    prompt(&mut s, &mut seen)?;
    Ok(String::from_utf8_lossy(&seen[from..]).into_owned())
}

// ---- interactive sessions on the serial console ------------------------------------------------

/// Serial bytes so far and whether the console closed (QEMU exited), with a condition variable
/// signalled on every change.
type Console = Arc<(Mutex<(Vec<u8>, bool)>, Condvar)>;

/// A running machine with its serial console: everything it printed so far, and a cursor that
/// [`Session::wait_for`] moves past each match, so a later wait never matches older output.
/// Dropping it kills QEMU.
pub struct Session {
    child: Child,
    stdin: ChildStdin,
    out: Console,
    cursor: usize,
    started: Instant,
    monitor: PathBuf,
    markers: u32,
    _tmp: tempfile::TempDir,
}

/// A command's output (lines between the markers, `\r` removed) and its exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    pub output: String,
    pub status: i32,
}

/// How a session ended.
#[derive(Debug)]
pub struct Ended {
    /// QEMU's exit status; `None` when it had to be killed.
    pub status: Option<ExitStatus>,
    /// From start to exit.
    pub elapsed: Duration,
    pub serial: String,
}

impl Vm {
    /// Starts the machine and returns at once with a [`Session`] on its serial console.
    /// `timeout` is not enforced here: every wait of the session takes its own.
    pub fn start(&self) -> Session {
        let (tmp, monitor, mut child) = self.spawn();
        let started = Instant::now();
        let mut stdout = child.stdout.take().expect("qemu stdout");
        let stdin = child.stdin.take().expect("qemu stdin");
        let out: Console = Arc::new((Mutex::new((Vec::new(), false)), Condvar::new()));
        let writer = Arc::clone(&out);
        let verbose = std::env::var_os("INPLACE_TEST_VERBOSE").is_some();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                let n = stdout.read(&mut buf).unwrap_or(0);
                let (lock, cv) = &*writer;
                let mut g = lock.lock().unwrap();
                if n == 0 {
                    g.1 = true;
                    cv.notify_all();
                    return;
                }
                if verbose {
                    eprint!("{}", String::from_utf8_lossy(&buf[..n]));
                }
                g.0.extend_from_slice(&buf[..n]);
                cv.notify_all();
            }
        });
        Session { child, stdin, out, cursor: 0, started, monitor, markers: 0, _tmp: tmp }
    }
}

impl Session {
    /// Time since QEMU started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Everything the serial console printed so far.
    pub fn serial(&self) -> String {
        String::from_utf8_lossy(&self.out.0.lock().unwrap().0).into_owned()
    }

    /// The last `n` bytes of the serial output, for error messages.
    pub fn tail(&self, n: usize) -> String {
        let g = self.out.0.lock().unwrap();
        String::from_utf8_lossy(&g.0[g.0.len().saturating_sub(n)..]).into_owned()
    }

    /// Waits until one of `needles` appears after the cursor; returns its index and the text from
    /// the cursor to the end of the match, and moves the cursor there. Fails when the time runs
    /// out or QEMU exits first.
    pub fn wait_for_any(&mut self, needles: &[&str], timeout: Duration) -> anyhow::Result<(usize, String)> {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.out;
        let mut g = lock.lock().unwrap();
        loop {
            let hay = &g.0[self.cursor.min(g.0.len())..];
            let hit = needles
                .iter()
                .enumerate()
                .filter_map(|(i, n)| find(hay, n.as_bytes()).map(|at| (at + n.len(), i)))
                .min();
            if let Some((end, i)) = hit {
                let text = String::from_utf8_lossy(&hay[..end]).into_owned();
                self.cursor += end;
                return Ok((i, text));
            }
            let closed = g.1;
            let now = Instant::now();
            if closed || now >= deadline {
                let tail = String::from_utf8_lossy(&g.0[g.0.len().saturating_sub(4000)..]).into_owned();
                let why = if closed { "QEMU exited" } else { "timed out" };
                bail!("{why} after {:.1?} waiting for {needles:?}; serial ends with:\n{tail}", self.started.elapsed());
            }
            g = cv.wait_timeout(g, deadline - now).unwrap().0;
        }
    }

    /// Waits for a whole line after the cursor that `accept` takes (given without its line
    /// end); returns it and moves the cursor past it.
    pub fn wait_for_line(&mut self, accept: impl Fn(&str) -> bool, timeout: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.wait_for("\n", left)?;
            let line = line.trim_end_matches(['\r', '\n']);
            if accept(line) {
                return Ok(line.to_string());
            }
        }
    }

    /// [`Session::wait_for_any`] with one needle.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> anyhow::Result<String> {
        Ok(self.wait_for_any(&[needle], timeout)?.1)
    }

    /// Types `text` on the serial console.
    pub fn send(&mut self, text: &str) {
        let _ = self.stdin.write_all(text.as_bytes());
        let _ = self.stdin.flush();
    }

    /// Waits for getty's `login:` prompt; returns the time from start to the prompt (the boot
    /// time).
    pub fn wait_for_login_prompt(&mut self, timeout: Duration) -> anyhow::Result<Duration> {
        self.wait_for("login: ", timeout)?;
        Ok(self.elapsed())
    }

    /// Logs in on the serial getty (whose `login:` prompt must be showing, or about to) with
    /// `user` and `password`, and waits until the shell runs commands. Fails on "Login
    /// incorrect".
    pub fn login(&mut self, user: &str, password: &str, timeout: Duration) -> anyhow::Result<()> {
        self.send(&format!("{user}\n"));
        self.wait_for("Password: ", timeout).context("no password prompt")?;
        self.send(&format!("{password}\n"));
        // The shell's prompt ends in `$ ` or `# `; a wrong password brings the login prompt back.
        let (i, text) = self.wait_for_any(&["Login incorrect", "$ ", "# "], timeout)?;
        if i == 0 {
            bail!("login as {user} failed:\n{text}");
        }
        // Plain output from here on: no colours, no bracketed paste, no pager.
        let setup = self.run("export TERM=dumb PAGER=cat SYSTEMD_PAGER=cat; bind 'set enable-bracketed-paste off' 2>/dev/null; true", timeout)?;
        if setup.status != 0 {
            bail!("the shell of {user} did not run a command: {setup:?}");
        }
        Ok(())
    }

    /// Runs `cmd` (one line of shell) in the logged-in shell and returns what it printed
    /// (between unique marker lines, `\r` removed) and its exit status. The markers are printed by `printf` from split
    /// arguments, so the echo of the typed line never looks like one.
    pub fn run(&mut self, cmd: &str, timeout: Duration) -> anyhow::Result<CommandOutput> {
        self.markers += 1;
        let n = self.markers;
        assert!(!cmd.contains('\n'), "one command line at a time: {cmd:?}");
        self.send(&format!("printf '@@%s-%d@@\\n' BEGIN {n}; {{ {cmd}; }}; printf '@@%s-%d@@ %d\\n' END {n} $?\n"));
        let begin = format!("@@BEGIN-{n}@@");
        self.wait_for_any(&[&format!("{begin}\r\n"), &format!("{begin}\n")], timeout)?;
        let text = self.wait_for(&format!("@@END-{n}@@ "), timeout)?;
        let status_line = self.wait_for("\n", timeout)?;
        let status: i32 = status_line.trim().parse().with_context(|| format!("exit status of {cmd:?}: {status_line:?}"))?;
        let body = text.strip_suffix(&format!("@@END-{n}@@ ")).unwrap_or(&text).replace('\r', "");
        Ok(CommandOutput { output: body, status })
    }

    /// Sends one HMP command to QEMU's monitor (e.g. `system_powerdown`, `sendkey ctrl-alt-delete`)
    /// and returns once QEMU has run it.
    pub fn monitor(&self, cmd: &str) -> anyhow::Result<()> {
        self.monitor_done(cmd).map(drop)
    }

    /// Limits the I/O of attached disk number `index` (in the order the disks were added) from
    /// now on; `None` lifts the limit.
    pub fn throttle_disk(&self, index: usize, throttle: Option<Throttle>) -> anyhow::Result<()> {
        let out = self.monitor_done(&format!("block_set_io_throttle d{index} {}", Throttle::hmp_args(throttle)))?;
        if out.to_lowercase().contains("error") {
            bail!("QEMU refused the throttle for d{index}: {out}");
        }
        Ok(())
    }

    /// Sends one HMP command and returns as soon as QEMU has run it (its prompt is back), with
    /// what it answered.
    pub fn monitor_done(&self, cmd: &str) -> anyhow::Result<String> {
        hmp(&self.monitor, cmd)
    }

    /// Power cut: kills QEMU at once (nothing the guest had not handed to QEMU reaches the
    /// disk) and returns what the console printed.
    pub fn cut(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (lock, cv) = &*self.out;
        let g = lock.lock().unwrap();
        let _ = cv.wait_timeout_while(g, Duration::from_secs(2), |g| !g.1).unwrap();
        self.serial()
    }

    /// Waits for QEMU to exit on its own (the guest powered off or rebooted: `-no-reboot`).
    /// Kills it when the time runs out, and says so.
    pub fn wait_exit(mut self, timeout: Duration) -> anyhow::Result<Ended> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().context("waiting for QEMU")? {
                // Let the reader thread drain what is left.
                let (lock, cv) = &*self.out;
                let g = lock.lock().unwrap();
                let _ = cv.wait_timeout_while(g, Duration::from_secs(2), |g| !g.1).unwrap();
                return Ok(Ended { status: Some(status), elapsed: self.elapsed(), serial: self.serial() });
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!("QEMU did not exit within {timeout:?}; serial ends with:\n{}", self.tail(4000));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Powers off through ACPI (the power button, which systemd-logind handles) and waits for
    /// QEMU to exit.
    pub fn poweroff(self, timeout: Duration) -> anyhow::Result<Ended> {
        self.monitor("system_powerdown")?;
        self.wait_exit(timeout)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}
