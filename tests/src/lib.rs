//! Shared helpers for inplace's integration tests: fixture disk builders, the QEMU harness, and
//! access to the built binaries.

pub mod carve_fixtures;
pub mod collector;
pub mod debian;
pub mod e2e;
pub mod fixtures;
pub mod http_server;
pub mod job_fixtures;
pub mod nginx;
pub mod pcap;
pub mod migrate_fixtures;
pub mod qemu;
pub mod signing;
pub mod windows_fixtures;
pub mod wine;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The static inplace (`target/x86_64-unknown-linux-musl/release/inplace`, built when missing):
/// the restore agent a host job installs (the hand-off refuses a dynamic program).
pub fn static_inplace() -> PathBuf {
    let p = workspace().join("target/x86_64-unknown-linux-musl/release/inplace");
    if !p.exists() {
        let ok = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--release", "--target", "x86_64-unknown-linux-musl", "-p", "inplace"])
            .current_dir(workspace())
            .status()
            .expect("running cargo build");
        assert!(ok.success(), "building the static inplace");
    }
    p
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// The `inplace` CLI built for the host: `$INPLACE_BIN`, else `target/debug/inplace`, built
/// once per test process so a test never runs a stale binary.
pub fn inplace_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("INPLACE_BIN") {
            return PathBuf::from(p);
        }
        cargo_build(&["-p", "inplace", "--bin", "inplace"]);
        workspace().join("target/debug/inplace")
    })
    .clone()
}

/// The Windows restore agent, `inplace-agent.exe` (`scripts/build-agent`): built for
/// `x86_64-pc-windows-gnu` with Debian's mingw-w64 (or `INPLACE_AGENT_EXE`).
pub fn windows_agent() -> PathBuf {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        if let Some(p) = std::env::var_os("INPLACE_AGENT_EXE") {
            return PathBuf::from(p);
        }
        cargo_build(&["--release", "-p", "inplace-agent", "--target", "x86_64-pc-windows-gnu"]);
        workspace().join("target/x86_64-pc-windows-gnu/release/inplace-agent.exe")
    })
    .clone()
}

/// `cargo build --quiet ARGS` in the workspace, from inside a test.
fn cargo_build(args: &[&str]) {
    let mut cmd = Command::new(env!("CARGO"));
    // Cargo sets these for the test process; a nested build that inherits them looks like a
    // different environment to build scripts (ring reruns on CARGO_MANIFEST_DIR) and
    // rebuilds half the tree on every test run.
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("CARGO_PKG_")
            || matches!(
                k.as_ref(),
                "CARGO_MANIFEST_DIR" | "CARGO_MANIFEST_PATH" | "CARGO_CRATE_NAME" | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_TARGET_TMPDIR" | "CARGO_RUSTC_CURRENT_DIR"
            )
        {
            cmd.env_remove(&key);
        }
    }
    let status = cmd.arg("build").arg("--quiet").args(args).current_dir(workspace()).status().expect("running cargo build");
    assert!(status.success(), "cargo build {} failed", args.join(" "));
}

/// sha256 of a file, hex.
pub fn sha256_file(path: &std::path::Path) -> String {
    use sha2::{Digest, Sha256};
    let mut f = std::fs::File::open(path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    format!("{:x}", h.finalize())
}
