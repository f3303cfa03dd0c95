//! Refusing hostile manifest paths before anything is written.
//!
//! A manifest path is '/'-separated and relative to the profile folder. Anything that could make
//! it name a place outside the destination, a device, or an alternate data stream is refused.

use std::fmt;

/// Why a manifest path is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathProblem {
    Empty,
    Absolute,
    EmptyComponent,
    DotComponent,
    Separator,
    Colon,
    ForbiddenChar(char),
    ReservedName(String),
    TrailingDotOrSpace,
}

impl fmt::Display for PathProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "is empty"),
            Self::Absolute => write!(f, "is absolute (it must be relative to the profile folder)"),
            Self::EmptyComponent => write!(f, "has an empty component"),
            Self::DotComponent => write!(f, "has a '.' or '..' component"),
            Self::Separator => write!(f, "has a backslash (or a slash) inside a component"),
            Self::Colon => write!(f, "has a ':' inside a component (an alternate data stream)"),
            Self::ForbiddenChar(c) => write!(f, "has {c:?}, which Windows does not allow in names"),
            Self::ReservedName(n) => write!(f, "has the Windows device name {n:?} as a component"),
            Self::TrailingDotOrSpace => write!(f, "has a component ending in a dot or a space"),
        }
    }
}

/// Windows device names, refused as a component with or without an extension.
const RESERVED: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$", "COM1", "COM2", "COM3", "COM4", "COM5",
    "COM6", "COM7", "COM8", "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7",
    "LPT8", "LPT9", "COM\u{b9}", "COM\u{b2}", "COM\u{b3}", "LPT\u{b9}", "LPT\u{b2}", "LPT\u{b3}",
];

/// Checks one manifest path; `Ok` means every component is a plain Windows name.
pub fn check_path(path: &str) -> Result<(), PathProblem> {
    if path.is_empty() {
        return Err(PathProblem::Empty);
    }
    let b = path.as_bytes();
    if b[0] == b'/' || b[0] == b'\\' || (b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':') {
        return Err(PathProblem::Absolute);
    }
    path.split('/').try_for_each(check_component)
}

/// Checks one name (a path component, or a user name).
pub fn check_component(name: &str) -> Result<(), PathProblem> {
    if name.is_empty() {
        return Err(PathProblem::EmptyComponent);
    }
    if name == "." || name == ".." {
        return Err(PathProblem::DotComponent);
    }
    if name.contains('\\') || name.contains('/') {
        return Err(PathProblem::Separator);
    }
    if name.contains(':') {
        return Err(PathProblem::Colon);
    }
    if let Some(c) = name.chars().find(|&c| c < ' ' || "<>\"|?*".contains(c)) {
        return Err(PathProblem::ForbiddenChar(c));
    }
    if name.ends_with('.') || name.ends_with(' ') {
        return Err(PathProblem::TrailingDotOrSpace);
    }
    let stem = name.split('.').next().unwrap_or(name).trim_end_matches(' ');
    if let Some(r) = RESERVED.iter().find(|r| r.eq_ignore_ascii_case(stem)) {
        return Err(PathProblem::ReservedName(r.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_pass() {
        for p in ["Documents/a.txt", "AppData/Roaming/x y/z.ini", ".bashrc", "a..b", "CONSOLE.txt", "COM10", "résumé.pdf"] {
            assert_eq!(check_path(p), Ok(()), "{p}");
        }
    }

    #[test]
    fn hostile_paths_are_refused() {
        use PathProblem::*;
        let cases: &[(&str, PathProblem)] = &[
            ("", Empty),
            ("/etc/passwd", Absolute),
            ("C:\\Windows\\x", Absolute),
            ("c:x", Absolute),
            ("\\\\srv\\share\\x", Absolute),
            ("Documents/../../x", DotComponent),
            ("./a", DotComponent),
            ("a//b", EmptyComponent),
            ("a/", EmptyComponent),
            ("Documents/a\\..\\b", Separator),
            ("Documents/a.txt:secret", Colon),
            ("Documents/con", ReservedName("CON".into())),
            ("Documents/NUL.txt", ReservedName("NUL".into())),
            ("com1 .log", ReservedName("COM1".into())),
            ("Lpt9", ReservedName("LPT9".into())),
            ("Documents/a.", TrailingDotOrSpace),
            ("Documents/a ", TrailingDotOrSpace),
            ("a/b?c", ForbiddenChar('?')),
            ("a/b\u{1}", ForbiddenChar('\u{1}')),
        ];
        for (p, want) in cases {
            assert_eq!(check_path(p).as_ref(), Err(want), "{p:?}");
        }
        assert_eq!(check_component("../x"), Err(Separator));
    }
}
