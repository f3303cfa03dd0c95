//! Selection: walks the old filesystem with the rules and lists, in capture order, every entry
//! to keep and every item left out with the reason. Reads metadata only, never file data.

use std::collections::{BTreeMap, HashMap};

use super::entry::{self, Acls, Entry, Kind, Skipped, Why, Xattr};
use crate::os::windows;
use super::rules::{Family, Matcher, Rules, RulesError, UserSelection};
use crate::error::Error;
use crate::fs::xattr::{AclEntry, AclTag};
use crate::fs::{Bytes, EntryKind, FsError, FsReader, Metadata};
use crate::progress::{Cancel, Meter, Sink};
use crate::step::Step;

/// The phase name of the selection walk, in progress events.
pub const PHASE: &str = "selecting the files to capture";

/// One account whose profile is captured.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct User {
    pub name: String,
    /// Profile directory on the old filesystem (`/home/alice`, `/Users/Carol`).
    pub home: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
}

/// What a capture will copy.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub users: Vec<User>,
    pub entries: Vec<Entry>,
    pub skipped: Vec<Skipped>,
    /// The captured users' accounts (Linux sources), for the new OS to create them whole.
    pub accounts: Vec<super::accounts::AccountRecord>,
}

#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    #[error(transparent)]
    Rules(#[from] RulesError),
    #[error("{0}")]
    Fs(#[from] FsError),
    #[error("user {name:?} is named in the rules but has no profile on this filesystem (profiles found: {found})")]
    NoSuchUser { name: String, found: String },
    #[error("stopped on request")]
    Cancelled,
}

impl SelectError {
    /// The engine's error; a selection reads only, so nothing was written.
    pub fn error(self) -> Error {
        match self {
            SelectError::Rules(e) => e.error(),
            SelectError::Fs(e) => Error::io(Step::Plan, e.to_string()),
            e @ SelectError::NoSuchUser { .. } => {
                Error::refused(Step::Plan, e.to_string()).advice("fix the user's name in the preset or the rules")
            }
            SelectError::Cancelled => Error::cancelled(Step::Plan, crate::error::Written::Nothing),
        }
    }
}

/// Largest /etc/passwd or /etc/group read.
const ACCOUNTS_CAP: u64 = 8 << 20;

/// What a source is to its job.
pub enum Role<'a> {
    /// The one source of a capture: its profiles, its settings and the accounts of its own
    /// `/etc/passwd`. Every user the rules name must have a profile on it.
    Only,
    /// The old OS's partition in a job that may capture partitions beside it: as [`Role::Only`],
    /// but a user the rules name may have a profile elsewhere (the job checks them all).
    Os,
    /// A data partition beside the old OS: profiles only, never settings (they are the OS's);
    /// a user the rules name may have no profile here. A Linux data partition's profiles are
    /// the homes (`/home/<name>`, as `/etc/passwd` has them) of the accounts of `accounts`, the
    /// old OS's filesystem, which also names the owners of its files and gives the captured
    /// users' account records; without it, the partition's own `/etc/passwd` does.
    Data { accounts: Option<&'a mut dyn FsReader> },
}

/// Walks `fs` with `rules`, reporting the entries it looks at; checks `cancel` at each.
pub fn select(fs: &mut dyn FsReader, rules: &Rules, sink: &dyn Sink, cancel: &Cancel) -> crate::error::Result<Selection> {
    select_as(fs, rules, Role::Only, sink, cancel)
}

/// [`select`] of a source playing `role` in its job.
pub fn select_as(fs: &mut dyn FsReader, rules: &Rules, role: Role<'_>, sink: &dyn Sink, cancel: &Cancel) -> crate::error::Result<Selection> {
    let meter = Meter::start(sink, PHASE, 0);
    let mut seen = Seen { meter: &meter, cancel, looked_at: 0 };
    walk(fs, rules, role, &mut seen).map_err(SelectError::error)
}

/// How far the walk is, and whether to stop.
struct Seen<'a> {
    meter: &'a Meter<'a>,
    cancel: &'a Cancel,
    looked_at: u64,
}

impl Seen<'_> {
    fn one(&mut self, source: &str) -> Result<(), SelectError> {
        if self.cancel.is_cancelled() {
            return Err(SelectError::Cancelled);
        }
        self.looked_at += 1;
        self.meter.entries(self.looked_at, 0, source);
        Ok(())
    }
}

