//! The TUI on the PE's screen (tty1). It runs as a child of PID 1 and reads the inventory PID 1
//! wrote; keys end the PE through the exit code (power off, reboot).

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::{Frame, Terminal, TerminalOptions, Viewport};

use super::map::{human_size, segments};
use crate::inventory::{Disk, Inventory};

/// Exit codes the TUI uses to ask PID 1 to end the PE.
pub const EXIT_POWER_OFF: i32 = 10;
pub const EXIT_REBOOT: i32 = 11;

/// What the home screen shows besides the inventory.
#[derive(Debug, Default)]
pub struct Home {
    pub selected: usize,
    /// The machine's state for the title bar, e.g. `firmware uefi secure-boot on · preset lab-a`.
    pub status: String,
}

/// Runs the TUI on `tty` until a key asks to power off or reboot; returns that exit code.
pub fn run(tty: &Path, inventory_path: &Path, status: &str) -> anyhow::Result<i32> {
    attach_tty(tty).with_context(|| format!("taking {} as the controlling terminal", tty.display()))?;
    let text = std::fs::read_to_string(inventory_path).with_context(|| format!("reading {}", inventory_path.display()))?;
    let inventory: Inventory = serde_json::from_str(&text).context("parsing the inventory")?;

    ratatui::crossterm::terminal::enable_raw_mode()?;
    // A serial line reports 0x0; a console of unknown size gets 80x25.
    let (w, h) = match ratatui::crossterm::terminal::size() {
        Ok((w, h)) if w > 0 && h > 0 => (w, h),
        _ => (80, 25),
    };
    let options = TerminalOptions { viewport: Viewport::Fixed(Rect::new(0, 0, w, h)) };
    let mut terminal = Terminal::with_options(CrosstermBackend::new(std::io::stdout()), options)?;
    terminal.clear()?;
    let mut home = Home { selected: 0, status: status.to_string() };
    loop {
        terminal.draw(|f| render_home(f, &inventory, &home))?;
        if !event::poll(Duration::from_secs(1))? {
            continue;
        }
        if let Event::Key(k) = event::read()? {
            if k.kind != KeyEventKind::Press {
                continue;
            }
            match k.code {
                KeyCode::Char('p') => return Ok(EXIT_POWER_OFF),
                KeyCode::Char('r') => return Ok(EXIT_REBOOT),
                KeyCode::Down | KeyCode::Char('j') => home.selected = (home.selected + 1).min(inventory.disks.len().saturating_sub(1)),
                KeyCode::Up | KeyCode::Char('k') => home.selected = home.selected.saturating_sub(1),
                _ => {}
            }
        }
    }
}

/// New session with `tty` as controlling terminal and as stdin/stdout/stderr.
fn attach_tty(tty: &Path) -> anyhow::Result<()> {
    let _ = rustix::process::setsid();
    let fd = rustix::fs::open(tty, rustix::fs::OFlags::RDWR, rustix::fs::Mode::empty())?;
    rustix::process::ioctl_tiocsctty(&fd)?;
    rustix::stdio::dup2_stdin(&fd)?;
    rustix::stdio::dup2_stdout(&fd)?;
    rustix::stdio::dup2_stderr(&fd)?;
    Ok(())
}

fn fs_color(fs: Option<&str>) -> Color {
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

/// Draws the home screen: each disk with its partition map and partitions.
pub fn render_home(f: &mut Frame, inventory: &Inventory, home: &Home) {
    let [title, body, footer] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(1), Constraint::Length(1)]).areas(f.area());
    f.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(" inplace ", Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED)),
            Span::raw(format!(" preinstallation environment   {} disk(s)   {}", inventory.disks.len(), home.status)),
        ])),
        title,
    );
    f.render_widget(Paragraph::new(" Up/Down select disk   p power off   r reboot"), footer);

    let heights: Vec<Constraint> =
        inventory.disks.iter().map(|d| Constraint::Length(d.partitions.len() as u16 + 4 + d.findings.len() as u16)).collect();
    let areas = Layout::vertical(heights).split(body);
    for (i, (disk, area)) in inventory.disks.iter().zip(areas.iter()).enumerate() {
        render_disk(f, *area, disk, i == home.selected);
    }
    if inventory.disks.is_empty() {
        f.render_widget(Paragraph::new(" No disks found. Check the cables and the storage controller mode in the firmware setup."), body);
    }
}

