//! The carve planner: a pure function from (layout, filesystem tails, request) to a plan or a
//! refusal. Strategies in order of preference:
//!
//! - (a) unallocated space — the highest-addressed aligned gap that holds the store, so the
//!   space next to existing partitions stays contiguous;
//! - (b) the free tail of a partition the new image replaces: its table entry shrinks, no data
//!   moves, and its filesystem stays readable through its original extent;
//! - otherwise a [`Refusal`] naming the sizes and what the user can do.
//!
//! A partition that is kept is never shrunk. On MBR a new partition is a primary when a slot is
//! free, else a logical partition appended to the end of the extended partition's chain
//! (growing the extended container into free space right after it when needed). The GPT backup
//! area is never used: [`Layout::usable_end`] stops before it.

use super::model::*;
use crate::error::Hint;

/// Plans a store for `req` on `layout`, given what the filesystems say is free at their tails.
pub fn plan(layout: &Layout, usage: &[TailFree], req: &Request) -> Result<Plan, PlanError> {
    validate(layout, usage, req)?;
    let ss = u64::from(layout.sector_size);
    let mut notes = Vec::new();
    let asked = align_up(req.store_bytes, ALIGN).and_then(|b| b.checked_add(STORE_TAIL));
    let Some(asked) = asked else {
        return Err(PlanError::BadInput { problem: format!("the store size {} is too large", req.store_bytes), hints: vec![Hint::StoreSize] });
    };
    let min = min_store_partition(layout.sector_size);
    let needed = asked.max(min);
    if needed > asked {
        notes.push(format!(
            "the store partition is {} rather than {}: FAT32 needs at least 65,525 clusters on \
             {ss}-byte sectors",
            human(needed),
            human(asked)
        ));
    }
    if needed > layout.disk_bytes {
        return Err(PlanError::BadInput {
            problem: format!(
                "a store of {} needs a {} partition, which is larger than the whole disk ({})",
                human(req.store_bytes),
                human(needed),
                human(layout.disk_bytes)
            ),
            hints: vec![Hint::StoreSize, Hint::ExternalStore],
        });
    }

    let mut s = Search { layout, ss, needed, best: 0, reasons: Vec::new() };
    let slot = s.new_slot();

    // (a) unallocated space.
    if let Some(p) = s.unallocated(slot) {
        return Ok(finish(layout, req, p, needed, notes));
    }
    // (b) the free tail of a replaced partition.
    let mut tails: Vec<Placement> = Vec::new();
    for &number in &req.replace {
        if let Some(p) = s.free_tail(number, usage, slot) {
            tails.push(p);
        }
    }
    // The highest store wins: it leaves the most room before it.
    if let Some(p) = tails.into_iter().max_by_key(|p| p.start) {
        return Ok(finish(layout, req, p, needed, notes));
    }
    Err(PlanError::Refused(s.refusal(usage, req, slot)))
}

/// Where a new table entry can go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// A GPT slot or an MBR primary slot with this partition number.
    Entry(u32),
    /// No entry slot, but logical partitions can be appended to the extended partition.
    Logical(u32),
    None,
}

#[derive(Debug, Clone)]
struct Placement {
    strategy: Strategy,
    number: u32,
    role: Role,
    start: u64,
    ebr: Option<u64>,
    shrink: Option<(u32, u64, u64)>, // number, new size, free_from (offset in partition)
    grow_extended: Option<(u32, u64)>, // number, new size
}

struct Search<'a> {
    layout: &'a Layout,
    ss: u64,
    needed: u64,
    /// The largest store partition seen anywhere a store could go.
    best: u64,
    reasons: Vec<String>,
}

