//! A collector for the report tests (test code only; the product ships none): an HTTP/1.1
//! server on 127.0.0.1 that takes `POST`s of JSON arrays of envelopes, keeps every envelope in
//! the order received (duplicates too, so a test can see them) and each request's
//! `Authorization` header, and answers 200. It can be started on a port chosen before, so a
//! job can be pointed at a collector that is down and comes up later.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
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
                    let _ = serve(conn, &s);
                });
            }
        });
        Collector { port, seen }
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

fn serve(conn: TcpStream, seen: &Mutex<Seen>) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut r = BufReader::new(conn.try_clone()?);
    let mut w = conn;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut len = 0usize;
        let mut auth = None;
        loop {
            let mut h = String::new();
            r.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').unwrap_or((h, ""));
            match k.to_ascii_lowercase().as_str() {
                "content-length" => len = v.trim().parse().unwrap_or(0),
                "authorization" => auth = Some(v.trim().to_string()),
                _ => {}
            }
        }
        let mut body = vec![0u8; len];
        r.read_exact(&mut body)?;
        let ok = line.starts_with("POST ");
        if ok {
            let batch: Vec<Value> = serde_json::from_slice(&body).unwrap_or_default();
            let mut s = seen.lock().unwrap();
            s.envelopes.extend(batch);
            s.authorization.push(auth);
        }
        let status = if ok { "200 OK" } else { "405 Method Not Allowed" };
        w.write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").as_bytes())?;
        w.flush()?;
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