fn render_disk(f: &mut Frame, area: Rect, disk: &Disk, selected: bool) {
    let title = format!(
        " {} · {} · {} · {} · {} ",
        disk.name,
        disk.transport,
        human_size(disk.size_bytes),
        disk.model.as_deref().unwrap_or("unknown model"),
        disk.table.as_deref().unwrap_or("no partition table")
    );
    let border = if selected { Style::new().fg(Color::White).add_modifier(Modifier::BOLD) } else { Style::new().fg(Color::DarkGray) };
    let block = Block::new().borders(Borders::ALL).border_style(border).title(title);
    let inner = block.inner(area);
    f.render_widget(block, area);

    let mut lines = vec![bar_line(disk, inner.width as usize)];
    for p in &disk.partitions {
        let os = p.os.as_ref().map(|o| format!("{} {} — users: {}", o.name, o.version.as_deref().unwrap_or(""), o.users.join(", ")));
        lines.push(Line::from(vec![
            Span::styled(format!(" {:>2} ", p.number), Style::new().bg(fs_color(p.fs.as_deref())).fg(Color::Black)),
            Span::raw(format!(
                " {:>10}  {:<6} {:<16} {}",
                human_size(p.size_bytes),
                p.fs.as_deref().unwrap_or("-"),
                p.label.as_deref().or(p.name.as_deref()).unwrap_or(""),
                os.unwrap_or_default()
            )),
        ]));
    }
    for finding in &disk.findings {
        lines.push(Line::styled(format!(" ! {}: {}", finding.subject, finding.message), Style::new().fg(Color::Red)));
    }
    f.render_widget(Paragraph::new(lines), inner);
}

/// One line of coloured segments, each labelled with its partition number.
fn bar_line(disk: &Disk, width: usize) -> Line<'static> {
    let spans = segments(disk, width)
        .into_iter()
        .map(|seg| match seg.partition {
            Some(i) => {
                let p = &disk.partitions[i];
                let label = format!("{:^w$}", p.number, w = seg.width);
                let label: String = label.chars().take(seg.width).collect();
                Span::styled(label, Style::new().bg(fs_color(p.fs.as_deref())).fg(Color::Black))
            }
            None => Span::styled(".".repeat(seg.width), Style::new().fg(Color::DarkGray)),
        })
        .collect::<Vec<_>>();
    Line::from(spans)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{Os, Partition};
    use ratatui::backend::TestBackend;

    fn sample() -> Inventory {
        let mib = 1u64 << 20;
        let part = |number, start, size, fs: &str, label: &str| Partition {
            number,
            start_bytes: start * mib,
            size_bytes: size * mib,
            part_type: String::new(),
            fs: Some(fs.into()),
            label: Some(label.into()),
            ..Default::default()
        };
        let mut root = part(2, 101, 300, "ext4", "root");
        root.os = Some(Os { family: "linux".into(), name: "Debian GNU/Linux".into(), version: Some("12".into()), users: vec!["alice".into(), "bob".into()], ..Os::default() });
        Inventory {
            disks: vec![Disk {
                name: "vda".into(),
                size_bytes: 500 * mib,
                logical_sector_size: 512,
                transport: "virtio".into(),
                table: Some("gpt".into()),
                partitions: vec![part(1, 1, 100, "vfat", "ESP"), root],
                ..Default::default()
            }],
            findings: vec![],
        }
    }

    #[test]
    fn home_screen_shows_the_map_and_the_os() {
        let (w, h) = (100u16, 12u16);
        let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
        let home = Home { selected: 0, status: "firmware uefi secure-boot on · preset lab-a".into() };
        terminal.draw(|f| render_home(f, &sample(), &home)).unwrap();
        let buf = terminal.backend().buffer();
        let rows: Vec<String> = (0..h).map(|y| (0..w).map(|x| buf[(x, y)].symbol().to_string()).collect()).collect();
        let screen = rows.join("\n");
        assert!(screen.contains("vda · virtio · 500.0 MiB"), "{screen}");
        assert!(rows[0].contains("1 disk(s)   firmware uefi secure-boot on · preset lab-a"), "{screen}");
        assert!(screen.contains("Debian GNU/Linux 12 — users: alice, bob"), "{screen}");
        // The bar (row 2, inside the border): ESP 100 MiB and root 300 MiB of the 499 MiB drawn
        // (the 1 MiB gap at the start is too small to draw) over 98 columns.
        let esp_cols = (1..w - 1).filter(|&x| buf[(x, 2)].bg == Color::Yellow).count();
        let root_cols = (1..w - 1).filter(|&x| buf[(x, 2)].bg == Color::Green).count();
        assert!((19..=20).contains(&esp_cols) && (58..=59).contains(&root_cols), "esp {esp_cols} root {root_cols}");
        assert!(rows[2].trim_end_matches('│').ends_with("..........."), "free tail drawn: {}", rows[2]);
    }
}
