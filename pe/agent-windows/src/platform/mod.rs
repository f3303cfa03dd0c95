//! What differs between Windows and the stand-in used on Linux: Known Folders, long paths,
//! reparse points, ACLs, creation times, for cleanup the volumes, raw reads and the tools it
//! runs, and for reports the HTTP client (`post_json`: WinHTTP on Windows).

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use self::windows::*;
#[cfg(windows)]
mod winhttp;
#[cfg(windows)]
pub use self::winhttp::post_json;

#[cfg(not(windows))]
mod other;
#[cfg(not(windows))]
pub use self::other::*;
#[cfg(not(windows))]
mod http_other;
#[cfg(not(windows))]
pub use self::http_other::post_json;

/// Why a POST failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostError {
    /// Worth trying again later: no network, connection refused, timeout, HTTP 5xx, 408, 429.
    Later(String),
    /// Trying again cannot help until someone changes something: a certificate that does not
    /// verify, HTTP 401/403 or another 4xx, a malformed URL.
    Refused(String),
}

impl std::fmt::Display for PostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PostError::Later(m) | PostError::Refused(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for PostError {}
