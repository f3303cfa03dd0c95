//! HTTP(S) sources through reqwest (blocking) and rustls with the `ring` provider, trusting
//! the Mozilla roots bundled in the binary (the PE has no `/etc/ssl`).
//!
//! Every request is a `Range` request answered with `206`; after the first, each carries
//! `If-Range` with the validator (ETag or Last-Modified) the first answer gave, so a file that
//! changes on the server is noticed instead of spliced. A server that cannot do ranges is
//! refused (resume would be impossible).

use std::io::Read;
use std::sync::{Arc, Once};
use std::time::Duration;

use reqwest::blocking::{Client, Response};
use reqwest::header::{CONTENT_RANGE, ETAG, IF_RANGE, LAST_MODIFIED, RANGE};
use reqwest::StatusCode;

use super::progress::Progress;
use super::source::{Source, SourceError};

#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Longest wait for the connection or for any read.
    pub timeout: Duration,
    /// Attempts per request after the first.
    pub retries: u32,
    /// First backoff; it doubles up to 10 s.
    pub backoff: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions { timeout: Duration::from_secs(30), retries: 8, backoff: Duration::from_millis(500) }
    }
}

pub struct HttpSource {
    url: String,
    client: Client,
    len: u64,
    validator: Option<String>,
}

/// Installs the `ring` provider as rustls's process default (once).
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

fn tls_config() -> rustls::ClientConfig {
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
        .unwrap_or_else(|_| {
            // The ring provider supports the default versions; this branch is not reached.
            rustls::ClientConfig::builder().with_root_certificates(rustls::RootCertStore::empty()).with_no_client_auth()
        })
}

/// A blocking client with the bundled roots and `opts`' timeouts.
pub fn client(opts: &HttpOptions) -> Result<Client, SourceError> {
    install_crypto_provider();
    Client::builder()
        .tls_backend_preconfigured(tls_config())
        .timeout(opts.timeout)
        .connect_timeout(opts.timeout)
        .build()
        .map_err(|e| SourceError::fatal(format!("cannot set up the HTTP client: {}", chain(&e))))
}

/// The whole error chain on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

pub fn classify(url: &str, e: reqwest::Error) -> SourceError {
    let text = chain(&e);
    let lower = text.to_lowercase();
    if ["tls", "certificate", "corrupt message", "handshake", "invalidcontenttype", "alert"].iter().any(|k| lower.contains(k)) {
        return SourceError::fatal(format!(
            "TLS error talking to {url}: {text}; check that the URL's scheme and port are right (https:// needs a TLS port) \
             and that the server's certificate is valid for its name (inplace trusts the Mozilla roots bundled in it)"
        ));
    }
    if e.is_builder() {
        return SourceError::fatal(format!("{url}: {text}; check the URL"));
    }
    SourceError::retry(format!("{url}: {text}"))
}

impl HttpSource {
    pub fn open(url: &str, opts: &HttpOptions, progress: &dyn Progress) -> Result<HttpSource, SourceError> {
        let client = client(opts)?;
        let mut s = HttpSource { url: url.to_string(), client, len: 0, validator: None };
        let (len, validator) = retry(opts, progress, &format!("reading the start of {url}"), || s.probe())?;
        s.len = len;
        s.validator = validator;
        Ok(s)
    }

    /// The first request: learn the length and the validator, and that ranges work.
    fn probe(&self) -> Result<(u64, Option<String>), SourceError> {
        let resp = self.client.get(&self.url).header(RANGE, "bytes=0-0").send().map_err(|e| classify(&self.url, e))?;
        let resp = check_status(&self.url, resp)?;
        let total = content_range(&resp).map(|(_, _, t)| t).ok_or_else(|| {
            SourceError::fatal(format!("{}: the server's answer has no usable Content-Range; it must support Range requests", self.url))
        })?;
        let validator = resp
            .headers()
            .get(ETAG)
            .filter(|v| !v.as_bytes().starts_with(b"W/"))
            .or_else(|| resp.headers().get(LAST_MODIFIED))
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok((total, validator))
    }

