//! `image verify`: open the image (digest, signature, pins), then read, check and decode
//! every chunk; and the lighter check of the stored bytes alone that comes before a lay-down.
//! Writes nothing.

use super::format::{hex, DATA_OFFSET};
use super::pipeline::{self, Check};
use super::reader::{self, Image, Trust};
use crate::error::Result;
use crate::net::http::HttpOptions;
use crate::progress::{Cancel, Meter, Sink};

#[derive(Debug, Clone)]
pub struct VerifyReport {
    pub digest: String,
    pub signed_by: Option<String>,
    pub chunks: u64,
    pub logical_bytes: u64,
    pub stored_bytes: u64,
}

/// Checks the image at `spec` (a path or URL) through and through.
pub fn verify(spec: &str, trust: &Trust, http: &HttpOptions, workers: usize, sink: &dyn Sink, cancel: &Cancel) -> Result<VerifyReport> {
    let mut img = reader::open(spec, trust, http, sink, cancel)?;
    let meter = Meter::start(sink, "verifying", img.logical_bytes());
    let index = img.index.clone();
    pipeline::run(img.source.as_mut(), &index, 0, Check::Full, workers, http, sink, cancel, &|_, _, _| Ok(()), &mut |_, c| {
        meter.add(u64::from(c.logical_len))
    })?;
    Ok(VerifyReport {
        digest: img.digest_hex(),
        signed_by: img.signed_by.map(|k| hex(&k)),
        chunks: img.header.chunk_count,
        logical_bytes: img.logical_bytes(),
        stored_bytes: img.header.data_end - DATA_OFFSET,
    })
}

/// Reads every stored chunk of an opened image and checks its CRC-32 and SHA-256, without
/// decoding (the pass before the first write).
pub fn stored(img: &mut Image, workers: usize, http: &HttpOptions, sink: &dyn Sink, cancel: &Cancel) -> Result<()> {
    let meter = Meter::start(sink, "verifying", img.header.data_end);
    let index = img.index.clone();
    pipeline::run(img.source.as_mut(), &index, 0, Check::Stored, workers, http, sink, cancel, &|_, _, _| Ok(()), &mut |_, c| {
        meter.add(u64::from(c.stored_len))
    })
}
