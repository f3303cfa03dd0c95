//! PID 1: bring the machine up, find the disks, then hand over to the chosen front end.
//! It never panics out and never exits: a fatal error is shown on every console, and the PE
//! waits for a key to reboot.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;

use super::cmdline::Params;
use super::console::Consoles;
use super::firmware::Firmware;
use super::modules::{Kernel, Loader, ModuleIndex};
use super::preset_source::{self, Found};
use super::preset_fetch;
use super::{children, medium, mounts, power, report, settle, shell};
use super::log::ConsoleLog;
use crate::progress::Sink;
use crate::ui::tui::{EXIT_POWER_OFF, EXIT_REBOOT, EXIT_SHELL};
use crate::net;
use crate::preset::Finish;

/// How long driver loading may take before the PE goes on with what it has.
const SETTLE_LIMIT: Duration = Duration::from_secs(30);
/// Where the PE keeps what it found, for the front ends.
pub const INVENTORY_PATH: &str = "/run/inplace/inventory.json";
/// This run's events, one JSON object a line; copied into the run's report.
pub const EVENTS_PATH: &str = "/run/inplace/events.jsonl";
const MEDIUM_MOUNT: &str = "/run/inplace/medium";
const CONFIG_MOUNT: &str = "/run/inplace/config";
const NET_TIMEOUT: Duration = Duration::from_secs(30);

static CONSOLES: OnceLock<Arc<Consoles>> = OnceLock::new();

pub fn run() -> ! {
    std::panic::set_hook(Box::new(|info| {
        if let Some(c) = CONSOLES.get() {
            c.line(&format!("inplace: internal error: {info}"));
        }
    }));
    let outcome = std::panic::catch_unwind(boot);
    let consoles = CONSOLES.get().cloned().unwrap_or_else(|| Arc::new(Consoles::open()));
    let (message, untouched) = match outcome {
        Ok(Ok(never)) => match never {},
        Ok(Err(e)) => match e.downcast_ref::<crate::error::Error>() {
            // A job's error says itself what it had written.
            Some(engine) => (crate::ui::words::error(engine), false),
            None => (format!("{e:#}"), true),
        },
        Err(_) => ("internal error (see the message above); this is a bug in inplace".to_string(), true),
    };
    fatal(&consoles, &message, untouched)
}

/// Shows a fatal error on every console, waits for a key, reboots.
fn fatal(consoles: &Consoles, message: &str, untouched: bool) -> ! {
    consoles.line("");
    consoles.line(&format!("inplace: FATAL: {message}"));
    let what = if untouched { "the PE stopped before changing any disk" } else { "the PE stopped" };
    consoles.line(&format!("inplace: {what}. Note the message above, then press any key to reboot."));
    consoles.wait_key();
    power::restart()
}

enum Never {}

