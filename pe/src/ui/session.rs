//! The session between the engine and the TUI. The engine runs the job ([`serve_one`], in PID
//! 1's process); the TUI is a front end in a process of its own that can crash and start
//! again: it re-attaches by reading what the session directory holds.
//!
//! The directory (`/run/inplace/session` in the PE):
//! - `context.json`: what the TUI needs ([`Context`]), written by PID 1 before the TUI starts;
//! - `request.json`: what the person asked for ([`Request`]), written atomically by the TUI;
//!   the engine renames it to `request.taken.json` when it takes it, so it runs once;
//! - `events.jsonl`: the engine's events, one JSON object a line (`progress::JsonLines`);
//! - `ended.json`: how the job ended ([`Ended`]), written last;
//! - `cancel`: created by the TUI to ask the engine to stop at its next safe point.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::job::find::Record;
use crate::job::plan::Env;
use crate::preset::Preset;
use crate::progress::{Cancel, Event, JsonLines, Sink, Tee};

/// The session directory in the PE.
pub const DIR: &str = "/run/inplace/session";
/// How often the engine looks for a request and for the cancel file.
pub const POLL: Duration = Duration::from_millis(100);

/// What the TUI needs to know, from PID 1.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Context {
    pub env: Env,
    /// The preset found (it pre-fills the choices), if any.
    pub preset: Option<Preset>,
    /// The title bar's status, e.g. `firmware uefi secure-boot on · preset lab-a`.
    pub status: String,
    /// Where else each run's report is left, in words (the stick's partition).
    #[serde(default)]
    pub reports: Vec<String>,
}

/// What the person asked the engine to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "kebab-case")]
pub enum Request {
    /// A new job (`preset` with the chosen image and users) on the inventory disk `disk`
    /// alone: the others are kept out of the plan.
    Run { preset: Box<Preset>, disk: String },
    /// Resume the unfinished job on the disk at this path.
    Resume { disk: PathBuf },
    /// Roll back the unfinished job on the disk at this path.
    Rollback { disk: PathBuf },
}

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "ended", rename_all = "kebab-case")]
pub enum Ended {
    /// The work is over: the journal as it was left, and the plan in words.
    Done { journal: Box<Record>, lines: Vec<String> },
    /// The work stopped with this error (a refusal, a failure, a stop asked for).
    Failed { error: Error },
}

/// Where the job stands, as the TUI finds it when it starts.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// Nothing asked yet.
    Idle,
    /// A request was made and has not ended.
    Running,
    Ended(Ended),
}

/// A session directory.
#[derive(Debug, Clone)]
pub struct Session {
    dir: PathBuf,
}

