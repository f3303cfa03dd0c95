//! Staging: download a remote image whole into local storage (normally the migration store)
//! and check every stored chunk there before the first destructive write. The default for
//! HTTP sources when the store is mounted and has room; otherwise the image is streamed and
//! checked chunk by chunk as it is written. A partial download — cut, given up or cancelled —
//! is kept and resumed with a Range request, never restarted.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::apply::Prepared;
use super::format::hex;
use super::reader;
use super::source::{LocalFile, Source};
use super::target::{partition_of, TargetInfo};
use super::verify;
use crate::error::{Error, Hint, Kind, Result, Written};
use crate::net::http::HttpOptions;
use crate::progress::{Cancel, Meter, Sink};
use crate::step::Step;

const STEP: Step = Step::Stage;

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

/// Where to stage `p`'s image, if anywhere: `None` for a local image, or when `s` says not
/// to or cannot (then a note in `p.notes` says why).
pub fn choose(s: &Staging, p: &mut Prepared) -> Option<PathBuf> {
    if !p.is_remote() {
        return None;
    }
    let len = p.image.header.file_len;
    let mut not = |why: &str| {
        p.notes.push(format!("not staged: {why}; streaming with per-chunk checks"));
        None
    };
    match s {
        Staging::Never => None,
        Staging::Dir(d) => Some(d.clone()),
        Staging::Auto => {
            let Some((dir, fstype)) = store_mount(&p.target) else { return not("the store is not mounted") };
            if fstype == "vfat" && len > FAT_FILE_MAX {
                return not("the image is 4 GiB or more and the store is FAT32");
            }
            if free_bytes(&dir).is_none_or(|f| f < len.saturating_add(64 << 20)) {
                return not("the store has no room for the image");
            }
            Some(dir.join("inplace"))
        }
    }
}

/// Downloads `p`'s remote image into `dir` (resuming a partial download there), checks the
/// copy (digest, pins, every stored chunk) and makes it `p`'s image. On any error `p` is as
/// it was, and what was downloaded is kept for the next attempt unless it is damaged.
pub fn stage(p: &mut Prepared, dir: &Path, sink: &dyn Sink, cancel: &Cancel) -> Result<()> {
    if !p.is_remote() {
        return Ok(());
    }
    let mut written = Written::Nothing;
    let mut run = |written: &mut Written| -> Result<()> {
        let (digest, len) = (p.image.header.digest, p.image.header.file_len);
        let http = p.request.http.clone();
        let path = download(p.image.source.as_mut(), &digest, len, dir, &http, sink, cancel, written)?;
        let reopen = |path: &Path| -> Result<_> {
            let mut img = reader::check(Box::new(LocalFile::open(path)?), &p.request.trust, &http, sink, cancel)?;
            if img.header.digest != digest {
                return Err(Error::damaged(STEP, format!("{}: the staged copy is not the image prepared", path.display())));
            }
            verify::stored(&mut img, p.request.workers, &http, sink, cancel)?;
            Ok(img)
        };
        match reopen(&path) {
            Ok(img) => {
                p.image = img;
                p.verified = true;
                p.notes.push(format!("staged in {} and verified before writing", path.display()));
                Ok(())
            }
            Err(e) if e.kind == Kind::Damaged => {
                let _ = std::fs::remove_file(&path);
                Err(e.advice(format!("the damaged copy {} was removed; staging again downloads it anew", path.display())))
            }
            Err(e) => Err(e),
        }
    };
    run(&mut written).map_err(|e| {
        let e = super::seen_from(e, STEP, written);
        if e.is_cancelled() {
            e.hint(Hint::RunAgain)
        } else {
            e
        }
    })
}

/// Downloads `src` into `dir`, resuming a partial file; returns the complete file's path.
/// `written` becomes `StoreOnly` once a byte is written.
#[allow(clippy::too_many_arguments)]
fn download(
    src: &mut dyn Source,
    digest: &[u8; 32],
    len: u64,
    dir: &Path,
    http: &HttpOptions,
    sink: &dyn Sink,
    cancel: &Cancel,
    written: &mut Written,
) -> Result<PathBuf> {
    let io = |what: String| Error::io(STEP, what);
    std::fs::create_dir_all(dir).map_err(|e| io(format!("cannot create the staging directory {}: {e}", dir.display())))?;
    let name = hex(&digest[..8]);
    let done = dir.join(format!("{name}.img"));
    let part = dir.join(format!("{name}.img.partial"));
    if std::fs::metadata(&done).is_ok_and(|m| m.len() == len) {
        sink.log(&format!("staged image {} is already complete; verifying it", done.display()));
        return Ok(done);
    }
    let mut f = OpenOptions::new().create(true).append(true).open(&part).map_err(|e| io(format!("cannot write {}: {e}", part.display())))?;
    let mut have = f.metadata().map(|m| m.len()).unwrap_or(0);
    if have > len {
        f.set_len(0).map_err(|e| io(format!("{}: {e}", part.display())))?;
        have = 0;
    }
    let meter = Meter::start(sink, "downloading", len);
    meter.set(have);
    let mut backoff = http.backoff();
    let mut buf = vec![0u8; 1 << 20];
    let url = src.name();
    let kept = |e: Error| e.advice(format!("the partial download is kept in {} and resumes when staged again", part.display()));
    if have > 0 {
        sink.log(&format!("{url}: resuming the staged download at byte {have} with Range: bytes={have}-{}", len - 1));
    }
    while have < len {
        cancel.check(STEP, Written::Nothing)?;
        let r = src.stream(have, len).and_then(|mut s| loop {
            cancel.check(STEP, Written::Nothing)?;
            match s.read(&mut buf) {
                Ok(0) => break Err(Error::transient(STEP, format!("the stream ended at byte {have}"))),
                Ok(n) => {
                    *written = Written::StoreOnly;
                    f.write_all(&buf[..n]).map_err(|e| io(format!("writing {}: {e}", part.display())))?;
                    have += n as u64;
                    meter.add(n as u64);
                    backoff.reset();
                    if have >= len {
                        break Ok(());
                    }
                }
                Err(e) => break Err(Error::transient(STEP, format!("reading at byte {have}: {e}"))),
            }
        });
        if let Err(e) = r {
            backoff.pause(e, &url, sink, cancel).map_err(kept)?;
            sink.log(&format!("{url}: resuming at byte {have} with Range: bytes={have}-{}, not restarting", len - 1));
        }
    }
    f.sync_all().map_err(|e| io(format!("{}: {e}", part.display())))?;
    std::fs::rename(&part, &done).map_err(|e| io(format!("{}: {e}", done.display())))?;
    Ok(done)
}
