//! The planner's properties over generated layouts, and a few hand-made cases.

use proptest::prelude::*;

use super::*;
use crate::carve::model::Strategy;
use crate::error::Hint;

fn gpt(ss: u32, disk: u64, parts: Vec<Part>) -> Layout {
    let s = u64::from(ss);
    let array = 16384 / s + 1; // entry array sectors + header
    Layout {
        scheme: Scheme::Gpt,
        sector_size: ss,
        disk_bytes: disk,
        usable_start: (1 + array) * s,
        usable_end: disk - array * s,
        slots: 128,
        parts,
    }
}

fn mbr(ss: u32, disk: u64, parts: Vec<Part>) -> Layout {
    Layout {
        scheme: Scheme::Mbr,
        sector_size: ss,
        disk_bytes: disk,
        usable_start: u64::from(ss),
        usable_end: disk.min(u64::from(u32::MAX) * u64::from(ss)),
        slots: 4,
        parts,
    }
}

fn part(number: u32, start: u64, size: u64) -> Part {
    Part { number, start, size, role: Role::Primary, ebr: None, fs: Some("ext4".into()) }
}

fn req(store: u64, replace: &[u32]) -> Request {
    Request { store_bytes: store, replace: replace.to_vec() }
}

#[test]
fn unallocated_space_at_the_end_is_used() {
    let l = gpt(512, 8 * GIB, vec![part(1, MIB, 512 * MIB), part(2, 513 * MIB, 4 * GIB)]);
    let p = plan(&l, &[], &req(GIB, &[])).unwrap();
    assert_eq!(p.strategy, Strategy::Unallocated);
    assert_eq!(p.store.number, 3);
    assert_eq!(p.store.size, GIB + STORE_TAIL);
    // Right-aligned in the last gap, below the backup GPT.
    assert_eq!(p.store.start + p.store.size, 8 * GIB - MIB);
    assert_eq!(p.steps.len(), 1);
}

#[test]
fn free_tail_of_replaced_partition() {
    let l = gpt(4096, 8 * GIB, vec![part(1, MIB, 100 * MIB), part(2, 101 * MIB, 8 * GIB - 102 * MIB)]);
    let tail = TailFree { number: 2, fs: "ext4".into(), start: 2 * GIB, end: 8 * GIB - 102 * MIB };
    // Kept: refused, and the refusal says why.
    let e = plan(&l, std::slice::from_ref(&tail), &req(GIB, &[])).unwrap_err();
    let PlanError::Refused(r) = e else { panic!("{e:?}") };
    let text = r.to_string();
    assert!(text.contains("kept"), "{text}");
    assert!(r.hints.contains(&Hint::Replace { number: 2 }), "{:?}", r.hints);
    assert!(!text.contains("--"), "no flag names in the engine's words: {text}");
    // Replaced: shrink.
    let p = plan(&l, &[tail], &req(GIB, &[2])).unwrap();
    assert_eq!(p.strategy, Strategy::FreeTail { number: 2 });
    let shrunk = p.after.part(2).unwrap();
    assert_eq!(shrunk.end(), p.store.start);
    assert!(shrunk.size >= 2 * GIB);
    assert_eq!(p.original_extents[0].size, 8 * GIB - 102 * MIB);
}

#[test]
fn four_primaries_refused_clearly() {
    let l = mbr(512, 4 * GIB, vec![part(1, MIB, GIB), part(2, GIB + MIB, GIB), part(3, 2 * GIB + MIB, 512 * MIB), part(4, 3 * GIB, 256 * MIB)]);
    let e = plan(&l, &[], &req(100 * MIB, &[])).unwrap_err();
    assert!(e.to_string().contains("all four primary partition slots"), "{e}");
}

