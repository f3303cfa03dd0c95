//! The nginx harness (`tests/src/nginx.rs`) against Debian's nginx-light: ranges and ETags as a
//! lab serves them, the access log read back, a fast stop that cuts a transfer in flight, and a
//! restart on the same port that appends to the same log.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use inplace_tests::nginx::Nginx;

/// One `GET` with `Connection: close`: the status, the headers (names in lower case) and the body.
fn get(port: u16, path: &str, headers: &[(&str, &str)]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let end = all.windows(4).position(|w| w == b"\r\n\r\n").expect("a header block");
    let head = String::from_utf8_lossy(&all[..end]).into_owned();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string())).collect();
    (status, headers, all[end + 4..].to_vec())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn pattern_file(dir: &Path, name: &str, len: usize) -> Vec<u8> {
    let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(dir.join(name), &data).unwrap();
    data
}

#[test]
fn nginx_serves_ranges_with_etags_and_logs_them() {
    let root = tempfile::tempdir().unwrap();
    let data = pattern_file(root.path(), "image.inplace", 100_000);
    let nginx = Nginx::start(root.path());
    assert_eq!(nginx.url("/image.inplace"), format!("http://127.0.0.1:{}/image.inplace", nginx.port));
    assert_eq!(nginx.guest_url("image.inplace"), format!("http://10.0.2.2:{}/image.inplace", nginx.port));

    let (status, headers, body) = get(nginx.port, "/image.inplace", &[]);
    assert_eq!(status, 200);
    assert_eq!(body, data);
    let etag = header(&headers, "etag").expect("an ETag").to_string();
    assert_eq!(header(&headers, "accept-ranges"), Some("bytes"));

    let (status, headers, body) = get(nginx.port, "/image.inplace", &[("Range", "bytes=1000-1999")]);
    assert_eq!(status, 206);
    assert_eq!(header(&headers, "content-range"), Some("bytes 1000-1999/100000"));
    assert_eq!(body, &data[1000..2000]);
    // If-Range with the file's own ETag resumes; with another one the whole file comes back.
    let (status, _, body) = get(nginx.port, "/image.inplace", &[("Range", "bytes=99000-"), ("If-Range", &etag)]);
    assert_eq!((status, body.len()), (206, 1000));
    let (status, _, body) = get(nginx.port, "/image.inplace", &[("Range", "bytes=99000-"), ("If-Range", "\"other\"")]);
    assert_eq!((status, body.len()), (200, 100_000));
    let (status, _, _) = get(nginx.port, "/missing.toml", &[]);
    assert_eq!(status, 404);

    let log = nginx.access_log();
    assert_eq!(log.len(), 5, "{log:#?}");
    assert!(log.iter().all(|a| a.remote == "127.0.0.1" && a.method == "GET"), "{log:#?}");
    let summary: Vec<(&str, u16, u64, Option<&str>)> =
        log.iter().map(|a| (a.path.as_str(), a.status, a.body_bytes, a.range.as_deref())).collect();
    assert_eq!(
        summary,
        [
            ("/image.inplace", 200, 100_000, None),
            ("/image.inplace", 206, 1000, Some("bytes=1000-1999")),
            ("/image.inplace", 206, 1000, Some("bytes=99000-")),
            ("/image.inplace", 200, 100_000, Some("bytes=99000-")),
            ("/missing.toml", 404, log[4].body_bytes, None),
        ]
    );
    assert_eq!(log[2].if_range.as_deref(), Some(etag.as_str()));
    assert_eq!(log[0].etag.as_deref(), Some(etag.as_str()));
    assert!(log[0].bytes_sent > log[0].body_bytes, "headers count in bytes_sent");
    assert!(log.iter().all(|a| a.request_time >= 0.0));
    assert_eq!(nginx.requests_for("/missing.toml").len(), 1);
}

/// A fast stop cuts a download where it is; a restart serves again on the same port and the
/// log goes on.
#[test]
fn nginx_stop_cuts_a_transfer_and_restart_keeps_port_and_log() {
    let root = tempfile::tempdir().unwrap();
    let big = root.path().join("big.inplace");
    let len = 512u64 << 20;
    std::fs::File::create(&big).unwrap().set_len(len).unwrap();
    pattern_file(root.path(), "preset.toml", 10);
    let mut nginx = Nginx::start(root.path());
    let port = nginx.port;
    assert_eq!(get(port, "/preset.toml", &[]).0, 200);

    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"GET /big.inplace HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut buf = vec![0u8; 1 << 20];
    s.read_exact(&mut buf).unwrap();
    nginx.stop();
    assert!(!nginx.running());
    let mut got = buf.len() as u64;
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n as u64,
        }
    }
    assert!(got < len, "the whole file arrived although nginx stopped");
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "something still listens on {port}");

    nginx.restart();
    assert_eq!(nginx.port, port);
    let (status, _, body) = get(port, "/big.inplace", &[("Range", "bytes=1048576-1048675")]);
    assert_eq!((status, body.len()), (206, 100));
    let log = nginx.access_log();
    let paths: Vec<&str> = log.iter().map(|a| a.path.as_str()).collect();
    // The cut transfer never ended, so nginx never logged it.
    assert_eq!(paths, ["/preset.toml", "/big.inplace"], "{log:#?}");
    assert_eq!(log[1].range.as_deref(), Some("bytes=1048576-1048675"));
}

#[test]
fn nginx_starts_on_a_chosen_port() {
    let root = tempfile::tempdir().unwrap();
    pattern_file(root.path(), "boot.ipxe", 10);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let nginx = Nginx::start_on(root.path(), port);
    assert_eq!(nginx.port, port);
    assert_eq!(get(port, "/boot.ipxe", &[]).0, 200);
}
