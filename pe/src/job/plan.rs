//! Planning a job, writing nothing: the disk the preset means, the old OS and what of it the
//! rules keep, the store's size and where it goes, the image (checked: digest, pins, that it is
//! a Linux image or a Windows one for Windows sources, that it fits) and where its partitions will lie. Every refusal happens here,
//! before the first write. The same plan is printed by `inplace preset check --disk` and
//! `inplace run --dry-run`, shown by the TUI, and recorded in the journal.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::select as disk_select;
use crate::carve::model::{Layout, Plan as CarvePlan, Request};
use crate::error::{Error, Hint, Result};
use crate::image::layout::{self, Placement, Target, TargetPart, Want};
use crate::image::reader::{self, Image, Trust};
use crate::inventory::{Disk, Inventory, Partition};
use crate::migrate::entry::Why;
use crate::migrate::rules::{self, Family};
use crate::migrate::store::CaptureName;
use crate::migrate::{estimate, select};
use crate::net::http::HttpOptions;
use crate::preset::{Margin, Preset};
use crate::progress::{Cancel, Sink};
use crate::step::Step;
use crate::units::human;

const MIB: u64 = 1 << 20;
/// fatfs cannot hold a file of 4 GiB or more: larger images are streamed, not staged.
const FAT_FILE_MAX: u64 = (4 << 30) - 1;

/// GPT partition types that belong to an installed OS (replaced by default): the ESP,
/// Microsoft reserved, Windows recovery, Linux swap.
const OS_TYPES: [&str; 4] = [
    "c12a7328-f81f-11d2-ba4b-00a0c93ec93b",
    "e3c9e316-0b5c-4db8-817d-f92df00215ae",
    "de94bba4-06d1-4d40-a16a-bfd50179d6ac",
    "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f",
];

/// Where the job runs: the disks it may choose from and what it needs around it. Serialised
/// for the TUI's session (`ui::session`), without the test-only power cut.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Env {
    /// Every disk seen (the PE's scan, or the image files named on a host).
    pub inventory: Inventory,
    /// Where a disk's device is: `dev_dir/NAME` in the PE; `None`: the name is the path.
    pub dev_dir: Option<PathBuf>,
    /// Disks that are never candidates (the boot medium, the stick), by inventory name.
    pub excluded: Vec<String>,
    /// Where a relative image path is looked for, in order (the stick, the boot medium).
    pub image_roots: Vec<PathBuf>,
    /// The static program installed into the new OS as its restore agent.
    pub agent: PathBuf,
    /// The Windows restore agent (`inplace.exe`), staged into a new Windows; `None`: this PE
    /// has none, and Windows images are refused.
    #[serde(default)]
    pub agent_windows: Option<PathBuf>,
    /// Scratch directory for mounts.
    pub work: PathBuf,
    /// No one is there to answer: refuse what needs a person (an unpinned remote image).
    pub unattended: bool,
    pub http: HttpOptions,
    pub workers: usize,
    /// Add an NVRAM boot entry after the lay-down (the PE on UEFI).
    pub efi_nvram: bool,
    /// The PE's preset key (a PE built with one): every image must then be signed, by the key
    /// its preset entry pins or else by this one, and an image so signed counts as pinned.
    #[serde(default)]
    pub preset_key: Option<[u8; 32]>,
    /// Tests: a power cut (the process aborts, nothing flushed) after this many bytes were
    /// written into the store while capturing into this capture.
    #[doc(hidden)]
    #[serde(skip)]
    pub cut_capture: Option<(CaptureName, u64)>,
    /// The preset's collector: the job keeps what it has not sent in the store's journal, and
    /// numbers a resumed job's events after the earlier run's.
    #[serde(skip)]
    pub reporter: Option<std::sync::Arc<crate::report::Reporter>>,
}

impl Env {
    /// The device or image file of inventory disk `name`.
    pub fn path_of(&self, name: &str) -> PathBuf {
        match &self.dev_dir {
            Some(d) => d.join(name),
            None => PathBuf::from(name),
        }
    }
}

/// The image as planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImagePlan {
    /// The path or URL it is read from (a relative preset path resolved).
    pub source: String,
    pub digest: String,
    /// `sha256`, `key`, `sha256 and key`, or `none`.
    pub pinned_by: String,
    pub file_len: u64,
    pub logical_bytes: u64,
    pub remote: bool,
}

/// What the rules leave out, one line a reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeftOut {
    pub why: String,
    pub items: u64,
    pub bytes: u64,
    /// A few examples.
    pub examples: Vec<String>,
}

/// What a source partition is to the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The old OS's own partition: profiles, settings, accounts.
    Os,
    /// A partition beside it holding profiles (`Users\<name>`, or `/home/<name>` of the OS's
    /// accounts): profiles only.
    Data,
}

/// One partition the job captures, into a capture of its own in the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourcePlan {
    /// The partition, with the extent it had before the carve (the capture reads through it).
    pub partition: Partition,
    pub role: Role,
    /// The family of its rules: `windows` or `linux` (for the OS, the OS's family).
    pub family: String,
    /// Its capture in the store.
    pub capture: CaptureName,
    pub users: Vec<String>,
    pub files: u64,
    pub bytes: u64,
    /// Files and bytes of each user's profile (the estimate's), for the TUI's choice of users.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub per_user: Vec<estimate::UserTotal>,
    pub left_out: Vec<LeftOut>,
}

