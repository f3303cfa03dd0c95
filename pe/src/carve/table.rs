//! What a plan does to the partition table: the [`Patch`] its steps make on the table as read,
//! and the changes the kernel must be told about on a live block device.

use super::layout::{DiskState, Editable};
use super::model::{Plan, Role, Step};
use crate::disk::device::SharedDisk;
use crate::disk::write::blkpg::Change;
use crate::disk::write::gpt::{self, EntryEdit};
use crate::disk::write::mbr::{self, MbrEdit};
use crate::disk::write::Patch;

/// The table writes `plan` makes on the table `state` holds; the new entry gets `part_guid`.
pub(crate) fn patch(disk: &SharedDisk, state: &DiskState, plan: &Plan, part_guid: uuid::Uuid) -> Result<Patch, String> {
    let s = u64::from(state.layout.sector_size);
    match &state.table {
        Editable::Gpt(t) => {
            let mut edits = Vec::new();
            for step in &plan.steps {
                match step {
                    Step::ShrinkEntry { number, to_size, .. } => {
                        let p = state.layout.part(*number).ok_or("shrunk partition vanished")?;
                        edits.push(EntryEdit::Resize { slot: *number, first_lba: p.start / s, last_lba: (p.start + to_size) / s - 1 });
                    }
                    Step::AddPartition { number, start, size, .. } => edits.push(EntryEdit::Add {
                        slot: *number,
                        part: gpt::store_entry(start / s, (start + size) / s - 1, part_guid),
                    }),
                    Step::GrowExtended { .. } => return Err("a GPT has no extended partition".into()),
                }
            }
            gpt::patch(disk, t, &edits).map_err(|e| e.to_string())
        }
        Editable::Mbr(t) => {
            let mut edits = Vec::new();
            for step in &plan.steps {
                match step {
                    Step::ShrinkEntry { number, to_size, .. } if *number >= 5 => {
                        edits.push(MbrEdit::ResizeLogical { number: *number, sectors: to_size / s })
                    }
                    Step::ShrinkEntry { number, to_size, .. } => {
                        edits.push(MbrEdit::ResizePrimary { slot: *number as usize, sectors: to_size / s })
                    }
                    Step::GrowExtended { to_size, .. } => edits.push(MbrEdit::GrowExtended { sectors: to_size / s }),
                    Step::AddPartition { number, start, size, role: Role::Primary, .. } => edits.push(MbrEdit::AddPrimary {
                        slot: *number as usize,
                        first_lba: start / s,
                        sectors: size / s,
                        sys: 0x0c,
                    }),
                    Step::AddPartition { start, size, ebr: Some(ebr), .. } => edits.push(MbrEdit::AddLogical {
                        ebr_lba: ebr / s,
                        first_lba: start / s,
                        sectors: size / s,
                        sys: 0x0c,
                    }),
                    Step::AddPartition { .. } => return Err("a logical partition needs an EBR".into()),
                }
            }
            mbr::patch(t, &edits).map_err(|e| e.to_string())
        }
    }
}

/// `(offset, length)` of the areas the table lives in, as read.
pub fn areas(state: &DiskState) -> Vec<(u64, u64)> {
    match &state.table {
        Editable::Gpt(t) => gpt::table_areas(t),
        Editable::Mbr(t) => mbr::table_areas(t),
    }
}

/// What the kernel must learn about once the table is written (an extended partition shows
/// as a 1 KiB stub there, so growing it needs no word).
pub fn kernel_changes(plan: &Plan) -> Vec<Change> {
    plan.steps
        .iter()
        .filter_map(|step| match *step {
            Step::AddPartition { number, start, size, .. } => Some(Change::Add { number, start, size }),
            Step::ShrinkEntry { number, to_size, .. } => {
                let start = plan.after.part(number).map_or(0, |p| p.start);
                Some(Change::Resize { number, start, size: to_size })
            }
            Step::GrowExtended { .. } => None,
        })
        .collect()
}
