//! Executing a plan. Order matters for power cuts and cancels: everything goes into the (still
//! unreferenced) store area first — the FAT32 volume, the saved table, both locator copies —
//! and only then is the partition table written, in one patch that is synced and read back.
//! A cut or a cancel before the last step leaves the disk's meaning unchanged; after it, the
//! locator and the saved table make a rollback possible.

use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::layout::{self, Editable};
use super::model::{Plan, STORE_TAIL};
use super::{store, table};
use crate::disk::device::{ReadAt, SharedDisk};
use crate::disk::write::{blkpg, Patch, RwDevice, WriteAt};
use crate::error::{Error, Hint, Result, Written};
use crate::locator::{record, Locator, Snapshot, TableKind, RESERVE};
use crate::progress::{Cancel, Event, Meter, Sink};
use crate::step::Step;

/// What the carve needs besides the plan.
#[derive(Debug, Clone, Default)]
pub struct CarveOptions {
    /// A short name for the job, kept in the locator.
    pub job_name: String,
    /// The job's id, kept in the locator (the journal carries the same); `None`: a new one.
    pub job_id: Option<[u8; 16]>,
    /// Rebuild a damaged GPT copy from the good one while writing.
    pub repair_gpt: bool,
}

/// What a carve did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    pub locator: Locator,
    pub table_writes: Vec<(u64, u64)>,
    /// Repairs made to the table on the way (a rebuilt GPT copy).
    pub repairs: Vec<String>,
    /// Partitions the kernel was told about: 0 for an image file.
    pub kernel_told: usize,
}

fn random16() -> [u8; 16] {
    let mut b = [0u8; 16];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut b);
    }
    b
}

/// `e` as text, without the device name it starts with when `name` says it already.
fn detail(name: &str, e: impl std::fmt::Display) -> String {
    let text = e.to_string();
    text.strip_prefix(&format!("{name}: ")).map(str::to_string).unwrap_or(text)
}

/// Carves the store `plan` describes on the disk at `disk`. `plan` must have been made from
/// the disk as it is now; this is checked again before anything is written. `cancel` is
/// honoured before each write phase; until the table is written, a cancel or an error leaves
/// the table (and so the disk's meaning) as it was.
pub fn carve(disk: &Path, plan: &Plan, opts: &CarveOptions, sink: &dyn Sink, cancel: &Cancel) -> Result<Outcome> {
    let name = disk.display().to_string();
    cancel.check(Step::Carve, Written::Nothing)?;
    let dev = Arc::new(RwDevice::open(disk).map_err(|e| Error::io(Step::Carve, e.to_string()))?);
    let shared: SharedDisk = dev.clone();
    let state = layout::read(&shared, &name, Some(plan.before.sector_size), opts.repair_gpt).map_err(|e| e.in_step(Step::Carve))?;
    if state.layout != plan.before {
        return Err(Error::refused(Step::Carve, format!("{name} changed since the plan was made")).hint(Hint::PlanAgain));
    }
    let internal = |what: &str, e: String| Error::internal(Step::Carve, format!("{name}: {what}: {e}"));
    let job_id = opts.job_id.unwrap_or_else(random16);
    let patch = table::patch(&shared, &state, plan, uuid::Uuid::from_bytes(random16())).map_err(|e| internal("planning the table write", e))?;
    let repairs = match &state.table {
        Editable::Gpt(t) => t.repairs.clone(),
        Editable::Mbr(_) => Vec::new(),
    };
    let mut ranges = patch.ranges();
    ranges.extend(table::areas(&state));
    let snap = Snapshot::capture(dev.as_ref(), plan.before.sector_size, &ranges)
        .map_err(|e| Error::io(Step::Carve, format!("{name}: {}", detail(&name, e))))?
        .encode();
    let store = &plan.store;
    let fs_len = store.size - STORE_TAIL;
    let loc = Locator {
        job_id,
        created: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        disk_bytes: dev.size(),
        sector_size: plan.before.sector_size,
        table: match state.table {
            Editable::Gpt(_) => TableKind::Gpt,
            Editable::Mbr(_) => TableKind::Mbr,
        },
        store_number: store.number,
        store_start: store.start,
        store_len: store.size,
        fs_len,
        snapshot_offset: fs_len,
        snapshot_len: snap.len() as u64,
        snapshot_sha256: Sha256::digest(&snap).into(),
        job_name: opts.job_name.clone(),
    };
    let record = loc.encode();
    Locator::decode(&record).map_err(|e| internal("the locator does not verify", e.to_string()))?;
    for r in &repairs {
        sink.log(r);
    }

    // 1. The store area: nothing refers to it yet.
    cancel.check(Step::Carve, Written::Nothing)?;
    let store_io = |what: &str, e: std::io::Error| {
        Error::io(Step::Carve, format!("{name}: {what}: {}", detail(&name, e))).written(Written::StoreOnly)
    };
    let m = Meter::start(sink, "formatting the store", fs_len);
    // The tail is cleared except the journal reserve, which may already hold the job's journal.
    let ss = u64::from(plan.before.sector_size);
    let reserve_at = store.size - ss - RESERVE;
    dev.zero_at(store.start + fs_len, reserve_at - fs_len).map_err(|e| store_io("clearing the store tail", e))?;
    dev.zero_at(store.start + store.size - ss, ss).map_err(|e| store_io("clearing the store tail", e))?;
    let volume_id = u32::from_le_bytes([job_id[0], job_id[1], job_id[2], job_id[3]]);
    store::format(dev.as_ref(), store.start, fs_len, plan.before.sector_size, volume_id)
        .map_err(|e| store_io("formatting the store FAT32", e))?;
    m.set(fs_len);

    // 2. The saved table and both locator copies.
    cancel.check(Step::Carve, Written::StoreOnly)?;
    sink.event(&Event::Phase { name: "writing the locator and the saved table".into(), total: 0 });
    let mut tail = Patch::default();
    tail.put(store.start + fs_len, snap);
    for at in loc.copies() {
        let mut sector = vec![0u8; plan.before.sector_size as usize];
        sector[..record::LEN].copy_from_slice(&record);
        tail.put(at, sector);
    }
    tail.write_to(dev.as_ref()).map_err(|e| store_io("writing the locator and the saved table", e))?;

    // 3. The partition table: from here on the disk has changed.
    cancel.check(Step::Carve, Written::StoreOnly)?;
    sink.event(&Event::Phase { name: "writing the partition table".into(), total: 0 });
    patch.write_to(dev.as_ref()).map_err(|e| {
        Error::io(Step::Carve, format!("{name}: writing the partition table: {}", detail(&name, e)))
            .written(Written::Disk)
            .hint(Hint::Rollback { disk: name.clone() })
    })?;

    // 4. A live block device: the kernel learns the new partitions.
    let kernel_told = blkpg::tell(&dev, &table::kernel_changes(plan)).map_err(|e| {
        Error::io(Step::Carve, format!("the table on {name} is written, but {e}"))
            .written(Written::Disk)
            .advice(format!("re-read it with `partprobe {name}` or reboot before using the store"))
    })?;
    if kernel_told > 0 {
        sink.log(&format!("the kernel now sees {kernel_told} changed partition(s) on {name}"));
    }
    Ok(Outcome { locator: loc, table_writes: patch.ranges(), repairs, kernel_told })
}
