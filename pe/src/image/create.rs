//! `image create`: a disk (or disk image) → an image file. Per partition, only the blocks its
//! filesystem marks used (raw for unknown filesystems), cut into chunks, compressed in
//! parallel, written in order, then the manifest, the index, the header and an optional
//! signature. The output appears under its name only when complete.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Mutex};

use ed25519_dalek::{Signer, SigningKey};
use sha2::{Digest, Sha256};

use super::resize;
use super::shrink;
use super::format::{self, ChunkRecord, Header, Index, Run, SignatureBlock, DATA_OFFSET, RUN_ALIGN};
use super::manifest::{BootMode, Content, Creation, GuidPolicy, Manifest, PartitionSpec, TableKind, FORMAT};
use crate::disk::device::{Device, SharedDisk};
use crate::error::{Error, Result, Written};
use crate::progress::{Cancel, Meter, Sink};
use crate::step::Step;
use crate::disk::gpt_read;
use crate::inventory::probe::{self, Identity};
use crate::fs::alloc;
use crate::fs::range::RangeReader;

pub const ESP_TYPE: &str = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b";
pub const BIOS_BOOT_TYPE: &str = "21686148-6449-6e6f-744e-656564454649";
/// Neighbouring used ranges closer than this are stored as one (copying a small free gap is
/// cheaper than another run).
pub const MERGE_GAP: u64 = 64 * 1024;
const STEP: Step = Step::Image;

#[derive(Debug, Clone)]
pub struct CreateOptions {
    pub from: PathBuf,
    /// Source partition numbers; empty = all.
    pub partitions: Vec<u32>,
    pub out: PathBuf,
    pub chunk_size: u32,
    pub level: i32,
    pub workers: usize,
    /// Source number of the partition that grows; `None` = the largest non-ESP partition.
    pub grow: Option<u32>,
    /// Keep the partition and disk GUIDs instead of making fresh ones at lay-down.
    pub pin_guids: bool,
    /// Store the growable filesystem shrunk to its minimum (a copy, made beside `out`), so the
    /// image fits disks smaller than the reference; the lay-down grows it again.
    pub shrinkable: bool,
    /// An ed25519 secret key (32 bytes) to sign with.
    pub sign_key: Option<[u8; 32]>,
}

#[derive(Debug, Clone)]
pub struct CreateReport {
    pub digest: [u8; 32],
    pub manifest: Manifest,
    pub stored_bytes: u64,
    pub logical_bytes: u64,
    pub chunks: u64,
    pub notes: Vec<String>,
}

/// One chunk to make: partition index, runs (partition-relative), and where the partition
/// starts in `src` (the reference disk, or a shrunk copy of the partition).
struct Plan {
    src: SharedDisk,
    part: u32,
    base: u64,
    runs: Vec<Run>,
    len: u64,
}

/// A raw GPT entry, decoded.
struct GptEntry {
    type_guid: uuid::Uuid,
    guid: uuid::Uuid,
    attributes: u64,
}

fn gpt_entries(disk: &SharedDisk, ss: u32, from: &str) -> Result<(uuid::Uuid, BTreeMap<u32, GptEntry>)> {
    let t = crate::disk::write::gpt::load(disk, ss, false).map_err(|e| Error::refused(STEP, format!("{from}: {e}")))?;
    let mut m = BTreeMap::new();
    for (i, e) in t.entries.chunks_exact(128).enumerate() {
        if e[..16].iter().all(|b| *b == 0) {
            continue;
        }
        let g = |a: usize| {
            let mut b = [0u8; 16];
            b.copy_from_slice(&e[a..a + 16]);
            uuid::Uuid::from_bytes_le(b)
        };
        let mut attr = [0u8; 8];
        attr.copy_from_slice(&e[48..56]);
        m.insert(i as u32 + 1, GptEntry { type_guid: g(0), guid: g(16), attributes: u64::from_le_bytes(attr) });
    }
    Ok((t.primary.disk_guid, m))
}

fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Makes the image. Errors name the input. A cancelled or failed run leaves no file behind.
pub fn create(o: &CreateOptions, sink: &dyn Sink, cancel: &Cancel) -> Result<CreateReport> {
    if !o.chunk_size.is_power_of_two() || !(format::MIN_CHUNK..=format::MAX_CHUNK).contains(&o.chunk_size) {
        return Err(Error::refused(STEP, format!("chunk size {} must be a power of two between 64 KiB and 64 MiB", o.chunk_size)));
    }
    let from = o.from.display().to_string();
    let dev = Device::open(&o.from).map_err(|e| Error::io(STEP, e.to_string()))?;
    let ss = dev.geometry().map(|g| g.logical_sector_size);
    let disk: SharedDisk = Arc::new(dev);
    let ss = ss.unwrap_or_else(|| gpt_read::detect_sector_size(&disk));
    let inv = probe::probe(disk.clone(), Identity { name: from.clone(), logical_sector_size: Some(ss), transport: "file".into(), ..Identity::default() });
    match inv.table.as_deref() {
        Some("gpt") => {}
        Some(t) => return Err(Error::refused(STEP, format!("{from}: its partition table is {t}; this version of inplace makes images of GPT disks only"))),
        None => return Err(Error::refused(STEP, format!("{from}: no partition table found")).advice("give a whole disk (or disk image) with a GPT")),
    }
    let (disk_guid, entries) = gpt_entries(&disk, ss, &from)?;
    let selected: Vec<&crate::inventory::Partition> = if o.partitions.is_empty() {
        inv.partitions.iter().collect()
    } else {
        let mut v = Vec::new();
        for n in &o.partitions {
            v.push(inv.partitions.iter().find(|p| p.number == *n).ok_or_else(|| {
                Error::refused(STEP, format!("{from} has no partition {n} (it has {:?})", inv.partitions.iter().map(|p| p.number).collect::<Vec<_>>()))
            })?);
        }
        v.sort_by_key(|p| p.start_bytes);
        v
    };
    if selected.is_empty() {
        return Err(Error::refused(STEP, format!("{from} has no partitions to image")));
    }
    let grow = o.grow.or_else(|| {
        selected
            .iter()
            .filter(|p| entries.get(&p.number).is_some_and(|e| e.type_guid.to_string() != ESP_TYPE && e.type_guid.to_string() != BIOS_BOOT_TYPE))
            .filter(|p| p.fs.is_some())
            .max_by_key(|p| p.size_bytes)
            .map(|p| p.number)
    });
    if let Some(g) = o.grow {
        if !selected.iter().any(|p| p.number == g) {
            return Err(Error::refused(STEP, format!("partition {g}, named to grow, is not among the partitions imaged")));
        }
    }
    let mut notes = Vec::new();
    let mut plans: Vec<Plan> = Vec::new();
    // Shrunk copies, removed when `create` returns.
    let mut shrunk = shrink::Scratch::default();
    let mut specs = Vec::new();
    let cs = u64::from(o.chunk_size);
    for (pi, p) in selected.iter().enumerate() {
        cancel.check(STEP, Written::Nothing)?;
        let e = entries.get(&p.number).ok_or_else(|| Error::damaged(STEP, format!("{from}: partition {} has no GPT entry", p.number)))?;
        let mut r = RangeReader::new(disk.clone(), p.start_bytes, p.size_bytes);
        let (mut src, mut base, mut shrunk_from) = (disk.clone(), p.start_bytes, None);
        let (content, ranges, min_size, fs_ss) = match p.fs.as_deref() {
            Some(fs @ ("ext2" | "ext3" | "ext4" | "ntfs" | "vfat")) => {
                let what = format!("{from} partition {} ({fs})", p.number);
                let mut m = alloc::used(fs, &mut r, MERGE_GAP).map_err(|e| Error::refused(STEP, format!("{what}: {e}")))?;
                if o.shrinkable && Some(p.number) == grow && resize::resizable(Some(fs)) {
                    cancel.check(STEP, Written::Nothing)?;
                    let original = shrink::Original { disk: &disk, start: p.start_bytes, size: p.size_bytes, fs, used: &m.ranges, what: &what };
                    let copy = shrink::shrunk_copy(&original, &o.out, sink)?;
                    shrunk_from = Some(m.fs_bytes);
                    let mut r = RangeReader::new(copy.disk.clone(), 0, p.size_bytes);
                    m = alloc::used(fs, &mut r, MERGE_GAP).map_err(|e| Error::refused(STEP, format!("{what}: the shrunk copy: {e}")))?;
                    (src, base) = (copy.disk, 0);
                    shrunk.keep(copy.path);
                }
                let min = m.fs_bytes.div_ceil(u64::from(ss)) * u64::from(ss);
                (Content::UsedBlocks, m.ranges, min.min(p.size_bytes).max(u64::from(ss)), m.fs_sector_size)
            }
            other => {
                notes.push(format!(
                    "partition {}: {} — copied raw (every byte)",
                    p.number,
                    other.map_or("no filesystem recognised".to_string(), |f| format!("no allocation reader for {f}"))
                ));
                (Content::Raw, vec![(0, p.size_bytes)], p.size_bytes, None)
            }
        };
        let first_chunk = plans.len() as u64;
        let mut data = 0u64;
        let fresh = || Plan { src: src.clone(), part: pi as u32, base, runs: Vec::new(), len: 0 };
        let mut cur = fresh();
        for (s, l) in ranges {
            let s0 = s / RUN_ALIGN * RUN_ALIGN;
            let e0 = (s + l).div_ceil(RUN_ALIGN).saturating_mul(RUN_ALIGN).min(p.size_bytes);
            let mut at = s0;
            while at < e0 {
                let take = (e0 - at).min(cs - cur.len);
                cur.runs.push(Run { offset: at, len: take });
                cur.len += take;
                at += take;
                data += take;
                if cur.len == cs {
                    plans.push(std::mem::replace(&mut cur, fresh()));
                }
            }
        }
        if cur.len > 0 {
            plans.push(cur);
        }
        specs.push(PartitionSpec {
            number: p.number,
            type_id: e.type_guid.to_string(),
            guid_policy: if o.pin_guids { GuidPolicy::Pinned } else { GuidPolicy::Fresh },
            guid: o.pin_guids.then(|| e.guid.to_string()),
            name: p.name.clone().unwrap_or_default(),
            size: p.size_bytes,
            min_size: if Some(p.number) == grow { min_size } else { p.size_bytes },
            shrunk_from,
            fs: p.fs.clone(),
            fs_sector_size: fs_ss,
            attributes: e.attributes,
            grow: Some(p.number) == grow,
            content,
            data_bytes: data,
            first_chunk,
            chunk_count: plans.len() as u64 - first_chunk,
            sysprep: p.os.as_ref().filter(|os| os.family == "windows").map(|os| os.sysprep.clone().unwrap_or_default()),
        });
    }
    let mut sector0 = [0u8; 512];
    disk.read_exact_at(0, &mut sector0).map_err(|e| Error::io(STEP, format!("{from}: {e}")))?;
    let uefi = specs.iter().any(|s| s.type_id == ESP_TYPE);
    let bios = specs.iter().any(|s| s.type_id == BIOS_BOOT_TYPE) || sector0[..440].iter().any(|b| *b != 0);
    let mut manifest = Manifest {
        format: FORMAT,
        created: Creation { unix_time: now_unix(), tool: format!("inplace {}", env!("CARGO_PKG_VERSION")), source: from.clone() },
        table: TableKind::Gpt,
        sector_size: ss,
        boot: match (uefi, bios) {
            (true, true) => BootMode::Both,
            (true, false) => BootMode::Uefi,
            (false, true) => BootMode::Bios,
            _ => BootMode::None,
        },
        disk_guid_policy: if o.pin_guids { GuidPolicy::Pinned } else { GuidPolicy::Fresh },
        disk_guid: o.pin_guids.then(|| disk_guid.to_string()),
        bios_boot_code: None,
        partitions: specs,
    };
    if bios {
        let mut code = [0u8; 440];
        code.copy_from_slice(&sector0[..440]);
        manifest.set_bios_code(&code);
    }
    let logical: u64 = plans.iter().map(|p| p.len).sum();
    let tmp = o.out.with_extension("partial");
    let out = OpenOptions::new().create(true).write(true).truncate(true).read(true).open(&tmp).map_err(|e| {
        Error::refused(STEP, format!("cannot create {}: {e}", tmp.display())).advice("check that the directory exists and that you may write there")
    })?;
    let result = write_image(&plans, &out, o, &mut manifest, sink, cancel).and_then(|r| {
        std::fs::rename(&tmp, &o.out).map_err(|e| Error::io(STEP, format!("renaming {} to {}: {e}", tmp.display(), o.out.display())))?;
        Ok(r)
    });
    match result {
        Ok((digest, stored, chunks)) => Ok(CreateReport { digest, manifest, stored_bytes: stored, logical_bytes: logical, chunks, notes }),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Compresses `plans` in parallel and writes payloads in order, then the tail and the header.
fn write_image(
    plans: &[Plan],
    out: &File,
    o: &CreateOptions,
    manifest: &mut Manifest,
    sink: &dyn Sink,
    cancel: &Cancel,
) -> Result<([u8; 32], u64, u64)> {
    let meter = Meter::start(sink, "reading and compressing", plans.iter().map(|p| p.len).sum());
    let workers = o.workers.max(1);
    let outname = o.out.display().to_string();
    let werr = |e: std::io::Error| Error::io(STEP, format!("writing {outname}: {e}"));
    let (tx, rx) = sync_channel::<(usize, Vec<u8>)>(workers * 2);
    let rx = Arc::new(Mutex::new(rx));
    let (rtx, rrx) = sync_channel::<Result<(usize, Vec<u8>, u32, u32)>>(workers * 2);
    let mut records: Vec<ChunkRecord> = Vec::with_capacity(plans.len());
    let mut runs: Vec<Run> = Vec::new();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let from = o.from.display().to_string();
    let res: Result<u64> = std::thread::scope(|s| {
        for _ in 0..workers {
            let rx = rx.clone();
            let rtx = rtx.clone();
            let level = o.level;
            let stop = &stop;
            s.spawn(move || {
                let mut c = match zstd::bulk::Compressor::new(level) {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = rtx.send(Err(Error::internal(STEP, format!("cannot start zstd: {e}"))));
                        return;
                    }
                };
                loop {
                    let next = rx.lock().ok().and_then(|r| r.recv().ok());
                    let Some((i, data)) = next else { return };
                    if stop.load(std::sync::atomic::Ordering::Relaxed) || cancel.is_cancelled() {
                        continue;
                    }
                    let lcrc = crc32fast::hash(&data);
                    let r = c.compress(&data).map(|z| (i, z, lcrc, data.len() as u32)).map_err(|e| Error::internal(STEP, format!("zstd: {e}")));
                    if rtx.send(r).is_err() {
                        return;
                    }
                }
            });
        }
        drop(rtx);
        let stop_r = &stop;
        let from_r = &from;
        let reader = s.spawn(move || -> Result<()> {
            for (i, p) in plans.iter().enumerate() {
                if stop_r.load(std::sync::atomic::Ordering::Relaxed) {
                    return Ok(());
                }
                cancel.check(STEP, Written::Nothing)?;
                let mut buf = vec![0u8; p.len as usize];
                let mut at = 0usize;
                for r in &p.runs {
                    let n = r.len as usize;
                    p.src.read_exact_at(p.base + r.offset, &mut buf[at..at + n]).map_err(|e| Error::io(STEP, format!("{from_r}: {e}")))?;
                    at += n;
                }
                if tx.send((i, buf)).is_err() {
                    return Ok(());
                }
            }
            Ok(())
        });
        let mut w = BufWriter::with_capacity(1 << 20, out);
        let mut pending: BTreeMap<usize, (Vec<u8>, u32, u32)> = BTreeMap::new();
        let mut next = 0usize;
        let mut offset = DATA_OFFSET;
        let mut err = None;
        // The header area is written last; start the payloads at DATA_OFFSET.
        if let Err(e) = w.write_all(&vec![0u8; DATA_OFFSET as usize]) {
            err = Some(werr(e));
        }
        for r in rrx {
            match r {
                Ok((i, z, lcrc, llen)) if err.is_none() => {
                    pending.insert(i, (z, lcrc, llen));
                    while let Some((z, lcrc, llen)) = pending.remove(&next) {
                        let p = &plans[next];
                        let stored_len = match u32::try_from(z.len()) {
                            Ok(v) => v,
                            Err(_) => {
                                err = Some(Error::internal(STEP, "a compressed chunk is over 4 GiB"));
                                break;
                            }
                        };
                        records.push(ChunkRecord {
                            partition: p.part,
                            run_count: p.runs.len() as u32,
                            first_run: runs.len() as u64,
                            stored_offset: offset,
                            stored_len,
                            logical_len: llen,
                            stored_crc: crc32fast::hash(&z),
                            logical_crc: lcrc,
                            stored_sha256: Sha256::digest(&z).into(),
                        });
                        runs.extend_from_slice(&p.runs);
                        if let Err(e) = w.write_all(&z) {
                            err = Some(werr(e));
                            break;
                        }
                        offset += z.len() as u64;
                        meter.add(u64::from(llen));
                        next += 1;
                    }
                    if err.is_some() {
                        stop.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    stop.store(true, std::sync::atomic::Ordering::Relaxed);
                    err.get_or_insert(e);
                }
            }
        }
        let read = reader.join().unwrap_or_else(|_| Err(Error::internal(STEP, "the reader thread panicked")));
        if let Some(e) = err {
            return Err(e);
        }
        read?;
        if next != plans.len() {
            cancel.check(STEP, Written::Nothing)?;
            return Err(Error::internal(STEP, format!("only {next} of {} chunks were made", plans.len())));
        }
        w.flush().map_err(werr)?;
        Ok(offset)
    });
    let data_end = res?;
    let index = Index { chunks: records, runs }.encode();
    let mbytes = manifest.encode();
    let chunk_count = plans.len() as u64;
    let mut h = Header {
        chunk_size: o.chunk_size,
        manifest_offset: data_end,
        manifest_len: mbytes.len() as u64,
        index_offset: data_end + mbytes.len() as u64,
        index_len: index.len() as u64,
        chunk_count,
        run_count: (index.len() as u64 - chunk_count * format::CHUNK_RECORD_LEN as u64) / format::RUN_RECORD_LEN as u64,
        data_end,
        file_len: data_end + mbytes.len() as u64 + index.len() as u64,
        digest: [0; 32],
        sig_offset: 0,
        sig_len: 0,
    };
    if o.sign_key.is_some() {
        h.sig_offset = h.file_len;
        h.sig_len = format::SIG_LEN as u64;
        h.file_len += h.sig_len;
    }
    h.digest = h.compute_digest(&mbytes, &index);
    out.write_all_at(&mbytes, h.manifest_offset).map_err(werr)?;
    out.write_all_at(&index, h.index_offset).map_err(werr)?;
    if let Some(seed) = o.sign_key {
        let key = SigningKey::from_bytes(&seed);
        let sig = key.sign(&format::signed_message(&h.digest));
        let block = SignatureBlock { public_key: key.verifying_key().to_bytes(), signature: sig.to_bytes() };
        out.write_all_at(&block.encode(), h.sig_offset).map_err(werr)?;
    }
    out.write_all_at(&h.encode(), 0).map_err(werr)?;
    out.set_len(h.file_len).map_err(werr)?;
    out.sync_all().map_err(werr)?;
    Ok((h.digest, h.file_len, chunk_count))
}

/// `N` random bytes from the kernel.
pub fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .map_err(|e| Error::io(STEP, format!("reading /dev/urandom: {e}")))?;
    Ok(b)
}

/// Makes a signing key: writes the secret key to `out` (64 hex digits, mode 0600; an existing
/// file is not overwritten) and returns the public key.
pub fn keygen(out: &Path, sink: &dyn Sink, cancel: &Cancel) -> Result<[u8; 32]> {
    let seed = random_bytes::<32>()?;
    let public = SigningKey::from_bytes(&seed).verifying_key().to_bytes();
    cancel.check(STEP, Written::Nothing)?;
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Error::refused(STEP, format!("{} exists; not overwriting a key", out.display())),
            _ => Error::io(STEP, format!("cannot create {}: {e}", out.display())),
        })?;
    f.write_all(format!("{}\n", format::hex(&seed)).as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::io(STEP, format!("writing {}: {e}", out.display())))?;
    sink.log(&format!("wrote the secret key to {}", out.display()));
    Ok(public)
}

