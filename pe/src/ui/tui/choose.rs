//! Choose: the disk (preselected when one holds an OS), the image, the users to keep.

use ratatui::crossterm::event::KeyCode;

use super::app::Screen;
use crate::error::Error;
use crate::job::images;
use crate::step::Step;

use ratatui::layout::{Constraint, Layout};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::app::{App, Field, Users};
use super::home::{disk_title, os_words};
use super::text::{fit, size};
use super::widgets::{self, block};
use crate::job::images::Origin;

pub fn render(f: &mut Frame, app: &App) {
    let c = &app.choose;
    let hints: &[(&str, &str)] = if c.url.is_some() {
        &[("Enter", "done"), ("Backspace", "delete"), ("Esc", "cancel")]
    } else {
        &[("Tab", "next list"), ("Up/Down", "move"), ("Space", "keep user"), ("u", "type URL"), ("Enter", "plan"), ("Esc", "back"), ("d", "details")]
    };
    let body = widgets::frame(f, app, "choose", hints);
    let disks = app.candidates();
    let images = c.images.len() + 1;
    let [d_area, i_area, u_area] = Layout::vertical([
        Constraint::Length((disks.len() as u16).clamp(1, 4) + 2),
        Constraint::Length((images as u16).clamp(1, 6) + 2),
        Constraint::Min(3),
    ])
    .areas(body);

    let w = d_area.width.saturating_sub(2) as usize;
    let lines: Vec<String> = disks
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let os = d.partitions.iter().find_map(os_words).unwrap_or_else(|| "no OS found".into());
            fit(&format!("{} {} · {}", mark(i == c.disk), disk_title(d), os), w)
        })
        .collect();
    let lines = window(lines, c.disk, d_area.height.saturating_sub(2) as usize);
    f.render_widget(Paragraph::new(lines.join("\n")).block(block("Disk", d_area.width, c.field == Field::Disk)), d_area);

    let w = i_area.width.saturating_sub(2) as usize;
    let mut lines: Vec<String> = c
        .images
        .iter()
        .enumerate()
        .map(|(i, im)| {
            let from = match im.origin {
                Origin::Preset => "preset",
                Origin::Found => "found",
                Origin::Typed => "typed",
            };
            let pin = match (&im.spec.sha256, &im.spec.key) {
                (Some(_), _) => "sha256",
                (None, Some(_)) => "signed",
                _ => "not pinned",
            };
            let len = im.file_len.map(|l| format!(" · {}", size(l))).unwrap_or_default();
            fit(&format!("{} {} ({from}, {pin}{len})", mark(i == c.image), im.spec.label()), w)
        })
        .collect();
    lines.push(match &c.url {
        Some(t) => {
            let room = w.saturating_sub(9);
            let shown: String = t.chars().rev().take(room).collect::<Vec<_>>().into_iter().rev().collect();
            format!("> URL or path: {shown}_")
        }
        None => format!("{} Type a URL or a path… (u)", mark(c.image == c.images.len())),
    });
    let lines = window(lines, c.image, i_area.height.saturating_sub(2) as usize);
    f.render_widget(Paragraph::new(lines.join("\n")).block(block("Image", i_area.width, c.field == Field::Image)), i_area);

    let w = u_area.width.saturating_sub(2) as usize;
    let lines: Vec<String> = match &c.users {
        Users::Unknown => vec![],
        Users::Working => vec!["Counting each user's files…".into()],
        Users::Failed(e) => vec![fit(&format!("The users cannot be counted: {}", crate::ui::words::error(e)), w)],
        Users::Ready(rows) if rows.is_empty() => vec!["No users to keep on this disk.".into()],
        Users::Ready(rows) => std::iter::once(fit(&format!("     {:<12} {:>8} {:>10}  {:>18}  {}", "user", "files", "bytes", "left out", "partition"), w))
            .chain(rows.iter().enumerate().map(|(i, u)| {
                let pointer = if i == c.user && c.field == Field::Users { '>' } else { ' ' };
                let tick = if u.keep { "[x]" } else { "[ ]" };
                let left = format!("{} ({})", u.left_out.0, size(u.left_out.1));
                fit(&format!("{pointer}{tick} {:<12} {:>8} {:>10}  {:>18}  {}", fit(&u.name, 12), u.files, size(u.bytes), left, u.partition), w)
            }))
            .collect(),
    };
    let lines = window(lines, c.user + 1, u_area.height.saturating_sub(2) as usize);
    f.render_widget(Paragraph::new(lines.join("\n")).block(block("Users to keep", u_area.width, c.field == Field::Users)), u_area);

    if let Some(e) = &app.error {
        widgets::error_box(f, body, e, "Esc closes this.");
    }
    if app.detail {
        widgets::detail(f, body, "choices", &detail_lines(app));
    }
}

