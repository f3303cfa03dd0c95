//! The TUI's state and how keys and the engine's news change it. Rendering reads it
//! (`render`); nothing here draws. Long work (the survey of users, the plan) runs on a thread
//! of its own and is picked up by [`App::tick`]; the job itself runs in the engine, followed
//! through the session.

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver};

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::job::JobView;
use crate::error::{Error, Kind};
use crate::inventory::Disk;
use crate::job::images::{self, Choice};
use crate::job::plan::{Planned, SourcePlan};
use crate::job::rates;
use crate::job::state::State;
use crate::preset::{DiskSelector, Preset};
use crate::progress::{Cancel, Silent};
use crate::step::Step;
use crate::ui::session::{Context, Ended, Phase, Request, Session};

/// Exit codes the TUI uses to ask PID 1 to end the PE or open a shell.
pub const EXIT_POWER_OFF: i32 = 10;
pub const EXIT_REBOOT: i32 = 11;
pub const EXIT_SHELL: i32 = 12;

/// The screens, in the order a job goes through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Home,
    Choose,
    Plan,
    Confirm,
    Progress,
    Result,
}

/// A job found unfinished on a disk.
#[derive(Debug, Clone, PartialEq)]
pub struct Unfinished {
    pub path: PathBuf,
    pub disk: String,
    pub job_id: String,
    pub name: String,
    pub state: State,
}

#[derive(Debug, Default)]
pub struct Home {
    pub selected: usize,
    pub unfinished: Option<Unfinished>,
    /// `b` was pressed: roll back waits for `y`.
    pub asking_rollback: bool,
}

/// Which list of the choose screen has the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Field {
    #[default]
    Disk,
    Image,
    Users,
}

/// A user the job can keep.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRow {
    pub name: String,
    pub partition: u32,
    pub files: u64,
    pub bytes: u64,
    /// Items the rules leave out of the profile, and their bytes.
    pub left_out: (u64, u64),
    pub keep: bool,
}

/// The users of the chosen disk, as the engine's survey found them.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Users {
    #[default]
    Unknown,
    Working,
    Ready(Vec<UserRow>),
    Failed(Error),
}

#[derive(Debug, Default)]
pub struct Choose {
    pub field: Field,
    /// Index into the candidate disks.
    pub disk: usize,
    pub images: Vec<Choice>,
    /// Index into `images`; `images.len()` is the "type a URL" line.
    pub image: usize,
    /// Text being typed as an image URL or path.
    pub url: Option<String>,
    pub users: Users,
    /// Index into the users.
    pub user: usize,
}

/// The plan, as far as it got.
#[derive(Debug, Clone, Default)]
pub enum PlanView {
    #[default]
    Idle,
    Working,
    Ready(Box<Ready>),
    Refused(Error),
}

#[derive(Debug, Clone)]
pub struct Ready {
    pub planned: Planned,
    pub estimate: Option<rates::Estimate>,
}

#[derive(Debug, Default)]
pub struct Confirm {
    pub typed: String,
    /// Enter was pressed without the right text.
    pub refused_enter: bool,
}

/// Work a thread does for the TUI.
enum Work {
    Survey(Result<Vec<SourcePlan>, Error>),
    Plan(Result<Box<Ready>, Error>),
}

pub struct App {
    pub ctx: Context,
    pub session: Option<Session>,
    pub screen: Screen,
    pub home: Home,
    pub choose: Choose,
    pub plan: PlanView,
    pub confirm: Confirm,
    pub job: JobView,
    /// An error of the screen shown, with what to do.
    pub error: Option<Error>,
    /// The detail pane (values whole) is open.
    pub detail: bool,
    pub exit: Option<i32>,
    work: Option<Receiver<Work>>,
    events_at: u64,
}

impl App {
    /// A TUI over `ctx`, not attached to any session (tests of the screens).
    pub fn new(ctx: Context) -> App {
        let images = images::choices(ctx.preset.as_ref(), &ctx.env.image_roots);
        let mut app = App {
            ctx,
            session: None,
            screen: Screen::Home,
            home: Home::default(),
            choose: Choose { images, ..Choose::default() },
            plan: PlanView::Idle,
            confirm: Confirm::default(),
            job: JobView::default(),
            error: None,
            detail: false,
            exit: None,
            work: None,
            events_at: 0,
        };
        app.choose.disk = app.os_disk().unwrap_or(0);
        app.home.selected = app.choose.disk;
        app
    }

