//! Running other programs (the filesystem tools) to their end, with their exit code and output,
//! both on a host and under PID 1, whose reaper thread ([`crate::boot::children`]) collects
//! every exit and records it here.

use std::collections::HashMap;
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};

static EXITED: OnceLock<(Mutex<HashMap<i32, i32>>, Condvar)> = OnceLock::new();
static REAPING: AtomicBool = AtomicBool::new(false);

fn exited() -> &'static (Mutex<HashMap<i32, i32>>, Condvar) {
    EXITED.get_or_init(|| (Mutex::new(HashMap::new()), Condvar::new()))
}

/// From now on a reaper collects exits: [`output`] waits through [`wait_exit`].
pub fn reaper_started() {
    REAPING.store(true, Ordering::SeqCst);
}

/// The reaper's record of an exit.
pub fn record(pid: i32, code: i32) {
    let (map, cv) = exited();
    map.lock().unwrap_or_else(|e| e.into_inner()).insert(pid, code);
    cv.notify_all();
}

/// Waits for a child started under the reaper and returns its exit code (128 + signal if
/// killed).
pub fn wait_exit(pid: u32) -> i32 {
    let (map, cv) = exited();
    let mut guard = map.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if let Some(code) = guard.remove(&(pid as i32)) {
            return code;
        }
        guard = cv.wait(guard).unwrap_or_else(|e| e.into_inner());
    }
}

/// Runs `cmd` to its end and returns its exit code (`None`: killed by a signal) and its output,
/// stdout then stderr.
pub fn output(cmd: &mut Command) -> std::io::Result<(Option<i32>, String)> {
    if !REAPING.load(Ordering::SeqCst) {
        let o = cmd.stdin(Stdio::null()).output()?;
        return Ok((o.status.code(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))));
    }
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let mut err = child.stderr.take();
    let errs = std::thread::spawn(move || {
        let mut s = Vec::new();
        if let Some(e) = err.as_mut() {
            let _ = e.read_to_end(&mut s);
        }
        s
    });
    let mut out = Vec::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_end(&mut out);
    }
    let errs = errs.join().unwrap_or_default();
    let code = wait_exit(child.id());
    Ok(((code < 128).then_some(code), format!("{}{}", String::from_utf8_lossy(&out), String::from_utf8_lossy(&errs))))
}
