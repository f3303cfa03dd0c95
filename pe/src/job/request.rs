//! The lay-down's request for a job: the image pinned by the digest checked at plan time, the
//! disk as the journal knows it, the store and the kept partitions left alone.

use super::find::Record;
use super::plan::{Env, JobPlan};
use crate::image::apply::Request;
use crate::image::reader::Trust;
use crate::image::target::Expect;

fn trust(plan: &JobPlan, env: &Env) -> Trust {
    let pin = |hex: &Option<String>| hex.as_deref().and_then(crate::image::format::unhex::<32>);
    let spec = plan.preset.image.clone().unwrap_or_default();
    // The digest checked at plan time pins the image from then on, pinned or not in the preset.
    let digest = crate::image::format::unhex::<32>(&plan.image.digest);
    // The PE's preset key, when the preset pins no key: as at plan time (`plan::open_image`).
    Trust { pin_sha256: pin(&spec.sha256).or(digest), pin_key: pin(&spec.key).or(env.preset_key) }
}

/// The lay-down's request for the job, reading the image from `image` (a URL or a path).
pub fn request(j: &Record, env: &Env, image: String) -> Request {
    let plan = &j.plan;
    Request {
        image,
        disk: plan.disk_path.clone(),
        keep: plan.keep.clone(),
        store: Some(plan.store_number()),
        trust: trust(plan, env),
        http: env.http.clone(),
        workers: env.workers,
        expect: Expect { size: Some(j.disk.size_bytes), ..Default::default() },
        readback: true,
        efi_nvram: env.efi_nvram,
    }
}

