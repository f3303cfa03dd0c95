//! Boots the built PE (`target/pe/vmlinuz` + `initramfs.img`) in QEMU under TCG with disks on a
//! chosen controller, and collects what it prints on the serial console.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

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

/// One PE boot.
#[derive(Debug, Clone)]
pub struct Vm {
    pub boot: Boot,
    pub firmware: Firmware,
    /// Kernel parameters after the defaults (only for `Boot::Kernel`).
    pub append: String,
    pub disks: Vec<Disk>,
    pub memory_mib: u32,
    pub timeout: Duration,
    /// Lines to type on the serial console after a line containing the key appears.
    pub serial_replies: Vec<(String, String)>,
    /// HMP monitor commands (e.g. `sendkey p`) to send after a serial line containing the key.
    pub monitor_commands: Vec<(String, String)>,
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
}

impl Vm {
    pub fn new(append: &str) -> Vm {
        Vm {
            boot: Boot::Kernel,
            firmware: Firmware::Bios,
            append: append.to_string(),
            disks: Vec::new(),
            memory_mib: 1024,
            timeout: Duration::from_secs(240),
            serial_replies: Vec::new(),
            monitor_commands: Vec::new(),
        }
    }

    pub fn disk(mut self, path: &Path, controller: Controller, logical_sector_size: u32, serial: &str) -> Vm {
        self.disks.push(Disk { path: path.to_path_buf(), controller, logical_sector_size, serial: serial.to_string() });
        self
    }

    /// Boots `boot` on `firmware` instead of the kernel directly.
    pub fn booting(mut self, boot: Boot, firmware: Firmware) -> Vm {
        self.boot = boot;
        self.firmware = firmware;
        self
    }

    fn args(&self, pe: &Path, tmp: &Path) -> Vec<String> {
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
        match &self.boot {
            Boot::Kernel => {
                push(&["-kernel", &pe.join("vmlinuz").display().to_string()]);
                push(&["-initrd", &pe.join("initramfs.img").display().to_string()]);
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
                push(&["-device", "virtio-net-pci,netdev=net0,bootindex=0"]);
            }
        }
        if self.disks.iter().any(|d| d.controller == Controller::Ahci) {
            push(&["-device", "ich9-ahci,id=ahci"]);
        }
        for (i, d) in self.disks.iter().enumerate() {
            push(&["-drive", &format!("file={},if=none,id=d{i},format=raw", d.path.display())]);
            let sectors = format!("logical_block_size={0},physical_block_size={0}", d.logical_sector_size);
            let dev = match d.controller {
                Controller::VirtioBlk => format!("virtio-blk-pci,drive=d{i},serial={},{sectors}", d.serial),
                Controller::Ahci => {
                    assert_eq!(d.logical_sector_size, 512, "QEMU's AHCI disks have 512-byte sectors only");
                    format!("ide-hd,drive=d{i},bus=ahci.{i},serial={}", d.serial)
                }
                Controller::Nvme => format!("nvme,drive=d{i},serial={},{sectors}", d.serial),
            };
            push(&["-device", &dev]);
        }
        a
    }

    /// Boots and returns when QEMU exits (power off, reboot) or the time limit passes.
    pub fn run(&self) -> Run {
        let pe = pe_dir();
        let tmp = tempfile::tempdir().expect("tempdir");
        let monitor = tmp.path().join("monitor.sock");
        let args = self.args(&pe, tmp.path());
        let start = Instant::now();
        let mut child = Command::new("qemu-system-x86_64")
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting qemu-system-x86_64 (scripts/setup installs it)");
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
    let mut s = std::os::unix::net::UnixStream::connect(socket).expect("connecting to the QEMU monitor");
    s.write_all(format!("{cmd}\n").as_bytes()).expect("writing to the QEMU monitor");
    std::thread::sleep(Duration::from_millis(300));
}
