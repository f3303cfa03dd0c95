//! Child processes of PID 1. One thread reaps every child (orphans included) and keeps the exit
//! status of the ones we started, so PID 1 code never calls `wait` itself.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration;

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

static EXITED: OnceLock<(Mutex<HashMap<i32, i32>>, Condvar)> = OnceLock::new();
static REAPING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn exited() -> &'static (Mutex<HashMap<i32, i32>>, Condvar) {
    EXITED.get_or_init(|| (Mutex::new(HashMap::new()), Condvar::new()))
}

/// Starts the reaper thread. Call once, before starting children.
pub fn start_reaper() {
    REAPING.store(true, std::sync::atomic::Ordering::SeqCst);
    std::thread::spawn(|| loop {
        match waitpid(None::<Pid>, None) {
            Ok(WaitStatus::Exited(pid, code)) => record(pid.as_raw(), code),
            Ok(WaitStatus::Signaled(pid, sig, _)) => record(pid.as_raw(), 128 + sig as i32),
            Ok(_) => {}
            Err(nix::errno::Errno::ECHILD) => std::thread::sleep(Duration::from_millis(200)),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    });
}

fn record(pid: i32, code: i32) {
    let (map, cv) = exited();
    map.lock().unwrap_or_else(|e| e.into_inner()).insert(pid, code);
    cv.notify_all();
}

/// Waits for a child started by PID 1 and returns its exit code (128 + signal if killed).
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

/// Runs `cmd` to its end and returns its exit code (`None`: killed) and its output, stdout then
/// stderr. Under PID 1 the reaper collects the exit; elsewhere the standard library does.
pub fn output(cmd: &mut std::process::Command) -> std::io::Result<(Option<i32>, String)> {
    use std::io::Read;
    use std::process::Stdio;
    if !REAPING.load(std::sync::atomic::Ordering::SeqCst) {
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
    let code = (code < 128).then_some(code);
    Ok((code, format!("{}{}", String::from_utf8_lossy(&out), String::from_utf8_lossy(&errs))))
}
