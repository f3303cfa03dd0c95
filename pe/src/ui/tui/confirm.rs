//! Confirm: the disk by model, serial and size; the job starts only when the last 4
//! characters of the serial are typed (the word ERASE for a disk with no serial), never on
//! Enter alone.

use ratatui::crossterm::event::KeyCode;

use super::app::Screen;
use crate::ui::session::Request;

use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

use super::app::{App, PlanView};
use super::text::size;
use super::widgets::{self, block};

pub fn render(f: &mut Frame, app: &App) {
    let body = widgets::frame(f, app, "confirm", &[("type", "the characters"), ("Enter", "start"), ("Backspace", "delete"), ("Esc", "back")]);
    let Some(disk) = app.chosen_disk() else { return };
    let (_, what) = App::token(disk);
    let replace = match &app.plan {
        PlanView::Ready(r) => r.planned.plan.replace.iter().map(u32::to_string).collect::<Vec<_>>().join(", "),
        _ => "-".into(),
    };
    let mut lines = vec![
        Line::raw(format!("Disk    {}", disk.name)),
        Line::raw(format!("Model   {}", disk.model.as_deref().unwrap_or("not reported"))),
        Line::raw(format!("Serial  {}", disk.serial.as_deref().unwrap_or("not reported"))),
        Line::raw(format!("Size    {} ({} bytes)", size(disk.size_bytes), disk.size_bytes)),
        Line::raw(""),
        Line::raw(format!("The users' files are saved into a store on this disk, then partition(s) {replace} are replaced by the new OS.")),
        Line::raw(""),
        Line::raw(format!("To start, type {what}, then Enter:")),
        Line::raw(format!("> {}_", app.confirm.typed)),
    ];
    if app.confirm.refused_enter {
        lines.push(Line::styled(format!("Not started: Enter alone does not start the job; type {what}."), Style::new().fg(Color::Red)));
    }
    let b = block("This disk will be changed", body.width, true).border_style(Style::new().fg(Color::Yellow));
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }).block(b), body);
    if let Some(e) = &app.error {
        widgets::error_box(f, body, e, "Esc closes this.");
    }
}

impl App {
    /// A key on this screen.
    pub(super) fn confirm_key(&mut self, code: KeyCode) {
        let Some(disk) = self.chosen_disk().cloned() else { return };
        match code {
            KeyCode::Esc => self.screen = Screen::Plan,
            KeyCode::Backspace => {
                self.confirm.typed.pop();
            }
            KeyCode::Char(c) if self.confirm.typed.chars().count() < 16 => {
                self.confirm.typed.push(c.to_ascii_uppercase());
                self.confirm.refused_enter = false;
            }
            KeyCode::Enter => {
                let (token, _) = App::token(&disk);
                if self.confirm.typed != token {
                    self.confirm.refused_enter = true;
                    return;
                }
                let preset = self.preset();
                self.submit(Request::Run { preset: Box::new(preset), disk: disk.name.clone() });
            }
            _ => {}
        }
    }
}
