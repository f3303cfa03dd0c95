//! Line output on every active console (screen and serial), and waiting for a key on any of them.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Mutex;

/// The consoles the kernel has active (`console=` parameters), opened for line output.
pub struct Consoles {
    names: Vec<String>,
    files: Mutex<Vec<File>>,
}

impl Consoles {
    /// Opens each console in `/sys/class/tty/console/active`, or `/dev/console` if none is listed.
    pub fn open() -> Consoles {
        Consoles::with_names(active_names())
    }

    /// The consoles `names` (under /dev), opened for line output.
    fn with_names(names: Vec<String>) -> Consoles {
        let files = names.iter().filter_map(|n| open_tty(&format!("/dev/{n}"), false)).collect();
        Consoles { names, files: Mutex::new(files) }
    }

    /// A console set that writes nowhere (for code paths shared with the CLI).
    pub fn none() -> Consoles {
        Consoles { names: Vec::new(), files: Mutex::new(Vec::new()) }
    }

    /// The active consoles but `name` (e.g. `tty1` while the TUI draws on it).
    pub fn except(name: &str) -> Consoles {
        Consoles::with_names(active_names().into_iter().filter(|n| n != name).collect())
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Writes one line to every console. Output errors are ignored: there is nowhere to report them.
    pub fn line(&self, text: &str) {
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        for f in files.iter_mut() {
            let _ = f.write_all(text.as_bytes());
            let _ = f.write_all(b"\r\n");
        }
    }

    /// Blocks until a key is pressed on any console.
    pub fn wait_key(&self) {
        let ttys: Vec<File> = self.names.iter().filter_map(|n| open_tty(&format!("/dev/{n}"), true)).collect();
        for t in &ttys {
            raw_keys(t);
        }
        let mut fds: Vec<rustix::event::PollFd> =
            ttys.iter().map(|t| rustix::event::PollFd::new(t, rustix::event::PollFlags::IN)).collect();
        loop {
            match rustix::event::poll(&mut fds, None) {
                Ok(n) if n > 0 => return,
                Ok(_) | Err(rustix::io::Errno::INTR) => continue,
                // No console to read from: nothing can press a key; wait a while and go on.
                Err(_) => {
                    std::thread::sleep(std::time::Duration::from_secs(60));
                    return;
                }
            }
        }
    }
}

/// The names in `/sys/class/tty/console/active`, or `console` if none is listed.
fn active_names() -> Vec<String> {
    let active = std::fs::read_to_string("/sys/class/tty/console/active").unwrap_or_default();
    let mut names: Vec<String> = active.split_whitespace().map(str::to_string).collect();
    if names.is_empty() {
        names.push("console".into());
    }
    names
}

fn open_tty(path: &str, read: bool) -> Option<File> {
    OpenOptions::new()
        .read(read)
        .write(true)
        .custom_flags(rustix::fs::OFlags::NOCTTY.bits() as i32)
        .open(path)
        .ok()
}

/// Non-canonical input, so a single key (not a whole line) wakes the reader.
fn raw_keys(tty: impl AsFd) {
    if let Ok(mut t) = rustix::termios::tcgetattr(&tty) {
        t.local_modes.remove(rustix::termios::LocalModes::ICANON | rustix::termios::LocalModes::ECHO);
        let _ = rustix::termios::tcsetattr(&tty, rustix::termios::OptionalActions::Now, &t);
    }
}
