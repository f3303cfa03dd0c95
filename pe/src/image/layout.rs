//! Where the image's partitions go on the target: a pure function from the target's layout,
//! the partitions to keep (the store, and those named) and the image's partitions to a
//! placement, or a refusal with the numbers. Nothing here reads or writes a disk.
//!
//! Rules: the space is the target's usable area minus the kept partitions; every other
//! partition is replaced. Image partitions are placed in image order, first fit, on 1 MiB
//! boundaries, at their source size (the growable one at its minimum first). The growable
//! partition then takes the rest of its free region; partitions after it in that region are
//! moved to the region's end. No partition is placed smaller than its filesystem (`min_size`),
//! so no block of the image lands past its partition's end. Numbers: a partition keeps its source number when that slot is
//! free, else it takes the lowest free slot.

use serde::Serialize;

pub const ALIGN: u64 = 1 << 20;

/// A partition on the target as the layout sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetPart {
    pub number: u32,
    pub start: u64,
    pub size: u64,
    /// Untouched by the lay-down (the store, or named to keep).
    pub keep: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    pub sector_size: u32,
    pub disk_bytes: u64,
    /// First and one-past-last byte a partition may use.
    pub usable_start: u64,
    pub usable_end: u64,
    /// Partition slots in the table (GPT entries; 4 for MBR primaries).
    pub slots: u32,
    pub parts: Vec<TargetPart>,
}

/// One image partition's needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Want {
    pub source_number: u32,
    pub size: u64,
    pub min_size: u64,
    pub grow: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Placed {
    /// Index into the image's partitions.
    pub image_index: usize,
    pub number: u32,
    pub start: u64,
    pub size: u64,
    /// Its size on the reference (the image's `size`).
    #[serde(default)]
    pub source_size: u64,
}

