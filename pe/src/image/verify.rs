//! `image verify`: open the image (digest, signature, pins), then read, check and decode
//! every chunk. Writes nothing.

use super::http::HttpOptions;
use super::pipeline::{self, Check};
use super::progress::{Meter, Progress};
use super::reader::{self, Image, Trust};
use super::source;

#[derive(Debug, Clone)]
pub struct VerifyReport {
    pub digest: String,
    pub signed_by: Option<String>,
    pub chunks: u64,
    pub logical_bytes: u64,
    pub stored_bytes: u64,
}

pub fn open(spec: &str, trust: &Trust, http: &HttpOptions, progress: &dyn Progress) -> Result<Image, String> {
    let src = source::open(spec, http, progress).map_err(|e| e.to_string())?;
    reader::open(src, trust, http, progress).map_err(|e| e.to_string())
}

pub fn verify(spec: &str, trust: &Trust, http: &HttpOptions, workers: usize, progress: &dyn Progress) -> Result<VerifyReport, String> {
    let mut img = open(spec, trust, http, progress)?;
    let meter = Meter::new(progress, "verifying", img.logical_bytes());
    let index = img.index.clone();
    pipeline::run(img.source.as_mut(), &index, 0, Check::Full, workers, http, progress, &|_, _, _| Ok(()), &mut |_, c| {
        meter.add(u64::from(c.logical_len))
    })
    .map_err(|e| e.to_string())?;
    Ok(VerifyReport {
        digest: img.digest_hex(),
        signed_by: img.signed_by.map(|k| super::format::hex(&k)),
        chunks: img.header.chunk_count,
        logical_bytes: img.logical_bytes(),
        stored_bytes: img.header.data_end - super::format::DATA_OFFSET,
    })
}
