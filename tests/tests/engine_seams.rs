//! The engine's edge: no public function of the engine returns `Result<_, String>` (errors
//! are `crate::error::Error`, or a module's typed error), and no engine message names a
//! command-line flag (hints are data; the CLI words them). `cli/` is the front end and is not
//! checked (nor, for flags, `boot/`, the PE's front end); arguments handed to other programs
//! (`.arg("--prefix")`) are not messages.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            if !matches!(p.file_name().and_then(|n| n.to_str()), Some("vendor" | "cli")) {
                rust_files(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "rs") && !p.ends_with("tests.rs") {
            out.push(p);
        }
    }
}

/// The file's text before its tests (`#[cfg(test)]`).
fn code(p: &Path) -> String {
    let text = std::fs::read_to_string(p).unwrap();
    match text.find("#[cfg(test)]") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

fn engine_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    rust_files(&inplace_tests::workspace().join("pe/src"), &mut files);
    files.sort();
    files
}

#[test]
fn no_public_engine_function_returns_a_string_error() {
    let mut found = Vec::new();
    for f in engine_files() {
        for (i, line) in code(&f).lines().enumerate() {
            let t = line.trim_start();
            if t.starts_with("pub fn") && t.contains("Result<") && t.contains(", String>") {
                found.push(format!("{}:{}: {t}", f.display(), i + 1));
            }
        }
    }
    assert!(found.is_empty(), "public engine functions returning Result<_, String>:\n  {}", found.join("\n  "));
}

#[test]
fn no_engine_message_names_a_flag() {
    let mut found = Vec::new();
    // `boot/` is the PE's own front end: it may tell how to build the boot media.
    for f in engine_files().into_iter().filter(|f| !f.components().any(|c| c.as_os_str() == "boot")) {
        for (i, line) in code(&f).lines().enumerate() {
            let t = line.trim_start();
            if t.starts_with("//") || t.contains(".arg(") || t.contains(".args(") || t.contains("args.push(") || t.starts_with("#[arg") {
                continue;
            }
            // A string literal holding ` --word` or `"--word`.
            let flag = t.split('"').enumerate().filter(|(k, _)| k % 2 == 1).any(|(_, lit)| {
                lit.split_whitespace().any(|w| w.starts_with("--") && w.len() > 2 && w.as_bytes()[2].is_ascii_lowercase())
            });
            if flag {
                found.push(format!("{}:{}: {t}", f.display(), i + 1));
            }
        }
    }
    assert!(found.is_empty(), "engine messages naming a command-line flag:\n  {}", found.join("\n  "));
}