/// The job's plan, as the journal keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "PlanRecord")]
pub struct JobPlan {
    pub preset: Preset,
    pub disk_path: PathBuf,
    /// The old OS's partition, as it was before the carve.
    pub os: Partition,
    /// What the job captures, in capture order: the old OS's partition (unless the preset's
    /// `sources` leaves it out), then the data partitions with profiles by number.
    pub sources: Vec<SourcePlan>,
    /// Bytes asked for the store's FAT32 volume.
    pub store_bytes: u64,
    /// The store has room to hold a copy of the remote image before the lay-down.
    pub stage: bool,
    pub carve: CarvePlan,
    pub image: ImagePlan,
    pub replace: Vec<u32>,
    pub keep: Vec<u32>,
    pub placement: Placement,
    /// After the restore: `keep`, `empty` or `delete`.
    pub store_after: String,
    /// The image's system: `linux`, or `windows` (profiles staged for the Windows agent).
    pub new_os: String,
}

impl JobPlan {
    pub fn store_number(&self) -> u32 {
        self.carve.store.number
    }

    /// Files and bytes over every source.
    pub fn totals(&self) -> (u64, u64) {
        self.sources.iter().fold((0, 0), |(f, b), s| (f + s.files, b + s.bytes))
    }
}

/// A journal's plan as written: this version's, or one written before a job had several
/// sources (its one source, the old OS, in `source`, `family`, `users`, …), which reads as
/// that one source captured into `capture/`.
#[derive(Deserialize)]
struct PlanRecord {
    preset: Preset,
    disk_path: PathBuf,
    #[serde(default)]
    os: Option<Partition>,
    #[serde(default)]
    sources: Vec<SourcePlan>,
    #[serde(default)]
    source: Option<Partition>,
    #[serde(default)]
    family: String,
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    files: u64,
    #[serde(default)]
    bytes: u64,
    #[serde(default)]
    left_out: Vec<LeftOut>,
    store_bytes: u64,
    stage: bool,
    carve: CarvePlan,
    image: ImagePlan,
    replace: Vec<u32>,
    keep: Vec<u32>,
    placement: Placement,
    store_after: String,
    #[serde(default = "linux")]
    new_os: String,
}

fn linux() -> String {
    "linux".into()
}

impl From<PlanRecord> for JobPlan {
    fn from(r: PlanRecord) -> JobPlan {
        let mut sources = r.sources;
        if sources.is_empty() {
            if let Some(p) = r.source.clone() {
                sources.push(SourcePlan {
                    partition: p,
                    role: Role::Os,
                    family: r.family,
                    capture: CaptureName::FIRST,
                    users: r.users,
                    files: r.files,
                    bytes: r.bytes,
                    per_user: Vec::new(),
                    left_out: r.left_out,
                });
            }
        }
        let os = r.os.or(r.source).or_else(|| sources.iter().find(|s| s.role == Role::Os).map(|s| s.partition.clone()));
        JobPlan {
            preset: r.preset,
            disk_path: r.disk_path,
            os: os.unwrap_or_default(),
            sources,
            store_bytes: r.store_bytes,
            stage: r.stage,
            carve: r.carve,
            image: r.image,
            replace: r.replace,
            keep: r.keep,
            placement: r.placement,
            store_after: r.store_after,
            new_os: r.new_os,
        }
    }
}

/// A plan, the disk it is for, and the plan in words.
#[derive(Debug, Clone)]
pub struct Planned {
    pub disk: Disk,
    pub plan: JobPlan,
    pub lines: Vec<String>,
}

fn refused(problem: impl Into<String>) -> Error {
    Error::refused(Step::Plan, problem)
}