impl Session {
    /// Opens `dir`, making it when missing.
    pub fn open(dir: &Path) -> std::io::Result<Session> {
        std::fs::create_dir_all(dir)?;
        Ok(Session { dir: dir.to_path_buf() })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn write_context(&self, c: &Context) -> std::io::Result<()> {
        crate::files::write_atomic(&self.path("context.json"), &json(c)?)
    }

    pub fn read_context(&self) -> std::io::Result<Context> {
        read_json(&self.path("context.json"))
    }

    /// Asks for `r`, after clearing what an ended request left (its events, its end). Refused
    /// while a request is running.
    pub fn submit(&self, r: &Request) -> std::io::Result<()> {
        if self.phase() == Phase::Running {
            return Err(std::io::Error::other("a job is running in this session"));
        }
        for f in ["ended.json", "events.jsonl", "cancel", "request.taken.json"] {
            let _ = std::fs::remove_file(self.path(f));
        }
        crate::files::write_atomic(&self.path("request.json"), &json(r)?)
    }

    /// Engine side: the request waiting, taken so it runs once.
    pub fn take_request(&self) -> std::io::Result<Option<Request>> {
        let (from, to) = (self.path("request.json"), self.path("request.taken.json"));
        match std::fs::rename(&from, &to) {
            Ok(()) => read_json(&to).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The request being run or last run.
    pub fn request(&self) -> Option<Request> {
        read_json(&self.path("request.taken.json")).or_else(|_| read_json(&self.path("request.json"))).ok()
    }

    pub fn phase(&self) -> Phase {
        if let Some(e) = self.ended() {
            return Phase::Ended(e);
        }
        if self.path("request.json").exists() || self.path("request.taken.json").exists() {
            Phase::Running
        } else {
            Phase::Idle
        }
    }

    /// The events written after byte `offset` of `events.jsonl`, complete lines only;
    /// `offset` moves past them. Lines that do not parse are skipped.
    pub fn follow(&self, offset: &mut u64) -> Vec<Event> {
        let Ok(mut f) = std::fs::File::open(self.path("events.jsonl")) else { return Vec::new() };
        let mut text = String::new();
        if f.seek(SeekFrom::Start(*offset)).is_err() || f.read_to_string(&mut text).is_err() {
            return Vec::new();
        }
        let complete = text.rfind('\n').map_or(0, |i| i + 1);
        *offset += complete as u64;
        text[..complete].lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }

    pub fn ended(&self) -> Option<Ended> {
        read_json(&self.path("ended.json")).ok()
    }

    /// Asks the engine to stop.
    pub fn cancel(&self) -> std::io::Result<()> {
        std::fs::write(self.path("cancel"), b"")
    }

    pub fn cancel_asked(&self) -> bool {
        self.path("cancel").exists()
    }
}

/// Engine side: waits for a request in `dir`, runs it with its events going to `console` and
/// to `events.jsonl`, turns the `cancel` file into [`Cancel::cancel`], writes `ended.json`
/// and returns how it ended. A person asked (through the TUI), so the job does not run as
/// unattended. PID 1 calls it again for the next request.
pub fn serve_one(dir: &Path, env: &Env, console: &dyn Sink) -> Ended {
    let session = match Session::open(dir) {
        Ok(s) => s,
        Err(e) => return Ended::Failed { error: Error::io(crate::step::Step::Inspect, format!("session {}: {e}", dir.display())) },
    };
    let request = loop {
        match session.take_request() {
            Ok(Some(r)) => break r,
            Ok(None) => std::thread::sleep(POLL),
            Err(e) => {
                console.warn(&format!("session {}: reading the request: {e}", dir.display()));
                std::thread::sleep(POLL * 10);
            }
        }
    };
    let events = match std::fs::OpenOptions::new().create(true).append(true).open(session.path("events.jsonl")) {
        Ok(f) => f,
        Err(e) => {
            let ended = Ended::Failed { error: Error::io(crate::step::Step::Inspect, format!("session {}: {e}", dir.display())) };
            let _ = finish(&session, &ended);
            return ended;
        }
    };
    let file = JsonLines::new(events);
    let sink = Tee(vec![console, &file]);
    let cancel = Cancel::new();
    let done = std::sync::atomic::AtomicBool::new(false);
    let ended = std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                if session.cancel_asked() {
                    cancel.cancel();
                    break;
                }
                std::thread::sleep(POLL);
            }
        });
        let ended = run(&request, env, &sink, &cancel);
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        ended
    });
    if let Err(e) = finish(&session, &ended) {
        console.warn(&format!("session {}: writing how the job ended: {e}", dir.display()));
    }
    ended
}

