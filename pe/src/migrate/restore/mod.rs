//! Restore (first boot, inside the new OS): put a store's files and settings back under a
//! root directory (`/` on first boot), report, mark the store restored, clean up. A store may
//! hold several captures (one per source partition of the job: `capture/`, `capture.2/`, …);
//! every one is restored, in order, into one report.
//!
//! Order, with nothing written before step 5:
//! 1. The store's mark ([`state`]): a store whose mark names every capture it holds is reported
//!    and left alone.
//! 2. Each capture's manifest (its SHA-256 and bounds, by the store) and every entry
//!    ([`plan::check`]): paths, users, links, sizes. One unsafe entry refuses the whole store.
//! 3. Each capture read back in full ([`crate::migrate::store::verify`]); any damage refuses
//!    the store.
//! 4. Users mapped by name to the new OS's accounts ([`users`]); free space checked for the
//!    data of all captures on each filesystem it goes to.
//! 5. For each capture in turn: missing accounts created (if allowed) whole, as the old OS had
//!    them where the new OS can take it ([`users`], [`newuser`]; the accounts are read again,
//!    an earlier capture may have made one), then every entry written ([`apply`], under the
//!    conflict policy; paths resolved by [`paths`], never through a link; extended attributes
//!    and ACLs by [`xattrs`], their users mapped by name), each recorded in the store, in the
//!    capture's own record, as it goes ([`journal`]).
//! 6. The report ([`report`]) written into the new OS (`/var/log/inplace/restore-report.json`
//!    and `.txt`, mode 0600) and into the store (`restore/report.json`, `restore/report.txt`),
//!    then, when everything of every capture is in, the mark (`restore/state.json`).
//! 7. When marked, the cleanup ([`cleanup`]): keep, empty or delete the store.
//!
//! The store is marked restored only when every entry was restored or left out on purpose
//! (the conflict policy, or a protected file of the new OS) and every user had an account.
//! Otherwise the run ends [`Finished::Incomplete`]: the reports say what failed, the store
//! stays unmarked with its record of what is in, nothing is cleaned up, and the next run
//! retries only what is not in yet.
//!
//! A dry run does 1–4 and reports what 5–7 would do; it opens the store read-only and writes
//! nothing anywhere.
//!
//! Every refusal comes before the first write ([`error`]). The restore checks its cancel
//! flag at every record it reads back and every entry it writes; a cancelled restore leaves
//! the store unmarked, and the next run continues from the store's record without writing
//! anything twice.
//!
//! Conflicts with a user's file that the new OS already has: `keep-new` (default) writes ours
//! beside it as `<name>.restored` (`<name>.restored.2`, … when taken), `overwrite` replaces it,
//! `skip` leaves it. Settings (entries outside the profiles) always replace the new OS's file.
//! Entries without a mode (NTFS) get 0644 (files; 0444 with the READONLY attribute) and 0755
//! (directories; Windows uses READONLY on folders for other things, so it is ignored there).
//! Setuid and setgid bits are dropped from files: the store is untrusted. Settings never
//! replace `etc/passwd`, `etc/shadow`, `etc/group`, `etc/gshadow`, `etc/fstab`,
//! `etc/crypttab` or anything under `boot/` (reported as left out by policy, with the reason).
//!
//! The root is used by its absolute, resolved path (a relative one is resolved against the
//! working directory first): `useradd` and the records name it.

pub mod accountdb;
pub mod apply;
pub mod cleanup;
pub mod discover;
pub mod error;
pub mod journal;
pub mod newuser;
pub mod paths;
pub mod plan;
mod replace;
pub mod report;
pub mod state;
pub mod users;
pub mod xattrs;

use std::collections::{BTreeMap, HashMap};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

pub use apply::Conflict;
pub use cleanup::Cleanup;
pub use error::RestoreError;

use apply::{Applier, CappedSink, Meta, Want};
use journal::{Done, Journal};
use paths::{RelPath, Root};
use plan::{Base, Plan};
use report::{EntryReport, Outcome, Report};
use users::{Accounts, Carry, CreateAccount, UserMap, UserStatus};
use crate::error::{Error, Hint, Written};
use crate::migrate::entry::{Entry, Kind};
use crate::migrate::job_info::RestoreChoices;
use crate::migrate::store::{verify, CaptureName, Manifest, Store, StoreError};
use crate::progress::{Cancel, Meter, Sink};
use crate::step::Step;

