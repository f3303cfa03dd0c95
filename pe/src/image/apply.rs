//! `image apply`: check everything, then lay the image down.
//!
//! Order: open and check the image (digest, pin, signature) → read the target (identity,
//! store, mounts) → sector sizes → layout → [stop here without `--yes`] → verify every stored
//! chunk of a local image → open the target for writing → write the table → stream chunks
//! (parallel decode, checks, positioned writes) → flush → read back → ESP fallback loader.
//! Every refusal comes before the target is opened for writing.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use super::http::HttpOptions;
use super::layout::{self, Placement, Want};
use super::pipeline::{self, Check};
use super::progress::{Event, Meter, Progress};
use super::reader::{self, Image, Trust};
use super::source::{self, LocalFile};
use super::target::{self, Expect, TargetInfo};
use super::{efi, stage, table};

#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub image: String,
    pub disk: PathBuf,
    pub keep: Vec<u32>,
    pub store: Option<u32>,
    pub yes: bool,
    pub trust: Trust,
    pub http: HttpOptions,
    pub workers: usize,
    pub expect: Expect,
    pub stage: stage::Staging,
    pub readback: bool,
    /// Add an NVRAM boot entry (only in the PE, on a block device).
    pub efi_nvram: bool,
}

#[derive(Debug, Clone)]
pub struct ApplyReport {
    pub placement: Placement,
    pub digest: String,
    /// `false` for a dry run (no `--yes`).
    pub written: bool,
    pub bytes_written: u64,
    pub notes: Vec<String>,
}

/// Whether the image's content can go on a disk with `target_ss`-byte sectors.
pub fn sector_check(m: &super::manifest::Manifest, target_ss: u32) -> Result<(), String> {
    if m.sector_size == target_ss {
        return Ok(());
    }
    for p in &m.partitions {
        if let Some(fss) = p.fs_sector_size {
            if fss != target_ss {
                return Err(format!(
                    "the image's partition {} ({}) records {fss}-byte sectors and the target has {target_ss}-byte logical sectors; \
                     it cannot be translated (Windows and firmware would not read it); make the image on a disk with \
                     {target_ss}-byte sectors; nothing was written",
                    p.number,
                    p.fs.as_deref().unwrap_or("raw")
                ));
            }
        }
        if p.size % u64::from(target_ss) != 0 || p.min_size % u64::from(target_ss) != 0 {
            return Err(format!(
                "the image's partition {} is not a whole number of {target_ss}-byte sectors; nothing was written",
                p.number
            ));
        }
        if p.content == super::manifest::Content::Raw {
            return Err(format!(
                "the image's partition {} is raw content from a disk with {}-byte sectors and cannot be translated to {target_ss}-byte sectors; nothing was written",
                p.number, m.sector_size
            ));
        }
    }
    Ok(())
}

pub fn plan(img: &Image, t: &TargetInfo) -> Result<Placement, String> {
    let wants: Vec<Want> = img
        .manifest
        .partitions
        .iter()
        .map(|p| Want { source_number: p.number, size: p.size, min_size: p.min_size, grow: p.grow })
        .collect();
    let p = layout::place(&t.layout, &wants).map_err(|e| format!("{} onto {}: {e}", img.name, t.path.display()))?;
    // Defence in depth: nothing the lay-down writes may touch a kept partition.
    for k in t.layout.parts.iter().filter(|k| k.keep) {
        for (s, l) in p.write_ranges() {
            if s < k.start + k.size && k.start < s + l {
                return Err(format!("internal error: the layout overlaps kept partition {}; nothing was written", k.number));
            }
        }
    }
    Ok(p)
}

/// Describes the plan for the user.
pub fn describe(img: &Image, t: &TargetInfo, p: &Placement) -> Vec<String> {
    let mut v = vec![format!(
        "lay down {} (digest {}) onto {} ({}, {}-byte sectors)",
        img.name,
        img.digest_hex(),
        t.path.display(),
        layout::human(t.layout.disk_bytes),
        t.sector_size
    )];
    for k in t.layout.parts.iter().filter(|k| k.keep) {
        let why = if t.store == Some(k.number) { "store" } else { "kept" };
        v.push(format!("  keep     partition {:>3}  {:>12} at byte {:>12}  ({why})", k.number, layout::human(k.size), k.start));
    }
    for n in &p.removed {
        v.push(format!("  replace  partition {n:>3}"));
    }
    for pl in &p.placed {
        let s = &img.manifest.partitions[pl.image_index];
        v.push(format!(
            "  write    partition {:>3}  {:>12} at byte {:>12}  {} {}{}",
            pl.number,
            layout::human(pl.size),
            pl.start,
            s.fs.as_deref().unwrap_or("raw"),
            s.name,
            if s.grow { " (grows)" } else { "" }
        ));
    }
    v
}