    /// A TUI attached to `session`: where a job runs or has ended it shows its progress or its
    /// result (replaying the events so far); else the home screen, with any unfinished job.
    pub fn attach(session: Session) -> anyhow::Result<App> {
        let ctx = session.read_context()?;
        let mut app = App::new(ctx);
        match session.phase() {
            Phase::Idle => {
                match crate::job::run::unfinished(&app.ctx.env) {
                    Ok(found) => app.home.unfinished = found.map(|(path, f)| unfinished(&app.ctx, path, &f.journal)),
                    Err(e) => app.error = Some(e),
                }
            }
            Phase::Running | Phase::Ended(_) => {
                app.job = JobView::for_request(session.request().as_ref());
                app.screen = Screen::Progress;
            }
        }
        app.session = Some(session);
        app.tick();
        Ok(app)
    }

    /// The disks a job may take.
    pub fn candidates(&self) -> Vec<&Disk> {
        self.ctx.env.inventory.disks.iter().filter(|d| !self.ctx.env.excluded.contains(&d.name)).collect()
    }

    /// The one candidate disk holding an OS.
    fn os_disk(&self) -> Option<usize> {
        let c = self.candidates();
        let with_os: Vec<usize> = (0..c.len()).filter(|&i| c[i].partitions.iter().any(|p| p.os.is_some())).collect();
        (with_os.len() == 1).then(|| with_os[0])
    }

    pub fn chosen_disk(&self) -> Option<&Disk> {
        self.candidates().get(self.choose.disk).copied()
    }

    /// The image chosen, when one is.
    pub fn chosen_image(&self) -> Option<&Choice> {
        self.choose.images.get(self.choose.image)
    }

    /// The preset the job runs: the base preset with the disk, image and users chosen.
    pub fn preset(&self) -> Preset {
        let mut p = self.ctx.preset.clone().unwrap_or_else(|| Preset { name: "console".into(), ..Preset::default() });
        p.disk = DiskSelector::Os;
        p.image = self.chosen_image().map(|c| c.spec.clone());
        if let Users::Ready(rows) = &self.choose.users {
            if rows.iter().any(|u| !u.keep) {
                p.migrate.users = rows.iter().filter(|u| u.keep).map(|u| u.name.clone()).collect();
            }
        }
        p
    }

    /// The environment with only the chosen disk a candidate.
    fn env_for_choice(&self) -> crate::job::plan::Env {
        let mut env = self.ctx.env.clone();
        let chosen = self.chosen_disk().map(|d| d.name.clone());
        env.excluded.extend(env.inventory.disks.iter().filter(|d| Some(&d.name) != chosen.as_ref()).map(|d| d.name.clone()));
        env.unattended = false;
        env
    }

    /// Picks up finished work and the engine's news.
    pub fn tick(&mut self) {
        if let Some(rx) = &self.work {
            if let Ok(w) = rx.try_recv() {
                self.work = None;
                match w {
                    Work::Survey(Ok(sources)) => self.choose.users = Users::Ready(user_rows(&sources)),
                    Work::Survey(Err(e)) => self.choose.users = Users::Failed(e),
                    Work::Plan(Ok(r)) => self.plan = PlanView::Ready(r),
                    Work::Plan(Err(e)) => self.plan = PlanView::Refused(e),
                }
            }
        }
        let Some(session) = self.session.clone() else { return };
        if self.screen != Screen::Progress && self.screen != Screen::Result {
            return;
        }
        // The end is read first: every event written before it is in the file then.
        let ended = if self.job.ended.is_none() { session.ended() } else { None };
        for e in session.follow(&mut self.events_at) {
            self.job.apply(&e);
        }
        if let Some(ended) = ended {
            self.ended(ended);
        }
    }

    fn ended(&mut self, ended: Ended) {
        let stopped_early = matches!(&ended, Ended::Failed { error } if error.kind == Kind::Cancelled)
            && self.job.stop_asked
            && self.job.current.is_none_or(|s| s < Step::LayDown);
        let rollback_of = match &self.job.request {
            Some(Request::Run { disk, .. }) => Some(self.ctx.env.path_of(disk)),
            Some(Request::Resume { disk }) => Some(disk.clone()),
            _ => None,
        };
        self.job.ended = Some(ended.clone());
        if let (true, Some(disk)) = (stopped_early, rollback_of) {
            // Stopped before the lay-down: the old disk goes back as it was, when the job had
            // begun to write (a stop during the plan leaves no job).
            let found = crate::job::rollback::find_job(&disk).ok().flatten();
            if found.is_some_and(|f| f.journal.state.can_roll_back() && f.journal.state != State::RolledBack) {
                self.submit(Request::Rollback { disk });
                return;
            }
        }
        if matches!(ended, Ended::Done { .. }) {
            self.screen = Screen::Result;
        }
    }

