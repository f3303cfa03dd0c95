//! Plan: the before/after partition map (store, replaced and kept marked), the bytes to save,
//! the store and image sizes, a time estimate, what is left out and why. It is the plan
//! `inplace preset check --disk` prints (`run::dry_run`); `d` shows those lines whole.

use ratatui::crossterm::event::KeyCode;

use super::app::{Confirm, Screen};

use ratatui::layout::{Constraint, Layout};
use ratatui::text::Line;
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::app::{App, PlanView, Ready};
use super::text::{duration, fit, rate, size};
use super::widgets::{self, block, map_line, Role};
use crate::carve::model::Strategy;
use crate::inventory::{Disk, Partition};
use crate::job::plan::JobPlan;

pub fn render(f: &mut Frame, app: &App) {
    let hints: &[(&str, &str)] = match &app.plan {
        PlanView::Ready(_) => &[("Enter", "confirm"), ("Esc", "back"), ("d", "plan in full")],
        _ => &[("Esc", "back to the choices")],
    };
    let body = widgets::frame(f, app, "plan", hints);
    match &app.plan {
        PlanView::Idle | PlanView::Working => {
            f.render_widget(Paragraph::new("Planning: reading the disk, the old OS's files and the image… nothing is written."), body);
        }
        PlanView::Refused(e) => {
            let top = widgets::error_box(f, body, e, "Nothing was written. Esc goes back to the choices.");
            f.render_widget(Paragraph::new("This job cannot run as chosen:"), top);
        }
        PlanView::Ready(r) => ready(f, body, r),
    }
    if let Some(e) = &app.error {
        widgets::error_box(f, body, e, "Esc closes this.");
    }
    if app.detail {
        if let PlanView::Ready(r) = &app.plan {
            let mut lines = r.planned.lines.clone();
            if let Some(e) = r.estimate {
                lines.push(time_basis(e));
            }
            widgets::detail(f, body, "the plan", &lines);
        }
    }
}

fn ready(f: &mut Frame, area: ratatui::layout::Rect, r: &Ready) {
    let (disk, plan) = (&r.planned.disk, &r.planned.plan);
    let [maps, facts] = Layout::vertical([Constraint::Length(6), Constraint::Min(0)]).areas(area);
    let b = block(&format!("{} before and after", disk.name), maps.width, false);
    let inner = b.inner(maps);
    f.render_widget(b, maps);
    let w = inner.width as usize;
    let after = after_disk(disk, plan);
    let before_role = |n: u32| if plan.replace.contains(&n) { Role::Replaced } else { Role::Kept };
    let store = plan.store_number();
    let after_role = |n: u32| {
        if n == store {
            Role::Store
        } else if plan.placement.placed.iter().any(|p| p.number == n) {
            Role::NewOs
        } else {
            Role::Kept
        }
    };
    let lines = vec![
        Line::raw("before:"),
        map_line(disk, w, &before_role),
        Line::raw("after:"),
        map_line(&after, w, &after_role),
    ];
    f.render_widget(Paragraph::new(lines), inner);

    let w = facts.width as usize;
    let mut v = Vec::new();
    let (files, bytes) = plan.totals();
    let users: Vec<&str> = plan.sources.iter().flat_map(|s| s.users.iter().map(String::as_str)).collect();
    v.push(format!("Save: {} user(s) ({}), {files} files, {}", users.len(), users.join(", "), size(bytes)));
    v.push(format!(
        "Store: {} {}",
        size(plan.store_bytes),
        match plan.carve.strategy {
            Strategy::Unallocated => "in unallocated space".to_string(),
            Strategy::FreeTail { number } => format!("from the free tail of partition {number}, no data moves"),
        }
    ));
    v.push(format!(
        "Image: {} to write ({} file, pinned by {})",
        size(plan.image.logical_bytes),
        size(plan.image.file_len),
        plan.image.pinned_by
    ));
    v.push(format!("        {}", plan.image.source));
    for p in &plan.placement.placed {
        v.push(format!("  new partition {}: {}", p.number, p.change()));
    }
    v.push(match r.estimate {
        Some(e) => format!("Time: about {} (disk read at {})", duration(e.secs), rate(e.read_rate)),
        None => "Time: unknown (the disk could not be timed)".into(),
    });
    let kept: Vec<String> = plan.keep.iter().map(u32::to_string).collect();
    v.push(format!(
        "Replaced: partition(s) {}; kept: {}",
        plan.replace.iter().map(u32::to_string).collect::<Vec<_>>().join(", "),
        if kept.is_empty() { "none".into() } else { kept.join(", ") }
    ));
    let left: Vec<_> = plan.sources.iter().flat_map(|s| s.left_out.iter()).collect();
    if left.is_empty() {
        v.push("Left out: nothing".into());
    } else {
        v.push("Left out:".into());
        for l in left {
            v.push(format!("  {} item(s), {}: {} ({})", l.items, size(l.bytes), l.why, l.examples.join(", ")));
        }
    }
    let lines: Vec<String> = v.iter().map(|l| fit(l, w)).collect();
    f.render_widget(Paragraph::new(lines.join("\n")), facts);
}

/// How the time was estimated, for the detail pane.
pub fn time_basis(e: crate::job::rates::Estimate) -> String {
    format!(
        "time: about {} — the disk read {} in a timed read while planning; the job moves the bytes to save three times (read, written into the store, read back) and writes the image once, at that rate",
        duration(e.secs),
        rate(e.read_rate)
    )
}

/// The disk as it will be after the lay-down: the image's partitions, the store, the kept ones.
fn after_disk(disk: &Disk, plan: &JobPlan) -> Disk {
    let part = |number: u32, start: u64, size: u64, fs: Option<String>| Partition { number, start_bytes: start, size_bytes: size, fs, ..Partition::default() };
    let mut parts: Vec<Partition> = plan.placement.placed.iter().map(|p| part(p.number, p.start, p.size, None)).collect();
    let s = &plan.carve.store;
    parts.push(part(s.number, s.start, s.size, Some("vfat".into())));
    for p in &plan.carve.after.parts {
        if plan.keep.contains(&p.number) && p.number != s.number {
            parts.push(part(p.number, p.start, p.size, p.fs.clone()));
        }
    }
    parts.sort_by_key(|p| p.start_bytes);
    Disk { partitions: parts, ..disk.clone() }
}

impl App {
    /// A key on this screen.
    pub(super) fn plan_key(&mut self, code: KeyCode) {
        match code {
            KeyCode::Esc => self.screen = Screen::Choose,
            KeyCode::Enter if matches!(self.plan, PlanView::Ready(_)) => {
                self.confirm = Confirm::default();
                self.screen = Screen::Confirm;
            }
            _ => {}
        }
    }
}