/// Plans the job `preset` asks for in `env`. Writes nothing; reads the disks, the old OS's
/// files' metadata and the image's metadata.
pub fn plan(preset: &Preset, env: &Env, sink: &dyn Sink, cancel: &Cancel) -> Result<Planned> {
    let image_spec = preset.image.as_ref().ok_or_else(|| {
        refused(format!("preset {:?} names no image", preset.name)).hint(Hint::FixPreset).advice("add an [image] table with source and sha256 or key")
    })?;
    // A PE's preset key pins every image it takes (see `open_image`).
    if env.unattended && image_spec.is_remote() && !image_spec.pinned() && env.preset_key.is_none() {
        return Err(refused(format!(
            "the image {} is downloaded but neither its sha256 nor a signing key is given, and no one is there to confirm it",
            image_spec.source
        ))
        .hint(Hint::PinImage)
        .hint(Hint::FixPreset));
    }
    let disk = disk_select::select(&env.inventory.disks, &env.excluded, &preset.disk)?.clone();
    sink.log(&format!("disk: {}", disk_select::describe(&disk)));
    let disk_path = env.path_of(&disk.name);
    for f in &disk.findings {
        if f.severity == crate::inventory::Severity::Error && !f.subject.contains("/partition") {
            return Err(refused(format!("{}: {}", f.subject, f.message)));
        }
    }
    refuse_whole_disk(&disk)?;
    let os = os_partition(&disk)?;
    refuse_locked(&disk)?;
    let replace = match &preset.replace {
        Some(r) => r.clone(),
        None => default_replace(&disk, &os),
    };
    for n in &replace {
        if !disk.partitions.iter().any(|p| p.number == *n) {
            return Err(refused(format!("the preset's replace names partition {n}, which {} does not have", disk.name)).hint(Hint::FixPreset));
        }
    }
    if !replace.contains(&os.number) {
        return Err(refused(format!(
            "the old OS is on partition {}, which the preset's replace list ({}) leaves in place; the new image must take it",
            os.number,
            list(&replace)
        ))
        .hint(Hint::FixPreset));
    }

    // What to keep of the old OS and of the partitions beside it.
    cancel.check(Step::Plan, crate::error::Written::Nothing)?;
    let found = sources(&disk, &disk_path, &os, &preset.migrate, sink, cancel)?;
    let store_bytes: u64 = found.iter().map(|f| f.store_bytes).sum();
    let sources: Vec<SourcePlan> = found.into_iter().map(|f| f.plan).collect();

    // The image, checked before anything is written.
    let image = open_image(image_spec, env, sink, cancel)?;
    let new_os = new_os(&image, &sources, preset, env)?;
    if let Some(w) = image.not_generalized() {
        sink.warn(&w);
    }
    let margin = preset.store.margin.as_deref().map(Margin::parse).transpose().map_err(|e| refused(e.to_string()))?.unwrap_or(Margin::DEFAULT);
    let capture_bytes = margin.apply(store_bytes).div_ceil(MIB) * MIB;
    let want_stage = image.remote && image.file_len <= FAT_FILE_MAX;
    let read = crate::carve::prepare::ReadOptions::default();
    let (carve, stage) = {
        let with_image = (capture_bytes + image.file_len + 16 * MIB).div_ceil(MIB) * MIB;
        let staged = want_stage
            .then(|| crate::carve::prepare(&disk_path, &Request { store_bytes: with_image, replace: replace.clone() }, read).ok())
            .flatten();
        match staged {
            Some(p) => (p, true),
            None => (
                crate::carve::prepare(&disk_path, &Request { store_bytes: capture_bytes, replace: replace.clone() }, read)
                    .map_err(|e| in_preset_terms(e.in_step(Step::Plan), capture_bytes, margin))?,
                false,
            ),
        }
    };
    let carve = carve.plan;
    let keep: Vec<u32> = disk.partitions.iter().map(|p| p.number).filter(|n| !replace.contains(n)).collect();
    let placement = fit(&image.manifest_wants, &carve.after, &replace, carve.store.number).map_err(|e| {
        refused(format!(
            "the image {} does not fit {} beside the store and the kept partitions: {e}",
            image.plan.source, disk.name
        ))
        .advice("use a smaller image, or replace more partitions")
    })?;
    let store_after = preset
        .store
        .after
        .clone()
        .or_else(|| preset.restore.cleanup.clone())
        .unwrap_or_else(|| "keep".into());
    if let (Some(a), Some(b)) = (&preset.store.after, &preset.restore.cleanup) {
        if a != b {
            return Err(refused(format!("the preset says store.after = {a:?} and restore.cleanup = {b:?}; give one of them")).hint(Hint::FixPreset));
        }
    }
    let plan = JobPlan {
        preset: preset.clone(),
        disk_path,
        os,
        sources,
        store_bytes: carve.fs_bytes,
        stage,
        carve,
        image: image.plan,
        replace,
        keep,
        placement,
        store_after,
        new_os,
    };
    let lines = describe(&disk, &plan);
    Ok(Planned { disk, plan, lines })
}

/// What a job would capture from the disk `preset` means in `env`, without the image: each
/// source with its users and their estimate (the TUI's choice of users). Writes nothing.
pub fn survey(preset: &Preset, env: &Env, sink: &dyn Sink, cancel: &Cancel) -> Result<Vec<SourcePlan>> {
    let disk = disk_select::select(&env.inventory.disks, &env.excluded, &preset.disk)?.clone();
    let os = os_partition(&disk)?;
    refuse_locked(&disk)?;
    let found = sources(&disk, &env.path_of(&disk.name), &os, &preset.migrate, sink, cancel)?;
    Ok(found.into_iter().map(|f| f.plan).collect())
}

/// A job's store is sized from the capture estimate and the preset's margin, not given: the
/// carve planner's advice on the size becomes advice on those.
fn in_preset_terms(mut e: Error, asked: u64, margin: Margin) -> Error {
    let mut hints = Vec::new();
    for h in std::mem::take(&mut e.hints) {
        match h {
            Hint::StoreSize => {}
            Hint::SmallerStore { max_bytes } => hints.push(Hint::Advice {
                text: format!(
                    "the store can be at most {} here and the capture needs {} with the margin{}: lower the preset's [store] margin, or leave data out with [migrate] rules",
                    human(max_bytes),
                    human(asked),
                    match margin {
                        Margin::Percent(p) => format!(" of {p}%"),
                        Margin::Bytes(b) => format!(" of {}", human(b)),
                    }
                ),
            }),
            other => hints.push(other),
        }
    }
    for h in hints {
        e = e.hint(h);
    }
    e
}

/// The one partition holding an OS.
fn os_partition(disk: &Disk) -> Result<Partition> {
    let oses: Vec<&Partition> = disk.partitions.iter().filter(|p| p.os.is_some()).collect();
    match oses.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(refused(format!("{} holds no installed OS that inplace recognises, so there is nothing to migrate", disk.name))),
        many => Err(refused(format!(
            "{} holds {} installed OSes (partitions {}); inplace migrates a disk with one OS",
            disk.name,
            many.len(),
            list(&many.iter().map(|p| p.number).collect::<Vec<_>>())
        ))),
    }
}

