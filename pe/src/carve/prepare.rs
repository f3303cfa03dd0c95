//! Looking before writing: a disk read into the planner's terms, and the plan made from it.
//! Nothing here writes; [`super::apply::carve`] takes the plan.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::layout::{self, DiskState};
use super::model::{Plan, Request};
use super::plan;
use crate::disk::device::{Device, SharedDisk};
use crate::error::{Error, Result};
use crate::step::Step;

/// How to read the disk.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOptions {
    /// The logical sector size of an image file (`None`: detected from the GPT, else 512).
    pub sector_size: Option<u32>,
    /// Accept a damaged GPT copy, to be rebuilt from the good one when carving.
    pub repair_gpt: bool,
}

/// A plan and what it was made from.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub disk: PathBuf,
    pub state: DiskState,
    pub plan: Plan,
}

/// Reads the disk at `disk` (read-only) into the planner's terms.
pub fn read(disk: &Path, opts: ReadOptions) -> Result<DiskState> {
    let dev: SharedDisk = Arc::new(Device::open(disk).map_err(|e| Error::io(Step::Plan, e.to_string()))?);
    layout::read(&dev, &disk.display().to_string(), opts.sector_size, opts.repair_gpt)
}

/// Reads the disk and plans the store `req` asks for; a refusal is an error with its hints.
pub fn prepare(disk: &Path, req: &Request, opts: ReadOptions) -> Result<Prepared> {
    let state = read(disk, opts)?;
    let plan = plan::plan(&state.layout, &state.tails, req).map_err(|e| e.into_error(&disk.display().to_string()))?;
    Ok(Prepared { disk: disk.to_owned(), state, plan })
}
