//! The TUI drives a whole job on the host, through its real event loop with scripted keys and
//! ratatui's `TestBackend`, against a fixture disk image, while the engine serves the session
//! in a thread (`ui::session::serve_one`), as PID 1 does in the PE. The plan it shows is the
//! one `inplace preset check --disk` prints. It ends in the verified
//! result `inplace run` reaches on a copy of the same disk: the journal handed off, the same
//! partition table, the store's capture verified with the same files. On the way: Enter alone
//! on the confirm screen starts nothing and the disk stays byte for byte as it was; a TUI
//! dropped mid-job (a panic) and started again re-attaches and reaches the same result; and a
//! job stopped (Esc, y) before the lay-down leaves the disk byte for byte as it was (stopped
//! while planning: nothing written; stopped once it had written: rolled back). A job cut
//! by a power cut mid-capture is offered on the home screen: rolled back (b, y) the disk is byte
//! for byte the old one; continued (c) it reaches the same result as `inplace run`.
//!
//! Small fixtures made with the real tools (`tests/src/job_fixtures.rs`); no QEMU, no feature.
//! The restore agent installed by the hand-off is the static build of inplace (made when
//! missing).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use inplace::job::plan::Env;
use inplace::job::state::State;
use inplace::preset::Preset;
use inplace::progress::Silent;
use inplace::ui::session::{serve_one, Context, Ended, Phase, Session};
use inplace::ui::tui::app::{PlanView, Users};
use inplace::ui::tui::keys::{key, typed, KeySource};
use inplace::ui::tui::{run_loop, App, Screen, EXIT_POWER_OFF};
use inplace_tests::e2e::partitions;
use inplace_tests::job_fixtures::{linux_disk, new_os_image};
use inplace_tests::{inplace_bin, sha256_file};
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::Terminal;

/// The longest a scripted run may take.
const DEADLINE: Duration = Duration::from_secs(600);

/// One step of a script: wait until the app is in a state, press a key, or check something.
enum Step {
    Until(&'static str, Box<dyn Fn(&App) -> bool>),
    Key(KeyEvent),
    Check(Box<dyn Fn(&App)>),
}

/// Keys pressed in order, each once the state before it is reached.
struct Script {
    steps: std::collections::VecDeque<Step>,
    started: Instant,
}

impl Script {
    fn new(steps: Vec<Step>) -> Script {
        Script { steps: steps.into(), started: Instant::now() }
    }
}

impl KeySource for Script {
    fn next(&mut self, app: &App, wait: Duration) -> anyhow::Result<Option<KeyEvent>> {
        loop {
            match self.steps.front() {
                None => panic!("the script ended before the TUI did (screen {:?})", app.screen),
                Some(Step::Until(what, f)) => {
                    if !f(app) {
                        assert!(self.started.elapsed() < DEADLINE, "waited too long for {what}: screen {:?}, error {:?}, log {:?}", app.screen, app.error, app.job.log);
                        std::thread::sleep(wait);
                        return Ok(None);
                    }
                }
                Some(Step::Key(k)) => {
                    let k = *k;
                    self.steps.pop_front();
                    return Ok(Some(k));
                }
                Some(Step::Check(f)) => f(app),
            }
            self.steps.pop_front();
        }
    }
}

fn until(what: &'static str, f: impl Fn(&App) -> bool + 'static) -> Step {
    Step::Until(what, Box::new(f))
}

fn keys(k: Vec<KeyEvent>) -> impl Iterator<Item = Step> {
    k.into_iter().map(Step::Key)
}

/// A disk, the image on a "stick" beside it with a preset listing it, and a session whose
/// context is what PID 1 would write.
struct Setup {
    dir: tempfile::TempDir,
    disk: PathBuf,
    twin: PathBuf,
    env: Env,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let stick = dir.path().join("stick");
    std::fs::create_dir_all(stick.join("images")).unwrap();
    let (image, digest) = new_os_image(dir.path());
    std::fs::rename(&image, stick.join("images/new-os.inplace")).unwrap();
    let disk = linux_disk(dir.path(), "old", 320);
    let twin = dir.path().join("twin.img");
    assert!(Command::new("cp").arg("--sparse=always").arg(&disk).arg(&twin).status().unwrap().success());
    std::fs::write(
        stick.join("preset.toml"),
        format!("name = \"tui\"\n\n[[images]]\nname = \"New OS\"\nsource = \"images/new-os.inplace\"\nsha256 = \"{digest}\"\n"),
    )
    .unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let env = Env {
        inventory: inplace::inventory::inspect_paths(std::slice::from_ref(&disk)),
        dev_dir: None,
        excluded: vec![],
        image_roots: vec![stick.clone()],
        agent: inplace_tests::static_inplace(),
        agent_windows: None,
        work,
        unattended: false,
        http: Default::default(),
        workers: 2,
        efi_nvram: false,
        preset_key: None,
        cut_capture: None,
        reporter: None,
    };
    Setup { dir, disk, twin, env }
}

impl Setup {
    fn session(&self) -> Session {
        let s = Session::open(&self.dir.path().join("session")).unwrap();
        let text = std::fs::read_to_string(self.env.image_roots[0].join("preset.toml")).unwrap();
        let preset = Preset::parse(&text, "preset.toml").unwrap();
        s.write_context(&Context { env: self.env.clone(), preset: Some(preset), status: "firmware bios · preset tui".into(), reports: vec![] }).unwrap();
        s
    }

