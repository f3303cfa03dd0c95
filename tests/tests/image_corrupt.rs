//! Bad images are refused before anything is written: the target's bytes are unchanged, and
//! each failure says what is wrong.

mod image_common;

use std::fs::OpenOptions;
use std::path::Path;

use image_common::*;

/// Applies `image` to `target` (whose untouched copy is `pristine`) expecting a refusal that
/// mentions `expect`; the target must still equal the copy, byte for byte.
fn refused(image: &Path, target: &Path, pristine: &Path, extra: &[&str], expect: &str) {
    let mut args = vec!["image", "apply", image.to_str().unwrap(), "--disk", target.to_str().unwrap(), "--keep", "2", "--yes"];
    args.extend_from_slice(extra);
    let o = inplace(&args);
    let t = text(&o);
    assert!(!o.status.success(), "apply of {} with {extra:?} should fail:\n{t}", image.display());
    assert!(t.contains(expect), "expected {expect:?} in:\n{t}");
    assert!(t.contains("nothing was written") && t.matches(expect).count() == 1, "the refusal says once that nothing was written:\n{t}");
    assert!(!t.contains("panicked"), "{t}");
    let same = std::process::Command::new("cmp").arg("-s").arg(pristine).arg(target).status().unwrap().success();
    assert!(same, "the target changed after a refused apply ({expect})");
}

#[test]
fn corrupt_images_are_refused_before_any_write() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let reference = small_reference(d, 6);
    let good = d.join("good.img");
    let key = d.join("key");
    let o = inplace(&["image", "keygen", "--out", key.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let public = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let o = inplace(&["image", "create", "--from", reference.to_str().unwrap(), "--out", good.to_str().unwrap(), "--chunk-mib", "1", "--sign-key", key.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let digest = text(&o).lines().find_map(|l| l.strip_prefix("sha256 ")).unwrap().trim().to_string();
    let t = target(d, "target.img", 400);
    let pristine = d.join("pristine.img");
    inplace_tests::fixtures::run(std::process::Command::new("cp").arg("--sparse=always").arg(&t.path).arg(&pristine));
    let p = pristine.as_path();

    // The good image passes verify with both pins.
    let o = inplace(&["image", "verify", good.to_str().unwrap(), "--pin-sha256", &digest, "--pin-key", &public]);
    assert!(o.status.success(), "{}", text(&o));

    // A flipped byte in one chunk.
    let flipped = d.join("flipped.img");
    std::fs::copy(&good, &flipped).unwrap();
    let mid = (4096 + data_end(&flipped)) / 2;
    write_byte_xor(&flipped, mid);
    refused(&flipped, &t.path, p, &[], "is damaged");
    let o = inplace(&["image", "verify", flipped.to_str().unwrap()]);
    assert!(!o.status.success() && text(&o).contains("is damaged"), "{}", text(&o));

    // A truncated file.
    let short = d.join("short.img");
    std::fs::copy(&good, &short).unwrap();
    let len = std::fs::metadata(&short).unwrap().len();
    OpenOptions::new().write(true).open(&short).unwrap().set_len(len - 1000).unwrap();
    refused(&short, &t.path, p, &[], "truncated");
    let tiny = d.join("tiny.img");
    std::fs::write(&tiny, b"INPLIMG").unwrap();
    refused(&tiny, &t.path, p, &[], "truncated");
    std::fs::write(&tiny, b"").unwrap();
    refused(&tiny, &t.path, p, &[], "truncated");

    // A wrong pinned hash.
    let wrong = "00".repeat(32);
    refused(&good, &t.path, p, &["--pin-sha256", &wrong], "does not match the pinned sha256");
    // A bad signature (one byte of it flipped), and a key other than the pinned one.
    let badsig = d.join("badsig.img");
    std::fs::copy(&good, &badsig).unwrap();
    write_byte_xor(&badsig, len - 1);
    refused(&badsig, &t.path, p, &[], "bad signature");
    refused(&good, &t.path, p, &["--pin-key", &"11".repeat(32)], "is pinned");
    // Damaged metadata: a byte of the manifest.
    let badman = d.join("badman.img");
    std::fs::copy(&good, &badman).unwrap();
    write_byte_xor(&badman, data_end(&badman) + 10);
    refused(&badman, &t.path, p, &[], "do not match the image digest");

    // Too large for the space: keep everything but the 63 MiB after the store.
    refused(&good, &t.path, p, &["--keep", "1,2,3"], "does not fit");
    // The wrong disk.
    refused(&good, &t.path, p, &["--expect-size", "1000"], "wrong disk");
    // A sector size the image cannot be translated to is covered by unit tests of
    // `apply::sector_check`; the target here has 512-byte sectors.

    // And the good image still applies.
    let o = inplace(&["image", "apply", good.to_str().unwrap(), "--disk", t.path.to_str().unwrap(), "--keep", "2", "--yes", "--pin-key", &public]);
    assert!(o.status.success(), "{}", text(&o));
}