fn boot() -> anyhow::Result<Never> {
    mounts::mount_all().context("the PE could not mount its pseudo-filesystems; the kernel may lack devtmpfs")?;
    let consoles = CONSOLES.get_or_init(|| Arc::new(Consoles::open())).clone();
    let events = ConsoleLog::new(consoles.clone(), Path::new(EVENTS_PATH));
    let params = Params::parse(&std::fs::read_to_string("/proc/cmdline").unwrap_or_default());
    let release = rustix::system::uname().release().to_string_lossy().into_owned();
    let since = uptime().map(|u| format!(", {u:.2} s since kernel start")).unwrap_or_default();
    events.log(&format!("{} starting on kernel {release}{since}", env!("CARGO_PKG_VERSION")));
    set_codepage(&events, params.get("codepage"));
    children::start_reaper();

    let mut loader = load_drivers(&events, &release)?;
    let firmware = read_firmware(&mut loader);
    events.log(&firmware.line());

    // The boot medium and the stick's config partition, then the preset.
    let media = medium::find(Path::new("/sys"), Path::new("/dev"));
    let medium_root = media.boot.as_ref().and_then(|dev| {
        loader.load_fs("iso9660");
        mount_or_warn(&events, dev, Path::new(MEDIUM_MOUNT), "iso9660", true)
    });
    let config_root = media.config.as_ref().and_then(|dev| {
        loader.load_fs("vfat");
        for nls in ["nls_cp437", "nls_ascii", "nls_utf8"] {
            loader.load(nls);
        }
        mount_or_warn(&events, dev, Path::new(CONFIG_MOUNT), "vfat", false)
    });
    let cmdline_preset = params.get("preset");
    let mut network_up = false;
    if cmdline_preset.is_some_and(|p| p.starts_with("http://") || p.starts_with("https://")) || params.get("net") == Some("dhcp") {
        bring_up_network(&events)?;
        network_up = true;
    }
    let preset_key = preset_fetch::baked_key(Path::new(preset_fetch::KEY_IN_PE)).map_err(in_words)?;
    let found = preset_source::load(cmdline_preset, config_root.as_deref(), medium_root.as_deref(), &|url| {
        preset_fetch::fetch(url, preset_key.as_ref(), &events).map_err(in_words)
    })
    .context("the preset could not be used, so nothing was written to any disk; fix the preset and boot again")?;
    let preset = match found {
        Found::Preset { preset, source } => {
            events.log(&format!("preset {}", preset.name));
            events.log(&format!("preset read from {source}"));
            Some(preset)
        }
        Found::None => None,
    };
    if params.get("codepage").is_none() {
        if let Some(cp) = preset.as_ref().and_then(|p| p.codepage) {
            set_codepage(&events, Some(&cp.to_string()));
        }
    }
    if !network_up && preset.as_ref().and_then(|p| p.image.as_ref()).is_some_and(|i| i.is_remote()) {
        bring_up_network(&events)?;
        network_up = true;
    }
    if !network_up && preset.as_ref().is_some_and(|p| p.report.is_some()) {
        // Reports never stop a job: without a network they wait in the spool.
        if let Err(e) = bring_up_network(&events) {
            events.warn(&format!("report: no network ({e:#}); the events wait in the spool"));
        }
    }

    let inventory = crate::inventory::scan_system(Path::new("/sys"), Path::new("/dev"));
    let json = serde_json::to_string_pretty(&inventory)?;
    std::fs::write(INVENTORY_PATH, &json)?;
    events.log(&format!("found {} disk(s)", inventory.disks.len()));
    if let Some(up) = uptime() {
        events.log(&format!("{up:.2} s since kernel start"));
    }
    consoles.line("inplace: ready");

    let action = params.action().to_string();
    let run = Run { firmware, preset: preset.clone(), action: action.clone(), config_root: config_root.clone() };
    match action.as_str() {
        "inspect" => {
            consoles.line("inplace: inventory begin");
            for line in json.lines() {
                consoles.line(line);
            }
            consoles.line("inplace: inventory end");
            write_report(&events, &run, &json, "inspected");
            power::power_off()
        }
        "unattended" => {
            let Some(preset) = preset else {
                anyhow::bail!("inplace.action=unattended needs a preset: put preset.toml on the stick's INPLACE partition, on the ISO (scripts/build-pe --preset FILE), or pass inplace.preset=URL")
            };
            load_job_filesystems(&mut loader);
            let env = super::unattended::env(&inventory, &media, &[config_root.clone(), medium_root.clone()], &run.firmware);
            let c = consoles.clone();
            let note = Box::new(move |m: &str| c.line(&format!("inplace: {m}")));
            let spool = config_root.as_deref().map(|r| r.join("reports/spool"));
            let result = crate::job::reporting::reported(&preset, &env, &events, spool, note, |env, sink| super::unattended::run(&preset, env, sink), |o| {
                o.as_ref().map(|o| &o.journal)
            });
            match result {
                Ok(None) => {
                    events.log("the preset names no image: this run takes inventory and leaves its report only");
                    write_report(&events, &run, &json, "surveyed");
                }
                Ok(Some(outcome)) => {
                    let j = &outcome.journal;
                    events.log(&format!("job {} on {}: {}", j.job_id, j.disk.name, j.state));
                    for s in &j.steps {
                        events.log(&format!("  {} {:.1} s, {}", s.step, s.secs, crate::units::human(s.bytes)));
                    }
                    for r in &j.resized {
                        events.log(&format!("  resized: {}", r.line()));
                    }
                    events.log("the job's part in the PE is done: boot the disk to let the new OS restore the user's files");
                    write_report(&events, &run, &json, j.state.name());
                }
                Err(e) => {
                    write_report(&events, &run, &json, "failed");
                    return Err(anyhow::Error::new(e));
                }
            }
            match preset.finish {
                Finish::Poweroff => power::power_off(),
                Finish::Reboot => power::restart(),
                Finish::Wait => {
                    let env = super::unattended::env(&inventory, &media, &[config_root.clone(), medium_root.clone()], &run.firmware);
                    serve_tui(&consoles, env, run, json)
                }
            }
        }
        "tui" => {
            write_report(&events, &run, &json, "started");
            load_job_filesystems(&mut loader);
            let env = super::unattended::env(&inventory, &media, &[config_root.clone(), medium_root.clone()], &run.firmware);
            serve_tui(&consoles, crate::job::plan::Env { unattended: false, ..env }, run, json)
        }
        other => anyhow::bail!(
            "unknown inplace.action={other:?} on the kernel command line; use inplace.action=tui, inplace.action=unattended or inplace.action=inspect"
        ),
    }
}