    fn ranged(&self, offset: u64, end: u64) -> Result<Response, SourceError> {
        if end <= offset || end > self.len {
            return Err(SourceError::fatal(format!("{}: bytes {offset}..{end} are outside the {}-byte image", self.url, self.len)));
        }
        let mut req = self.client.get(&self.url).header(RANGE, format!("bytes={offset}-{}", end - 1));
        if let Some(v) = &self.validator {
            req = req.header(IF_RANGE, v.as_str());
        }
        let resp = req.send().map_err(|e| classify(&self.url, e))?;
        let resp = check_status(&self.url, resp)?;
        match content_range(&resp) {
            Some((s, e, t)) if s == offset && e + 1 == end && t == self.len => Ok(resp),
            other => Err(SourceError::fatal(format!(
                "{}: asked for bytes {offset}-{} of {} and got {other:?}; the image changed on the server or the server \
                 mishandles ranges; start again with the current image",
                self.url,
                end - 1,
                self.len
            ))),
        }
    }
}

fn check_status(url: &str, resp: Response) -> Result<Response, SourceError> {
    let st = resp.status();
    if st == StatusCode::PARTIAL_CONTENT {
        return Ok(resp);
    }
    let why = format!("{url}: the server answered HTTP {st}");
    Err(match st.as_u16() {
        200 => SourceError::fatal(format!(
            "{why} instead of 206 Partial Content: it ignored the Range request (or the image changed on the server); \
             inplace needs ranges to resume; download it first (curl -o) and use the local file"
        )),
        404 | 410 => SourceError::fatal(format!("{why}: no image there; check the URL")),
        401 | 403 => SourceError::fatal(format!("{why}: access denied; check the URL and the server's permissions")),
        416 => SourceError::fatal(format!("{why}: the requested range is not in the file; the image on the server is shorter than expected")),
        408 | 429 | 500..=599 => SourceError::retry(why),
        _ => SourceError::fatal(why),
    })
}

/// `(first, last, total)` from `Content-Range: bytes first-last/total`.
fn content_range(resp: &Response) -> Option<(u64, u64, u64)> {
    let v = resp.headers().get(CONTENT_RANGE)?.to_str().ok()?;
    let rest = v.strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (a, b) = range.split_once('-')?;
    let (a, b, t) = (a.trim().parse().ok()?, b.trim().parse().ok()?, total.trim().parse().ok()?);
    (a <= b && b < t).then_some((a, b, t))
}

/// Runs `f` until it succeeds, fails for good, or runs out of retries; waits with doubling
/// backoff in between and logs every retry.
pub fn retry<T>(
    opts: &HttpOptions,
    progress: &dyn Progress,
    what: &str,
    mut f: impl FnMut() -> Result<T, SourceError>,
) -> Result<T, SourceError> {
    let mut wait = opts.backoff;
    let mut attempt = 0;
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if e.retryable && attempt < opts.retries => {
                attempt += 1;
                progress.event(super::progress::Event::Log(format!(
                    "{what}: {}; retry {attempt} of {} in {:.1} s",
                    e.message,
                    opts.retries,
                    wait.as_secs_f64()
                )));
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_secs(10));
            }
            Err(e) if e.retryable => {
                return Err(SourceError::fatal(format!("{what}: {} (gave up after {} retries)", e.message, opts.retries)))
            }
            Err(e) => return Err(e),
        }
    }
}

impl Source for HttpSource {
    fn name(&self) -> String {
        self.url.clone()
    }
    fn len(&mut self) -> Result<u64, SourceError> {
        Ok(self.len)
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), SourceError> {
        if buf.is_empty() {
            return Ok(());
        }
        let end = offset.checked_add(buf.len() as u64).ok_or_else(|| SourceError::fatal("range overflows"))?;
        let mut resp = self.ranged(offset, end)?;
        let n = super::source::read_full(&mut resp, buf)
            .map_err(|e| SourceError::retry(format!("{}: reading bytes {offset}..{end}: {e}", self.url)))?;
        if n != buf.len() {
            return Err(SourceError::retry(format!("{}: the connection closed after {n} of {} bytes at byte {offset}", self.url, buf.len())));
        }
        Ok(())
    }
    fn stream(&mut self, offset: u64, end: u64) -> Result<Box<dyn Read + Send>, SourceError> {
        Ok(Box::new(self.ranged(offset, end)?))
    }
}
