//! Coldplug until the machine is quiet: load drivers for every device, again for the devices
//! those drivers create, until no module loads and the set of block devices stops changing.

use std::path::Path;
use std::time::{Duration, Instant};

use super::modules::{device_modaliases, Loader, ModuleSink};

/// How long nothing may change before the devices count as settled.
const QUIET: Duration = Duration::from_millis(1500);
const POLL: Duration = Duration::from_millis(150);

pub struct Settled {
    pub modules_loaded: usize,
    pub block_devices: Vec<String>,
    pub elapsed: Duration,
    /// True when the time limit ended the wait, not quiet.
    pub timed_out: bool,
}

pub fn settle<S: ModuleSink>(loader: &mut Loader<S>, sys: &Path, limit: Duration) -> Settled {
    let start = Instant::now();
    let mut modules_loaded = 0;
    let mut blocks = block_devices(sys);
    let mut last_change = Instant::now();
    loop {
        let loaded = loader.coldplug_pass(&device_modaliases(&sys.join("devices")));
        modules_loaded += loaded;
        let now = block_devices(sys);
        if loaded > 0 || now != blocks {
            blocks = now;
            last_change = Instant::now();
        }
        if last_change.elapsed() >= QUIET || start.elapsed() >= limit {
            return Settled {
                modules_loaded,
                block_devices: blocks,
                elapsed: start.elapsed(),
                timed_out: last_change.elapsed() < QUIET,
            };
        }
        std::thread::sleep(POLL);
    }
}

/// Names under `/sys/block`, sorted.
pub fn block_devices(sys: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(sys.join("block"))
        .map(|it| it.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}
