//! Child processes of PID 1. One thread reaps every child (orphans included) and keeps the exit
//! status of the ones we started, so PID 1 code never calls `wait` itself.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration;

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

static EXITED: OnceLock<(Mutex<HashMap<i32, i32>>, Condvar)> = OnceLock::new();

fn exited() -> &'static (Mutex<HashMap<i32, i32>>, Condvar) {
    EXITED.get_or_init(|| (Mutex::new(HashMap::new()), Condvar::new()))
}

/// Starts the reaper thread. Call once, before starting children.
pub fn start_reaper() {
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
