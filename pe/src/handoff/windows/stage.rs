//! Staging, offline in the PE: each captured profile copied out of the store into
//! `staged\<name>\` of the new C: (a mirror of the old `Users\<name>\`, timestamps kept), with
//! `staged\<name>.json`, the list the agent moves and checks at the user's first logon
//! (`docs/windows.md`, "The staged folder"). Every path from the store is checked as restore
//! checks it; links are not staged.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use inplace_agent::manifest::{Entry as StagedEntry, Kind as StagedKind, Manifest as StagedManifest};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result, Written};
use crate::fs::Time;
use crate::migrate::entry::Kind;
use crate::migrate::restore::paths::RelPath;
use crate::migrate::store::{EntrySink, Store};
use crate::progress::{Cancel, Meter, Sink};
use crate::step::Step;

/// What was staged for one user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StagedUser {
    pub name: String,
    pub files: u64,
    pub bytes: u64,
}

/// What staging did, over every capture.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Staging {
    pub users: Vec<StagedUser>,
    /// Store entries not staged, with the reason.
    pub left_out: Vec<String>,
}

fn io(problem: String) -> Error {
    Error::io(Step::HandOff, problem).written(Written::Disk)
}

/// A user name usable as one folder name on Windows.
pub fn valid_user(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.ends_with(['.', ' '])
        && !name.chars().any(|c| c.is_control() || r#"\/:*?"<>|"#.contains(c))
}

/// Stages the profiles of the selected capture of `store` under `staged` (which exists),
/// adding to `out`. Files already staged are written again (a resumed hand-off).
pub fn stage_capture(store: &mut Store, staged: &Path, out: &mut Staging, sink: &dyn Sink, cancel: &Cancel) -> Result<()> {
    let manifest = store.manifest().map_err(|e| e.error(Step::HandOff))?;
    let total: u64 = manifest.entries.iter().filter(|e| e.entry.user.is_some()).map(|e| e.entry.size).sum();
    let meter = Meter::start(sink, &format!("staging {}/ into the new Windows", store.selected()), total);
    let mut users: BTreeMap<String, (Vec<StagedEntry>, StagedUser)> = BTreeMap::new();
    let mut dirs: Vec<(PathBuf, Option<Time>)> = Vec::new();
    let mut by_path: BTreeMap<(String, String), (PathBuf, StagedEntry)> = BTreeMap::new();
    for (index, stored) in manifest.entries.iter().enumerate() {
        cancel.check(Step::HandOff, Written::Disk)?;
        let e = &stored.entry;
        let shown = e.source.lossy().into_owned();
        let Some(user) = e.user.as_deref() else {
            out.left_out.push(format!("{shown}: not in a profile (Windows settings are not carried)"));
            continue;
        };
        if !valid_user(user) {
            out.left_out.push(format!("{shown}: the user name {user:?} cannot be a Windows folder name"));
            continue;
        }
        let rel = match RelPath::parse(e.path.as_bytes()) {
            Ok(r) if !r.is_empty() => r,
            Ok(_) => continue,
            Err(why) => {
                out.left_out.push(format!("{shown}: refused: {why}"));
                continue;
            }
        };
        let Ok(rel_str) = String::from_utf8(rel.to_bytes()) else {
            out.left_out.push(format!("{shown}: its name is not valid Unicode (an unpaired UTF-16 surrogate)"));
            continue;
        };
        if e.kind == Kind::File && rel.name().eq_ignore_ascii_case(b"desktop.ini") {
            out.left_out.push(format!("{shown}: a folder's view settings (the new Windows has its own)"));
            continue;
        }
        let dest = staged.join(user).join(&rel_str);
        let entry = |kind: StagedKind, size: Option<u64>, sha256: Option<String>| StagedEntry {
            path: rel_str.clone(),
            kind,
            size,
            sha256,
            mtime_ns: e.mtime.map(|t| t.secs.saturating_mul(1_000_000_000).saturating_add(i64::from(t.nanos))),
            created_ns: None,
        };
        let staged_entry = match e.kind {
            Kind::Dir => {
                fs::create_dir_all(&dest).map_err(|err| io(format!("creating {}: {err}", dest.display())))?;
                dirs.push((dest.clone(), e.mtime));
                entry(StagedKind::Dir, None, None)
            }
            Kind::File => {
                let sha = write_file(store, &manifest, index, &dest, &meter)?;
                set_mtime(&dest, e.mtime)?;
                entry(StagedKind::File, Some(e.size), Some(sha))
            }
            Kind::HardLink => {
                let target = e.target.as_ref().map(|t| t.lossy().into_owned()).unwrap_or_default();
                let Some((from, first)) = by_path.get(&(user.to_string(), target.clone())).cloned() else {
                    out.left_out.push(format!("{shown}: a second name of {target}, which is not staged"));
                    continue;
                };
                fs::copy(&from, &dest).map_err(|err| io(format!("copying {} to {}: {err}", from.display(), dest.display())))?;
                set_mtime(&dest, e.mtime)?;
                StagedEntry { path: rel_str.clone(), ..first }
            }
            Kind::Symlink => {
                out.left_out.push(format!("{shown}: a link or junction (the new Windows makes its own)"));
                continue;
            }
        };
        let (list, totals) = users
            .entry(user.to_string())
            .or_insert_with(|| (Vec::new(), StagedUser { name: user.to_string(), files: 0, bytes: 0 }));
        if staged_entry.kind == StagedKind::File {
            totals.files += 1;
            totals.bytes += staged_entry.size.unwrap_or(0);
            by_path.insert((user.to_string(), rel_str.clone()), (dest, staged_entry.clone()));
        }
        list.push(staged_entry);
    }
    meter.flush();
    // Folders last, deepest first: writing into a folder changes its time.
    for (dir, t) in dirs.iter().rev() {
        set_mtime(dir, *t)?;
    }
    for (name, (entries, totals)) in users {
        let m = StagedManifest { version: 1, user: name.clone(), entries };
        let path = staged.join(format!("{name}.json"));
        let json = serde_json::to_vec_pretty(&m).map_err(|e| io(e.to_string()))?;
        fs::write(&path, json).map_err(|e| io(format!("writing {}: {e}", path.display())))?;
        sink.log(&format!("staged {} files ({}) of {name}", totals.files, crate::units::human(totals.bytes)));
        match out.users.iter_mut().find(|u| u.name == name) {
            Some(u) => {
                u.files += totals.files;
                u.bytes += totals.bytes;
            }
            None => out.users.push(totals),
        }
    }
    Ok(())
}

/// One file out of the store, checked by the store's checksums; returns its SHA-256.
fn write_file(store: &mut Store, manifest: &crate::migrate::store::Manifest, index: usize, dest: &Path, meter: &Meter<'_>) -> Result<String> {
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).map_err(|e| io(format!("creating {}: {e}", parent.display())))?;
    }
    let file = File::create(dest).map_err(|e| io(format!("creating {}: {e}", dest.display())))?;
    let mut sink = Hashing { file: &file, sha: Sha256::new(), meter };
    store.read_entry(manifest, index, &mut sink).map_err(|e| e.error(Step::HandOff).written(Written::Disk))?;
    Ok(crate::migrate::store::manifest::hex(&sink.sha.finalize()))
}

