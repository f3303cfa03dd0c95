//! `inplace.action=unattended`: the job the preset describes, with no questions: an unfinished
//! job on a disk is resumed first; a new one writes only when the preset says
//! `confirm = false`. A preset that names no image is a survey: inventory and report only.

use std::path::{Path, PathBuf};

use super::firmware::Firmware;
use super::medium::{parent_disk, Media};
use crate::error::{Error, Hint};
use crate::inventory::Inventory;
use crate::job::plan::Env;
use crate::job::run::{self, Outcome};
use crate::net::http::HttpOptions;
use crate::preset::Preset;
use crate::progress::{Cancel, Sink};
use crate::step::Step;

/// The job's surroundings in the PE.
pub fn env(inventory: &Inventory, media: &Media, roots: &[Option<PathBuf>], firmware: &Firmware) -> Env {
    let sys = Path::new("/sys");
    let name = |p: &Path| p.file_name().map(|n| parent_disk(sys, &n.to_string_lossy())).unwrap_or_default();
    let excluded: Vec<String> = media.boot.iter().chain(media.config.iter()).map(|p| name(p)).collect();
    Env {
        inventory: inventory.clone(),
        dev_dir: Some(PathBuf::from("/dev")),
        excluded,
        image_roots: roots.iter().flatten().cloned().collect(),
        agent: std::env::current_exe().unwrap_or_else(|_| "/init".into()),
        agent_windows: Some(PathBuf::from(crate::handoff::windows::AGENT_IN_PE)).filter(|p| p.is_file()),
        work: PathBuf::from("/run/inplace"),
        unattended: true,
        http: HttpOptions::default(),
        workers: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        efi_nvram: firmware.uefi,
        preset_key: preset_key(),
        cut_capture: None,
        reporter: None,
    }
}

/// The key this PE was built with, when it was. A key file that cannot be read stops the boot
/// before this is asked (`init`); should it be asked anyway, an all-zero key stands in, which
/// no image's signature verifies against, so every image is refused rather than any accepted.
fn preset_key() -> Option<[u8; 32]> {
    super::preset_fetch::baked_key(Path::new(super::preset_fetch::KEY_IN_PE)).unwrap_or(Some([0; 32]))
}

/// Runs (or resumes) the job; `None` when the preset names no image and no job is unfinished.
pub fn run(preset: &Preset, env: &Env, sink: &dyn Sink) -> Result<Option<Outcome>, Error> {
    let cancel = Cancel::new();
    if let Some((path, _)) = run::unfinished(env)? {
        return run::resume(&path, env, sink, &cancel).map(Some);
    }
    if preset.image.is_none() {
        return Ok(None);
    }
    if preset.confirm != Some(false) {
        return Err(Error::refused(Step::Plan, format!("preset {:?} does not say confirm = false, so an unattended run writes nothing", preset.name))
            .hint(Hint::FixPreset)
            .advice("set confirm = false in the preset for unattended runs, or boot the interactive entry"));
    }
    run::run(preset, env, sink, &cancel).map(Some)
}
