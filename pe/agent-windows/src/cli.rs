//! The command line: `restore` and `report` (`docs/windows.md`).

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
--profile-root: Known Folders as <DIR>\\<Name> instead of the shell's; --copy: copy then delete even on one volume
exit codes: 0 done (or nothing staged), 1 some entries failed, 2 refused, 3 usage or I/O error";

/// Exit code for a usage or I/O error.
pub const EXIT_USAGE: i32 = 3;

#[derive(Debug, Default)]
struct Args {
    command: String,
    staged: Option<PathBuf>,
    user: Option<String>,
    job: Option<PathBuf>,
    report: Option<PathBuf>,
    profile_root: Option<PathBuf>,
    copy: bool,
}

fn parse(args: Vec<OsString>) -> Result<Args, String> {
    let mut it = args.into_iter();
    let mut a = Args { command: it.next().ok_or("no command")?.to_string_lossy().into_owned(), ..Args::default() };
    while let Some(flag) = it.next() {
        let flag = flag.to_string_lossy().into_owned();
        if flag == "--copy" {
            a.copy = true;
            continue;
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--staged" => a.staged = Some(value.into()),
            "--user" => a.user = Some(value.to_string_lossy().into_owned()),
            "--job" => a.job = Some(value.into()),
            "--report" => a.report = Some(value.into()),
            "--profile-root" => a.profile_root = Some(value.into()),
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
    let parent = staged.parent().filter(|p| !p.as_os_str().is_empty()).map(PathBuf::from).unwrap_or_else(|| ".".into());
    let job_path = a.job.unwrap_or_else(|| parent.join("job.json"));
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