/// A source found, with the store bytes its capture needs.
struct Found {
    plan: SourcePlan,
    store_bytes: u64,
}

/// GPT types and filesystems a data partition with profiles can have: not one of the OS's
/// own partitions, and a filesystem inplace reads (`ntfs`, `vfat`: Windows profiles under
/// `Users\`; `ext2/3/4`: Linux homes).
fn data_family(p: &Partition) -> Option<Family> {
    if OS_TYPES.contains(&p.part_type.to_ascii_lowercase().as_str()) {
        return None;
    }
    match p.fs.as_deref()? {
        "ntfs" | "vfat" => Some(Family::Windows),
        "ext2" | "ext3" | "ext4" => Some(Family::Linux),
        _ => None,
    }
}

/// The partitions the job captures, each selected with the rules for what is on it and
/// estimated: the old OS's, and every data partition whose profiles the rules select (or
/// exactly those the preset's `sources` names). The OS comes first, then the others by
/// number; they get the store's captures in that order.
fn sources(disk: &Disk, disk_path: &Path, os: &Partition, migrate: &rules::Overrides, sink: &dyn Sink, cancel: &Cancel) -> Result<Vec<Found>> {
    let named = migrate.sources.clone();
    if let Some(n) = named.as_ref().and_then(|v| v.iter().find(|n| !disk.partitions.iter().any(|p| p.number == **n))) {
        return Err(refused(format!("the preset's sources name partition {n}, which {} does not have", disk.name)).hint(Hint::FixPreset));
    }
    let wanted = |n: u32| named.as_ref().is_none_or(|v| v.contains(&n));
    let subject = |n: u32| format!("{}/partition {n}", disk.name);
    let open = |p: &Partition| crate::migrate::source::open_partition(disk_path, p, &subject(p.number)).map_err(|e| e.in_step(Step::Plan));
    let os_family = os.os.as_ref().map(|o| o.family.clone()).unwrap_or_default();
    let mut os_src = open(os)?;
    let mut out = Vec::new();
    let mut capture = 1;
    let mut found_users: Vec<(String, Family)> = Vec::new();
    if wanted(os.number) {
        let rules = rules::effective(None, Some(&os_family), migrate).map_err(|e| e.in_step(Step::Plan))?;
        let reader = os_src.reader.as_mut();
        let sel = select::select_as(reader, &rules, select::Role::Os, sink, cancel).map_err(|e| e.in_step(Step::Plan))?;
        let est = estimate::estimate(reader, &sel, sink, cancel).map_err(|e| e.in_step(Step::Plan))?;
        found_users.extend(sel.users.iter().map(|u| (u.name.clone(), rules.family)));
        out.push(found(os.clone(), Role::Os, &os_family, capture, &sel, &est));
        capture += 1;
    } else {
        sink.log(&format!("{}: the old OS's partition is not captured: the preset's sources leave it out", subject(os.number)));
    }
    let linux_os = os_family == "linux";
    for p in disk.partitions.iter().filter(|p| p.number != os.number && wanted(p.number)) {
        cancel.check(Step::Plan, crate::error::Written::Nothing)?;
        let asked = named.is_some();
        let Some(family) = data_family(p) else {
            if asked {
                return Err(refused(format!(
                    "the preset's sources name partition {} of {} ({}), which holds no filesystem with profiles inplace can read",
                    p.number,
                    disk.name,
                    p.fs.as_deref().unwrap_or("no filesystem recognised")
                ))
                .hint(Hint::FixPreset));
            }
            continue;
        };
        if let Some(f) = disk.findings.iter().find(|f| f.subject == subject(p.number) && f.severity == crate::inventory::Severity::Error) {
            let problem = format!("{}: {}", f.subject, f.message);
            if asked {
                return Err(refused(problem).hint(Hint::FixPreset));
            }
            sink.warn(&format!("{problem}; it is kept as it is and its files are not migrated"));
            continue;
        }
        let mut src = match open(p) {
            Ok(s) => s,
            Err(e) if !asked => {
                sink.warn(&format!("{e}; it is kept as it is and its files are not migrated"));
                continue;
            }
            Err(e) => return Err(e),
        };
        let rules = rules::effective_for(family, migrate).map_err(|e| e.in_step(Step::Plan))?;
        let accounts: Option<&mut dyn crate::fs::FsReader> =
            if family == Family::Linux && linux_os { Some(os_src.reader.as_mut()) } else { None };
        let reader = src.reader.as_mut();
        let sel = select::select_as(reader, &rules, select::Role::Data { accounts }, sink, cancel).map_err(|e| e.in_step(Step::Plan))?;
        if sel.users.is_empty() {
            if asked {
                return Err(refused(format!(
                    "the preset's sources name partition {} of {} ({}), but it holds no profile the {} rules select ({})",
                    p.number,
                    disk.name,
                    p.fs.as_deref().unwrap_or("-"),
                    family.name(),
                    match family {
                        Family::Windows => "no Users\\<name> folder with files to keep",
                        Family::Linux => "no /home/<name> of the old OS's accounts with files to keep",
                    }
                ))
                .hint(Hint::FixPreset));
            }
            continue;
        }
        let est = estimate::estimate(reader, &sel, sink, cancel).map_err(|e| e.in_step(Step::Plan))?;
        found_users.extend(sel.users.iter().map(|u| (u.name.clone(), family)));
        sink.log(&format!(
            "{}: {} profile(s) to migrate ({}), with the {} rules",
            subject(p.number),
            sel.users.len(),
            sel.users.iter().map(|u| u.name.as_str()).collect::<Vec<_>>().join(", "),
            family.name()
        ));
        out.push(found(p.clone(), Role::Data, family.name(), capture, &sel, &est));
        capture += 1;
    }
    // A user the preset names must have a profile on some source.
    for name in &migrate.users {
        let same = |(u, f): &(String, Family)| if *f == Family::Windows { u.eq_ignore_ascii_case(name) } else { u == name };
        if !found_users.iter().any(same) {
            let all: Vec<&str> = found_users.iter().map(|(u, _)| u.as_str()).collect();
            return Err(refused(format!(
                "user {name:?} is named in the preset but has no profile on any partition captured (profiles found: {})",
                if all.is_empty() { "none".to_string() } else { all.join(", ") }
            ))
            .hint(Hint::FixPreset));
        }
    }
    if out.is_empty() {
        return Err(refused(format!("nothing on {} is to be captured", disk.name)).hint(Hint::FixPreset));
    }
    Ok(out)
}