/// The phase name of writing the entries, in progress events.
pub const PHASE: &str = "restoring";

/// How to restore. `None` choices fall back to what the store recorded at capture time
/// (the preset's `[restore]` table), then to the defaults.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub root: PathBuf,
    pub dry_run: bool,
    pub conflict: Option<Conflict>,
    /// Create missing accounts (also allowed when the store says so).
    pub create_users: bool,
    pub cleanup: Option<Cleanup>,
    /// Give created accounts their old password hashes (also as the store says; default
    /// yes).
    pub passwords: Option<bool>,
    /// Restore even if the store is marked restored.
    pub again: bool,
}

/// How a restore ended.
#[derive(Debug)]
pub enum Finished {
    /// The store says it was restored already; nothing was written.
    AlreadyRestored(state::State),
    /// Everything is in (or, in a dry run, would be): the store is marked restored and
    /// cleaned up as asked.
    Done(Box<Report>),
    /// Some entries failed or some users had no account (the report says which; in a dry
    /// run, would). The store is not marked and not cleaned up; the next run retries what is
    /// not in yet.
    Incomplete(Box<Report>),
}

impl Finished {
    /// `Done` or `Incomplete`, as the report says.
    fn of(report: Report) -> Finished {
        if report.complete() {
            Finished::Done(Box::new(report))
        } else {
            Finished::Incomplete(Box::new(report))
        }
    }
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The restore choices in effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Choices {
    conflict: Conflict,
    create_users: bool,
    passwords: bool,
    cleanup: Cleanup,
}

/// The choices in effect: the caller's, else the store's, else the defaults; with notes on
/// recorded values that could not be used.
fn choices(opts: &Options, m: &Manifest, notes: &mut Vec<String>) -> Choices {
    let recorded: &RestoreChoices = &m.info.restore;
    let mut parse = |what: &str, v: &Option<String>| {
        v.as_deref().and_then(|s| {
            let ok = match what {
                "conflict" => Conflict::parse(s).is_some(),
                _ => Cleanup::parse(s).is_some(),
            };
            if !ok {
                notes.push(format!("the store's recorded {what} = {s:?} is not known; the default is used"));
            }
            ok.then(|| s.to_string())
        })
    };
    let conflict = opts.conflict.or_else(|| parse("conflict", &recorded.conflict).and_then(|s| Conflict::parse(&s))).unwrap_or_default();
    let cleanup = opts.cleanup.or_else(|| parse("cleanup", &recorded.cleanup).and_then(|s| Cleanup::parse(&s))).unwrap_or_default();
    Choices {
        conflict,
        create_users: opts.create_users || recorded.create_users == Some(true),
        passwords: opts.passwords.or(recorded.passwords).unwrap_or(true),
        cleanup,
    }
}

/// Mode for an entry; see the module doc. Returns a note when bits were dropped.
pub fn mode_of(e: &Entry) -> (u32, Option<String>) {
    match (e.kind, e.mode) {
        (Kind::Dir, Some(m)) => (m & 0o3777, None),
        (_, Some(m)) => (m & 0o777, (m & 0o6000 != 0).then(|| "setuid/setgid bits dropped".to_string())),
        (Kind::Dir, None) => (0o755, None),
        (_, None) if e.attributes.is_some_and(|a| a & 1 != 0) => (0o444, None),
        (_, None) => (0o644, None),
    }
}

/// Settings restore never replaces: the new OS's accounts (restore maps users by name into
/// them) and what its boot depends on (the old OS's filesystem UUIDs mean nothing here).
const PROTECTED: [&str; 6] = ["etc/passwd", "etc/shadow", "etc/group", "etc/gshadow", "etc/fstab", "etc/crypttab"];

fn protected(rel: &RelPath) -> bool {
    let s = rel.to_bytes();
    PROTECTED.iter().any(|p| p.as_bytes() == s) || rel.parts().first().is_some_and(|p| p == b"boot")
}

/// The home of `a` as a checked path inside the root.
fn home_of(a: &users::Account) -> Result<RelPath, String> {
    let abs = RelPath::parse_abs(&a.home).map_err(|e| format!("account {}: home directory {e}", a.name))?;
    if abs.is_empty() {
        return Err(format!("account {} has / as its home directory; its files are not restored there", a.name));
    }
    Ok(abs)
}

/// Opens (creating, unless `dry_run`) the home of `a`. `Ok(None)`: a dry run would create it.
fn open_home(root: &Root, a: &users::Account, dry_run: bool) -> Result<(RelPath, Option<OwnedFd>), String> {
    let abs = home_of(a)?;
    let shown = root.show(&abs);
    if let Some(fd) = root.open_abs(&abs).map_err(|e| format!("home {shown}: {e}"))? {
        return Ok((abs, Some(fd)));
    }
    if dry_run {
        return Ok((abs, None));
    }
    let parent_path = abs.prefix(abs.parts().len() - 1);
    let parent = match root.open_abs(&parent_path).map_err(|e| format!("home {shown}: {e}"))? {
        Some(fd) => fd,
        // A new OS without `/home` yet: make it (root-owned, 0755) as useradd would.
        None => {
            let mut init = |dir: BorrowedFd<'_>, name: &[u8]| -> std::io::Result<()> {
                rustix::fs::chmodat(dir, name, rustix::fs::Mode::from_raw_mode(0o755), rustix::fs::AtFlags::empty())?;
                Ok(())
            };
            paths::walk(root.fd(), "", parent_path.parts(), paths::Missing::Create(&mut init))
                .map_err(|e| format!("creating the directory that holds home {shown}: {e}"))?
        }
    };
    rustix::fs::mkdirat(&parent, abs.name(), rustix::fs::Mode::from_raw_mode(0o700)).map_err(|e| format!("creating home {shown}: {e}"))?;
    if rustix::process::geteuid().is_root() {
        rustix::fs::chownat(
            &parent,
            abs.name(),
            Some(rustix::fs::Uid::from_raw(a.uid)),
            Some(rustix::fs::Gid::from_raw(a.gid)),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| format!("setting the owner of home {shown}: {e}"))?;
    }
    let fd = paths::open_dir_nofollow(parent.as_fd(), abs.name()).map_err(|e| format!("opening home {shown}: {e}"))?;
    Ok((abs, Some(fd)))
}

