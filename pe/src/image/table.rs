//! The target's new partition table as a [`Patch`]: kept entries byte for byte, removed
//! entries cleared in their slots (no re-packing, so kept partitions keep their numbers), the
//! image's partitions added in their slots, a fresh disk GUID unless the image pins one, the
//! protective MBR for a fresh table, and the image's BIOS boot code. Built with the disk
//! layer's GPT writer; nothing is written here.

use gpt::partition::Partition;
use gpt::partition_types::{OperatingSystem, Type};

use super::layout::Placement;
use super::manifest::{GuidPolicy, Manifest};
use super::target::TargetInfo;
use crate::disk::write::gpt::{self as gpt_write, EntryEdit};
use crate::disk::write::Patch;
use crate::error::{Error, Result};
use crate::step::Step;

const STEP: Step = Step::LayDown;

fn guid(s: &str) -> Result<uuid::Uuid> {
    uuid::Uuid::parse_str(s).map_err(|e| Error::internal(STEP, format!("GUID {s:?}: {e}")))
}

fn fresh_guid() -> Result<uuid::Uuid> {
    Ok(uuid::Builder::from_random_bytes(super::create::random_bytes::<16>()?).into_uuid())
}

/// The writes that turn the target's table into the planned one.
pub fn build(t: &TargetInfo, m: &Manifest, plan: &Placement) -> Result<Patch> {
    let ss = u64::from(t.sector_size);
    let mut g = t.gpt.clone();
    for n in &plan.removed {
        let at = (*n as usize - 1) * 128;
        let slot = g.entries.get_mut(at..at + 128).ok_or_else(|| Error::internal(STEP, format!("partition {n} is outside the entry array")))?;
        slot.fill(0);
    }
    let disk_guid = match (m.disk_guid_policy, &m.disk_guid) {
        (GuidPolicy::Pinned, Some(s)) => guid(s)?,
        _ => fresh_guid()?,
    };
    g.primary.disk_guid = disk_guid;
    g.backup.disk_guid = disk_guid;
    let mut edits = Vec::new();
    for p in &plan.placed {
        let spec = &m.partitions[p.image_index];
        let part_guid = match (spec.guid_policy, &spec.guid) {
            (GuidPolicy::Pinned, Some(s)) => guid(s)?,
            _ => fresh_guid()?,
        };
        let first = p.start / ss;
        let last = (p.start + p.size) / ss - 1;
        edits.push(EntryEdit::Add {
            slot: p.number,
            part: Partition {
                part_type_guid: Type { guid: guid(&spec.type_id)?, os: OperatingSystem::None },
                part_guid,
                first_lba: first,
                last_lba: last,
                flags: spec.attributes,
                name: spec.name.clone(),
            },
        });
    }
    let mut patch = gpt_write::patch(&t.disk, &g, &edits).map_err(|e| Error::refused(STEP, format!("{}: {e}", t.path.display())))?;
    // Sector 0: the protective MBR for a fresh table; the image's boot code in any case.
    let mut s0 = vec![0u8; t.sector_size as usize];
    if t.fresh_table {
        let lbas = u32::try_from((t.layout.disk_bytes / ss).saturating_sub(1)).unwrap_or(u32::MAX);
        let pmbr = gpt::mbr::ProtectiveMBR::with_lb_size(lbas);
        s0[..512].copy_from_slice(&pmbr.to_bytes());
    } else {
        t.disk.read_exact_at(0, &mut s0).map_err(|e| Error::io(STEP, format!("{}: {e}", t.path.display())))?;
    }
    let before = s0.clone();
    if let Some(code) = m.bios_code() {
        s0[..440].copy_from_slice(&code);
    }
    if t.fresh_table || s0 != before {
        patch.put(0, s0);
    }
    Ok(patch)
}