fn found(partition: Partition, role: Role, family: &str, capture: u32, sel: &select::Selection, est: &estimate::Estimate) -> Found {
    Found {
        plan: SourcePlan {
            partition,
            role,
            family: family.to_string(),
            capture: CaptureName::nth(capture).unwrap_or(CaptureName::FIRST),
            users: sel.users.iter().map(|u| u.name.clone()).collect(),
            files: est.files,
            bytes: est.bytes,
            per_user: est.users.clone(),
            left_out: left_out(&sel.skipped),
        },
        store_bytes: est.store_bytes,
    }
}

/// BitLocker and LUKS cannot be read without their keys, and an encrypted partition would be
/// replaced with its data unread: refuse.
/// A disk without a partition table is one filesystem: no partition for the image to take,
/// no room beside it for the store.
fn refuse_whole_disk(disk: &Disk) -> Result<()> {
    match disk.partitions.iter().find(|p| p.is_whole_disk()) {
        Some(p) => Err(refused(format!(
            "{} has no partition table: the whole disk is one {} filesystem (a superfloppy), so there is \
             no partition for the image to replace and no room beside it to carve the store",
            disk.name,
            p.fs.as_deref().unwrap_or("unknown")
        ))
        .advice("copy its files elsewhere and partition the disk, or name another disk in the preset's [disk] table")),
        None => Ok(()),
    }
}

fn refuse_locked(disk: &Disk) -> Result<()> {
    match disk.partitions.iter().find_map(|p| super::select::encryption(p).map(|what| (p, what))) {
        Some((p, what)) => Err(refused(format!("partition {} of {} is encrypted with {what}; inplace cannot read it", p.number, disk.name))
            .advice(super::select::decrypt_advice(what))),
        None => Ok(()),
    }
}

/// The old OS's partitions: its own, the ESP, MSR, recovery and swap; data partitions stay.
fn default_replace(disk: &Disk, source: &Partition) -> Vec<u32> {
    let mut v: Vec<u32> = disk
        .partitions
        .iter()
        .filter(|p| p.number == source.number || OS_TYPES.contains(&p.part_type.to_ascii_lowercase().as_str()) || p.fs.as_deref() == Some("swap"))
        .map(|p| p.number)
        .collect();
    v.sort_unstable();
    v
}

struct OpenedImage {
    plan: ImagePlan,
    manifest_wants: Vec<Want>,
    family: Option<&'static str>,
    /// The sysprep markers of its Windows partition.
    sysprep: Option<crate::os::sysprep::Sysprep>,
    remote: bool,
    file_len: u64,
}

impl OpenedImage {
    /// The warning a Windows image that was not generalized deserves.
    fn not_generalized(&self) -> Option<String> {
        let s = self.sysprep.as_ref().filter(|_| self.family == Some("windows"))?;
        (!s.generalized()).then(|| {
            format!(
                "the image {} holds a Windows that was not generalized (sysprep /generalize /oobe{}): every machine gets the same SID and computer name, and setup may not run SetupComplete.cmd",
                self.plan.source,
                match (&s.image_state, s.succeeded_tag) {
                    (Some(state), _) => format!("; its image state is {state}"),
                    (None, false) => "; no Sysprep_succeeded.tag".into(),
                    (None, true) => String::new(),
                }
            )
        })
    }
}