/// The nearest existing directory at or above `abs` in the root.
fn nearest_dir(root: &Root, abs: &RelPath) -> Option<OwnedFd> {
    (0..=abs.parts().len()).rev().find_map(|n| root.open_abs(&abs.prefix(n)).ok().flatten())
}

/// Refuses when a filesystem the data goes to lacks the room for it.
fn check_space(root: &Root, bases: &[(RelPath, u64)], data_bytes: u64) -> Result<(), RestoreError> {
    let mut by_dev: BTreeMap<u64, (u64, u64, String)> = BTreeMap::new();
    for (abs, bytes) in bases {
        let Some(fd) = nearest_dir(root, abs) else { continue };
        let (Ok(st), Ok(vfs)) = (rustix::fs::fstat(&fd), rustix::fs::fstatvfs(&fd)) else { continue };
        let e = by_dev.entry(st.st_dev).or_insert((0, vfs.f_bavail.saturating_mul(vfs.f_frsize), root.show(abs)));
        e.0 = e.0.saturating_add(*bytes);
    }
    for (need, free, shown) in by_dev.values() {
        let need = (*need).min(data_bytes);
        if need > *free {
            return Err(RestoreError::Target {
                problem: format!(
                    "the filesystem holding {shown} has {free} bytes free, and the store has {need} bytes of file \
                     data for it"
                ),
                hints: vec![Hint::Advice {
                    text: "free some space, or restore into a larger filesystem, and run the restore again".into(),
                }],
            });
        }
    }
    Ok(())
}

/// Restores `store` under `opts.root`; see the module doc. `creator` makes missing
/// accounts. Reports the read-back and every entry to `sink`; checks `cancel` at every record
/// and entry.
pub fn restore(
    store: Store,
    opts: &Options,
    creator: &mut dyn CreateAccount,
    sink: &dyn Sink,
    cancel: &Cancel,
) -> crate::error::Result<Finished> {
    run(store, opts, creator, sink, cancel).map_err(RestoreError::error)
}

/// One capture of the store, checked and read back: nothing is written before every capture
/// of the store is.
struct Checked {
    name: CaptureName,
    manifest: Manifest,
    plan: Plan,
    choices: Choices,
}

/// How a capture is named in messages: the store alone for the first, as before stores held
/// several.
fn shown(store: &str, name: CaptureName) -> String {
    match name.number() {
        1 => store.to_string(),
        _ => format!("{store}, {name}/"),
    }
}

