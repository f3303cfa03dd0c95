//! Staging: download the whole image into local storage (normally the migration store) and
//! verify it there before the first destructive write. The default for HTTP sources when
//! the store is mounted and has room; otherwise the image is streamed and verified chunk by
//! chunk. A partial download is resumed with a Range request, never restarted.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::format::hex;
use super::http::HttpOptions;
use super::progress::{Event, Meter, Progress};
use super::source::Source;
use super::target::{partition_of, TargetInfo};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Staging {
    /// Stage into the target's store when it is mounted and has room; else stream.
    Auto,
    Never,
    Dir(PathBuf),
}

/// FAT32 cannot hold a file of 4 GiB or more.
const FAT_FILE_MAX: u64 = (4 << 30) - 1;

fn store_mount(t: &TargetInfo) -> Option<(PathBuf, String)> {
    let store = t.store?;
    let disk = t.dev_numbers?;
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    for l in text.lines() {
        let f: Vec<&str> = l.split(' ').collect();
        let (a, b) = f.get(2)?.split_once(':')?;
        let dev = (a.parse().ok()?, b.parse().ok()?);
        if partition_of(dev, disk) == Some(store) {
            let fstype = f.iter().position(|x| *x == "-").and_then(|i| f.get(i + 1)).unwrap_or(&"").to_string();
            return Some((PathBuf::from(f.get(4)?), fstype));
        }
    }
    None
}

fn free_bytes(dir: &Path) -> Option<u64> {
    let s = rustix::fs::statvfs(dir).ok()?;
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

/// Where to stage, if anywhere; says why not in `notes`.
pub fn choose(s: &Staging, t: &TargetInfo, len: u64, notes: &mut Vec<String>) -> Option<PathBuf> {
    match s {
        Staging::Never => None,
        Staging::Dir(d) => Some(d.clone()),
        Staging::Auto => {
            let Some((dir, fstype)) = store_mount(t) else {
                notes.push("not staged: the store is not mounted; streaming with per-chunk checks".into());
                return None;
            };
            if fstype == "vfat" && len > FAT_FILE_MAX {
                notes.push("not staged: the image is 4 GiB or more and the store is FAT32; streaming with per-chunk checks".into());
                return None;
            }
            if free_bytes(&dir).is_none_or(|f| f < len.saturating_add(64 << 20)) {
                notes.push("not staged: the store has no room for the image; streaming with per-chunk checks".into());
                return None;
            }
            Some(dir.join("inplace"))
        }
    }
}

/// Downloads `img` into `dir`, resuming a partial file; returns the complete file's path.
pub fn download(src: &mut dyn Source, digest: &[u8; 32], len: u64, dir: &Path, opts: &HttpOptions, progress: &dyn Progress) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create the staging directory {}: {e}", dir.display()))?;
    let name = hex(&digest[..8]);
    let done = dir.join(format!("{name}.img"));
    let part = dir.join(format!("{name}.img.partial"));
    if std::fs::metadata(&done).is_ok_and(|m| m.len() == len) {
        progress.event(Event::Log(format!("staged image {} is already complete; verifying it", done.display())));
        return Ok(done);
    }
    let mut f = OpenOptions::new().create(true).append(true).open(&part).map_err(|e| format!("cannot write {}: {e}", part.display()))?;
    let mut have = f.metadata().map(|m| m.len()).unwrap_or(0);
    if have > len {
        f.set_len(0).map_err(|e| format!("{}: {e}", part.display()))?;
        have = 0;
    }
    let meter = Meter::new(progress, "downloading", len);
    meter.add(have);
    let mut failures = 0u32;
    let mut wait = opts.backoff;
    let mut buf = vec![0u8; 1 << 20];
    let url = src.name();
    if have > 0 {
        progress.event(Event::Log(format!("{url}: resuming the staged download at byte {have} with Range: bytes={have}-{}", len - 1)));
    }
    while have < len {
        let r = src.stream(have, len).and_then(|mut s| loop {
            match s.read(&mut buf) {
                Ok(0) => break Err(super::source::SourceError::retry(format!("the stream ended at byte {have}"))),
                Ok(n) => {
                    f.write_all(&buf[..n]).map_err(|e| super::source::SourceError::fatal(format!("writing {}: {e}", part.display())))?;
                    have += n as u64;
                    meter.add(n as u64);
                    if failures > 0 {
                        failures = 0;
                        wait = opts.backoff;
                    }
                    if have >= len {
                        break Ok(());
                    }
                }
                Err(e) => break Err(super::source::SourceError::retry(format!("reading at byte {have}: {e}"))),
            }
        });
        match r {
            Ok(()) => {}
            Err(e) if e.retryable && failures < opts.retries => {
                failures += 1;
                progress.event(Event::Log(format!("{url}: {}; retry {failures} of {} in {:.1} s", e.message, opts.retries, wait.as_secs_f64())));
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_secs(10));
                progress.event(Event::Log(format!("{url}: resuming at byte {have} with Range: bytes={have}-{}, not restarting", len - 1)));
            }
            Err(e) => return Err(format!("{}; the partial download is kept in {} and resumes next time", e.message, part.display())),
        }
    }
    f.sync_all().map_err(|e| format!("{}: {e}", part.display()))?;
    std::fs::rename(&part, &done).map_err(|e| format!("{}: {e}", done.display()))?;
    Ok(done)
}

use std::io::Read;
