//! Looking before writing: open and check the image (digest, pins, signature), read the
//! target (identity, store, mounts), check sector sizes, place the image's partitions, and
//! describe the plan. Nothing is written; the chunk payloads are checked by
//! [`super::lay_down`] (or by [`crate::image::stage`]).

use std::path::PathBuf;

use crate::error::{Error, Result, Written};
use crate::image::layout::{self, LayoutError, Placement, Want};
use crate::image::manifest::{Content, Manifest};
use crate::image::reader::{self, Image, Trust};
use crate::image::target::{self, Expect, TargetInfo};
use crate::net::http::HttpOptions;
use crate::progress::{Cancel, Sink};
use crate::step::Step;

const STEP: Step = Step::LayDown;

/// What to lay down where.
#[derive(Debug, Clone)]
pub struct Request {
    /// A path or an `http://` / `https://` URL.
    pub image: String,
    /// The target disk (block device or disk image file).
    pub disk: PathBuf,
    /// Partitions to leave untouched (the store is always kept).
    pub keep: Vec<u32>,
    /// The store partition's number; `None`: found by its locator.
    pub store: Option<u32>,
    pub trust: Trust,
    pub http: HttpOptions,
    /// Decoder threads.
    pub workers: usize,
    /// What the target must be (wrong-disk protection).
    pub expect: Expect,
    /// Read every written chunk back and check it.
    pub readback: bool,
    /// Add an NVRAM boot entry (only in the PE, on a block device).
    pub efi_nvram: bool,
}

/// A checked image, the target as read, and where the image's partitions go: everything
/// [`super::lay_down`] needs, and what a front end shows before asking to go on.
pub struct Prepared {
    pub request: Request,
    pub image: Image,
    pub target: TargetInfo,
    pub placement: Placement,
    /// The plan in words, one line each (also sent to the sink as log lines).
    pub plan: Vec<String>,
    /// Every stored chunk has been checked already (a staged image).
    pub verified: bool,
    /// Notes for the report (staging decisions, …).
    pub notes: Vec<String>,
}

impl Prepared {
    /// The image is read over the network (not staged).
    pub fn is_remote(&self) -> bool {
        self.image.source.local_path().is_none()
    }
}

/// Opens and checks the image and the target and plans the lay-down. Writes nothing.
pub fn prepare(r: &Request, sink: &dyn Sink, cancel: &Cancel) -> Result<Prepared> {
    let run = || -> Result<Prepared> {
        cancel.check(STEP, Written::Nothing)?;
        let image = reader::open(&r.image, &r.trust, &r.http, sink, cancel)?;
        cancel.check(STEP, Written::Nothing)?;
        let target = target::read(&r.disk, &r.keep, r.store, &r.expect, image.source.local_path())?;
        sector_check(&image.manifest, target.sector_size)?;
        let placement = plan(&image, &target)?;
        let plan = describe(&image, &target, &placement);
        for line in &plan {
            sink.log(line);
        }
        Ok(Prepared { request: r.clone(), image, target, placement, plan, verified: false, notes: Vec::new() })
    };
    run().map_err(|e| crate::image::seen_from(e, STEP, Written::Nothing))
}

/// Whether the image's content can go on a disk with `target_ss`-byte sectors.
pub fn sector_check(m: &Manifest, target_ss: u32) -> Result<()> {
    if m.sector_size == target_ss {
        return Ok(());
    }
    for p in &m.partitions {
        if let Some(fss) = p.fs_sector_size {
            if fss != target_ss {
                return Err(Error::refused(
                    STEP,
                    format!(
                        "the image's partition {} ({}) records {fss}-byte sectors and the target has {target_ss}-byte logical sectors; \
                         it cannot be translated (Windows and firmware would not read it)",
                        p.number,
                        p.fs.as_deref().unwrap_or("raw")
                    ),
                )
                .advice(format!("make the image on a disk with {target_ss}-byte sectors")));
            }
        }
        if p.size % u64::from(target_ss) != 0 || p.min_size % u64::from(target_ss) != 0 {
            return Err(Error::refused(STEP, format!("the image's partition {} is not a whole number of {target_ss}-byte sectors", p.number)));
        }
        if p.content == Content::Raw {
            return Err(Error::refused(
                STEP,
                format!(
                    "the image's partition {} is raw content from a disk with {}-byte sectors and cannot be translated to {target_ss}-byte sectors",
                    p.number, m.sector_size
                ),
            ));
        }
    }
    Ok(())
}