    /// The engine, serving one request in a thread, as PID 1 does.
    fn engine(&self, s: &Session) -> std::thread::JoinHandle<Ended> {
        let (dir, env) = (s.dir().to_path_buf(), self.env.clone());
        std::thread::spawn(move || serve_one(&dir, &env, &Silent))
    }
}

/// The TUI over `s` until its script ends it; the exit code.
fn tui(s: &Session, script: Vec<Step>) -> i32 {
    let mut app = App::attach(s.clone()).unwrap();
    let mut terminal = Terminal::new(TestBackend::new(80, 25)).unwrap();
    run_loop(&mut terminal, &mut Script::new(script), &mut app).unwrap()
}

/// Home → choose (the one disk preselected, the preset's image first) → plan → confirm.
fn to_confirm() -> Vec<Step> {
    let mut v = vec![until("the home screen", |a| a.screen == Screen::Home && a.home.unfinished.is_none())];
    v.push(Step::Key(key(KeyCode::Enter)));
    v.push(until("the users counted", |a| matches!(&a.choose.users, Users::Ready(u) if !u.is_empty())));
    v.push(Step::Check(Box::new(|a| {
        assert_eq!(a.chosen_image().map(|c| c.spec.label().to_string()), Some("New OS".into()));
        let Users::Ready(u) = &a.choose.users else { unreachable!() };
        let names: Vec<&str> = u.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["alice", "bob"]);
        assert!(u.iter().all(|u| u.files > 0 && u.bytes > 0), "{u:?}");
    })));
    v.push(Step::Key(key(KeyCode::Enter)));
    v.push(until("the plan", |a| !matches!(a.plan, PlanView::Working | PlanView::Idle)));
    v.push(Step::Check(Box::new(|a| assert!(matches!(a.plan, PlanView::Ready(_)), "the plan: {:?}", a.plan))));
    v.push(Step::Key(key(KeyCode::Enter)));
    v.push(until("the confirm screen", |a| a.screen == Screen::Confirm));
    v
}

/// Confirms with the typed token (a disk image has no serial: ERASE).
fn confirm() -> Vec<Step> {
    let mut v: Vec<Step> = keys(typed("erase")).collect();
    v.push(Step::Key(key(KeyCode::Enter)));
    v
}

/// The plan `inplace preset check --disk` prints for the job the TUI is scripted to choose
/// (the preset's first image, every user), as its lines.
fn preset_check(s: &Setup) -> String {
    let stick = &s.env.image_roots[0];
    let text = std::fs::read_to_string(stick.join("preset.toml")).unwrap();
    let spec = Preset::parse(&text, "p").unwrap().images[0].clone();
    let check = stick.join("check.toml");
    std::fs::write(&check, format!("name = \"tui\"\n\n[image]\nsource = \"{}\"\nsha256 = \"{}\"\n", spec.source, spec.sha256.unwrap())).unwrap();
    let o = Command::new(inplace_bin()).args(["preset", "check"]).arg(&check).arg("--disk").arg(&s.disk).output().unwrap();
    assert!(o.status.success(), "preset check: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

/// What `inplace run` makes of the twin disk, to compare with.
fn run_cli(s: &Setup) {
    let preset = s.dir.path().join("cli.toml");
    let digest = {
        let text = std::fs::read_to_string(s.env.image_roots[0].join("preset.toml")).unwrap();
        Preset::parse(&text, "p").unwrap().images[0].sha256.clone().unwrap()
    };
    let image = s.env.image_roots[0].join("images/new-os.inplace");
    std::fs::write(&preset, format!("name = \"tui\"\n\n[image]\nsource = \"{}\"\nsha256 = \"{digest}\"\n", image.display())).unwrap();
    let o = Command::new(inplace_bin())
        .args(["run", "--yes", "--preset"])
        .arg(&preset)
        .arg("--disk")
        .arg(&s.twin)
        .arg("--agent")
        .arg(&s.env.agent)
        .output()
        .unwrap();
    assert!(o.status.success(), "inplace run: {}", String::from_utf8_lossy(&o.stderr));
}

/// `inplace store verify` of the disk's store: ok, and the files it holds.
fn verified_files(disk: &Path) -> u64 {
    let o = Command::new(inplace_bin()).args(["store", "verify", "--json", "--store"]).arg(disk).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)));
    assert_eq!(v["ok"], true, "{v}");
    v["captures"].as_array().unwrap().iter().map(|c| c["report"]["files"].as_u64().unwrap_or(0)).sum()
}

