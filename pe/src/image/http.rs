//! An image over HTTP(S), through the client in [`crate::net::http`]. Every request is a
//! `Range` request; a server that cannot do ranges is refused (resume would be impossible).
//! Errors do not name the URL; the reader's and the pipeline's retries add it.

use std::io::Read;

use reqwest::blocking::Client;

use super::source::{read_full, Source};
use crate::error::{Error, Result};
use crate::net::http::{client, HttpOptions, Ranged};
use crate::net::retry::retry;
use crate::progress::{Cancel, Sink};
use crate::step::Step;

pub struct HttpSource {
    client: Client,
    file: Ranged,
}

impl HttpSource {
    pub fn open(url: &str, opts: &HttpOptions, sink: &dyn Sink, cancel: &Cancel) -> Result<HttpSource> {
        let client = client(opts)?;
        let file = retry(opts.backoff(), sink, cancel, &format!("reading the start of {url}"), || Ranged::probe(&client, url))?;
        Ok(HttpSource { client, file })
    }
}

impl Source for HttpSource {
    fn name(&self) -> String {
        self.file.url.clone()
    }
    fn len(&mut self) -> Result<u64> {
        Ok(self.file.len)
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let end = offset.checked_add(buf.len() as u64).ok_or_else(|| Error::internal(Step::Image, "range overflows"))?;
        let mut resp = self.file.get(&self.client, offset, end)?;
        let n = read_full(&mut resp, buf).map_err(|e| Error::transient(Step::Image, format!("reading bytes {offset}..{end}: {e}")))?;
        if n != buf.len() {
            return Err(Error::transient(Step::Image, format!("the connection closed after {n} of {} bytes at byte {offset}", buf.len())));
        }
        Ok(())
    }
    fn stream(&mut self, offset: u64, end: u64) -> Result<Box<dyn Read + Send>> {
        Ok(Box::new(self.file.get(&self.client, offset, end)?))
    }
}