fn open_image(spec: &crate::preset::ImageSpec, env: &Env, sink: &dyn Sink, cancel: &Cancel) -> Result<OpenedImage> {
    let source = resolve(&spec.source, &env.image_roots)?;
    let pin = |hex: &Option<String>| hex.as_deref().and_then(crate::image::format::unhex::<32>);
    let trust = Trust { pin_sha256: pin(&spec.sha256), pin_key: pin(&spec.key) };
    let img = reader::open(&source, &trust, &env.http, sink, cancel).map_err(|e| e.in_step(Step::Plan))?;
    // The preset's key pin, when it gives one, was checked by the reader; else the PE's key.
    let by_pe_key = spec.key.is_none() && env.preset_key.is_some();
    if let (true, Some(key)) = (by_pe_key, &env.preset_key) {
        signed_by_preset_key(&img, &source, key)?;
    }
    let pinned_by = match (&spec.sha256, &spec.key, by_pe_key) {
        (Some(_), Some(_), _) => "sha256 and key",
        (Some(_), None, true) => "sha256 and the PE's preset key",
        (Some(_), None, false) => "sha256",
        (None, Some(_), _) => "key",
        (None, None, true) => "the PE's preset key",
        (None, None, false) => "none",
    };
    let remote = img.source.local_path().is_none();
    let plan = ImagePlan {
        source,
        digest: img.digest_hex(),
        pinned_by: pinned_by.into(),
        file_len: img.header.file_len,
        logical_bytes: img.logical_bytes(),
        remote,
    };
    let sysprep = img.manifest.partitions.iter().find_map(|p| p.sysprep.clone());
    Ok(OpenedImage { manifest_wants: wants(&img), family: image_family(&img), sysprep, remote, file_len: img.header.file_len, plan })
}

/// A PE built with a preset key lays down only images signed with it (when the preset pins no
/// key of its own): an unsigned image, or one signed by another key, is refused here.
fn signed_by_preset_key(img: &Image, source: &str, key: &[u8; 32]) -> Result<()> {
    use crate::image::format::hex;
    let problem = match img.signed_by {
        Some(k) if &k == key => return Ok(()),
        Some(k) => format!("the image {source} is signed by key {}, not by this PE's preset key {}", hex(&k), hex(key)),
        None => format!("the image {source} is not signed, and this PE, built with a preset key, lays down only images signed with it"),
    };
    Err(refused(problem).hint(Hint::SignImage))
}

/// A relative path is looked for under each root in turn; URLs and absolute paths are used as
/// they are.
fn resolve(spec: &str, roots: &[PathBuf]) -> Result<String> {
    if spec.contains("://") || Path::new(spec).is_absolute() {
        if !spec.contains("://") && !Path::new(spec).exists() {
            return Err(refused(format!("the image {spec} does not exist")).hint(Hint::FixPreset));
        }
        return Ok(spec.to_string());
    }
    for r in roots {
        let p = r.join(spec);
        if p.exists() {
            return Ok(p.display().to_string());
        }
    }
    let looked: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
    Err(refused(format!(
        "the image {spec} is not on {}",
        if looked.is_empty() { "any medium (no stick or boot medium is mounted)".to_string() } else { looked.join(" nor ") }
    ))
    .hint(Hint::FixPreset))
}

fn wants(img: &Image) -> Vec<Want> {
    img.manifest.partitions.iter().map(|p| Want { source_number: p.number, size: p.size, min_size: p.min_size, grow: p.grow }).collect()
}

/// `linux` when the image holds a Linux filesystem, `windows` when it holds NTFS and none.
fn image_family(img: &Image) -> Option<&'static str> {
    let fs: Vec<&str> = img.manifest.partitions.iter().filter_map(|p| p.fs.as_deref()).collect();
    if fs.iter().any(|f| matches!(*f, "ext2" | "ext3" | "ext4" | "btrfs" | "xfs")) {
        Some("linux")
    } else if fs.contains(&"ntfs") {
        Some("windows")
    } else {
        None
    }
}

/// The new OS's family, refusing what cannot be handed off: a Linux image takes any source; a
/// Windows image takes Windows profiles, when this PE has the Windows agent.
fn new_os(img: &OpenedImage, sources: &[SourcePlan], preset: &Preset, env: &Env) -> Result<String> {
    match img.family {
        Some("linux") => Ok("linux".into()),
        Some("windows") => {
            if let Some(s) = sources.iter().find(|s| s.family != "windows") {
                return Err(refused(format!(
                    "the image {} holds Windows, and partition {} holds a {} system: its files can only be restored onto Linux",
                    img.plan.source, s.partition.number, s.family
                ))
                .advice("use a Linux image, or leave that partition out of the preset's sources"));
            }
            match &env.agent_windows {
                Some(a) if a.is_file() => {}
                _ => {
                    return Err(refused(format!(
                        "the image {} holds Windows, and this inplace has no Windows restore agent (inplace.exe) to stage into it",
                        img.plan.source
                    ))
                    .hint(Hint::WindowsAgent));
                }
            }
            if preset.restore.create_users == Some(true) && preset.restore.initial_password.as_deref().unwrap_or("").is_empty() {
                return Err(refused("the preset creates the missing Windows accounts (restore.create_users) but gives no restore.initial_password".to_string())
                    .hint(Hint::FixPreset)
                    .advice("add restore.initial_password (each user must change it at the first logon), or set create_users = false"));
            }
            if let Some(pw) = &preset.restore.initial_password {
                if crate::handoff::windows::setup_complete::quoted(pw).is_none() {
                    return Err(refused("restore.initial_password holds a double quote or a control character, which a setup script cannot carry".to_string()).hint(Hint::FixPreset));
                }
            }
            Ok("windows".into())
        }
        _ => Err(refused(format!("the image {} holds no Linux root filesystem and no Windows to hand the restore off to", img.plan.source))),
    }
}

