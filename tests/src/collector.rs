//! A collector for the report tests (test code only; the product ships none): an HTTP/1.1
//! server on 127.0.0.1 that takes `POST`s of JSON arrays of envelopes, keeps every envelope in
//! the order received (duplicates too, so a test can see them) and each request's
//! `Authorization` header, and answers 200. It can be started on a port chosen before, so a
//! job can be pointed at a collector that is down and comes up later.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

#[derive(Default)]
struct Seen {
    envelopes: Vec<Value>,
    authorization: Vec<Option<String>>,
}

pub struct Collector {
    pub port: u16,
    seen: Arc<Mutex<Seen>>,
}

/// A free port on 127.0.0.1, nothing listening on it (yet).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Collector {
    pub fn start() -> Collector {
        Collector::start_on(0)
    }

    pub fn start_on(port: u16) -> Collector {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("binding the collector's port");
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let s = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let s = s.clone();
                std::thread::spawn(move || {
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(60)));
                    let _ = serve(conn, &s);
                });
            }
        });
        Collector { port, seen }
    }

    /// The same over TLS, with a certificate for `localhost` and 127.0.0.1 issued by a CA made
    /// for the test; returns the CA's certificate (PEM) too.
    pub fn start_tls() -> (Collector, String) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "inplace test lab CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()))
            .unwrap();
        let config = std::sync::Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let s = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (s, config) = (s.clone(), config.clone());
                std::thread::spawn(move || {
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(60)));
                    let Ok(tls) = rustls::ServerConnection::new(config) else { return };
                    let _ = serve(rustls::StreamOwned::new(tls, conn), &s);
                });
            }
        });
        (Collector { port, seen }, ca.pem())
    }

    pub fn envelopes(&self) -> Vec<Value> {
        self.seen.lock().unwrap().envelopes.clone()
    }

    pub fn authorization(&self) -> Vec<Option<String>> {
        self.seen.lock().unwrap().authorization.clone()
    }

    /// Waits until `done` holds for what was received, or `limit` passes.
    pub fn wait_until(&self, limit: Duration, done: impl Fn(&[Value]) -> bool) -> bool {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if done(&self.envelopes()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        done(&self.envelopes())
    }
}

/// A line up to CRLF, byte by byte (the stream may be TLS, which cannot be cloned for a
/// buffered reader and a writer).
fn read_line(s: &mut impl Read) -> std::io::Result<Option<String>> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        if s.read(&mut b)? == 0 {
            return Ok((!line.is_empty()).then(|| String::from_utf8_lossy(&line).into_owned()));
        }
        if b[0] == b'\n' {
            return Ok(Some(String::from_utf8_lossy(&line).trim_end_matches('\r').to_string()));
        }
        line.push(b[0]);
    }
}

fn serve(mut s: impl Read + Write, seen: &Mutex<Seen>) -> std::io::Result<()> {
    loop {
        let Some(line) = read_line(&mut s)? else { return Ok(()) };
        let mut len = 0usize;
        let mut auth = None;
        while let Some(h) = read_line(&mut s)? {
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').unwrap_or((&h, ""));
            match k.to_ascii_lowercase().as_str() {
                "content-length" => len = v.trim().parse().unwrap_or(0),
                "authorization" => auth = Some(v.trim().to_string()),
                _ => {}
            }
        }
        let mut body = vec![0u8; len];
        s.read_exact(&mut body)?;
        let ok = line.starts_with("POST ");
        if ok {
            let batch: Vec<Value> = serde_json::from_slice(&body).unwrap_or_default();
            let mut g = seen.lock().unwrap();
            g.envelopes.extend(batch);
            g.authorization.push(auth);
        }
        let status = if ok { "200 OK" } else { "405 Method Not Allowed" };
        s.write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").as_bytes())?;
        s.flush()?;
    }
}

/// What a collector would conclude: the envelopes of `job_id` by sequence number, duplicates
/// (by id) dropped; and the sequence numbers missing between 1 and the highest.
pub fn ordered(envelopes: &[Value], job_id: &str) -> (Vec<Value>, Vec<u64>) {
    let mut ids = std::collections::HashSet::new();
    let mut mine: Vec<Value> = envelopes.iter().filter(|e| e["job_id"] == job_id && ids.insert(e["id"].to_string())).cloned().collect();
    mine.sort_by_key(|e| e["seq"].as_u64().unwrap_or(0));
    let max = mine.last().and_then(|e| e["seq"].as_u64()).unwrap_or(0);
    let have: std::collections::HashSet<u64> = mine.iter().filter_map(|e| e["seq"].as_u64()).collect();
    let missing = (1..=max).filter(|s| !have.contains(s)).collect();
    (mine, missing)
}

/// Checks every envelope against `docs/reporting.schema.json`; returns the failures.
pub fn schema_errors(envelopes: &[Value]) -> Vec<String> {
    let schema: Value = serde_json::from_slice(&std::fs::read(crate::workspace().join("docs/reporting.schema.json")).unwrap()).unwrap();
    let v = jsonschema::validator_for(&schema).expect("the schema compiles");
    envelopes
        .iter()
        .flat_map(|e| v.iter_errors(e).map(move |err| format!("seq {}: {err}", e["seq"])).collect::<Vec<_>>())
        .collect()
}
