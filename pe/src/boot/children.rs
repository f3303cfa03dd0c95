//! Child processes of PID 1. One thread reaps every child (orphans included) and records the
//! exit status of the ones we started in [`crate::command`], so PID 1 code never calls `wait`
//! itself.

use std::time::Duration;

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

pub use crate::command::wait_exit;

/// Starts the reaper thread. Call once, before starting children.
pub fn start_reaper() {
    crate::command::reaper_started();
    std::thread::spawn(|| loop {
        match waitpid(None::<Pid>, None) {
            Ok(WaitStatus::Exited(pid, code)) => crate::command::record(pid.as_raw(), code),
            Ok(WaitStatus::Signaled(pid, sig, _)) => crate::command::record(pid.as_raw(), 128 + sig as i32),
            Ok(_) => {}
            Err(nix::errno::Errno::ECHILD) => std::thread::sleep(Duration::from_millis(200)),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    });
}
