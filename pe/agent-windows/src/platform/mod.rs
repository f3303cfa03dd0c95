//! What differs between Windows and the stand-in used on Linux: Known Folders, long paths,
//! reparse points, ACLs, creation times, and for cleanup the volumes, raw reads and the tools it runs.

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use self::windows::*;

#[cfg(not(windows))]
mod other;
#[cfg(not(windows))]
pub use self::other::*;
