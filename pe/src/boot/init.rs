//! PID 1: bring the machine up, find the disks, then hand over to the chosen front end.
//! It never panics out and never exits: a fatal error is shown on every console, and the PE
//! waits for a key to reboot.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;

use super::cmdline::Params;
use super::console::Consoles;
use super::modules::{Kernel, Loader, ModuleIndex};
use super::{children, mounts, power, settle};

/// How long driver loading may take before the PE goes on with what it has.
const SETTLE_LIMIT: Duration = Duration::from_secs(30);
/// Where the PE keeps what it found, for the front ends.
pub const INVENTORY_PATH: &str = "/run/inplace/inventory.json";

/// Exit codes a front end uses to ask PID 1 to end the PE.
pub const EXIT_POWER_OFF: i32 = 10;
pub const EXIT_REBOOT: i32 = 11;

static CONSOLES: OnceLock<Arc<Consoles>> = OnceLock::new();

pub fn run() -> ! {
    std::panic::set_hook(Box::new(|info| {
        if let Some(c) = CONSOLES.get() {
            c.line(&format!("inplace: internal error: {info}"));
        }
    }));
    let outcome = std::panic::catch_unwind(boot);
    let consoles = CONSOLES.get().cloned().unwrap_or_else(|| Arc::new(Consoles::open()));
    let message = match outcome {
        Ok(Ok(never)) => match never {},
        Ok(Err(e)) => format!("{e:#}"),
        Err(_) => "internal error (see the message above); this is a bug in inplace".to_string(),
    };
    fatal(&consoles, &message)
}

/// Shows a fatal error on every console, waits for a key, reboots.
fn fatal(consoles: &Consoles, message: &str) -> ! {
    consoles.line("");
    consoles.line(&format!("inplace: FATAL: {message}"));
    consoles.line("inplace: the PE stopped before changing any disk. Note the message above, then press any key to reboot.");
    consoles.wait_key();
    power::restart()
}

enum Never {}

fn boot() -> anyhow::Result<Never> {
    mounts::mount_all().context("the PE could not mount its pseudo-filesystems; the kernel may lack devtmpfs")?;
    let consoles = CONSOLES.get_or_init(|| Arc::new(Consoles::open())).clone();
    let params = Params::parse(&std::fs::read_to_string("/proc/cmdline").unwrap_or_default());
    let release = rustix::system::uname().release().to_string_lossy().into_owned();
    consoles.line(&format!("inplace: {} starting on kernel {release}", env!("CARGO_PKG_VERSION")));
    children::start_reaper();

    let moddir = Path::new("/lib/modules").join(&release);
    let index = ModuleIndex::open(&moddir).with_context(|| {
        format!("no module index for kernel {release}: the initramfs does not match the kernel; rebuild both with scripts/build-pe")
    })?;
    let proc_modules = std::fs::read_to_string("/proc/modules").unwrap_or_default();
    let mut loader = Loader::new(index, Kernel, &proc_modules);
    let settled = settle::settle(&mut loader, Path::new("/sys"), SETTLE_LIMIT);
    consoles.line(&format!(
        "inplace: drivers: {} modules loaded in {:.1} s; block devices: {}",
        settled.modules_loaded,
        settled.elapsed.as_secs_f64(),
        if settled.block_devices.is_empty() { "none".to_string() } else { settled.block_devices.join(" ") }
    ));
    if settled.timed_out {
        consoles.line("inplace: warning: devices were still appearing when the wait ended; some disks may be missing");
    }
    for (module, why) in &loader.failed {
        consoles.line(&format!("inplace: warning: module {module} did not load: {why}"));
    }

    let inventory = crate::disk::scan_system(Path::new("/sys"), Path::new("/dev"));
    let json = serde_json::to_string_pretty(&inventory)?;
    std::fs::create_dir_all("/run/inplace")?;
    std::fs::write(INVENTORY_PATH, &json)?;
    consoles.line(&format!("inplace: found {} disk(s)", inventory.disks.len()));
    if let Some(up) = uptime() {
        consoles.line(&format!("inplace: {up:.2} s since kernel start"));
    }
    consoles.line("inplace: ready");

    match params.action() {
        "inspect" => {
            consoles.line("inplace: inventory begin");
            for line in json.lines() {
                consoles.line(line);
            }
            consoles.line("inplace: inventory end");
            power::power_off()
        }
        "tui" => run_console_ui(&consoles),
        other => anyhow::bail!(
            "unknown inplace.action={other:?} on the kernel command line; use inplace.action=tui or inplace.action=inspect"
        ),
    }
}

/// Runs the TUI on tty1 as a child process and acts on how it ends. A crashed TUI is restarted.
fn run_console_ui(consoles: &Consoles) -> anyhow::Result<Never> {
    let exe = std::env::current_exe().unwrap_or_else(|_| "/init".into());
    for attempt in 1.. {
        let child = std::process::Command::new(&exe)
            .args(["console-ui", "--tty", "/dev/tty1", "--inventory", INVENTORY_PATH])
            .spawn()
            .context("starting the TUI")?;
        match children::wait_exit(child.id()) {
            EXIT_POWER_OFF => power::power_off(),
            EXIT_REBOOT => power::restart(),
            code => {
                consoles.line(&format!("inplace: the TUI ended unexpectedly (exit {code}); restarting it"));
                if attempt >= 5 {
                    anyhow::bail!("the TUI keeps failing (exit {code}); boot with inplace.action=inspect to see the inventory on the console");
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
    unreachable!()
}

fn uptime() -> Option<f64> {
    std::fs::read_to_string("/proc/uptime").ok()?.split_whitespace().next()?.parse().ok()
}
