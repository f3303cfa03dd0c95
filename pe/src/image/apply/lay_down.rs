//! Writing the plan a [`super::prepare`] made: check every stored chunk of a local image
//! (unless a staged image was checked already) → open the target for writing → the table →
//! the chunks (parallel decode, checks, positioned writes) → flush → read back → the growable
//! filesystem grown to fill its partition ([`crate::image::resize`]) → ESP fallback loader. Everything before the table write writes nothing; a refusal or a cancel there
//! leaves the target untouched.
//!
//! Cancelling stops between chunks and returns `Cancelled` with `written: Disk` once the table
//! is written; the kept partitions and the store are never in a written range, and laying the
//! same image down again (a new `prepare`, then `lay_down`) completes the target.

use std::sync::atomic::{AtomicU64, Ordering};

use super::prepare::Prepared;
use crate::disk::device::ReadAt;
use crate::disk::write::{RwDevice, WriteAt};
use crate::error::{Error, Result, Written};
use crate::image::format::ChunkRecord;
use crate::image::layout::Placement;
use crate::image::pipeline::{self, Check};
use crate::image::reader::Image;
use crate::image::resize::{self, Resized};
use crate::image::{efi, table, verify};
use crate::disk::attach::Attached;
use crate::progress::Event;
use crate::net::http::HttpOptions;
use crate::progress::{Cancel, Meter, Sink};
use crate::step::Step;

const STEP: Step = Step::LayDown;
const AGAIN: &str = "lay the image down again to complete the target (the image is checked first)";

#[derive(Debug, Clone)]
pub struct LayDownReport {
    pub placement: Placement,
    pub digest: String,
    pub bytes_written: u64,
    /// Filesystems grown to fill their partitions.
    pub resized: Vec<Resized>,
    pub notes: Vec<String>,
}

/// Lays the prepared image down.
pub fn lay_down(p: Prepared, sink: &dyn Sink, cancel: &Cancel) -> Result<LayDownReport> {
    let mut written = Written::Nothing;
    run(p, sink, cancel, &mut written).map_err(|e| {
        let e = crate::image::seen_from(e, STEP, written);
        if written == Written::Disk {
            e.advice(AGAIN)
        } else {
            e
        }
    })
}

fn io(what: impl std::fmt::Display) -> Error {
    Error::io(STEP, what.to_string())
}

fn run(mut p: Prepared, sink: &dyn Sink, cancel: &Cancel, written: &mut Written) -> Result<LayDownReport> {
    let r = p.request.clone();
    let workers = r.workers.max(1);
    let mut notes = std::mem::take(&mut p.notes);
    if p.is_remote() {
        notes.push("streaming without staging: each chunk is verified as it arrives".into());
    } else if !p.verified {
        verify::stored(&mut p.image, workers, &r.http, sink, cancel)?;
    }
    let (img, placement, t) = (&mut p.image, &p.placement, &p.target);
    let patch = table::build(t, &img.manifest, placement)?;
    cancel.check(STEP, Written::Nothing)?;
    let disk = r.disk.display();
    let file = RwDevice::open(&r.disk).map_err(|e| io(format!("cannot open {disk} for writing: {e}")))?;
    if !t.block_device && file.size() != t.layout.disk_bytes {
        return Err(Error::refused(STEP, format!("{disk} changed size while being checked")));
    }
    // From here on the target is written.
    *written = Written::Disk;
    patch.write_to(&file).map_err(|e| io(format!("writing the partition table to {disk}: {e}")))?;
    if t.block_device {
        // The grow and the hand-off reach partitions through the kernel's nodes.
        let table: Vec<(u32, u64, u64)> = written_table(&r.disk)?.iter().map(|p| (p.number, p.start_bytes, p.size_bytes)).collect();
        crate::disk::write::blkpg::follow(&file, &table).map_err(|e| io(format!("telling the kernel about the new table of {disk}: {e}")))?;
    }
    let bytes = write_chunks(img, placement, &file, workers, &r.http, sink, cancel)?;
    file.sync().map_err(|e| io(e.to_string()))?;
    if r.readback {
        readback(img, placement, &file, workers, sink, cancel)?;
    }
    cancel.check(STEP, Written::Disk)?;
    let resized = grow(img, placement, &r.disk, sink, cancel)?;
    check_table(&r.disk, placement)?;
    if img.manifest.boot.uefi() {
        notes.extend(efi::ensure_fallback(&file, &img.manifest, placement)?);
        if r.efi_nvram && t.block_device {
            // The fallback loader boots the disk anyway: a firmware that refuses the entry is a note.
            match efi::nvram_entry(&img.manifest, placement, t) {
                Ok(n) => notes.extend(n),
                Err(e) => notes.push(format!("no NVRAM boot entry was added ({e}); the firmware boots the ESP's fallback loader")),
            }
        }
    }
    file.sync().map_err(|e| io(e.to_string()))?;
    Ok(LayDownReport { placement: p.placement, digest: p.image.digest_hex(), bytes_written: bytes, resized, notes })
}