#[test]
fn logical_appended_and_extended_grown() {
    let mut ext = part(2, GIB, 2 * GIB);
    ext.role = Role::Extended;
    let mut l5 = part(5, GIB + MIB, GIB);
    l5.role = Role::Logical;
    l5.ebr = Some(GIB);
    let l = mbr(512, 8 * GIB, vec![part(1, MIB, GIB - MIB), ext, l5, part(3, 3 * GIB, GIB), part(4, 4 * GIB, GIB)]);
    let p = plan(&l, &[], &req(500 * MIB, &[])).unwrap();
    assert_eq!(p.store.role, Role::Logical);
    assert_eq!(p.store.number, 6);
    assert!(p.store.start >= 2 * GIB + MIB && p.store.end() <= 3 * GIB, "{:?}", p.store);
    // Grow: fill the extended partition first, then ask for more than fits.
    let big = plan(&l, &[], &req(2 * GIB, &[])).unwrap_err();
    assert!(matches!(big, PlanError::Refused(_)));
}

#[test]
fn bad_inputs() {
    let l = gpt(512, GIB, vec![part(1, MIB, 100 * MIB)]);
    let e = plan(&l, &[], &req(2 * GIB, &[])).unwrap_err();
    assert!(matches!(e, PlanError::BadInput { .. }));
    assert!(e.to_string().contains("larger than the whole disk") && !e.to_string().contains("--"), "{e}");
    assert_eq!(e.hints(), [Hint::StoreSize, Hint::ExternalStore]);
    let l = mbr(512, GIB, vec![part(1, MIB, 100 * MIB), part(2, 50 * MIB, 100 * MIB)]);
    let e = plan(&l, &[], &req(10 * MIB, &[])).unwrap_err();
    assert!(e.to_string().contains("overlap"), "{e}");
    let l = gpt(512, GIB, vec![]);
    assert!(plan(&l, &[], &req(10 * MIB, &[7])).unwrap_err().to_string().contains("no partition 7"));
}

// ---- properties ----

#[derive(Debug, Clone)]
struct Case {
    layout: Layout,
    usage: Vec<TailFree>,
    req: Request,
}

prop_compose! {
    fn case()(
        is_gpt in any::<bool>(),
        big_sectors in any::<bool>(),
        disk_mib in 64u64..6000,
        extra in 0u64..2048,
        pieces in proptest::collection::vec((0u64..4, 1u64..70, any::<bool>(), 0u64..=100, any::<bool>()), 0..7),
        ext_at in proptest::option::weighted(0.6, 0usize..3),
        replace_mask in any::<u8>(),
        store_pct in prop_oneof![8 => 1u64..40, 1 => 40u64..120],
    ) -> Case {
        let ss: u32 = if big_sectors { 4096 } else { 512 };
        let s = u64::from(ss);
        let disk = disk_mib * MIB + extra * s;
        let mut layout = if is_gpt { gpt(ss, disk, vec![]) } else { mbr(ss, disk, vec![]) };
        let mut pos = align_up(layout.usable_start, MIB).unwrap();
        let mut usage = Vec::new();
        let mut number = 1;
        for (i, (gap_kind, size_mib, aligned, tail_pct, ntfs_like)) in pieces.into_iter().enumerate() {
            let gap = match gap_kind { 0 | 3 => 0, 1 => 3 * s, _ => 37 * MIB };
            let mut start = pos + gap;
            if !aligned { start += 7 * s; }
            let size = (disk_mib * size_mib / 100).max(1) * MIB + if aligned { 0 } else { 5 * s };
            let size = if start + size > layout.usable_end { (layout.usable_end.saturating_sub(start)) / s * s } else { size };
            if size < MIB { break; }
            let mut p = part(number, start, size);
            if !is_gpt && number > 4 { break; }
            let make_ext = !is_gpt && ext_at == Some(i) && size >= 4 * MIB;
            if make_ext {
                p.role = Role::Extended;
                p.fs = None;
                // One or two logical partitions inside, each after its EBR.
                let mut lpos = start;
                let mut lnum = 5;
                while lpos + 3 * MIB <= start + size && lnum < 7 {
                    let ebr = lpos;
                    let lstart = align_up(lpos + s, MIB).unwrap();
                    let lsize = ((start + size - lstart) / 2).max(s) / s * s;
                    if lstart + lsize > start + size || lsize < MIB { break; }
                    layout.parts.push(Part { number: lnum, start: lstart, size: lsize, role: Role::Logical, ebr: Some(ebr), fs: Some("ext4".into()) });
                    let free_from = lsize * tail_pct / 100 / s * s;
                    usage.push(TailFree { number: lnum, fs: "ext4".into(), start: free_from, end: lsize });
                    lpos = lstart + lsize;
                    lnum += 1;
                }
            } else {
                let end = if ntfs_like { size - s } else { size };
                let free_from = (end * tail_pct / 100) / s * s;
                usage.push(TailFree { number, fs: "x".into(), start: free_from.min(end), end });
            }
            layout.parts.push(p);
            pos = start + size;
            number += 1;
        }
        let numbers: Vec<u32> = layout.parts.iter().filter(|p| p.role != Role::Extended).map(|p| p.number).collect();
        let replace = numbers.iter().enumerate().filter(|(i, _)| replace_mask & (1 << (i % 8)) != 0).map(|(_, n)| *n).collect();
        let store_mib = (disk_mib * store_pct / 100).max(1);
        Case { layout, usage, req: Request { store_bytes: store_mib * MIB - (store_mib % 3) * 1000, replace } }
    }
}

fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

fn check(c: &Case) -> Result<(), TestCaseError> {
    let l = &c.layout;
    let ss = u64::from(l.sector_size);
    match plan(l, &c.usage, &c.req) {
        Ok(p) => {
            let store = &p.store;
            // At least as large as asked, aligned, inside the usable area.
            prop_assert!(p.fs_bytes >= c.req.store_bytes);
            prop_assert_eq!(store.size, p.fs_bytes + STORE_TAIL);
            prop_assert_eq!(store.start % ALIGN, 0);
            prop_assert_eq!(store.size % ALIGN, 0);
            prop_assert!(store.start >= l.usable_start && store.end() <= l.usable_end);
            prop_assert!(!l.parts.iter().any(|q| q.number == store.number));
            // Every partition not replaced keeps its bytes; replaced ones only lose free tail.
            for before in &l.parts {
                let after = p.after.part(before.number).unwrap();
                prop_assert_eq!(after.start, before.start);
                match before.role {
                    Role::Extended => prop_assert!(after.size >= before.size),
                    _ if p.strategy == (Strategy::FreeTail { number: before.number }) => {
                        prop_assert!(c.req.replace.contains(&before.number));
                        let t = c.usage.iter().find(|t| t.number == before.number).unwrap();
                        prop_assert!(after.size >= t.start && after.size < before.size);
                        prop_assert_eq!(after.end() % ALIGN, 0);
                    }
                    _ => prop_assert_eq!(after.size, before.size),
                }
            }
            // The store lies only on free bytes: unallocated, or the free tail of the
            // partition that gave it up.
            for q in &l.parts {
                if q.role == Role::Extended {
                    if store.role == Role::Primary {
                        prop_assert!(!overlaps((store.start, store.end()), (q.start, q.end())));
                    }
                    continue;
                }
                if overlaps((store.start, store.end()), (q.start, q.end())) {
                    prop_assert_eq!(&p.strategy, &Strategy::FreeTail { number: q.number });
                    let t = c.usage.iter().find(|t| t.number == q.number).unwrap();
                    prop_assert!(store.start >= q.start + t.start && store.start < q.start + t.end);
                    prop_assert!(store.end().min(q.end()) <= q.start + t.end);
                }
                if let Some(e) = q.ebr {
                    prop_assert!(!overlaps((store.start, store.end()), (e, e + ss)));
                }
            }
            // No overlaps at all after the plan.
            let mut taken: Vec<(u64, u64)> = Vec::new();
            for q in &p.after.parts {
                if q.role != Role::Extended {
                    taken.push((q.start, q.end()));
                }
                if let Some(e) = q.ebr {
                    taken.push((e, e + ss));
                }
            }
            for (i, a) in taken.iter().enumerate() {
                for b in &taken[i + 1..] {
                    prop_assert!(!overlaps(*a, *b), "{:?} overlaps {:?}", a, b);
                }
            }
            let ext = p.after.extended();
            for q in &p.after.parts {
                match (q.role, ext) {
                    (Role::Logical, Some(e)) => prop_assert!(q.start >= e.start && q.end() <= e.end() && q.ebr.unwrap() >= e.start),
                    (Role::Primary, Some(e)) => prop_assert!(!overlaps((q.start, q.end()), (e.start, e.end()))),
                    (Role::Logical, None) => prop_assert!(false, "logical without extended"),
                    _ => {}
                }
            }
            if l.scheme == Scheme::Mbr {
                prop_assert!(p.after.parts.iter().filter(|q| q.role != Role::Logical).count() <= 4);
            }
        }
        Err(PlanError::Refused(r)) => {
            prop_assert!(!r.reasons.is_empty());
            prop_assert!(r.needed > c.req.store_bytes);
            for (i, h) in r.hints.iter().enumerate() {
                prop_assert!(!r.hints[i + 1..].contains(h), "{:?} twice in {:?}", h, r.hints);
            }
            // Completeness for (a) on GPT: an aligned gap that fits would have been used.
            if l.scheme == Scheme::Gpt {
                let obstacles: Vec<(u64, u64)> = l.parts.iter().map(|q| (q.start, q.end())).collect();
                for (s, e) in gaps(l.usable_start, l.usable_end, &obstacles) {
                    let room = align_down(e, ALIGN).saturating_sub(align_up(s, ALIGN).unwrap());
                    prop_assert!(room < r.needed, "gap {}..{} fits {} but was refused", s, e, r.needed);
                }
            }
        }
        Err(PlanError::BadInput { problem: m, .. }) => {
            prop_assert!(!m.is_empty());
            prop_assert!(align_up(c.req.store_bytes, ALIGN).unwrap() + STORE_TAIL > l.disk_bytes || min_store_partition(l.sector_size) > l.disk_bytes, "{}", m);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]
    #[test]
    fn every_plan_is_safe(c in case()) {
        check(&c)?;
    }
}

#[test]
fn logical_stays_inside_the_extended_partition_when_it_fits() {
    // Found by the image test mbr_logicals_past_4_gib: the extended partition was grown into
    // the free space after it even when the store fitted inside it.
    let mut ext = part(4, 4100 * MIB, 200 * MIB);
    ext.role = Role::Extended;
    let mut l5 = part(5, 4101 * MIB, 16 * MIB);
    l5.role = Role::Logical;
    l5.ebr = Some(4100 * MIB);
    let l = mbr(512, 6 * GIB, vec![part(1, MIB, 32 * MIB), part(2, 33 * MIB, 16 * MIB), part(3, 49 * MIB, 16 * MIB), ext, l5]);
    let p = plan(&l, &[], &req(100 * MIB, &[])).unwrap();
    assert_eq!((p.store.number, p.store.role), (6, Role::Logical));
    assert!(p.store.end() <= 4300 * MIB, "{:?}", p.store);
    assert!(!p.steps.iter().any(|s| matches!(s, Step::GrowExtended { .. })), "{:?}", p.steps);
    let p = plan(&l, &[], &req(300 * MIB, &[])).unwrap();
    assert!(p.store.start >= 4300 * MIB, "{:?}", p.store);
    assert!(p.steps.iter().any(|s| matches!(s, Step::GrowExtended { to_size, .. } if 4100 * MIB + to_size == 6 * GIB)), "{:?}", p.steps);
}

#[test]
fn four_primaries_with_free_space_say_why_and_give_no_empty_advice() {
    let l = mbr(512, 128 * MIB, (0..4).map(|i| part(i + 1, (1 + 16 * u64::from(i)) * MIB, 16 * MIB)).collect());
    let Err(PlanError::Refused(r)) = plan(&l, &[], &req(40 * MIB, &[1])) else { panic!() };
    let t = r.to_string();
    assert!(t.contains("all four primary partition slots") && t.contains("no free partition entry can describe it"), "{t}");
    assert!(!t.contains("no unallocated space"), "{t}");
    assert!(!r.hints.iter().any(|h| matches!(h, Hint::SmallerStore { .. })), "no empty store suggested: {:?}", r.hints);
    assert!(r.hints.iter().any(|h| matches!(h, Hint::Advice { text } if text.starts_with("free a primary entry"))), "{:?}", r.hints);
}
