//! The whole restore checked before the first write: every entry's path, user, link and
//! size. One bad entry refuses the store — a capture never produces one, so it is damage or
//! an attack, and restoring "the rest" of such a store is not safe.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use super::paths::{check_link_target, RelPath};
use crate::migrate::entry::{self, Kind};
use crate::migrate::store::Manifest;

/// What an entry's path is relative to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Base {
    /// The new OS's root (settings: `etc/hostname`).
    Root,
    /// The home directory of the account a profile maps to.
    Home(String),
}

/// One checked entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Index in the manifest's entries.
    pub index: usize,
    pub base: Base,
    pub rel: RelPath,
    pub kind: Kind,
    /// For a hard link: the item (index in [`Plan::items`]) it is another name of.
    pub link_to: Option<usize>,
}

/// The checked restore.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub items: Vec<Item>,
    /// Profile → number of its entries.
    pub profiles: BTreeMap<String, u64>,
    /// Bytes of file data per base (hard links not counted).
    pub bytes: BTreeMap<Base, u64>,
}

/// Why a store's manifest is refused, with every problem found (the first ones).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub problems: Vec<String>,
    /// How many problems there were in all.
    pub count: usize,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the store's manifest has {} unsafe or inconsistent entr{}", self.count, if self.count == 1 { "y" } else { "ies" })?;
        for p in &self.problems {
            write!(f, "\n  - {p}")?;
        }
        if self.count > self.problems.len() {
            write!(f, "\n  - … and {} more", self.count - self.problems.len())?;
        }
        Ok(())
    }
}

const SHOWN: usize = 20;

/// Checks a profile name from the store: it names an account and a passwd line.
fn check_profile(p: &str) -> Result<(), String> {
    if p.is_empty() || p.len() > 255 || p == "." || p == ".." || p.contains(['/', '\0', ':', '\n']) {
        return Err(format!("user {p:?} is not a usable account name"));
    }
    Ok(())
}

