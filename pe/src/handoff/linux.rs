//! The Linux hand-off: the static agent at `/usr/local/lib/inplace/inplace`, the oneshot unit
//! `inplace-restore.service` enabled through a `multi-user.target.wants` link, and
//! `/var/lib/inplace/job.json` naming the job. On the first boot the unit runs the restore
//! before `systemd-user-sessions.service` (so before every getty and display manager); the
//! agent disables the unit once the restore is complete, so a cut restore runs again at the
//! next boot.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::disk::attach::Attached;
use crate::disk::mount::Mounted;
use crate::error::{Error, Result, Written};
use crate::progress::{Cancel, Sink};
use crate::step::Step;

pub const AGENT: &str = "usr/local/lib/inplace/inplace";
pub const UNIT_NAME: &str = "inplace-restore.service";
pub const UNIT: &str = "etc/systemd/system/inplace-restore.service";
pub const WANTS: &str = "etc/systemd/system/multi-user.target.wants/inplace-restore.service";
pub const JOB: &str = "var/lib/inplace/job.json";

/// The unit file. `ExecStart` runs the agent's first-boot restore.
pub const UNIT_TEXT: &str = "\
[Unit]
Description=inplace: put the migrated user files and settings back
After=local-fs.target
Before=systemd-user-sessions.service display-manager.service getty.target
ConditionPathExists=/usr/local/lib/inplace/inplace

[Service]
Type=oneshot
ExecStart=/usr/local/lib/inplace/inplace restore --first-boot
TimeoutStartSec=infinity
StandardOutput=journal
StandardError=journal

[Install]
WantedBy=multi-user.target
";

/// Sends the report's spool (`inplace report send --first-boot`) once the network is up, after
/// the restore; installed when the preset has a `[report]` table. It runs again every 30 s
/// while the collector cannot be reached, and at later boots, until everything is sent.
pub const REPORT_UNIT_NAME: &str = "inplace-report.service";
pub const REPORT_UNIT: &str = "etc/systemd/system/inplace-report.service";
pub const REPORT_WANTS: &str = "etc/systemd/system/multi-user.target.wants/inplace-report.service";
pub const REPORT_UNIT_TEXT: &str = "\
[Unit]
Description=inplace: send the migration's events to the collector
Wants=network-online.target
After=network-online.target inplace-restore.service
ConditionPathExists=/var/lib/inplace/report
StartLimitIntervalSec=0

[Service]
Type=oneshot
ExecStart=/usr/local/lib/inplace/inplace report send --first-boot
Restart=on-failure
RestartSec=30
StandardOutput=journal
StandardError=journal

[Install]
WantedBy=multi-user.target
";

/// The new OS's root partition on the laid-down disk.
#[derive(Debug, Clone)]
pub struct Target {
    pub disk: PathBuf,
    pub number: u32,
    pub start: u64,
    pub size: u64,
    /// The filesystem the kernel mounts it as (`ext4`).
    pub fs: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub root_partition: u32,
    pub written: Vec<String>,
}

fn put_report_unit(root: &Path) -> std::result::Result<(), String> {
    let path = root.join(REPORT_UNIT);
    fs::write(&path, REPORT_UNIT_TEXT).map_err(|e| format!("writing /{REPORT_UNIT}: {e}"))?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).map_err(|e| format!("/{REPORT_UNIT}: {e}"))
}

#[derive(Serialize)]
struct JobPointer<'a> {
    job_id: &'a str,
    agent: &'a str,
    unit: &'a str,
}

/// Installs the agent (`agent`, which must be statically linked) and the unit into the root
/// filesystem of `target`. Safe to run again: every file is rewritten.
pub fn hand_off(target: &Target, agent: &Path, job_id: &str, report: bool, mount_under: &Path, sink: &dyn Sink, cancel: &Cancel) -> Result<Report> {
    let refuse = |p: String| Error::refused(Step::HandOff, p).written(Written::Disk);
    let io = |p: String| Error::io(Step::HandOff, p).written(Written::Disk);
    let bytes = fs::read(agent).map_err(|e| refuse(format!("the restore agent {} cannot be read: {e}", agent.display())))?;
    super::elf::check_static(&bytes).map_err(|why| {
        refuse(format!("the restore agent {} cannot run in the new OS: {why}; use the PE's static build of inplace", agent.display()))
    })?;
    cancel.check(Step::HandOff, Written::Disk)?;
    let device = Attached::partition(&target.disk, target.number, target.start, target.size)
        .map_err(|e| io(format!("partition {} of {}: {e}", target.number, target.disk.display())))?;
    let root = Mounted::new(device, &target.fs, mount_under, "newroot").map_err(|e| io(e.to_string()))?;
    sink.log(&format!("mounted the new OS's root (partition {}) to hand off", target.number));
    let dir = root.dir.clone();
    if !dir.join("etc/os-release").exists() && !dir.join("usr/lib/os-release").exists() {
        return Err(refuse(format!("partition {} of the new image holds no Linux root (no /etc/os-release)", target.number)));
    }
    if !["lib/systemd/systemd", "usr/lib/systemd/systemd"].iter().any(|p| dir.join(p).exists()) {
        return Err(refuse(format!(
            "the new OS on partition {} has no systemd, which runs the first-boot restore; use an image of a systemd-based Linux",
            target.number
        )));
    }
    let mut written = Vec::new();
    let mut put = |rel: &str, data: &[u8], mode: u32| -> std::result::Result<(), String> {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| format!("creating /{}: {e}", parent.strip_prefix(&dir).unwrap_or(parent).display()))?;
        }
        let tmp = path.with_extension("inplace-new");
        fs::write(&tmp, data).map_err(|e| format!("writing /{rel}: {e}"))?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(mode)).map_err(|e| format!("/{rel}: {e}"))?;
        fs::rename(&tmp, &path).map_err(|e| format!("writing /{rel}: {e}"))?;
        written.push(format!("/{rel}"));
        Ok(())
    };
    let pointer = serde_json::to_vec_pretty(&JobPointer { job_id, agent: &format!("/{AGENT}"), unit: UNIT_NAME }).unwrap_or_default();
    put(AGENT, &bytes, 0o755).map_err(io)?;
    put(UNIT, UNIT_TEXT.as_bytes(), 0o644).map_err(io)?;
    put(JOB, &pointer, 0o600).map_err(io)?;
    let mut enable = |unit: &str, link: &str| -> Result<()> {
        let wants = dir.join(link);
        if let Some(parent) = wants.parent() {
            fs::create_dir_all(parent).map_err(|e| io(format!("creating /{link}: {e}")))?;
        }
        let _ = fs::remove_file(&wants);
        symlink(format!("/{unit}"), &wants).map_err(|e| io(format!("enabling the unit (/{link}): {e}")))?;
        written.push(format!("/{link}"));
        Ok(())
    };
    enable(UNIT, WANTS)?;
    if report {
        put_report_unit(&dir).map_err(io)?;
        enable(REPORT_UNIT, REPORT_WANTS)?;
        written.push(format!("/{REPORT_UNIT}"));
    }
    rustix::fs::sync();
    root.finish().map_err(|e| io(e.to_string()))?;
    if report {
        sink.log(&format!("the new OS will send the job's report once its network is up ({REPORT_UNIT_NAME})"));
    }
    sink.log(&format!("the new OS will restore on its first boot ({UNIT_NAME})"));
    Ok(Report { root_partition: target.number, written })
}
