//! The Windows hand-off, offline in the PE (`docs/windows.md`). The new C: is mounted (ntfs3,
//! or ntfs-3g on a host without it); each captured profile is copied into
//! `ProgramData\inplace\staged\<name>\` ([`stage`]); `job.json` (the agent's
//! [`inplace_agent::job::Job`]), the agent `inplace.exe`, the setup scripts
//! ([`setup_complete`]) and, with a `[report]`, the report spool are written. Nothing is written
//! under `Users\`: Windows makes each profile at its user's first logon, and the agent then
//! moves the staged files into it.

pub mod setup_complete;
pub mod stage;

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use inplace_agent::job::Job;

use self::stage::Staging;
use crate::disk::attach::Attached;
use crate::disk::mount::Mounted;
use crate::error::{Error, Result, Written};
use crate::migrate::store::{CaptureName, Store};
use crate::progress::{Cancel, Sink};
use crate::step::Step;

/// Paths in the new C:, `/`-separated (matched without regard to case).
pub const DIR: &str = "ProgramData/inplace";
pub const STAGED: &str = "ProgramData/inplace/staged";
pub const AGENT: &str = "ProgramData/inplace/inplace.exe";
pub const JOB: &str = "ProgramData/inplace/job.json";
pub const SCRIPT: &str = "ProgramData/inplace/setupcomplete.cmd";
pub const SETUP_COMPLETE: &str = "Windows/Setup/Scripts/SetupComplete.cmd";
/// Where the PE keeps the Windows agent, when it was built with one.
pub const AGENT_IN_PE: &str = "/usr/lib/inplace/inplace.exe";

/// What the Windows hand-off needs besides the disk.
pub struct Handoff<'a> {
    pub target: &'a super::Target,
    /// `inplace.exe`.
    pub agent: &'a Path,
    pub job: &'a Job,
    /// The created accounts' initial password (empty when none are created).
    pub password: &'a str,
    /// The store and its captures of Windows profiles.
    pub store: &'a Path,
    pub captures: &'a [CaptureName],
    pub mount_under: &'a Path,
    /// The report spool, when the preset has a `[report]`.
    pub report: Option<&'a ReportSpool>,
}

/// The report spool the hand-off leaves in the new C: (`ProgramData\inplace\report\<job>\`),
/// in the format of `report::spool`, for the agent's `report send`.
pub struct ReportSpool {
    pub config: Vec<u8>,
    pub state: Vec<u8>,
    pub spool: Vec<u8>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub partition: u32,
    pub staging: Staging,
    pub written: Vec<String>,
}

fn refuse(problem: String) -> Error {
    Error::refused(Step::HandOff, problem).written(Written::Disk)
}

fn io(problem: String) -> Error {
    Error::io(Step::HandOff, problem).written(Written::Disk)
}

/// `rel` under `root`, each component matched without regard to case against what is there
/// (Windows names are case-insensitive; a Linux mount of NTFS is not).
pub fn on_volume(root: &Path, rel: &str) -> PathBuf {
    let mut p = root.to_path_buf();
    for c in rel.split('/') {
        let found = fs::read_dir(&p)
            .ok()
            .and_then(|rd| rd.flatten().find(|e| e.file_name().to_str().is_some_and(|n| n.eq_ignore_ascii_case(c))));
        p = match found {
            Some(e) => p.join(e.file_name()),
            None => p.join(c),
        };
    }
    p
}

/// Stages the profiles and writes the hand-off files into the new Windows. Safe to run again:
/// every file is rewritten.
pub fn hand_off(h: &Handoff<'_>, sink: &dyn Sink, cancel: &Cancel) -> Result<Report> {
    let agent = fs::read(h.agent).map_err(|e| refuse(format!("the Windows restore agent {} cannot be read: {e}", h.agent.display())))?;
    if !agent.starts_with(b"MZ") {
        return Err(refuse(format!("{} is not a Windows program (no MZ header); the PE needs inplace.exe built for Windows", h.agent.display())));
    }
    let script = setup_complete::script(h.job, h.password).map_err(|e| refuse(e.to_string()))?;
    cancel.check(Step::HandOff, Written::Disk)?;
    let t = h.target;
    let device = Attached::partition(&t.disk, t.number, t.start, t.size).map_err(|e| io(format!("partition {} of {}: {e}", t.number, t.disk.display())))?;
    let c = Mounted::ntfs(device, h.mount_under, "newwindows").map_err(|e| io(e.to_string()))?;
    sink.log(&format!("mounted the new Windows (partition {}, {}) to stage the profiles", t.number, c.driver));
    let root = c.dir.clone();
    if !on_volume(&root, "Windows/System32").is_dir() {
        return Err(refuse(format!("partition {} of the new image holds no Windows (no \\Windows\\System32)", t.number)));
    }
    let staged = on_volume(&root, STAGED);
    fs::create_dir_all(&staged).map_err(|e| io(format!("creating {}: {e}", staged.display())))?;
    let mut store = Store::open(h.store, false).map_err(|e| e.in_step(Step::HandOff))?;
    let mut staging = Staging::default();
    for capture in h.captures {
        store.select(*capture);
        stage::stage_capture(&mut store, &staged, &mut staging, sink, cancel)?;
    }
    for l in &staging.left_out {
        sink.log(&format!("not staged: {l}"));
    }
    let mut written = Vec::new();
    let mut put = |rel: &str, data: &[u8]| -> Result<()> {
        let path = on_volume(&root, rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| io(format!("creating {}: {e}", parent.display())))?;
        }
        let tmp = path.with_extension("inplace-new");
        fs::write(&tmp, data).and_then(|_| fs::rename(&tmp, &path)).map_err(|e| io(format!("writing \\{}: {e}", rel.replace('/', "\\"))))?;
        written.push(format!("\\{}", rel.replace('/', "\\")));
        Ok(())
    };
    put(AGENT, &agent)?;
    put(JOB, &serde_json::to_vec_pretty(h.job).map_err(|e| io(e.to_string()))?)?;
    put(SCRIPT, script.as_bytes())?;
    if let Some(r) = h.report {
        use inplace_agent::reporting::spool::{CONFIG, DIR as REPORT, SPOOL, STATE};
        let dir = format!("{DIR}/{REPORT}/{}", h.job.job_id);
        put(&format!("{dir}/{CONFIG}"), &r.config)?;
        put(&format!("{dir}/{STATE}"), &r.state)?;
        put(&format!("{dir}/{SPOOL}"), &r.spool)?;
    }
    let existing = fs::read(on_volume(&root, SETUP_COMPLETE)).ok();
    if existing.is_some() {
        sink.log("the image has its own SetupComplete.cmd: inplace's block is added to it, the rest kept");
    }
    let merged = setup_complete::merged(existing.as_deref().map(String::from_utf8_lossy).as_deref());
    put(SETUP_COMPLETE, merged.as_bytes())?;
    rustix::fs::sync();
    c.finish().map_err(|e| io(e.to_string()))?;
    let users: Vec<&str> = staging.users.iter().map(|u| u.name.as_str()).collect();
    sink.log(&format!("the new Windows will restore {} at each one's first logon (SetupComplete.cmd, Active Setup)", users.join(", ")));
    Ok(Report { partition: t.number, staging, written })
}