/// Checks every entry of `m`; see the module doc.
pub fn check(m: &Manifest) -> Result<Plan, Refusal> {
    let mut problems = Vec::new();
    let mut plan = Plan::default();
    // (base, path) → item index and kind, for duplicates, links and parents.
    let mut seen: HashMap<(Base, RelPath), (usize, Kind)> = HashMap::with_capacity(m.entries.len());
    for (index, se) in m.entries.iter().enumerate() {
        let e = &se.entry;
        let what = if e.source.is_empty() { e.path.to_string() } else { e.source.to_string() };
        let base = match &e.user {
            None => Base::Root,
            Some(u) => {
                if let Err(why) = check_profile(u) {
                    problems.push(format!("{what}: {why}"));
                    continue;
                }
                Base::Home(u.clone())
            }
        };
        let rel = match RelPath::parse(&e.path) {
            Ok(r) => r,
            Err(err) => {
                problems.push(format!("{what}: path {err}"));
                continue;
            }
        };
        let mut link_to = None;
        match e.kind {
            Kind::Symlink => match &e.target {
                Some(t) => {
                    if let Err(err) = check_link_target(&e.path, t) {
                        problems.push(format!("{what}: {}", err.why));
                    }
                }
                None => problems.push(format!("{what}: a symbolic link without a target")),
            },
            Kind::HardLink => {
                let found = e.target.as_deref().map(RelPath::parse).and_then(Result::ok).and_then(|t| seen.get(&(base.clone(), t)));
                match found {
                    Some((i, Kind::File)) => link_to = Some(*i),
                    Some((_, k)) => problems.push(format!("{what}: a hard link to a {k:?}")),
                    None => problems.push(format!(
                        "{what}: a hard link to {:?}, which is not a file restored before it for the same user",
                        e.target.as_ref().map(ToString::to_string).unwrap_or_default()
                    )),
                }
                if e.size != 0 {
                    problems.push(format!("{what}: a hard link with {} bytes of data", e.size));
                }
            }
            Kind::File => *plan.bytes.entry(base.clone()).or_default() += e.size,
            Kind::Dir => {}
        }
        if e.kind != Kind::File && e.size != 0 {
            problems.push(format!("{what}: a {:?} with a size of {} bytes", e.kind, e.size));
        }
        if let Some(why) = entry::xattr_problem(e) {
            problems.push(format!("{what}: {why}"));
        }
        let item = plan.items.len();
        if seen.insert((base.clone(), rel.clone()), (item, e.kind)).is_some() {
            problems.push(format!("{what}: {rel} appears twice in the store"));
        }
        if let Base::Home(u) = &base {
            *plan.profiles.entry(u.clone()).or_default() += 1;
        }
        plan.items.push(Item { index, base, rel, kind: e.kind, link_to });
    }
    // No entry may lie below a link or a file of the same store (before or after it): a
    // capture never produces that, and it is how a store would steer a file through its own
    // link.
    for item in &plan.items {
        for n in 1..item.rel.parts().len() {
            if let Some((_, k)) = seen.get(&(item.base.clone(), item.rel.prefix(n))) {
                if *k != Kind::Dir {
                    problems.push(format!(
                        "{}: lies below {}, which the store restores as a {k:?}, not a directory",
                        m.entries[item.index].entry.source,
                        item.rel.prefix(n)
                    ));
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(plan)
    } else {
        let count = problems.len();
        problems.truncate(SHOWN);
        Err(Refusal { problems, count })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::fs::Bytes;
    use crate::migrate::entry::Entry;
    use crate::migrate::store::{StoredEntry, Totals};

    pub fn entry(user: Option<&str>, path: &str, kind: Kind, size: u64, target: Option<&str>) -> StoredEntry {
        StoredEntry {
            entry: Entry {
                source: format!("/old/{path}").into(),
                user: user.map(String::from),
                path: path.into(),
                kind,
                size,
                mode: None,
                owner: None,
                group: None,
                uid: None,
                gid: None,
                mtime: None,
                attributes: None,
                target: target.map(Bytes::from),
                xattrs: Vec::new(),
                acl: None,
                allocated: None,
            },
            id: 0,
            crc32: 0,
            data: None,
        }
    }

    pub fn manifest(entries: Vec<StoredEntry>) -> Manifest {
        Manifest {
            format: 1,
            plan_sha256: "0".repeat(64),
            started: 0,
            finished: 0,
            info: crate::migrate::job_info::JobInfo::default(),
            users: Vec::new(),
            chunk_size: 1 << 20,
            segment_limit: 1 << 30,
            zstd_level: 1,
            entries,
            skipped: Vec::new(),
            segments: Vec::new(),
            totals: Totals::default(),
        }
    }

    #[test]
    fn a_normal_capture_passes() {
        let m = manifest(vec![
            entry(Some("Carol"), "Documents", Kind::Dir, 0, None),
            entry(Some("Carol"), "Documents/a.txt", Kind::File, 5, None),
            entry(Some("Carol"), "Documents/b.txt", Kind::HardLink, 0, Some("Documents/a.txt")),
            entry(Some("Carol"), "Documents/l", Kind::Symlink, 0, Some("/etc/passwd")),
            entry(None, "etc/hostname", Kind::File, 4, None),
        ]);
        let p = check(&m).unwrap();
        assert_eq!(p.items.len(), 5);
        assert_eq!(p.items[2].link_to, Some(1));
        assert_eq!(p.profiles["Carol"], 4);
        assert_eq!(p.bytes[&Base::Home("Carol".into())], 5);
        assert_eq!(p.bytes[&Base::Root], 4);
    }

    fn refused(entries: Vec<StoredEntry>) -> String {
        check(&manifest(entries)).unwrap_err().to_string()
    }

    #[test]
    fn hostile_manifests_are_refused() {
        assert!(refused(vec![entry(Some("Carol"), "../../etc/passwd", Kind::File, 1, None)]).contains("`..`"));
        assert!(refused(vec![entry(None, "/etc/shadow", Kind::File, 1, None)]).contains("absolute"));
        let through = refused(vec![
            entry(Some("Carol"), "x", Kind::Symlink, 0, Some("/etc")),
            entry(Some("Carol"), "x/passwd", Kind::File, 1, None),
        ]);
        assert!(through.contains("lies below x"), "{through}");
        let after = refused(vec![
            entry(Some("Carol"), "x/passwd", Kind::File, 1, None),
            entry(Some("Carol"), "x", Kind::Symlink, 0, Some("/etc")),
        ]);
        assert!(after.contains("lies below x"), "{after}");
        assert!(refused(vec![entry(Some("Carol"), "a", Kind::File, 1, None), entry(Some("Carol"), "a", Kind::File, 1, None)])
            .contains("twice"));
        assert!(refused(vec![entry(Some("Carol"), "h", Kind::HardLink, 0, Some("/etc/shadow"))]).contains("hard link"));
        assert!(refused(vec![
            entry(Some("Carol"), "h", Kind::HardLink, 0, Some("later")),
            entry(Some("Carol"), "later", Kind::File, 1, None),
        ])
        .contains("not a file restored before it"));
        assert!(refused(vec![entry(Some("Carol"), "d", Kind::Dir, 0, None), entry(Some("Carol"), "h", Kind::HardLink, 0, Some("d"))])
            .contains("hard link to a Dir"));
        assert!(refused(vec![entry(Some("../root"), "x", Kind::File, 1, None)]).contains("account name"));
        assert!(refused(vec![entry(Some("Carol"), "l", Kind::Symlink, 0, None)]).contains("without a target"));
        assert!(refused(vec![entry(Some("Carol"), "d", Kind::Dir, 1 << 40, None)]).contains("size"));
        let many: Vec<StoredEntry> = (0..30).map(|i| entry(None, &format!("/abs{i}"), Kind::File, 0, None)).collect();
        let text = refused(many);
        assert!(text.contains("30 unsafe") && text.contains("10 more"), "{text}");
        assert!(!text.contains("nothing was written"), "{text}");
    }

    #[test]
    fn users_are_separate_namespaces() {
        let m = manifest(vec![
            entry(Some("Carol"), "x", Kind::Symlink, 0, Some("/")),
            entry(Some("Dave"), "x/y", Kind::File, 0, None),
        ]);
        assert!(check(&m).is_ok(), "Dave's x is not Carol's link");
    }
}