fn mark(on: bool) -> char {
    if on { '>' } else { ' ' }
}

/// At most `rows` of `lines`, scrolled so `at` shows.
fn window(lines: Vec<String>, at: usize, rows: usize) -> Vec<String> {
    let skip = (at + 1).saturating_sub(rows.max(1));
    lines.into_iter().skip(skip).take(rows.max(1)).collect()
}

/// The choices whole.
pub fn detail_lines(app: &App) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(d) = app.chosen_disk() {
        v.extend(super::home::detail_lines(d));
    }
    if let Some(i) = app.chosen_image() {
        v.push(format!("image: {}", i.spec.source));
        v.push(format!("sha256: {}", i.spec.sha256.as_deref().unwrap_or("-")));
        v.push(format!("key: {}", i.spec.key.as_deref().unwrap_or("-")));
    }
    v
}

impl App {
    /// A key on this screen.
    pub(super) fn choose_key(&mut self, code: KeyCode) {
        if let Some(url) = &mut self.choose.url {
            match code {
                KeyCode::Char(c) => url.push(c),
                KeyCode::Backspace => {
                    url.pop();
                }
                KeyCode::Esc => self.choose.url = None,
                KeyCode::Enter => {
                    let text = url.trim().to_string();
                    self.choose.url = None;
                    if !text.is_empty() {
                        self.choose.images.push(images::typed(&text));
                        self.choose.image = self.choose.images.len() - 1;
                    }
                }
                _ => {}
            }
            return;
        }
        let disks = self.candidates().len();
        let users = match &self.choose.users {
            Users::Ready(r) => r.len(),
            _ => 0,
        };
        match code {
            KeyCode::Esc => self.screen = Screen::Home,
            KeyCode::Tab => {
                self.choose.field = match self.choose.field {
                    Field::Disk => Field::Image,
                    Field::Image => Field::Users,
                    Field::Users => Field::Disk,
                }
            }
            KeyCode::BackTab => {
                self.choose.field = match self.choose.field {
                    Field::Disk => Field::Users,
                    Field::Image => Field::Disk,
                    Field::Users => Field::Image,
                }
            }
            KeyCode::Up | KeyCode::Down => {
                let down = code == KeyCode::Down;
                let step = |i: usize, n: usize| if down { (i + 1).min(n.saturating_sub(1)) } else { i.saturating_sub(1) };
                match self.choose.field {
                    Field::Disk => {
                        let before = self.choose.disk;
                        self.choose.disk = step(before, disks);
                        if self.choose.disk != before {
                            self.survey();
                        }
                    }
                    Field::Image => self.choose.image = step(self.choose.image, self.choose.images.len() + 1),
                    Field::Users => self.choose.user = step(self.choose.user, users),
                }
            }
            KeyCode::Char(' ') if self.choose.field == Field::Users => {
                if let Users::Ready(rows) = &mut self.choose.users {
                    if let Some(u) = rows.get_mut(self.choose.user) {
                        u.keep = !u.keep;
                    }
                }
            }
            KeyCode::Enter if self.choose.field == Field::Image && self.choose.image == self.choose.images.len() => {
                self.choose.url = Some(String::new());
            }
            KeyCode::Char('u') => {
                self.choose.field = Field::Image;
                self.choose.image = self.choose.images.len();
                self.choose.url = Some(String::new());
            }
            KeyCode::Enter => {
                if self.chosen_image().is_none() {
                    self.error = Some(Error::refused(Step::Plan, "no image is chosen").advice("choose an image, or type its URL or path (u)"));
                } else if matches!(&self.choose.users, Users::Ready(r) if !r.is_empty() && r.iter().all(|u| !u.keep)) {
                    self.error = Some(Error::refused(Step::Plan, "no user is chosen to keep").advice("keep at least one user (Space)"));
                } else if self.choose.users == Users::Working {
                    self.error = Some(Error::refused(Step::Plan, "the users are still being counted").advice("wait a moment and press Enter again"));
                } else {
                    self.start_plan();
                }
            }
            _ => {}
        }
    }
}
