//! The command line: `restore`, `report` and `cleanup` (`docs/windows.md`).

use crate::cleanup::{cleanup, Request as CleanupRequest, Status as CleanupStatus};
use crate::folders::{Folders, RootFolders};
use crate::job::Job;
use crate::pending::{default_report_path, pending};
use crate::restore::{restore, Request};
use crate::transfer::Strategy;
use std::ffi::OsString;
use std::path::PathBuf;

const USAGE: &str = "usage:
  inplace.exe restore --staged DIR --user NAME [--job FILE] [--report FILE] [--profile-root DIR] [--copy]
  inplace.exe report --staged DIR
  inplace.exe report send --staged DIR [--job FILE] [--store DIR] [--task NAME]
  inplace.exe cleanup --staged DIR [--job FILE] [--report FILE] [--force] [--dry-run] [--task NAME]
--profile-root: Known Folders as <DIR>\\<Name> instead of the shell's; --copy: copy then delete even on one volume
cleanup: once every user is restored, keep, empty or delete the store as job.json's store_after says;
  --force: without waiting for every user; --dry-run: find the store, print the diskpart script, run nothing;
  --task: the scheduled task to delete once cleanup is over
report send: sends the job's events and restore reports to the preset's collector;
  --store: the store's root folder (else found by its label); --task: the task to delete once all is sent
exit codes: 0 done (or nothing staged), 1 some entries failed (cleanup: failed; report send: some unsent), 2 refused, 3 usage or I/O error,
  4 cleanup waits for users not restored yet";

/// Exit code for a usage or I/O error.
pub const EXIT_USAGE: i32 = 3;
/// Exit code of `cleanup` while some users are not restored yet.
pub const EXIT_WAITING: i32 = 4;

#[derive(Debug, Default)]
struct Args {
    command: String,
    staged: Option<PathBuf>,
    user: Option<String>,
    job: Option<PathBuf>,
    report: Option<PathBuf>,
    profile_root: Option<PathBuf>,
    copy: bool,
    force: bool,
    dry_run: bool,
    task: Option<String>,
    store: Option<PathBuf>,
}