fn run(
    mut store: Store,
    opts: &Options,
    creator: &mut dyn CreateAccount,
    sink: &dyn Sink,
    cancel: &Cancel,
) -> Result<Finished, RestoreError> {
    let started = now();
    let root_path = std::fs::canonicalize(&opts.root)
        .map_err(|e| RestoreError::target(format!("the restore root {}: {e}", opts.root.display())))?;
    let root = Root::open(&root_path).map_err(|e| RestoreError::target(e.to_string()))?;
    let describe = store.describe();
    // A mark from a run that did not finish everything (older versions wrote one) is no mark.
    let (marked, stale_mark) = match state::read(&store)? {
        Some(st) if !st.complete => (None, true),
        m => (m, false),
    };
    let names = store.captures().map_err(|e| RestoreError::Store(Box::new(e)))?;
    if names.is_empty() {
        // Emptied by the cleanup after its restore, or never captured into.
        return match marked {
            Some(st) if !opts.again => Ok(Finished::AlreadyRestored(st)),
            _ => Err(RestoreError::Store(Box::new(StoreError::NoCapture { store: describe, capture: CaptureName::FIRST.dir() }))),
        };
    }
    let mut notes = Vec::new();
    let mut checked = Vec::with_capacity(names.len());
    for name in names {
        store.select(name);
        let manifest = store.manifest().map_err(|e| RestoreError::Store(Box::new(e)))?;
        let plan = plan::check(&manifest).map_err(|refusal| RestoreError::Refused { store: shown(&describe, name), refusal })?;
        let choices = choices(opts, &manifest, &mut notes);
        checked.push(Checked { name, manifest, plan, choices });
    }
    let fingerprints: Vec<(CaptureName, String)> = checked.iter().map(|c| (c.name, c.manifest.plan_sha256.clone())).collect();
    if let Some(st) = marked.as_ref().filter(|st| !opts.again && st.covers(&fingerprints)) {
        return Ok(Finished::AlreadyRestored(st.clone()));
    }
    let mut said = std::collections::HashSet::new();
    notes.retain(|n| said.insert(n.clone()));
    let cleanup_mode = checked[0].choices.cleanup;
    let conflict = checked[0].choices.conflict;

    for c in &checked {
        store.select(c.name);
        let meter = Meter::start(sink, verify::PHASE, c.manifest.totals.stored_bytes);
        verify::check_against(&store, &c.manifest, &meter, cancel).map_err(|e| RestoreError::Verify(Box::new(e)))?;
    }

    let profiles: BTreeMap<String, u64> = checked.iter().flat_map(|c| c.plan.profiles.iter().map(|(p, n)| (p.clone(), *n))).collect();
    let loaded = Accounts::load(&root).map_err(RestoreError::target)?;
    if loaded.is_none() && !profiles.is_empty() {
        let create = checked.iter().any(|c| c.choices.create_users);
        return Err(RestoreError::Target {
            problem: format!(
                "{} has no etc/passwd: it does not look like the root of an installed OS, so the {} user(s) of \
                 the store ({}) cannot be mapped to accounts{}",
                root_path.display(),
                profiles.len(),
                profiles.keys().cloned().collect::<Vec<_>>().join(", "),
                if create { " (and useradd needs an etc/passwd to add to)" } else { " and creating users is not allowed" }
            ),
            hints: vec![Hint::Advice { text: "check that the root given is the new OS's root directory".into() }],
        });
    }
    // Without writing: who maps where, and is there room.
    let mut bases = Vec::new();
    let mut previews = Vec::with_capacity(checked.len());
    for c in &checked {
        let new_os = if c.choices.create_users { newuser::NewOs::probe(&root) } else { newuser::NewOs::default() };
        let carry = Carry { records: &c.manifest.info.accounts, passwords: c.choices.passwords, new_os: &new_os };
        let preview = UserMap::build(&root, &mut loaded.clone().unwrap_or_default(), &c.plan.profiles, c.choices.create_users, None, &carry);
        for (base, bytes) in &c.plan.bytes {
            let abs = match base {
                Base::Root => Some(RelPath::parse_abs("/").unwrap_or_else(|_| unreachable!())),
                Base::Home(p) => preview.accounts.get(p).and_then(|a| home_of(a).ok()),
            };
            bases.extend(abs.map(|a| (a, *bytes)));
        }
        previews.push(preview);
    }
    let data_bytes = checked.iter().map(|c| c.manifest.totals.bytes.saturating_sub(c.manifest.totals.hole_bytes)).sum();
    check_space(&root, &bases, data_bytes)?;
    if cancel.is_cancelled() {
        return Err(RestoreError::Cancelled { written: Written::Nothing });
    }

    let root_shown = root_path.display().to_string();
    let mut rep = Report {
        version: 1,
        dry_run: opts.dry_run,
        started,
        finished: 0,
        store: describe.clone(),
        root: root_shown.clone(),
        plan_sha256: checked[0].manifest.plan_sha256.clone(),
        captures: Vec::with_capacity(checked.len()),
        conflict: conflict.as_str().into(),
        users: Vec::new(),
        settings_applied: Vec::new(),
        totals: report::Totals::default(),
        entries: Vec::new(),
        capture_skipped: Vec::new(),
        cleanup: None,
        notes: Vec::new(),
    };
    let mut applied = Ok(());
    for (c, preview) in checked.iter().zip(previews) {
        store.select(c.name);
        let (failed_before, entries_before) = (rep.totals.failed, rep.totals.entries);
        applied = restore_capture(&mut store, c, preview, &root, opts, creator, &mut rep, marked.as_ref(), &mut notes, sink, cancel);
        let i = &c.manifest.info;
        rep.captures.push(report::CaptureReport {
            capture: c.name,
            plan_sha256: c.manifest.plan_sha256.clone(),
            disk: i.disk.clone(),
            partition: i.partition,
            fs: i.fs.clone(),
            family: i.family.clone(),
            users: c.plan.profiles.keys().cloned().collect(),
            entries: rep.totals.entries - entries_before,
            failed: rep.totals.failed - failed_before,
        });
        rep.capture_skipped.extend(c.manifest.skipped.iter().cloned());
        if applied.is_err() {
            break;
        }
    }
    applied?;
    rep.notes.extend(notes);
    rep.finished = now();
    if opts.dry_run {
        rep.cleanup = Some(if rep.complete() { dry_cleanup(&mut store, cleanup_mode) } else { not_cleaned(cleanup_mode, true) });
        return Ok(Finished::of(rep));
    }
    if !rep.complete() {
        return Ok(Finished::of(unfinished(store, &root, rep, cleanup_mode, stale_mark, sink)));
    }
    finish(store, &root, rep, cleanup_mode, sink, cancel).map(Finished::of)
}