impl Search<'_> {
    fn new_slot(&mut self) -> Slot {
        let l = self.layout;
        let used: Vec<u32> = l.parts.iter().filter(|p| p.role != Role::Logical).map(|p| p.number).collect();
        if let Some(n) = (1..=l.slots).find(|n| !used.contains(n)) {
            return Slot::Entry(n);
        }
        match (l.scheme, l.extended()) {
            (Scheme::Mbr, Some(_)) => {
                let next = l.logicals().last().map_or(5, |p| p.number + 1);
                Slot::Logical(next)
            }
            (Scheme::Mbr, None) => {
                self.reasons.push(
                    "all four primary partition slots of the MBR are in use and there is no \
                     extended partition to hold a logical partition"
                        .into(),
                );
                Slot::None
            }
            (Scheme::Gpt, _) => {
                self.reasons.push(format!("all {} entries of the GPT partition array are in use", l.slots));
                Slot::None
            }
        }
    }

    /// Byte ranges taken by partitions (including the extended container) and EBRs.
    fn obstacles(&self) -> Vec<(u64, u64)> {
        let mut o: Vec<(u64, u64)> = self.layout.parts.iter().map(|p| (p.start, p.end())).collect();
        o.extend(self.layout.parts.iter().filter_map(|p| p.ebr).map(|e| (e, e + self.ss)));
        o
    }

    fn unallocated(&mut self, slot: Slot) -> Option<Placement> {
        let l = self.layout;
        let mut found: Option<Placement> = None;
        let mut largest = 0u64;
        match slot {
            Slot::Entry(number) => {
                for (s, e) in gaps(l.usable_start, l.usable_end, &self.obstacles()) {
                    let (Some(lo), hi) = (align_up(s, ALIGN), align_down(e, ALIGN)) else { continue };
                    let avail = hi.saturating_sub(lo);
                    largest = largest.max(avail);
                    if avail >= self.needed && found.as_ref().is_none_or(|f| f.start < hi - self.needed) {
                        found = Some(Placement {
                            strategy: Strategy::Unallocated,
                            number,
                            role: Role::Primary,
                            start: hi - self.needed,
                            ebr: None,
                            shrink: None,
                            grow_extended: None,
                        });
                    }
                }
            }
            Slot::Logical(number) => {
                if let Some((lo_region, ext_end, grown_end, first)) = self.logical_region() {
                    let lo = align_up(lo_region + self.ss, ALIGN).unwrap_or(u64::MAX);
                    let ext = l.extended()?;
                    // Inside the extended partition as it is; only when that is too small,
                    // grown into the free space right after it.
                    for hi_region in std::iter::once(ext_end).chain(grown_end) {
                        let hi = align_down(hi_region, ALIGN);
                        let avail = hi.saturating_sub(lo);
                        largest = largest.max(avail);
                        if avail < self.needed {
                            continue;
                        }
                        let start = hi - self.needed;
                        let ebr = if first { lo_region } else { lo_region.max(start - ALIGN) };
                        let grow_extended = (hi > ext.end()).then(|| (ext.number, hi - ext.start));
                        found = Some(Placement {
                            strategy: Strategy::Unallocated,
                            number,
                            role: Role::Logical,
                            start,
                            ebr: Some(ebr),
                            shrink: None,
                            grow_extended,
                        });
                        break;
                    }
                }
            }
            Slot::None => {
                // Free space no entry can describe: worth saying, but it is not a place.
                let free = gaps(l.usable_start, l.usable_end, &self.obstacles())
                    .into_iter()
                    .map(|(s, e)| align_down(e, ALIGN).saturating_sub(align_up(s, ALIGN).unwrap_or(u64::MAX)))
                    .max()
                    .unwrap_or(0);
                if free > 0 {
                    self.reasons.push(format!(
                        "{} of unallocated space is left, but no free partition entry can describe it",
                        human(free)
                    ));
                }
                return None;
            }
        }
        self.best = self.best.max(largest);
        if found.is_none() {
            self.reasons.push(if largest == 0 {
                "there is no unallocated space where a new partition can go".into()
            } else {
                format!(
                    "the largest unallocated space where a new partition can go holds {} \
                     (1 MiB aligned)",
                    human(largest)
                )
            });
        }
        found
    }

    /// Where a new logical partition appended to the chain may lie: `(region start, end of
    /// the extended partition, end of the free space right after it if any, is it the first
    /// logical)`. The region start is where its EBR goes at the earliest.
    fn logical_region(&mut self) -> Option<(u64, u64, Option<u64>, bool)> {
        let l = self.layout;
        let ext = l.extended()?;
        let logicals = l.logicals();
        let (start, first) = match logicals.last() {
            None => (ext.start, true),
            Some(last) => {
                let phys_end = l
                    .parts
                    .iter()
                    .filter(|p| p.role == Role::Logical)
                    .flat_map(|p| [p.end(), p.ebr.map_or(0, |e| e + self.ss)])
                    .max()
                    .unwrap_or(0);
                if phys_end > last.end() {
                    self.reasons.push(format!(
                        "logical partition {} is last in the chain but not last on the disk; a \
                         new logical partition after it would renumber nothing only if it came \
                         last, so none is added",
                        last.number
                    ));
                    return None;
                }
                (phys_end, false)
            }
        };
        // The extended partition may grow into free space right after it.
        let grown = gaps(l.usable_start, l.usable_end, &self.obstacles()).into_iter().find(|(s, _)| *s == ext.end()).map(|(_, e)| e);
        Some((start, ext.end(), grown, first))
    }

    fn free_tail(&mut self, number: u32, usage: &[TailFree], slot: Slot) -> Option<Placement> {
        let l = self.layout;
        let p = l.part(number)?;
        let Some(t) = usage.iter().find(|t| t.number == number) else {
            self.reasons.push(format!(
                "partition {number}{} is replaced by the image, but inplace could not read which \
                 of its space is free (no supported filesystem: ntfs, ext2/3/4, vfat)",
                fs_suffix(p)
            ));
            return None;
        };
        let ts = p.start + t.start;
        let mut te = p.start + t.end;
        let logical = p.role == Role::Logical;
        // A tail that reaches the end of a primary entry continues into free space after it.
        if t.end == p.size && !logical {
            if let Some((_, e)) = gaps(l.usable_start, l.usable_end, &self.obstacles()).into_iter().find(|(s, _)| *s == p.end()) {
                te = e;
            }
        }
        te = te.min(l.usable_end);
        // On a logical partition the new EBR needs its own aligned MiB between the two.
        let gap = if logical { ALIGN } else { 0 };
        let lo = align_up(ts, ALIGN).and_then(|v| v.checked_add(gap)).unwrap_or(u64::MAX);
        let hi = align_down(te, ALIGN);
        let avail = hi.saturating_sub(lo);
        let mut usable_slot = match slot {
            Slot::Entry(n) => Some((n, Role::Primary)),
            Slot::Logical(n) if logical => Some((n, Role::Logical)),
            Slot::Logical(_) => {
                self.reasons.push(format!(
                    "partition {number} is a primary partition; with every primary entry in use the \
                     store would have to be a logical partition, and those must lie inside the \
                     extended partition"
                ));
                None
            }
            Slot::None => None,
        };
        if logical {
            // Appending after a logical partition is only right when it is the last one.
            let last = l.logicals().last().map(|q| q.number);
            let phys_last = l.parts.iter().filter(|q| q.role == Role::Logical).all(|q| q.end() <= p.end());
            usable_slot = if last == Some(number) && phys_last {
                Some((l.logicals().last().map_or(5, |q| q.number + 1), Role::Logical))
            } else {
                self.reasons.push(format!(
                    "partition {number} is a logical partition that is not the last one; a new \
                     logical partition after it would renumber the ones behind it"
                ));
                None
            };
        }
        let (new_number, role) = usable_slot?;
        self.best = self.best.max(avail);
        if avail < self.needed || hi < self.needed {
            self.reasons.push(format!(
                "partition {number}{} is replaced by the image; its filesystem has {} free at its \
                 end (from byte {} of the partition), of which {} is usable after alignment",
                fs_suffix(p),
                human(t.end.saturating_sub(t.start)),
                t.start,
                human(avail)
            ));
            return None;
        }
        let start = hi - self.needed;
        if start >= p.end() {
            // Entirely after the partition: unallocated space after all.
            return Some(Placement {
                strategy: Strategy::Unallocated,
                number: new_number,
                role,
                start,
                ebr: None,
                shrink: None,
                grow_extended: None,
            });
        }
        let new_end = start - gap;
        if new_end <= p.start {
            self.reasons.push(format!("partition {number} would shrink to nothing"));
            return None;
        }
        Some(Placement {
            strategy: Strategy::FreeTail { number },
            number: new_number,
            role,
            start,
            ebr: logical.then_some(new_end),
            shrink: Some((number, new_end - p.start, t.start)),
            grow_extended: None,
        })
    }

    fn refusal(mut self, usage: &[TailFree], req: &Request, slot: Slot) -> Refusal {
        let l = self.layout;
        let no_entry = slot == Slot::None;
        let mut hints = Vec::new();
        if req.replace.is_empty() {
            self.reasons.push(
                "no partition is marked as replaced by the new image, so none may give up the \
                 free space at its end"
                    .into(),
            );
        }
        for t in usage {
            let Some(p) = l.part(t.number) else { continue };
            let free = t.end.saturating_sub(t.start);
            if !req.replace.contains(&t.number) && free >= self.needed {
                self.reasons.push(format!(
                    "partition {}{} has {} free at its end, but it is kept, and inplace does not \
                     shrink a filesystem it keeps",
                    t.number,
                    fs_suffix(p),
                    human(free)
                ));
                hints.push(Hint::Replace { number: t.number });
            }
        }
        if req.replace.is_empty() && hints.is_empty() {
            hints.push(Hint::NameReplaced);
        }
        let advice = |text: &str| Hint::Advice { text: text.into() };
        hints.push(advice(
            "free space at the end of the partition the image replaces (delete files; on \
             Windows `defrag C: /X` consolidates free space), or shrink a volume in its own OS",
        ));
        if no_entry {
            hints.push(advice(match l.scheme {
                Scheme::Mbr => "free a primary entry: delete a partition that is no longer needed (fdisk), or one \
                                the new image replaces, then plan again",
                Scheme::Gpt => "free a GPT entry: delete a partition that is no longer needed (gdisk), then plan again",
            }));
        }
        // A smaller store helps only if one fits at all.
        if self.best >= min_store_partition(l.sector_size) {
            hints.push(Hint::SmallerStore { max_bytes: self.best.saturating_sub(STORE_TAIL) });
        }
        hints.push(Hint::ExternalStore);
        let mut once: Vec<Hint> = Vec::new();
        for h in hints {
            if !once.contains(&h) {
                once.push(h);
            }
        }
        Refusal { needed: self.needed, best: self.best, reasons: self.reasons, hints: once }
    }
}

