//! `inplace run`, `inplace resume`: the whole job on a host, against a disk or a disk image,
//! up to and including the hand-off (the new OS restores on its first boot).

use std::path::{Path, PathBuf};

use super::front;
use crate::error::{Error, Hint, Result};
use crate::job::plan::Env;
use crate::job::run::{self, Outcome};
use crate::migrate::store::CaptureName;
use crate::net::http::HttpOptions;
use crate::preset::Preset;
use crate::step::Step;

#[derive(clap::Args)]
pub struct RunArgs {
    /// The preset that describes the job.
    #[arg(long)]
    pub preset: PathBuf,
    /// A disk or disk image the job may take (repeat for several; the preset's disk selector
    /// chooses among them).
    #[arg(long, required = true)]
    pub disk: Vec<PathBuf>,
    /// Plan and print the plan; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Go ahead although the preset does not say `confirm = false`.
    #[arg(long)]
    pub yes: bool,
    /// Events as JSON lines on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub common: Common,
    /// Simulates a power cut: `capture.2:BYTES` aborts the process after BYTES were written
    /// into the store while capturing into capture.2/.
    #[arg(long, hide = true, value_parser = parse_cut)]
    pub cut_capture: Option<(CaptureName, u64)>,
}

fn parse_cut(s: &str) -> std::result::Result<(CaptureName, u64), String> {
    let (name, bytes) = s.split_once(':').ok_or("expected CAPTURE:BYTES")?;
    let name = CaptureName::parse(name).ok_or_else(|| format!("{name:?} is not a capture's name"))?;
    Ok((name, bytes.parse().map_err(|e| format!("{bytes:?}: {e}"))?))
}

#[derive(clap::Args)]
pub struct ResumeArgs {
    /// The disk or disk image holding an unfinished job.
    #[arg(long)]
    pub disk: PathBuf,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub common: Common,
}

#[derive(clap::Args)]
pub struct Common {
    /// The static inplace program installed into the new OS as its restore agent (default:
    /// this program, which must then be the static build).
    #[arg(long)]
    pub agent: Option<PathBuf>,
    /// The Windows restore agent (inplace.exe, `scripts/build-agent`), staged into a Windows
    /// image's C: (needed for Windows images only).
    #[arg(long)]
    pub agent_windows: Option<PathBuf>,
    /// Decoder threads (default: one per CPU).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Act as a PE built with this preset key (a file of 64 hex digits, the public key
    /// `inplace image keygen` prints): every image must then be signed with it, unless the
    /// preset pins a key of its own.
    #[arg(long, value_name = "PUB")]
    pub preset_key: Option<PathBuf>,
}

/// Reads and parses a preset file.
/// Reads the preset at `path`; its `codepage`, if any, becomes the FAT labels'.
pub fn read_preset(path: &Path) -> Result<Preset> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::refused(Step::Preset, format!("reading preset {}: {e}", path.display())))?;
    let preset = Preset::parse(&text, &path.display().to_string()).map_err(|e| Error::refused(Step::Preset, e.to_string()).hint(Hint::FixPreset))?;
    if let Some(cp) = preset.codepage {
        // Known: the parse checked it.
        let _ = crate::codepage::set(cp);
    }
    Ok(preset)
}

/// The job's surroundings on a host: the disks named, relative image paths beside the preset.
pub fn host_env(disks: &[PathBuf], preset: Option<&Path>, common: &Common) -> Result<Env> {
    let preset_key = common.preset_key.as_deref().map(crate::image::create::read_public_key).transpose()?;
    let inventory = crate::inventory::inspect_paths(disks);
    let roots = preset.and_then(|p| p.parent()).map(|d| vec![if d.as_os_str().is_empty() { PathBuf::from(".") } else { d.to_path_buf() }]);
    Ok(Env {
        inventory,
        dev_dir: None,
        excluded: Vec::new(),
        image_roots: roots.unwrap_or_default(),
        agent: common.agent.clone().or_else(|| std::env::current_exe().ok()).unwrap_or_default(),
        agent_windows: common.agent_windows.clone(),
        work: std::env::temp_dir(),
        unattended: true,
        http: HttpOptions::default(),
        workers: common.workers.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)),
        efi_nvram: false,
        preset_key,
        cut_capture: None,
        reporter: None,
    })
}

pub fn run(args: RunArgs) -> anyhow::Result<i32> {
    let preset = read_preset(&args.preset)?;
    let env = Env { cut_capture: args.cut_capture, ..host_env(&args.disk, Some(&args.preset), &args.common)? };
    if args.dry_run {
        let planned = front::run(args.json, |sink, cancel| run::dry_run(&preset, &env, sink, cancel))?;
        if !args.json {
            for l in &planned.lines {
                println!("{l}");
            }
            println!("dry run: nothing was written");
        }
        return Ok(0);
    }
    if preset.confirm != Some(false) && !args.yes {
        return Err(Error::refused(
            Step::Plan,
            format!("preset {} does not say confirm = false, so the job does not write without being told", args.preset.display()),
        )
        .advice("add confirm = false to the preset, or pass --yes after checking the plan with --dry-run")
        .into());
    }
    let note = Box::new(|m: &str| eprintln!("inplace: {m}"));
    let outcome = front::run(args.json, |sink, cancel| {
        crate::job::reporting::reported(&preset, &env, sink, None, note, |env, sink| run::run(&preset, env, sink, cancel), |o| Some(&o.journal))
    });
    let outcome = outcome?;
    summary(&outcome, args.json);
    Ok(0)
}

pub fn resume(args: ResumeArgs) -> anyhow::Result<i32> {
    let env = host_env(std::slice::from_ref(&args.disk), None, &args.common)?;
    let outcome = front::run(args.json, |sink, cancel| run::resume(&args.disk, &env, sink, cancel))?;
    summary(&outcome, args.json);
    Ok(0)
}

fn summary(o: &Outcome, json: bool) {
    if json {
        return;
    }
    let j = &o.journal;
    println!("job {} ({:?}) on {}: {}", j.job_id, j.name, j.disk.name, j.state);
    for s in &j.steps {
        println!("  {:<9} {:>8.1} s  {:>12}  attempts {}", s.step.name(), s.secs, crate::units::human(s.bytes), s.attempts);
    }
    for r in &j.resized {
        println!("  resized: {}", r.line());
    }
    if j.state == crate::job::state::State::HandedOff {
        println!("the new OS restores the user's files on its first boot: boot the disk");
    }
}
