//! Executing a plan. Order matters for power cuts: everything goes into the (still
//! unreferenced) store area first — the saved table, the FAT32 volume, both locator copies —
//! and only then is the partition table written, in one patch that is synced and read back.
//! A cut before the last step leaves the disk's meaning unchanged; after it, the locator and
//! the saved table make `inplace rollback` possible.

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::gpt_write::{self, EntryEdit};
use super::layout::{self, DiskState, Editable};
use super::locator::{self, Locator};
use super::mbr_write::{self, MbrEdit};
use super::model::{Plan, Role, Step, STORE_TAIL};
use super::patch::Patch;
use super::snapshot::Snapshot;
use super::store::{self, RwDisk};
use crate::disk::device::{Device, SharedDisk};

/// Opens `path` for writing, and reads it back through the same descriptor.
pub fn open_rw(path: &Path) -> Result<(Arc<RwDisk>, Option<(u32, u32)>), String> {
    let dev = Device::open(path).map_err(|e| e.to_string())?;
    let size = crate::disk::device::ReadAt::size(&dev);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| format!("cannot open {} for writing: {e}", path.display()))?;
    Ok((Arc::new(RwDisk { file, size }), dev.dev_numbers()))
}

/// The table writes a plan makes on the table `state` holds.
pub fn table_patch(disk: &SharedDisk, state: &DiskState, plan: &Plan, part_guid: uuid::Uuid) -> Result<Patch, String> {
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
                        part: gpt_write::store_entry(start / s, (start + size) / s - 1, part_guid),
                    }),
                    Step::GrowExtended { .. } => return Err("a GPT has no extended partition".into()),
                }
            }
            gpt_write::patch(disk, t, &edits).map_err(|e| e.to_string())
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
            mbr_write::patch(t, &edits).map_err(|e| e.to_string())
        }
    }
}

fn random16() -> [u8; 16] {
    let mut b = [0u8; 16];
    if let Ok(mut f) = File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut b);
    }
    b
}

/// What a carve did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    pub locator: Locator,
    pub table_writes: Vec<(u64, u64)>,
    pub repairs: Vec<String>,
}

/// Carves the store `plan` describes on the disk at `path`. `plan` must have been made from
/// the disk as it is now; this is checked again before anything is written.
pub fn carve(path: &Path, plan: &Plan, job_name: &str, repair_gpt: bool) -> Result<Outcome, String> {
    let name = path.display().to_string();
    let (rw, _) = open_rw(path)?;
    let disk: SharedDisk = rw.clone();
    let state = layout::read(&disk, &name, Some(plan.before.sector_size), repair_gpt)?;
    if state.layout != plan.before {
        return Err(format!("{name} changed since the plan was made; plan again. Nothing was written"));
    }
    let job_id = random16();
    let part_guid = uuid::Uuid::from_bytes(random16());
    let patch = table_patch(&disk, &state, plan, part_guid)?;
    let repairs = match &state.table {
        Editable::Gpt(t) => t.repairs.clone(),
        Editable::Mbr(_) => Vec::new(),
    };
    let mut ranges = patch.ranges();
    ranges.extend(match &state.table {
        Editable::Gpt(t) => gpt_write::table_areas(t),
        Editable::Mbr(t) => mbr_write::table_areas(t),
    });
    let snap = Snapshot::capture(disk.as_ref(), plan.before.sector_size, &ranges).map_err(|e| format!("{name}: {e}"))?.encode();
    let ss = u64::from(plan.before.sector_size);
    let store = &plan.store;
    let fs_len = store.size - STORE_TAIL;
    let loc = Locator {
        job_id,
        created: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        disk_bytes: disk.size(),
        sector_size: plan.before.sector_size,
        table: match state.table {
            Editable::Gpt(_) => locator::TableKind::Gpt,
            Editable::Mbr(_) => locator::TableKind::Mbr,
        },
        store_number: store.number,
        store_start: store.start,
        store_len: store.size,
        fs_len,
        snapshot_offset: fs_len,
        snapshot_len: snap.len() as u64,
        snapshot_sha256: Sha256::digest(&snap).into(),
        job_name: job_name.to_string(),
    };
    let record = loc.encode();
    // Refuse anything that would put the store over a byte the plan did not free.
    if Locator::decode(&record).is_err() {
        return Err("internal error: the locator does not verify; nothing was written".into());
    }
    let f = &rw.file;
    let io = |what: &str, e: std::io::Error| format!("{name}: {what}: {e} (the partition table was not changed)");
    store::zero(f, store.start + fs_len, STORE_TAIL).map_err(|e| io("clearing the store tail", e))?;
    let volume_id = u32::from_le_bytes([job_id[0], job_id[1], job_id[2], job_id[3]]);
    store::format(f, store.start, fs_len, plan.before.sector_size, volume_id).map_err(|e| io("formatting the store FAT32", e))?;
    let mut tail = Patch::default();
    tail.put(store.start + fs_len, snap.clone());
    for at in loc.copies() {
        let mut sector = vec![0u8; ss as usize];
        sector[..locator::LEN].copy_from_slice(&record);
        tail.put(at, sector);
    }
    tail.write_to(f).map_err(|e| io("writing the locator and the saved table", e))?;
    patch.write_to(f).map_err(|e| format!("{name}: writing the partition table: {e}; run `inplace rollback --disk {name} --yes` to restore the saved table"))?;
    Ok(Outcome { locator: loc, table_writes: patch.ranges(), repairs })
}