fn parse(args: Vec<OsString>) -> Result<Args, String> {
    let mut it = args.into_iter().peekable();
    let mut command = it.next().ok_or("no command")?.to_string_lossy().into_owned();
    if command == "report" && it.peek().is_some_and(|s| s == "send") {
        it.next();
        command = "report-send".into();
    }
    let mut a = Args { command, ..Args::default() };
    while let Some(flag) = it.next() {
        let flag = flag.to_string_lossy().into_owned();
        let switch = match flag.as_str() {
            "--copy" => Some(&mut a.copy),
            "--force" => Some(&mut a.force),
            "--dry-run" => Some(&mut a.dry_run),
            _ => None,
        };
        if let Some(on) = switch {
            *on = true;
            continue;
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--staged" => a.staged = Some(value.into()),
            "--user" => a.user = Some(value.to_string_lossy().into_owned()),
            "--job" => a.job = Some(value.into()),
            "--report" => a.report = Some(value.into()),
            "--profile-root" => a.profile_root = Some(value.into()),
            "--task" => a.task = Some(value.to_string_lossy().into_owned()),
            "--store" => a.store = Some(value.into()),
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    Ok(a)
}

/// Runs the agent; returns the process exit code.
pub fn main(args: Vec<OsString>) -> i32 {
    let a = match parse(args) {
        Ok(a) => a,
        Err(e) => return usage(&e),
    };
    let Some(staged) = a.staged.clone() else { return usage("--staged is required") };
    match a.command.as_str() {
        "restore" => run_restore(a, staged),
        "cleanup" => run_cleanup(a, staged),
        "report-send" => run_report_send(a, staged),
        "report" => match pending(&staged) {
            Ok(p) => {
                println!("{}", serde_json::to_string_pretty(&p).unwrap_or_default());
                0
            }
            Err(e) => {
                eprintln!("inplace: cannot list the staged folder {}: {e}", staged.display());
                EXIT_USAGE
            }
        },
        other => usage(&format!("unknown command {other}")),
    }
}

fn usage(e: &str) -> i32 {
    eprintln!("inplace: {e}\n{USAGE}");
    EXIT_USAGE
}

fn run_restore(a: Args, staged: PathBuf) -> i32 {
    let Some(user) = a.user else { return usage("--user is required") };
    let folders: Box<dyn Folders> = match a.profile_root {
        Some(root) => Box::new(RootFolders { root }),
        None => match crate::platform::user_folders() {
            Ok(f) => f,
            Err(e) => return usage(&e.to_string()),
        },
    };
    let job_path = a.job.unwrap_or_else(|| parent_of(&staged).join("job.json"));
    let strategy = if a.copy { Strategy::Copy } else { Strategy::RenameOrCopy };
    let req = Request { staged: &staged, user: &user, job: Job::load(&job_path), folders: folders.as_ref(), strategy };
    let report = restore(&req);
    let report_path = a.report.unwrap_or_else(|| default_report_path(&staged, &user));
    println!("inplace: {}", report.summary());
    match report.write(&report_path) {
        Ok(()) => println!("inplace: report: {}", report_path.display()),
        Err(e) => eprintln!("inplace: cannot write the report {}: {e}", report_path.display()),
    }
    report.status.exit_code()
}

/// `<staged>\..`, where job.json and the reports are.
fn parent_of(staged: &std::path::Path) -> PathBuf {
    staged.parent().filter(|p| !p.as_os_str().is_empty()).map(PathBuf::from).unwrap_or_else(|| ".".into())
}

fn run_cleanup(a: Args, staged: PathBuf) -> i32 {
    let parent = parent_of(&staged);
    let machine = match crate::platform::machine() {
        Ok(m) => m,
        Err(e) => return usage(&e.to_string()),
    };
    let job = a.job.unwrap_or_else(|| parent.join("job.json"));
    let log = parent.join("cleanup.log");
    if !a.dry_run {
        keep_store_events(&parent, &job, machine.as_ref(), &log);
    }
    let req = CleanupRequest { staged: &staged, job: &job, log: &log, force: a.force, dry_run: a.dry_run, task: a.task.as_deref() };
    let report = cleanup(&req, machine.as_ref());
    println!("inplace: {}", report.summary());
    if report.status == CleanupStatus::DryRun {
        if let Some(v) = &report.store_volume {
            println!("inplace: store volume: {v}");
        }
        for line in report.script.iter().flatten() {
            println!("  {line}");
        }
    }
    let report_path = a.report.unwrap_or_else(|| parent.join(crate::cleanup::REPORT));
    match report.write(&report_path) {
        Ok(()) => println!("inplace: report: {}", report_path.display()),
        Err(e) => {
            eprintln!("inplace: cannot write the report {}: {e}", report_path.display());
            return EXIT_USAGE;
        }
    }
    report.status.exit_code()
}

/// The PE's last report events live in the store: they are kept in C: before cleanup can
/// delete or format it (the store's journal no longer changes once the new OS runs).
fn keep_store_events(base: &std::path::Path, job: &std::path::Path, machine: &dyn crate::cleanup::Machine, log: &std::path::Path) {
    let Ok(job) = Job::load(job) else { return };
    if job.report {
        if let Some(line) = crate::reporting::keep_store_events(base, &job.job_id, &crate::reporting::store::Where::Find(machine)) {
            crate::cleanup::log(log, &line);
        }
    }
}

/// How long one POST may take to connect, send or answer.
const POST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

fn run_report_send(a: Args, staged: PathBuf) -> i32 {
    use crate::reporting::{self, spool::Config, store::Where, Request};
    let base = parent_of(&staged);
    let job = match Job::load(&a.job.unwrap_or_else(|| base.join("job.json"))) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("inplace: report: {e}");
            return EXIT_USAGE;
        }
    };
    let machine = crate::platform::machine();
    let store = match (&a.store, &machine) {
        (Some(dir), _) => Where::Given(dir),
        (None, Ok(m)) => Where::Find(m.as_ref()),
        (None, Err(e)) => return usage(&e.to_string()),
    };
    let post = |c: &Config, body: &[u8]| crate::platform::post_json(&c.url, c.token.as_deref(), c.ca.as_deref(), body, POST_TIMEOUT);
    let out = match reporting::send(&Request { base: &base, staged: &staged, job: &job, store }, &post) {
        Ok(out) => out,
        Err(e) => {
            eprintln!("inplace: report: {e}");
            return EXIT_USAGE;
        }
    };
    let mut lines: Vec<String> = out.notes.iter().map(|n| format!("report: {n}")).collect();
    lines.push(format!("report: {} events sent, {} unsent", out.sent, out.unsent));
    match &out.error {
        Some(crate::platform::PostError::Later(e)) => lines.push(format!("report: {e}; the events stay in the spool and go at the next run")),
        Some(crate::platform::PostError::Refused(e)) => {
            lines.push(format!("report: {e}; the events stay in the spool: fix the preset's [report] (see docs/reporting.md) or the collector"))
        }
        None => {}
    }
    if out.finished {
        lines.push("report: everything is sent and every user is restored".into());
        if let (Some(task), Ok(m)) = (&a.task, &machine) {
            lines.push(match crate::cleanup::delete_task(m.as_ref(), task) {
                Ok(_) => format!("report: the scheduled task {task} is deleted"),
                Err((_, why)) => format!("report: the scheduled task {task} could not be deleted ({why}): delete it in Task Scheduler"),
            });
        }
    }
    for l in &lines {
        println!("inplace: {l}");
    }
    reporting::log(&reporting::spool_dir(&base, &job.job_id), &lines);
    if out.unsent > 0 {
        1
    } else {
        0
    }
}
