//! Images over HTTP from a server on 127.0.0.1 that cuts connections, stalls, or answers
//! 404/500. A cut transfer resumes with a Range request at the first chunk not received and
//! ends with the same disk as a local apply.

mod image_common;

use std::sync::atomic::Ordering;

use image_common::*;
use inplace_tests::http_server::Server;

#[test]
fn http_apply_resumes_after_cuts_and_reports_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let reference = small_reference(d, 6);
    let image = d.join("img.img");
    // Pinned GUIDs: every apply of this image gives the same bytes, so disks can be compared.
    let o = inplace(&["image", "create", "--from", reference.to_str().unwrap(), "--out", image.to_str().unwrap(), "--chunk-mib", "1", "--pin-guids"]);
    assert!(o.status.success(), "{}", text(&o));

    let local = target(d, "local.img", 400);
    let o = inplace(&["image", "apply", image.to_str().unwrap(), "--disk", local.path.to_str().unwrap(), "--keep", "2", "--yes"]);
    assert!(o.status.success(), "{}", text(&o));
    let want = file_sha(&local.path);

    let server = Server::start(image.clone());
    let url = server.url("img.img");
    let fast = ["--backoff", "0.05", "--http-timeout", "2"];

    // Three cuts while streaming (no staging).
    let t = target(d, "streamed.img", 400);
    server.behaviour.cut_after.store(3 << 19, Ordering::SeqCst);
    server.behaviour.cuts_left.store(3, Ordering::SeqCst);
    let mut args = vec!["image", "apply", &url, "--disk", t.path.to_str().unwrap(), "--keep", "2", "--yes", "--no-stage"];
    args.extend_from_slice(&fast);
    let o = inplace(&args);
    let log = text(&o);
    assert!(o.status.success(), "{log}");
    assert_eq!(server.behaviour.cuts_left.load(Ordering::SeqCst), 0, "all three cuts happened");
    assert_eq!(log.matches("resuming at byte").count(), 3, "{log}");
    assert!(log.contains("with Range: bytes="), "{log}");
    if file_sha(&t.path) != want {
        let c = std::process::Command::new("sh").arg("-c").arg(format!("cmp -l {} {} | head -20; cmp -l {} {} | wc -l", local.path.display(), t.path.display(), local.path.display(), t.path.display())).output().unwrap();
        panic!("streamed apply differs from the local apply:\n{}", String::from_utf8_lossy(&c.stdout));
    }
    // The data streams: the first starts at the first chunk, each resume later, never at 4096 again.
    let starts: Vec<u64> = server.ranges().into_iter().flatten().filter(|(a, z)| z - a > 1 << 20).map(|(a, _)| a).collect();
    assert_eq!(starts.len(), 4, "{:?}", server.ranges());
    assert_eq!(starts[0], 4096);
    assert!(starts.windows(2).all(|w| w[1] > w[0]), "a resume restarted: {starts:?}");

    // Staged: three cuts during the download, then a stall; verified before writing.
    let t = target(d, "staged.img", 400);
    server.log.lock().unwrap().clear();
    server.behaviour.cuts_left.store(3, Ordering::SeqCst);
    let stage = d.join("stage");
    let mut args = vec!["image", "apply", &url, "--disk", t.path.to_str().unwrap(), "--keep", "2", "--yes", "--stage", stage.to_str().unwrap()];
    args.extend_from_slice(&fast);
    let o = inplace(&args);
    let log = text(&o);
    assert!(o.status.success(), "{log}");
    assert_eq!(log.matches("resuming at byte").count(), 3, "{log}");
    assert_eq!(file_sha(&t.path), want, "staged apply differs from the local apply");

    // A stall longer than the timeout: retried, then verify completes.
    server.behaviour.stall_ms.store(4000, Ordering::SeqCst);
    server.behaviour.stalls_left.store(1, Ordering::SeqCst);
    let mut args = vec!["image", "verify", &url];
    args.extend_from_slice(&fast);
    let o = inplace(&args);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("retry 1"), "{}", text(&o));

    // 404 and 500.
    let before = file_sha(&t.path);
    server.behaviour.status.store(404, Ordering::SeqCst);
    let mut args = vec!["image", "apply", &url, "--disk", t.path.to_str().unwrap(), "--keep", "2", "--yes"];
    args.extend_from_slice(&fast);
    let o = inplace(&args);
    let e = text(&o);
    assert!(!o.status.success() && e.contains("HTTP 404") && e.contains("Check the URL") && e.contains("nothing was written"), "{e}");
    server.behaviour.status.store(500, Ordering::SeqCst);
    let mut args = vec!["image", "info", &url, "--retries", "2"];
    args.extend_from_slice(&fast);
    let o = inplace(&args);
    let e = text(&o);
    assert!(!o.status.success() && e.contains("HTTP 500") && e.contains("gave up after 2 retries"), "{e}");
    server.behaviour.status.store(0, Ordering::SeqCst);
    assert_eq!(file_sha(&t.path), before);

    // TLS spoken to a plain-HTTP port.
    let https = format!("https://127.0.0.1:{}/img.img", server.port);
    let mut args = vec!["image", "info", &https];
    args.extend_from_slice(&fast);
    let o = inplace(&args);
    let e = text(&o);
    assert!(!o.status.success() && e.contains("TLS error"), "{e}");
}
