//! Keys and signatures made the way a technician makes them, with the `inplace` CLI: a key
//! pair (`inplace image keygen`), a signed preset (`inplace preset sign`), a signed image
//! (`inplace image create --sign-key`), and the PE's initramfs with a preset key baked in
//! (`scripts/add-preset-key`, which `scripts/build-pe --preset-key` runs).

use std::path::{Path, PathBuf};
use std::process::Command;

/// A key pair: the secret key file, the public key file (what keygen prints), its hex.
pub struct Keys {
    pub secret: PathBuf,
    pub public: PathBuf,
    pub hex: String,
}

/// `inplace image keygen --out DIR/NAME.key > DIR/NAME.pub`.
pub fn keygen(dir: &Path, name: &str) -> Keys {
    let secret = dir.join(format!("{name}.key"));
    let o = Command::new(crate::inplace_bin()).args(["image", "keygen", "--out"]).arg(&secret).output().expect("running inplace image keygen");
    assert!(o.status.success(), "inplace image keygen: {}", String::from_utf8_lossy(&o.stderr));
    let hex = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert_eq!(hex.len(), 64, "keygen prints the public key: {hex:?}");
    let public = dir.join(format!("{name}.pub"));
    std::fs::write(&public, &o.stdout).unwrap();
    Keys { secret, public, hex }
}

/// `inplace preset sign --key KEY FILE`; returns FILE.sig.
pub fn sign_preset(keys: &Keys, file: &Path) -> PathBuf {
    let o = Command::new(crate::inplace_bin()).args(["preset", "sign", "--key"]).arg(&keys.secret).arg(file).output().expect("running inplace preset sign");
    assert!(o.status.success(), "inplace preset sign: {}", String::from_utf8_lossy(&o.stderr));
    let mut sig = file.as_os_str().to_os_string();
    sig.push(".sig");
    PathBuf::from(sig)
}

/// `scripts/add-preset-key PUB INITRAMFS OUT`: the PE's initramfs with `keys`' public key.
pub fn keyed_initramfs(keys: &Keys, initramfs: &Path, out: &Path) {
    let o = Command::new(crate::workspace().join("scripts/add-preset-key")).arg(&keys.public).arg(initramfs).arg(out).output().expect("running scripts/add-preset-key");
    assert!(o.status.success(), "scripts/add-preset-key: {}", String::from_utf8_lossy(&o.stderr));
}
