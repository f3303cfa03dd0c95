//! Which partition table a disk has, read with the matching reader: sector 0 decides between
//! an ordinary MBR and a GPT behind a protective MBR, and mismatches are said.

use super::device::SharedDisk;
use super::gpt_read;
use super::mbr_read::{self, Sector0};
use super::table::{Note, Table, TableKind};

/// The partition table: `Ok(None)` when the disk has none.
pub fn read_table(disk: &SharedDisk, ss: u32) -> Result<Option<Table>, Note> {
    match mbr_read::sector0(disk) {
        Sector0::Mbr(h) if h.iter().any(|(_, e)| e.sys != 0 && e.sectors != 0) => {
            let mut t = mbr_read::read(disk, &h, ss);
            if gpt_read::read(disk, ss).is_some_and(|g| !g.entries.is_empty()) {
                t.notes.push(Note::warning(
                    "GPT structures are present too, but sector 0 holds an ordinary MBR, which \
                     is what Linux and Windows use; remove the stale GPT (gdisk: x, z — on \
                     the right disk) before changing this disk",
                ));
            }
            Ok(Some(t))
        }
        Sector0::Protective => Ok(Some(gpt_read::read(disk, ss).unwrap_or_else(|| Table {
            kind: TableKind::Gpt,
            sector_size: ss,
            entries: Vec::new(),
            notes: vec![sector_size_mismatch(disk, ss).unwrap_or_else(|| {
                Note::error(
                    "sector 0 holds a protective MBR but neither GPT header was found; the \
                     partitions cannot be listed — restore the GPT (gdisk recovery menu) before \
                     migrating",
                )
            })],
        }))),
        other => match gpt_read::read(disk, ss) {
            Some(mut t) => {
                t.notes.insert(
                    0,
                    Note::warning(
                        "the GPT has no protective MBR in front of it, so Linux ignores it; \
                         write one with gdisk (w) before using this disk",
                    ),
                );
                Ok(Some(t))
            }
            None => match (sector_size_mismatch(disk, ss), other) {
                (Some(mismatch), _) => Err(mismatch),
                (None, Sector0::Invalid(why)) => Err(Note::warning(format!(
                    "sector 0 has a boot signature but no valid partition table ({why})"
                ))),
                (None, _) => Ok(None),
            },
        },
    }
}

/// A GPT written for the other sector size (512 vs 4096): a USB bridge that changes the sector
/// size, or an image copied between 512e and 4Kn disks.
fn sector_size_mismatch(disk: &SharedDisk, ss: u32) -> Option<Note> {
    let other = if ss == 4096 { 512 } else { 4096 };
    gpt_read::has_signature(disk, other).then(|| {
        Note::error(format!(
            "the GPT was written for {other}-byte sectors but the disk reports {ss}-byte sectors \
             (a USB bridge that changes the sector size, or an image copied between 512e and 4Kn \
             disks); partitions cannot be listed safely — attach the disk directly or re-create \
             the table for {ss}-byte sectors"
        ))
    })
}