/// The disk's job ended handed off as the twin's did: the journal, the partition table, the
/// store's capture.
fn same_result_as_the_cli(s: &Setup, ended: &Ended) {
    let Ended::Done { journal, .. } = ended else { panic!("the job did not end well: {ended:?}") };
    assert_eq!(journal.state, State::HandedOff);
    let on_disk = inplace::job::rollback::find_job(&s.disk).unwrap().expect("the journal on the disk").journal;
    assert_eq!(on_disk.state, State::HandedOff);
    assert_eq!(on_disk.job_id, journal.job_id);
    run_cli(s);
    let twin = inplace::job::rollback::find_job(&s.twin).unwrap().expect("the twin's journal").journal;
    assert_eq!(twin.state, State::HandedOff);
    assert_eq!(partitions(&s.disk), partitions(&s.twin), "the TUI's job and inplace run leave different tables");
    let (files, _) = on_disk.plan.totals();
    assert_eq!(verified_files(&s.disk), files);
    assert_eq!(verified_files(&s.twin), files);
    assert_eq!(on_disk.plan.sources[0].users, ["alice", "bob"]);
}

#[test]
fn a_whole_job_through_the_tui_and_enter_alone_starts_nothing() {
    let s = setup();
    let session = s.session();
    let engine = s.engine(&session);
    let before = sha256_file(&s.disk);
    let mut script = to_confirm();
    let check = preset_check(&s);
    script.push(Step::Check(Box::new(move |a| {
        let PlanView::Ready(r) = &a.plan else { unreachable!() };
        assert_eq!(format!("{}\n", r.planned.lines.join("\n")), check, "the TUI's plan is not the one preset check prints");
    })));
    script.push(Step::Key(key(KeyCode::Enter)));
    let (disk, sess) = (s.disk.clone(), session.clone());
    script.push(Step::Check(Box::new(move |a| {
        assert_eq!(a.screen, Screen::Confirm, "Enter alone left the confirm screen");
        assert!(a.confirm.refused_enter);
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(sess.phase(), Phase::Idle, "Enter alone asked the engine for a job");
        assert_eq!(sha256_file(&disk), before, "Enter alone changed the disk");
    })));
    script.extend(confirm());
    script.push(until("the result", |a| a.screen == Screen::Result || a.job.error().is_some()));
    script.push(Step::Check(Box::new(|a| assert_eq!(a.job.error(), None))));
    script.push(Step::Key(key(KeyCode::Char('p'))));
    assert_eq!(tui(&session, script), EXIT_POWER_OFF);
    let ended = engine.join().unwrap();
    assert_eq!(session.ended().as_ref(), Some(&ended));
    same_result_as_the_cli(&s, &ended);
}