/// Places the image's partitions on the target, outside every kept partition.
pub fn plan(img: &Image, t: &TargetInfo) -> Result<Placement> {
    let wants: Vec<Want> = img
        .manifest
        .partitions
        .iter()
        .map(|p| Want { source_number: p.number, size: p.size, min_size: p.min_size, grow: p.grow })
        .collect();
    let onto = format!("{} onto {}", img.name, t.path.display());
    let shrinkable = img.manifest.partitions.iter().any(|p| p.grow && p.shrunk_from.is_none() && crate::image::resize::resizable(p.fs.as_deref()));
    let p = layout::place(&t.layout, &wants).map_err(|e| match e {
        LayoutError::NoRoom(m) => Error::refused(STEP, format!("{onto}: {m}")).advice(if shrinkable {
            "keep fewer partitions, use a larger disk, or make the image shrinkable, so that its filesystem is stored at its smallest size"
        } else {
            "keep fewer partitions, use a larger disk, or make the image from a reference holding less data"
        }),
        LayoutError::Invalid(m) => Error::refused(STEP, format!("{onto}: {m}")),
    })?;
    // Defence in depth: nothing the lay-down writes may touch a kept partition.
    for k in t.layout.parts.iter().filter(|k| k.keep) {
        for (s, l) in p.write_ranges() {
            if s < k.start + k.size && k.start < s + l {
                return Err(Error::internal(STEP, format!("the layout overlaps kept partition {}", k.number)));
            }
        }
    }
    Ok(p)
}

/// The plan in words.
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
            if s.grow { format!(" ({})", grow_words(s, pl)) } else { String::new() }
        ));
    }
    v
}

/// What happens to the growable partition and its filesystem, in words.
pub fn grow_words(s: &crate::image::manifest::PartitionSpec, pl: &layout::Placed) -> String {
    let fs = s.fs.as_deref().unwrap_or("raw");
    let part = format!("partition {}", pl.change());
    if pl.size <= s.min_size {
        return format!("{part}; {fs} stays at {}", layout::human(s.min_size));
    }
    match crate::image::resize::resizable(s.fs.as_deref()) {
        true => format!("{part}; {fs} grows from {} to fill it", layout::human(s.min_size)),
        false => format!("{part}; {fs} stays at {}", layout::human(s.min_size)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Kind;

    /// A one-partition image of a Linux root of 1 GiB.
    fn manifest(fs: &str, fss: Option<u32>, content: Content) -> Manifest {
        let mut m = crate::image::manifest::sample();
        let p = &mut m.partitions[0];
        (p.type_id, p.size, p.min_size, p.grow) = ("0fc63daf-8483-4772-8e79-3d69d8477de4".into(), 1 << 30, 1 << 30, true);
        (p.fs, p.fs_sector_size, p.content) = (Some(fs.into()), fss, content);
        m
    }

    #[test]
    fn sector_sizes_translate_only_where_the_filesystem_allows() {
        assert!(sector_check(&manifest("ext4", None, Content::UsedBlocks), 4096).is_ok());
        assert!(sector_check(&manifest("ext4", None, Content::UsedBlocks), 512).is_ok());
        let e = sector_check(&manifest("ntfs", Some(512), Content::UsedBlocks), 4096).unwrap_err();
        assert!(e.problem.contains("cannot be translated"), "{e}");
        assert_eq!((e.kind, e.written), (Kind::Refused, Written::Nothing));
        assert!(!e.problem.contains("nothing was written") && !e.problem.contains("--"), "{e}");
        assert!(sector_check(&manifest("vfat", Some(512), Content::UsedBlocks), 4096).is_err());
        assert!(sector_check(&manifest("ntfs", Some(4096), Content::UsedBlocks), 4096).is_ok());
        assert!(sector_check(&manifest("raw", None, Content::Raw), 4096).is_err());
    }
}
