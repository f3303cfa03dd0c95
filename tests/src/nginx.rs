//! Debian's nginx (`nginx-light`, from `scripts/setup`) as a test's own web server: one process
//! (`daemon off`, `master_process off`) started by the test as the current user, with its own
//! configuration, pid file, error log and temporary paths in a temporary folder. It listens on
//! 127.0.0.1 only and serves one folder as it is, with `Range` and ETags as in a lab
//! (`docs/lab.md`), and keeps an access log that [`Nginx::access_log`] reads back.
//!
//! A guest on QEMU's user network reaches it as 10.0.2.2 ([`Nginx::guest_url`]).

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One request as nginx logged it. nginx writes the line when the request ends, so a transfer
/// that [`Nginx::stop`] cut leaves none.
#[derive(Debug, Clone, PartialEq)]
pub struct Access {
    /// The path served (`$uri`: decoded, without the query string).
    pub path: String,
    pub status: u16,
    /// Bytes of the body sent (`$body_bytes_sent`).
    pub body_bytes: u64,
    /// The request's `Range` header, as sent.
    pub range: Option<String>,
    /// The client's address (`127.0.0.1` for a guest on QEMU's user network).
    pub remote: String,
    pub method: String,
    /// Bytes sent in all, headers included (`$bytes_sent`).
    pub bytes_sent: u64,
    /// Seconds from the first byte read to the last byte sent (`$request_time`).
    pub request_time: f64,
    /// The request's `If-Range` header, as sent.
    pub if_range: Option<String>,
    /// The `ETag` of the response.
    pub etag: Option<String>,
    /// The query string (`$args`), without the `?`.
    pub query: Option<String>,
}

/// A running nginx serving `root` on `127.0.0.1:port`. Dropping it stops it.
pub struct Nginx {
    pub port: u16,
    pub root: PathBuf,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

/// Tab-separated: nginx writes a tab inside a value as `\x09` (`escape=default`), so a tab
/// always separates fields. An empty value is `-`.
const LOG_FORMAT: &str = "$remote_addr\\t$request_method\\t$uri\\t$status\\t$body_bytes_sent\\t$bytes_sent\\t$http_range\\t$request_time\\t$http_if_range\\t$sent_http_etag\\t$args";

impl Nginx {
    /// Serves `root` on a free port of 127.0.0.1.
    pub fn start(root: &Path) -> Nginx {
        let mut last = String::new();
        // The port is free when asked for, but another process may take it before nginx binds.
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("binding 127.0.0.1:0").port();
            let mut n = Nginx::configure(root, port, None);
            match n.launch() {
                Ok(()) => return n,
                Err(e) => last = e,
            }
        }
        panic!("nginx did not start on a free port of 127.0.0.1: {last}");
    }

    /// Serves `root` on `127.0.0.1:port`.
    pub fn start_on(root: &Path, port: u16) -> Nginx {
        Nginx::start_limited(root, port, None)
    }

    /// As [`Nginx::start_on`], sending `*.inplace` files (images) at most at `rate` (nginx's
    /// `limit_rate`, e.g. `"16m"`) per request, so that a transfer lasts long enough to be cut.
    pub fn start_limited(root: &Path, port: u16, rate: Option<&str>) -> Nginx {
        let mut n = Nginx::configure(root, port, rate);
        n.launch().unwrap_or_else(|e| panic!("nginx on 127.0.0.1:{port}: {e}"));
        n
    }