#[test]
fn a_tui_dropped_mid_job_re_attaches_and_sees_it_through() {
    let s = setup();
    let session = s.session();
    let engine = s.engine(&session);
    let mut script = to_confirm();
    script.extend(confirm());
    let running = Arc::new(AtomicBool::new(false));
    let (r, sess) = (running.clone(), session.clone());
    script.push(until("the job's first step", |a| a.job.current.is_some()));
    script.push(Step::Check(Box::new(move |_| {
        r.store(sess.phase() == Phase::Running, Ordering::SeqCst);
        panic!("the TUI crashes mid-job");
    })));
    let crashed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| tui(&session, script)));
    assert!(crashed.is_err(), "the TUI did not crash");
    assert!(running.load(Ordering::SeqCst), "the job was not running when the TUI crashed");

    // A new TUI finds the job running (or ended) and shows it, with the events so far.
    let script = vec![
        Step::Check(Box::new(|a| {
            assert!(matches!(a.screen, Screen::Progress | Screen::Result), "{:?}", a.screen);
            assert!(a.job.log.iter().any(|l| l == "== carve"), "the events were not replayed: {:?}", a.job.log);
        })),
        until("the result", |a| a.screen == Screen::Result || a.job.error().is_some()),
        Step::Check(Box::new(|a| assert_eq!(a.job.error(), None))),
        Step::Key(key(KeyCode::Char('p'))),
    ];
    assert_eq!(tui(&session, script), EXIT_POWER_OFF);
    let ended = engine.join().unwrap();
    same_result_as_the_cli(&s, &ended);
}

#[test]
fn a_job_stopped_before_the_lay_down_leaves_the_disk_as_it_was() {
    let s = setup();
    let session = s.session();
    // PID 1 serves request after request: the stop, then the rollback the TUI asks for.
    let (dir, env) = (session.dir().to_path_buf(), s.env.clone());
    std::thread::spawn(move || loop {
        serve_one(&dir, &env, &Silent);
    });
    let before = sha256_file(&s.disk);
    let mut script = to_confirm();
    script.extend(confirm());
    script.push(until("the progress screen", |a| a.screen == Screen::Progress));
    script.push(Step::Check(Box::new(|a| assert!(a.job.current.is_none_or(|s| s < inplace::step::Step::LayDown)))));
    script.push(Step::Key(key(KeyCode::Esc)));
    script.push(Step::Check(Box::new(|a| assert!(a.job.asking_stop, "Esc stopped without asking"))));
    script.push(Step::Key(key(KeyCode::Char('y'))));
    script.push(until("the end of the stop", |a| {
        a.screen == Screen::Result || (a.job.ended.is_some() && matches!(a.job.request, Some(inplace::ui::session::Request::Run { .. })) && a.job.error().is_some())
    }));
    script.push(Step::Key(key(KeyCode::Char('p'))));
    assert_eq!(tui(&session, script), EXIT_POWER_OFF);
    let ended = session.ended();
    eprintln!("the stop ended as {:?}", ended.as_ref().map(|e| match e {
        Ended::Done { journal, .. } => journal.state.to_string(),
        Ended::Failed { error } => format!("{:?} in {}", error.kind, error.step),
    }));
    match ended {
        // Stopped once the job was recorded: rolled back.
        Some(Ended::Done { journal, .. }) => assert_eq!(journal.state, State::RolledBack),
        // Stopped while planning: nothing was written, no job to roll back.
        Some(Ended::Failed { error }) => {
            assert_eq!((error.kind, error.written), (inplace::error::Kind::Cancelled, inplace::error::Written::Nothing), "{error:?}")
        }
        None => panic!("the session did not end"),
    }
    let left = inplace::job::rollback::find_job(&s.disk).unwrap().map(|f| f.journal.state);
    assert!(left.is_none_or(|st| st == State::RolledBack), "a job is left on the disk: {left:?}");
    assert_eq!(sha256_file(&s.disk), before, "the stopped job left the disk changed");
}

impl Setup {
    /// A power cut in the middle of the capture of a job `inplace run` started: the disk
    /// holds an unfinished job at `capturing`.
    fn cut_mid_capture(&self) {
        let preset = self.dir.path().join("cut.toml");
        let text = std::fs::read_to_string(self.env.image_roots[0].join("preset.toml")).unwrap();
        let spec = Preset::parse(&text, "p").unwrap().images[0].clone();
        let image = self.env.image_roots[0].join(&spec.source);
        std::fs::write(&preset, format!("name = \"tui\"\n\n[image]\nsource = \"{}\"\nsha256 = \"{}\"\n", image.display(), spec.sha256.unwrap())).unwrap();
        let o = Command::new(inplace_bin())
            .args(["run", "--yes", "--cut-capture", "capture:4096", "--preset"])
            .arg(&preset)
            .arg("--disk")
            .arg(&self.disk)
            .output()
            .unwrap();
        assert!(!o.status.success(), "the cut did not happen: {}", String::from_utf8_lossy(&o.stderr));
        let j = inplace::job::rollback::find_job(&self.disk).unwrap().expect("the cut job's journal").journal;
        assert_eq!(j.state, State::Capturing);
    }
}

