//! Finding a store by its locator, without the partition table: candidate positions are
//! checked at every 1 MiB boundary from the end of the disk backwards (the tail copy ends on
//! one; the head copy sits two sectors after one).

use super::locator::{self, Locator, LocatorError};
use super::model::MIB;
use crate::disk::device::ReadAt;

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
    let list: Vec<String> = d.iter().map(|(at, e)| format!("at byte {at}: {e}")).collect();
    format!(
        "; records with the locator magic were found but are damaged ({}); the store cannot be \
         trusted — do not roll back from it",
        list.join("; ")
    )
}

fn read_record(disk: &dyn ReadAt, at: u64) -> Option<Result<Locator, LocatorError>> {
    let mut b = [0u8; locator::LEN];
    disk.read_exact_at(at, &mut b).ok()?;
    if &b[..8] != locator::MAGIC {
        return None;
    }
    Some(Locator::decode(&b))
}

/// Scans `disk` from the end for a store locator; returns the first valid one, with what is
/// known about its other copy.
pub fn locate(disk: &dyn ReadAt) -> Result<Found, LocateError> {
    let size = disk.size();
    let mut damaged = Vec::new();
    let mut boundary = size / MIB * MIB;
    loop {
        for at in locator::candidates(boundary).into_iter().flatten() {
            if at + locator::LEN as u64 > size {
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
                    return Ok(found);
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
        if boundary == 0 {
            break;
        }
        boundary -= MIB;
    }
    Err(LocateError::NotFound(damaged))
}
