//! Result: per user what was saved and what was left out, where the report is, and the keys
//! to reboot, power off or open a shell.

use ratatui::crossterm::event::KeyCode;

use super::app::{Screen, EXIT_POWER_OFF, EXIT_REBOOT, EXIT_SHELL};

use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

use super::app::App;
use super::text::{duration, fit, size};
use super::widgets;
use crate::job::find::Record;
use crate::job::state::State;
use crate::ui::session::Ended;

pub fn render(f: &mut Frame, app: &App) {
    let body = widgets::frame(f, app, "result", &[("r", "reboot"), ("p", "power off"), ("s", "shell"), ("l", "log"), ("d", "details")]);
    let lines = match &app.job.ended {
        Some(Ended::Done { journal, .. }) => {
            let mut v = summary(journal);
            v.extend(app.ctx.reports.iter().map(|r| format!(" Report: {r}.")));
            v
        }
        _ => vec!["The job has not ended.".into()],
    };
    // Wrapped at words: the report's place is read whole.
    f.render_widget(Paragraph::new(lines.join("\n")).wrap(Wrap { trim: false }), body);
    if app.detail {
        if let Some(Ended::Done { lines, .. }) = &app.job.ended {
            widgets::detail(f, body, "the plan", lines);
        }
    }
}

/// The result in lines: what became of the job, each user, what was left out, the steps, the
/// report.
pub fn summary(j: &Record) -> Vec<String> {
    let mut v = Vec::new();
    v.push(match j.state {
        State::HandedOff => "Done: the new OS is on the disk and restores the users' files on its first boot. Reboot into it.".into(),
        State::RolledBack => "Rolled back: the old partition table is back; the old OS boots as before.".into(),
        s => format!("The job stands at {s}."),
    });
    v.push(String::new());
    if j.state != State::RolledBack {
        v.push(format!(" {:<16} {:>8} {:>11}  {:>20}  {}", "user", "files", "bytes", "left out", "partition"));
        for s in &j.plan.sources {
            for u in &s.users {
                let t = s.per_user.iter().find(|t| &t.name == u);
                let (files, bytes) = t.map_or((s.files, s.bytes), |t| (t.files, t.bytes));
                let left = t.map_or("-".to_string(), |t| format!("{} ({})", t.left_out, size(t.left_out_bytes)));
                v.push(format!(" {:<16} {:>8} {:>11}  {:>20}  {}", fit(u, 16), files, size(bytes), left, s.partition.number));
            }
        }
        let left: Vec<_> = j.plan.sources.iter().flat_map(|s| s.left_out.iter()).collect();
        if left.is_empty() {
            v.push(" Left out: nothing.".into());
        } else {
            v.push(" Left out:".into());
            for l in left {
                v.push(format!("   {} item(s), {}: {}", l.items, size(l.bytes), l.why));
            }
        }
        v.push(String::new());
    }
    let steps: Vec<String> = j.steps.iter().filter(|s| s.finished.is_some()).map(|s| format!("{} {}", s.step, duration(s.secs))).collect();
    v.push(format!(" Steps: {}", steps.join(" · ")));
    if j.state != State::RolledBack {
        v.push(format!(
            " Report: the store (partition {}, label INPLACE) keeps the journal and journal/events.jsonl; \
             the new OS writes /var/log/inplace/restore-report.txt on its first boot.",
            j.plan.store_number()
        ));
    }
    v
}

impl App {
    /// A key on this screen.
    pub(super) fn result_key(&mut self, code: KeyCode) {
        match code {
            KeyCode::Char('p') => self.exit = Some(EXIT_POWER_OFF),
            KeyCode::Char('r') => self.exit = Some(EXIT_REBOOT),
            KeyCode::Char('s') => self.exit = Some(EXIT_SHELL),
            KeyCode::Char('l') => self.screen = Screen::Progress,
            _ => {}
        }
    }
}