impl Placed {
    /// The size before and after, in words: `1.6 GiB, grows to 5.7 GiB`.
    pub fn change(&self) -> String {
        let (was, now) = (human(self.source_size), human(self.size));
        match self.size.cmp(&self.source_size) {
            _ if self.source_size == 0 => now,
            std::cmp::Ordering::Greater => format!("{was}, grows to {now}"),
            std::cmp::Ordering::Less => format!("{was}, shrinks to {now}"),
            std::cmp::Ordering::Equal => format!("{now}, as on the reference"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Placement {
    pub placed: Vec<Placed>,
    /// Target partitions that stay exactly as they are.
    pub kept: Vec<u32>,
    /// Target partitions whose entries are removed (their space is reused).
    pub removed: Vec<u32>,
}

impl Placement {
    /// Byte ranges the lay-down may write (the placed partitions).
    pub fn write_ranges(&self) -> Vec<(u64, u64)> {
        self.placed.iter().map(|p| (p.start, p.size)).collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// The image's partitions do not fit in the space outside the kept partitions.
    #[error("{0}")]
    NoRoom(String),
    /// The target or the image cannot be placed at all (geometry, slots).
    #[error("{0}")]
    Invalid(String),
}

fn align_up(v: u64, a: u64) -> Option<u64> {
    v.checked_add(a - 1).map(|x| x / a * a)
}

/// The free regions: usable area minus kept partitions, aligned inwards.
fn regions(t: &Target) -> Vec<(u64, u64)> {
    let mut kept: Vec<(u64, u64)> = t.parts.iter().filter(|p| p.keep).map(|p| (p.start, p.start.saturating_add(p.size))).collect();
    kept.sort_unstable();
    let mut out = Vec::new();
    let mut at = t.usable_start;
    for (s, e) in kept.into_iter().chain(std::iter::once((t.usable_end, t.usable_end))) {
        let lo = align_up(at, ALIGN).unwrap_or(u64::MAX);
        let hi = s.min(t.usable_end);
        if hi > lo {
            out.push((lo, hi));
        }
        at = at.max(e);
    }
    out
}

pub use crate::units::human;

/// Places `wants` on `t`. See the module documentation for the rules.
pub fn place(t: &Target, wants: &[Want]) -> Result<Placement, LayoutError> {
    let ss = u64::from(t.sector_size);
    if ss == 0 || t.usable_end > t.disk_bytes || t.usable_start >= t.usable_end {
        return Err(LayoutError::Invalid(format!("the target's usable area {}..{} is invalid", t.usable_start, t.usable_end)));
    }
    for w in wants {
        if w.size % ss != 0 || w.min_size > w.size {
            return Err(LayoutError::Invalid(format!(
                "image partition {} is {} bytes, not a multiple of the target's {ss}-byte sectors",
                w.source_number, w.size
            )));
        }
    }
    let regions = regions(t);
    // Sizes to place first: the grower at its minimum (sector-rounded).
    let first_size = |w: &Want| if w.grow { align_up(w.min_size, ss).unwrap_or(u64::MAX).min(w.size) } else { w.size };
    // Where the next partition may start in each region.
    let mut cursor: Vec<u64> = regions.iter().map(|r| r.0).collect();
    let mut spots: Vec<(usize, u64, u64)> = Vec::new(); // (region, start, size)
    for (i, w) in wants.iter().enumerate() {
        let size = first_size(w);
        let found = regions.iter().enumerate().find_map(|(ri, r)| {
            let start = align_up(cursor[ri], ALIGN)?;
            let end = start.checked_add(size)?;
            (end <= r.1).then_some((ri, start, end))
        });
        let Some((ri, start, end)) = found else {
            let need: u64 = wants.iter().map(|w| align_up(first_size(w), ALIGN).unwrap_or(u64::MAX)).fold(0u64, |a, b| a.saturating_add(b));
            let largest = regions.iter().map(|r| r.1 - r.0).max().unwrap_or(0);
            let total: u64 = regions.iter().map(|r| r.1 - r.0).sum();
            // What is missing: the whole shortfall, or (when the total would do) this
            // partition's shortfall in the largest region.
            let missing = need.saturating_sub(total).max(size.saturating_sub(largest)).max(ALIGN);
            return Err(LayoutError::NoRoom(format!(
                "the image does not fit: its partitions need {} ({} for partition {} alone{}), but the space outside the kept \
                 partitions is {} in {} region(s), the largest {}: {} more room is needed",
                human(need),
                human(size),
                w.source_number,
                if w.grow { ", its filesystem's smallest size" } else { "" },
                human(total),
                regions.len(),
                human(largest),
                human(missing)
            )));
        };
        cursor[ri] = end;
        spots.push((ri, start, size));
        let _ = i;
    }
    // The grower takes the rest of its region; later partitions in that region move to its end.
    if let Some(g) = wants.iter().position(|w| w.grow) {
        let (ri, gstart, gsize) = spots[g];
        let region_end = regions[ri].1;
        let mut end = region_end / ALIGN * ALIGN;
        if end < gstart + gsize {
            end = region_end;
        }
        for j in (g + 1..spots.len()).rev() {
            if spots[j].0 != ri {
                continue;
            }
            let size = spots[j].2;
            let start = (end - size) / ALIGN * ALIGN;
            spots[j].1 = start;
            end = start;
        }
        let grown = (end - gstart) / ss * ss;
        spots[g].2 = grown.max(gsize);
    }
    // Numbers.
    let kept: Vec<u32> = t.parts.iter().filter(|p| p.keep).map(|p| p.number).collect();
    let mut used: Vec<u32> = kept.clone();
    let mut numbers = vec![0u32; wants.len()];
    for (i, w) in wants.iter().enumerate() {
        if (1..=t.slots).contains(&w.source_number) && !used.contains(&w.source_number) && !wants[..i].iter().any(|x| x.source_number == w.source_number) {
            numbers[i] = w.source_number;
            used.push(w.source_number);
        }
    }
    for n in numbers.iter_mut() {
        if *n == 0 {
            let free = (1..=t.slots).find(|k| !used.contains(k));
            let Some(free) = free else {
                return Err(LayoutError::Invalid(format!("the table has {} slots and no free one for every image partition", t.slots)));
            };
            *n = free;
            used.push(free);
        }
    }
    let placed = spots
        .iter()
        .enumerate()
        .map(|(i, (_, start, size))| Placed { image_index: i, number: numbers[i], start: *start, size: *size, source_size: wants[i].size })
        .collect::<Vec<_>>();
    // Every filesystem's blocks lie below its `min_size`: a partition below that would have
    // blocks written past its end.
    for (pl, w) in placed.iter().zip(wants) {
        if pl.size < w.min_size {
            return Err(LayoutError::NoRoom(format!(
                "partition {} would be {} but its filesystem spans {}: {} more room is needed",
                w.source_number,
                human(pl.size),
                human(w.min_size),
                human(w.min_size - pl.size)
            )));
        }
    }
    let removed = t.parts.iter().filter(|p| !p.keep).map(|p| p.number).collect();
    Ok(Placement { placed, kept, removed })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn target(parts: Vec<TargetPart>) -> Target {
        Target { sector_size: 512, disk_bytes: 1024 * MIB, usable_start: 34 * 512, usable_end: 1024 * MIB - 33 * 512, slots: 128, parts }
    }
    fn tp(number: u32, start: u64, size: u64, keep: bool) -> TargetPart {
        TargetPart { number, start: start * MIB, size: size * MIB, keep }
    }
    fn w(n: u32, size: u64, min: u64, grow: bool) -> Want {
        Want { source_number: n, size: size * MIB, min_size: min * MIB, grow }
    }

    fn check_invariants(t: &Target, p: &Placement) {
        let kept: Vec<&TargetPart> = t.parts.iter().filter(|x| x.keep).collect();
        for (i, a) in p.placed.iter().enumerate() {
            assert_eq!(a.start % ALIGN, 0);
            assert!(a.start >= t.usable_start && a.start + a.size <= t.usable_end, "{a:?}");
            for k in &kept {
                assert!(a.start + a.size <= k.start || k.start + k.size <= a.start, "{a:?} overlaps kept {k:?}");
            }
            for b in &p.placed[i + 1..] {
                assert!(a.start + a.size <= b.start || b.start + b.size <= a.start, "{a:?} overlaps {b:?}");
                assert_ne!(a.number, b.number);
            }
            assert!(!kept.iter().any(|k| k.number == a.number));
        }
    }

    #[test]
    fn grower_fills_its_region_around_the_store() {
        // old: 1 ESP, 2 root, 3 data (keep), 4 store (keep) at the end.
        let t = target(vec![tp(1, 1, 100, false), tp(2, 101, 500, false), tp(3, 601, 200, true), tp(4, 900, 100, true)]);
        let p = place(&t, &[w(1, 64, 64, false), w(2, 300, 96, true), w(3, 16, 16, false)]).unwrap();
        check_invariants(&t, &p);
        assert_eq!(p.placed[0].start, MIB);
        assert_eq!(p.placed[0].number, 1);
        // Root grows to fill up to partition 3 minus the 16 MiB one moved to the region end.
        assert_eq!(p.placed[1].start, 65 * MIB);
        assert_eq!(p.placed[2].start + p.placed[2].size, 601 * MIB);
        assert_eq!(p.placed[1].start + p.placed[1].size, p.placed[2].start);
        // Source number 3 is kept on the target, so the third gets the lowest free slot (5).
        assert_eq!(p.placed[2].number, 5);
        assert_eq!(p.kept, vec![3, 4]);
        assert_eq!(p.removed, vec![1, 2]);
    }

    #[test]
    fn too_large_is_refused_with_numbers() {
        let t = target(vec![tp(1, 1, 900, true)]);
        let e = place(&t, &[w(1, 200, 200, false)]).unwrap_err();
        assert!(matches!(e, LayoutError::NoRoom(_)), "{e}");
        assert!(e.to_string().contains("does not fit") && e.to_string().contains("200 MiB"), "{e}");
        // The grower's minimum is what must fit.
        let t = target(vec![tp(1, 1, 800, true)]);
        let p = place(&t, &[w(2, 500, 100, true)]).unwrap();
        check_invariants(&t, &p);
        assert!(p.placed[0].size >= 100 * MIB);
        assert!(place(&t, &[w(2, 500, 300, true)]).is_err());
    }

    #[test]
    fn a_smaller_disk_takes_the_grower_down_to_its_filesystem_and_no_lower() {
        // 323 MiB of room after a kept partition (322 MiB on whole MiBs); the reference root was
        // 500 MiB.
        let t = target(vec![tp(1, 1, 700, true)]);
        let p = place(&t, &[w(2, 500, 200, true)]).unwrap();
        check_invariants(&t, &p);
        assert_eq!((p.placed[0].start, p.placed[0].size, p.placed[0].source_size), (701 * MIB, 322 * MIB, 500 * MIB));
        assert_eq!(p.placed[0].change(), "500 MiB, shrinks to 322 MiB");
        let e = place(&t, &[w(2, 500, 400, true)]).unwrap_err().to_string();
        assert!(e.contains("its filesystem's smallest size") && e.contains("77.0 MiB (80757248 bytes) more room is needed"), "{e}");
        // On a larger disk it grows.
        let p = place(&target(vec![]), &[w(2, 500, 200, true)]).unwrap();
        assert!(p.placed[0].change().starts_with("500 MiB, grows to 1022"), "{}", p.placed[0].change());
    }

    #[test]
    fn exhaustive_small_layouts_keep_invariants() {
        // Every combination of kept partitions among four, with a few image shapes.
        let base = [tp(1, 1, 100, false), tp(2, 101, 200, false), tp(3, 301, 300, false), tp(4, 700, 300, false)];
        let shapes: Vec<Vec<Want>> = vec![
            vec![w(1, 50, 50, false), w(2, 100, 20, true)],
            vec![w(1, 10, 10, false), w(2, 10, 10, false), w(3, 10, 10, true), w(4, 10, 10, false)],
            vec![w(7, 250, 250, false)],
        ];
        for mask in 0..16u32 {
            let parts: Vec<TargetPart> = base.iter().enumerate().map(|(i, p)| TargetPart { keep: mask & (1 << i) != 0, ..p.clone() }).collect();
            let t = target(parts);
            for s in &shapes {
                if let Ok(p) = place(&t, s) {
                    check_invariants(&t, &p);
                    for (pl, want) in p.placed.iter().zip(s) {
                        assert!(pl.size >= want.min_size);
                        if !want.grow {
                            assert_eq!(pl.size, want.size);
                        }
                    }
                }
            }
        }
    }
}
