//! A real disk → the planner's [`Layout`], the editable table behind it, and the filesystem
//! tails. The partition list comes from the shared readers (`inventory::probe`); the writers'
//! loaders add what editing needs (usable area, entry count, EBR positions) and the two are
//! cross-checked.

use super::model::{Layout, Part, Role, Scheme, TailFree};
use super::usage;
use crate::disk::device::SharedDisk;
use crate::disk::gpt_read;
use crate::disk::write::gpt::{self, GptTable};
use crate::disk::write::mbr::{self, MbrTable};
use crate::error::{Error, Hint, Result};
use crate::inventory::probe::{self, Identity};
use crate::inventory::{Disk, Severity};
use crate::step::Step;

/// The table as the writers hold it.
#[derive(Debug, Clone)]
pub enum Editable {
    Gpt(GptTable),
    Mbr(MbrTable),
}

/// Everything the planner and the apply step need about one disk.
#[derive(Debug, Clone)]
pub struct DiskState {
    pub layout: Layout,
    pub table: Editable,
    pub tails: Vec<TailFree>,
    /// Why a partition has no tail (shown when it matters).
    pub no_tail: Vec<(u32, String)>,
    pub inventory: Disk,
}

/// Reads `disk` (named `name` in messages). `repair_gpt` allows rebuilding a damaged GPT copy
/// from the good one. Errors are the plan's: nothing was written.
pub fn read(disk: &SharedDisk, name: &str, sector_size: Option<u32>, repair_gpt: bool) -> Result<DiskState> {
    let ss = sector_size.unwrap_or_else(|| gpt_read::detect_sector_size(disk));
    let s = u64::from(ss);
    let id = Identity { name: name.to_string(), logical_sector_size: Some(ss), transport: "file".into(), ..Identity::default() };
    let inv = probe::probe(disk.clone(), id);
    let errors: Vec<String> = inv
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error && !(repair_gpt && f.message.contains("GPT")))
        .map(|f| format!("{}: {}", f.subject, f.message))
        .collect();
    let table = match inv.table.as_deref() {
        Some("gpt") => Editable::Gpt(gpt::load(disk, ss, repair_gpt).map_err(|e| e.into_error(Step::Plan, name))?),
        Some("mbr") => Editable::Mbr(mbr::load(disk, ss).map_err(|e| e.into_error(Step::Plan, name))?),
        _ => {
            return Err(Error::refused(
                Step::Plan,
                format!(
                    "{name} has no partition table inplace can edit{}",
                    inv.findings.first().map(|f| format!(" ({})", f.message)).unwrap_or_default()
                ),
            ))
        }
    };
    if !errors.is_empty() {
        return Err(Error::refused(Step::Plan, format!("{name}: the partition table has errors:\n  {}", errors.join("\n  ")))
            .hint(Hint::Advice { text: "fix the table (fdisk/gdisk) before carving".into() }));
    }
    let mut parts = Vec::new();
    let layout = match &table {
        Editable::Gpt(t) => {
            for p in &inv.partitions {
                parts.push(Part { number: p.number, start: p.start_bytes, size: p.size_bytes, role: Role::Primary, ebr: None, fs: p.fs.clone() });
            }
            let used = t.entries.chunks_exact(128).filter(|e| e[..16].iter().any(|b| *b != 0)).count();
            if used != parts.len() {
                let why = format!("{name}: the GPT readers disagree ({used} used entries vs {} partitions)", parts.len());
                return Err(Error::internal(Step::Plan, why));
            }
            Layout {
                scheme: Scheme::Gpt,
                sector_size: ss,
                disk_bytes: disk.size(),
                usable_start: t.primary.first_usable * s,
                usable_end: (t.primary.last_usable + 1) * s,
                slots: t.primary.num_parts,
                parts,
            }
        }
        Editable::Mbr(t) => {
            let logicals: Vec<&mbr::Ebr> = t.chain.iter().filter(|e| e.logical.is_some()).collect();
            for p in &inv.partitions {
                let (role, ebr) = if p.number >= 5 {
                    let disagree = || Error::internal(Step::Plan, format!("{name}: the EBR chain readers disagree about partition {}", p.number));
                    let e = logicals.get(p.number as usize - 5).ok_or_else(disagree)?;
                    if e.logical.map(|(st, _)| st * s) != Some(p.start_bytes) {
                        return Err(disagree());
                    }
                    (Role::Logical, Some(e.lba * s))
                } else if t.extended.is_some_and(|(slot, _, _)| slot as u32 == p.number) {
                    (Role::Extended, None)
                } else {
                    (Role::Primary, None)
                };
                parts.push(Part { number: p.number, start: p.start_bytes, size: p.size_bytes, role, ebr, fs: p.fs.clone() });
            }
            Layout {
                scheme: Scheme::Mbr,
                sector_size: ss,
                disk_bytes: disk.size(),
                usable_start: s,
                usable_end: disk.size().min(u64::from(u32::MAX) * s) / s * s,
                slots: 4,
                parts,
            }
        }
    };
    let mut tails = Vec::new();
    let mut no_tail = Vec::new();
    for p in &layout.parts {
        let Some(fs) = p.fs.as_deref() else { continue };
        if p.role == Role::Extended {
            continue;
        }
        match usage::tail_free(disk, p.number, fs, p.start, p.size) {
            Ok(t) => tails.push(t),
            Err(why) => no_tail.push((p.number, why)),
        }
    }
    Ok(DiskState { layout, table, tails, no_tail, inventory: inv })
}
