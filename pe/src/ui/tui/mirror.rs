//! Where the TUI is, as plain lines on the other consoles (a serial line): one line each time
//! the screen or what it waits for changes, and the plan's lines once it is ready. Someone
//! following the serial console (or a test) sees the choices, the plan and the confirmation
//! the screen asks for.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

use super::app::{App, PlanView, Screen, Users};
use crate::ui::session::Ended;
use crate::ui::words;

/// The consoles the lines go to, and the last line written.
pub struct Mirror {
    outputs: Vec<File>,
    last: String,
}

impl Mirror {
    /// Lines go to each of `paths` that opens (a console device, or a file in tests).
    pub fn open(paths: &[PathBuf]) -> Mirror {
        let outputs = paths.iter().filter_map(|p| std::fs::OpenOptions::new().append(true).open(p).ok()).collect();
        Mirror { outputs, last: String::new() }
    }

    /// Writes `app`'s state when it changed since the last call.
    pub fn show(&mut self, app: &App) {
        let now = summary(app);
        if now == self.last {
            return;
        }
        let mut lines = vec![now.clone()];
        if let (Screen::Plan, PlanView::Ready(r)) = (app.screen, &app.plan) {
            if !self.last.starts_with("plan: ready") {
                lines.extend(r.planned.lines.iter().map(|l| format!("plan: {l}")));
            }
        }
        self.last = now;
        for out in &mut self.outputs {
            for l in &lines {
                // A serial console wants CR LF; output errors have nowhere to go.
                let _ = write!(out, "inplace: tui: {l}\r\n");
            }
        }
    }
}

/// One line for the screen `app` shows and what it waits for.
pub fn summary(app: &App) -> String {
    let mut s = match app.screen {
        Screen::Home => match &app.home.unfinished {
            Some(u) => format!("home: an unfinished job {} on {} ({}): c continues, b rolls back", u.job_id, u.disk, u.state),
            None => format!("home: {} disk(s) to choose from", app.candidates().len()),
        },
        Screen::Choose => {
            let disk = app.chosen_disk().map_or("none".to_string(), |d| d.name.clone());
            let image = app.chosen_image().map_or("none".to_string(), |c| c.spec.name.clone().unwrap_or_else(|| c.spec.source.clone()));
            let users = match &app.choose.users {
                Users::Unknown => "not counted".to_string(),
                Users::Working => "being counted".to_string(),
                Users::Ready(rows) => {
                    let kept: Vec<&str> = rows.iter().filter(|u| u.keep).map(|u| u.name.as_str()).collect();
                    format!("ready, keeping {}", if kept.is_empty() { "none".to_string() } else { kept.join(", ") })
                }
                Users::Failed(e) => format!("not counted: {}", words::error(e)),
            };
            format!("choose: disk {disk}, image {image}, users {users}")
        }
        Screen::Plan => match &app.plan {
            PlanView::Idle | PlanView::Working => "plan: planning".to_string(),
            PlanView::Ready(_) => "plan: ready; Enter goes on to the confirmation".to_string(),
            PlanView::Refused(e) => format!("plan: refused: {}", words::error(e)),
        },
        Screen::Confirm => {
            let disk = app.chosen_disk();
            let name = disk.map_or("none".to_string(), |d| match d.model.as_deref().map(str::trim) {
                Some(m) if !m.is_empty() => format!("{} ({m})", d.name),
                _ => d.name.clone(),
            });
            let wants = disk.map_or("", |d| App::token(d).1);
            let mut s = format!("confirm: {name}: type {wants}, then Enter; {} typed", app.confirm.typed.chars().count());
            if app.confirm.refused_enter {
                s.push_str("; Enter alone did not start the job");
            }
            s
        }
        Screen::Progress => match (&app.job.ended, app.job.asking_stop) {
            (_, true) => "progress: asking whether to stop".to_string(),
            (Some(_), _) => "progress: the job ended".to_string(),
            (None, _) => format!("progress: {}", app.job.current.map_or("starting".to_string(), |s| s.to_string())),
        },
        Screen::Result => match &app.job.ended {
            Some(Ended::Done { journal, .. }) => format!("result: job {} {}; p powers off, r reboots, s opens a shell", journal.job_id, journal.state),
            Some(Ended::Failed { error }) => format!("result: failed: {}", words::error(error)),
            None => "result".to_string(),
        },
    };
    if let Some(e) = &app.error {
        s.push_str(&format!("; error: {}", words::error(e)));
    }
    s
}
