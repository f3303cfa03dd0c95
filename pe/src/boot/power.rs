//! Ending the PE: flush, then power off or reboot.

use rustix::system::{reboot, RebootCommand};

pub fn power_off() -> ! {
    finish(RebootCommand::PowerOff)
}

pub fn restart() -> ! {
    finish(RebootCommand::Restart)
}

fn finish(cmd: RebootCommand) -> ! {
    rustix::fs::sync();
    let _ = reboot(cmd);
    // reboot(2) only returns on failure; PID 1 must not exit (the kernel would panic).
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
