//! Finding a store by its locator, without the partition table: candidate positions are
//! checked at every 1 MiB boundary from the end of the disk backwards (the tail copy ends on
//! one; the head copy sits two sectors after one).

use std::path::Path;

use super::record::{self, Locator, LocatorError};
use super::ALIGN;
use crate::disk::device::{Device, ReadAt};
use crate::error::{Error, Hint};
use crate::step::Step;

/// A locator found on the disk.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Found {
    pub locator: Locator,
    /// Byte offsets where a valid copy was read.
    pub valid_at: Vec<u64>,
    /// Copies that should be there but are damaged.
    pub damaged: Vec<(u64, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum LocateError {
    #[error("no store locator on this disk{}", damaged_text(.0))]
    NotFound(Vec<(u64, LocatorError)>),
    #[error("reading the disk: {0}")]
    Io(#[from] std::io::Error),
}

fn damaged_text(d: &[(u64, LocatorError)]) -> String {
    if d.is_empty() {
        return String::new();
    }
    format!("{}; {DO_NOT_TRUST}", damaged_list(d))
}

const DO_NOT_TRUST: &str = "the store cannot be trusted — do not roll back from it";

fn damaged_list(d: &[(u64, LocatorError)]) -> String {
    let list: Vec<String> = d.iter().map(|(at, e)| format!("at byte {at}: {e}")).collect();
    format!("; records with the locator magic were found but are damaged ({})", list.join("; "))
}

impl LocateError {
    /// The engine's error for `step`, about `disk`.
    pub fn into_error(self, step: Step, disk: &str) -> Error {
        match self {
            LocateError::NotFound(d) if d.is_empty() => Error::refused(step, format!("{disk}: no store locator on this disk")),
            LocateError::NotFound(d) => Error::damaged(step, format!("{disk}: no store locator on this disk{}", damaged_list(&d)))
                .hint(Hint::Advice { text: DO_NOT_TRUST.into() }),
            LocateError::Io(e) => Error::io(step, format!("{disk}: {e}")),
        }
    }
}

/// Opens `disk` read-only and scans it for a store locator; errors belong to `step`.
pub fn find(disk: &Path, step: Step) -> Result<Found, Error> {
    let dev = Device::open(disk).map_err(|e| Error::io(step, e.to_string()))?;
    locate(&dev).map_err(|e| e.into_error(step, &disk.display().to_string()))
}

fn read_record(disk: &dyn ReadAt, at: u64) -> Option<Result<Locator, LocatorError>> {
    let mut b = [0u8; record::LEN];
    disk.read_exact_at(at, &mut b).ok()?;
    if &b[..8] != record::MAGIC {
        return None;
    }
    Some(Locator::decode(&b))
}

/// Scans `disk` from the end for a store locator; returns the first valid one, with what is
/// known about its other copy.
pub fn locate(disk: &dyn ReadAt) -> Result<Found, LocateError> {
    let mut damaged = Vec::new();
    let mut boundary = disk.size() / ALIGN * ALIGN;
    loop {
        if let Some(found) = at_boundary(disk, boundary, &mut damaged) {
            return Ok(found);
        }
        if boundary == 0 {
            break;
        }
        boundary -= ALIGN;
    }
    Err(LocateError::NotFound(damaged))
}

/// A store locator at one of `boundaries` (the starts and ends of the partitions of the current
/// table, where a carved store's copies sit), without scanning the disk: a few reads. `None`
/// when none of them holds a valid one.
pub fn locate_at(disk: &dyn ReadAt, boundaries: &[u64]) -> Option<Found> {
    let mut damaged = Vec::new();
    boundaries.iter().find_map(|b| at_boundary(disk, *b, &mut damaged))
}

/// The valid locator at one of the candidate places of `boundary` that names itself there
/// and this disk's size; records with the magic that fail go to `damaged`.
fn at_boundary(disk: &dyn ReadAt, boundary: u64, damaged: &mut Vec<(u64, LocatorError)>) -> Option<Found> {
    let size = disk.size();
    for at in record::candidates(boundary).into_iter().flatten() {
        if at + record::LEN as u64 > size {
            continue;
        }
        match read_record(disk, at) {
            None => {}
            Some(Err(e)) => damaged.push((at, e)),
            Some(Ok(l)) if l.copies().contains(&at) && l.disk_bytes == size => {
                let mut found = Found { locator: l.clone(), valid_at: Vec::new(), damaged: Vec::new() };
                for c in l.copies() {
                    match read_record(disk, c) {
                        Some(Ok(other)) if other == l => found.valid_at.push(c),
                        Some(Ok(_)) => found.damaged.push((c, "a different locator".into())),
                        Some(Err(e)) => found.damaged.push((c, e.to_string())),
                        None => found.damaged.push((c, "missing".into())),
                    }
                }
                return Some(found);
            }
            Some(Ok(l)) => damaged.push((
                at,
                LocatorError::Field(format!(
                    "it describes a {}-byte disk with copies at {:?}, not this one",
                    l.disk_bytes,
                    l.copies()
                )),
            )),
        }
    }
    None
}