fn fs_suffix(p: &Part) -> String {
    p.fs.as_deref().map(|f| format!(" ({f})")).unwrap_or_default()
}

/// Maximal runs of `[lo, hi)` not covered by any obstacle.
pub(crate) fn gaps(lo: u64, hi: u64, obstacles: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut o: Vec<(u64, u64)> = obstacles.iter().copied().filter(|(s, e)| e > s).collect();
    o.sort_unstable();
    let mut out = Vec::new();
    let mut pos = lo;
    for (s, e) in o {
        if s > pos && pos < hi {
            out.push((pos, s.min(hi)));
        }
        pos = pos.max(e);
    }
    if pos < hi {
        out.push((pos, hi));
    }
    out
}

fn finish(layout: &Layout, req: &Request, p: Placement, needed: u64, notes: Vec<String>) -> Plan {
    let mut steps = Vec::new();
    let mut after = layout.clone();
    let mut original_extents = Vec::new();
    for &n in &req.replace {
        if let Some(part) = layout.part(n) {
            original_extents.push(part.clone());
        }
    }
    if let Some((number, new_size, free_from)) = p.shrink {
        let from_size = layout.part(number).map_or(0, |q| q.size);
        steps.push(Step::ShrinkEntry { number, from_size, to_size: new_size, free_from });
        if let Some(q) = after.parts.iter_mut().find(|q| q.number == number) {
            q.size = new_size;
        }
    }
    if let Some((number, new_size)) = p.grow_extended {
        let from_size = layout.part(number).map_or(0, |q| q.size);
        steps.push(Step::GrowExtended { number, from_size, to_size: new_size });
        if let Some(q) = after.parts.iter_mut().find(|q| q.number == number) {
            q.size = new_size;
        }
    }
    let store = Part {
        number: p.number,
        start: p.start,
        size: needed,
        role: p.role,
        ebr: p.ebr,
        fs: Some("vfat".into()),
    };
    steps.push(Step::AddPartition { number: p.number, start: p.start, size: needed, role: p.role, ebr: p.ebr });
    after.parts.push(store.clone());
    after.parts.sort_by_key(|q| q.number);
    Plan {
        strategy: p.strategy,
        store,
        requested: req.store_bytes,
        fs_bytes: needed - STORE_TAIL,
        steps,
        original_extents,
        before: layout.clone(),
        after,
        notes,
    }
}