/// Runs the apply. Without `yes` it stops after the plan and writes nothing.
pub fn apply(o: &ApplyOptions, progress: &dyn Progress) -> Result<ApplyReport, String> {
    let mut notes = Vec::new();
    let src = source::open(&o.image, &o.http, progress).map_err(|e| e.to_string())?;
    let remote = src.local_path().is_none();
    // Check the remote image's metadata first: a wrong pin fails before any download.
    let mut img = reader::open(src, &o.trust, &o.http, progress).map_err(|e| e.to_string())?;
    let t = target::read(&o.disk, &o.keep, o.store, &o.expect, img.source.local_path())?;
    sector_check(&img.manifest, t.sector_size)?;
    let placement = plan(&img, &t)?;
    for line in describe(&img, &t, &placement) {
        progress.event(Event::Log(line));
    }
    if !o.yes {
        return Ok(ApplyReport { placement, digest: img.digest_hex(), written: false, bytes_written: 0, notes: vec!["dry run: nothing was written; add --yes to lay the image down".into()] });
    }
    // Staging: download the whole image and verify it before the first write.
    if remote {
        if let Some(dir) = stage::choose(&o.stage, &t, img.header.file_len, &mut notes) {
            let (digest, file_len) = (img.header.digest, img.header.file_len);
            let path = stage::download(img.source.as_mut(), &digest, file_len, &dir, &o.http, progress)?;
            let local = LocalFile::open(&path).map_err(|e| e.to_string())?;
            img = reader::open(Box::new(local), &o.trust, &o.http, progress).map_err(|e| e.to_string())?;
        }
    }
    let workers = o.workers.max(1);
    if img.source.local_path().is_some() {
        let meter = Meter::new(progress, "verifying", img.header.data_end);
        let index = img.index.clone();
        pipeline::run(img.source.as_mut(), &index, 0, Check::Stored, workers, &o.http, progress, &|_, _, _| Ok(()), &mut |_, c| {
            meter.add(u64::from(c.stored_len))
        })
        .map_err(|e| format!("{e}; nothing was written"))?;
    } else {
        notes.push("streaming without staging: each chunk is verified as it arrives".into());
    }
    let patch = table::build(&t, &img.manifest, &placement)?;
    // From here on the target is written.
    let file = OpenOptions::new().read(true).write(true).open(&o.disk).map_err(|e| format!("cannot open {} for writing: {e}; nothing was written", o.disk.display()))?;
    let size_now = file.metadata().map(|m| m.len()).unwrap_or(0);
    if !t.block_device && size_now != t.layout.disk_bytes {
        return Err(format!("{} changed size while being checked; nothing was written", o.disk.display()));
    }
    patch.write_to(&file).map_err(|e| format!("writing the partition table to {}: {e}", o.disk.display()))?;
    let bytes = write_chunks(&mut img, &placement, &file, workers, &o.http, progress)?;
    notes.extend(grow_fixups(&img, &placement, &file)?);
    file.sync_all().map_err(|e| format!("flushing {}: {e}", o.disk.display()))?;
    if o.readback {
        readback(&img, &placement, &file, workers, progress)?;
    }
    notes.extend(check_table(&o.disk, &placement)?);
    if img.manifest.boot.uefi() {
        notes.extend(efi::ensure_fallback(&file, &img.manifest, &placement, t.sector_size)?);
        if o.efi_nvram && t.block_device {
            notes.extend(efi::nvram_entry(&img.manifest, &placement, &t)?);
        }
    }
    file.sync_all().map_err(|e| format!("flushing {}: {e}", o.disk.display()))?;
    Ok(ApplyReport { placement, digest: img.digest_hex(), written: true, bytes_written: bytes, notes })
}

/// Streams and writes every chunk; returns the logical bytes written.
fn write_chunks(img: &mut Image, p: &Placement, file: &File, workers: usize, http: &HttpOptions, progress: &dyn Progress) -> Result<u64, String> {
    let mut base = vec![0u64; img.manifest.partitions.len()];
    for pl in &p.placed {
        base[pl.image_index] = pl.start;
    }
    let meter = Meter::new(progress, "writing", img.logical_bytes());
    let written = AtomicU64::new(0);
    let index = img.index.clone();
    let job = |_: usize, c: &super::format::ChunkRecord, data: &[u8]| -> Result<(), String> {
        let mut at = 0usize;
        let b = base[c.partition as usize];
        for r in index.runs_of(c) {
            let n = r.len as usize;
            file.write_all_at(&data[at..at + n], b + r.offset).map_err(|e| format!("writing {n} bytes at byte {}: {e}", b + r.offset))?;
            at += n;
        }
        written.fetch_add(data.len() as u64, Ordering::Relaxed);
        Ok(())
    };
    pipeline::run(img.source.as_mut(), &index, 0, Check::Full, workers, http, progress, &job, &mut |_, c| meter.add(u64::from(c.logical_len)))
        .map_err(|e| format!("{e}; the target is partly written: run the apply again (it checks the image first)"))?;
    Ok(written.load(Ordering::Relaxed))
}

