//! Home: each disk with its partition map, OS and users; an unfinished job first.

use ratatui::crossterm::event::KeyCode;

use super::app::{Screen, EXIT_POWER_OFF, EXIT_REBOOT};
use crate::ui::session::Request;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

use super::app::{App, Unfinished};
use super::text::{fit, size};
use super::widgets::{self, block, fs_color, map_line, Role};
use crate::inventory::{Disk, Partition};

pub fn render(f: &mut Frame, app: &App) {
    let mut hints = vec![("Up/Down", "disk"), ("Enter", "choose"), ("d", "details"), ("p", "power off"), ("r", "reboot")];
    if let Some(u) = &app.home.unfinished {
        hints.insert(0, ("c", "continue"));
        if u.state.can_roll_back() {
            hints.insert(1, ("b", "roll back"));
        }
    }
    let mut body = widgets::frame(f, app, "disks", &hints);
    if let Some(u) = &app.home.unfinished {
        let lines = prompt(u, app.home.asking_rollback);
        let h = lines.iter().map(|l| widgets::wrapped_height(l, body.width - 2)).sum::<u16>() + 2;
        let [top, rest] = Layout::vertical([Constraint::Length(h), Constraint::Min(0)]).areas(body);
        let b = block("Unfinished job", top.width, true).border_style(Style::new().fg(Color::Yellow));
        f.render_widget(Paragraph::new(lines.join("\n")).wrap(Wrap { trim: true }).block(b), top);
        body = rest;
    }
    let disks = app.candidates();
    if disks.is_empty() {
        let text = "No disks found. Check the cables and the storage controller mode (AHCI, not RAID) in the firmware setup.";
        f.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), body);
    }
    let heights: Vec<Constraint> = disks.iter().map(|d| Constraint::Length(d.partitions.len() as u16 + 3 + d.findings.len() as u16)).collect();
    let areas = Layout::vertical(heights).split(body);
    for (i, (disk, area)) in disks.iter().zip(areas.iter()).enumerate() {
        render_disk(f, *area, disk, i == app.home.selected);
    }
    if let Some(e) = &app.error {
        widgets::error_box(f, body, e, "Esc closes this.");
    }
    if app.detail {
        if let Some(d) = disks.get(app.home.selected) {
            widgets::detail(f, body, &format!("disk {}", d.name), &detail_lines(d));
        }
    }
}

/// The unfinished job and what each way out does.
fn prompt(u: &Unfinished, asking: bool) -> Vec<String> {
    let mut v = vec![format!("{} holds the job {:?}, stopped at {}.", u.disk, u.name, u.state)];
    if asking {
        v.push(format!("Roll {} back? y: yes; any other key: no.", u.disk));
        return v;
    }
    v.push("c  continue: the job goes on where it stopped; nothing done is done again.".into());
    if u.state.can_roll_back() {
        v.push("b  roll back: the old partition table goes back; the old OS boots as before and the saved files are dropped.".into());
    } else {
        v.push("The new OS was being written: the old OS is gone and the job can only go on (c).".into());
    }
    v
}

pub fn disk_title(d: &Disk) -> String {
    format!(
        "{} · {} · {} · {}",
        d.name,
        size(d.size_bytes),
        d.model.as_deref().unwrap_or("unknown model"),
        d.table.as_deref().unwrap_or("no partition table")
    )
}

/// The OS and its users, short (`Debian GNU/Linux 12`, `Windows 11 Pro 23H2`); the
/// detail pane has it whole.
pub fn os_words(p: &Partition) -> Option<String> {
    p.os.as_ref().map(|o| {
        let name = o.short();
        if o.users.is_empty() { name } else { format!("{name} · users {}", o.users.join(", ")) }
    })
}

fn render_disk(f: &mut Frame, area: Rect, disk: &Disk, selected: bool) {
    let b = block(&disk_title(disk), area.width, selected);
    let inner = b.inner(area);
    f.render_widget(b, area);
    let w = inner.width as usize;
    let mut lines = vec![map_line(disk, w, &|_| Role::Plain)];
    for p in &disk.partitions {
        let head = format!(" {:>2} ", p.number);
        let text = format!(
            " {:>9} {:<5} {:<8} {}",
            size(p.size_bytes),
            p.fs.as_deref().unwrap_or("-"),
            fit(p.label.as_deref().or(p.name.as_deref()).unwrap_or(""), 8),
            os_words(p).unwrap_or_default()
        );
        lines.push(Line::from(vec![
            Span::styled(head, Style::new().bg(fs_color(p.fs.as_deref())).fg(Color::Black)),
            Span::raw(fit(text.trim_end(), w.saturating_sub(4))),
        ]));
    }
    for finding in &disk.findings {
        lines.push(Line::styled(fit(&format!(" ! {}: {}", finding.subject, finding.message), w), Style::new().fg(Color::Red)));
    }
    f.render_widget(Paragraph::new(lines), inner);
}

/// The disk's values whole.
pub fn detail_lines(d: &Disk) -> Vec<String> {
    let mut v = vec![
        format!("disk: {}", d.name),
        format!("size: {} ({} bytes)", size(d.size_bytes), d.size_bytes),
        format!("model: {}", d.model.as_deref().unwrap_or("-")),
        format!("serial: {}", d.serial.as_deref().unwrap_or("-")),
        format!("transport: {}", d.transport),
        format!("table: {}", d.table.as_deref().unwrap_or("-")),
    ];
    for p in &d.partitions {
        v.push(format!(
            "partition {}: {} at byte {}, {}, label {}{}",
            p.number,
            size(p.size_bytes),
            p.start_bytes,
            p.fs.as_deref().unwrap_or("no filesystem recognised"),
            p.label.as_deref().unwrap_or("-"),
            p.os.as_ref().map(|o| format!(", {}, users {}", o.title(), o.users.join(", "))).unwrap_or_default()
        ));
    }
    for finding in &d.findings {
        v.push(format!("{}: {}", finding.subject, finding.message));
    }
    v
}

impl App {
    /// A key on this screen.
    pub(super) fn home_key(&mut self, code: KeyCode) {
        if let Some(u) = self.home.unfinished.clone() {
            match (code, self.home.asking_rollback) {
                (KeyCode::Char('c'), false) => return self.submit(Request::Resume { disk: u.path }),
                (KeyCode::Char('b'), false) if u.state.can_roll_back() => {
                    self.home.asking_rollback = true;
                    return;
                }
                (KeyCode::Char('y'), true) => return self.submit(Request::Rollback { disk: u.path }),
                (_, true) => {
                    self.home.asking_rollback = false;
                    return;
                }
                (KeyCode::Enter, false) => return,
                _ => {}
            }
        }
        let n = self.candidates().len();
        match code {
            KeyCode::Char('p') => self.exit = Some(EXIT_POWER_OFF),
            KeyCode::Char('r') => self.exit = Some(EXIT_REBOOT),
            KeyCode::Down | KeyCode::Char('j') => self.home.selected = (self.home.selected + 1).min(n.saturating_sub(1)),
            KeyCode::Up | KeyCode::Char('k') => self.home.selected = self.home.selected.saturating_sub(1),
            KeyCode::Enter if n > 0 => {
                self.choose.disk = self.home.selected.min(n - 1);
                self.screen = Screen::Choose;
                self.survey();
            }
            _ => {}
        }
    }
}