/// Streams and writes every chunk; returns the logical bytes written.
fn write_chunks(img: &mut Image, p: &Placement, file: &RwDevice, workers: usize, http: &HttpOptions, sink: &dyn Sink, cancel: &Cancel) -> Result<u64> {
    let mut base = vec![0u64; img.manifest.partitions.len()];
    for pl in &p.placed {
        base[pl.image_index] = pl.start;
    }
    let meter = Meter::start(sink, "writing", img.logical_bytes());
    let written = AtomicU64::new(0);
    let index = img.index.clone();
    let job = |_: usize, c: &ChunkRecord, data: &[u8]| -> Result<()> {
        let mut at = 0usize;
        let b = base[c.partition as usize];
        for r in index.runs_of(c) {
            let n = r.len as usize;
            file.write_exact_at(b + r.offset, &data[at..at + n]).map_err(|e| io(e.to_string()))?;
            at += n;
        }
        written.fetch_add(data.len() as u64, Ordering::Relaxed);
        Ok(())
    };
    pipeline::run(img.source.as_mut(), &index, 0, Check::Full, workers, http, sink, cancel, &job, &mut |_, c| meter.add(u64::from(c.logical_len)))?;
    Ok(written.load(Ordering::Relaxed))
}

/// The growable partition's filesystem (ext2/3/4, NTFS) grown by its own tool to fill the
/// partition it was placed in, after the chunks are written and read back. FAT stays as it is.
fn grow(img: &Image, p: &Placement, disk: &std::path::Path, sink: &dyn Sink, cancel: &Cancel) -> Result<Vec<Resized>> {
    let mut done = Vec::new();
    for pl in &p.placed {
        let s = &img.manifest.partitions[pl.image_index];
        let fs = s.fs.as_deref().unwrap_or("raw");
        if !s.grow || pl.size <= s.min_size {
            continue;
        }
        if !resize::resizable(s.fs.as_deref()) {
            sink.log(&format!("partition {}: {fs} is left at {} (only ext2/3/4 and NTFS are grown)", pl.number, crate::units::human(s.min_size)));
            continue;
        }
        cancel.check(STEP, Written::Disk)?;
        sink.event(&Event::Phase { name: format!("growing {fs} on partition {}", pl.number), total: 0 });
        let fail = |e: String| io(format!("growing the {fs} filesystem of partition {} to {}: {e}", pl.number, crate::units::human(pl.size)));
        let device = Attached::partition(disk, pl.number, pl.start, pl.size).map_err(|e| fail(e.to_string()))?;
        let (grown, secs) = resize::timed(|| resize::grow(&device.node, fs));
        let (before, after) = grown.map_err(|e| fail(e.to_string()))?;
        let r = Resized { number: pl.number, fs: fs.to_string(), before, after, secs };
        sink.event(&Event::Resized { number: r.number, fs: r.fs.clone(), before, after, secs });
        sink.log(&r.line());
        done.push(r);
    }
    Ok(done)
}

/// Reads every written run back and checks each chunk's logical CRC-32; stops at the next
/// chunk when `cancel` is raised.
fn readback(img: &Image, p: &Placement, file: &RwDevice, workers: usize, sink: &dyn Sink, cancel: &Cancel) -> Result<()> {
    let mut base = vec![0u64; img.manifest.partitions.len()];
    for pl in &p.placed {
        base[pl.image_index] = pl.start;
    }
    let meter = Meter::start(sink, "reading back", img.logical_bytes());
    let next = AtomicU64::new(0);
    let index = &img.index;
    let chunks = &index.chunks;
    let err = std::sync::Mutex::new(None::<Error>);
    std::thread::scope(|s| {
        for _ in 0..workers.max(1) {
            s.spawn(|| {
                let mut buf = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    if i >= chunks.len() || err.lock().map(|e| e.is_some()).unwrap_or(true) {
                        return;
                    }
                    if let Err(e) = cancel.check(STEP, Written::Disk) {
                        if let Ok(mut x) = err.lock() {
                            x.get_or_insert(e);
                        }
                        return;
                    }
                    let c = &chunks[i];
                    buf.resize(c.logical_len as usize, 0);
                    let b = base[c.partition as usize];
                    let mut at = 0usize;
                    for r in index.runs_of(c) {
                        let n = r.len as usize;
                        if let Err(e) = file.read_back_at(b + r.offset, &mut buf[at..at + n]) {
                            if let Ok(mut x) = err.lock() {
                                x.get_or_insert(io(e.to_string()));
                            }
                            return;
                        }
                        at += n;
                    }
                    if crc32fast::hash(&buf) != c.logical_crc {
                        if let Ok(mut x) = err.lock() {
                            x.get_or_insert(
                                io(format!("read-back of chunk {i} differs from what was written: the disk does not keep what it is given"))
                                    .advice("check the disk (SMART)"),
                            );
                        }
                        return;
                    }
                    meter.add(u64::from(c.logical_len));
                }
            });
        }
    });
    match err.into_inner().ok().flatten() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Reads the written table back with the shared readers and compares it with the plan.
/// The partitions of the table on `disk`, read back.
fn written_table(disk: &std::path::Path) -> Result<Vec<crate::inventory::Partition>> {
    let inv = crate::inventory::inspect_paths(&[disk.to_path_buf()]);
    let d = inv.disks.into_iter().next().ok_or_else(|| io(format!("{}: cannot read the written table back", disk.display())))?;
    Ok(d.partitions)
}

fn check_table(disk: &std::path::Path, p: &Placement) -> Result<()> {
    let parts = written_table(disk)?;
    for pl in &p.placed {
        let ok = parts.iter().any(|x| x.number == pl.number && x.start_bytes == pl.start && x.size_bytes == pl.size);
        if !ok {
            return Err(io(format!("{}: partition {} is not in the written table as planned; the table write did not stick", disk.display(), pl.number)));
        }
    }
    Ok(())
}
