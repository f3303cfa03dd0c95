//! The preset's `[report]` table (one definition with the Windows agent, which reads it from
//! the spool) and its checks.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use crate::error::{Error, Result};
use crate::step::Step;

pub use inplace_agent::reporting::spool::Config as ReportConfig;

/// What is wrong with a `[report]` table, if anything: checked when the preset is read.
pub fn problem(c: &ReportConfig) -> Option<String> {
    if !(c.url.starts_with("http://") || c.url.starts_with("https://")) {
        return Some(format!("[report] url = {:?} is not an http:// or https:// URL", c.url));
    }
    if let Some(ca) = &c.ca {
        if let Err(e) = parse_ca(ca) {
            return Some(format!("[report] ca: {e}"));
        }
    }
    None
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

