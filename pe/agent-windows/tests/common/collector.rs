//! A tiny HTTP collector for the report client's tests: std only, on 127.0.0.1, one thread. It
//! records each request (request line, headers, `Content-Length` body) and answers a set status
//! with `Connection: close`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// One request as the collector read it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// A header's value (the name in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// The collector; it stops when dropped.
pub struct Collector {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Collector {
    /// Answers every request with `status` and `body`.
    pub fn start(status: u16, body: &str) -> Collector {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, stopping, body) = (requests.clone(), stop.clone(), body.to_string());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                if let Some(req) = read_request(&conn) {
                    seen.lock().unwrap().push(req);
                    let answer = format!(
                        "HTTP/1.1 {status} Test\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = conn.write_all(answer.as_bytes());
                }
            }
        });
        Collector { addr, requests, stop, thread: Some(thread) }
    }

    /// `http://127.0.0.1:PORT<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The requests read so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request: the request line, headers up to the blank line, and a
/// `Content-Length` body. `None` when the peer closed or sent something else.
fn read_request(conn: &TcpStream) -> Option<Request> {
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut r = BufReader::new(conn);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut words = line.split_whitespace();
    let (method, target) = (words.next()?.to_string(), words.next()?.to_string());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (name, value) = h.split_once(':')?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let len: usize = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("content-length")).map_or(Some(0), |(_, v)| v.parse().ok())?;
    let mut body = vec![0u8; len.min(16 << 20)];
    r.read_exact(&mut body).ok()?;
    Some(Request { method, target, headers, body })
}

/// An HTTPS collector for the TLS tests, under Wine only: std has no TLS server and
/// `openssl s_server` answers nothing but GET, so it is Python's `http.server` behind `ssl`
/// (the host's python3, started through Wine's Z: drive), with a CA, another CA and two server
/// certificates signed by the first made by the host's openssl. It serves `good` (a certificate
/// for 127.0.0.1) and `misnamed` (one for another name) on 127.0.0.1, and ends by itself when
/// dropped or after two minutes. Wine gives no handle to a Unix process, so files are its
/// channel: it writes `info.json`, and one line per request to `requests.jsonl`.
pub struct TlsCollector {
    /// Its folder, as Wine sees it (`Z:\tmp\…`).
    dir: String,
    pub good: u16,
    pub misnamed: u16,
    /// The CA that signed both server certificates (PEM).
    pub ca: String,
    /// A CA that signed neither.
    pub other_ca: String,
}

const PYTHON: &str = r"Z:\usr\bin\python3";
const OPENSSL: &str = r"Z:\usr\bin\openssl";