fn run(request: &Request, env: &Env, sink: &dyn Sink, cancel: &Cancel) -> Ended {
    use crate::job::{rollback, run};
    let mut env = Env { unattended: false, ..env.clone() };
    let result = match request {
        Request::Run { preset, disk } => {
            env.excluded.extend(env.inventory.disks.iter().filter(|d| &d.name != disk).map(|d| d.name.clone()));
            let quiet = Box::new(|_: &str| {});
            crate::job::reporting::reported(preset, &env, sink, None, quiet, |env, sink| run::run(preset, env, sink, cancel), |o| Some(&o.journal))
                .map(|o| (o.journal, o.lines))
        }
        Request::Resume { disk } => run::resume(disk, &env, sink, cancel).map(|o| (o.journal, o.lines)),
        Request::Rollback { disk } => rollback::rollback(disk, sink, cancel).map(|j| (j, Vec::new())),
    };
    match result {
        Ok((journal, lines)) => Ended::Done { journal: Box::new(journal), lines },
        Err(error) => Ended::Failed { error },
    }
}

fn finish(session: &Session, ended: &Ended) -> std::io::Result<()> {
    crate::files::write_atomic(&session.path("ended.json"), &json(ended)?)
}

fn json<T: Serialize>(v: &T) -> std::io::Result<Vec<u8>> {
    serde_json::to_vec_pretty(v).map_err(std::io::Error::other)
}

fn read_json<T: for<'de> Deserialize<'de>>(p: &Path) -> std::io::Result<T> {
    let text = std::fs::read(p)?;
    serde_json::from_slice(&text).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {e}", p.display())))
}

/// Writes `bytes` to a new file beside `path`, syncs it and renames it over `path`.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::step::Step;

    #[test]
    fn a_request_is_taken_once_and_events_are_followed_by_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let s = Session::open(dir.path()).unwrap();
        assert_eq!(s.phase(), Phase::Idle);
        let r = Request::Resume { disk: "/dev/vda".into() };
        s.submit(&r).unwrap();
        assert_eq!(s.phase(), Phase::Running);
        assert!(s.submit(&r).is_err(), "a second request while one runs");
        assert_eq!(s.take_request().unwrap(), Some(r.clone()));
        assert_eq!(s.take_request().unwrap(), None);
        assert_eq!(s.request(), Some(r));

        let line = JsonLines::<Vec<u8>>::line(&Event::Step { step: Step::Carve });
        std::fs::write(s.path("events.jsonl"), format!("{line}\n{{\"event\":\"lo")).unwrap();
        let mut off = 0;
        assert_eq!(s.follow(&mut off), [Event::Step { step: Step::Carve }]);
        assert_eq!(off as usize, line.len() + 1);
        assert!(s.follow(&mut off).is_empty(), "half a line waits");

        let ended = Ended::Failed { error: Error::refused(Step::Plan, "no") };
        finish(&s, &ended).unwrap();
        assert_eq!(s.phase(), Phase::Ended(ended));
        s.submit(&Request::Rollback { disk: "/dev/vda".into() }).unwrap();
        assert_eq!(s.phase(), Phase::Running, "a new request clears the old end");
        assert!(!s.path("events.jsonl").exists());
    }

    #[test]
    fn the_engine_serves_a_request_and_stops_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let s = Session::open(dir.path()).unwrap();
        let env = Env {
            inventory: Default::default(),
            dev_dir: None,
            excluded: vec![],
            image_roots: vec![],
            agent: "/nonexistent".into(),
            agent_windows: None,
            work: dir.path().into(),
            unattended: true,
            http: Default::default(),
            workers: 1,
            efi_nvram: false,
            preset_key: None,
            cut_capture: None,
            reporter: None,
        };
        let c = Context { env: env.clone(), preset: None, status: "firmware bios".into(), reports: vec![] };
        s.write_context(&c).unwrap();
        assert_eq!(s.read_context().unwrap().status, "firmware bios");
        s.submit(&Request::Resume { disk: dir.path().join("no-such-disk") }).unwrap();
        let collect = crate::progress::Collect::default();
        let ended = serve_one(dir.path(), &env, &collect);
        assert!(matches!(&ended, Ended::Failed { error } if error.problem.contains("no-such-disk")), "{ended:?}");
        assert_eq!(s.ended(), Some(ended));
    }
}
