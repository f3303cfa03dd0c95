//! The one HTTP(S) client: reqwest (blocking) over rustls with the `ring` provider, trusting
//! the Mozilla roots bundled in the binary (the PE has no `/etc/ssl`); the wording of its
//! failures (transient ones are retried, see [`super::retry`]); and the `Range` + `If-Range`
//! requests that resume a transfer. Failures do not name the URL: the caller's context does
//! (`reading the header of URL: …`), once.
//!
//! A ranged request must be answered with `206` and the `Content-Range` asked for; after the
//! first, each carries `If-Range` with the validator (ETag or Last-Modified) the first answer
//! gave, so a file that changes on the server is noticed instead of spliced.

use std::io::Read;
use std::sync::{Arc, Once};
use std::time::Duration;

use reqwest::blocking::{Client, Response};
use reqwest::header::{CONTENT_RANGE, ETAG, IF_RANGE, LAST_MODIFIED, RANGE};
use reqwest::StatusCode;

use super::retry::{retry, Backoff};
use crate::error::{Error, Result};
use crate::progress::{Cancel, Silent};
use crate::step::Step;

/// Errors made here name the image step; callers that fetch for another step move them.
const STEP: Step = Step::Image;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
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

impl HttpOptions {
    /// A fresh retry count for one transfer.
    pub fn backoff(&self) -> Backoff {
        Backoff::new(self.retries, self.backoff)
    }
}

/// Installs the `ring` provider as rustls's process default (once).
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

fn tls_config(roots: rustls::RootCertStore) -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
        .unwrap_or_else(|_| {
            // The ring provider supports the default versions; this branch is not reached.
            rustls::ClientConfig::builder().with_root_certificates(rustls::RootCertStore::empty()).with_no_client_auth()
        })
}

/// A blocking client with the bundled roots and `opts`' timeouts.
pub fn client(opts: &HttpOptions) -> Result<Client> {
    client_trusting(opts, None)
}

/// A client that trusts only `ca` (certificates, DER) when given, else the bundled roots.
pub fn client_trusting(opts: &HttpOptions, ca: Option<&[rustls::pki_types::CertificateDer<'static>]>) -> Result<Client> {
    install_crypto_provider();
    let roots = match ca {
        None => rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() },
        Some(certs) => {
            let mut r = rustls::RootCertStore::empty();
            for c in certs {
                r.add(c.clone()).map_err(|e| Error::refused(STEP, format!("the pinned CA certificate cannot be used: {e}")))?;
            }
            r
        }
    };
    Client::builder()
        .tls_backend_preconfigured(tls_config(roots))
        .timeout(opts.timeout)
        .connect_timeout(opts.timeout)
        .build()
        .map_err(|e| Error::internal(STEP, format!("cannot set up the HTTP client: {}", chain(&e))))
}

/// The whole error chain on one line, each message once.
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

/// A request that failed before an answer: TLS and malformed URLs are refused, the rest
/// (connection, timeout, a cut body) may pass when tried again.
pub fn classify(e: reqwest::Error) -> Error {
    let builder = e.is_builder();
    let text = chain(&e.without_url());
    let lower = text.to_lowercase();
    if ["tls", "certificate", "corrupt message", "handshake", "invalidcontenttype", "alert"].iter().any(|k| lower.contains(k)) {
        return Error::refused(STEP, format!("TLS error: {text}")).advice(
            "check that the URL's scheme and port are right (https:// needs a TLS port) and that the server's certificate \
             is valid for its name (inplace trusts the Mozilla roots bundled in it)",
        );
    }
    if builder {
        return Error::refused(STEP, text).advice("check the URL");
    }
    Error::transient(STEP, text)
}

