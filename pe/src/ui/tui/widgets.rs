//! Pieces every screen uses: the title bar, the key hints, the error box, the detail pane,
//! bars and the partition map.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

use super::app::App;
use super::text::fit;
use crate::error::Error;
use crate::inventory::Disk;
use crate::ui::map::segments;

/// Draws the title bar (`screen` and the machine's status) and the key hints; returns the
/// room between them.
pub fn frame(f: &mut Frame, app: &App, screen: &str, hints: &[(&str, &str)]) -> Rect {
    let [title, body, footer] = Layout::vertical([Constraint::Length(1), Constraint::Min(1), Constraint::Length(1)]).areas(f.area());
    let w = title.width as usize;
    let head = " inplace ";
    let rest = format!(" {screen} · {}", app.ctx.status);
    f.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(head, Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED)),
            Span::raw(fit(&rest, w.saturating_sub(head.len()))),
        ])),
        title,
    );
    let mut spans = Vec::new();
    let mut used = 0;
    for (k, what) in hints {
        let n = k.chars().count() + what.chars().count() + 3;
        if used + n > w {
            break;
        }
        spans.push(Span::styled(format!(" {k}"), Style::new().add_modifier(Modifier::BOLD)));
        spans.push(Span::raw(format!(" {what} ")));
        used += n;
    }
    f.render_widget(Paragraph::new(Line::from(spans)).style(Style::new().add_modifier(Modifier::REVERSED)), footer);
    body
}

/// A bordered block with `title` fitted to its width.
pub fn block(title: &str, width: u16, focused: bool) -> Block<'static> {
    let style = if focused { Style::new().add_modifier(Modifier::BOLD) } else { Style::new().fg(Color::Gray) };
    Block::new().borders(Borders::ALL).border_style(style).title(format!(" {} ", fit(title, (width as usize).saturating_sub(4))))
}

/// Lines fitted to `width`, as a paragraph's lines.
pub fn fitted(lines: &[String], width: u16) -> Vec<Line<'static>> {
    lines.iter().map(|l| Line::raw(fit(l, width as usize))).collect()
}

/// The rows a wrapped text takes at `width` (a word never split).
pub fn wrapped_height(text: &str, width: u16) -> u16 {
    let w = width.max(1) as usize;
    let mut rows = 0u16;
    for para in text.split('\n') {
        let mut col = 0usize;
        let mut r = 1u16;
        for word in para.split(' ') {
            let n = word.chars().count();
            if col > 0 && col + 1 + n > w {
                r += 1;
                col = n;
            } else {
                col += if col > 0 { 1 + n } else { n };
            }
        }
        rows += r;
    }
    rows
}

/// The error of the screen at the bottom of `area`, in words with what to do, above `hint`;
/// returns the room left above it.
pub fn error_box(f: &mut Frame, area: Rect, e: &Error, hint: &str) -> Rect {
    let text = format!("{}\n{hint}", crate::ui::words::error(e));
    let h = (wrapped_height(&text, area.width.saturating_sub(2)) + 2).min(area.height);
    let [top, bottom] = Layout::vertical([Constraint::Min(0), Constraint::Length(h)]).areas(area);
    let b = Block::new().borders(Borders::ALL).border_style(Style::new().fg(Color::Red)).title(format!(" {} ", title_of(e)));
    f.render_widget(Clear, bottom);
    f.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }).block(b), bottom);
    top
}

fn title_of(e: &Error) -> &'static str {
    match e.kind {
        crate::error::Kind::Refused => "Refused",
        crate::error::Kind::Cancelled => "Stopped",
        _ => "Error",
    }
}

/// The detail pane over `area`: `lines` whole, wrapped.
pub fn detail(f: &mut Frame, area: Rect, title: &str, lines: &[String]) {
    f.render_widget(Clear, area);
    let b = block(&format!("{title} (d or Esc closes)"), area.width, true);
    f.render_widget(Paragraph::new(lines.join("\n")).wrap(Wrap { trim: false }).block(b), area);
}

/// `[#####.....]` over `width` columns for `ratio`.
pub fn bar(ratio: f64, width: usize) -> String {
    let inner = width.saturating_sub(2);
    let full = ((ratio.clamp(0.0, 1.0) * inner as f64).round() as usize).min(inner);
    format!("[{}{}]", "#".repeat(full), ".".repeat(inner - full))
}

/// What a partition is to the job, on the plan's maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Shown as it is (the home screen).
    Plain,
    Replaced,
    Kept,
    Store,
    NewOs,
}

impl Role {
    fn word(self) -> &'static str {
        match self {
            Role::Plain => "",
            Role::Replaced => "replaced",
            Role::Kept => "kept",
            Role::Store => "store",
            Role::NewOs => "new OS",
        }
    }

    fn color(self, fs: Option<&str>) -> Color {
        match self {
            Role::Plain => fs_color(fs),
            Role::Replaced => Color::Red,
            Role::Kept => Color::Blue,
            Role::Store => Color::Yellow,
            Role::NewOs => Color::Green,
        }
    }
}

pub fn fs_color(fs: Option<&str>) -> Color {
    match fs {
        Some("ntfs") => Color::Blue,
        Some("ext4" | "ext3" | "ext2" | "btrfs" | "xfs") => Color::Green,
        Some("vfat" | "exfat") => Color::Yellow,
        Some("swap") => Color::Magenta,
        Some("luks" | "bitlocker") => Color::Red,
        Some(_) => Color::Cyan,
        None => Color::Gray,
    }
}

/// One line of the disk's partitions in proportion, each `[n word]` as its room allows, free
/// space as dots; `role` says what each partition is.
pub fn map_line(disk: &Disk, width: usize, role: &dyn Fn(u32) -> Role) -> Line<'static> {
    let spans = segments(disk, width)
        .into_iter()
        .map(|seg| match seg.partition {
            Some(i) => {
                let p = &disk.partitions[i];
                let r = role(p.number);
                let w = seg.width;
                let words = [format!("{} {}", p.number, r.word()), p.number.to_string()];
                let label = words.iter().map(|l| l.trim().to_string()).find(|l| l.chars().count() + 2 <= w);
                let text = match (label, w) {
                    (Some(l), _) => format!("[{l:^x$}]", x = w - 2),
                    (None, 1) => "|".to_string(),
                    (None, _) => format!("[{}]", " ".repeat(w - 2)),
                };
                Span::styled(text, Style::new().bg(r.color(p.fs.as_deref())).fg(Color::Black))
            }
            None => Span::styled(".".repeat(seg.width), Style::new().fg(Color::DarkGray)),
        })
        .collect::<Vec<_>>();
    Line::from(spans)
}