    fn spawn(&mut self, f: impl FnOnce() -> Work + Send + 'static) {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        self.work = Some(rx);
    }

    pub(super) fn survey(&mut self) {
        let Some(disk) = self.chosen_disk() else { return };
        if disk.partitions.iter().all(|p| p.os.is_none()) {
            self.choose.users = Users::Ready(Vec::new());
            return;
        }
        self.choose.users = Users::Working;
        let (mut preset, env) = (self.preset(), self.env_for_choice());
        preset.migrate.users.clear();
        self.spawn(move || Work::Survey(crate::job::plan::survey(&preset, &env, &Silent, &Cancel::new())));
    }

    pub(super) fn start_plan(&mut self) {
        self.plan = PlanView::Working;
        self.screen = Screen::Plan;
        let (preset, env) = (self.preset(), self.env_for_choice());
        self.spawn(move || {
            Work::Plan(crate::job::run::dry_run(&preset, &env, &Silent, &Cancel::new()).map(|planned| {
                let estimate = rates::measure(&planned.plan.disk_path).map(|r| rates::estimate(&planned.plan, r));
                Box::new(Ready { planned, estimate })
            }))
        });
    }

    pub(super) fn submit(&mut self, r: Request) {
        let Some(session) = &self.session else {
            self.error = Some(Error::internal(Step::Plan, "this screen is not attached to an engine"));
            return;
        };
        match session.submit(&r) {
            Ok(()) => {
                self.job = JobView::for_request(Some(&r));
                self.events_at = 0;
                self.screen = Screen::Progress;
            }
            Err(e) => self.error = Some(Error::io(Step::Plan, format!("asking the engine to start: {e}"))),
        }
    }

    /// The text that must be typed to confirm the job on `disk`, and what it is.
    pub fn token(disk: &Disk) -> (String, &'static str) {
        let serial: Vec<char> = disk.serial.as_deref().unwrap_or("").trim().chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        if serial.len() >= 4 {
            (serial[serial.len() - 4..].iter().collect::<String>().to_ascii_uppercase(), "the last 4 characters of its serial")
        } else {
            ("ERASE".to_string(), "the word ERASE (the disk reports no serial)")
        }
    }

    /// One key press.
    pub fn key(&mut self, k: KeyEvent) {
        if k.modifiers.contains(KeyModifiers::CONTROL) {
            return;
        }
        let typing = self.screen == Screen::Confirm || self.choose.url.is_some();
        if !typing && k.code == KeyCode::Char('d') {
            self.detail = !self.detail;
            return;
        }
        if self.detail && k.code == KeyCode::Esc {
            self.detail = false;
            return;
        }
        if self.error.is_some() && k.code == KeyCode::Esc {
            self.error = None;
            return;
        }
        match self.screen {
            Screen::Home => self.home_key(k.code),
            Screen::Choose => self.choose_key(k.code),
            Screen::Plan => self.plan_key(k.code),
            Screen::Confirm => self.confirm_key(k.code),
            Screen::Progress => self.progress_key(k.code),
            Screen::Result => self.result_key(k.code),
        }
    }

}

/// The unfinished job as the home screen tells of it.
pub fn unfinished(ctx: &Context, path: PathBuf, j: &crate::job::find::Record) -> Unfinished {
    let disk = ctx.env.inventory.disks.iter().find(|d| ctx.env.path_of(&d.name) == path).map(|d| d.name.clone()).unwrap_or_else(|| path.display().to_string());
    Unfinished { path, disk, job_id: j.job_id.clone(), name: j.name.clone(), state: j.state }
}

/// Every user of every source, all kept.
pub fn user_rows(sources: &[SourcePlan]) -> Vec<UserRow> {
    let mut rows = Vec::new();
    for s in sources {
        for u in &s.users {
            let t = s.per_user.iter().find(|t| &t.name == u);
            rows.push(UserRow {
                name: u.clone(),
                partition: s.partition.number,
                files: t.map_or(0, |t| t.files),
                bytes: t.map_or(0, |t| t.bytes),
                left_out: t.map_or((0, 0), |t| (t.left_out, t.left_out_bytes)),
                keep: true,
            });
        }
    }
    rows
}
