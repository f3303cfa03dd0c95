//! The carve planner's input and output: a disk layout in bytes, what each filesystem says is
//! free at its tail, the request, and the plan (or the refusal) that comes out.
//!
//! Nothing here touches a disk. [`super::layout`] builds a [`Layout`] from a real table and
//! [`super::usage`] builds the [`TailFree`] list from real allocation data.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Hint};
use crate::step::Step as JobStep;

pub const KIB: u64 = 1 << 10;
pub const MIB: u64 = 1 << 20;
pub const GIB: u64 = 1 << 30;

/// Every partition the planner creates or shrinks starts and ends on this boundary (the one
/// the locator scan looks at), and the store keeps this much at its end for the saved table
/// and the tail copy of the locator (see `docs/store-format.md`).
pub use crate::locator::{ALIGN, STORE_TAIL};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    Gpt,
    Mbr,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Gpt => "gpt",
            Scheme::Mbr => "mbr",
        }
    }
}

/// What kind of entry a partition is. Every GPT entry is `Primary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Primary,
    /// An MBR extended partition: a container for logical partitions, not content.
    Extended,
    /// An MBR logical partition, inside the extended partition, described by an EBR.
    Logical,
}

/// One partition, in bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    /// As the kernel numbers it (`sda3` is 3; logical partitions from 5).
    pub number: u32,
    pub start: u64,
    pub size: u64,
    pub role: Role,
    /// For a logical partition: the byte offset of the EBR that describes it.
    pub ebr: Option<u64>,
    /// Detected filesystem, for display.
    pub fs: Option<String>,
}

impl Part {
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.size)
    }
}

/// A disk's partition table as the planner sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    pub scheme: Scheme,
    pub sector_size: u32,
    pub disk_bytes: u64,
    /// The first byte a partition may use (GPT: first usable LBA; MBR: 1 MiB).
    pub usable_start: u64,
    /// One past the last byte a partition may use (GPT: last usable LBA + 1, which keeps the
    /// backup GPT out of reach; MBR: the disk end or the 2^32-sector limit).
    pub usable_end: u64,
    /// GPT: entries in the partition array; MBR: 4 primary slots.
    pub slots: u32,
    pub parts: Vec<Part>,
}

impl Layout {
    pub fn part(&self, number: u32) -> Option<&Part> {
        self.parts.iter().find(|p| p.number == number)
    }

    pub fn extended(&self) -> Option<&Part> {
        self.parts.iter().find(|p| p.role == Role::Extended)
    }

    /// Logical partitions in kernel (chain) order.
    pub fn logicals(&self) -> Vec<&Part> {
        let mut l: Vec<&Part> = self.parts.iter().filter(|p| p.role == Role::Logical).collect();
        l.sort_by_key(|p| p.number);
        l
    }
}

/// What a filesystem's allocation data says about the end of its partition: bytes
/// `start .. end` (offsets inside the partition) are free. `end` is the partition size unless
/// something the filesystem needs sits after the free run (the NTFS backup boot sector).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TailFree {
    pub number: u32,
    pub fs: String,
    pub start: u64,
    pub end: u64,
}

/// What the user asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Bytes the store's FAT32 volume must hold at least.
    pub store_bytes: u64,
    /// Partitions the new image will replace: only these may give up their free tail.
    pub replace: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Strategy {
    /// (a) unallocated space.
    Unallocated,
    /// (b) the free tail of a partition that the new image replaces; its entry is shrunk and
    /// no data moves.
    FreeTail { number: u32 },
}

/// One change to the partition table, in the order the apply step makes them (all of them
/// land in one table write).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// Shrink the entry of partition `number` (replaced by the image) to `to_size` bytes; its
    /// filesystem keeps its original extent for the capture, whose tail is free from
    /// `free_from` on.
    ShrinkEntry { number: u32, from_size: u64, to_size: u64, free_from: u64 },
    /// Grow the MBR extended partition (a container only; no data).
    GrowExtended { number: u32, from_size: u64, to_size: u64 },
    /// Add the store partition.
    AddPartition { number: u32, start: u64, size: u64, role: Role, ebr: Option<u64> },
}

/// Where the store goes and how it gets there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub strategy: Strategy,
    /// The store partition as it will be in the table.
    pub store: Part,
    /// Bytes asked for.
    pub requested: u64,
    /// Bytes the FAT32 volume gets (the partition minus [`STORE_TAIL`]).
    pub fs_bytes: u64,
    pub steps: Vec<Step>,
    /// Partitions replaced by the image, with their size before any shrink: the capture reads
    /// them through these original extents.
    pub original_extents: Vec<Part>,
    pub before: Layout,
    pub after: Layout,
    /// Things worth telling the user (e.g. the size was rounded up).
    pub notes: Vec<String>,
}

/// Why no store can be carved, with the numbers and what the user can do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// Bytes the store partition needs (the request plus alignment and the tail area).
    pub needed: u64,
    /// The largest store partition the planner could have made; 0 if none at all.
    pub best: u64,
    pub reasons: Vec<String>,
    /// What the user can do, each once.
    pub hints: Vec<Hint>,
}

/// The sizes and the reasons; the hints are the front end's to word.
impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot carve a store partition of {} on this disk; the largest that fits is {}",
            human(self.needed),
            human(self.best)
        )?;
        for r in &self.reasons {
            write!(f, "\n  - {r}")?;
        }
        Ok(())
    }
}

/// Why the planner made no plan: the input itself is wrong, or no store fits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "error", content = "detail", rename_all = "snake_case")]
pub enum PlanError {
    #[error("{problem}")]
    BadInput { problem: String, hints: Vec<Hint> },
    #[error("{0}")]
    Refused(Refusal),
}

impl PlanError {
    pub fn bad(problem: impl Into<String>) -> PlanError {
        PlanError::BadInput { problem: problem.into(), hints: Vec::new() }
    }

    pub fn hints(&self) -> &[Hint] {
        match self {
            PlanError::BadInput { hints, .. } => hints,
            PlanError::Refused(r) => &r.hints,
        }
    }

    /// The engine's error about `disk`: refused, nothing written, with the hints.
    pub fn into_error(self, disk: &str) -> Error {
        let hints = self.hints().to_vec();
        hints.into_iter().fold(Error::refused(JobStep::Plan, format!("{disk}: {self}")), Error::hint)
    }
}

pub use crate::units::human;

pub fn align_up(v: u64, a: u64) -> Option<u64> {
    v.checked_add(a - 1).map(|x| x / a * a)
}

pub fn align_down(v: u64, a: u64) -> u64 {
    v / a * a
}

/// The smallest store partition that holds a FAT32 volume (65,525 clusters of one sector, plus
/// FATs and reserved sectors) and the tail area, rounded to [`ALIGN`].
pub fn min_store_partition(sector_size: u32) -> u64 {
    let ss = u64::from(sector_size.max(512));
    let data = 65_600 * ss;
    let fats = 2 * (65_600u64 * 4).div_ceil(ss) * ss;
    align_up(data + fats + 64 * ss, ALIGN).unwrap_or(u64::MAX) + STORE_TAIL
}