/// Restores one checked capture (the store has it selected) into the report: its users mapped
/// (accounts created when allowed; the accounts are read again, another capture may have
/// made some), then every entry, recorded in the capture's record as it goes.
#[allow(clippy::too_many_arguments)]
fn restore_capture(
    store: &mut Store,
    c: &Checked,
    preview: UserMap,
    root: &Root,
    opts: &Options,
    creator: &mut dyn CreateAccount,
    rep: &mut Report,
    marked: Option<&state::State>,
    notes: &mut Vec<String>,
    sink: &dyn Sink,
    cancel: &Cancel,
) -> Result<(), RestoreError> {
    let (manifest, plan) = (&c.manifest, &c.plan);
    let mut accounts = Accounts::load(root).map_err(RestoreError::target)?.unwrap_or_default();
    let new_os = if c.choices.create_users && !opts.dry_run { newuser::NewOs::probe(root) } else { newuser::NewOs::default() };
    let carry = Carry { records: &manifest.info.accounts, passwords: c.choices.passwords, new_os: &new_os };
    let user_map = if opts.dry_run {
        preview
    } else {
        UserMap::build(root, &mut accounts, &plan.profiles, c.choices.create_users, Some(creator), &carry)
    };
    // The accounts just made, their homes filled from /etc/skel, are on the disk before any entry
    // is weighed against what those homes hold: after a power cut, a skeleton file left empty
    // would pass for the new OS's own and keep the user's file out.
    if !opts.dry_run {
        if let Err(e) = rustix::fs::syncfs(root.fd()) {
            notes.push(format!("{}: sync after making the accounts: {e}", root.path().display()));
        }
    }
    let mut applier = Applier::new(c.choices.conflict, opts.dry_run);
    if !applier.sets_owners() {
        let note = "not running as root: owners were not set".to_string();
        if !notes.contains(&note) {
            notes.push(note);
        }
    }
    let mut base_errors: BTreeMap<Base, String> = BTreeMap::new();
    applier.add_base(Base::Root, RelPath::parse_abs("/").unwrap_or_else(|_| unreachable!()), rustix::io::dup(root.fd()).ok());
    for u in &user_map.outcomes {
        let base = Base::Home(u.profile.clone());
        match (u.status, user_map.accounts.get(&u.profile)) {
            (UserStatus::Missing, _) | (_, None) => {
                base_errors.insert(base, format!("user {} has no account in the new OS: {}", u.profile, u.reason.clone().unwrap_or_default()));
            }
            (UserStatus::WouldCreate, Some(a)) => match home_of(a) {
                Ok(abs) => applier.add_base(base, abs, None),
                Err(e) => {
                    base_errors.insert(base, e);
                }
            },
            (_, Some(a)) => match open_home(root, a, opts.dry_run) {
                Ok((abs, fd)) => applier.add_base(base, abs, fd),
                Err(e) => {
                    base_errors.insert(base, e);
                }
            },
        }
    }
    rep.add_users(user_map.outcomes.clone());
    let (mut journal, done) = Journal::load(store, c.name, &manifest.plan_sha256, &rep.root, marked, rep.started, sink);
    if !done.is_empty() {
        let of = if c.name == CaptureName::FIRST { String::new() } else { format!(" of {}/", c.name) };
        notes.push(format!("{} entries{of} were restored by an earlier, interrupted run and are not written again", done.len()));
    }
    let tag = (c.name != CaptureName::FIRST).then_some(c.name);
    let work = Apply { m: manifest, plan, user_map: &user_map, accounts: &accounts, base_errors: &base_errors, tag, sink, cancel };
    let applied = work.all(store, &mut applier, rep, &mut journal, done);
    notes.extend(applier.finish());
    if !opts.dry_run {
        journal.flush(store, sink);
    }
    applied
}

