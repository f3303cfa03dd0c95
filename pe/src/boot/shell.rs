//! The result screen's shell: busybox's `sh` on the TUI's console, for a technician who wants
//! to look around (the store, the logs under /run/inplace) before rebooting.

use std::path::Path;

use super::children;
use super::console::Consoles;

/// Where the initramfs keeps busybox.
pub const BUSYBOX: &str = "/bin/busybox";

/// Runs a shell on `tty` as its controlling terminal until it exits.
pub fn run(consoles: &Consoles, tty: &Path) {
    if !Path::new(BUSYBOX).exists() {
        consoles.line("inplace: this PE has no shell (no /bin/busybox in the initramfs); rebuild it with scripts/build-pe");
        return;
    }
    consoles.line("inplace: a shell on the screen; `exit` goes back to the TUI");
    let io = |read| std::fs::OpenOptions::new().read(read).write(true).open(tty);
    let (Ok(i), Ok(o), Ok(e)) = (io(true), io(false), io(false)) else {
        consoles.line(&format!("inplace: could not open {} for the shell", tty.display()));
        return;
    };
    // busybox's setsid -c makes the tty the shell's controlling terminal (job control, Ctrl-C).
    let child = std::process::Command::new(BUSYBOX)
        .args(["setsid", "-c", "sh", "-l"])
        .env("PATH", "/bin:/sbin:/usr/bin:/usr/sbin:/lib/busybox")
        .env("PS1", "inplace# ")
        .env("TERM", "linux")
        .stdin(i)
        .stdout(o)
        .stderr(e)
        .spawn();
    match child {
        Ok(c) => {
            children::wait_exit(c.id());
        }
        Err(err) => consoles.line(&format!("inplace: could not start the shell: {err}")),
    }
}