/// Where the image's partitions go on the disk as it will be after the carve: every partition
/// not replaced, and the store, stay.
fn fit(wants: &[Want], after: &Layout, replace: &[u32], store: u32) -> std::result::Result<Placement, String> {
    let t = Target {
        sector_size: after.sector_size,
        disk_bytes: after.disk_bytes,
        usable_start: after.usable_start,
        usable_end: after.usable_end,
        slots: after.slots,
        parts: after
            .parts
            .iter()
            .map(|p| TargetPart { number: p.number, start: p.start, size: p.size, keep: p.number == store || !replace.contains(&p.number) })
            .collect(),
    };
    layout::place(&t, wants).map_err(|e| e.to_string())
}

fn left_out(skipped: &[crate::migrate::entry::Skipped]) -> Vec<LeftOut> {
    let mut groups: Vec<LeftOut> = Vec::new();
    for s in skipped {
        let why = match &s.why {
            Why::Excluded { rule } => format!("excluded by the rule {rule}"),
            Why::OverCap { cap } => format!("over the size cap of {}", human(*cap)),
            Why::Unreadable { .. } => "unreadable".to_string(),
            Why::NotCarried { detail } => format!("not carried: {}", detail.split(':').next().unwrap_or(detail)),
        };
        let g = match groups.iter_mut().position(|g| g.why == why) {
            Some(i) => &mut groups[i],
            None => {
                groups.push(LeftOut { why, items: 0, bytes: 0, examples: Vec::new() });
                groups.last_mut().unwrap_or_else(|| unreachable!())
            }
        };
        g.items += 1;
        g.bytes += s.size;
        if g.examples.len() < 3 {
            g.examples.push(s.source.to_string());
        }
    }
    groups
}

fn list(v: &[u32]) -> String {
    v.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
}