/// An answer that is not `206 Partial Content`, as an error.
fn status_error(st: StatusCode) -> Error {
    let why = format!("the server answered HTTP {st}");
    match st.as_u16() {
        200 => Error::refused(STEP, format!("{why} instead of 206 Partial Content: it ignored the Range request (or the image changed on the server)"))
            .advice("download the image first (curl -o) and use the local file: inplace needs ranges to resume"),
        404 | 410 => Error::refused(STEP, format!("{why}: no image there")).advice("check the URL"),
        401 | 403 => Error::refused(STEP, format!("{why}: access denied")).advice("check the URL and the server's permissions"),
        416 => Error::damaged(STEP, format!("{why}: the requested range is not in the file; the image on the server is shorter than expected")),
        408 | 429 | 500..=599 => Error::transient(STEP, why),
        _ => Error::refused(STEP, why),
    }
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

/// A remote file that answers ranged requests: its length, and the validator that later
/// requests send with `If-Range`.
#[derive(Debug, Clone)]
pub struct Ranged {
    pub url: String,
    pub len: u64,
    pub validator: Option<String>,
}

impl Ranged {
    /// The first request (`bytes=0-0`): learns the length and the validator, and that ranges work.
    pub fn probe(client: &Client, url: &str) -> Result<Ranged> {
        let resp = client.get(url).header(RANGE, "bytes=0-0").send().map_err(classify)?;
        if resp.status() != StatusCode::PARTIAL_CONTENT {
            return Err(status_error(resp.status()));
        }
        let len = content_range(&resp)
            .map(|(_, _, t)| t)
            .ok_or_else(|| Error::refused(STEP, "the server's answer has no usable Content-Range").advice("the server must support Range requests"))?;
        let validator = resp
            .headers()
            .get(ETAG)
            .filter(|v| !v.as_bytes().starts_with(b"W/"))
            .or_else(|| resp.headers().get(LAST_MODIFIED))
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok(Ranged { url: url.to_string(), len, validator })
    }

    /// Bytes `offset .. end`, as a streaming answer whose `Content-Range` was checked.
    pub fn get(&self, client: &Client, offset: u64, end: u64) -> Result<Response> {
        if end <= offset || end > self.len {
            return Err(Error::internal(STEP, format!("bytes {offset}..{end} are outside the {}-byte file", self.len)));
        }
        let mut req = client.get(&self.url).header(RANGE, format!("bytes={offset}-{}", end - 1));
        if let Some(v) = &self.validator {
            req = req.header(IF_RANGE, v.as_str());
        }
        let resp = req.send().map_err(classify)?;
        if resp.status() != StatusCode::PARTIAL_CONTENT {
            return Err(status_error(resp.status()));
        }
        match content_range(&resp) {
            Some((s, e, t)) if s == offset && e + 1 == end && t == self.len => Ok(resp),
            other => Err(Error::damaged(
                STEP,
                format!(
                    "asked for bytes {offset}-{} of {} and got {other:?}; the file changed on the server or the server mishandles ranges",
                    end - 1,
                    self.len
                ),
            )
            .advice("start again with the current image")),
        }
    }
}

/// A small file's answer: its bytes, or the client error the server gave instead (`404 Not
/// Found`), which is an answer to act on, not a failure to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Small {
    Body(Vec<u8>),
    ClientError(String),
}

/// Fetches `url`, at most `limit` bytes, retrying what may pass (a preset, its signature).
/// Errors are the preset step's.
pub fn get_small(url: &str, limit: u64) -> Result<Small> {
    let opts = HttpOptions { timeout: Duration::from_secs(20), retries: 3, backoff: Duration::from_secs(1) };
    let client = client(&opts)?;
    let fetch = || -> Result<Small> {
        let resp = client.get(url).send().map_err(classify)?;
        let status = resp.status();
        if status.is_client_error() {
            return Ok(Small::ClientError(status.to_string()));
        }
        if !status.is_success() {
            return Err(Error::transient(STEP, format!("the server answered {status}; it may be down")));
        }
        let mut body = Vec::new();
        resp.take(limit + 1).read_to_end(&mut body).map_err(|e| Error::transient(STEP, e.to_string()))?;
        if body.len() as u64 > limit {
            return Err(Error::refused(STEP, format!("it is larger than {limit} bytes, too large for a preset or its signature")));
        }
        Ok(Small::Body(body))
    };
    retry(opts.backoff(), &Silent, &Cancel::new(), &format!("fetching {url}"), fetch).map_err(|e| e.in_step(Step::Preset))
}

/// Fetches `url` into a string of at most `limit` bytes, retrying what may pass (a preset).
pub fn get_text(url: &str, limit: u64) -> Result<String> {
    let context = |e: Error| e.context(format!("fetching {url}")).in_step(Step::Preset);
    match get_small(url, limit)? {
        Small::Body(b) => String::from_utf8(b).map_err(|_| context(Error::refused(STEP, "it is not UTF-8 text"))),
        Small::ClientError(status) => {
            Err(context(Error::refused(STEP, format!("the server answered {status}")).advice("check the URL in inplace.preset=")))
        }
    }
}
