//! Running the Windows agent (`inplace.exe`) under Wine from a host test, in a prefix of its
//! own (`target/wine-tests`, made by `scripts/test-agent-wine --prepare`), so it never shares a
//! wineserver with the agent's own tests under Wine.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The prefix, made once per test process.
fn prefix() -> PathBuf {
    static PREFIX: OnceLock<PathBuf> = OnceLock::new();
    PREFIX
        .get_or_init(|| {
            let prefix = crate::workspace().join("target/wine-tests");
            let out = Command::new(crate::workspace().join("scripts/test-agent-wine"))
                .arg("--prepare")
                .env("INPLACE_WINEPREFIX", &prefix)
                .output()
                .expect("running scripts/test-agent-wine --prepare");
            assert!(out.status.success(), "scripts/test-agent-wine --prepare: {}", String::from_utf8_lossy(&out.stderr));
            prefix
        })
        .clone()
}

fn wine() -> PathBuf {
    ["/usr/bin/wine64", "/usr/bin/wine", "/usr/lib/wine/wine64"].iter().map(PathBuf::from).find(|p| p.exists()).expect("wine (scripts/setup installs wine64)")
}

/// A host path as Wine's `Z:` drive shows it.
pub fn path(p: &Path) -> String {
    format!("Z:{}", p.display().to_string().replace('/', "\\"))
}

/// Runs `exe` under Wine with `args` and waits for it.
pub fn run(exe: &Path, args: &[&str]) -> Output {
    let out = Command::new(wine())
        .arg(exe)
        .args(args)
        .env("WINEPREFIX", prefix())
        .env("WINEDEBUG", "-all")
        .env("WINEDLLOVERRIDES", "mscoree,mshtml=")
        .env("WINEARCH", "win64")
        .output()
        .expect("running wine");
    out
}
