//! Sending envelopes: one `POST` of a JSON array, with `Authorization: Bearer` when the preset
//! gives a token, over the same rustls client as image fetches (or one that trusts only the
//! preset's pinned CA). Any 2xx answer acknowledges the whole batch.

use std::time::Duration;

use reqwest::blocking::Client;

use super::config::{parse_ca, ReportConfig};
use super::envelope::Envelope;
use crate::error::{Error, Kind, Result};
use crate::net::http::{self, HttpOptions};
use crate::step::Step;

/// Errors here name the report step.
const STEP: Step = Step::Report;

/// A client for the collector.
pub struct Collector {
    client: Client,
    url: String,
    token: Option<String>,
}

/// How a failed send is to be taken.
#[derive(Debug)]
pub enum Failure {
    /// Try again later (the collector is down, the network is not up, a 5xx).
    Later(Error),
    /// Trying again cannot help until someone changes something (a bad certificate, a 4xx).
    Refused(Error),
}

impl Collector {
    pub fn new(c: &ReportConfig) -> Result<Collector> {
        let opts = HttpOptions { timeout: Duration::from_secs(10), ..Default::default() };
        let ca = c.ca.as_deref().map(parse_ca).transpose()?;
        let client = http::client_trusting(&opts, ca.as_deref()).map_err(|e| e.in_step(STEP))?;
        Ok(Collector { client, url: c.url.clone(), token: c.token.clone() })
    }

    pub fn send(&self, batch: &[Envelope]) -> std::result::Result<(), Failure> {
        let body = serde_json::to_vec(batch).map_err(|e| Failure::Refused(Error::internal(STEP, e.to_string())))?;
        let mut req = self.client.post(&self.url).header(reqwest::header::CONTENT_TYPE, "application/json").body(body);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().map_err(|e| {
            let e = http::classify(e).in_step(STEP);
            let e = Error { problem: format!("the collector {}: {}", self.url, e.problem), ..e };
            match e.kind {
                Kind::Refused => Failure::Refused(e.advice("fix the collector's certificate, or pin its CA with ca in the preset's [report] table")),
                _ => Failure::Later(e),
            }
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let e = Error::transient(STEP, format!("the collector {} answered HTTP {status}", self.url));
        match status.as_u16() {
            401 | 403 => Err(Failure::Refused(e.advice("check the token in the preset's [report] table"))),
            408 | 429 => Err(Failure::Later(e)),
            400..=499 => Err(Failure::Refused(e.advice("check the url in the preset's [report] table: it must accept POST"))),
            _ => Err(Failure::Later(e)),
        }
    }
}
