//! sha256 of a file, streamed.

use sha2::{Digest, Sha256};
use std::io::{self, Read};
use std::path::Path;

/// The size and lowercase hex sha256 of a file.
pub fn sha256_file(path: &Path) -> io::Result<(u64, String)> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hex(&h.finalize())))
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether the file at `path` has this size and sha256 (checking the size first).
pub fn matches(path: &Path, size: u64, sha256: &str) -> io::Result<bool> {
    if std::fs::metadata(path)?.len() != size {
        return Ok(false);
    }
    Ok(sha256_file(path)?.1.eq_ignore_ascii_case(sha256))
}