/// The home screen offers the unfinished job first, saying what each way out does.
fn offered() -> Vec<Step> {
    vec![
        until("the unfinished job offered", |a| a.screen == Screen::Home && a.home.unfinished.is_some()),
        Step::Check(Box::new(|a| {
            let u = a.home.unfinished.as_ref().unwrap();
            assert_eq!(u.state, State::Capturing);
        })),
    ]
}

#[test]
fn an_unfinished_job_offered_on_the_home_screen_rolls_back_to_the_disk_as_it_was() {
    let s = setup();
    let before = sha256_file(&s.disk);
    s.cut_mid_capture();
    assert_ne!(sha256_file(&s.disk), before);
    let session = s.session();
    let engine = s.engine(&session);
    let mut script = offered();
    script.push(Step::Key(key(KeyCode::Char('b'))));
    script.push(Step::Check(Box::new(|a| assert!(a.home.asking_rollback && a.screen == Screen::Home, "b rolled back without asking"))));
    script.push(Step::Key(key(KeyCode::Char('y'))));
    script.push(until("the result", |a| a.screen == Screen::Result || a.job.error().is_some()));
    script.push(Step::Key(key(KeyCode::Char('p'))));
    assert_eq!(tui(&session, script), EXIT_POWER_OFF);
    let Ended::Done { journal, .. } = engine.join().unwrap() else { panic!("the rollback failed") };
    assert_eq!(journal.state, State::RolledBack);
    assert_eq!(sha256_file(&s.disk), before, "the rolled-back disk differs from the old one");
}

#[test]
fn an_unfinished_job_offered_on_the_home_screen_continues_to_the_same_result() {
    let s = setup();
    s.cut_mid_capture();
    let session = s.session();
    let engine = s.engine(&session);
    let mut script = offered();
    script.push(Step::Key(key(KeyCode::Char('c'))));
    script.push(until("the result", |a| a.screen == Screen::Result || a.job.error().is_some()));
    script.push(Step::Check(Box::new(|a| assert_eq!(a.job.error(), None))));
    script.push(Step::Key(key(KeyCode::Char('p'))));
    assert_eq!(tui(&session, script), EXIT_POWER_OFF);
    let ended = engine.join().unwrap();
    same_result_as_the_cli(&s, &ended);
}

/// Esc, y before the lay-down of a job that had begun to write: the engine stops it and the
/// TUI has it rolled back. The engine starts serving only once the stop is asked, so the stop
/// comes before any step whatever the machine's speed.
#[test]
fn a_job_stopped_before_the_lay_down_is_rolled_back_to_the_disk_as_it_was() {
    let s = setup();
    let before = sha256_file(&s.disk);
    s.cut_mid_capture();
    let session = s.session();
    let (dir, env) = (session.dir().to_path_buf(), s.env.clone());
    let mut script = offered();
    script.push(Step::Key(key(KeyCode::Char('c'))));
    script.push(until("the progress screen", |a| a.screen == Screen::Progress));
    script.push(Step::Key(key(KeyCode::Esc)));
    script.push(Step::Check(Box::new(|a| {
        let text = inplace::ui::tui::progress::stop_words(a.job.current);
        assert!(a.job.asking_stop && text.starts_with("Safe now"), "{text}");
    })));
    script.push(Step::Key(key(KeyCode::Char('y'))));
    let sess = session.clone();
    script.push(Step::Check(Box::new(move |_| {
        assert!(sess.cancel_asked(), "y did not ask the engine to stop");
        let (dir, env) = (dir.clone(), env.clone());
        std::thread::spawn(move || loop {
            serve_one(&dir, &env, &Silent);
        });
    })));
    script.push(until("the result", |a| a.screen == Screen::Result || (a.job.ended.is_some() && a.job.error().is_some() && !a.job.stop_asked)));
    script.push(Step::Check(Box::new(|a| {
        assert!(matches!(a.job.request, Some(inplace::ui::session::Request::Rollback { .. })), "no rollback followed the stop: {:?}", a.job.request);
        assert_eq!(a.job.error(), None);
    })));
    script.push(Step::Key(key(KeyCode::Char('p'))));
    assert_eq!(tui(&session, script), EXIT_POWER_OFF);
    let Some(Ended::Done { journal, .. }) = session.ended() else { panic!("the rollback did not end well: {:?}", session.ended()) };
    assert_eq!(journal.state, State::RolledBack);
    assert_eq!(sha256_file(&s.disk), before, "the stopped job left the disk changed");
}