fn walk(fs: &mut dyn FsReader, rules: &Rules, role: Role<'_>, seen: &mut Seen<'_>) -> Result<Selection, SelectError> {
    let (is_os, strict, mut accounts_fs) = match role {
        Role::Only => (true, true, None),
        Role::Os => (true, false, None),
        Role::Data { accounts } => (false, false, accounts),
    };
    let accounts = match &mut accounts_fs {
        Some(os) => Accounts::read(&mut **os, rules.family),
        None => Accounts::read(fs, rules.family),
    };
    let mut sel = Selection::default();
    let found = match rules.family {
        Family::Windows => {
            let registry = match (has_hives(fs), accounts_fs.as_mut()) {
                (true, _) => windows::registry(fs).ok().flatten().map(|r| (r, true)),
                (false, Some(os)) => windows::registry(&mut **os).ok().flatten().map(|r| (r, false)),
                (false, None) => None,
            };
            match registry {
                Some((reg, on_system)) => registry_profiles(fs, rules, &reg, on_system, &mut sel.skipped)?,
                // A data partition without a `Users` folder holds no profile.
                None if !is_os && !fs.is_dir(b"/Users") => Vec::new(),
                None => windows_profiles(fs, rules)?,
            }
        }
        Family::Linux => linux_homes(fs, rules, &accounts),
    };
    for wanted in rules.users.iter().filter(|_| strict) {
        let same = |u: &User| match rules.family {
            Family::Windows => u.name.eq_ignore_ascii_case(wanted),
            Family::Linux => &u.name == wanted,
        };
        if !found.iter().any(same) {
            let names: Vec<&str> = found.iter().map(|u| u.name.as_str()).collect();
            return Err(SelectError::NoSuchUser { name: wanted.clone(), found: names.join(", ") });
        }
    }
    for user in found.into_iter().filter(|u| rules.wants_user(&u.name)) {
        let compiled = rules.for_user(&user.name)?;
        let before = sel.entries.len();
        let mut walk = Walk::new(fs, &mut sel, &accounts, Scope::Profile { user: &user, rules: &compiled }, seen);
        walk.dir(&Bytes::from(&user.home), &Bytes::default())?;
        // On a data partition, a profile of which the rules keep nothing but folders is no
        // profile: its folders are not taken either.
        if is_os || sel.entries[before..].iter().any(|e| e.kind != Kind::Dir) {
            sel.users.push(user);
        } else {
            sel.entries.truncate(before);
        }
    }
    if rules.family == Family::Linux {
        let names: Vec<&str> = sel.users.iter().map(|u| u.name.as_str()).collect();
        sel.accounts = match accounts_fs {
            Some(os) => super::accounts::read(os, &names),
            None => super::accounts::read(fs, &names),
        };
    }
    let settings = rules.settings()?;
    if is_os && !settings.is_empty() {
        let mut walk = Walk::new(fs, &mut sel, &accounts, Scope::System { rules: &settings }, seen);
        walk.dir(&Bytes::from("/"), &Bytes::default())?;
    }
    Ok(sel)
}

/// Whether `fs` is a Windows system volume with its registry hives.
fn has_hives(fs: &mut dyn FsReader) -> bool {
    fs.exists(windows::SOFTWARE)
}

