//! `image create --shrinkable`: the growable filesystem is copied (its used blocks, into a
//! sparse file beside the image), shrunk there to its minimum by its own tool, and the image is
//! made from the copy. The reference disk is only read. Why a copy at create and not a shrink
//! at lay-down: `docs/image-format.md`, "Images that fit smaller disks".

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::resize;
use crate::disk::device::{Device, SharedDisk};
use crate::error::{Error, Result};
use crate::progress::Sink;
use crate::step::Step;
use crate::units::human;

const STEP: Step = Step::Image;
const COPY_BUF: u64 = 4 << 20;

/// The shrunk copy: its file (the caller removes it, e.g. through [`Scratch`]) and the file as
/// a disk.
pub struct ShrunkCopy {
    pub path: PathBuf,
    pub disk: SharedDisk,
}

/// The partition to shrink a copy of: the `fs` filesystem at `start .. start + size` of
/// `disk`, with its `used` ranges; `what` names it in errors.
pub struct Original<'a> {
    pub disk: &'a SharedDisk,
    pub start: u64,
    pub size: u64,
    pub fs: &'a str,
    pub used: &'a [(u64, u64)],
    pub what: &'a str,
}

/// Copies the used blocks of `o` into `<out>.shrink` and shrinks the copy to its minimum.
pub fn shrunk_copy(o: &Original, out: &Path, sink: &dyn Sink) -> Result<ShrunkCopy> {
    let Original { disk, start, size, fs, used, what } = *o;
    let path = out.with_extension("shrink");
    let io = |e: String| Error::io(STEP, format!("{what}: making a shrunk copy in {}: {e}", path.display()));
    let f = OpenOptions::new().create(true).write(true).truncate(true).read(true).open(&path).map_err(|e| io(e.to_string()))?;
    let keep = ShrunkGuard(Some(path.clone()));
    f.set_len(size).map_err(|e| io(e.to_string()))?;
    let mut buf = vec![0u8; COPY_BUF as usize];
    for &(s, l) in used {
        let mut at = s;
        while at < s + l {
            let n = (s + l - at).min(COPY_BUF) as usize;
            disk.read_exact_at(start + at, &mut buf[..n]).map_err(|e| io(format!("reading the reference: {e}")))?;
            f.write_all_at(&buf[..n], at).map_err(|e| io(e.to_string()))?;
            at += n as u64;
        }
    }
    f.sync_all().map_err(|e| io(e.to_string()))?;
    drop(f);
    let ((before, after), secs) = {
        let (r, secs) = resize::timed(|| resize::shrink_to_minimum(&path, fs));
        (r.map_err(|e| Error::refused(STEP, format!("{what}: shrinking a copy of the filesystem: {e}")).advice("check the reference's filesystem (e2fsck -f, or chkdsk on Windows) and make the image again"))?, secs)
    };
    sink.log(&format!("{what}: shrunk a copy from {} to {} (its minimum) in {secs:.1} s", human(before), human(after)));
    let dev = Device::open(&path).map_err(|e| io(e.to_string()))?;
    let copy: SharedDisk = Arc::new(dev);
    Ok(ShrunkCopy { path: keep.release(), disk: copy })
}

/// Shrunk copies, removed when dropped.
#[derive(Default)]
pub struct Scratch(Vec<PathBuf>);

impl Scratch {
    pub fn keep(&mut self, path: PathBuf) {
        self.0.push(path);
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Removes the copy unless released (on every error path).
struct ShrunkGuard(Option<PathBuf>);

impl ShrunkGuard {
    fn release(mut self) -> PathBuf {
        self.0.take().unwrap_or_default()
    }
}

impl Drop for ShrunkGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}