fn validate(l: &Layout, usage: &[TailFree], req: &Request) -> Result<(), PlanError> {
    let bad = |m: String| Err(PlanError::bad(m));
    let fix = |m: String, tool: &str| {
        Err(PlanError::BadInput { problem: m, hints: vec![Hint::Advice { text: format!("fix the table with {tool} before carving") }] })
    };
    let ss = u64::from(l.sector_size);
    if !(512..=ALIGN).contains(&ss) || !ss.is_power_of_two() {
        return bad(format!("a logical sector size of {ss} bytes is not supported (512 or 4096 are)"));
    }
    if l.usable_start > l.usable_end || l.usable_end > l.disk_bytes {
        return bad(format!(
            "the usable area (bytes {}–{}) does not fit the disk ({} bytes)",
            l.usable_start, l.usable_end, l.disk_bytes
        ));
    }
    if req.store_bytes == 0 {
        return Err(PlanError::BadInput { problem: "the store size is 0".into(), hints: vec![Hint::StoreSize] });
    }
    if req.store_bytes > l.disk_bytes {
        return Err(PlanError::BadInput {
            problem: format!("the store size {} is larger than the whole disk ({})", human(req.store_bytes), human(l.disk_bytes)),
            hints: vec![Hint::StoreSize, Hint::ExternalStore],
        });
    }
    let mut numbers = Vec::new();
    for p in &l.parts {
        if numbers.contains(&p.number) || p.number == 0 {
            return bad(format!("partition number {} appears twice (or is 0) in the table", p.number));
        }
        numbers.push(p.number);
        if p.size == 0 || p.start % ss != 0 || p.size % ss != 0 || p.start.checked_add(p.size).is_none_or(|e| e > l.disk_bytes) {
            return fix(
                format!(
                    "partition {} (bytes {}–{}) is empty, not on sector boundaries, or runs past the \
                     end of the disk ({} bytes)",
                    p.number,
                    p.start,
                    p.start.saturating_add(p.size),
                    l.disk_bytes
                ),
                "fdisk/gdisk",
            );
        }
        if l.scheme == Scheme::Gpt && p.role != Role::Primary {
            return bad(format!("partition {} is an MBR extended/logical entry on a GPT disk", p.number));
        }
    }
    let ext: Vec<&Part> = l.parts.iter().filter(|p| p.role == Role::Extended).collect();
    if ext.len() > 1 {
        return fix("the MBR has more than one extended partition".into(), "fdisk");
    }
    // Content partitions and EBRs must not overlap; logical partitions sit inside the
    // extended partition, primaries outside it.
    let mut taken: Vec<(u64, u64, String)> = Vec::new();
    for p in &l.parts {
        match p.role {
            Role::Logical => {
                let Some(e) = ext.first() else {
                    return bad(format!("logical partition {} has no extended partition", p.number));
                };
                let ebr_ok = p.ebr.is_some_and(|b| b >= e.start && b + ss <= p.start && b % ss == 0);
                if p.start < e.start || p.end() > e.end() || !ebr_ok {
                    return bad(format!(
                        "logical partition {} or its boot record lies outside extended partition {}",
                        p.number, e.number
                    ));
                }
                taken.push((p.start, p.end(), format!("partition {}", p.number)));
                if let Some(b) = p.ebr {
                    taken.push((b, b + ss, format!("the boot record of partition {}", p.number)));
                }
            }
            Role::Primary | Role::Extended => taken.push((p.start, p.end(), format!("partition {}", p.number))),
        }
    }
    for (i, a) in taken.iter().enumerate() {
        for b in &taken[i + 1..] {
            let nested = |x: &(u64, u64, String), y: &(u64, u64, String)| {
                ext.first().is_some_and(|e| x.2 == format!("partition {}", e.number) && y.0 >= e.start && y.1 <= e.end())
            };
            if a.0 < b.1 && b.0 < a.1 && !nested(a, b) && !nested(b, a) {
                return fix(
                    format!(
                        "{} (bytes {}–{}) and {} (bytes {}–{}) overlap; the table is inconsistent",
                        a.2, a.0, a.1, b.2, b.0, b.1
                    ),
                    "fdisk/gdisk",
                );
            }
        }
    }
    for &n in &req.replace {
        match l.part(n) {
            None => return bad(format!("partition {n} is named as replaced by the image, but the disk has no partition {n}")),
            Some(p) if p.role == Role::Extended => {
                return bad(format!("partition {n} is named as replaced by the image, but it is an extended container, not content"))
            }
            _ => {}
        }
    }
    for t in usage {
        match l.part(t.number) {
            Some(p) if t.start <= t.end && t.end <= p.size => {}
            _ => {
                return bad(format!(
                    "the free-space report for partition {} (bytes {}–{}) does not fit the partition",
                    t.number, t.start, t.end
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
