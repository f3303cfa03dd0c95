//! The preset's `[report]` table.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::step::Step;

/// Where and how a job's events are sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportConfig {
    /// An `http://` or `https://` URL that accepts `POST` with a JSON body.
    pub url: String,
    /// Sent as `Authorization: Bearer <token>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Seconds between progress events (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<u64>,
    /// A CA certificate (PEM) the collector's certificate must chain to, instead of the
    /// bundled Mozilla roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
}

pub const DEFAULT_INTERVAL: u64 = 10;

impl ReportConfig {
    pub fn interval_secs(&self) -> u64 {
        self.interval.unwrap_or(DEFAULT_INTERVAL).max(1)
    }

    /// What is wrong with it, if anything: checked when the preset is read.
    pub fn problem(&self) -> Option<String> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Some(format!("[report] url = {:?} is not an http:// or https:// URL", self.url));
        }
        if let Some(ca) = &self.ca {
            if let Err(e) = parse_ca(ca) {
                return Some(format!("[report] ca: {e}"));
            }
        }
        None
    }
}
/// The certificates of a PEM text.
pub fn parse_ca(pem: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::refused(Step::Report, format!("the CA is not PEM: {e}")))?;
    if certs.is_empty() {
        return Err(Error::refused(Step::Report, "the CA holds no certificate (expected -----BEGIN CERTIFICATE-----)"));
    }
    Ok(certs)
}