/// Reads a secret key file (64 hex digits, as [`keygen`] writes).
pub fn read_key(path: &Path) -> Result<[u8; 32]> {
    read_hex_key(path, "a secret key")
}

/// Reads a public key file: the 64 hex digits [`keygen`] prints, as a file. The key must be a
/// usable ed25519 key (not a weak one that any signature could match).
pub fn read_public_key(path: &Path) -> Result<[u8; 32]> {
    let key = read_hex_key(path, "a public key")?;
    match ed25519_dalek::VerifyingKey::from_bytes(&key) {
        Ok(k) if !k.is_weak() => Ok(key),
        _ => Err(Error::refused(STEP, format!("{}: not a usable ed25519 public key", path.display()))),
    }
}

/// 64 hex digits (and white space around them) in the file `path`.
fn read_hex_key(path: &Path, what: &str) -> Result<[u8; 32]> {
    let s = std::fs::read_to_string(path).map_err(|e| Error::refused(STEP, format!("cannot read key {}: {e}", path.display())))?;
    let t = s.trim();
    t.bytes()
        .all(|b| b.is_ascii_hexdigit())
        .then(|| format::unhex::<32>(t))
        .flatten()
        .ok_or_else(|| Error::refused(STEP, format!("{}: not {what} (64 hex digits)", path.display())))
}
