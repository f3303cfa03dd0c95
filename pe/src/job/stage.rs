//! Staging: a remote image is copied whole into the store (its FAT32 volume mounted through
//! the kernel) and every chunk checked there, before the lay-down begins; the lay-down then
//! reads that copy, so a network that fails later cannot leave the disk half written. The plan
//! decides whether there is room (and the image is under FAT32's 4 GiB limit); otherwise the
//! lay-down streams the image and checks each chunk as it arrives.

use std::path::PathBuf;

use super::find::Record;
use super::plan::Env;
use crate::disk::attach::Attached;
use crate::disk::mount::Mounted;
use crate::error::{Error, Result, Written};
use crate::progress::{Cancel, Sink};
use crate::step::Step;

/// The folder of the store that holds staged images.
pub const DIR: &str = "images";

/// The store's FAT32 volume, mounted for as long as this lives.
pub struct StoreMount {
    mounted: Mounted,
}

impl StoreMount {
    pub fn open(j: &Record, env: &Env, step: Step) -> Result<StoreMount> {
        let s = &j.plan.carve.store;
        let fail = |m: std::io::Error| Error::io(step, format!("mounting the store: {m}")).written(Written::StoreOnly);
        let device = Attached::partition(&j.plan.disk_path, s.number, s.start, s.size).map_err(fail)?;
        // The store was written through the whole disk's node since this one may have cached
        // it: the kernel's FAT driver must read it from the device.
        if let Ok(f) = std::fs::File::open(&device.node) {
            crate::disk::attach::drop_cached(&f);
        }
        let mounted = Mounted::new(device, "vfat", &env.work, "store").map_err(fail)?;
        Ok(StoreMount { mounted })
    }

    /// Where the staged copy of the job's image is (or goes).
    pub fn image_path(&self, j: &Record) -> PathBuf {
        let digest = &j.plan.image.digest;
        self.mounted.dir.join(DIR).join(format!("{}.img", &digest[..16.min(digest.len())]))
    }

    pub fn images_dir(&self) -> PathBuf {
        self.mounted.dir.join(DIR)
    }

    pub fn finish(self) -> Result<()> {
        self.mounted.finish().map_err(|e| Error::io(Step::Stage, e.to_string()))
    }
}

/// The stage step: downloads and checks the image into the store, when the plan made room.
pub fn stage(j: &Record, env: &Env, sink: &dyn Sink, cancel: &Cancel) -> Result<u64> {
    if !j.plan.image.remote {
        return Ok(0);
    }
    if !j.plan.stage {
        sink.log("the image is streamed during the lay-down, each chunk checked as it arrives (the store has no room for a copy)");
        return Ok(0);
    }
    let store = match StoreMount::open(j, env, Step::Stage) {
        Ok(s) => s,
        // A host whose kernel cannot mount FAT32 (the PE always can): stream instead.
        Err(e) => {
            sink.warn(&format!("{}; the image is streamed during the lay-down instead, each chunk checked as it arrives", e.problem));
            return Ok(0);
        }
    };
    let mut prepared = crate::image::apply::prepare(&super::request::request(j, env, j.plan.image.source.clone()), sink, cancel)?;
    crate::image::stage::stage(&mut prepared, &store.images_dir(), sink, cancel)?;
    drop(prepared);
    store.finish()?;
    Ok(j.plan.image.file_len)
}
