//! A small HTTP/1.1 server on 127.0.0.1 for the image tests: serves one file with `Range`
//! support (206, Content-Range, ETag, If-Range), and can be told to cut a response after N
//! bytes (a number of times), stall before the body, send slowly, or answer a fixed status. It
//! logs every request's range so a test can check that a transfer resumed instead of
//! restarting. [`Server::start_dir`] serves the files of a folder by name instead, and answers
//! `404 Not Found` for a name it does not hold.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
pub struct Behaviour {
    /// Cut this many responses (those longer than `cut_after`) after `cut_after` body bytes.
    pub cuts_left: AtomicU64,
    pub cut_after: AtomicU64,
    /// Stall this many responses for `stall_ms` before the body.
    pub stalls_left: AtomicU64,
    pub stall_ms: AtomicU64,
    /// Answer every request with this status (0 = serve normally).
    pub status: AtomicU64,
    /// Ignore Range and answer 200 with the whole file.
    pub no_ranges: AtomicBool,
    /// Send bodies in 64 KiB pieces this many milliseconds apart (0 = as fast as possible).
    pub pace_ms: AtomicU64,
}

pub struct Server {
    pub port: u16,
    pub behaviour: Arc<Behaviour>,
    /// `(first, last)` byte of each ranged request, in order; `None` for a plain GET.
    pub log: Arc<Mutex<Vec<Option<(u64, u64)>>>>,
}

impl Server {
    /// Serves `file` at every path on 127.0.0.1 (an ephemeral port).
    pub fn start(file: PathBuf) -> Server {
        Server::serve(Root::File(file))
    }

    /// Serves the files of `dir` (`/NAME` is `dir/NAME`; no subfolders) on 127.0.0.1, and
    /// `404 Not Found` for any other path.
    pub fn start_dir(dir: PathBuf) -> Server {
        Server::serve(Root::Dir(dir))
    }

    fn serve(root: Root) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
        let port = listener.local_addr().unwrap().port();
        let behaviour = Arc::new(Behaviour::default());
        let log = Arc::new(Mutex::new(Vec::new()));
        let (b, l) = (behaviour.clone(), log.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (b, l, f) = (b.clone(), l.clone(), root.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &f, &b, &l);
                });
            }
        });
        Server { port, behaviour, log }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    pub fn ranges(&self) -> Vec<Option<(u64, u64)>> {
        self.log.lock().unwrap().clone()
    }
}

/// What a server serves.
#[derive(Clone)]
enum Root {
    File(PathBuf),
    Dir(PathBuf),
}

impl Root {
    /// The file a request line (`GET /NAME HTTP/1.1`) asks for; `None`: there is none.
    fn file(&self, request: &str) -> Option<PathBuf> {
        match self {
            Root::File(f) => Some(f.clone()),
            Root::Dir(d) => {
                let path = request.split_whitespace().nth(1)?.trim_start_matches('/');
                let ok = !path.is_empty() && !path.contains('/') && path != "..";
                Some(d.join(path)).filter(|f| ok && f.is_file())
            }
        }
    }
}

fn serve(conn: TcpStream, root: &Root, b: &Behaviour, log: &Mutex<Vec<Option<(u64, u64)>>>) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut out = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut range = None;
        loop {
            let mut h = String::new();
            reader.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("range") {
                    range = v.trim().strip_prefix("bytes=").and_then(|r| {
                        let (a, z) = r.split_once('-')?;
                        Some((a.parse::<u64>().ok()?, z.parse::<u64>().ok()))
                    });
                }
            }
        }
        let status = b.status.load(Ordering::SeqCst);
        if status != 0 {
            let body = format!("error {status}\n");
            write!(out, "HTTP/1.1 {status} Error\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())?;
            return Ok(());
        }
        let Some(file) = root.file(&line) else {
            let body = "not found\n";
            write!(out, "HTTP/1.1 404 Not Found\r\nContent-Length: {}\r\n\r\n{body}", body.len())?;
            continue;
        };
        let mut f = std::fs::File::open(file)?;
        let len = f.metadata()?.len();
        let (first, last, partial) = match range {
            Some((a, z)) if !b.no_ranges.load(Ordering::SeqCst) => (a, z.unwrap_or(len - 1).min(len - 1), true),
            _ => (0, len - 1, false),
        };
        log.lock().unwrap().push(if partial { Some((first, last)) } else { None });
        let n = last + 1 - first;
        if partial {
            write!(out, "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {first}-{last}/{len}\r\n")?;
        } else {
            write!(out, "HTTP/1.1 200 OK\r\n")?;
        }
        write!(out, "Content-Length: {n}\r\nETag: \"fixture-1\"\r\nAccept-Ranges: bytes\r\n\r\n")?;
        if b.stalls_left.load(Ordering::SeqCst) > 0 && n > 1 {
            b.stalls_left.fetch_sub(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(b.stall_ms.load(Ordering::SeqCst)));
            return Ok(());
        }
        let cut = b.cut_after.load(Ordering::SeqCst);
        let mut limit = n;
        let mut cutting = false;
        if b.cuts_left.load(Ordering::SeqCst) > 0 && n > cut {
            b.cuts_left.fetch_sub(1, Ordering::SeqCst);
            limit = cut;
            cutting = true;
        }
        f.seek(SeekFrom::Start(first))?;
        let mut take = f.take(limit);
        let pace = b.pace_ms.load(Ordering::SeqCst);
        if pace == 0 {
            std::io::copy(&mut take, &mut out)?;
        } else {
            let mut piece = vec![0u8; 64 << 10];
            loop {
                let n = take.read(&mut piece)?;
                if n == 0 {
                    break;
                }
                out.write_all(&piece[..n])?;
                std::thread::sleep(Duration::from_millis(pace));
            }
        }
        out.flush()?;
        if cutting {
            let _ = out.shutdown(std::net::Shutdown::Both);
            return Ok(());
        }
    }
}