/// A grown NTFS partition gets a copy of its boot sector in its new last sector too, where
/// `ntfsresize`, `ntfsfix` and Windows look for the backup before the volume is extended.
fn grow_fixups(img: &Image, p: &Placement, file: &File) -> Result<Vec<String>, String> {
    let mut notes = Vec::new();
    for pl in &p.placed {
        let s = &img.manifest.partitions[pl.image_index];
        if s.fs.as_deref() != Some("ntfs") || pl.size == s.size {
            continue;
        }
        let bps = u64::from(s.fs_sector_size.unwrap_or(512));
        let mut boot = vec![0u8; bps as usize];
        file.read_exact_at(&mut boot, pl.start).map_err(|e| format!("reading the NTFS boot sector back: {e}"))?;
        if &boot[3..11] != b"NTFS    " {
            return Err(format!("partition {} does not start with an NTFS boot sector after the lay-down", pl.number));
        }
        file.write_all_at(&boot, pl.start + pl.size - bps).map_err(|e| format!("writing the NTFS backup boot sector: {e}"))?;
        notes.push(format!("partition {}: NTFS boot sector copied to the partition's last sector (the volume grows at first boot)", pl.number));
    }
    Ok(notes)
}

/// Reads every written run back and checks each chunk's logical CRC-32.
fn readback(img: &Image, p: &Placement, file: &File, workers: usize, progress: &dyn Progress) -> Result<(), String> {
    let mut base = vec![0u64; img.manifest.partitions.len()];
    for pl in &p.placed {
        base[pl.image_index] = pl.start;
    }
    let meter = Meter::new(progress, "reading back", img.logical_bytes());
    let next = AtomicU64::new(0);
    let index = &img.index;
    let chunks = &index.chunks;
    let err = std::sync::Mutex::new(None::<String>);
    std::thread::scope(|s| {
        for _ in 0..workers.max(1) {
            s.spawn(|| {
                let mut buf = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    if i >= chunks.len() || err.lock().map(|e| e.is_some()).unwrap_or(true) {
                        return;
                    }
                    let c = &chunks[i];
                    buf.resize(c.logical_len as usize, 0);
                    let b = base[c.partition as usize];
                    let mut at = 0usize;
                    for r in index.runs_of(c) {
                        let n = r.len as usize;
                        if let Err(e) = file.read_exact_at(&mut buf[at..at + n], b + r.offset) {
                            if let Ok(mut x) = err.lock() {
                                x.get_or_insert(format!("reading back byte {}: {e}", b + r.offset));
                            }
                            return;
                        }
                        at += n;
                    }
                    if crc32fast::hash(&buf) != c.logical_crc {
                        if let Ok(mut x) = err.lock() {
                            x.get_or_insert(format!("read-back of chunk {i} differs from what was written: the disk does not keep what it is given; check the disk (SMART) and run the apply again"));
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
fn check_table(disk: &std::path::Path, p: &Placement) -> Result<Vec<String>, String> {
    let inv = crate::inventory::inspect_paths(&[disk.to_path_buf()]);
    let d = inv.disks.first().ok_or_else(|| format!("{}: cannot read the written table back", disk.display()))?;
    for pl in &p.placed {
        let ok = d.partitions.iter().any(|x| x.number == pl.number && x.start_bytes == pl.start && x.size_bytes == pl.size);
        if !ok {
            return Err(format!("{}: partition {} is not in the written table as planned; the table write did not stick", disk.display(), pl.number));
        }
    }
    Ok(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::manifest::*;

    fn manifest(fs: &str, fss: Option<u32>, content: Content) -> Manifest {
        Manifest {
            format: 1,
            created: Creation { unix_time: 0, tool: "t".into(), source: "s".into() },
            table: TableKind::Gpt,
            sector_size: 512,
            boot: BootMode::Uefi,
            disk_guid_policy: GuidPolicy::Fresh,
            disk_guid: None,
            bios_boot_code: None,
            partitions: vec![PartitionSpec {
                number: 1,
                type_id: "0fc63daf-8483-4772-8e79-3d69d8477de4".into(),
                guid_policy: GuidPolicy::Fresh,
                guid: None,
                name: "x".into(),
                size: 1 << 30,
                min_size: 1 << 30,
                fs: Some(fs.into()),
                fs_sector_size: fss,
                attributes: 0,
                grow: true,
                content,
                data_bytes: 0,
                first_chunk: 0,
                chunk_count: 0,
            }],
        }
    }

    #[test]
    fn sector_sizes_translate_only_where_the_filesystem_allows() {
        assert!(sector_check(&manifest("ext4", None, Content::UsedBlocks), 4096).is_ok());
        assert!(sector_check(&manifest("ext4", None, Content::UsedBlocks), 512).is_ok());
        let e = sector_check(&manifest("ntfs", Some(512), Content::UsedBlocks), 4096).unwrap_err();
        assert!(e.contains("cannot be translated") && e.contains("nothing was written"), "{e}");
        assert!(sector_check(&manifest("vfat", Some(512), Content::UsedBlocks), 4096).is_err());
        assert!(sector_check(&manifest("ntfs", Some(4096), Content::UsedBlocks), 4096).is_ok());
        assert!(sector_check(&manifest("raw", None, Content::Raw), 4096).is_err());
    }
}