fn set_mtime(path: &Path, t: Option<Time>) -> Result<()> {
    use rustix::fs::{utimensat, AtFlags, CWD};
    if t.is_none() {
        return Ok(());
    }
    utimensat(CWD, path, &crate::migrate::restore::apply::times(t), AtFlags::empty())
        .map_err(|e| io(format!("setting the time of {}: {e}", path.display())))
}

/// Writes an entry's data into a file and hashes it, holes included.
struct Hashing<'a, 'm> {
    file: &'a File,
    sha: Sha256,
    meter: &'a Meter<'m>,
}

impl EntrySink for Hashing<'_, '_> {
    fn data(&mut self, offset: u64, bytes: &[u8]) -> std::io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(self.file, bytes, offset)?;
        self.sha.update(bytes);
        self.meter.add(bytes.len() as u64);
        Ok(())
    }
    fn hole(&mut self, _offset: u64, len: u64) -> std::io::Result<()> {
        let zeros = [0u8; 64 << 10];
        let mut left = len;
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            self.sha.update(&zeros[..n]);
            left -= n as u64;
        }
        self.meter.add(len);
        Ok(())
    }
    fn finish(&mut self, size: u64) -> std::io::Result<()> {
        self.file.set_len(size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_folder_names() {
        for ok in ["Carol", "Jean-Luc Picard", "ölaf"] {
            assert!(valid_user(ok), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", r"a\b", "C:", "trailing.", "nul\0"] {
            assert!(!valid_user(bad), "{bad:?}");
        }
    }
}