/// The profiles of the registry's accounts that are on `fs`: the system volume's when
/// `on_system` (the hives are on `fs`), else those of other volumes whose path, drive letter
/// dropped, is a folder of `fs`. A folder under `/Users` that is no account's profile is left
/// out with the reason, unless the rules name it.
fn registry_profiles(
    fs: &mut dyn FsReader,
    rules: &Rules,
    reg: &windows::Registry,
    on_system: bool,
    skipped: &mut Vec<Skipped>,
) -> Result<Vec<User>, SelectError> {
    let skip = Matcher::new(&rules.profiles.skip, true)
        .map_err(|(glob, message)| RulesError::Glob { name: "profiles.skip".into(), glob, message })?;
    let drive = reg.system_drive();
    let mut out: Vec<User> = Vec::new();
    for a in &reg.accounts {
        let Some(profile) = a.profile.as_deref() else { continue };
        let home = match (on_system, windows::path_on(drive, profile)) {
            (true, Some(home)) => home,
            (false, None) => match windows::path_without_drive(profile) {
                Some(home) => home,
                None => continue,
            },
            _ => continue,
        };
        let folder = home.rsplit('/').next().unwrap_or_default();
        if skip.matches(folder) || !fs.is_dir(home.as_bytes()) {
            continue;
        }
        out.push(User { name: a.name.clone(), home, uid: None });
    }
    if let Ok(entries) = fs.read_dir(b"/Users") {
        for e in entries.into_iter().filter(|e| e.kind == EntryKind::Dir) {
            let Some(name) = e.name.to_str().map(str::to_string) else { continue };
            let home = format!("/Users/{name}");
            if skip.matches(&name) || out.iter().any(|u| u.home.eq_ignore_ascii_case(&home)) {
                continue;
            }
            if rules.users.iter().any(|u| u.eq_ignore_ascii_case(&name)) {
                out.push(User { name, home, uid: None });
            } else {
                let size = tally(fs, &Bytes::from(&home));
                skipped.push(Skipped {
                    source: Bytes::from(&home),
                    size,
                    why: Why::NotCarried {
                        detail: "a profile folder of no account in the registry (a deleted account's?); \
                                 name it in the preset's [migrate] users to capture it"
                            .into(),
                    },
                });
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Profiles under `/Users`, less the built-in ones and links (a volume without hives).
fn windows_profiles(fs: &mut dyn FsReader, rules: &Rules) -> Result<Vec<User>, SelectError> {
    let skip = Matcher::new(&rules.profiles.skip, true)
        .map_err(|(glob, message)| RulesError::Glob { name: "profiles.skip".into(), glob, message })?;
    // A profile is named after its account, so a name that is not text is no profile.
    let mut out: Vec<User> = fs
        .read_dir(b"/Users")?
        .into_iter()
        .filter(|e| e.kind == EntryKind::Dir)
        .filter_map(|e| e.name.to_str().map(str::to_string))
        .filter(|name| !skip.matches(name))
        .map(|name| User { home: format!("/Users/{name}"), name, uid: None })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Homes of real accounts in `/etc/passwd` that exist on the filesystem.
fn linux_homes(fs: &mut dyn FsReader, rules: &Rules, accounts: &Accounts) -> Vec<User> {
    let min = rules.profiles.min_uid.unwrap_or(1000);
    let root = rules.profiles.include_root == Some(true);
    let mut out: Vec<User> = accounts
        .passwd
        .iter()
        .filter(|a| (a.uid >= min && a.uid != 65534) || (root && a.uid == 0))
        .filter(|a| a.home.starts_with('/') && a.home != "/")
        .map(|a| User { name: a.name.clone(), home: a.home.clone(), uid: Some(a.uid) })
        .collect();
    out.retain(|u| fs.is_dir(u.home.as_bytes()));
    out.sort_by_key(|u| (u.uid != Some(0), u.uid, u.name.clone()));
    out.dedup_by(|a, b| a.home == b.home);
    out
}

/// A line of /etc/passwd.
#[derive(Debug, Clone)]
struct Account {
    name: String,
    uid: u32,
    home: String,
}

/// Names of the old OS's users and groups by numeric id (Linux sources).
#[derive(Debug, Default)]
struct Accounts {
    passwd: Vec<Account>,
    users: HashMap<u32, String>,
    groups: HashMap<u32, String>,
}

impl Accounts {
    fn read(fs: &mut dyn FsReader, family: Family) -> Accounts {
        if family != Family::Linux {
            return Accounts::default();
        }
        let text = |fs: &mut dyn FsReader, p: &str| {
            fs.read_small(p.as_bytes(), ACCOUNTS_CAP).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
        };
        let mut a = Accounts::default();
        for line in text(fs, "/etc/passwd").lines() {
            let f: Vec<&str> = line.split(':').collect();
            if let (Some(name), Some(Ok(uid)), Some(home)) = (f.first(), f.get(2).map(|u| u.parse()), f.get(5)) {
                a.users.entry(uid).or_insert_with(|| name.to_string());
                a.passwd.push(Account { name: name.to_string(), uid, home: home.trim_end_matches('/').to_string() });
            }
        }
        for line in text(fs, "/etc/group").lines() {
            let f: Vec<&str> = line.split(':').collect();
            if let (Some(name), Some(Ok(gid))) = (f.first(), f.get(2).map(|g| g.parse::<u32>())) {
                a.groups.entry(gid).or_insert_with(|| name.to_string());
            }
        }
        a
    }
}

/// Whose files a walk collects, with which rules.
enum Scope<'r> {
    Profile { user: &'r User, rules: &'r UserSelection },
    System { rules: &'r Matcher },
}

impl<'r> Scope<'r> {
    /// What the scope includes, and what it excludes (settings exclude nothing).
    fn matchers(&self) -> (&'r Matcher, Option<&'r Matcher>) {
        match self {
            Scope::Profile { rules, .. } => (&rules.include, Some(&rules.exclude)),
            Scope::System { rules } => (rules, None),
        }
    }
}

struct Walk<'a, 'r, 's> {
    fs: &'a mut dyn FsReader,
    sel: &'a mut Selection,
    accounts: &'a Accounts,
    scope: Scope<'r>,
    seen: &'a mut Seen<'s>,
    /// First path seen for each file identity (hard links), within this scope.
    links: BTreeMap<u64, Bytes>,
    /// Bytes selected so far (for `max_total`).
    total: u64,
}

impl<'a, 'r, 's> Walk<'a, 'r, 's> {
    fn new(
        fs: &'a mut dyn FsReader,
        sel: &'a mut Selection,
        accounts: &'a Accounts,
        scope: Scope<'r>,
        seen: &'a mut Seen<'s>,
    ) -> Self {
        Walk { fs, sel, accounts, scope, seen, links: BTreeMap::new(), total: 0 }
    }

    fn skip(&mut self, source: &Bytes, size: u64, why: Why) {
        self.sel.skipped.push(Skipped { source: source.clone(), size, why });
    }

    /// Walks directory `source` (at `rel` from the scope's root), entries sorted by name.
    /// Names stay exact bytes; rules see their text (a name that is not UTF-8 is matched with
    /// U+FFFD in place of each byte that is not).
    fn dir(&mut self, source: &Bytes, rel: &Bytes) -> Result<(), SelectError> {
        let mut children = match self.fs.read_dir(source) {
            Ok(c) => c,
            Err(e) if rel.is_empty() => return Err(e.into()),
            Err(e) => {
                self.skip(source, 0, Why::Unreadable { detail: e.to_string() });
                return Ok(());
            }
        };
        children.sort_by(|a, b| a.name.cmp(&b.name));
        for child in children {
            let src = source.join(child.name.as_bytes());
            self.seen.one(&src.to_string())?;
            let rel = rel.join(child.name.as_bytes());
            let meta = match self.fs.metadata(&src) {
                Ok(m) => m,
                Err(e) => {
                    self.skip(&src, child.size, Why::Unreadable { detail: e.to_string() });
                    continue;
                }
            };
            match meta.kind {
                EntryKind::Dir => self.subdir(&src, &rel, &meta)?,
                _ => self.leaf(&src, &rel, meta),
            }
        }
        Ok(())
    }

    fn subdir(&mut self, src: &Bytes, rel: &Bytes, meta: &Metadata) -> Result<(), SelectError> {
        let (include, exclude) = self.scope.matchers();
        let text = rel.lossy();
        let wanted = include.could_match_under(&text) || include.matches(&text);
        if let Some(rule) = exclude.and_then(|x| x.takes_dir(&text)) {
            // Reported when the rules would otherwise have taken something from it, or when the
            // exclude names this very place (`AppData/Local/Temp/**`).
            let named = !rule.starts_with("**");
            if wanted || named {
                let rule = rule.to_string();
                let size = tally(self.fs, src);
                self.skip(src, size, Why::Excluded { rule });
            }
            return Ok(());
        }
        if !wanted {
            // Entered only to find excluded places to report.
            if exclude.is_some_and(|x| x.anchored_could_match_under(&text)) {
                return self.dir(src, rel);
            }
            return Ok(());
        }
        if matches!(self.scope, Scope::Profile { .. }) {
            let entry = self.entry(src, rel, Kind::Dir, meta, None);
            self.sel.entries.push(entry);
        }
        self.dir(src, rel)
    }

    fn leaf(&mut self, src: &Bytes, rel: &Bytes, meta: Metadata) {
        let (include, exclude) = self.scope.matchers();
        let text = rel.lossy();
        if !include.matches(&text) {
            return;
        }
        if let Some(rule) = exclude.and_then(|x| x.first_match(&text)) {
            let rule = rule.to_string();
            self.skip(src, meta.size, Why::Excluded { rule });
            return;
        }
        if let Some(detail) = &meta.unreadable {
            self.skip(src, meta.size, Why::Unreadable { detail: detail.clone() });
            return;
        }
        for (stream, size) in &meta.streams {
            let detail = format!("alternate data stream {stream:?}: the new OS's files have no place for it");
            let source = Bytes::new([src.as_bytes(), b":", stream.as_bytes()].concat());
            self.skip(&source, *size, Why::NotCarried { detail });
        }
        match meta.kind {
            EntryKind::Symlink => {
                let target = meta.target.clone().map(|t| self.link_target(rel, t));
                let entry = self.entry(src, rel, Kind::Symlink, &meta, target);
                self.sel.entries.push(entry);
            }
            EntryKind::File => self.file(src, rel, meta),
            EntryKind::Dir | EntryKind::Other => {
                let detail = "a device node, FIFO or socket: the new OS makes its own".to_string();
                self.skip(src, 0, Why::NotCarried { detail });
            }
        }
    }

    fn file(&mut self, src: &Bytes, rel: &Bytes, meta: Metadata) {
        if let Some(first) = meta.link_id.and_then(|id| self.links.get(&id)).cloned() {
            let entry = self.entry(src, rel, Kind::HardLink, &meta, Some(first));
            self.sel.entries.push(Entry { size: 0, ..entry });
            return;
        }
        if let Scope::Profile { rules, .. } = &self.scope {
            if let Some(cap) = rules.max_file_size.filter(|c| meta.size > *c) {
                self.skip(src, meta.size, Why::OverCap { cap });
                return;
            }
            if let Some(cap) = rules.max_total.filter(|c| self.total + meta.size > *c) {
                self.skip(src, meta.size, Why::OverCap { cap });
                return;
            }
        }
        self.total += meta.size;
        if let Some(id) = meta.link_id.filter(|_| meta.nlink != Some(1)) {
            self.links.insert(id, rel.clone());
        }
        let entry = self.entry(src, rel, Kind::File, &meta, None);
        self.sel.entries.push(entry);
    }

    fn entry(&mut self, src: &Bytes, rel: &Bytes, kind: Kind, meta: &Metadata, target: Option<Bytes>) -> Entry {
        let (user, owner, group) = match &self.scope {
            Scope::Profile { user, .. } if user.uid.is_none() => (Some(user.name.clone()), Some(user.name.clone()), None),
            Scope::Profile { user, .. } => (Some(user.name.clone()), self.owner(meta), self.group(meta)),
            Scope::System { .. } => (None, self.owner(meta), self.group(meta)),
        };
        // A hard link is another name of a file whose attributes its first name carries.
        let (xattrs, acl) = if kind == Kind::HardLink { (Vec::new(), None) } else { self.attributes(src, kind, meta) };
        Entry {
            source: src.clone(),
            user,
            path: rel.clone(),
            kind,
            size: if kind == Kind::File { meta.size } else { 0 },
            mode: meta.mode,
            owner,
            group,
            uid: meta.uid,
            gid: meta.gid,
            mtime: meta.mtime,
            attributes: meta.attributes,
            target,
            xattrs,
            acl,
            allocated: if kind == Kind::File { meta.allocated } else { None },
        }
    }

    /// The extended attributes and ACLs an entry carries: `user.*` ones and the ACLs (files
    /// and directories). The others are reported, one item per entry: `security.*` (the new
    /// OS labels its files itself), `trusted.*` and other `system.*` ones (they need privileges
    /// and mean something only to the old system), unreadable ones, and any over the bounds.
    fn attributes(&mut self, src: &Bytes, kind: Kind, meta: &Metadata) -> (Vec<Xattr>, Option<Acls>) {
        let x = &meta.xattrs;
        if x.is_empty() {
            return (Vec::new(), None);
        }
        let carries = matches!(kind, Kind::File | Kind::Dir);
        let mut kept = Vec::new();
        let mut left: Vec<String> = Vec::new();
        let mut left_bytes = 0u64;
        for (name, value) in &x.attrs {
            if carries && entry::carried_xattr_name(name) {
                kept.push(Xattr { name: name.clone(), value: Bytes::from(value.as_slice()) });
            } else {
                let why = match name.split('.').next().unwrap_or("") {
                    "security" => "the new OS sets its own security labels and capabilities",
                    "trusted" | "system" => "it needs privileges and means something only to the old system",
                    _ => "a name restore does not set",
                };
                left.push(format!("{name} ({why})"));
                left_bytes += value.len() as u64;
            }
        }
        let total: usize = kept.iter().map(|k| k.name.len() + k.value.len()).sum();
        if total > entry::MAX_XATTR_BYTES {
            left.push(format!("{} user attributes of {total} bytes (more than the {} an entry carries)", kept.len(), entry::MAX_XATTR_BYTES));
            left_bytes += total as u64;
            kept.clear();
        }
        let named = |list: &Option<Vec<AclEntry>>| -> Option<Vec<AclEntry>> {
            list.as_ref().map(|l| {
                l.iter()
                    .map(|a| {
                        let name = match (a.tag, a.id) {
                            (AclTag::User, Some(id)) => self.accounts.users.get(&id).cloned(),
                            (AclTag::Group, Some(id)) => self.accounts.groups.get(&id).cloned(),
                            _ => None,
                        };
                        AclEntry { name, ..a.clone() }
                    })
                    .collect()
            })
        };
        let mut acl = Acls { access: named(&x.acl_access), default: named(&x.acl_default) };
        if !carries && (acl.access.is_some() || acl.default.is_some()) {
            left.push("a POSIX ACL (only files and directories carry one)".into());
            acl = Acls::default();
        }
        if kind != Kind::Dir && acl.default.take().is_some() {
            left.push("a default ACL (only directories carry one)".into());
        }
        for why in &x.unreadable {
            left.push(format!("unreadable: {why}"));
        }
        if !left.is_empty() {
            let detail = format!("extended attributes not carried: {}", left.join("; "));
            self.skip(src, left_bytes, Why::NotCarried { detail });
        }
        let acl = (acl.access.is_some() || acl.default.is_some()).then_some(acl);
        (kept, acl)
    }

    fn owner(&self, meta: &Metadata) -> Option<String> {
        meta.uid.and_then(|u| self.accounts.users.get(&u).cloned())
    }

    fn group(&self, meta: &Metadata) -> Option<String> {
        meta.gid.and_then(|g| self.accounts.groups.get(&g).cloned())
    }

    /// A Windows junction or link into the same profile becomes a relative link, so it still
    /// points at the restored folder; anything else is kept as written.
    fn link_target(&self, rel: &Bytes, target: Bytes) -> Bytes {
        let Scope::Profile { user, .. } = &self.scope else { return target };
        let Some(t) = target.to_str().filter(|t| user.uid.is_none() && t.contains('\\')).map(str::to_string) else {
            return target;
        };
        let t = t.as_str().trim_start_matches("\\??\\").trim_start_matches("\\\\?\\");
        let home = user.home.replace('/', "\\");
        let under = t.get(2..).filter(|_| t.as_bytes().get(1) == Some(&b':')).and_then(|p| {
            let (head, tail) = (p.get(..home.len())?, p.get(home.len()..)?);
            (head.eq_ignore_ascii_case(&home) && (tail.is_empty() || tail.starts_with('\\'))).then_some(tail)
        });
        let Some(tail) = under else { return target };
        let depth = rel.as_bytes().iter().filter(|b| **b == b'/').count();
        let up = "../".repeat(depth);
        let inside = tail.trim_start_matches('\\').replace('\\', "/");
        Bytes::from(if inside.is_empty() {
            if depth == 0 { ".".into() } else { up.trim_end_matches('/').to_string() }
        } else {
            format!("{up}{inside}")
        })
    }
}

/// Total file bytes under `dir` (for reporting what an excluded directory held).
fn tally(fs: &mut dyn FsReader, dir: &Bytes) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.clone()];
    while let Some(d) = stack.pop() {
        for e in fs.read_dir(d.as_bytes()).unwrap_or_default() {
            match e.kind {
                EntryKind::Dir => stack.push(d.join(e.name.as_bytes())),
                _ => total += e.size,
            }
        }
    }
    total
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::migrate::testing::MemFs;
    use crate::progress::Silent;

    fn linux_fs() -> MemFs {
        let mut fs = MemFs::default();
        fs.file("/etc/passwd", b"root:x:0:0::/root:/bin/sh\nsvc:x:999:999::/srv/svc:/bin/false\nalice:x:1000:1000::/home/alice:/bin/bash\nbob:x:1001:1001::/home/bob/:/bin/bash\nnobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\n", 0, 0);
        fs.file("/etc/group", b"root:x:0:\nalice:x:1000:\nbob:x:1001:\nusers:x:100:\n", 0, 0);
        fs.file("/etc/hostname", b"old-pc\n", 0, 0);
        fs.file("/etc/ssh/ssh_host_ed25519_key", b"k", 0, 0);
        fs.file("/etc/NetworkManager/system-connections/home.nmconnection", b"[connection]\n", 0, 0);
        fs.file("/srv/svc/data", b"service", 999, 999);
        fs.file("/root/secret", b"r", 0, 0);
        fs.file("/home/alice/notes.txt", b"hello", 1000, 1000);
        fs.file("/home/alice/.cache/big", &[0; 100], 1000, 1000);
        fs.file("/home/alice/src/a.rs", b"fn main(){}", 1000, 100);
        fs.hard_link("/home/alice/src/a.rs", "/home/alice/a-link.rs");
        fs.symlink("/home/alice/latest", "src/a.rs", 1000, 1000);
        fs.file("/home/bob/b.txt", b"bob", 1001, 1001);
        fs
    }

    fn paths(sel: &Selection) -> Vec<String> {
        sel.entries.iter().map(|e| format!("{}:{}", e.user.as_deref().unwrap_or("-"), e.path)).collect()
    }

    /// A home outside `/home`, as /etc/passwd has it, is captured there.
    #[test]
    fn a_home_outside_home_is_followed() {
        let mut fs = MemFs::default();
        fs.file("/etc/passwd", b"erin:x:1000:1000::/srv/people/erin:/bin/bash\nfrank:x:1001:1001::/data/frank:/bin/bash\n", 0, 0);
        fs.file("/srv/people/erin/Documents/cv.odt", b"cv", 1000, 1000);
        let sel = select(&mut fs, &Rules::builtin(Family::Linux), &Silent, &Cancel::new()).unwrap();
        let users: Vec<(&str, &str)> = sel.users.iter().map(|u| (u.name.as_str(), u.home.as_str())).collect();
        assert_eq!(users, [("erin", "/srv/people/erin")], "frank's home does not exist");
        assert!(paths(&sel).contains(&"erin:Documents/cv.odt".to_string()), "{:?}", paths(&sel));
    }

    #[test]
    fn linux_homes_of_real_users_settings_and_exclusions() {
        let mut fs = linux_fs();
        let sel = select(&mut fs, &Rules::builtin(Family::Linux), &Silent, &Cancel::new()).unwrap();
        let names: Vec<&str> = sel.users.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["alice", "bob"]);
        assert_eq!(
            paths(&sel),
            [
                "alice:a-link.rs",
                "alice:latest",
                "alice:notes.txt",
                "alice:src",
                "alice:src/a.rs",
                "bob:b.txt",
                "-:etc/NetworkManager/system-connections/home.nmconnection",
                "-:etc/hostname",
            ]
        );
        let a = &sel.entries[0];
        assert_eq!((a.kind, a.owner.as_deref(), a.size), (Kind::File, Some("alice"), 11));
        let link = &sel.entries[4];
        assert_eq!((link.kind, link.target.as_ref().and_then(|t| t.to_str()), link.size), (Kind::HardLink, Some("a-link.rs"), 0));
        assert_eq!(link.group.as_deref(), Some("users"));
        assert_eq!(sel.entries[1].target.as_ref().and_then(|t| t.to_str()), Some("src/a.rs"));
        assert_eq!(sel.skipped.len(), 1);
        assert_eq!(sel.skipped[0].source, "/home/alice/.cache");
        assert_eq!((sel.skipped[0].size, &sel.skipped[0].why), (100, &Why::Excluded { rule: ".cache/**".into() }));
    }

    #[test]
    fn names_are_bytes_and_attributes_are_carried_or_reported() {
        use crate::fs::xattr::acl_text;
        let mut fs = linux_fs();
        // A Latin-1 name: carried exactly, matched by its lossy text (`*.txt` still excludes
        // nothing here, `**/*.tmp` would).
        fs.file(b"/home/alice/na\xefve.txt", b"latin-1", 1000, 1000);
        fs.file(b"/home/alice/caf\xe9.tmp", b"x", 1000, 1000);
        fs.file("/home/alice/tagged.txt", b"t", 1000, 1000);
        let x = fs.xattrs("/home/alice/tagged.txt");
        x.attrs = vec![
            ("user.comment".into(), b"checked".to_vec()),
            ("security.selinux".into(), b"user_u:object_r:user_home_t:s0\0".to_vec()),
            ("trusted.md5".into(), b"00".to_vec()),
        ];
        x.acl_access = Some(vec![
            AclEntry { tag: AclTag::UserObj, perm: 6, id: None, name: None },
            AclEntry { tag: AclTag::User, perm: 6, id: Some(1001), name: None },
            AclEntry { tag: AclTag::User, perm: 4, id: Some(4242), name: None },
            AclEntry { tag: AclTag::GroupObj, perm: 4, id: None, name: None },
            AclEntry { tag: AclTag::Mask, perm: 6, id: None, name: None },
            AclEntry { tag: AclTag::Other, perm: 4, id: None, name: None },
        ]);
        x.acl_default = Some(Vec::new());
        fs.xattrs("/home/alice/src").acl_default =
            Some(vec![AclEntry { tag: AclTag::Group, perm: 5, id: Some(100), name: None }]);
        fs.xattrs("/home/alice/latest").attrs = vec![("security.selinux".into(), b"l".to_vec())];
        let mut rules = Rules::builtin(Family::Linux);
        rules.exclude.push("**/*.tmp".into());
        let sel = select(&mut fs, &rules, &Silent, &Cancel::new()).unwrap();
        let latin1 = sel.entries.iter().find(|e| e.path.as_bytes() == b"na\xefve.txt").expect("the Latin-1 name");
        assert_eq!(latin1.source.as_bytes(), b"/home/alice/na\xefve.txt");
        assert_eq!(latin1.source.to_string(), "/home/alice/na\\xefve.txt");
        assert!(sel.skipped.iter().any(|s| s.source.as_bytes() == b"/home/alice/caf\xe9.tmp"), "{:?}", sel.skipped);

        let t = sel.entries.iter().find(|e| e.path == "tagged.txt").unwrap();
        assert_eq!(t.xattrs, vec![Xattr { name: "user.comment".into(), value: Bytes::from("checked") }]);
        let acl = t.acl.as_ref().unwrap();
        let named: Vec<Option<&str>> = acl.access.as_ref().unwrap().iter().map(|a| a.name.as_deref()).collect();
        assert_eq!(named, [None, Some("bob"), None, None, None, None], "bob is 1001 on the old system; 4242 has no name");
        assert_eq!(acl.default, None, "a file has no default ACL");
        let src = sel.entries.iter().find(|e| e.path == "src").unwrap();
        let d: Vec<String> = src.acl.as_ref().unwrap().default.as_ref().unwrap().iter().map(acl_text).collect();
        assert_eq!(d, ["group:users:r-x"]);
        let why = |p: &str| -> String {
            sel.skipped
                .iter()
                .filter(|s| s.source == p)
                .map(|s| match &s.why {
                    Why::NotCarried { detail } => detail.clone(),
                    w => format!("{w:?}"),
                })
                .collect()
        };
        let tagged = why("/home/alice/tagged.txt");
        assert!(tagged.contains("security.selinux") && tagged.contains("trusted.md5") && tagged.contains("default ACL"), "{tagged}");
        assert!(!tagged.contains("user.comment"), "{tagged}");
        assert!(why("/home/alice/latest").contains("security.selinux"));
        assert_eq!(sel.entries.iter().find(|e| e.path == "latest").unwrap().xattrs, Vec::new());
        // Within the bounds restore checks.
        assert!(sel.entries.iter().all(|e| entry::xattr_problem(e).is_none()));
    }

    #[test]
    fn options_add_root_and_ssh_keys_and_pick_users() {
        let mut fs = linux_fs();
        let o: crate::migrate::rules::Overrides =
            toml::from_str("users = [\"root\"]\ninclude_root = true\nssh_host_keys = true\n").unwrap();
        let sel = select(&mut fs, &Rules::builtin(Family::Linux).with(&o).unwrap(), &Silent, &Cancel::new()).unwrap();
        assert!(paths(&sel).contains(&"root:secret".to_string()));
        assert!(paths(&sel).contains(&"-:etc/ssh/ssh_host_ed25519_key".to_string()));
        assert!(!paths(&sel).iter().any(|p| p.starts_with("alice:")));
        let o: crate::migrate::rules::Overrides = toml::from_str("users = [\"mallory\"]\n").unwrap();
        let e = select(&mut fs, &Rules::builtin(Family::Linux).with(&o).unwrap(), &Silent, &Cancel::new()).unwrap_err();
        assert!(e.to_string().contains("mallory") && e.to_string().contains("alice, bob"), "{e}");
    }

    #[test]
    fn a_data_partition_gives_profiles_only() {
        // Windows: Carol's profile, nothing else; a user the rules name may be on another source.
        let mut data = MemFs::default();
        data.file("/Users/Carol/Documents/r.docx", b"doc", 0, 0);
        data.file("/Users/Public/Documents/p.txt", b"p", 0, 0);
        data.file("/Users/Dave/AppData/Local/Temp/junk", b"j", 0, 0);
        data.file("/etc/hostname", b"not a setting here\n", 0, 0);
        let picked: crate::migrate::rules::Overrides = toml::from_str("users = [\"alice\", \"carol\"]\n").unwrap();
        let windows = Rules::builtin(Family::Windows).with(&picked).unwrap();
        let data_role = || Role::Data { accounts: None };
        let sel = select_as(&mut data, &windows, data_role(), &Silent, &Cancel::new()).unwrap();
        assert_eq!(paths(&sel), ["Carol:Documents", "Carol:Documents/r.docx"]);
        let everyone = select_as(&mut data, &Rules::builtin(Family::Windows), data_role(), &Silent, &Cancel::new()).unwrap();
        let users: Vec<&str> = everyone.users.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(users, ["Carol"], "Dave's profile has nothing the rules keep");
        assert!(everyone.skipped.iter().any(|s| s.source == "/Users/Dave/AppData/Local/Temp"), "{:?}", everyone.skipped);
        let o: crate::migrate::rules::Overrides = toml::from_str("users = [\"alice\"]\n").unwrap();
        let alice_only = Rules::builtin(Family::Windows).with(&o).unwrap();
        let sel = select_as(&mut data, &alice_only, data_role(), &Silent, &Cancel::new()).unwrap();
        assert!(sel.users.is_empty() && sel.entries.is_empty(), "{:?}", sel.users);
        assert!(select(&mut data, &alice_only, &Silent, &Cancel::new()).is_err(), "as the one source, alice must be on it");
        let sel = select_as(&mut data, &alice_only, Role::Os, &Silent, &Cancel::new()).unwrap();
        assert!(sel.users.is_empty(), "as the OS of a job, alice may be on another source");
        // No Users folder: no profiles, no error.
        let mut empty = MemFs::default();
        empty.file("/photos/a.jpg", b"jpg", 0, 0);
        let sel = select_as(&mut empty, &Rules::builtin(Family::Windows), data_role(), &Silent, &Cancel::new()).unwrap();
        assert!(sel.users.is_empty() && sel.entries.is_empty());

        // Linux: the homes of the OS's accounts, owners named by the OS, its account records,
        // and no settings (the data partition's /etc is not the OS's).
        let mut os = linux_fs();
        let mut home = MemFs::default();
        home.file("/home/alice/music/a.ogg", b"ogg", 1000, 100);
        home.file("/home/carl/c.txt", b"c", 1002, 1002);
        home.file("/etc/hostname", b"other\n", 0, 0);
        let linux = Rules::builtin(Family::Linux);
        let sel = select_as(&mut home, &linux, Role::Data { accounts: Some(&mut os) }, &Silent, &Cancel::new()).unwrap();
        assert_eq!(paths(&sel), ["alice:music", "alice:music/a.ogg"]);
        let ogg = sel.entries.iter().find(|e| e.path == "music/a.ogg").unwrap();
        assert_eq!((ogg.owner.as_deref(), ogg.group.as_deref()), (Some("alice"), Some("users")));
        assert_eq!(sel.accounts.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), ["alice"]);
        // Without the OS's accounts, a data partition with no /etc/passwd has no Linux profile.
        let sel = select_as(&mut home, &linux, data_role(), &Silent, &Cancel::new()).unwrap();
        assert!(sel.users.is_empty() && sel.entries.is_empty());
    }

    #[test]
    fn a_cancelled_walk_stops_at_the_next_entry() {
        struct StopAt(Cancel, u64);
        impl Sink for StopAt {
            fn event(&self, e: &crate::progress::Event) {
                if matches!(e, crate::progress::Event::Entries { done, .. } if *done >= self.1) {
                    self.0.cancel();
                }
            }
        }
        let mut fs = linux_fs();
        let cancel = Cancel::new();
        let e = select(&mut fs, &Rules::builtin(Family::Linux), &StopAt(cancel.clone(), 1), &cancel).unwrap_err();
        assert_eq!((e.kind, e.written), (crate::error::Kind::Cancelled, crate::error::Written::Nothing));
    }

    #[test]
    fn size_caps_leave_files_out_with_the_reason() {
        let mut fs = linux_fs();
        let o: crate::migrate::rules::Overrides = toml::from_str("[user.alice]\nmax_file_size = 5\n").unwrap();
        let sel = select(&mut fs, &Rules::builtin(Family::Linux).with(&o).unwrap(), &Silent, &Cancel::new()).unwrap();
        assert!(sel.skipped.iter().any(|s| s.source == "/home/alice/src/a.rs" && s.why == Why::OverCap { cap: 5 }));
        assert!(paths(&sel).contains(&"alice:notes.txt".to_string()));
    }

    #[test]
    fn windows_profiles_skip_builtin_accounts_and_report_what_is_left_out() {
        let mut fs = MemFs::default();
        fs.file("/Users/Default/NTUSER.DAT", b"d", 0, 0);
        fs.file("/Users/Public/Documents/p.txt", b"p", 0, 0);
        fs.file("/Users/desktop.ini", b"i", 0, 0);
        fs.file("/Users/Carol/NTUSER.DAT", b"regf", 0, 0);
        fs.file("/Users/Carol/Documents/r.docx", b"doc", 0, 0);
        fs.file("/Users/Carol/Documents/x.tmp", b"tmp", 0, 0);
        fs.file("/Users/Carol/AppData/Local/Temp/junk", b"junk", 0, 0);
        fs.file("/Users/Carol/AppData/Local/Other/state", b"s", 0, 0);
        fs.file("/Users/Carol/AppData/Roaming/Microsoft/Signatures/s.htm", b"sig", 0, 0);
        fs.symlink("/Users/Carol/My Documents", "\\??\\C:\\Users\\Carol\\Documents", 0, 0);
        fs.streams("/Users/Carol/Documents/r.docx", &[("Zone.Identifier", 26)]);
        fs.unreadable("/Users/Carol/Documents/secret.efs", "an EFS-encrypted file");
        let sel = select(&mut fs, &Rules::builtin(Family::Windows), &Silent, &Cancel::new()).unwrap();
        assert_eq!(sel.users.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(), ["Carol"]);
        assert_eq!(
            paths(&sel),
            [
                "Carol:AppData",
                "Carol:AppData/Roaming",
                "Carol:AppData/Roaming/Microsoft",
                "Carol:AppData/Roaming/Microsoft/Signatures",
                "Carol:AppData/Roaming/Microsoft/Signatures/s.htm",
                "Carol:Documents",
                "Carol:Documents/r.docx",
                "Carol:NTUSER.DAT",
            ]
        );
        assert!(sel.entries.iter().all(|e| e.owner.as_deref() == Some("Carol")));
        let why: Vec<(String, &Why)> = sel.skipped.iter().map(|s| (s.source.to_string(), &s.why)).collect();
        assert!(why.contains(&("/Users/Carol/AppData/Local/Temp".into(), &Why::Excluded { rule: "AppData/Local/Temp/**".into() })));
        assert!(why.contains(&("/Users/Carol/Documents/x.tmp".into(), &Why::Excluded { rule: "**/*.tmp".into() })));
        assert!(why.iter().any(|(s, w)| s == "/Users/Carol/Documents/r.docx:Zone.Identifier" && matches!(w, Why::NotCarried { .. })));
        assert!(why.iter().any(|(s, w)| s == "/Users/Carol/Documents/secret.efs" && matches!(w, Why::Unreadable { .. })));
        // The junction is outside the include globs ("My Documents" is not in the list).
        let mut rules = Rules::builtin(Family::Windows);
        rules.include.push("My Documents".into());
        let sel = select(&mut fs, &rules, &Silent, &Cancel::new()).unwrap();
        let j = sel.entries.iter().find(|e| e.path == "My Documents").unwrap();
        assert_eq!((j.kind, j.target.as_ref().and_then(|t| t.to_str())), (Kind::Symlink, Some("Documents")));
    }
}
