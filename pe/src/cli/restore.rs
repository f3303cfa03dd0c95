//! `inplace restore`: put a store's files and settings back onto the new OS.
//!
//! Exit codes: 0 restored and marked (or already restored, or a clean dry run); 4 not
//! everything is in: some entries failed or some users had no account (see the report), the
//! store is not marked and a later run retries what is missing; 2 no store found; 1 refused
//! or failed before writing anything.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::PossibleValuesParser;

use super::render;
use crate::error::Hint;
use crate::migrate::restore::{self, users::Useradd, users::UserStatus, Cleanup, Conflict, Finished, Options};
use crate::migrate::store::Store;
use crate::progress::Cancel;

#[derive(clap::Args)]
pub struct Args {
    /// The store: a whole disk (found by its locator), the store partition, or a FAT32 volume
    /// image. Without it, the disks of this machine are searched (first boot).
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// The new OS's root directory (`/` on first boot).
    #[arg(long, required_unless_present = "first_boot")]
    pub root: Option<PathBuf>,
    /// The job's last steps in the new OS (run by inplace-restore.service): restore, clean up
    /// as the job says, record the job done, and stop the unit from running again.
    #[arg(long, conflicts_with_all = ["dry_run", "again", "cleanup", "conflict"])]
    pub first_boot: bool,
    /// Check everything and show what would happen; write nothing anywhere.
    #[arg(long)]
    pub dry_run: bool,
    /// When the new OS already has a user's file: keep it and write ours beside it as
    /// NAME.restored (keep-new), replace it (overwrite), or leave ours out (skip). Default:
    /// as recorded in the store, else keep-new. Settings always replace.
    #[arg(long, value_parser = PossibleValuesParser::new(["keep-new", "overwrite", "skip"]))]
    pub conflict: Option<String>,
    /// Create accounts the new OS lacks (with useradd); also when the store says so.
    #[arg(long)]
    pub create_users: bool,
    /// Do not give created accounts their old password: they get an empty one that their
    /// first login must change. Default: as recorded in the store, else carry passwords.
    #[arg(long)]
    pub no_passwords: bool,
    /// Afterwards: keep the store, empty it (keep the partition as extra storage), or delete
    /// the partition and grow the OS partition over it. Default: as recorded, else keep.
    #[arg(long, value_parser = PossibleValuesParser::new(["keep", "empty", "delete"]))]
    pub cleanup: Option<String>,
    /// Restore even though the store is marked restored (what is already there is kept).
    #[arg(long)]
    pub again: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    if args.first_boot {
        let root = args.root.clone().unwrap_or_else(|| PathBuf::from("/"));
        // Every console shows the restore too (the screen, and a serial console when there is
        // one), and its events are kept in the new OS.
        let consoles = std::sync::Arc::new(crate::boot::console::Consoles::open());
        let log = crate::boot::log::ConsoleLog::new(consoles, &root.join("var/log/inplace/first-boot.jsonl"));
        let j = super::front::run(args.json, |sink, cancel| {
            let both = crate::progress::Tee(vec![sink, &log]);
            crate::job::first_boot::first_boot(&root, args.store.as_deref(), &both, cancel)
        })?;
        println!("job {} ({:?}): {}", j.job_id, j.name, j.state);
        return Ok(0);
    }
    let root = args.root.clone().unwrap_or_default();
    let (path, how) = match restore::store_path(args.store.as_deref()) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("inplace: {}", render::error(&e));
            return Ok(2);
        }
    };
    if let Some(how) = how {
        eprintln!("inplace: using the store at {} ({how})", path.display());
    }
    let store = Store::open(&path, !args.dry_run)?;
    let opts = Options {
        root: root.clone(),
        dry_run: args.dry_run,
        conflict: args.conflict.as_deref().and_then(Conflict::parse),
        create_users: args.create_users,
        cleanup: args.cleanup.as_deref().and_then(Cleanup::parse),
        passwords: args.no_passwords.then_some(false),
        again: args.again,
    };
    let progress = super::front::printer();
    match restore::restore(store, &opts, &mut Useradd, &progress, &Cancel::new())? {
        Finished::AlreadyRestored(st) => {
            if args.json {
                println!("{}", serde_json::json!({ "already_restored": st }));
            } else {
                println!(
                    "the store {} was already restored into {} (finished at {}); nothing was written. \
                     Run with --again to restore it again",
                    path.display(),
                    st.root,
                    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs(st.finished)),
                );
            }
            Ok(0)
        }
        Finished::Done(report) | Finished::Incomplete(report) => {
            if args.json {
                std::io::stdout().write_all(&report.json())?;
            } else {
                print!("{}", report.text());
                let missing = report.users.iter().filter(|u| u.status == UserStatus::Missing);
                if missing.clone().any(|u| u.hint == Some(Hint::CreateUsers)) {
                    let names: Vec<&str> = missing.map(|u| u.profile.as_str()).collect();
                    println!("users without an account ({}): {}", names.join(", "), render::hint(&Hint::CreateUsers));
                }
                if !args.dry_run {
                    println!(
                        "reports: {root}{} and {root}{}; in the store: {} and {}",
                        restore::report::TARGET_JSON,
                        restore::report::TARGET_TEXT,
                        restore::report::STORE_JSON,
                        restore::report::STORE_TEXT,
                        root = report.root.trim_end_matches('/')
                    );
                }
            }
            Ok(if report.complete() { 0 } else { 4 })
        }
    }
}
