//! The PE's last numbering and unsent envelopes, from the store's journal
//! (`journal\report-state.json`, `journal\report-spool.jsonl` on the FAT32 store). The PE keeps
//! them there after the hand-off wrote the spool into C:, so they hold its last events. The
//! store is found as cleanup finds it (label INPLACE, FAT32, a locator of this job), or given.

use super::spool::{decode, Numbering};
use crate::cleanup::{find_stores, locator, Machine};
use serde_json::Value;
use std::path::{Path, PathBuf};

pub const STATE: &str = "journal/report-state.json";
pub const SPOOL: &str = "journal/report-spool.jsonl";

/// Where the store is.
pub enum Where<'a> {
    /// Its root folder (`--store E:\`).
    Given(&'a Path),
    /// Among the volumes with a drive letter.
    Find(&'a dyn Machine),
}

fn root(w: &Where, job_id: &str) -> Result<PathBuf, String> {
    let machine = match w {
        Where::Given(p) => return Ok(p.to_path_buf()),
        Where::Find(m) => *m,
    };
    let id = locator::parse_job_id(job_id).ok_or_else(|| format!("the job id {job_id:?} is not 32 hex digits"))?;
    let found = find_stores(machine, id)?;
    match found.stores.as_slice() {
        [one] => Ok(machine.root(*one)),
        [] if found.notes.is_empty() => Err("no volume labelled INPLACE (FAT32) has a drive letter".into()),
        [] => Err(found.notes.join("; ")),
        _ => Err("more than one volume holds this job's store".into()),
    }
}

/// The journal's numbering and unsent envelopes, or why they cannot be read.
pub fn journal(w: &Where, job_id: &str) -> Result<(Numbering, Vec<Value>), String> {
    let root = root(w, job_id)?;
    let state = root.join(STATE);
    let bytes = std::fs::read(&state).map_err(|e| format!("the store's {} cannot be read: {e}", state.display()))?;
    let n: Numbering = serde_json::from_slice(&bytes).map_err(|e| format!("the store's {} is not valid: {e}", state.display()))?;
    if !n.job_id.eq_ignore_ascii_case(job_id) {
        return Err(format!("the store's {} is of another job ({})", state.display(), n.job_id));
    }
    let unsent = std::fs::read(root.join(SPOOL)).map(|b| decode(&b)).unwrap_or_default();
    Ok((n, unsent))
}