/// What this run is, for its report.
#[derive(serde::Serialize)]
struct Run {
    firmware: Firmware,
    preset: Option<crate::preset::Preset>,
    action: String,
    #[serde(skip)]
    config_root: Option<std::path::PathBuf>,
}

impl Run {
    /// The TUI's title-bar status: firmware and preset.
    fn status(&self) -> String {
        match &self.preset {
            Some(p) => format!("{} · preset {}", self.firmware.line(), p.name),
            None => self.firmware.line(),
        }
    }
}

/// Leaves `reports/<machine-id>-<time>/` on the stick's INPLACE partition, when there is one.
fn write_report(events: &ConsoleLog, run: &Run, inventory_json: &str, result: &str) {
    let Some(root) = run.config_root.as_deref() else { return };
    let earlier = report::earlier(root);
    if !earlier.is_empty() {
        events.log(&format!("this stick holds {} earlier report(s), the last {}", earlier.len(), earlier[earlier.len() - 1]));
    }
    let folder = report::folder_name(&report::machine_id(Path::new("/sys")), std::time::SystemTime::now());
    let summary = serde_json::json!({ "result": result, "run": run, "version": env!("CARGO_PKG_VERSION") });
    let summary = serde_json::to_vec_pretty(&summary).unwrap_or_default();
    // The events file is read last, so it holds everything up to the line below.
    events.log(&format!("report: reports/{folder} on the INPLACE partition"));
    let log = std::fs::read(EVENTS_PATH).unwrap_or_default();
    let files: [(&str, &[u8]); 3] = [("report.json", &summary), ("inventory.json", inventory_json.as_bytes()), ("events.jsonl", &log)];
    if let Err(e) = report::write(root, &folder, &files) {
        events.warn(&format!("could not write the report on the stick: {e:#}"));
    }
}

/// DHCP on the first wired interface that gets a lease.
fn bring_up_network(events: &ConsoleLog) -> anyhow::Result<()> {
    let up = net::bring_up(Path::new("/sys"), NET_TIMEOUT, &crate::progress::Silent, &crate::progress::Cancel::new()).map_err(in_words)?;
    events.log(&format!("network: {} is {}/{} via DHCP from {}", up.interface, up.lease.address, up.lease.netmask, up.lease.server));
    Ok(())
}

fn mount_or_warn(events: &ConsoleLog, dev: &Path, target: &Path, fstype: &str, read_only: bool) -> Option<std::path::PathBuf> {
    match mounts::mount_device(dev, target, fstype, read_only) {
        Ok(()) => Some(target.to_path_buf()),
        Err(e) => {
            events.warn(&format!("{e:#}"));
            None
        }
    }
}

/// Loads drivers by modalias until the devices settle.
fn load_drivers(events: &ConsoleLog, release: &str) -> anyhow::Result<Loader<Kernel>> {
    let moddir = Path::new("/lib/modules").join(release);
    let index = ModuleIndex::open(&moddir).with_context(|| {
        format!("no module index for kernel {release}: the initramfs does not match the kernel; rebuild both with scripts/build-pe")
    })?;
    let proc_modules = std::fs::read_to_string("/proc/modules").unwrap_or_default();
    let mut loader = Loader::new(index, Kernel, &proc_modules);
    let settled = settle::settle(&mut loader, Path::new("/sys"), Path::new("/dev"), SETTLE_LIMIT);
    events.log(
        &format!(
            "drivers: {} modules loaded in {:.1} s; block devices: {}",
            settled.modules_loaded,
            settled.elapsed.as_secs_f64(),
            if settled.block_devices.is_empty() { "none".to_string() } else { settled.block_devices.join(" ") }
        ),
    );
    events.log(&format!("drivers loaded: {}", loader.inserted.join(" ")));
    events.log(&format!("settle: {:.2} s, {}", settled.elapsed.as_secs_f64(), settled.stop.words()));
    if settled.stop != settle::Stop::Settled {
        let missing: Vec<String> = settled.missing.iter().map(|p| p.to_string()).collect();
        events.warn(&format!("the wait for devices ended before all appeared; some disks may be missing: {}", missing.join(", ")));
    }
    for (module, why) in &loader.failed {
        events.warn(&format!("module {module} did not load: {why}"));
    }
    Ok(loader)
}