/// What every entry needs to be written.
struct Apply<'a> {
    m: &'a Manifest,
    plan: &'a Plan,
    user_map: &'a UserMap,
    accounts: &'a Accounts,
    base_errors: &'a BTreeMap<Base, String>,
    /// The capture, when it is not the store's first (its entries say so in the report).
    tag: Option<CaptureName>,
    sink: &'a dyn Sink,
    cancel: &'a Cancel,
}

impl Apply<'_> {
    /// Writes every entry (or, in a dry run, works out what would happen), recording each in
    /// `journal`; entries in `done` were restored by an earlier run and are taken up as they
    /// were. Stops before the next entry when cancelled.
    fn all(
        &self,
        store: &mut Store,
        applier: &mut Applier,
        rep: &mut Report,
        journal: &mut Journal,
        mut done: HashMap<usize, Done>,
    ) -> Result<(), RestoreError> {
        let dry_run = rep.dry_run;
        let stopped = || RestoreError::Cancelled { written: if dry_run { Written::Nothing } else { Written::Disk } };
        let bytes_total: u64 = self.plan.bytes.values().sum();
        let entries_total = self.plan.items.len() as u64;
        let meter = Meter::start(self.sink, PHASE, bytes_total);
        for (no, item) in self.plan.items.iter().enumerate() {
            let e = &self.m.entries[item.index].entry;
            let attrs = xattrs::prepare(e, self.user_map, self.accounts);
            let mut meta = self.meta(e);
            meta.0.attrs = attrs.as_ref();
            if let Some(d) = done.remove(&no).filter(|d| d.entry.source == e.source.to_string()) {
                applier.replay(no, item, &d.entry.outcome, d.finish_dir, meta.0);
                self.count(&meter, e, no, entries_total);
                rep.push(d.entry);
                continue;
            }
            if self.cancel.is_cancelled() {
                return Err(stopped());
            }
            let dirs_before = applier.dirs_pending();
            let (outcome, target, note) = self.one(store, applier, no, item, meta);
            if self.cancel.is_cancelled() && matches!(outcome, Outcome::Failed { .. }) {
                // Stopped inside this entry: nothing of it is in place.
                return Err(stopped());
            }
            let setting = item.base == Base::Root;
            let report = EntryReport {
                source: e.source.to_string(),
                user: e.user.clone(),
                kind: e.kind,
                bytes: e.size,
                target,
                setting,
                outcome,
                note,
                capture: self.tag,
            };
            if !dry_run && !matches!(report.outcome, Outcome::Failed { .. }) {
                journal.push(&Done { item: no, finish_dir: applier.dirs_pending() > dirs_before, entry: report.clone() });
                if journal.due() {
                    // What the record lists as done is on the disk before the record is: a
                    // later run takes those entries as they are.
                    let _ = applier.sync();
                    journal.flush(store, self.sink);
                }
            }
            self.count(&meter, e, no, entries_total);
            rep.push(report);
        }
        Ok(())
    }

    /// Owner, mode and time for entry `e` (and a note when the mode lost bits).
    fn meta(&self, e: &Entry) -> (Want<'_>, Option<String>) {
        let (uid, gid) = self.user_map.ids(self.accounts, e.user.as_deref(), e.owner.as_deref(), e.group.as_deref());
        let (mode, mode_note) = mode_of(e);
        let setting = e.user.is_none();
        (Want { meta: Meta { uid, gid, mode, mtime: e.mtime }, size: e.size, setting, link_target: None, attrs: None }, mode_note)
    }

    fn count(&self, meter: &Meter<'_>, e: &Entry, no: usize, total: u64) {
        if e.kind == Kind::File {
            meter.add(e.size);
        }
        meter.entries(no as u64 + 1, total, &e.source.to_string());
    }

    /// Writes one entry: its outcome, where it went, and a note.
    fn one(
        &self,
        store: &mut Store,
        applier: &mut Applier,
        no: usize,
        item: &plan::Item,
        (want, mode_note): (Want<'_>, Option<String>),
    ) -> (Outcome, String, Option<String>) {
        let e = &self.m.entries[item.index].entry;
        if let Some(why) = self.base_errors.get(&item.base) {
            return (Outcome::Failed { reason: why.clone() }, applier.target(&item.base, &item.rel), None);
        }
        if item.base == Base::Root && protected(&item.rel) {
            let reason = "restore never replaces the new OS's account databases, fstab, crypttab or /boot; \
                          merge this file by hand from the store if it is needed";
            return (Outcome::LeftOut { reason: reason.into() }, applier.target(&item.base, &item.rel), None);
        }
        let want = Want { link_target: e.target.as_deref(), ..want };
        let (m, index, cancel) = (self.m, item.index, self.cancel);
        let mut data = |file: &std::fs::File| {
            store.read_entry(m, index, &mut CappedSink { file, size: e.size, cancel }).map_err(|err| err.to_string())
        };
        let d = applier.entry(no, item, want, &mut data);
        let note = match (d.note, mode_note) {
            (Some(a), Some(b)) => Some(format!("{a}; {b}")),
            (a, b) => a.or(b),
        };
        (d.outcome, d.target, note)
    }
}