/// The plan in words, one line each.
pub fn describe(disk: &Disk, p: &JobPlan) -> Vec<String> {
    let mut v = vec![format!("job {:?} on {}", p.preset.name, disk_select::describe(disk))];
    for s in &p.sources {
        let what = match (s.role, s.partition.os.as_ref()) {
            (Role::Os, Some(os)) => os.name.clone(),
            (Role::Os, None) => "the old OS".to_string(),
            (Role::Data, _) => format!("data partition{}, {} rules", s.partition.label.as_deref().map(|l| format!(" {l:?}")).unwrap_or_default(), s.family),
        };
        v.push(format!(
            "capture: partition {} ({}, {what}) into {}/, users {}: {} files, {}",
            s.partition.number,
            s.partition.fs.as_deref().unwrap_or("?"),
            s.capture,
            if s.users.is_empty() { "none".to_string() } else { s.users.join(", ") },
            s.files,
            human(s.bytes)
        ));
        for l in &s.left_out {
            v.push(format!("  left out: {} item(s), {}, {}: {}", l.items, human(l.bytes), l.why, l.examples.join(", ")));
        }
    }
    if !p.sources.iter().any(|s| s.partition.number == p.os.number) {
        v.push(format!("not captured: partition {} (the old OS): the preset's sources leave it out", p.os.number));
    }
    v.push(format!(
        "store: {} for {}{} — {}",
        human(p.store_bytes),
        match p.sources.len() {
            1 => "the capture".to_string(),
            n => format!("{n} captures"),
        },
        if p.stage { " and a copy of the image" } else { "" },
        match p.carve.strategy {
            crate::carve::model::Strategy::Unallocated => "in unallocated space".to_string(),
            crate::carve::model::Strategy::FreeTail { number } => format!("from the free tail of partition {number}, no data moves"),
        }
    ));
    v.push(format!(
        "image: {} ({}, digest {}, pinned by {}), {} to write{}",
        p.image.source,
        human(p.image.file_len),
        &p.image.digest[..16.min(p.image.digest.len())],
        p.image.pinned_by,
        human(p.image.logical_bytes),
        if p.image.remote && !p.stage { ", streamed" } else { "" }
    ));
    v.push(format!("replace: partition(s) {}; keep: {}", list(&p.replace), if p.keep.is_empty() { "none".into() } else { list(&p.keep) }));
    v.push("partitions after the lay-down:".into());
    let mut rows: Vec<(u64, String)> = Vec::new();
    for pl in &p.placement.placed {
        let change = if pl.source_size > 0 { format!(" ({})", pl.change()) } else { String::new() };
        rows.push((pl.start, format!("  {:>3}  {:>12} at byte {:>12}  new OS{change}", pl.number, human(pl.size), pl.start)));
    }
    let s = &p.carve.store;
    rows.push((s.start, format!("  {:>3}  {:>12} at byte {:>12}  store (INPLACE)", s.number, human(s.size), s.start)));
    for n in &p.keep {
        if let Some(part) = disk.partitions.iter().find(|x| x.number == *n) {
            rows.push((part.start_bytes, format!("  {:>3}  {:>12} at byte {:>12}  kept ({})", n, human(part.size_bytes), part.start_bytes, part.fs.as_deref().unwrap_or("-"))));
        }
    }
    rows.sort();
    v.extend(rows.into_iter().map(|r| r.1));
    if p.new_os == "windows" {
        v.push("hand-off: the profiles are staged into the new C:\\ProgramData\\inplace\\staged; each user's files move into their profile at their first logon".into());
    }
    v.push(format!("then: the new OS restores on its first boot; the store is then {}", match p.store_after.as_str() {
        "delete" => "deleted and the OS partition grown into its space",
        "empty" => "emptied and kept as extra space",
        _ => "kept as it is",
    }));
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::carve::model::{Layout, Part, Request, Role as PartRole, Scheme};

    const MIB: u64 = 1 << 20;

    fn partition(number: u32, start: u64, size: u64, fs: &str) -> Partition {
        Partition { number, start_bytes: start, size_bytes: size, fs: Some(fs.into()), ..Partition::default() }
    }

    fn source(p: Partition, role: Role, family: &str, capture: u32, users: &[&str]) -> SourcePlan {
        SourcePlan {
            partition: p,
            role,
            family: family.into(),
            capture: CaptureName::nth(capture).unwrap(),
            users: users.iter().map(|u| u.to_string()).collect(),
            files: 3,
            bytes: 300,
            per_user: Vec::new(),
            left_out: vec![LeftOut { why: "excluded by the rule .cache/**".into(), items: 1, bytes: 9, examples: vec!["/home/alice/.cache".into()] }],
        }
    }

    /// A plan for a disk of an ESP, the OS (ext4) and a data partition (NTFS).
    fn job_plan() -> JobPlan {
        let part = |number, start, size, fs: &str| Part { number, start, size, role: PartRole::Primary, ebr: None, fs: Some(fs.into()) };
        let layout = Layout {
            scheme: Scheme::Gpt,
            sector_size: 512,
            disk_bytes: 4096 * MIB,
            usable_start: 34 * 512,
            usable_end: 4096 * MIB - 33 * 512,
            slots: 128,
            parts: vec![part(1, MIB, 256 * MIB, "vfat"), part(2, 257 * MIB, 2048 * MIB, "ext4"), part(3, 3000 * MIB, 1000 * MIB, "ntfs")],
        };
        let carve = crate::carve::plan::plan(&layout, &[], &Request { store_bytes: 100 * MIB, replace: vec![1, 2] }).unwrap();
        let os = Partition { os: Some(crate::inventory::Os { family: "linux".into(), name: "Debian".into(), version: None, users: vec!["alice".into()], ..Default::default() }), ..partition(2, 257 * MIB, 2048 * MIB, "ext4") };
        JobPlan {
            preset: Preset { name: "lab".into(), ..Preset::default() },
            disk_path: "/dev/vda".into(),
            os: os.clone(),
            sources: vec![
                source(os, Role::Os, "linux", 1, &["alice"]),
                source(partition(3, 3000 * MIB, 1000 * MIB, "ntfs"), Role::Data, "windows", 2, &["Carol"]),
            ],
            store_bytes: carve.fs_bytes,
            stage: false,
            carve,
            image: ImagePlan { source: "/img".into(), digest: "ab".repeat(32), pinned_by: "sha256".into(), file_len: 1, logical_bytes: 1, remote: false },
            replace: vec![1, 2],
            keep: vec![3],
            placement: Placement { placed: Vec::new(), kept: vec![3], removed: Vec::new() },
            store_after: "keep".into(),
            new_os: "linux".into(),
        }
    }

    #[test]
    fn the_journal_keeps_every_source_and_reads_a_plan_of_one_source_from_before() {
        let plan = job_plan();
        let v = serde_json::to_value(&plan).unwrap();
        assert_eq!(v["sources"][1]["capture"], "capture.2");
        assert_eq!(v["sources"][1]["role"], "data");
        assert_eq!(serde_json::from_value::<JobPlan>(v.clone()).unwrap(), plan);
        assert_eq!(plan.totals(), (6, 600));

        // As a journal written before a job had several sources has it.
        let mut old = v.clone();
        let o = old.as_object_mut().unwrap();
        let first = o["sources"][0].clone();
        o.remove("sources");
        o.remove("os");
        o.insert("source".into(), first["partition"].clone());
        for k in ["family", "users", "files", "bytes", "left_out"] {
            o.insert(k.into(), first[k].clone());
        }
        let back: JobPlan = serde_json::from_value(old).unwrap();
        assert_eq!(back.sources, plan.sources[..1]);
        assert_eq!(back.os, plan.os);
        assert_eq!((back.carve, back.placement, back.keep), (plan.carve.clone(), plan.placement.clone(), plan.keep.clone()));
    }

    #[test]
    fn the_plan_in_words_has_a_line_for_each_source() {
        let plan = job_plan();
        let disk = Disk { name: "/dev/vda".into(), size_bytes: 4096 * MIB, partitions: vec![plan.os.clone()], ..Disk::default() };
        let lines = describe(&disk, &plan);
        let captures: Vec<&String> = lines.iter().filter(|l| l.starts_with("capture:")).collect();
        assert_eq!(captures.len(), 2, "{lines:#?}");
        assert!(captures[0].contains("partition 2 (ext4, Debian) into capture/, users alice"), "{lines:#?}");
        assert!(captures[1].contains("partition 3 (ntfs, data partition, windows rules) into capture.2/, users Carol"), "{lines:#?}");
        assert!(lines.iter().any(|l| l.contains("for 2 captures")), "{lines:#?}");
        let mut os_left_out = plan.clone();
        os_left_out.sources.remove(0);
        let lines = describe(&disk, &os_left_out);
        assert!(lines.iter().any(|l| l.contains("not captured: partition 2 (the old OS)")), "{lines:#?}");
    }
}
