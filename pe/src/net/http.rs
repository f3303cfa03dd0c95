//! Small HTTP(S) downloads (a preset), with the same TLS setup as image fetching.

use std::io::Read;
use std::time::Duration;

use anyhow::Context;

/// Fetches `url` into a string of at most `limit` bytes, with a few retries.
pub fn get_text(url: &str, limit: u64) -> anyhow::Result<String> {
    crate::image::http::install_crypto_provider();
    let client = reqwest::blocking::Client::builder()
        .use_preconfigured_tls(crate::image::http::tls_config())
        .timeout(Duration::from_secs(20))
        .build()
        .context("setting up the HTTP client")?;
    let mut last = String::new();
    for attempt in 0..4u32 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(500 << attempt));
        }
        match client.get(url).send() {
            Ok(resp) if resp.status().is_success() => {
                let mut body = String::new();
                resp.take(limit + 1).read_to_string(&mut body).with_context(|| format!("reading {url}"))?;
                anyhow::ensure!(body.len() as u64 <= limit, "{url} is larger than {limit} bytes; is it really a preset?");
                return Ok(body);
            }
            Ok(resp) if resp.status().is_client_error() => {
                anyhow::bail!("{url} answered {}; check the URL in inplace.preset=", resp.status())
            }
            Ok(resp) => last = format!("{url} answered {}", resp.status()),
            Err(e) => last = format!("{url}: {e}"),
        }
    }
    anyhow::bail!("{last}; the server may be down or unreachable from this network")
}
