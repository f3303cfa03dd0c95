//! Small HTTP(S) downloads (a preset), with the client, error wording and retries of image
//! fetching.

use std::io::Read;
use std::time::Duration;

use crate::image::http::{classify, client, retry, HttpOptions};
use crate::image::progress::Silent;
use crate::image::source::SourceError;

/// Fetches `url` into a string of at most `limit` bytes, retrying what may pass.
pub fn get_text(url: &str, limit: u64) -> anyhow::Result<String> {
    let opts = HttpOptions { timeout: Duration::from_secs(20), retries: 3, backoff: Duration::from_secs(1) };
    let client = client(&opts).map_err(|e| anyhow::anyhow!(e.message))?;
    let fetch = || -> Result<String, SourceError> {
        let resp = client.get(url).send().map_err(|e| classify(url, e))?;
        let status = resp.status();
        if status.is_client_error() {
            return Err(SourceError::fatal(format!("{url} answered {status}; check the URL in inplace.preset=")));
        }
        if !status.is_success() {
            return Err(SourceError::retry(format!("{url} answered {status}; the server may be down")));
        }
        let mut body = String::new();
        resp.take(limit + 1).read_to_string(&mut body).map_err(|e| SourceError::retry(format!("reading {url}: {e}")))?;
        if body.len() as u64 > limit {
            return Err(SourceError::fatal(format!("{url} is larger than {limit} bytes; is it really a preset?")));
        }
        Ok(body)
    };
    retry(&opts, &Silent, &format!("fetching {url}"), fetch).map_err(|e| anyhow::anyhow!(e.message))
}
