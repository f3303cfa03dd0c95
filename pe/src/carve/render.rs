//! The plan as text: the steps, then the table before and after, each with a one-line map.

use std::fmt::Write;

use super::model::{human, Layout, Plan, Role, Step, Strategy};

fn bar(l: &Layout, highlight: Option<u32>, width: u64) -> String {
    let mut cells = vec!['.'; width as usize];
    for p in &l.parts {
        if p.role == Role::Extended {
            continue;
        }
        let a = (p.start as u128 * width as u128 / l.disk_bytes.max(1) as u128) as usize;
        let b = ((p.end() as u128 * width as u128).div_ceil(l.disk_bytes.max(1) as u128) as usize).clamp(a + 1, width as usize);
        let c = if Some(p.number) == highlight { '#' } else { std::char::from_digit(p.number % 36, 36).unwrap_or('?') };
        for cell in cells.iter_mut().take(b).skip(a) {
            *cell = c;
        }
    }
    format!("[{}]", cells.into_iter().collect::<String>())
}

fn table(out: &mut String, l: &Layout, highlight: Option<u32>) {
    let _ = writeln!(out, "  {}", bar(l, highlight, 64));
    for p in &l.parts {
        let role = match p.role {
            Role::Primary => "",
            Role::Extended => " extended",
            Role::Logical => " logical",
        };
        let mark = if Some(p.number) == highlight { "  <- store (#)" } else { "" };
        let _ = writeln!(
            out,
            "  {:>3}  bytes {:>14} – {:<14} {:>12}  {}{role}{mark}",
            p.number,
            p.start,
            p.end(),
            human(p.size),
            p.fs.as_deref().unwrap_or("-"),
        );
    }
}

pub fn plan_text(disk: &str, plan: &Plan) -> String {
    let mut out = String::new();
    let l = &plan.before;
    let _ = writeln!(
        out,
        "disk {disk}: {} {}, {}-byte sectors",
        human(l.disk_bytes),
        l.scheme.as_str(),
        l.sector_size
    );
    let how = match plan.strategy {
        Strategy::Unallocated => "unallocated space".to_string(),
        Strategy::FreeTail { number } => format!("the free tail of partition {number} (replaced by the image; no data moves)"),
    };
    let _ = writeln!(
        out,
        "store: partition {} ({}), {} at byte {}, FAT32 label INPLACE holding {} — from {how}",
        plan.store.number,
        if plan.store.role == Role::Logical { "logical" } else { "primary" },
        human(plan.store.size),
        plan.store.start,
        human(plan.fs_bytes)
    );
    for n in &plan.notes {
        let _ = writeln!(out, "note: {n}");
    }
    let _ = writeln!(out, "steps:");
    for (i, s) in plan.steps.iter().enumerate() {
        let line = match s {
            Step::ShrinkEntry { number, from_size, to_size, free_from } => format!(
                "shrink the table entry of partition {number} from {} to {} (its filesystem is free from byte {free_from}; it stays readable through its original extent)",
                human(*from_size),
                human(*to_size)
            ),
            Step::GrowExtended { number, from_size, to_size } => {
                format!("grow extended partition {number} from {} to {}", human(*from_size), human(*to_size))
            }
            Step::AddPartition { number, start, size, .. } => {
                format!("add partition {number} at byte {start}, {} (saved table + locator, then FAT32)", human(*size))
            }
        };
        let _ = writeln!(out, "  {}. {line}", i + 1);
    }
    let _ = writeln!(out, "before:");
    table(&mut out, &plan.before, None);
    let _ = writeln!(out, "after:");
    table(&mut out, &plan.after, Some(plan.store.number));
    out
}