fn dry_cleanup(store: &mut Store, mode: Cleanup) -> report::CleanupReport {
    match mode {
        Cleanup::Keep => report::CleanupReport { mode: "keep".into(), done: false, detail: vec!["the store would be kept as it is".into()] },
        Cleanup::Empty => cleanup::empty(store, true),
        Cleanup::Delete => match cleanup::site_of(store) {
            Ok(site) => cleanup::delete(&site, true),
            Err(e) => report::CleanupReport { mode: "delete".into(), done: false, detail: vec![format!("the store's partition cannot be found: {e}")] },
        },
    }
}

/// The cleanup not done because not everything is in.
fn not_cleaned(mode: Cleanup, dry_run: bool) -> report::CleanupReport {
    let what = if dry_run { "would be skipped" } else { "skipped" };
    report::CleanupReport {
        mode: mode.as_str().into(),
        done: false,
        detail: vec![format!("{what}: not everything is restored; the store is kept, unmarked, for the next run")],
    }
}

/// A run that left entries out or users without an account: reports written (into the new
/// OS and the store), the store left with its record of what is in and without a mark of its
/// own (a stale incomplete mark is removed; a complete one, when restoring again, stays),
/// nothing cleaned up.
fn unfinished(store: Store, root: &Root, mut rep: Report, mode: Cleanup, stale_mark: bool, sink: &dyn Sink) -> Report {
    rep.cleanup = Some(not_cleaned(mode, false));
    let missing = rep.users.iter().filter(|u| u.status == UserStatus::Missing).count();
    rep.notes.push(format!(
        "not everything is in ({} failed entr{}, {missing} user{} without an account): the store is not marked \
         restored; fix the causes (see above) and run the restore again — it retries only what is not in yet",
        rep.totals.failed,
        if rep.totals.failed == 1 { "y" } else { "ies" },
        if missing == 1 { "" } else { "s" },
    ));
    if let Err(e) = report::write_to_target(root, &rep) {
        rep.notes.push(format!("the report could not be written into the new OS: {e}"));
    }
    let in_store = store
        .write_file(report::STORE_JSON, &rep.json())
        .and_then(|()| store.write_file(report::STORE_TEXT, rep.text().as_bytes()))
        .and_then(|()| if stale_mark { store.remove_file(state::STATE).map(|_| ()) } else { Ok(()) });
    if let Err(e) = in_store {
        sink.warn(&format!("the restore report could not be written into the store: {e}"));
    }
    sink.log(&format!("restore incomplete: {} entries failed; the store stays restorable", rep.totals.failed));
    rep
}

