//! Progress: the steps with ticks, the current phase's bar with bytes, rate and time left as
//! the engine measured them, the overall bar, the log. Esc asks before stopping and says what
//! stopping does now.

use ratatui::crossterm::event::KeyCode;

use super::app::{unfinished, Screen, EXIT_POWER_OFF, EXIT_REBOOT, EXIT_SHELL};
use crate::error::Error;

use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Style};
use ratatui::widgets::{Clear, Paragraph, Wrap};
use ratatui::Frame;

use super::app::App;
use super::job::Mark;
use super::text::{duration, fit, rate, size};
use super::widgets::{self, bar, block};
use crate::step::Step;
use crate::ui::session::Request;

pub fn render(f: &mut Frame, app: &App) {
    let j = &app.job;
    let over = j.ended.is_some();
    let hints: &[(&str, &str)] = if over {
        &[("Esc", "home"), ("r", "reboot"), ("p", "power off"), ("s", "shell"), ("d", "details")]
    } else {
        &[("Esc", "stop"), ("PgUp/PgDn", "log"), ("d", "details")]
    };
    let what = match &j.request {
        Some(Request::Rollback { .. }) => "rolling back",
        Some(Request::Resume { .. }) => "resuming the job",
        _ => "the job",
    };
    let body = widgets::frame(f, app, what, hints);
    let [steps, phase, overall, log] =
        Layout::vertical([Constraint::Length(1), Constraint::Length(3), Constraint::Length(1), Constraint::Min(3)]).areas(body);
    let w = body.width as usize;

    let marks: Vec<String> = j
        .steps
        .iter()
        .map(|(s, m)| {
            let t = match m {
                Mark::Waiting => "[ ]",
                Mark::Running => "[>]",
                Mark::Done { .. } => "[x]",
                Mark::Failed => "[!]",
            };
            format!("{t} {s}")
        })
        .collect();
    f.render_widget(Paragraph::new(fit(&format!(" {}", marks.join("  ")), w)), steps);

    let title = j.phase.clone().or_else(|| j.current.map(|s| s.to_string())).unwrap_or_else(|| "waiting for the engine".into());
    let mut lines = vec![fit(&format!(" {title}"), w)];
    match &j.bytes {
        Some(b) => {
            let r = if b.total > 0 { b.done as f64 / b.total as f64 } else { 0.0 };
            let left = match b.eta_secs {
                Some(s) => format!("{} left", duration(s)),
                None => "time left unknown".into(),
            };
            let words = format!(" {} of {} · {} · {left}", size(b.done), size(b.total), rate(b.rate));
            lines.push(format!(" {} {:>3}%", bar(r, w.saturating_sub(7)), (r * 100.0) as u32));
            lines.push(fit(&words, w));
        }
        None => lines.push(String::new()),
    }
    if let Some((done, total, current)) = &j.entries {
        let head = if *total > 0 { format!(" {done} of {total}: ") } else { format!(" {done}: ") };
        let room = w.saturating_sub(head.chars().count());
        let line = format!("{head}{}", fit(current, room));
        if lines.len() < 3 {
            lines.push(line);
        } else {
            lines[2] = fit(&format!("{} · {}", lines[2], line.trim()), w);
        }
    }
    f.render_widget(Paragraph::new(lines.join("\n")), phase);
    let o = j.overall();
    f.render_widget(Paragraph::new(format!(" {} {:>3}% overall", bar(o, w.saturating_sub(15)), (o * 100.0) as u32)), overall);

    let b = block("Log", log.width, false);
    let rows = b.inner(log).height as usize;
    let end = j.log.len().saturating_sub(j.scroll.min(j.log.len().saturating_sub(rows)));
    let start = end.saturating_sub(rows);
    let lines = widgets::fitted(&j.log[start..end], log.width.saturating_sub(2));
    f.render_widget(Paragraph::new(lines).block(b), log);

    if let Some(e) = j.error() {
        let hint = match j.stop_asked && j.current.is_none_or(|s| s < Step::LayDown) {
            true => "Stopped before the lay-down. Esc: home.",
            false => "Esc: home (an unfinished job is offered there to continue or roll back); r reboot, p power off, s shell.",
        };
        widgets::error_box(f, log, e, hint);
    }
    if j.asking_stop {
        let text = stop_words(j.current);
        let h = widgets::wrapped_height(&text, body.width.saturating_sub(6)) + 2;
        let area = ratatui::layout::Rect { x: log.x + 2, y: log.y + 1, width: log.width.saturating_sub(4), height: h.min(log.height.saturating_sub(1)) };
        f.render_widget(Clear, area);
        let b = block("Stop the job?", area.width, true).border_style(Style::new().fg(Color::Yellow));
        f.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }).block(b), area);
    }
    if let Some(e) = &app.error {
        widgets::error_box(f, body, e, "Esc closes this.");
    }
    if app.detail {
        widgets::detail(f, body, "log", &j.log);
    }
}

/// What stopping does at `step`.
pub fn stop_words(step: Option<Step>) -> String {
    match step {
        Some(s) if s >= Step::LayDown && s != Step::Rollback => "Not safe to undo now: the new OS is being written and the old OS is gone. \
             Stopping leaves the job for the next start of the PE, where it continues (c on the home screen); the disk does not boot until then. \
             y: stop; any other key: go on."
            .into(),
        _ => "Safe now: the old OS is not touched before the lay-down. Stopping ends the work at its next safe point and rolls the disk back \
             to how it was. y: stop; any other key: go on."
            .into(),
    }
}

impl App {
    /// A key on this screen.
    pub(super) fn progress_key(&mut self, code: KeyCode) {
        if self.job.ended.is_some() {
            match code {
                KeyCode::Esc | KeyCode::Enter => {
                    self.screen = Screen::Home;
                    self.home.unfinished = crate::job::run::unfinished(&self.ctx.env)
                        .ok()
                        .flatten()
                        .map(|(path, f)| unfinished(&self.ctx, path, &f.journal));
                }
                KeyCode::Char('p') => self.exit = Some(EXIT_POWER_OFF),
                KeyCode::Char('r') => self.exit = Some(EXIT_REBOOT),
                KeyCode::Char('s') => self.exit = Some(EXIT_SHELL),
                _ => {}
            }
            return;
        }
        match (code, self.job.asking_stop) {
            (KeyCode::Esc, false) => self.job.asking_stop = true,
            (KeyCode::Char('y'), true) => {
                self.job.asking_stop = false;
                self.job.stop_asked = true;
                if let Some(s) = &self.session {
                    if let Err(e) = s.cancel() {
                        self.error = Some(Error::io(Step::Plan, format!("asking the engine to stop: {e}")));
                    }
                }
            }
            (_, true) => self.job.asking_stop = false,
            (KeyCode::PageUp, _) => self.job.scroll = self.job.scroll.saturating_add(5),
            (KeyCode::PageDown, _) => self.job.scroll = self.job.scroll.saturating_sub(5),
            _ => {}
        }
    }
}