/// UEFI or BIOS, and Secure Boot (efivarfs is a module, loaded here when the machine is UEFI).
fn read_firmware(loader: &mut Loader<Kernel>) -> Firmware {
    let efivars = Path::new("/sys/firmware/efi/efivars");
    if Path::new("/sys/firmware/efi").exists() {
        loader.load_fs("efivarfs");
        // Read-write: the lay-down adds a boot entry for the new OS.
        let _ = mounts::mount_device(Path::new("efivarfs"), efivars, "efivarfs", false);
    }
    Firmware::detect(Path::new("/sys"), efivars)
}

/// The filesystems a job mounts: the new root (hand-off; ntfs3 for a new Windows) and the
/// store's FAT32 volume (staging).
fn load_job_filesystems(loader: &mut Loader<Kernel>) {
    loader.load_fs("ext4");
    loader.load_fs("vfat");
    loader.load_fs("ntfs3");
    for nls in ["nls_cp437", "nls_ascii", "nls_utf8"] {
        loader.load(nls);
    }
}

/// The interactive job: the engine serves the TUI's requests here, in PID 1, so a TUI that dies
/// does not stop a job; the TUI draws on tty1 and says its screens on the other consoles, where
/// the job's events go as plain lines. Each request's end leaves a report on the stick.
fn serve_tui(consoles: &Consoles, env: crate::job::plan::Env, run: Run, inventory_json: String) -> anyhow::Result<Never> {
    use crate::ui::session::{self, Context, Ended, Session};
    let dir = Path::new(session::DIR);
    let session = Session::open(dir).context("making the TUI's session directory")?;
    session
        .write_context(&Context {
            env: env.clone(),
            preset: run.preset.clone(),
            status: run.status(),
            reports: run.config_root.iter().map(|_| "the stick's INPLACE partition, under reports/".to_string()).collect(),
        })
        .context("writing the TUI's session context")?;
    let others = Arc::new(Consoles::except("tty1"));
    let echo: Vec<std::path::PathBuf> = others.names().iter().map(|n| Path::new("/dev").join(n)).collect();
    std::thread::spawn(move || {
        let log = ConsoleLog::new(others, Path::new(EVENTS_PATH));
        loop {
            let result = match session::serve_one(dir, &env, &log) {
                Ended::Done { journal, .. } => journal.state.name(),
                Ended::Failed { .. } => "failed",
            };
            write_report(&log, &run, &inventory_json, result);
        }
    });
    run_console_ui(consoles, dir, &echo)
}

/// Runs the TUI on tty1 as a child process and acts on how it ends. A crashed TUI is restarted
/// and re-attaches to the session.
fn run_console_ui(consoles: &Consoles, session: &Path, echo: &[std::path::PathBuf]) -> anyhow::Result<Never> {
    let exe = std::env::current_exe().unwrap_or_else(|_| "/init".into());
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut args: Vec<std::ffi::OsString> = vec!["console-ui".into(), "--tty".into(), "/dev/tty1".into(), "--session".into(), session.into()];
        for e in echo {
            args.extend(["--echo".into(), e.into()]);
        }
        let child = std::process::Command::new(&exe).args(&args).spawn().context("starting the TUI")?;
        match children::wait_exit(child.id()) {
            EXIT_POWER_OFF => power::power_off(),
            EXIT_REBOOT => power::restart(),
            EXIT_SHELL => {
                attempt = 0;
                shell::run(consoles, Path::new("/dev/tty1"));
            }
            code => {
                consoles.line(&format!("inplace: the TUI ended unexpectedly (exit {code}); restarting it"));
                if attempt >= 5 {
                    anyhow::bail!("the TUI keeps failing (exit {code}); boot with inplace.action=inspect to see the inventory on the console");
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}

fn uptime() -> Option<f64> {
    std::fs::read_to_string("/proc/uptime").ok()?.split_whitespace().next()?.parse().ok()
}

/// An engine error with its hints in plain words, for the console's error screen.
fn in_words(e: crate::error::Error) -> anyhow::Error {
    anyhow::anyhow!(crate::ui::words::error(&e))
}

/// `inplace.codepage=N` (else the preset's `codepage`): the OEM code page of FAT labels (CP437
/// when neither says).
fn set_codepage(events: &ConsoleLog, value: Option<&str>) {
    let Some(v) = value else { return };
    match v.trim_start_matches("cp").parse::<u16>().map_err(|_| v.to_string()) {
        Ok(cp) => match crate::codepage::set(cp) {
            Ok(()) => events.log(&format!("FAT labels are read in code page {cp}")),
            Err(e) => events.warn(&format!("inplace.codepage={v}: {e}; FAT labels are read in code page 437")),
        },
        Err(v) => events.warn(&format!("inplace.codepage={v} is not a number; FAT labels are read in code page 437")),
    }
}