/// Reports, marks the store, cleans up, and re-writes the reports with the cleanup's outcome.
/// Once marked, the store's record of the run goes; a cancel raised by then skips the
/// cleanup (the store is kept, and says so in the report).
fn finish(mut store: Store, root: &Root, mut rep: Report, mode: Cleanup, sink: &dyn Sink, cancel: &Cancel) -> Result<Report, RestoreError> {
    if let Err(e) = report::write_to_target(root, &rep) {
        rep.notes.push(format!("the report could not be written into the new OS: {e}"));
    }
    let st = state::State {
        state: "restored".into(),
        plan_sha256: rep.plan_sha256.clone(),
        captures: rep.captures.iter().map(|c| state::Marked { capture: c.capture, plan_sha256: c.plan_sha256.clone() }).collect(),
        finished: rep.finished,
        root: rep.root.clone(),
        complete: rep.complete(),
        report: report::STORE_JSON.into(),
    };
    let in_store = store
        .write_file(report::STORE_JSON, &rep.json())
        .and_then(|()| store.write_file(report::STORE_TEXT, rep.text().as_bytes()))
        .map_err(|e| e.to_string())
        .and_then(|()| state::mark(&store, &st));
    if let Err(e) = in_store {
        // Without the mark, a second run would restore again: keep the store, say so.
        rep.notes.push(format!("the report and the restored mark could not be written into the store: {e}; the store is kept"));
        rep.cleanup = Some(report::CleanupReport { mode: mode.as_str().into(), done: false, detail: vec!["skipped: the store is not marked restored".into()] });
        let _ = report::write_to_target(root, &rep);
        return Ok(rep);
    }
    for c in &rep.captures {
        if let Err(e) = Journal::remove(&store, c.capture) {
            rep.notes.push(format!("the record of this restore of {}/ could not be removed from the store: {e}", c.capture));
        }
    }
    let (c, store_left) = match mode {
        _ if cancel.is_cancelled() => {
            let detail = vec!["skipped: stopped on request; the store is kept".into()];
            (report::CleanupReport { mode: mode.as_str().into(), done: false, detail }, Some(store))
        }
        Cleanup::Keep => (report::CleanupReport { mode: "keep".into(), done: true, detail: vec![format!("the store {} is kept as it is", store.describe())] }, Some(store)),
        Cleanup::Empty => (cleanup::empty(&mut store, false), Some(store)),
        Cleanup::Delete => match cleanup::site_of(&store) {
            Ok(site) => {
                drop(store);
                (cleanup::delete(&site, false), None)
            }
            Err(e) => (
                report::CleanupReport { mode: "delete".into(), done: false, detail: vec![format!("the store's partition cannot be found: {e}")] },
                Some(store),
            ),
        },
    };
    sink.log(&format!("cleanup {}: {}", c.mode, if c.done { "done" } else { "not done" }));
    rep.cleanup = Some(c);
    if let Err(e) = report::write_to_target(root, &rep) {
        rep.notes.push(format!("the report could not be written into the new OS: {e}"));
    }
    if let Some(s) = store_left {
        let _ = s.write_file(report::STORE_JSON, &rep.json()).and_then(|()| s.write_file(report::STORE_TEXT, rep.text().as_bytes()));
    }
    Ok(rep)
}

/// The store to restore from: the path given, or the one [`discover::find`] finds on this
/// machine's disks, with how it was found.
pub fn store_path(given: Option<&Path>) -> crate::error::Result<(PathBuf, Option<String>)> {
    match given {
        Some(p) => Ok((p.to_path_buf(), None)),
        None => discover::find(Path::new("/sys"), Path::new("/dev"))
            .map(|f| (f.path, Some(f.how)))
            .map_err(|e| Error::refused(Step::Restore, e).hint(Hint::ChooseStore)),
    }
}

#[cfg(test)]
mod tests;