impl TlsCollector {
    /// `Err` says what the host lacks.
    pub fn start() -> Result<TlsCollector, String> {
        for tool in [PYTHON, OPENSSL] {
            if !std::path::Path::new(tool).exists() {
                return Err(format!("{tool} is missing (the host's /usr/bin, seen through Wine's Z: drive)"));
            }
        }
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let unix = format!("/tmp/inplace-winhttp-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
        let dir = format!("Z:{}", unix.replace('/', "\\"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{dir}: {e}"))?;
        std::fs::write(format!(r"{dir}\tls_collector.py"), TLS_COLLECTOR_PY).map_err(|e| format!("{dir}: {e}"))?;
        // Wine starts a Unix program without a process handle: spawn only, no wait.
        std::process::Command::new(PYTHON)
            .args([format!("{unix}/tls_collector.py"), unix.clone(), "/usr/bin/openssl".into()])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("{PYTHON}: {e}"))?;
        let info = format!(r"{dir}\info.json");
        for _ in 0..600 {
            if let Ok(text) = std::fs::read_to_string(&info) {
                let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{info}: {e}"))?;
                let port = |k: &str| v[k].as_u64().and_then(|p| u16::try_from(p).ok()).ok_or(format!("{info}: no {k}"));
                let pem = |k: &str| v[k].as_str().map(str::to_string).ok_or(format!("{info}: no {k}"));
                let (good, misnamed) = (port("good")?, port("misnamed")?);
                return Ok(TlsCollector { good, misnamed, ca: pem("ca")?, other_ca: pem("other_ca")?, dir });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!("the TLS collector wrote no {info} within a minute"))
    }

    /// `https://127.0.0.1:PORT<path>`.
    pub fn url(port: u16, path: &str) -> String {
        format!("https://127.0.0.1:{port}{path}")
    }

    /// The requests it has read whole.
    pub fn requests(&self) -> Vec<Request> {
        let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
        self.records()
            .into_iter()
            .filter(|v| v["complete"] == true)
            .map(|v| Request {
                method: text(&v["method"]),
                target: text(&v["target"]),
                headers: v["headers"].as_array().map(|hs| hs.iter().map(|h| (text(&h[0]), text(&h[1]))).collect()).unwrap_or_default(),
                body: text(&v["body"]).into_bytes(),
            })
            .collect()
    }

    /// How many requests came without their whole body (the client closed first), waiting up
    /// to `wait` for there to be `at_least`.
    pub fn cut(&self, at_least: usize, wait: Duration) -> usize {
        let deadline = std::time::Instant::now() + wait;
        loop {
            let n = self.records().iter().filter(|v| v["complete"] == false).count();
            if n >= at_least || std::time::Instant::now() >= deadline {
                return n;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn records(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(format!(r"{}\requests.jsonl", self.dir)).unwrap_or_default();
        text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }
}

impl Drop for TlsCollector {
    fn drop(&mut self) {
        // It polls for this file, then removes its folder.
        let _ = std::fs::write(format!(r"{}\stop", self.dir), b"");
    }
}

/// The server run by `TlsCollector` (argv: its folder as the host sees it, the openssl binary).
const TLS_COLLECTOR_PY: &str = r#"
import http.server, json, os, shutil, ssl, subprocess, sys, threading, time

d, openssl = sys.argv[1], sys.argv[2]
def run(*args):
    subprocess.run([openssl, *args], cwd=d, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
def ca(name):
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out", name + ".pem", "-days", "2",
        "-subj", "/CN=inplace test " + name, "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
def server(name, san):
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + name)
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write("subjectAltName=" + san + "\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n")
    run("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
        "-out", name + ".pem", "-extfile", name + ".ext")

ca("ca"); ca("other-ca")
# Wine matches a host name against DNS names only, so 127.0.0.1 is one of those too.
server("good", "IP:127.0.0.1,DNS:127.0.0.1,DNS:localhost")
server("misnamed", "DNS:collector.invalid")

class Handler(http.server.BaseHTTPRequestHandler):
    timeout = 10
    def do_POST(self):
        want = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(want)
        rec = {"method": "POST", "target": self.path, "headers": [[k, v] for k, v in self.headers.items()],
               "body": body.decode("utf-8", "replace"), "complete": len(body) == want}
        with open(os.path.join(d, "requests.jsonl"), "a") as f:
            f.write(json.dumps(rec) + "\n")
        if not rec["complete"]:
            return
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args):
        pass

class Server(http.server.HTTPServer):
    def handle_error(self, request, client_address):
        pass  # a refused handshake, a client gone: the tests look at requests.jsonl

def serve(name):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(d, name + ".pem"), os.path.join(d, name + ".key"))
    srv = Server(("127.0.0.1", 0), Handler)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.timeout = 0.1
    return srv

servers = {name: serve(name) for name in ("good", "misnamed")}
info = {"good": servers["good"].server_address[1], "misnamed": servers["misnamed"].server_address[1],
        "ca": open(os.path.join(d, "ca.pem")).read(), "other_ca": open(os.path.join(d, "other-ca.pem")).read()}
with open(os.path.join(d, "info.tmp"), "w") as f:
    json.dump(info, f)
os.rename(os.path.join(d, "info.tmp"), os.path.join(d, "info.json"))
deadline = time.time() + 120
while time.time() < deadline and not os.path.exists(os.path.join(d, "stop")):
    for srv in servers.values():
        srv.handle_request()
shutil.rmtree(d, ignore_errors=True)
"#;