    /// Fast stop (SIGTERM): nginx closes every connection at once, a transfer in flight is cut
    /// where it is. Returns when the process has exited. Does nothing when it is stopped.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        if let Ok(None) = child.try_wait() {
            let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("a child's pid is positive");
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            // A process that ignored SIGTERM this long is killed outright.
            let _ = child.kill();
        }
        let _ = child.wait();
    }

    /// Starts it again on the same port, with the same configuration; the access log goes on
    /// (appended).
    pub fn restart(&mut self) {
        self.stop();
        self.launch().unwrap_or_else(|e| panic!("restarting nginx on 127.0.0.1:{}: {e}", self.port));
    }

    /// Whether the process is running.
    pub fn running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Every request logged so far, in order.
    pub fn access_log(&self) -> Vec<Access> {
        let text = std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default();
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| parse_access(l).unwrap_or_else(|| panic!("an access log line not in the harness's format: {l:?}")))
            .collect()
    }

    /// The requests for `path`, in order.
    pub fn requests_for(&self, path: &str) -> Vec<Access> {
        self.access_log().into_iter().filter(|a| a.path == path).collect()
    }

    /// nginx's error log, for failure messages.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// `http://127.0.0.1:PORT/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{}", self.port, path.trim_start_matches('/'))
    }

    /// `http://10.0.2.2:PORT/path`: the same, as a guest on QEMU's user network reaches it.
    pub fn guest_url(&self, path: &str) -> String {
        format!("http://10.0.2.2:{}/{}", self.port, path.trim_start_matches('/'))
    }

    fn configure(root: &Path, port: u16, image_rate: Option<&str>) -> Nginx {
        let images = image_rate.map(|r| format!("location ~ \\.inplace$ {{ limit_rate {r}; }}")).unwrap_or_default();
        let root = std::fs::canonicalize(root).unwrap_or_else(|e| panic!("the folder to serve, {}: {e}", root.display()));
        let dir = tempfile::Builder::new().prefix("nginx-").tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::create_dir(d.join("tmp")).expect("nginx's temporary folder");
        let conf = format!(
            r#"# Written by the inplace test harness (tests/src/nginx.rs).
daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log notice;
events {{ worker_connections 512; }}
http {{
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    types {{ text/plain toml sig ipxe cfg; application/octet-stream inplace; }}
    default_type application/octet-stream;
    log_format inplace escape=default '{LOG_FORMAT}';
    access_log {d}/access.log inplace;
    sendfile on;
    tcp_nopush on;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        autoindex off;
        etag on;
        {images}
    }}
}}
"#,
            d = d.display(),
            root = root.display(),
        );
        std::fs::write(d.join("nginx.conf"), conf).expect("writing nginx.conf");
        Nginx { port, root, dir, child: None }
    }

    /// Starts the process and returns once it listens: nginx writes its pid file only after it
    /// has bound its sockets, and exits when it cannot.
    fn launch(&mut self) -> Result<(), String> {
        let d = self.dir.path();
        let pid_file = d.join("nginx.pid");
        let _ = std::fs::remove_file(&pid_file);
        let bin = ["/usr/sbin/nginx", "/usr/bin/nginx"].into_iter().map(Path::new).find(|p| p.exists()).unwrap_or(Path::new("nginx"));
        let stderr = std::fs::OpenOptions::new().create(true).append(true).open(d.join("stderr.log")).expect("nginx's stderr file");
        let child = Command::new(bin)
            .arg("-p")
            .arg(d)
            .arg("-c")
            .arg(d.join("nginx.conf"))
            .arg("-e")
            .arg(d.join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("starting {} ({e}): scripts/setup installs nginx-light", bin.display()))?;
        let pid = child.id().to_string();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let child = self.child.as_mut().expect("just started");
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                let stderr = std::fs::read_to_string(d.join("stderr.log")).unwrap_or_default();
                return Err(format!("nginx exited ({status}) before it listened:\n{}{stderr}", self.error_log()));
            }
            if std::fs::read_to_string(&pid_file).is_ok_and(|p| p.trim() == pid)
                && TcpStream::connect_timeout(&([127, 0, 0, 1], self.port).into(), Duration::from_secs(1)).is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.stop();
                return Err(format!("nginx did not listen within 15 s:\n{}", self.error_log()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One line of [`LOG_FORMAT`]; `None` when it is not one.
fn parse_access(line: &str) -> Option<Access> {
    let f: Vec<&str> = line.split('\t').collect();
    if f.len() != 11 {
        return None;
    }
    let opt = |s: &str| (s != "-").then(|| unescape(s));
    Some(Access {
        remote: f[0].to_string(),
        method: f[1].to_string(),
        path: unescape(f[2]),
        status: f[3].parse().ok()?,
        body_bytes: f[4].parse().ok()?,
        bytes_sent: f[5].parse().ok()?,
        range: opt(f[6]),
        request_time: f[7].parse().ok()?,
        if_range: opt(f[8]),
        etag: opt(f[9]),
        query: opt(f[10]).filter(|q| !q.is_empty()),
    })
}

/// Undoes nginx's `escape=default` (`\xHH` for `"`, `\` and bytes outside printable ASCII).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') && i + 3 < b.len() {
            if let Some(v) = std::str::from_utf8(&b[i + 2..i + 4]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_line_with_escapes_and_empty_values() {
        let a = parse_access("127.0.0.1\tGET\t/a b\\x22.img\t206\t100\t383\tbytes=0-99\t0.004\t-\t\"65f0-1a\"\tseat=a").unwrap();
        assert_eq!(a.query.as_deref(), Some("seat=a"));
        assert_eq!(a.path, "/a b\".img");
        assert_eq!((a.status, a.body_bytes, a.bytes_sent), (206, 100, 383));
        assert_eq!(a.range.as_deref(), Some("bytes=0-99"));
        assert_eq!(a.if_range, None);
        assert_eq!(a.etag.as_deref(), Some("\"65f0-1a\""));
        assert!((a.request_time - 0.004).abs() < 1e-9);
        assert!(parse_access("127.0.0.1 - - [02/Dec/2026] \"GET / HTTP/1.1\" 200 5").is_none());
    }
}
